"""Stage 2's second half: record decided mail a group at a time, few statements per mail.

A mixin of `mailbot.service.Robot` (which owns the attributes declared below). The outcomes
ready together are recorded in one transaction with their replies: one query per group for
the mails, the counting versions, the reprocess rounds and the hourly reply counts, and one
INSERT per table for the rows. When a group fails, each mail is recorded again on its own,
so one bad outcome never takes the others down with it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from mailbot import db as dbm
from mailbot.claims import Claimant
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.decision import IntakeContext, Outcome, PriorVersion, Reply, model_label
from mailbot.units import Register, Unit
from rules.campaign import Campaign

log = logging.getLogger("mailbot.service")

Key = tuple[str, str]  # (unit code, form)
Versions = tuple[set[Key], dict[Key, PriorVersion]]
# One decided mail to record: its id, the outcome, and what it was decided from (the raw
# mail and its context: needed to decide it again), None when that is gone.
Item = tuple[int, Outcome, tuple[bytes, IntakeContext] | None]
Note = tuple[int, str, tuple[Any, ...]]  # a log line said once its transaction committed


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


def prior_versions(
    rows: dict[Key, tuple[datetime, list[tuple[str | None, str]]]],
) -> dict[Key, PriorVersion]:
    """The counting versions as the pure intake takes them."""
    return {
        key: PriorVersion(at, tuple(model_label(name, model) for name, model in models))
        for key, (at, models) in rows.items()
    }


def merged(
    versions: Mapping[Key, PriorVersion],
    on_file: Mapping[str, frozenset[str]],
    keys: set[Key],
    fresh: dict[Key, PriorVersion],
) -> tuple[dict[Key, PriorVersion], dict[str, frozenset[str]]]:
    """The versions and forms on file with `keys` replaced by what the database now holds."""
    out = {k: v for k, v in versions.items() if k not in keys} | fresh
    forms = dict(on_file)
    for unit_code in {u for u, _ in keys}:
        held = {f for (u, f) in fresh if u == unit_code}
        known = {f for (u, f) in keys if u == unit_code}
        forms[unit_code] = frozenset((set(forms.get(unit_code, frozenset())) - known) | held)
    return out, forms


@dataclass
class _Rows:
    """What a group writes, gathered to be inserted a table at a time."""

    files: list[dict[str, Any]] = field(default_factory=list)
    submissions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    outgoing: list[dict[str, Any]] = field(default_factory=list)
    decided: list[dbm.DecidedMail] = field(default_factory=list)

    def write(self, s: dbm.Session) -> None:
        """Insert what was gathered (mails are settled last, by `settle`)."""
        dbm.add_file_results(s, self.files)
        dbm.add_submissions(s, self.submissions)
        dbm.add_events(s, self.events)
        dbm.queue_outgoing_many(s, self.outgoing)
        self.files, self.submissions, self.events, self.outgoing = [], [], [], []

    def write_submissions(self, s: dbm.Session) -> None:
        """Insert the forms gathered so far (what the counting versions are read from); the
        other rows wait for `write` (each table still gets its rows in gathering order)."""
        dbm.add_submissions(s, self.submissions)
        self.submissions = []

    def settle(self, s: dbm.Session) -> None:
        """Write everything, then mark the mails decided."""
        self.write(s)
        dbm.settle_mails(s, self.decided)
        self.decided = []


@dataclass
class Round:
    """One round of deciding a batch: which mails wait to be decided again, by a worker.

    A mail found stale (a mail of its unit was recorded after it was handed out) is not
    decided again here, holding the write lock, but handed back to the pool in the next
    round, and any later mail of the same unit and form with it (mailbox order is kept:
    a later version is never recorded before an earlier one). In the `last` round nothing
    is deferred: a mail stale once more is decided again here.
    """

    last: bool = False
    deferred: set[Key] = field(default_factory=set)  # (unit, form) pairs of deferred mails
    redo: list[int] = field(default_factory=list)  # the deferred mails, in mailbox order


class _Counts:
    """A group's reprocess rounds per mail and replies per address in the last hour: read
    once for the group, then kept up to date as its replies are queued."""

    def __init__(
        self, s: dbm.Session, since: datetime, generations: dict[int, int], addrs: set[str]
    ) -> None:
        self._s = s
        self._since = since
        self.generations = generations
        self._replies = dbm.count_auto_replies_many(s, addrs, since)

    def replies_to(self, addr: str) -> int:
        """Replies queued to this address in the hour, those of the group included."""
        key = addr.strip().lower()
        if key not in self._replies:  # an address the group was not read for (a redecision)
            self._replies[key] = dbm.count_auto_replies(self._s, addr, self._since)
        return self._replies[key]

    def queued(self, addr: str) -> None:
        """One more reply to this address."""
        self._replies[addr.strip().lower()] = self.replies_to(addr) + 1


class RecordStage:
    """Record outcomes and queue their replies, a group per transaction."""

    config: Config
    db: dbm.Database
    campaign: Campaign
    clock: Clock
    claimant: Claimant

    def _record_group(
        self, items: list[Item], rnd: Round | None = None
    ) -> tuple[dict[int, Exception], Versions | None]:
        """Record the outcomes in one transaction; on failure, each in its own.

        Returns the mails that failed with their error, and the (unit, form) pairs the
        group may have changed with their counting versions now (None: it changed none).
        Mails deferred to the next round are added to `rnd`.
        """
        rnd = rnd if rnd is not None else Round()
        notes: list[Note] = []
        deferred: Round = replace(rnd, deferred=set(rnd.deferred), redo=[])
        try:
            with self.db.session() as s:
                changed = self._write_group(s, items, notes, deferred)
        except Exception as exc:  # noqa: BLE001 - retried mail by mail, or reported
            if len(items) == 1:
                return {items[0][0]: exc}, None
            log.warning(
                "recording %d decided mails together failed (%s: %s): one at a time",
                len(items),
                type(exc).__name__,
                exc,
            )
            return self._record_one_by_one(items, rnd)
        rnd.deferred |= deferred.deferred
        rnd.redo.extend(deferred.redo)
        _say(notes)
        return {}, changed

    def _record_one_by_one(
        self, items: list[Item], rnd: Round
    ) -> tuple[dict[int, Exception], Versions | None]:
        failed: dict[int, Exception] = {}
        keys: set[Key] = set()
        fresh: dict[Key, PriorVersion] = {}
        for item in items:
            errors, changed = self._record_group([item], rnd)
            failed |= errors
            if changed is not None:  # what a later mail found replaces what an earlier one did
                fresh = {k: v for k, v in fresh.items() if k not in changed[0]} | changed[1]
                keys |= changed[0]
        return failed, (keys, fresh) if keys else None

    def _write_group(
        self, s: dbm.Session, items: list[Item], notes: list[Note], rnd: Round
    ) -> Versions | None:
        now = self.clock()
        mails = dbm.mails_to_record(s, [mail_id for mail_id, _, _ in items])
        # A mail whose claim was taken back (we were thought dead) is left to its new holder.
        mine = [
            (mails[mail_id][0], outcome, job)
            for mail_id, outcome, job in items
            if mail_id in mails and dbm.holds_claim(mails[mail_id][0], self.claimant.token)
        ]
        if not mine:
            return None
        keys: set[Key] = set().union(*(self._touched(o) for _, o, _ in mine))
        current = prior_versions(dbm.counting_versions(s, keys)) if keys else {}
        counts = _Counts(
            s,
            now - timedelta(hours=1),
            {m.id: mails[m.id][1] for m, _, _ in mine},
            {o.reply.to for _, o, _ in mine if o.reply is not None},
        )
        rows = _Rows()
        changed: set[Key] = set()
        for mail, outcome, job in mine:
            touched = self._touched(outcome)
            may_defer = not rnd.last
            if may_defer and touched & rnd.deferred:
                rnd.deferred |= touched  # an earlier mail of its unit is being decided again
                rnd.redo.append(mail.id)
                continue
            if job is not None and touched:
                if touched & changed:
                    # A mail of the same unit was recorded earlier in this group.
                    rows.write_submissions(s)
                    fresh = prior_versions(dbm.counting_versions(s, touched))
                    current = {k: v for k, v in current.items() if k not in touched} | fresh
                if self._stale(outcome, job[1], current) is not None and may_defer:
                    rnd.deferred |= touched
                    rnd.redo.append(mail.id)
                    continue
                outcome = self._redecide_if_stale(outcome, *job, current)
            if outcome.command is not None:
                # A command is recorded in a group of its own (see `Robot._decide_batch`):
                # what it reads and changes is then what the database holds.
                row = s.get(dbm.Mail, mail.id)
                assert row is not None  # read in this transaction
                self._apply_command(s, row, outcome, now)
                if outcome.action == "command":
                    message_id, from_addr = _headers(outcome)
                    dbm.note_headers(s, row, message_id=message_id, from_addr=from_addr)
                    dbm.mark_processed(s, row, now)
                    continue
                s.flush()
                mail = dbm.MailToRecord.of(row)  # as the command left it
            self._gather(s, rows, mail, outcome, now, counts, notes)
            changed |= self._touched(outcome)
        rows.settle(s)
        if not changed:
            return None
        return changed, prior_versions(dbm.counting_versions(s, changed))

    def _gather(
        self,
        s: dbm.Session,
        rows: _Rows,
        mail: dbm.MailToRecord,
        outcome: Outcome,
        now: datetime,
        counts: _Counts,
        notes: list[Note],
    ) -> None:
        """Add one outcome's rows to the group's: the rows a mail recorded alone would get."""
        rows.files.extend(
            {
                "mail_id": mail.id,
                "file_name": result.file,
                "format": result.format,
                "problems": [p.to_json() for p in result.all_problems()],
                "forms_count": len(result.forms),
            }
            for result in outcome.results
        )
        rows.files.extend(
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
        rows.submissions.extend(
            {
                "mail_id": mail.id,
                "unit_code": sub.unit_code,
                "form": sub.form,
                "file_name": sub.file_name,
                "file_sha256": mail.sha256,
                "received_at": mail.received_at,
                "late": sub.late,
                "awaiting_confirmation": sub.awaiting,
                "sent_by": sub.sent_by,
            }
            for sub in outcome.submissions
        )
        if outcome.awaiting_confirmation and outcome.unit and outcome.mail.from_addr:
            # Rare: through the ORM, in place (the unit's addresses are not gathered).
            dbm.add_unit_email(
                s,
                outcome.mail.from_addr,
                outcome.unit.code,
                confirmed=False,
                now=now,
                source="form-name",
            )
            rows.events.append(
                {
                    "kind": "awaiting-confirmation",
                    "at": now,
                    "mail_id": mail.id,
                    "unit_code": outcome.unit.code,
                    "detail": outcome.mail.from_addr,
                }
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
                rows.events.append(
                    {
                        "kind": "unreadable-file",
                        "at": now,
                        "mail_id": mail.id,
                        "unit_code": outcome.unit.code,
                        "detail": result.file,
                    }
                )
        if outcome.other_mail:
            subject = f" – “{outcome.mail.subject[:80]}”" if outcome.mail.subject else ""
            rows.events.append(
                {
                    "kind": "other-mail",
                    "at": now,
                    "mail_id": mail.id,
                    "detail": f"{outcome.mail.from_addr or '(không rõ người gửi)'}{subject}",
                }
            )
        if outcome.reply is not None:
            # The sender as noted on the row (`settle_mails` fills in a missing one).
            sender = (
                outcome.mail.from_addr
                if outcome.mail.from_addr and not mail.from_addr
                else mail.from_addr
            )
            self._gather_reply(rows, mail, sender, outcome.reply, now, counts, notes)
        if outcome.action == "quarantined":
            rows.decided.append(
                dbm.DecidedMail(
                    mail,
                    now,
                    *_headers(outcome),
                    quarantine_reason=outcome.reason or "quarantined",
                )
            )
        else:
            rows.decided.append(
                dbm.DecidedMail(
                    mail,
                    now,
                    *_headers(outcome),
                    unit_code=outcome.unit.code if outcome.unit else None,
                    awaiting_confirmation=outcome.needs_confirmation,
                    for_staff=outcome.for_staff and outcome.unit is not None,
                    excerpt=outcome.excerpt,
                )
            )
            if outcome.action == "ignored":
                notes.append(
                    (logging.INFO, "mail id=%s needs no answer: %s", (mail.id, outcome.reason))
                )
        notes.append(
            (
                logging.INFO,
                "mail id=%s %s unit=%s forms=%d reply=%s",
                (
                    mail.id,
                    outcome.action,
                    outcome.unit.code if outcome.unit else None,
                    len(outcome.submissions),
                    outcome.reply.kind if outcome.reply else None,
                ),
            )
        )

    def _queue_reply(self, s: dbm.Session, mail: dbm.Mail, reply: Reply) -> None:
        """Queue one automatic answer in the caller's transaction (an oversize mail's),
        unless the mail is old or this address already had its hourly share."""
        now = self.clock()
        rows = _Rows()
        notes: list[Note] = []
        counts = _Counts(
            s, now - timedelta(hours=1), {mail.id: dbm.reprocess_generation(s, mail.id)}, {reply.to}
        )
        self._gather_reply(rows, mail, mail.from_addr, reply, now, counts, notes)
        rows.write(s)
        _say(notes)

    def _gather_reply(
        self,
        rows: _Rows,
        mail: dbm.Mail | dbm.MailToRecord,
        from_addr: str | None,
        reply: Reply,
        now: datetime,
        counts: _Counts,
        notes: list[Note],
    ) -> None:
        """Add an automatic answer to the rows unless the mail is old or this address
        already had its hourly share (counted with the replies queued before it)."""
        max_age = self.config.inbox.max_reply_age_days
        generation = counts.generations.get(mail.id, 0)
        # Old mail (a first start on a used mailbox, a rebuilt folder, an APPEND with an old
        # date) is recorded and shown to staff, not answered. Once staff had it decided again
        # (`review assign`, `reprocess`), answering is their choice, whatever its age.
        if max_age and not generation and mail.received_at < now - timedelta(days=max_age):
            detail = json.dumps(
                {
                    "from": from_addr,
                    "subject": mail.subject,
                    "arrived_at": mail.received_at.isoformat(),
                    "max_days": max_age,
                    "kind": reply.kind,
                },
                ensure_ascii=False,
            )
            rows.events.append(
                {"kind": "reply-withheld-old", "at": now, "mail_id": mail.id, "detail": detail}
            )
            notes.append(
                (
                    logging.INFO,
                    "not answering mail id=%s: it arrived %s, over %d days ago",
                    (mail.id, mail.received_at.isoformat(), max_age),
                )
            )
            return
        limit = self.config.outgoing.max_auto_replies_per_hour
        to = reply.to
        if counts.replies_to(to) >= limit:
            rows.events.append(
                {"kind": "rate-limited", "at": now, "mail_id": mail.id, "detail": to}
            )
            notes.append(
                (
                    logging.WARNING,
                    "not answering mail id=%s: %s reached %d replies/hour",
                    (mail.id, to, limit),
                )
            )
            return
        counts.queued(to)
        rows.outgoing.append(
            {
                "kind": reply.kind,
                "message_id": reply.message_id,
                "to_addrs": [to],
                "subject": reply.subject,
                "raw": reply.raw,
                "mail_id": mail.id,
                "dedupe_key": f"reply:{mail.id}:{generation}",
                "now": now,
            }
        )

    def _touched(self, outcome: Outcome) -> set[Key]:
        """The (unit, form) pairs whose counting version an outcome may change or rely on."""
        if not outcome.submissions or outcome.unit is None:
            return set()
        keys: set[Key] = {(sub.unit_code, sub.form.form) for sub in outcome.submissions}
        return keys | {(outcome.unit.code, f) for f in self.campaign.form_codes}

    def _stale(
        self, outcome: Outcome, ctx: IntakeContext, current: dict[Key, PriorVersion]
    ) -> dict[Key, PriorVersion] | None:
        """The versions on file now, when they differ from those the mail was handed with
        for a (unit, form) pair its outcome changes or relies on; else None."""
        keys = self._touched(outcome)
        fresh = {k: current[k] for k in keys if k in current}
        if all(fresh.get(k) == ctx.versions_on_file.get(k) for k in keys):
            return None
        return fresh

    def _redecide_if_stale(
        self, outcome: Outcome, raw: bytes, ctx: IntakeContext, current: dict[Key, PriorVersion]
    ) -> Outcome:
        """Decide again, here, when a mail recorded meanwhile changed a version this one
        relies on (the receipt must say what it replaces); `current`: the versions now.

        Rare: a mail handed back to the pool in every round (see `Round`) and stale again.
        """
        fresh = self._stale(outcome, ctx, current)
        if fresh is None:
            return outcome
        keys = self._touched(outcome)
        versions, on_file = merged(ctx.versions_on_file, ctx.forms_on_file, keys, fresh)
        from mailbot.intake import process_mail  # the parsing stack: only when it comes to this

        return process_mail(raw, replace(ctx, versions_on_file=versions, forms_on_file=on_file))

    def _apply_command(
        self, s: dbm.Session, mail: dbm.Mail, outcome: Outcome, now: datetime
    ) -> None:
        """Carry out a staff command (or refuse it) and answer a staff address, in the
        transaction that marks the command mail processed: a restart never acts twice."""
        # Staff commands are rare: their modules (and the templates) load with the first one.
        from mailbot.staff.actions import carry_out
        from mailbot.staff.answer import compose_answer

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


def _headers(outcome: Outcome) -> tuple[str | None, str | None]:
    """The Message-ID and sender the parsed mail gives (noted when the row has none)."""
    return outcome.mail.message_id, outcome.mail.from_addr


def _say(notes: list[Note]) -> None:
    for level, message, args in notes:
        log.log(level, message, *args)
