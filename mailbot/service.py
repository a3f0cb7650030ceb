"""The I/O shell around the pure intake: mailbox to raw store and database, outbox to SMTP."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.utils import parseaddr
from itertools import islice

from mailbot import db as dbm
from mailbot import intake, outbox
from mailbot.clock import Clock, utc_now
from mailbot.config import Config
from mailbot.intake import IntakeContext, Outcome, Reply, oversize_reply
from mailbot.sources import IncomingRef, Source, SourceError
from mailbot.store import RawStore
from mailbot.transport import DeliveryError, Sender
from mailbot.units import Register, Unit
from mailbot.workers import Decider, local_tools
from rules.campaign import Campaign

log = logging.getLogger(__name__)


def _no_stage_hook(stage: str) -> None:
    """The default stage hook: nothing to do between stages."""


class _UidValidityMoved(Exception):
    """The folder was renumbered between reading UIDVALIDITY and listing its mail."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


@dataclass
class PassStats:
    """What one pass over the inbox did, for logs and the terminal."""

    fetched: int = 0
    processed: int = 0
    failed: int = 0
    sent: int = 0
    send_failed: int = 0

    def __str__(self) -> str:
        return (
            f"fetched={self.fetched} processed={self.processed} failed={self.failed} "
            f"sent={self.sent} send_failed={self.send_failed}"
        )


def _batches(items: Iterable[IncomingRef], size: int) -> Iterator[list[IncomingRef]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def load_register(session: dbm.Session, district: str | None = "Thanh Xuân") -> Register:
    """The unit register as the pure intake sees it: every unit with its confirmed addresses."""
    units = [
        Unit(
            code=r.code,
            name=r.name,
            emails=tuple(r.emails),
            aliases=tuple(r.aliases),
            forms=tuple(r.forms),
        )
        for r in dbm.unit_register(session)
    ]
    return Register(units, district=district)


class Robot:
    """Moves mail through the stages; each stage commits before the next one starts."""

    def __init__(
        self,
        config: Config,
        database: dbm.Database,
        store: RawStore,
        source: Source,
        sender: Sender,
        campaign: Campaign,
        clock: Clock = utc_now,
        progress: Callable[[str], None] | None = None,
        decider: Decider | None = None,
        on_stage: Callable[[str], None] | None = None,
    ) -> None:
        """`on_stage` is called with "after-record", "after-process" and "after-send" each
        time a mail's stage has committed (the crash tests kill the process there)."""
        self.config = config
        # Without a pool of workers, decide here; the lambda keeps process_mail patchable.
        self.decider = decider or Decider(0, 0, 0, inline=lambda: intake.process_mail)
        self.tools = local_tools()  # what this machine can convert and unpack, probed once
        self.db = database
        self.store = store
        self.source = source
        self.sender = sender
        self.campaign = campaign
        self.clock = clock
        self.progress = progress
        self._started = clock()
        self._orphans_released = False
        self.on_stage = on_stage or _no_stage_hook
        # Hears each delivery attempt's outcome (the daemon's operator alerts).
        self.on_delivery: Callable[[DeliveryError | None], None] | None = None

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
        uidvalidity = self.source.uidvalidity()
        with self.db.session(write=False) as s:
            state = dbm.get_mailbox_state(s, key)
            last_uid = state.last_uid if state and state.uidvalidity == uidvalidity else None
            if state is not None and state.uidvalidity != uidvalidity:
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
        for chunk in _batches(refs, batch):
            big = [r for r in chunk if r.oversize]
            small = [r for r in chunk if not r.oversize]
            for ref in big:
                self._record_oversize(ref)
                count += 1
            for ref, raw in self.source.fetch(small):
                self._record(ref, raw)
                count += 1
                if self.progress:
                    self.progress(f"đã tải {count} thư")
        self._advance_past(skipped)
        return count

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

    def _record(
        self,
        ref: IncomingRef,
        raw: bytes,
        status: str = "received",
        also: Callable[[dbm.Session, dbm.Mail], None] | None = None,
    ) -> None:
        """Store the raw mail, then record it (and run `also`) in one transaction."""
        sha, path = self.store.put(raw)
        now = self.clock()
        with self.db.session() as s:
            mail, created = dbm.record_received(
                s,
                source=self.source.source_key,
                uidvalidity=ref.uidvalidity,
                uid=ref.uid,
                message_id=ref.message_id,
                sha256=sha,
                raw_path=path,
                size=ref.size or len(raw),
                from_addr=parseaddr(ref.from_header or "")[1] or None,
                subject=ref.subject,
                received_at=now,
                status=status,
                source_ref=ref.key,
            )
            if ref.uid is not None:
                dbm.set_mailbox_state(s, self.source.source_key, ref.uidvalidity or 0, ref.uid, now)
            if also is not None and created:
                also(s, mail)
            log.info("received mail id=%s uid=%s size=%s", mail.id, ref.uid, mail.size)
        self.on_stage("after-record")

    def _record_oversize(self, ref: IncomingRef) -> None:
        """Too large to download: keep its headers, tell the sender, leave it on the server."""

        def notify(s: dbm.Session, mail: dbm.Mail) -> None:
            # Same transaction as the record: a crash cannot leave it recorded but unanswered.
            dbm.add_event(
                s,
                "oversize",
                at=self.clock(),
                mail_id=mail.id,
                detail=f"{ref.size} bytes from {ref.from_header}",
            )
            reply = oversize_reply(ref.headers, self._context(s, mail.received_at))
            if reply is not None:
                self._queue_reply(s, mail, reply)

        self._record(ref, ref.headers or b"\r\n", status="oversize", also=notify)

    # -- stage 2: decide ---------------------------------------------------------------------

    def _context(
        self, s: dbm.Session, received_at: datetime, register: Register | None = None
    ) -> IntakeContext:
        if register is None:
            register = load_register(s, self.config.district)
        # Which required forms each unit has a valid, confirmed version of: one query, not
        # one per unit and form (that made the context cost more than parsing the mail).
        on_file = dbm.forms_on_file(s, self.campaign.form_codes)
        out = self.config.outgoing
        return IntakeContext(
            campaign=self.campaign,
            register=register,
            received_at=received_at,
            from_address=out.from_address,
            from_name=out.from_name,
            message_id_domain=out.message_id_domain,
            own_addresses=(out.from_address, *self.config.security.own_addresses),
            trusted_authserv_id=self.config.security.trusted_authserv_id,
            max_attachment_bytes=self.config.security.max_attachment_bytes,
            forms_on_file=on_file,
            tools=self.tools,
        )

    def process_due(self) -> tuple[int, int]:
        """Decide every mail that is due; one failing mail never blocks the others."""
        now = self.clock()
        with self.db.session(write=False) as s:
            due = [(m.id, m.raw_path, m.received_at) for m in dbm.due_mails(s, now)]
            # Processing only adds unconfirmed addresses, which the register leaves out.
            register = load_register(s, self.config.district) if due else None
        done = failed = 0
        batch = max(1, self.config.inbox.batch_size)
        for start in range(0, len(due), batch):
            chunk = due[start : start + batch]
            # Nothing of this batch is recorded before all of it is decided: one context
            # (forms on file) and one look-up of staff assignments serve the whole batch.
            try:
                with self.db.session(write=False) as s:
                    base = self._context(s, chunk[0][2], register)
                    assigned_units = dbm.assigned_units(s, [mail_id for mail_id, _, _ in chunk])
            except Exception as exc:  # noqa: BLE001 - each mail counts one failed attempt
                for mail_id, _, _ in chunk:
                    failed += 1
                    self._failed(mail_id, exc)
                continue
            jobs = []
            for mail_id, raw_path, received_at in chunk:
                try:
                    raw = self.store.get(raw_path)
                    ctx = replace(
                        base, received_at=received_at, assigned_unit=assigned_units.get(mail_id)
                    )
                except Exception as exc:  # noqa: BLE001 - a damaged store entry, say
                    failed += 1
                    self._failed(mail_id, exc)
                    continue
                jobs.append((mail_id, raw, ctx))
            for mail_id, outcome in self.decider.decide(jobs):
                try:
                    if isinstance(outcome, BaseException):
                        raise outcome
                    self._apply(mail_id, outcome)
                    done += 1
                except Exception as exc:  # noqa: BLE001 - one bad mail must not stop the queue
                    failed += 1
                    self._failed(mail_id, exc)
                if self.progress:
                    self.progress(f"đã xử lý {done + failed}/{len(due)} thư")
                self.on_stage("after-process")
        return done, failed

    def _failed(self, mail_id: int, exc: BaseException) -> None:
        """Count a failed attempt: retried with back-off, quarantined after the last one."""
        log.error(
            "processing mail id=%s failed: %s: %s", mail_id, type(exc).__name__, exc, exc_info=exc
        )
        with self.db.session() as s:
            mail = dbm.get_mail(s, mail_id)
            if mail is not None:
                dbm.mark_failed(
                    s,
                    mail,
                    f"{type(exc).__name__}: {exc}",
                    self.clock(),
                    self.config.processing.max_attempts,
                    self.config.processing.retry_base_seconds,
                )

    def _apply(self, mail_id: int, outcome: Outcome) -> None:
        """Record the outcome and queue its reply in one transaction."""
        now = self.clock()
        with self.db.session() as s:
            mail = dbm.get_mail(s, mail_id)
            if mail is None or mail.status not in ("received", "retry"):
                return  # already decided (a second daemon, or a replay after a crash)
            dbm.note_headers(
                s, mail, message_id=outcome.mail.message_id, from_addr=outcome.mail.from_addr
            )
            files = [
                {
                    "mail_id": mail.id,
                    "file_name": result.file,
                    "format": result.format,
                    "problems": [p.to_json() for p in result.all_problems()],
                    "forms_count": len(result.forms),
                }
                for result in outcome.results
            ]
            files.extend(
                {
                    "mail_id": mail.id,
                    "file_name": problem.filename,
                    "format": "other",
                    "problems": [
                        {
                            "severity": "error",
                            "code": problem.code,
                            "location": None,
                            "message": problem.message,
                        }
                    ],
                }
                for problem in outcome.mail.problems
            )
            dbm.add_file_results(s, files)
            for sub in outcome.submissions:
                dbm.add_submission(
                    s,
                    mail_id=mail.id,
                    unit_code=sub.unit_code,
                    form=sub.form,
                    file_name=sub.file_name,
                    file_sha256=mail.sha256,
                    received_at=mail.received_at,
                    late=sub.late,
                    awaiting_confirmation=outcome.awaiting_confirmation,
                )
            if outcome.awaiting_confirmation and outcome.unit and outcome.mail.from_addr:
                dbm.add_unit_email(
                    s,
                    outcome.mail.from_addr,
                    outcome.unit.code,
                    confirmed=False,
                    now=now,
                    source="form-name",
                )
                dbm.add_event(
                    s,
                    "awaiting-confirmation",
                    at=now,
                    mail_id=mail.id,
                    unit_code=outcome.unit.code,
                    detail=outcome.mail.from_addr,
                )
            if outcome.bounce is not None:
                for rcpt in outcome.bounce.recipients or ():
                    dbm.record_bounce(
                        s,
                        original_message_id=outcome.bounce.original_message_id,
                        recipient=rcpt.address,
                        status=rcpt.status,
                        action=rcpt.action,
                        diagnostic=rcpt.diagnostic,
                        received_at=now,
                        mail_id=mail.id,
                    )
            for result in outcome.results:
                if not result.forms and outcome.unit is not None:
                    dbm.add_event(
                        s,
                        "unreadable-file",
                        at=now,
                        mail_id=mail.id,
                        unit_code=outcome.unit.code,
                        detail=result.file,
                    )
            if outcome.reply is not None:
                self._queue_reply(s, mail, outcome.reply)
            if outcome.action == "quarantined":
                dbm.quarantine(s, mail, outcome.reason or "quarantined", now)
            else:
                dbm.mark_processed(
                    s,
                    mail,
                    now,
                    unit_code=outcome.unit.code if outcome.unit else None,
                    awaiting_confirmation=outcome.awaiting_confirmation,
                    for_staff=outcome.for_staff and outcome.unit is not None,
                    excerpt=outcome.excerpt,
                )
                if outcome.action == "ignored":
                    log.info("mail id=%s needs no answer: %s", mail.id, outcome.reason)
            log.info(
                "mail id=%s %s unit=%s forms=%d reply=%s",
                mail.id,
                outcome.action,
                outcome.unit.code if outcome.unit else None,
                len(outcome.submissions),
                outcome.reply.kind if outcome.reply else None,
            )

    def _queue_reply(self, s: dbm.Session, mail: dbm.Mail, reply: Reply) -> None:
        """Queue an automatic answer unless this address already had its hourly share."""
        now = self.clock()
        since = now - timedelta(hours=1)
        limit = self.config.outgoing.max_auto_replies_per_hour
        to = reply.to
        if dbm.count_auto_replies(s, to, since) >= limit:
            dbm.add_event(s, "rate-limited", at=now, mail_id=mail.id, detail=to)
            log.warning("not answering mail id=%s: %s reached %d replies/hour", mail.id, to, limit)
            return
        dbm.queue_outgoing(
            s,
            kind=reply.kind,
            message_id=reply.message_id,
            to_addrs=[to],
            subject=reply.subject,
            raw=reply.raw,
            mail_id=mail.id,
            dedupe_key=f"reply:{mail.id}:{dbm.reprocess_generation(s, mail.id)}",
            now=now,
        )

    # -- stage 3: move processed mail ---------------------------------------------------------

    def move_done(self) -> int:
        """Move (or mark) decided mail on the server; never delete it."""
        with self.db.session(write=False) as s:
            todo = [
                (m.id, m.source_ref or (str(m.uid) if m.uid is not None else None), m.uidvalidity)
                for m in dbm.mails_to_move(s, self.source.source_key)
            ]
        moved = 0
        for mail_id, ref, uidvalidity in todo:
            if ref is None:
                continue
            try:
                # The stored UIDVALIDITY guards against moving another mail after renumbering.
                self.source.mark_done(ref, uidvalidity=uidvalidity)
            except (SourceError, OSError, KeyError) as exc:
                log.warning("could not move mail id=%s: %s", mail_id, exc)
                continue
            with self.db.session() as s:
                mail = dbm.get_mail(s, mail_id)
                if mail is not None:
                    dbm.mark_moved(s, mail)
            moved += 1
        return moved

    # -- stage 4: deliver the outbox ----------------------------------------------------------

    def deliver(self) -> tuple[int, int]:
        """Send every due outgoing mail; temporary failures are retried later with back-off."""
        if not self._orphans_released:
            # Only the holder of the data directory lock sends: a claim older than this robot
            # was left by a process killed between claiming and recording the outcome.
            outbox.release_orphaned_claims(self.db, self._started)
            self._orphans_released = True
        return outbox.deliver(
            self.db,
            self.sender,
            self.config.outgoing,
            self.clock,
            after_each=lambda: self.on_stage("after-send"),
            on_attempt=self.on_delivery,
        )

    def run_once(self) -> PassStats:
        """One full pass: fetch, decide, move, deliver."""
        stats = PassStats()
        stats.fetched = self.fetch_new()
        stats.processed, stats.failed = self.process_due()
        self.move_done()
        stats.sent, stats.send_failed = self.deliver()
        return stats
