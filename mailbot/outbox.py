"""The one way a mail leaves: claim queued outbox rows, hand them to the sender, record outcomes.

Receipts, notices, reminders and digests all go through `deliver`. A row is claimed
(queued -> sending, with `claimed_at`) in a compare-and-set before it is sent, so two senders
(the daemon's pass and the campaign scheduler's thread, say) never send the same row. The
outcome is recorded the same way for every kind: sent (partial refusals noted as events, never
retried), a temporary failure back to the queue with back-off, a permanent one final. A claim
whose sender died is put back in the queue: the only possible duplicate is a mail the server
accepted right before a kill -9, resent with the same Message-ID.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from mailbot import db as dbm
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


def release_orphaned_claims(database: dbm.Database, claimed_before: datetime) -> list[int]:
    """Put back in the queue every claim made before a moment; the ids released.

    For a process that holds the data directory lock (the only one that sends): claims older
    than its start were left by a process that died between claiming and recording.
    """
    with database.session() as s:
        released = dbm.release_claims(s, claimed_before=claimed_before)
    if released:
        log.warning("outbox rows %s were claimed by a sender that died: queued again", released)
    return released


def deliver(
    database: dbm.Database,
    sender: Sender,
    outgoing: OutgoingConfig,
    clock: Clock,
    *,
    ids: Iterable[int] | None = None,
    after_each: Callable[[], None] | None = None,
    claim_timeout: timedelta = CLAIM_TIMEOUT,
    on_attempt: Callable[[DeliveryError | None], None] | None = None,
) -> tuple[int, int]:
    """Send the due outbox rows (only `ids` when given); returns (sent, failed).

    Each row is claimed, sent and its outcome committed before the next; `after_each` runs
    after every committed outcome (the crash tests kill the process there). `on_attempt`
    hears each attempt's outcome (None: the server took it), for the operator alerts.
    Alerts are retried until they go: one about an SMTP outage can only go after it.
    """
    now = clock()
    with database.session() as s:
        stale = dbm.release_claims(s, claimed_before=now - claim_timeout)
        due = dbm.due_outgoing_ids(s, now, ids)
    if stale:
        log.warning("outbox rows %s were claimed over %s ago: queued again", stale, claim_timeout)
    sent = failed = 0
    for outbox_id in due:
        with database.session() as s:
            if not dbm.claim_outgoing(s, [outbox_id], clock()):
                continue  # another sender has it, or it is no longer queued
            row = dbm.get_outbox(s, outbox_id)
            if row is None:
                continue
            raw, recipients = row.raw, row.recipients
        try:
            attempt = _send(sender, raw, outgoing.from_address, recipients)
        except BaseException:
            # A bug, not a delivery outcome: give the row back rather than strand the claim.
            with database.session() as s:
                dbm.release_claims(s, ids=[outbox_id])
            raise
        with database.session() as s:
            row = dbm.get_outbox(s, outbox_id)
            if row is None:
                continue
            if attempt.error is None:
                dbm.mark_sent(s, row, clock())
                dbm.record_refused(s, row, attempt.refused, clock())
                sent += 1
                log.info("sent %s %s to %s", row.kind, row.message_id, row.to_addrs)
            else:
                dbm.mark_send_failed(
                    s,
                    row,
                    str(attempt.error),
                    clock(),
                    temporary=isinstance(attempt.error, TemporaryFailure),
                    max_attempts=ALERT_MAX_ATTEMPTS
                    if row.kind == "alert"
                    else outgoing.max_attempts,
                )
                failed += 1
                log.warning("sending %s %s failed: %s", row.kind, row.message_id, attempt.error)
        if on_attempt is not None:
            on_attempt(attempt.error)
        if after_each is not None:
            after_each()
    return sent, failed
