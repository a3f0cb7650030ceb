"""Wiring: build the database, store, mailbox, sender and campaign that a command needs."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mailbot import db as dbm
from mailbot.clock import utc_now
from mailbot.config import Config
from mailbot.lock import DataDirLock, MailboxLock, mailbox_key
from mailbot.outbox import SenderState
from mailbot.service import Robot
from mailbot.sources import Source, open_source
from mailbot.store import RawStore
from mailbot.transport import Sender, open_sender
from mailbot.units import OPTIONAL_COLUMNS, UnitsFileError, check_parents, read_units
from mailbot.workers import Decider, configured_decider
from rules.campaign import Campaign, load_campaign, newest_campaign, parse_campaign

log = logging.getLogger(__name__)


def campaign_of(config: Config) -> Campaign:
    """The configured campaign file, else the newest one shipped with mailbot."""
    # The operator's timezone (config) places the deadline and the schedule.
    if config.campaign:
        return load_campaign(config.resolve_path(config.campaign), timezone=config.timezone)
    newest = newest_campaign()
    if newest.timezone == config.timezone:
        return newest
    return load_campaign_text(newest, config.timezone)


@dataclass(frozen=True)
class AddressMove:
    """An address the register file gives to another unit than the database does."""

    email: str
    from_code: str
    from_name: str
    to_code: str
    to_name: str
    line: int | None

    def text(self) -> str:
        """The move in Vietnamese, naming both units and the address."""
        where = f" (dòng {self.line})" if self.line else ""
        return (
            f"địa chỉ thư “{self.email}” đang thuộc đơn vị “{self.from_name}” (mã "
            f"{self.from_code}), tệp ghi cho đơn vị “{self.to_name}” (mã {self.to_code}){where}"
        )

    def moved_text(self) -> str:
        """The move done, in Vietnamese."""
        return (
            f"đã chuyển địa chỉ thư “{self.email}” từ đơn vị “{self.from_name}” (mã "
            f"{self.from_code}) sang đơn vị “{self.to_name}” (mã {self.to_code})"
        )


@dataclass(frozen=True)
class ImportReport:
    """What an import did: how many units it read and the addresses it moved."""

    count: int
    moved: tuple[AddressMove, ...] = ()


def import_register(
    database: dbm.Database,
    path: Path,
    source: str = "import",
    *,
    move_addresses: bool = False,
    now: datetime | None = None,
) -> ImportReport:
    """Upsert every unit of a CSV/XLSX register file, all or nothing.

    An address the database has confirmed for another unit is an error (nothing imported)
    unless `move_addresses`; then it moves, and each move is recorded as an event.
    """
    units = read_units(path.read_bytes(), path.name)
    now = now or utc_now()
    with database.session() as s:
        check_parents(units, (r.code for r in dbm.unit_register(s)))
        owners = dbm.address_owners(s, [e for u in units for e in u.emails])
        moves = tuple(
            AddressMove(addr, owner[0], owner[1], unit.code, unit.name, unit.line)
            for unit in units
            for addr in unit.emails
            if (owner := owners.get(addr)) is not None and owner[0] != unit.code
        )
        if moves and not move_addresses:
            raise UnitsFileError(
                "; ".join(m.text()[:1].upper() + m.text()[1:] for m in moves)
                + ". Không nhập đơn vị nào. Nếu đúng là địa chỉ đã chuyển sang đơn vị mới, "
                "chạy lại lệnh với --move-addresses."
            )
        for unit in units:
            dbm.upsert_unit(
                s,
                code=unit.code,
                name=unit.name,
                emails=unit.emails,
                aliases=unit.aliases,
                parent=unit.parent,
                group=unit.group,
                order=unit.order,
                keep=set(OPTIONAL_COLUMNS) - unit.columns,
                source=source,
                forms=unit.forms,
                now=now,
            )
        for move in moves:
            dbm.add_event(
                s,
                "address-moved",
                at=now,
                unit_code=move.to_code,
                detail=f"{move.email}: {move.from_code} -> {move.to_code}",
            )
            log.warning(
                "address %s moved from unit %s to %s", move.email, move.from_code, move.to_code
            )
    return ImportReport(len(units), moves)


def import_units(database: dbm.Database, path: Path, source: str = "import") -> int:
    """Upsert every unit of a CSV/XLSX register file; returns how many rows were read."""
    return import_register(database, path, source).count


def _seed_units(config: Config, database: dbm.Database) -> None:
    """On first start, load the configured register so a fresh install knows its units."""
    if not config.units_file:
        return
    if _has_units(database):
        return
    try:
        n = import_units(database, config.resolve_path(config.units_file))
    except IntegrityError:
        # Another daemon on the same database server seeded it at the same moment: its
        # register stands (the import is all or nothing, ours left nothing behind).
        if not _has_units(database):
            raise
        log.info("unit register seeded by another process meanwhile")
        return
    log.info("imported %d units from %s", n, config.units_file)


def _has_units(database: dbm.Database) -> bool:
    """Whether the register holds any unit (one indexed row looked at, not the register)."""
    with database.session(write=False) as s:
        return s.scalar(select(dbm.Unit.code).limit(1)) is not None


def terminal_progress() -> Callable[[str], None] | None:
    """A one-line progress display when a person watches a terminal; None under systemd."""
    if not sys.stderr.isatty():
        return None

    def show(message: str) -> None:
        sys.stderr.write("\r\033[K" + message)
        sys.stderr.flush()

    return show


def load_campaign_text(campaign: Campaign, timezone: str) -> Campaign:
    """A shipped campaign re-read in another timezone."""
    folder = resources.files("rules") / "campaigns"
    text = (folder / (campaign.source or "")).read_text(encoding="utf-8")
    return parse_campaign(text, source=campaign.source, timezone=timezone)


@dataclass
class App:
    """Everything a long-running command holds open; close() releases it all."""

    config: Config
    campaign: Campaign
    database: dbm.Database
    store: RawStore
    lock: DataDirLock | None = None
    mailbox_lock: MailboxLock | None = None
    source: Source | None = None
    sender: Sender | None = None
    # Called by the robot after each committed stage of a mail (see Robot); tests inject it.
    on_stage: Callable[[str], None] | None = None
    _decider: Decider | None = None
    # The process's claim token and what SMTP accepted but the database has not recorded yet:
    # shared by the intake and the scheduler's thread.
    sender_state: SenderState = field(default_factory=SenderState)

    def robot(self, progress: Callable[[str], None] | None = None) -> Robot:
        # A missing secret is a configuration error, said before any server is contacted.
        self.config.inbox.password.resolve()
        self.config.outgoing.password.resolve()
        if self.source is None:
            self.config.maildir_path()  # a Maildir inbox that is not there is an error
            self.source = open_source(self.config.inbox, base_dir=self.config.base_dir)
        return Robot(
            self.config,
            self.database,
            self.store,
            self.source,
            self.outgoing(),
            self.campaign,
            clock=utc_now,
            progress=progress,
            decider=self.decider(),
            on_stage=self.on_stage,
            sender_state=self.sender_state,
        )

    def decider(self) -> Decider:
        """The worker pool that decides mail; one per App, started on first use (the
        commands that will decide mail start it early: `poll`, `run`)."""
        if self._decider is None:
            self._decider = configured_decider(self.config)
        return self._decider

    def outgoing(self) -> Sender:
        if self.sender is None:
            self.sender = open_sender(self.config.outgoing, base_dir=self.config.base_dir)
        return self.sender

    def close(self) -> None:
        if self._decider is not None:
            self._decider.close()
        for part in (self.source, self.sender):
            if part is not None:
                with contextlib.suppress(Exception):
                    part.close()
        self.database.dispose()
        if self.mailbox_lock is not None:
            self.mailbox_lock.release()
        if self.lock is not None:
            self.lock.release()


class Stopped(Exception):
    """Asked to stop while waiting as a standby: nothing was opened for work."""


@contextlib.contextmanager
def open_app(
    config: Config,
    *,
    exclusive: bool = True,
    standby: threading.Event | None = None,
    on_wait: Callable[[], None] | None = None,
    decider: Decider | None = None,
) -> Iterator[App]:
    """Open the data directory and the database (migrated), seed the register.

    `exclusive`: on SQLite the data directory lock; on PostgreSQL the mailbox's advisory
    lock, waited for as a hot standby until `standby` is set when given (then Stopped).
    """
    data_dir = config.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    server = bool(config.storage.database_url)
    lock = DataDirLock(data_dir) if exclusive and not server else None
    if lock is not None:
        lock.acquire()
    try:
        database = dbm.open_configured(config)
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    app = App(
        config, campaign_of(config), database, RawStore(data_dir), lock=lock, _decider=decider
    )
    try:
        if exclusive and server:
            app.mailbox_lock = MailboxLock(database.engine, mailbox_key(config))
            if not app.mailbox_lock.acquire(standby=standby, on_wait=on_wait):
                raise Stopped
        if exclusive:
            _seed_units(config, database)
        yield app
    finally:
        app.close()
