"""The I/O shell around the pure intake: mailbox to raw store and database, outbox to SMTP."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from mailbot import db as dbm
from mailbot import intake, outbox
from mailbot.claims import releasable
from mailbot.clock import Clock, utc_now
from mailbot.config import Config
from mailbot.contact import contact_of
from mailbot.fetching import FetchStage
from mailbot.finishing import FinishStage
from mailbot.intake import (
    IntakeContext,
    Outcome,
    PriorVersion,
    Reply,
)
from mailbot.mail.views import model_label
from mailbot.overlap import MailboxThread
from mailbot.sources import Source
from mailbot.staff.access import load_access
from mailbot.staff.actions import carry_out
from mailbot.staff.answer import compose_answer
from mailbot.store import RawStore
from mailbot.transport import DeliveryError, Sender
from mailbot.units import Register, Unit
from mailbot.workers import Decider, DecisionTimeout, WorkerDied, local_tools
from rules.campaign import Campaign

log = logging.getLogger(__name__)

# While deciding: how long to wait for the next recorded batch.
_FETCH_WAIT_SECONDS = 0.05


def _no_stage_hook(stage: str) -> None:
    """The default stage hook: nothing to do between stages."""


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

    def said(self) -> str:
        """The same figures for the person at the terminal."""
        return (
            f"nhận {self.fetched} thư, xử lý {self.processed} (lỗi {self.failed}), "
            f"gửi {self.sent} thư (lỗi {self.send_failed})"
        )


def load_register(session: dbm.Session, district: str | None = "Thanh Xuân") -> Register:
    """The unit register as the pure intake sees it: every unit with its confirmed addresses."""
    units = [
        Unit(
            code=r.code,
            name=r.name,
            emails=tuple(r.emails),
            aliases=tuple(r.aliases),
            forms=tuple(r.forms),
            parent=r.parent,
        )
        for r in dbm.unit_register(session)
    ]
    return Register(units, district=district)


def _prior_versions(
    rows: dict[tuple[str, str], tuple[datetime, list[tuple[str | None, str]]]],
) -> dict[tuple[str, str], PriorVersion]:
    """The counting versions as the pure intake takes them."""
    return {
        key: PriorVersion(at, tuple(model_label(name, model) for name, model in models))
        for key, (at, models) in rows.items()
    }


_Versions = tuple[set[tuple[str, str]], dict[tuple[str, str], PriorVersion]]


def _merged(
    versions: Mapping[tuple[str, str], PriorVersion],
    on_file: Mapping[str, frozenset[str]],
    keys: set[tuple[str, str]],
    fresh: dict[tuple[str, str], PriorVersion],
) -> tuple[dict[tuple[str, str], PriorVersion], dict[str, frozenset[str]]]:
    """The versions and forms on file with `keys` replaced by what the database now holds."""
    merged = {k: v for k, v in versions.items() if k not in keys} | fresh
    forms = dict(on_file)
    for unit_code in {u for u, _ in keys}:
        held = {f for (u, f) in fresh if u == unit_code}
        known = {f for (u, f) in keys if u == unit_code}
        forms[unit_code] = frozenset((set(forms.get(unit_code, frozenset())) - known) | held)
    return merged, forms


class Robot(FetchStage, FinishStage):
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
        sender_state: outbox.SenderState | None = None,
    ) -> None:
        """`on_stage` is called with "after-record" each time a fetched batch is recorded,
        "after-process" and "after-send" each time a mail's stage has committed (the crash
        tests kill the process there)."""
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
        self._sent_meanwhile = [0, 0]  # (sent, failed) by deliveries during process_due
        self._mailbox_thread: MailboxThread | None = None  # during run_once
        # One per process (the App's): whose claims these are, and what SMTP accepted.
        self.sender_state = sender_state or outbox.SenderState()
        self.claimant = self.sender_state.claimant
        self._disk_low = False
        self._last_checkpoint: datetime | None = None
        # Hears each delivery attempt's outcome (the daemon's operator alerts).
        self.on_delivery: Callable[[DeliveryError | None], None] | None = None
        # Who may act by mail, and the key that checks their codes (read once).
        self.staff, key_problem = load_access(config)
        if key_problem is not None:
            # No key at all: the feature is simply off; a broken key is a mistake to fix.
            level = logging.INFO if key_problem.missing else logging.WARNING
            log.log(level, "staff commands by mail are refused: %s", key_problem)

    # -- stage 2: decide ---------------------------------------------------------------------

    def _context(
        self, s: dbm.Session, received_at: datetime, register: Register | None = None
    ) -> IntakeContext:
        if register is None:
            register = load_register(s, self.config.district)
        # Which required forms each unit has a valid, confirmed version of: one query, not
        # one per unit and form (that made the context cost more than parsing the mail).
        on_file = dbm.forms_on_file(s, self.campaign.form_codes)
        versions = _prior_versions(dbm.counting_versions(s))
        out = self.config.outgoing
        return IntakeContext(
            campaign=self.campaign,
            register=register,
            received_at=received_at,
            from_address=out.from_address,
            from_name=out.from_name,
            message_id_domain=out.message_id_domain,
            contact=contact_of(self.config, self.campaign),
            own_addresses=(out.from_address, *self.config.security.own_addresses),
            trusted_authserv_id=self.config.security.trusted_authserv_id,
            max_attachment_bytes=self.config.security.max_attachment_bytes,
            forms_on_file=on_file,
            forms_not_counted=dbm.forms_not_counted(s, self.campaign.form_codes),
            versions_on_file=versions,
            tools=self.tools,
            staff=self.staff,
        )

    def release_orphaned_mails(self) -> list[int]:
        """Give back the mail claims of daemons that are gone (see mailbot.claims)."""
        now = self.clock()
        timeout = max(
            outbox.CLAIM_TIMEOUT,
            timedelta(
                seconds=self.config.processing.timeout_seconds
                * max(1, self.config.inbox.batch_size)
            ),
        )
        with self.db.session() as s:
            claims = dbm.mail_claims(s)
            gone = dbm.gone_claimants(s, (by for _, by, _ in claims))
            ids = releasable(claims, self.claimant, now, timeout, gone=gone)
            released = dbm.release_mail_claims(s, ids) if ids else []
        if released:
            log.warning(
                "mails %s were being decided by a process that died: queued again", released
            )
        return released

    def process_due(self, fetching: threading.Event | None = None) -> tuple[int, int]:
        """Decide every mail that is due, a page at a time; one failing mail never blocks
        the others. While `fetching` is not set, mail still being recorded is waited for.

        Each page is claimed first (received/retry -> processing, with this process as the
        holder): a mail another daemon claimed is left to it, so none is decided twice.
        """
        self.release_orphaned_mails()
        done = failed = 0
        batch = max(1, self.config.inbox.batch_size)
        after = 0  # pages follow the ids: each mail is looked at once per pass
        register: Register | None = None
        while True:
            # Read before the query: a batch recorded before fetching ended is then seen.
            ended = fetching is None or fetching.is_set()
            with self.db.session(write=False) as s:
                page = [
                    (m.id, m.raw_path, m.received_at)
                    for m in dbm.due_mails(s, self.clock(), batch, after_id=after)
                ]
                # Processing only adds unconfirmed addresses, which the register leaves out.
                if page and register is None:
                    register = load_register(s, self.config.district)
            if not page:
                if ended:
                    return done, failed
                assert fetching is not None
                fetching.wait(_FETCH_WAIT_SECONDS)  # the next batch is being recorded
                continue
            after = page[-1][0]
            with self.db.session() as s:
                won = set(
                    dbm.claim_mails(s, [m for m, _, _ in page], self.claimant.token, self.clock())
                )
            chunk = [item for item in page if item[0] in won]
            if not chunk:
                continue
            try:
                d, f = self._decide_batch(chunk, register, done + failed)
            finally:
                # Whatever this batch did not settle (a stop request, a crash of the
                # database) goes back to the queue at once rather than wait for a timeout.
                with self.db.session() as s:
                    dbm.release_mail_claims(s, won, holder=self.claimant.token)
            done += d
            failed += f

    def _decide_batch(
        self,
        chunk: list[tuple[int, str, datetime]],
        register: Register | None,
        so_far: int,
    ) -> tuple[int, int]:
        counts = [0, 0]  # done, failed
        # One context (forms on file) and one look-up of staff assignments serve the batch;
        # the versions on file are kept current as outcomes are recorded, and each mail is
        # handed to a worker with them as they are then (see `jobs`).
        try:
            with self.db.session(write=False) as s:
                base = self._context(s, chunk[0][2], register)
                assigned_units = dbm.assigned_units(s, [mail_id for mail_id, _, _ in chunk])
        except Exception as exc:  # noqa: BLE001 - each mail counts one failed attempt
            for mail_id, _, _ in chunk:
                self._failed(mail_id, exc)
            return 0, len(chunk)
        # Read by `jobs` when each mail is drawn (a closure sees the current binding).
        versions, on_file = base.versions_on_file, base.forms_on_file
        held: dict[int, tuple[bytes, IntakeContext]] = {}

        def jobs() -> Iterator[tuple[int, bytes, IntakeContext]]:
            # Drawn one at a time, when a worker is free: only mails in hand are in memory.
            for mail_id, raw_path, received_at in chunk:
                try:
                    raw = self.store.get(raw_path)
                    ctx = replace(
                        base,
                        received_at=received_at,
                        assigned_unit=assigned_units.get(mail_id),
                        versions_on_file=versions,
                        forms_on_file=on_file,
                    )
                except Exception as exc:  # noqa: BLE001 - a damaged store entry, say
                    counts[1] += 1
                    self._failed(mail_id, exc)
                    continue
                held[mail_id] = (raw, ctx)
                yield mail_id, raw, ctx

        # Outcomes are recorded as they come; while a slow mail is still being decided,
        # the answers already queued go out (a slow mail delays no one else's receipt).
        for mail_id, outcome in self.decider.decide(jobs(), on_wait=self._while_waiting):
            job = held.pop(mail_id, None)
            try:
                if isinstance(outcome, (DecisionTimeout, WorkerDied, MemoryError)):
                    # Out of time or memory once: answered as too large or too complex,
                    # never retried (each retry would stall the queue again).
                    log.warning("mail id=%s: %s; answering too-complex", mail_id, outcome)
                    assert job is not None
                    outcome = intake.too_complex_outcome(*job)
                if isinstance(outcome, BaseException):
                    raise outcome
                changed = self._apply(mail_id, outcome, job)
                if changed:
                    versions, on_file = _merged(versions, on_file, *changed)
                counts[0] += 1
            except Exception as exc:  # noqa: BLE001 - one bad mail must not stop the queue
                counts[1] += 1
                self._failed(mail_id, exc)
            if self._mailbox_thread is not None:
                self._mailbox_thread.decided()
            if self.progress:
                self.progress(f"đã xử lý {so_far + counts[0] + counts[1]} thư")
            self.on_stage("after-process")
        return counts[0], counts[1]

    def _while_waiting(self) -> None:
        """Deciding waits for a slow mail: have what is decided moved and answered now."""
        if self._mailbox_thread is not None:
            self._mailbox_thread.nudge()
        else:
            self._deliver_meanwhile()

    def _deliver_meanwhile(self) -> None:
        """Send the answers queued so far while the decision of other mail goes on."""
        try:
            sent, failed = self.deliver()
        except Exception as exc:  # noqa: BLE001 - the pass's own delivery retries later
            log.warning("delivering during processing failed: %s", exc)
            return
        self._sent_meanwhile[0] += sent
        self._sent_meanwhile[1] += failed

    def _failed(self, mail_id: int, exc: BaseException) -> None:
        """Count a failed attempt: retried with back-off, quarantined after the last one."""
        log.error(
            "processing mail id=%s failed: %s: %s", mail_id, type(exc).__name__, exc, exc_info=exc
        )
        with self.db.session() as s:
            mail = dbm.get_mail(s, mail_id)
            if mail is not None and dbm.holds_claim(mail, self.claimant.token):
                dbm.mark_failed(
                    s,
                    mail,
                    f"{type(exc).__name__}: {exc}",
                    self.clock(),
                    self.config.processing.max_attempts,
                    self.config.processing.retry_base_seconds,
                )

    def _apply(
        self, mail_id: int, outcome: Outcome, job: tuple[bytes, IntakeContext] | None = None
    ) -> _Versions | None:
        """Record the outcome and queue its reply in one transaction.

        Returns the (unit, form) pairs the outcome may have changed with their counting
        versions now, for the mails decided after it; None when it changed none.
        """
        now = self.clock()
        with self.db.session() as s:
            mail = dbm.get_mail(s, mail_id)
            if mail is None or not dbm.holds_claim(mail, self.claimant.token):
                return None  # our claim was taken back (we were thought dead)
            if job is not None:
                outcome = self._redecide_if_stale(s, outcome, *job)
            dbm.note_headers(
                s, mail, message_id=outcome.mail.message_id, from_addr=outcome.mail.from_addr
            )
            if outcome.command is not None:
                self._apply_command(s, mail, outcome, now)
                if outcome.action == "command":
                    dbm.mark_processed(s, mail, now)
                    return None
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
                    awaiting_confirmation=sub.awaiting,
                    sent_by=sub.sent_by,
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
                        received_at=mail.received_at,
                        mail_id=mail.id,
                    )
            for result in outcome.results:
                if not result.forms and outcome.unit is not None and result.has_errors:
                    dbm.add_event(
                        s,
                        "unreadable-file",
                        at=now,
                        mail_id=mail.id,
                        unit_code=outcome.unit.code,
                        detail=result.file,
                    )
            if outcome.other_mail:
                subject = f" – “{outcome.mail.subject[:80]}”" if outcome.mail.subject else ""
                dbm.add_event(
                    s,
                    "other-mail",
                    at=now,
                    mail_id=mail.id,
                    detail=f"{outcome.mail.from_addr or '(không rõ người gửi)'}{subject}",
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
                    awaiting_confirmation=outcome.needs_confirmation,
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
            keys = self._touched(outcome)
            if not keys:
                return None
            return keys, _prior_versions(dbm.counting_versions(s, keys))

    def _touched(self, outcome: Outcome) -> set[tuple[str, str]]:
        """The (unit, form) pairs whose counting version an outcome may change or rely on."""
        if not outcome.submissions or outcome.unit is None:
            return set()
        keys: set[tuple[str, str]] = {(sub.unit_code, sub.form.form) for sub in outcome.submissions}
        return keys | {(outcome.unit.code, f) for f in self.campaign.form_codes}

    def _apply_command(
        self, s: dbm.Session, mail: dbm.Mail, outcome: Outcome, now: datetime
    ) -> None:
        """Carry out a staff command (or refuse it) and answer a staff address, in the
        transaction that marks the command mail processed: a restart never acts twice."""
        command = outcome.command
        assert command is not None
        register = load_register(s, self.config.district)
        result = carry_out(s, command, register, mail.id, now, ZoneInfo(self.config.timezone))
        if not command.answerable:
            return
        limit = self.config.outgoing.max_auto_replies_per_hour
        if (
            not result.done
            and dbm.count_auto_replies(s, command.actor, now - timedelta(hours=1)) >= limit
        ):
            # A flood of forged commands must not become a flood of answers to staff.
            log.warning("not answering refused command mail id=%s: hourly limit", mail.id)
            return
        answer = compose_answer(self.config, outcome.mail, result, mail.received_at, now)
        dbm.queue_outgoing(
            s,
            kind="notice",
            message_id=answer.message_id,
            to_addrs=[answer.to],
            subject=answer.subject,
            raw=answer.raw,
            mail_id=mail.id,
            dedupe_key=f"reply:{mail.id}:{dbm.reprocess_generation(s, mail.id)}",
            now=now,
        )

    def _redecide_if_stale(
        self, s: dbm.Session, outcome: Outcome, raw: bytes, ctx: IntakeContext
    ) -> Outcome:
        """Decide again when a mail decided meanwhile changed a version this one relies on.

        Each mail is handed out with the versions on file as they are then; when a mail of
        the same unit was still being decided beside it, the second receipt must say it
        replaces the first (rare: two workers, the same unit at once).
        """
        keys = self._touched(outcome)
        if not keys:
            return outcome
        fresh = _prior_versions(dbm.counting_versions(s, keys))
        if all(fresh.get(k) == ctx.versions_on_file.get(k) for k in keys):
            return outcome
        versions, on_file = _merged(ctx.versions_on_file, ctx.forms_on_file, keys, fresh)
        return intake.process_mail(
            raw, replace(ctx, versions_on_file=versions, forms_on_file=on_file)
        )

    def _queue_reply(self, s: dbm.Session, mail: dbm.Mail, reply: Reply) -> None:
        """Queue an automatic answer unless this address already had its hourly share."""
        now = self.clock()
        max_age = self.config.inbox.max_reply_age_days
        generation = dbm.reprocess_generation(s, mail.id)
        # Old mail (a first start on a used mailbox, a rebuilt folder, an APPEND with an old
        # date) is recorded and shown to staff, not answered. Once staff had it decided again
        # (`review assign`, `reprocess`), answering is their choice, whatever its age.
        if max_age and not generation and mail.received_at < now - timedelta(days=max_age):
            detail = json.dumps(
                {
                    "from": mail.from_addr,
                    "subject": mail.subject,
                    "arrived_at": mail.received_at.isoformat(),
                    "max_days": max_age,
                    "kind": reply.kind,
                },
                ensure_ascii=False,
            )
            dbm.add_event(s, "reply-withheld-old", at=now, mail_id=mail.id, detail=detail)
            log.info(
                "not answering mail id=%s: it arrived %s, over %d days ago",
                mail.id,
                mail.received_at.isoformat(),
                max_age,
            )
            return
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
            dedupe_key=f"reply:{mail.id}:{generation}",
            now=now,
        )

    def run_once(self) -> PassStats:
        """One full pass: fetch, decide, move, deliver, the stages overlapping.

        The mailbox thread fetches and records batch after batch, then moves decided mail
        and delivers answers while this thread decides what is recorded: each mail is still
        recorded before it is decided, decided before it is moved or answered.
        """
        stats = PassStats()
        self._sent_meanwhile = [0, 0]
        io = MailboxThread(self, fetch=self.room_for_intake())
        io.start()
        self._mailbox_thread = io
        try:
            stats.processed, stats.failed = self.process_due(fetching=io.fetched)
        finally:
            self._mailbox_thread = None
            io.finish()
        stats.fetched = io.count
        if io.error is not None:
            raise io.error
        self.move_done()
        stats.sent, stats.send_failed = self.deliver()
        stats.sent += self._sent_meanwhile[0]
        stats.send_failed += self._sent_meanwhile[1]
        self.checkpoint()
        return stats
