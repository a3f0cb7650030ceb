"""Stage 1 of a pass: list new mail, store it raw and record it before anything reads it.

A mixin of `mailbot.service.Robot` (which owns the attributes declared below): the first
meeting with a mailbox, UID catch-up within UIDVALIDITY, and mail too large to download.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from email.utils import parseaddr
from itertools import islice

from mailbot import db as dbm
from mailbot.clock import Clock
from mailbot.config import Config, since_instant
from mailbot.decision import IntakeContext, Reply
from mailbot.sources import IncomingRef, Source, SourceError
from mailbot.store import RawStore, StoreBatch
from mailbot.units import Register
from rules.campaign import Campaign

log = logging.getLogger("mailbot.service")


class _UidValidityMoved(Exception):
    """The folder was renumbered between reading UIDVALIDITY and listing its mail."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


# An atom of RFC 5322 in plain ASCII (a subset of what email.utils' parser takes as one).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
# `Name <local@domain>` or a bare `local@domain`, the display name free of the characters
# that end a phrase for email.utils (specials other than the dot, and the backslash).
_PLAIN_FROM = re.compile(
    rf"[^()<>@,:;\"\[\]\\]*<[ \t]*({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)[ \t]*>[ \t]*"
    rf"|[ \t]*({_ATOM}(?:\.{_ATOM})*@{_ATOM}(?:\.{_ATOM})*)[ \t]*"
)


def sender_address(from_header: str | None) -> str | None:
    """The address of a decoded From header, as `email.utils.parseaddr` finds it (None when
    it finds none); the usual shapes without its parser, a tenth of a millisecond a mail."""
    if not from_header:
        return None
    plain = _PLAIN_FROM.fullmatch(from_header)
    if plain is not None:
        return plain.group(1) or plain.group(2)
    return parseaddr(from_header)[1] or None


# The first batch fetched in a pass, doubled at each batch up to `[inbox] batch_size`: a
# pass's first mails are recorded, and reach the workers, while the rest are downloaded.
FIRST_BATCH = 8


def _batches(
    items: Iterable[IncomingRef], size: int, first: int | None = None
) -> Iterator[list[IncomingRef]]:
    """Runs of `size` items; with `first`, runs of `first` items doubling up to `size`."""
    it = iter(items)
    step = size if first is None else max(1, min(first, size))
    while chunk := list(islice(it, step)):
        yield chunk
        step = min(size, 2 * step)


class FetchStage:
    """Download and record: every mail is on disk and in the database before it is decided."""

    config: Config
    db: dbm.Database
    store: RawStore
    source: Source
    campaign: Campaign
    clock: Clock
    progress: Callable[[str], None] | None
    on_stage: Callable[[str], None]

    # Provided by the robot (stage 2 builds the context, the outbox rules queue replies).
    def _context(
        self, s: dbm.Session, received_at: datetime, register: Register | None = None
    ) -> IntakeContext:
        raise NotImplementedError

    def _queue_reply(self, s: dbm.Session, mail: dbm.Mail, reply: Reply) -> None:
        raise NotImplementedError

    # -- stage 1: download and record ------------------------------------------------------

    def fetch_new(self) -> int:
        """Store every new mail raw and record it as received, before any parsing."""
        count = 0
        for attempt in (1, 2):
            try:
                return self._fetch_new(count_from=count)
            except _UidValidityMoved as moved:
                count = moved.count
                if attempt == 2:
                    raise SourceError(str(moved)) from None
                log.warning("%s; listing again", moved)
        raise AssertionError("unreachable")

    def _fetch_new(self, count_from: int = 0) -> int:
        key = self.source.source_key
        with self.db.session(write=False) as s:
            first = dbm.first_contact(s, key)
        if first:
            count_from += self._first_contact()
        uidvalidity = self.source.uidvalidity()
        with self.db.session(write=False) as s:
            state = dbm.get_mailbox_state(s, key)
            last_uid = state.last_uid if state and state.uidvalidity == uidvalidity else None
            # A Maildir has no UIDVALIDITY: its state row only says the mailbox was met.
            if uidvalidity is not None and state is not None and state.uidvalidity != uidvalidity:
                log.warning(
                    "UIDVALIDITY of %s changed from %s to %s: rescanning, skipping known "
                    "Message-IDs",
                    key,
                    state.uidvalidity,
                    uidvalidity,
                )
        count = count_from
        skipped: list[IncomingRef] = []
        batch = max(1, self.config.inbox.batch_size)

        def unknown(listed: Iterable[IncomingRef]) -> Iterator[IncomingRef]:
            for chunk in _batches(listed, batch):
                # uidvalidity() may answer from a connection the server has since dropped;
                # the listing then comes from a new one. Under another UIDVALIDITY `last_uid`
                # means nothing, and mail below it would be skipped for ever: list again.
                for ref in chunk:
                    if ref.uid is not None and ref.uidvalidity != uidvalidity:
                        raise _UidValidityMoved(
                            f"UIDVALIDITY of {key} is {ref.uidvalidity}, not {uidvalidity}", count
                        )
                known = self._known(chunk, uidvalidity)
                for ref in chunk:
                    if ref.key in known:
                        skipped.append(ref)
                    else:
                        yield ref

        refs = unknown(self.source.new_messages(last_uid))
        for chunk in _batches(refs, batch, first=FIRST_BATCH):
            # Each body is written before the next is read (one batch's bytes at most in
            # memory); the batch is durable, all at once, before its records are committed.
            with self.store.batch() as files:
                # Too large to download: keep the headers, tell the sender, leave it there.
                stored = [
                    self._put(files, ref, ref.headers or b"\r\n") for ref in chunk if ref.oversize
                ]
                stored.extend(
                    self._put(files, ref, raw)
                    for ref, raw in self.source.fetch(r for r in chunk if not r.oversize)
                )
            self._record_batch(stored)
            count += len(stored)
            if self.progress:
                self.progress(f"đã tải {count} thư")
        self._advance_past(skipped)
        return count

    def _first_contact(self) -> int:
        """Meet a mailbox for the first time: what it already holds is left alone, except the
        mail that arrived since `[inbox] process_since`, recorded now. The position, the known
        files and those mails are recorded in one transaction: a crash before it means the
        next start meets the mailbox anew, never that old mail looks new."""
        since = since_instant(self.config.inbox.process_since, self.config.timezone)
        base = self.source.baseline(since)
        key = self.source.source_key
        now = self.clock()
        with self.store.batch() as files:
            kept = [
                self._put(files, ref, ref.headers or b"\r\n")
                for ref in base.catch_up
                if ref.oversize
            ]
            small = [r for r in base.catch_up if not r.oversize]
            kept.extend(self._put(files, ref, raw) for ref, raw in self.source.fetch(small))
        with self.db.session() as s:
            self._insert(s, kept, now)
            dbm.record_baseline(
                s,
                key,
                uidvalidity=base.uidvalidity,
                last_uid=base.last_uid,
                known_refs=base.known_keys,
                now=now,
            )
        log.info(
            "first contact with %s: position uidvalidity=%s last_uid=%s, %d mails left alone, "
            "%d mails since %s taken in",
            key,
            base.uidvalidity,
            base.last_uid,
            len(base.known_keys),
            len(kept),
            since.isoformat() if since else "-",
        )
        return len(kept)

    def _advance_past(self, skipped: list[IncomingRef]) -> None:
        """Move the read position past mails recognised as known (after a UIDVALIDITY change
        they come back under new UIDs); otherwise every pass would rescan the whole folder."""
        uids = [(r.uidvalidity, r.uid) for r in skipped if r.uid is not None]
        if not uids:
            return
        uidvalidity, uid = max(uids, key=lambda vu: vu[1])
        with self.db.session() as s:
            dbm.set_mailbox_state(s, self.source.source_key, uidvalidity or 0, uid, self.clock())

    def _known(self, refs: list[IncomingRef], uidvalidity: int | None) -> set[str]:
        """The keys of the listed mails already recorded: a few queries per batch."""
        key = self.source.source_key
        by_uid = {r.uid: r for r in refs if r.uid is not None}
        with self.db.session(write=False) as s:
            uids = dbm.known_uids(s, key, uidvalidity, by_uid)
            # After a UIDVALIDITY change the same mail comes back under a new UID.
            renumbered = [
                (mid, r.size) for u, r in by_uid.items() if u not in uids and (mid := r.message_id)
            ]
            by_mid = dbm.known_by_message_id(s, key, renumbered)
            keys = dbm.known_source_refs(s, key, [r.key for r in refs if r.uid is None])
        keys.update(
            r.key for u, r in by_uid.items() if u in uids or (r.message_id, r.size) in by_mid
        )
        return keys

    def _put(
        self, files: StoreBatch, ref: IncomingRef, raw: bytes
    ) -> tuple[IncomingRef, str, str, int]:
        """Store one raw mail; what its record needs (the bytes themselves are let go)."""
        sha, path = files.put(raw)
        return ref, sha, path, ref.size or len(raw)

    def _record_batch(self, stored: list[tuple[IncomingRef, str, str, int]]) -> None:
        """Record stored mails (and notify those too large) in one transaction: one commit
        per batch, not per mail; the read position moves past the batch in the same one."""
        if not stored:
            return
        now = self.clock()
        with self.db.session() as s:
            self._insert(s, stored, now)
            uids = [(r.uid, r.uidvalidity) for r, _, _, _ in stored if r.uid is not None]
            if uids:
                uid, uidvalidity = max(uids, key=lambda u: u[0])
                dbm.advance_read_position(s, self.source.source_key, uidvalidity or 0, uid, now)
        self.on_stage("after-record")

    def _insert(
        self, s: dbm.Session, stored: list[tuple[IncomingRef, str, str, int]], now: datetime
    ) -> None:
        """The mails' rows (their time is when the server received them, else when we read
        them), and the answer to each new one too large to download."""
        rows = dbm.record_received_many(
            s,
            self.source.source_key,
            [
                dbm.Received(
                    uidvalidity=ref.uidvalidity,
                    uid=ref.uid,
                    message_id=ref.message_id,
                    sha256=sha,
                    raw_path=path,
                    size=size,
                    from_addr=sender_address(ref.from_header),
                    subject=ref.subject,
                    received_at=ref.arrived_at or now,
                    fetched_at=now,
                    status="oversize" if ref.oversize else "received",
                    source_ref=ref.key,
                )
                for ref, sha, path, size in stored
            ],
        )
        for (ref, _sha, _path, size), (mail_id, created) in zip(stored, rows, strict=True):
            if created and ref.oversize:
                mail = s.get(dbm.Mail, mail_id)
                assert mail is not None  # inserted in this transaction
                self._notify_oversize(s, mail, ref)
            log.info("received mail id=%s uid=%s size=%s", mail_id, ref.uid, size)

    def _notify_oversize(self, s: dbm.Session, mail: dbm.Mail, ref: IncomingRef) -> None:
        # Same transaction as the record: a crash cannot leave it recorded but unanswered.
        dbm.add_event(
            s,
            "oversize",
            at=self.clock(),
            mail_id=mail.id,
            detail=f"{ref.size} bytes from {ref.from_header}",
        )
        from mailbot.intake import oversize_reply  # rare: not worth the parsing stack at start

        reply = oversize_reply(ref.headers, self._context(s, mail.received_at))
        if reply is not None:
            self._queue_reply(s, mail, reply)
