"""The one way a mail leaves: claim queued outbox rows, hand them to the sender, record outcomes.

Receipts, notices, reminders and digests all go through `deliver`. A row is claimed
(queued -> sending, with `claimed_at`) in a compare-and-set before it is sent, so two senders
(the daemon's pass and the campaign scheduler's thread, say) never send the same row. The
outcome is recorded the same way for every kind: sent (partial refusals noted as events, never
retried), a temporary failure back to the queue with capped back-off for days, a permanent one
final (an operator may queue it again). A claim whose sender died is put back in the queue:
the only possible duplicate is a mail the server accepted right before a kill -9, resent with
the same Message-ID. A sender that lives on never resends what the server accepted, even when
the database refuses the record for a while (SenderState).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.exc import DBAPIError

from mailbot import db as dbm
from mailbot.claims import Claimant, releasable
from mailbot.clock import Clock
from mailbot.config import OutgoingConfig
from mailbot.transport import (
    DeliveryError,
    PermanentFailure,
    Refused,
    Sender,
    TemporaryFailure,
)

log = logging.getLogger(__name__)

# One row is claimed at a time, so a claim lives for one SMTP transaction, each step of which
# is bounded by outgoing.timeout_seconds; a claim this old belongs to a dead sender.
CLAIM_TIMEOUT: Final = timedelta(minutes=30)
# Rows claimed in one transaction before they are sent one by one.
CLAIM_PAGE: Final = 20
# An alert about an SMTP outage waits for SMTP to come back, however long that takes.
ALERT_MAX_ATTEMPTS: Final = 1_000_000


@dataclass(frozen=True)
class _Attempt:
    """What the sender said about one row."""

    error: DeliveryError | None = None
    refused: Refused = field(default_factory=dict)


def _send(sender: Sender, raw: bytes, from_addr: str, recipients: list[str]) -> _Attempt:
    try:
        refused = sender.send(raw, from_addr, recipients) or {}
    except DeliveryError as exc:
        return _Attempt(error=exc)
    except OSError as exc:
        return _Attempt(error=TemporaryFailure(str(exc)))
    if refused and len(refused) >= len(recipients):
        # A sender that reports every recipient refused instead of raising: nothing went out.
        return _Attempt(error=PermanentFailure(f"all recipients refused: {refused}"))
    return _Attempt(refused=refused)


class SenderState:
    """What one process knows about its sending that the database may not know yet.

    `accepted`: rows the SMTP server accepted whose "sent" record could not be written (a
    locked database, a full disk). They are never handed to SMTP again by this process and
    their record is retried at every delivery until it sticks; their claim stays ours, and
    a live holder's claims are never taken (mailbot.claims), so no other process sends them.
    """

    def __init__(self, claimant: Claimant | None = None) -> None:
        self.claimant = claimant or Claimant.for_this_process()
        self.accepted: dict[int, tuple[datetime, Refused]] = {}
        self.in_flight: set[int] = set()
        self.lock = threading.Lock()


_WRITE_ERRORS = (DBAPIError, OSError)


def release_orphaned_claims(
    database: dbm.Database,
    claimed_before: datetime,
    state: SenderState | None = None,
    *,
    now: datetime | None = None,
    timeout: timedelta = CLAIM_TIMEOUT,
) -> list[int]:
    """Put back in the queue the claims whose sender is gone; the ids released.

    A holder known to be gone (a process of this host that no longer runs) loses its claims
    at once, one we cannot see after `timeout`; a claim without holder once it predates
    `claimed_before` (this process's start). A live holder's claims are left alone.
    """
    return _release_gone(database, state, now or claimed_before, timeout, claimed_before)


# The rows being sent as (id, holder, claimed_at), and the holders the database knows gone.
_Seen = tuple[list[tuple[int, str | None, datetime | None]], set[str]]


def _claims_seen(s: dbm.Session) -> _Seen:
    """The claims of the outbox and which of their holders are gone."""
    claims = dbm.outgoing_claims(s)
    return claims, dbm.gone_claimants(s, (by for _, by, _ in claims)) if claims else set()


def _release_gone(
    database: dbm.Database,
    state: SenderState | None,
    now: datetime,
    timeout: timedelta,
    held_before: datetime | None,
    seen: _Seen | None = None,
) -> list[int]:
    """`release_orphaned_claims`; `seen`: the claims and the holders gone, when just read."""
    me = state.claimant if state is not None else Claimant.for_this_process()
    if seen is None:
        # Looked at in a read transaction: the writer lock only when there is something to free.
        with database.session(write=False) as s:
            seen = _claims_seen(s)
    claims, gone = seen
    ids = releasable(claims, me, now, timeout, held_before=held_before, gone=gone)
    if not ids:
        return []
    with database.session() as s:  # judged again under the lock: a claim may have moved
        claims = dbm.outgoing_claims(s)
        ids = releasable(claims, me, now, timeout, held_before=held_before, gone=gone)
        released = dbm.release_claims(s, ids=ids) if ids else []
    if released:
        log.warning("outbox rows %s were claimed by a sender that died: queued again", released)
    return released


def _record_accepted(database: dbm.Database, state: SenderState, clock: Clock) -> int:
    """Write the pending "sent" records; how many are still pending (the rest failed again)."""
    with state.lock:
        pending = sorted(state.accepted.items())
    for outbox_id, (_at, refused) in pending:
        try:
            with database.session() as s:
                row = dbm.get_outbox(s, outbox_id)
                if row is not None and row.status == "sending":
                    dbm.mark_sent(s, row, clock())
                    dbm.record_refused(s, row.mail_id, refused, clock())
        except _WRITE_ERRORS as exc:
            log.warning(
                "outbox row %s: SMTP accepted it, recording still fails: %s", outbox_id, exc
            )
            break
        with state.lock:
            state.accepted.pop(outbox_id, None)
        log.info('outbox row %s: the delayed "sent" record is written', outbox_id)
    with state.lock:
        return len(state.accepted)


def deliver(
    database: dbm.Database,
    sender: Sender,
    outgoing: OutgoingConfig,
    clock: Clock,
    *,
    ids: Iterable[int] | None = None,
    after_each: Callable[[], None] | None = None,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
    state: SenderState | None = None,
    on_attempt: Callable[[DeliveryError | None], None] | None = None,
) -> tuple[int, int]:
    """Send the due outbox rows (only `ids` when given); returns (sent, failed).

    Each row is claimed, sent and its outcome committed before the next; `after_each` runs
    after every committed outcome (the crash tests kill the process there). A row the server
    accepted whose record cannot be written stays in `state` (see SenderState) and ends
    this delivery: the database is not writable, so nothing more is sent now. `on_attempt`
    hears each failure and the first of a run of successes (None: the server took it), for
    the operator alerts (whose every call is a write transaction); alerts are retried until
    they go (one about an SMTP outage can only go after it).
    """
    if on_attempt is not None:
        on_attempt = _changes_only(on_attempt)
    shared = state is not None
    state = state or SenderState()
    if _record_accepted(database, state, clock):
        return 0, 0
    now = clock()
    with state.lock:
        busy = set(state.in_flight) | set(state.accepted)
    # One read transaction for what a round looks at (it runs every few mails decided):
    # the claims, and the rows due unless some claim goes back to the queue below.
    with database.session(write=False) as s:
        seen = _claims_seen(s)
        due = dbm.due_outgoing_ids(s, now, ids)
    released = _release_gone(database, state, now, claim_timeout, None, seen)
    own: list[int] = []
    if shared:
        # The process's own claims that none of its threads is sending: a pass that
        # failed between claiming and recording. (Only the process-wide state knows.)
        token = state.claimant.token
        own = [i for i, by, _ in seen[0] if by == token and i not in busy and i not in released]
        if own:
            with database.session() as s:
                dbm.release_claims(s, ids=own, holder=token)
    if released or own:
        with database.session(write=False) as s:
            due = dbm.due_outgoing_ids(s, now, ids)
    due = [i for i in due if i not in busy]
    sent = failed = 0
    for start in range(0, len(due), CLAIM_PAGE):
        # A page is claimed in one transaction (one commit, not one per row); its rows are
        # then sent and recorded one by one. Rows of the page not sent go back at the end.
        with database.session() as s:
            won = dbm.claim_outgoing(
                s, due[start : start + CLAIM_PAGE], clock(), state.claimant.token
            )
            page = dbm.outgoing_to_send(s, won)
            with state.lock:
                state.in_flight.update(won)
        left = set(won)
        try:
            for item in page:
                left.discard(item.id)
                outcome = _deliver_one(database, sender, outgoing, clock, state, item, on_attempt)
                if outcome == "unrecorded":
                    # Not writable: nothing more is sent now (see SenderState).
                    return sent + 1 if item.id in state.accepted else sent, failed
                sent += outcome == "sent"
                failed += outcome == "failed"
                if after_each is not None:
                    after_each()
        finally:
            with state.lock:
                state.in_flight.difference_update(left)
            if left:
                with contextlib.suppress(*_WRITE_ERRORS), database.session() as s:
                    dbm.release_claims(s, ids=sorted(left), holder=state.claimant.token)
    return sent, failed


def _changes_only(
    hear: Callable[[DeliveryError | None], None],
) -> Callable[[DeliveryError | None], None]:
    """`hear`, told every failure but a success only after a failure or first: a success
    after a success changes nothing."""
    last_ok = [False]

    def heard(error: DeliveryError | None) -> None:
        if error is None and last_ok[0]:
            return
        last_ok[0] = error is None
        hear(error)

    return heard


def _deliver_one(
    database: dbm.Database,
    sender: Sender,
    outgoing: OutgoingConfig,
    clock: Clock,
    state: SenderState,
    item: dbm.Sendable,
    on_attempt: Callable[[DeliveryError | None], None] | None,
) -> str:
    """Send one claimed row and record the outcome: "sent", "failed", "gone" (the row was
    deleted meanwhile) or "unrecorded" (the database is not writable)."""
    outbox_id = item.id
    try:
        try:
            attempt = _send(sender, item.raw, outgoing.from_address, item.recipients)
        except BaseException:
            # A bug, not a delivery outcome: give the row back rather than strand the claim.
            with database.session() as s:
                dbm.release_claims(s, ids=[outbox_id])
            raise
        if attempt.error is None:
            with state.lock:
                state.accepted[outbox_id] = (clock(), attempt.refused)
        try:
            if attempt.error is None:
                recorded = _record_sent(
                    database, state.claimant.token, item, attempt.refused, clock()
                )
                if not recorded:
                    with state.lock:
                        state.accepted.pop(outbox_id, None)
                    return "gone"
            else:
                with database.session() as s:
                    row = dbm.get_outbox(s, outbox_id)
                    if row is None:
                        return "gone"
                    dbm.mark_send_failed(
                        s,
                        row,
                        str(attempt.error),
                        clock(),
                        temporary=isinstance(attempt.error, TemporaryFailure),
                        max_attempts=ALERT_MAX_ATTEMPTS
                        if row.kind == "alert"
                        else outgoing.max_attempts,
                        give_up_after=timedelta(days=outgoing.give_up_after_days),
                        max_delay_seconds=outgoing.retry_max_interval_minutes * 60,
                    )
                    log.warning("sending %s %s failed: %s", row.kind, row.message_id, attempt.error)
        except _WRITE_ERRORS as exc:
            if attempt.error is None:
                log.error(
                    "outbox row %s was accepted by the SMTP server but cannot be recorded "
                    "(%s): kept in memory, never sent again, recorded when possible",
                    outbox_id,
                    exc,
                )
            else:
                log.error("outbox row %s: the failure cannot be recorded: %s", outbox_id, exc)
            return "unrecorded"
        with state.lock:
            state.accepted.pop(outbox_id, None)
        if on_attempt is not None:
            on_attempt(attempt.error)
        return "sent" if attempt.error is None else "failed"
    finally:
        with state.lock:
            state.in_flight.discard(outbox_id)


def _record_sent(
    database: dbm.Database, holder: str, item: dbm.Sendable, refused: Refused, now: datetime
) -> bool:
    """Record that the server accepted `item` (with its refusals); False if the row is gone.

    One UPDATE while the row is still our claim, as it nearly always is, in a transaction
    of its own without an ORM session (one per mail sent, see `dbm.record_sent_alone`). A
    claim released meanwhile (judged orphaned) is recorded sent all the same: the server
    has the mail.
    """
    if not refused and dbm.record_sent_alone(database, item.id, now, holder):
        log.info("sent %s %s to %s", item.kind, item.message_id, ", ".join(item.recipients))
        return True
    with database.session() as s:
        if not dbm.record_sent(s, item.id, now, holder):
            row = dbm.get_outbox(s, item.id)
            if row is None:
                return False
            log.warning("outbox row %s was sent while no longer claimed by this sender", item.id)
            dbm.mark_sent(s, row, now)
        if refused:
            dbm.record_refused(s, item.mail_id, refused, now)
    log.info("sent %s %s to %s", item.kind, item.message_id, ", ".join(item.recipients))
    return True
