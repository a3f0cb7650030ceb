"""The SQLite database: typed ORM models, engine set-up, migrations and repository functions."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

from sqlalchemy import (
    URL,
    CheckConstraint,
    DateTime,
    Dialect,
    Engine,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    bindparam,
    case,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from parsers.model import Form, Problem

DB_FILE_NAME = "mailbot.sqlite3"
DEFAULT_BUSY_TIMEOUT_MS = 10_000

MAIL_STATUSES: tuple[str, ...] = (
    "received", "processed", "retry", "quarantined", "oversize", "ignored",
)
SUBMISSION_STATUSES: tuple[str, ...] = ("valid", "invalid", "superseded")
OUTBOX_KINDS: tuple[str, ...] = ("receipt", "reminder", "digest", "notice")
OUTBOX_STATUSES: tuple[str, ...] = ("queued", "sent", "failed", "bounced")
FORM_TYPES: tuple[str, ...] = ("M1", "M2")

# Longest back-off between two attempts, whatever the attempt count.
MAX_BACKOFF_SECONDS = 24 * 3600
# Stored error texts are capped: a traceback-sized message is useless in a digest.
MAX_ERROR_CHARS = 4000


def _in(column: str, values: Sequence[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as naive UTC text; naive values are refused, not guessed."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Aware datetime in, naive UTC out."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Stored naive UTC back to an aware UTC datetime."""
        return None if value is None else value.replace(tzinfo=UTC)


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with a naming convention (needed by SQLite batch migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class MailboxState(Base):
    """How far the inbox has been read: the last UID seen within one UIDVALIDITY."""

    __tablename__ = "mailbox_state"

    source: Mapped[str] = mapped_column(Text, primary_key=True)
    uidvalidity: Mapped[int]
    last_uid: Mapped[int]
    updated_at: Mapped[datetime]


class Unit(Base):
    """A unit of the register, keyed by its short stable code."""

    __tablename__ = "units"

    code: Mapped[str] = mapped_column(Text, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    aliases: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of strings
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    emails: Mapped[list[UnitEmail]] = relationship(
        back_populates="unit", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def alias_list(self) -> list[str]:
        """The aliases as a list."""
        return list(json.loads(self.aliases or "[]"))


class UnitEmail(Base):
    """A sender address known for a unit (lower case); unconfirmed ones await staff."""

    __tablename__ = "unit_emails"

    email: Mapped[str] = mapped_column(Text, primary_key=True)
    unit_code: Mapped[str] = mapped_column(
        ForeignKey("units.code", ondelete="CASCADE"), index=True
    )
    confirmed: Mapped[bool] = mapped_column(default=True)
    added_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(Text, default="import")

    unit: Mapped[Unit] = relationship(back_populates="emails")


class Mail(Base):
    """One incoming mail, recorded before any parsing, with its processing state."""

    __tablename__ = "mails"
    __table_args__ = (
        UniqueConstraint("source", "uidvalidity", "uid"),
        Index("ix_mails_status_next_attempt_at", "status", "next_attempt_at"),
        # Sources without UIDs (Maildir): the same bytes in the same source are the same mail.
        Index(
            "ux_mails_source_sha256_nouid", "source", "sha256",
            unique=True, sqlite_where=text("uid IS NULL"),
        ),
        CheckConstraint(_in("status", MAIL_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    uidvalidity: Mapped[int | None]
    uid: Mapped[int | None]
    message_id: Mapped[str | None] = mapped_column(Text, index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    raw_path: Mapped[str] = mapped_column(Text)
    size: Mapped[int]
    from_addr: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(Text, default="received")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    quarantine_reason: Mapped[str | None] = mapped_column(Text)
    unit_code: Mapped[str | None] = mapped_column(ForeignKey("units.code"), index=True)
    awaiting_confirmation: Mapped[bool] = mapped_column(default=False)
    moved: Mapped[bool] = mapped_column(default=False)
    processed_at: Mapped[datetime | None]
    # The source's own handle (IMAP UID as text, Maildir key), to move the mail when done.
    source_ref: Mapped[str | None] = mapped_column(Text)


class Submission(Base):
    """One form (M1 or M2) found in a mail's attachment; versions are kept, never overwritten."""

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_unit_code_form_received_at", "unit_code", "form", "received_at"),
        CheckConstraint(_in("form", FORM_TYPES), name="form"),
        CheckConstraint(_in("status", SUBMISSION_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)
    unit_code: Mapped[str] = mapped_column(ForeignKey("units.code"))
    form: Mapped[str] = mapped_column(Text)
    file_name: Mapped[str] = mapped_column(Text)
    file_sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime]
    late: Mapped[bool] = mapped_column(default=False)
    status: Mapped[str] = mapped_column(Text)
    entries_count: Mapped[int] = mapped_column(default=0)
    errors_count: Mapped[int] = mapped_column(default=0)
    warnings_count: Mapped[int] = mapped_column(default=0)
    awaiting_confirmation: Mapped[bool] = mapped_column(default=False)
    result_json: Mapped[str] = mapped_column(Text)
    unit_name_on_form: Mapped[str | None] = mapped_column(Text)

    entries: Mapped[list[SubmissionEntry]] = relationship(
        back_populates="submission",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="SubmissionEntry.id",
    )

    @property
    def result(self) -> dict[str, Any]:
        """The form's parse result (contract JSON) as a dict."""
        return dict(json.loads(self.result_json))


class SubmissionEntry(Base):
    """One registered model of a submission."""

    __tablename__ = "entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    submission_id: Mapped[int] = mapped_column(
        ForeignKey("submissions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(Text)
    no: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(Text)
    field: Mapped[str] = mapped_column(Text)
    model: Mapped[str] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    location: Mapped[str] = mapped_column(Text)

    submission: Mapped[Submission] = relationship(back_populates="entries")


class FileResult(Base):
    """What became of one attachment (readable or not): its format, problems and form count."""

    __tablename__ = "file_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    mail_id: Mapped[int] = mapped_column(ForeignKey("mails.id"), index=True)
    file_name: Mapped[str] = mapped_column(Text)
    format: Mapped[str] = mapped_column(Text)
    problems_json: Mapped[str] = mapped_column(Text, default="[]")
    forms_count: Mapped[int] = mapped_column(default=0)

    @property
    def problems(self) -> list[dict[str, Any]]:
        """The attachment's problems as contract JSON dicts."""
        return list(json.loads(self.problems_json or "[]"))


class Outbox(Base):
    """One outgoing mail, queued with its final bytes and Message-ID, delivered by the sender."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
        CheckConstraint(_in("kind", OUTBOX_KINDS), name="kind"),
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    to_addrs: Mapped[str] = mapped_column(Text)  # JSON list of addresses
    subject: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(Text, default="queued")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(index=True)
    sent_at: Mapped[datetime | None]
    dedupe_key: Mapped[str | None] = mapped_column(Text, unique=True)

    @property
    def recipients(self) -> list[str]:
        """The envelope recipients as a list."""
        return list(json.loads(self.to_addrs))


class JobRun(Base):
    """A scheduled point (a reminder, a digest) that has been handled: never twice."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "point"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(Text)
    point: Mapped[str] = mapped_column(Text)
    done_at: Mapped[datetime]
    detail: Mapped[str | None] = mapped_column(Text)


class Bounce(Base):
    """A delivery report (RFC 3464) matched, where possible, to the outgoing mail it answers."""

    __tablename__ = "bounces"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int | None] = mapped_column(ForeignKey("outbox.id"), index=True)
    original_message_id: Mapped[str | None] = mapped_column(Text)
    recipient: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str | None] = mapped_column(Text)
    action: Mapped[str | None] = mapped_column(Text)
    diagnostic: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime]
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)


class Event(Base):
    """Something staff should hear about in the digest (quarantine, bounce, unknown sender...)."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(index=True)
    kind: Mapped[str] = mapped_column(Text)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("mails.id"), index=True)
    unit_code: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[str | None] = mapped_column(Text)


# --------------------------------------------------------------------------- engine and sessions

def _enable_wal(cur: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    """Switch to WAL (persistent, so only the first opener really does it).

    Changing the journal mode can answer "database is locked" at once, without the busy
    handler, while another process opens the same new file: wait and retry instead.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _make_engine(path: Path, busy_timeout_ms: int) -> Engine:
    engine = create_engine(URL.create("sqlite", database=str(path)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: SQLAlchemy emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _enable_wal(cur, busy_timeout_ms)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN, so the busy timeout applies; a deferred
        # transaction that upgrades from read to write gets SQLITE_BUSY with no waiting.
        mode = conn.get_execution_options().get("mailbot_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")

    return engine


class Database:
    """An open mailbot database: hands out transactional sessions; `dispose()` closes it."""

    def __init__(self, engine: Engine, path: Path) -> None:
        self.engine = engine
        self.path = path

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception.

        Write sessions BEGIN IMMEDIATE (they wait up to the busy timeout for the write lock);
        `write=False` gives a deferred transaction for readers, which never block on writers.
        """
        bind = self.engine if write else self.engine.execution_options(mailbot_begin="DEFERRED")
        with Session(bind=bind, expire_on_commit=False) as session, session.begin():
            yield session

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


_MIGRATION_LOCK = threading.Lock()


def migrations_path() -> Any:
    """The package's Alembic script folder (a Traversable)."""
    return resources.files("mailbot") / "migrations"


def _alembic_config(connection: Any, script_location: str) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


def run_migrations(
    engine: Engine, revision: str = "head", *, script_location: Path | None = None
) -> None:
    """Bring the schema to `revision` (Alembic, all in one BEGIN IMMEDIATE transaction)."""
    from alembic import command

    # Alembic's `context` and `op` are process-wide proxies: one migration at a time per
    # process (other processes are held off by BEGIN IMMEDIATE).
    with _MIGRATION_LOCK, contextlib.ExitStack() as stack:
        if script_location is None:
            script_location = stack.enter_context(resources.as_file(migrations_path()))
        conn = stack.enter_context(engine.connect())
        command.upgrade(_alembic_config(conn, str(script_location)), revision)
        conn.commit()


def new_revision(
    message: str, rev_id: str, *, script_location: Path, autogenerate: bool = True
) -> Path:
    """Write a new migration script (for developers) comparing the models with head.

    `script_location` is the source tree's mailbot/migrations; review the script it writes.
    """
    import tempfile

    from alembic import command

    with tempfile.TemporaryDirectory() as scratch:
        engine = _make_engine(Path(scratch) / DB_FILE_NAME, DEFAULT_BUSY_TIMEOUT_MS)
        try:
            run_migrations(engine, script_location=script_location)
            with _MIGRATION_LOCK, engine.connect() as conn:
                script = command.revision(
                    _alembic_config(conn, str(script_location)),
                    message=message, rev_id=rev_id, autogenerate=autogenerate,
                )
                conn.rollback()
        finally:
            engine.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not write exactly one revision")
    return Path(script.path)


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, or None before any migration."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        return rev


def open_database(
    data_dir: Path, *, busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS, migrate: bool = True
) -> Database:
    """Open (creating when missing) data_dir/mailbot.sqlite3 and migrate it to the newest schema."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILE_NAME
    engine = _make_engine(path, busy_timeout_ms)
    try:
        if migrate:
            run_migrations(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, path)


# --------------------------------------------------------------------------- helpers

def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID in its header form `<...>`, trimmed; None for an empty one."""
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    if not v.startswith("<"):
        v = "<" + v
    if not v.endswith(">"):
        v = v + ">"
    return v


def _norm_addr(addr: str) -> str:
    return addr.strip().lower()


def _cap(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def backoff_delay(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failures: base, 2*base, 4*base... capped."""
    exponent = max(0, attempts - 1)
    seconds = base_seconds * (2 ** min(exponent, 30))
    return timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))


# --------------------------------------------------------------------------- mailbox state

def get_mailbox_state(session: Session, source: str) -> MailboxState | None:
    """The read position of one inbox, or None before its first pass."""
    return session.get(MailboxState, source)


def set_mailbox_state(
    session: Session, source: str, uidvalidity: int, last_uid: int, now: datetime | None = None
) -> MailboxState:
    """Record the read position; within the same UIDVALIDITY it never moves backwards."""
    now = now or utcnow()
    state = session.get(MailboxState, source)
    if state is None:
        state = MailboxState(
            source=source, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now
        )
        session.add(state)
    else:
        if state.uidvalidity == uidvalidity:
            state.last_uid = max(state.last_uid, last_uid)
        else:
            state.uidvalidity = uidvalidity
            state.last_uid = last_uid
        state.updated_at = now
    session.flush()
    return state


# --------------------------------------------------------------------------- incoming mail

def find_received(
    session: Session,
    *,
    source: str,
    uidvalidity: int | None,
    uid: int | None,
    message_id: str | None = None,
    sha256: str | None = None,
) -> Mail | None:
    """The recorded mail with this identity: (source, UIDVALIDITY, UID), else Message-ID+hash."""
    if uid is not None:
        return session.scalars(
            select(Mail).where(
                Mail.source == source, Mail.uidvalidity == uidvalidity, Mail.uid == uid
            )
        ).first()
    if sha256 is None:
        return None
    # Same bytes means same Message-ID too, so the hash alone decides; the Message-ID is a
    # cheap indexed filter when present.
    query = select(Mail).where(Mail.source == source, Mail.uid.is_(None), Mail.sha256 == sha256)
    mid = normalize_message_id(message_id)
    if mid is not None:
        query = query.where(Mail.message_id == mid)
    return session.scalars(query.order_by(Mail.id)).first()


def is_known(session: Session, source: str, uidvalidity: int | None, uid: int) -> bool:
    """Whether the mail at this UID (within this UIDVALIDITY) is already recorded."""
    return find_received(session, source=source, uidvalidity=uidvalidity, uid=uid) is not None


def record_received(
    session: Session,
    *,
    source: str,
    uidvalidity: int | None,
    uid: int | None,
    message_id: str | None,
    sha256: str,
    raw_path: str,
    size: int,
    from_addr: str | None,
    subject: str | None,
    received_at: datetime,
    status: str = "received",
) -> Mail:
    """Record a stored raw mail as received; the existing row if it is already known."""
    existing = find_received(
        session, source=source, uidvalidity=uidvalidity, uid=uid,
        message_id=message_id, sha256=sha256,
    )
    if existing is not None:
        return existing
    if status not in ("received", "oversize", "ignored"):
        raise ValueError(f"a mail cannot arrive with status {status!r}")
    mail = Mail(
        source=source,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=normalize_message_id(message_id),
        sha256=sha256,
        raw_path=raw_path,
        size=size,
        from_addr=_norm_addr(from_addr) if from_addr else None,
        subject=subject,
        received_at=received_at,
        status=status,
        attempts=0,
        awaiting_confirmation=False,
        moved=False,
    )
    session.add(mail)
    session.flush()
    return mail


def get_mail(session: Session, mail_id: int) -> Mail | None:
    """One mail by id."""
    return session.get(Mail, mail_id)


def find_mails_by_message_id(session: Session, message_id: str) -> list[Mail]:
    """Every recorded mail carrying this Message-ID (any source)."""
    mid = normalize_message_id(message_id)
    return list(session.scalars(select(Mail).where(Mail.message_id == mid).order_by(Mail.id)))


def due_mails(session: Session, now: datetime, limit: int | None = None) -> list[Mail]:
    """Mails waiting to be processed: new ones, and retries whose time has come; oldest first."""
    query = (
        select(Mail)
        .where(
            Mail.status.in_(("received", "retry")),
            (Mail.next_attempt_at.is_(None)) | (Mail.next_attempt_at <= now),
        )
        .order_by(Mail.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def mails_with_status(session: Session, status: str) -> list[Mail]:
    """Every mail in one status, oldest first (e.g. the quarantine for staff)."""
    return list(session.scalars(select(Mail).where(Mail.status == status).order_by(Mail.id)))


def mark_processed(
    session: Session,
    mail: Mail,
    now: datetime,
    *,
    unit_code: str | None = None,
    awaiting_confirmation: bool = False,
) -> None:
    """The mail was understood and answered (in the same transaction as its results)."""
    mail.status = "processed"
    mail.processed_at = now
    mail.next_attempt_at = None
    mail.unit_code = unit_code
    mail.awaiting_confirmation = awaiting_confirmation
    session.flush()


def mark_failed(
    session: Session,
    mail: Mail,
    error: str,
    now: datetime,
    max_attempts: int,
    base_seconds: float,
) -> None:
    """Processing failed: retry later with exponential back-off, quarantine after the last try."""
    mail.attempts = (mail.attempts or 0) + 1
    mail.last_error = _cap(error)
    if mail.attempts >= max_attempts:
        quarantine(session, mail, "processing-failed", now, detail=mail.last_error)
        return
    mail.status = "retry"
    mail.next_attempt_at = now + backoff_delay(mail.attempts, base_seconds)
    session.flush()


def quarantine(
    session: Session, mail: Mail, reason: str, now: datetime, *, detail: str | None = None
) -> None:
    """Set a mail aside for staff (no more automatic attempts) and tell the digest."""
    mail.status = "quarantined"
    mail.quarantine_reason = reason
    mail.next_attempt_at = None
    mail.processed_at = now
    add_event(
        session, "quarantined", at=now, mail_id=mail.id, unit_code=mail.unit_code,
        detail=f"{reason}: {detail}" if detail else reason,
    )


def mark_moved(session: Session, mail: Mail) -> None:
    """The mail was moved (or flagged) on the server after success."""
    mail.moved = True
    session.flush()


def reset_for_reprocess(session: Session, mail: Mail, now: datetime) -> None:
    """Make a mail due again (`mailbot reprocess`): its earlier results are removed first."""
    clear_mail_results(session, mail.id)
    mail.status = "received"
    mail.attempts = 0
    mail.next_attempt_at = None
    mail.last_error = None
    mail.quarantine_reason = None
    mail.processed_at = None
    add_event(session, "reprocess", at=now, mail_id=mail.id, unit_code=mail.unit_code)


def clear_mail_results(session: Session, mail_id: int) -> None:
    """Delete a mail's file results and submissions, restoring what they had superseded."""
    touched = {
        (u, f)
        for u, f in session.execute(
            select(Submission.unit_code, Submission.form).where(Submission.mail_id == mail_id)
        )
    }
    session.execute(delete(Submission).where(Submission.mail_id == mail_id))
    session.execute(delete(FileResult).where(FileResult.mail_id == mail_id))
    session.expire_all()
    for unit_code, form in touched:
        _resolve_supersede(session, unit_code, form)
    session.flush()


# --------------------------------------------------------------------------- results of a mail

def add_file_result(
    session: Session,
    *,
    mail_id: int,
    file_name: str,
    format: str,
    problems: Iterable[Problem | dict[str, Any]] = (),
    forms_count: int = 0,
) -> FileResult:
    """Record what became of one attachment, readable or not."""
    plist = [p.to_json() if isinstance(p, Problem) else dict(p) for p in problems]
    row = FileResult(
        mail_id=mail_id,
        file_name=file_name,
        format=format,
        problems_json=json.dumps(plist, ensure_ascii=False),
        forms_count=forms_count,
    )
    session.add(row)
    session.flush()
    return row


def add_file_results(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """`add_file_result` for many attachments at once (one executemany, no ORM objects).

    Each row has the keyword arguments of `add_file_result`.
    """
    values = [
        {
            "mail_id": r["mail_id"],
            "file_name": r["file_name"],
            "format": r["format"],
            "problems_json": json.dumps(
                [p.to_json() if isinstance(p, Problem) else dict(p) for p in r.get("problems", ())],
                ensure_ascii=False,
            ),
            "forms_count": r.get("forms_count", 0),
        }
        for r in rows
    ]
    if values:
        session.execute(insert(FileResult.__table__), values)


def file_results_for_mail(session: Session, mail_id: int) -> list[FileResult]:
    """The per-attachment results of one mail, in the order they were recorded."""
    return list(
        session.scalars(
            select(FileResult).where(FileResult.mail_id == mail_id).order_by(FileResult.id)
        )
    )


_SUPERSEDE_SCOPE = (
    Submission.unit_code == bindparam("b_unit"),
    Submission.form == bindparam("b_form"),
    Submission.status.in_(("valid", "superseded")),
    Submission.awaiting_confirmation.is_(False),
)
_NEWEST_VERSION = (
    select(Submission.id)
    .where(*_SUPERSEDE_SCOPE)
    .order_by(Submission.received_at.desc(), Submission.id.desc())
    .limit(1)
)
_SET_VERSION_STATUS = (
    update(Submission.__table__)
    .where(
        *_SUPERSEDE_SCOPE,
        ((Submission.id == bindparam("b_newest")) & (Submission.status == "superseded"))
        | ((Submission.id != bindparam("b_newest")) & (Submission.status == "valid")),
    )
    .values(
        status=case((Submission.id == bindparam("b_newest"), "valid"), else_="superseded")
    )
)


def _resolve_supersede(session: Session, unit_code: str, form: str) -> None:
    """Among confirmed valid versions of unit+form, the newest is valid, the others superseded."""
    # One UPDATE of the rows that change, instead of loading every version (with its JSON)
    # for each new form; statements built once, so SQLAlchemy compiles them once.
    params = {"b_unit": unit_code, "b_form": form}
    newest = session.scalar(_NEWEST_VERSION, params)  # autoflushes pending changes first
    if newest is None:
        return
    session.connection().execute(_SET_VERSION_STATUS, {**params, "b_newest": newest})
    for obj in list(session.identity_map.values()):
        # Only loaded state is looked at: an expired (or deleted) row must not be fetched.
        loaded = obj.__dict__
        if (
            isinstance(obj, Submission)
            and "status" in loaded
            and loaded.get("unit_code") == unit_code
            and loaded.get("form") == form
        ):
            session.expire(obj, ["status"])  # reloaded on next access


def add_submission(
    session: Session,
    *,
    mail_id: int,
    unit_code: str,
    form: Form,
    file_name: str,
    file_sha256: str,
    received_at: datetime,
    late: bool = False,
    awaiting_confirmation: bool = False,
    extra_problems: Iterable[Problem] = (),
) -> Submission:
    """Record one form with its entries; valid when it has no error.

    A valid, confirmed form supersedes the earlier valid ones of the same unit and form type
    (earlier by reception time, so reprocessing an old mail never demotes a newer form).
    A form awaiting staff confirmation supersedes nothing until it is confirmed.
    `extra_problems` are file-level problems that also judge the form.
    """
    if form.form not in FORM_TYPES:
        raise ValueError(f"unknown form type {form.form!r}")
    problems = list(form.problems) + list(extra_problems)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = sum(1 for p in problems if p.severity == "warning")
    sub = Submission(
        mail_id=mail_id,
        unit_code=unit_code,
        form=form.form,
        file_name=file_name,
        file_sha256=file_sha256,
        received_at=received_at,
        late=late,
        status="invalid" if errors else "valid",
        entries_count=len(form.entries),
        errors_count=errors,
        warnings_count=warnings,
        awaiting_confirmation=awaiting_confirmation,
        # The contract's JSON plus what the progress needs: an explicit "không đăng ký".
        result_json=json.dumps(
            {**form.to_json(), "declared_empty": form.declared_empty}, ensure_ascii=False
        ),
        unit_name_on_form=form.unit,
    )
    session.add(sub)
    session.flush()
    if form.entries:
        # One executemany for the entries, not one ORM object each; `sub.entries` loads them.
        session.execute(
            insert(SubmissionEntry.__table__),
            [
                {"submission_id": sub.id, "kind": e.kind, "no": e.no, "name": e.name,
                 "field": e.field, "model": e.model, "note": e.note, "location": e.location}
                for e in form.entries
            ],
        )
    if sub.status == "valid" and not awaiting_confirmation:
        _resolve_supersede(session, unit_code, form.form)
        session.flush()
    return sub


def confirm_submission(session: Session, submission: Submission) -> None:
    """Staff confirmed who sent it: the form now counts (and may supersede older ones)."""
    submission.awaiting_confirmation = False
    session.flush()
    _resolve_supersede(session, submission.unit_code, submission.form)
    session.flush()


def latest_valid_submission(
    session: Session, unit_code: str, form: str, *, include_unconfirmed: bool = False
) -> Submission | None:
    """The form version that counts for a unit: the newest valid (confirmed) one."""
    query = select(Submission).where(
        Submission.unit_code == unit_code,
        Submission.form == form,
        Submission.status == "valid",
    )
    if not include_unconfirmed:
        query = query.where(Submission.awaiting_confirmation.is_(False))
    query = query.order_by(Submission.received_at.desc(), Submission.id.desc())
    return session.scalars(query).first()


def latest_submission(session: Session, unit_code: str, form: str) -> Submission | None:
    """The newest version of a unit's form whatever its state (valid, invalid, unconfirmed)."""
    return session.scalars(
        select(Submission)
        .where(Submission.unit_code == unit_code, Submission.form == form)
        .order_by(Submission.received_at.desc(), Submission.id.desc())
    ).first()


def submissions_for_mail(session: Session, mail_id: int) -> list[Submission]:
    """The forms recorded from one mail."""
    return list(
        session.scalars(
            select(Submission).where(Submission.mail_id == mail_id).order_by(Submission.id)
        )
    )


def submissions_since(session: Session, since: datetime) -> list[Submission]:
    """Forms received since a moment (for the digest's "what arrived")."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.received_at >= since)
            .order_by(Submission.received_at, Submission.id)
        )
    )


# --------------------------------------------------------------------------- the unit register

class UnitRecord(NamedTuple):
    """A unit as the register shows it."""

    code: str
    name: str
    emails: tuple[str, ...]
    aliases: tuple[str, ...]


def upsert_unit(
    session: Session,
    *,
    code: str,
    name: str,
    emails: Iterable[str] = (),
    aliases: Iterable[str] = (),
    now: datetime | None = None,
    source: str = "import",
) -> Unit:
    """Insert or update a unit by code; its addresses become confirmed senders for it.

    Addresses this source gave the unit earlier but no longer lists are dropped; addresses
    added another way (e.g. confirmed by staff) are kept.
    """
    now = now or utcnow()
    code = code.strip()
    if not code:
        raise ValueError("a unit needs a code")
    unit = session.get(Unit, code)
    alias_list = [a.strip() for a in aliases if a and a.strip()]
    if unit is None:
        unit = Unit(
            code=code, name=name.strip(), aliases=json.dumps(alias_list, ensure_ascii=False),
            created_at=now, updated_at=now,
        )
        session.add(unit)
        session.flush()
    else:
        unit.name = name.strip()
        unit.aliases = json.dumps(alias_list, ensure_ascii=False)
        unit.updated_at = now
    wanted = {_norm_addr(e) for e in emails if e and e.strip()}
    for ue in list(unit.emails):
        if ue.source == source and ue.email not in wanted:
            unit.emails.remove(ue)
    session.flush()
    for addr in sorted(wanted):
        add_unit_email(session, addr, code, confirmed=True, now=now, source=source)
    session.flush()
    return unit


def add_unit_email(
    session: Session,
    email: str,
    unit_code: str,
    *,
    confirmed: bool,
    now: datetime | None = None,
    source: str = "review",
) -> UnitEmail:
    """Attach an address to a unit.

    A confirmed address may move to another unit; an unconfirmed one never displaces or
    downgrades a confirmed mapping (the existing row is returned unchanged).
    """
    now = now or utcnow()
    addr = _norm_addr(email)
    row = session.get(UnitEmail, addr)
    if row is None:
        row = UnitEmail(
            email=addr, unit_code=unit_code, confirmed=confirmed, added_at=now, source=source
        )
        session.add(row)
    elif confirmed:
        if row.unit_code != unit_code:
            row.unit_code = unit_code
            row.added_at = now
        row.confirmed = True
        row.source = source
    elif not row.confirmed and row.unit_code != unit_code:
        row.unit_code = unit_code
        row.added_at = now
        row.source = source
    session.flush()
    return row


def unit_for_address(session: Session, email: str) -> tuple[str, bool] | None:
    """(unit code, confirmed) for a sender address, or None when the address is unknown."""
    row = session.get(UnitEmail, _norm_addr(email))
    return None if row is None else (row.unit_code, row.confirmed)


def confirm_sender(
    session: Session, email: str, unit_code: str, now: datetime | None = None
) -> int:
    """Staff confirm an address for a unit; its waiting mails and forms then count.

    Returns how many submissions were confirmed.
    """
    now = now or utcnow()
    addr = _norm_addr(email)
    add_unit_email(session, addr, unit_code, confirmed=True, now=now, source="review")
    mails = list(
        session.scalars(
            select(Mail).where(
                Mail.from_addr == addr,
                Mail.unit_code == unit_code,
                Mail.awaiting_confirmation.is_(True),
            )
        )
    )
    count = 0
    for mail in mails:
        mail.awaiting_confirmation = False
        for sub in submissions_for_mail(session, mail.id):
            if sub.awaiting_confirmation and sub.unit_code == unit_code:
                confirm_submission(session, sub)
                count += 1
    add_event(session, "sender-confirmed", at=now, unit_code=unit_code, detail=addr)
    return count


def get_unit(session: Session, code: str) -> Unit | None:
    """One unit by code."""
    return session.get(Unit, code)


def unit_register(session: Session) -> list[UnitRecord]:
    """Every unit with its confirmed addresses and aliases, ordered by code."""
    out: list[UnitRecord] = []
    for unit in session.scalars(select(Unit).order_by(Unit.code)):
        emails = tuple(sorted(e.email for e in unit.emails if e.confirmed))
        out.append(UnitRecord(unit.code, unit.name, emails, tuple(unit.alias_list)))
    return out


# --------------------------------------------------------------------------- the outbox

def queue_outgoing(
    session: Session,
    *,
    kind: str,
    message_id: str,
    to_addrs: Sequence[str] | str,
    subject: str,
    raw: bytes,
    mail_id: int | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> Outbox:
    """Queue a finished outgoing mail; with a dedupe_key already queued, the existing row."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outgoing kind {kind!r}")
    if dedupe_key is not None:
        existing = session.scalars(select(Outbox).where(Outbox.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    addrs = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
    if not addrs:
        raise ValueError("an outgoing mail needs at least one recipient")
    mid = normalize_message_id(message_id)
    if mid is None:
        raise ValueError("an outgoing mail needs its Message-ID when queued")
    row = Outbox(
        message_id=mid,
        kind=kind,
        mail_id=mail_id,
        to_addrs=json.dumps([a.strip() for a in addrs], ensure_ascii=False),
        subject=subject,
        raw=raw,
        status="queued",
        attempts=0,
        created_at=now or utcnow(),
        dedupe_key=dedupe_key,
    )
    session.add(row)
    session.flush()
    return row


def due_outgoing(session: Session, now: datetime, limit: int | None = None) -> list[Outbox]:
    """Queued mails whose (re)try time has come, oldest first."""
    query = (
        select(Outbox)
        .where(
            Outbox.status == "queued",
            (Outbox.next_attempt_at.is_(None)) | (Outbox.next_attempt_at <= now),
        )
        .order_by(Outbox.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def find_outbox_by_message_id(session: Session, message_id: str | None) -> Outbox | None:
    """Our outgoing mail with this Message-ID (to recognise our own mail and its bounces)."""
    mid = normalize_message_id(message_id)
    if mid is None:
        return None
    return session.scalars(select(Outbox).where(Outbox.message_id == mid)).first()


def mark_sent(session: Session, outbox: Outbox, now: datetime) -> None:
    """The SMTP server (or the directory sink) accepted the mail."""
    outbox.status = "sent"
    outbox.sent_at = now
    outbox.attempts = (outbox.attempts or 0) + 1
    outbox.next_attempt_at = None
    outbox.last_error = None
    session.flush()


def mark_send_failed(
    session: Session,
    outbox: Outbox,
    error: str,
    now: datetime,
    *,
    temporary: bool,
    max_attempts: int = 8,
    base_seconds: float = 60,
) -> None:
    """Delivery failed: a temporary failure retries with back-off, a permanent one is final."""
    outbox.attempts = (outbox.attempts or 0) + 1
    outbox.last_error = _cap(error)
    if temporary and outbox.attempts < max_attempts:
        outbox.status = "queued"
        outbox.next_attempt_at = now + backoff_delay(outbox.attempts, base_seconds)
        session.flush()
        return
    outbox.status = "failed"
    outbox.next_attempt_at = None
    add_event(
        session, "send-failed", at=now, mail_id=outbox.mail_id,
        detail=f"{outbox.kind} {outbox.message_id} to {', '.join(outbox.recipients)}: "
        f"{outbox.last_error}",
    )


def count_auto_replies(
    session: Session, addr: str, since: datetime, kinds: Iterable[str] | None = None
) -> int:
    """How many mails we queued to this address since a moment (for the per-hour limit)."""
    target = _norm_addr(addr)
    query = select(Outbox.to_addrs).where(Outbox.created_at >= since)
    if target.isascii() and target.isprintable() and not any(c in target for c in '"\\'):
        # Let SQLite skip the rows that cannot name this address (the exact test follows);
        # rows with non-ASCII text stay, as Python's lower() may map them to ASCII.
        query = query.where(
            (func.instr(func.lower(Outbox.to_addrs), target) > 0)
            | Outbox.to_addrs.op("GLOB")("*[^ -~]*")
        )
    if kinds is not None:
        query = query.where(Outbox.kind.in_(list(kinds)))
    return sum(
        1
        for (to_addrs,) in session.execute(query)
        if target in {_norm_addr(a) for a in json.loads(to_addrs)}
    )


# --------------------------------------------------------------------------- bounces and events

def record_bounce(
    session: Session,
    *,
    original_message_id: str | None,
    recipient: str | None,
    status: str | None,
    action: str | None,
    diagnostic: str | None,
    received_at: datetime,
    mail_id: int | None,
    outbox_id: int | None = None,
) -> Bounce:
    """Record a delivery report, matched to our outgoing mail by its Message-ID when possible."""
    mid = normalize_message_id(original_message_id)
    outbox = session.get(Outbox, outbox_id) if outbox_id is not None else None
    if outbox is None:
        outbox = find_outbox_by_message_id(session, mid)
    bounce = Bounce(
        outbox_id=outbox.id if outbox is not None else None,
        original_message_id=mid,
        recipient=_norm_addr(recipient) if recipient else None,
        status=status,
        action=action,
        diagnostic=_cap(diagnostic) if diagnostic else None,
        received_at=received_at,
        mail_id=mail_id,
    )
    session.add(bounce)
    permanent = (action or "").lower() == "failed" or (status or "").startswith("5")
    if outbox is not None and permanent:
        outbox.status = "bounced"
    unit_code = None
    if recipient:
        known = unit_for_address(session, recipient)
        unit_code = known[0] if known else None
    session.flush()
    add_event(
        session, "bounce", at=received_at, mail_id=mail_id, unit_code=unit_code,
        detail=json.dumps(
            {"recipient": bounce.recipient, "status": status, "action": action,
             "kind": outbox.kind if outbox is not None else None, "message_id": mid},
            ensure_ascii=False,
        ),
    )
    return bounce


def add_event(
    session: Session,
    kind: str,
    *,
    at: datetime | None = None,
    mail_id: int | None = None,
    unit_code: str | None = None,
    detail: str | None = None,
) -> Event:
    """Note something for the staff digest."""
    ev = Event(at=at or utcnow(), kind=kind, mail_id=mail_id, unit_code=unit_code, detail=detail)
    session.add(ev)
    session.flush()
    return ev


def events_since(
    session: Session, since: datetime, kinds: Iterable[str] | None = None
) -> list[Event]:
    """Events at or after a moment, oldest first."""
    query = select(Event).where(Event.at >= since)
    if kinds is not None:
        query = query.where(Event.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(Event.at, Event.id)))


# --------------------------------------------------------------------------- scheduled jobs

def job_done(session: Session, job: str, point: str) -> bool:
    """Whether this scheduled point (e.g. job "reminder", point "2022-02-13") was handled."""
    return session.scalars(
        select(func.count()).select_from(JobRun).where(JobRun.job == job, JobRun.point == point)
    ).one() > 0


def claim_job_run(
    session: Session, job: str, point: str, now: datetime, detail: str | None = None
) -> bool:
    """Mark a point handled; False if it already was. Queue its mails in the same transaction."""
    if job_done(session, job, point):
        return False
    session.add(JobRun(job=job, point=point, done_at=now, detail=detail))
    session.flush()
    return True


def last_job_run(session: Session, job: str) -> JobRun | None:
    """The most recent handled point of a job (e.g. when the last digest went out)."""
    return session.scalars(
        select(JobRun).where(JobRun.job == job).order_by(JobRun.done_at.desc(), JobRun.id.desc())
    ).first()
