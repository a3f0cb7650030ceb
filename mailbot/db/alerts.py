"""Repository of operator alert state: one row per watched channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from mailbot.db.models import AlertState, Mail, Outbox


def alert_state(session: Session, channel: str, now: datetime) -> AlertState:
    """The state row of a channel, created (working) on first use."""
    row = session.get(AlertState, channel)
    if row is None:
        row = AlertState(channel=channel, last_seen_id=0, updated_at=now)
        session.add(row)
        session.flush()
    return row


def quarantined_ids(session: Session) -> list[int]:
    """Ids of the mails now in quarantine, oldest first."""
    return list(
        session.scalars(select(Mail.id).where(Mail.status == "quarantined").order_by(Mail.id))
    )


def max_mail_id(session: Session) -> int:
    """The highest mail id recorded (0 for none)."""
    return int(session.scalar(select(func.max(Mail.id))) or 0)


def hurry_queued(session: Session, kind: str, now: datetime) -> int:
    """Make every queued outgoing mail of a kind due now (after an outage); how many."""
    result = session.execute(
        update(Outbox)
        .where(Outbox.kind == kind, Outbox.status == "queued")
        .values(next_attempt_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)
