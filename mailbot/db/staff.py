"""Repository of used staff action codes: each one acts once."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot.db.models import StaffToken


def token_used(session: Session, digest: str) -> StaffToken | None:
    """The record of this code's earlier use, if it was used."""
    return session.scalars(select(StaffToken).where(StaffToken.digest == digest)).first()


def record_token_use(
    session: Session,
    digest: str,
    *,
    at: datetime,
    actor: str,
    kind: str,
    target_mail_id: int | None,
    command_mail_id: int,
) -> StaffToken:
    """Note that a code acted (in the transaction that carries out its action)."""
    row = StaffToken(
        digest=digest,
        used_at=at,
        actor=actor,
        kind=kind,
        target_mail_id=target_mail_id,
        command_mail_id=command_mail_id,
    )
    session.add(row)
    session.flush()
    return row
