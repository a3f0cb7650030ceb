"""Repository of decided mail recorded a group at a time: the mails read once, settled at once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.orm import Session, object_session

from mailbot.db.common import normalize_message_id
from mailbot.db.driver import fetch_all, run_many
from mailbot.db.jobs import add_events
from mailbot.db.models import Event, Mail


@dataclass(frozen=True)
class MailToRecord:
    """The columns of a mail that recording its decision reads (no ORM object: cheaper)."""

    id: int
    status: str
    claimed_by: str | None
    sha256: str
    received_at: datetime
    from_addr: str | None
    subject: str | None
    message_id: str | None
    unit_code: str | None
    awaiting_confirmation: bool
    for_staff: bool
    excerpt: str | None
    quarantine_reason: str | None

    @classmethod
    def of(cls, mail: Mail) -> MailToRecord:
        """The same columns of a loaded row, as they are now."""
        return cls(**{name: getattr(mail, name) for name in _COLUMNS})


_COLUMNS = tuple(f for f in MailToRecord.__dataclass_fields__)


@dataclass(frozen=True)
class DecidedMail:
    """What `settle_mails` records of one decided mail (see `mark_processed`)."""

    mail: MailToRecord
    now: datetime
    message_id: str | None = None  # from the parsed mail, kept when the row has none
    from_addr: str | None = None  # likewise
    unit_code: str | None = None
    awaiting_confirmation: bool = False
    for_staff: bool = False
    excerpt: str | None = None
    quarantine_reason: str | None = None  # set: quarantined instead of processed


_MAILS_WITH_ROUNDS = select(
    *(getattr(Mail, name) for name in _COLUMNS),
    select(func.count())
    .select_from(Event)
    .where(Event.mail_id == Mail.id, Event.kind == "reprocess")
    .correlate(Mail)
    .scalar_subquery(),
).where(Mail.id.in_(bindparam("b_ids", expanding=True)))


def mails_to_record(
    session: Session, mail_ids: Iterable[int]
) -> dict[int, tuple[MailToRecord, int]]:
    """Several mails by id with their `reprocess_generation`, in one query (those that exist).

    Pending ORM changes are flushed first (autoflush), so the columns are current.
    """
    ids = list(mail_ids)
    if not ids:
        return {}
    rows = fetch_all(session, _MAILS_WITH_ROUNDS, {"b_ids": ids})
    out: dict[int, tuple[MailToRecord, int]] = {}
    for *values, count in rows:
        mail = MailToRecord(*values)
        out[mail.id] = (mail, int(count or 0))
    return out


_SETTLE = (
    update(cast(Table, Mail.__table__))
    .where(Mail.id == bindparam("b_id"))
    .values(
        status=bindparam("b_status"),
        claimed_at=None,
        claimed_by=None,
        processed_at=bindparam("b_now"),
        next_attempt_at=None,
        unit_code=bindparam("b_unit_code"),
        awaiting_confirmation=bindparam("b_awaiting"),
        for_staff=bindparam("b_for_staff"),
        excerpt=bindparam("b_excerpt"),
        quarantine_reason=bindparam("b_reason"),
        message_id=bindparam("b_message_id"),
        from_addr=bindparam("b_from_addr"),
    )
)


def settle_mails(session: Session, decided: Sequence[DecidedMail]) -> None:
    """Record many decisions at once: each mail processed (as `mark_processed`) or
    quarantined (as `quarantine`, with its event), the headers noted (as `note_headers`).

    One executemany UPDATE for the mails; `Mail` objects of them the session holds are
    then expired (read again if looked at).
    """
    rows: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    for d in decided:
        mail = d.mail
        mid = (d.message_id and not mail.message_id and normalize_message_id(d.message_id)) or (
            mail.message_id
        )
        row = {
            "b_id": mail.id,
            "b_now": d.now,
            "b_message_id": mid,
            "b_from_addr": d.from_addr if d.from_addr and not mail.from_addr else mail.from_addr,
        }
        if d.quarantine_reason is not None:
            row |= {
                "b_status": "quarantined",
                "b_unit_code": mail.unit_code,
                "b_awaiting": mail.awaiting_confirmation,
                "b_for_staff": mail.for_staff,
                "b_excerpt": mail.excerpt,
                "b_reason": d.quarantine_reason,
            }
            events.append(
                {
                    "at": d.now,
                    "kind": "quarantined",
                    "mail_id": mail.id,
                    "unit_code": mail.unit_code,
                    "detail": d.quarantine_reason,
                }
            )
        else:
            row |= {
                "b_status": "processed",
                "b_unit_code": d.unit_code,
                "b_awaiting": d.awaiting_confirmation,
                "b_for_staff": d.for_staff,
                "b_excerpt": d.excerpt if d.for_staff else None,
                "b_reason": mail.quarantine_reason,
            }
        rows.append(row)
    if rows:
        run_many(session, _SETTLE, rows)  # ORM changes first: these are the last word
        for d in decided:
            loaded = session.identity_map.get(session.identity_key(Mail, d.mail.id))
            if loaded is not None and object_session(loaded) is session:
                session.expire(loaded)
    add_events(session, events)
