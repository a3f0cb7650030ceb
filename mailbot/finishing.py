"""Stages 3 and 4 of a pass: move decided mail on the server, deliver the outbox; upkeep.

A mixin of `mailbot.service.Robot` (which owns the attributes declared below), beside
`mailbot.fetching.FetchStage` (stage 1); stage 2, deciding, stays in the robot itself.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.exc import DBAPIError

from mailbot import db as dbm
from mailbot import outbox
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.sources import Source, SourceError
from mailbot.store import RawStore
from mailbot.transport import Sender

log = logging.getLogger("mailbot.service")

# How often the WAL is folded into the database and truncated (journal_size_limit caps it too).
CHECKPOINT_EVERY = timedelta(minutes=1)


class FinishStage:
    """Move what is decided, send what is queued, keep the disk and the WAL in bounds."""

    config: Config
    db: dbm.Database
    store: RawStore
    source: Source
    sender: Sender
    clock: Clock
    on_stage: Callable[[str], None]
    on_delivery: Callable[..., None] | None
    sender_state: outbox.SenderState
    _orphans_released: bool
    _started: datetime
    _disk_low: bool
    _last_checkpoint: datetime | None

    # -- stage 3: move processed mail ---------------------------------------------------------

    def move_done(self) -> int:
        """Move (or mark) decided mail on the server, a page at a time; never delete it.

        One command per page on the server and one UPDATE per page in the record; a crash
        between the two moves the page again, a no-op.
        """
        moved = 0
        after = 0
        page_size = max(1, self.config.inbox.batch_size)
        while True:
            with self.db.session(write=False) as s:
                page = dbm.mails_to_move(s, self.source.source_key, page_size, after_id=after)
            if not page:
                return moved
            after = page[-1].id
            refs = list(dict.fromkeys((m.ref, m.uidvalidity) for m in page if m.ref is not None))
            try:
                failures = self.source.mark_done_many(refs)
            except (SourceError, OSError) as exc:
                # The mailbox is out of reach: the next round tries these and the rest again.
                log.warning("could not move %d mails: %s", len(refs), exc)
                return moved
            done: list[int] = []
            for m in page:
                if m.ref is None:
                    continue
                problem = failures.get((m.ref, m.uidvalidity))
                if problem is None:
                    done.append(m.id)
                else:
                    log.warning("could not move mail id=%s: %s", m.id, problem)
            if done:
                with self.db.session() as s:
                    dbm.mark_moved(s, done)
            moved += len(done)
            if len(page) < page_size:
                # The last page: what is decided from now on waits for the next round (the
                # pass ends with one), not for one more query that would find nothing.
                return moved

    # -- stage 4: deliver the outbox ----------------------------------------------------------

    def deliver(self) -> tuple[int, int]:
        """Send every due outgoing mail; temporary failures are retried later with back-off."""
        if not self._orphans_released:
            # Only the holder of the data directory lock sends: a claim older than this robot
            # was left by a process killed between claiming and recording the outcome.
            outbox.release_orphaned_claims(self.db, self._started, self.sender_state)
            self._orphans_released = True
        return outbox.deliver(
            self.db,
            self.sender,
            self.config.outgoing,
            self.clock,
            after_each=lambda: self.on_stage("after-send"),
            state=self.sender_state,
            on_attempt=self.on_delivery,
        )

    def room_for_intake(self) -> bool:
        """Whether the data directory has more free space than the reserve.

        Below it no new mail is taken in (it stays on the server: nothing is lost), so that
        what was taken can still be recorded and answered. Said once in the log and to staff
        (an event, written from the reserve) per low period.
        """
        reserve = self.config.storage.reserve_mb * 1024 * 1024
        free = shutil.disk_usage(self.store.data_dir).free
        low = free < reserve
        if low and not self._disk_low:
            log.error(
                "only %d MB free in %s (reserve %d MB): not taking in new mail until space returns",
                free // 2**20,
                self.store.data_dir,
                self.config.storage.reserve_mb,
            )
            self._note_disk("disk-low", f"{free // 2**20} MB")
        elif not low and self._disk_low:
            log.warning("free space is back above the reserve: taking in mail again")
            self._note_disk("disk-ok", f"{free // 2**20} MB")
        self._disk_low = low
        return not low

    def _note_disk(self, kind: str, detail: str) -> None:
        try:
            with self.db.session() as s:
                dbm.add_event(s, kind, at=self.clock(), detail=detail)
        except (DBAPIError, OSError) as exc:
            log.warning("could not record %s: %s", kind, exc)

    def checkpoint(self) -> None:
        """Fold the WAL into the database now and then, so it never grows without bound."""
        now = self.clock()
        if self._last_checkpoint is not None and now - self._last_checkpoint < CHECKPOINT_EVERY:
            return
        try:
            self.db.checkpoint()
        except (DBAPIError, OSError) as exc:
            log.warning("WAL checkpoint failed: %s", exc)
            return
        self._last_checkpoint = now
