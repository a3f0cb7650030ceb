"""Staff actions over the database: confirm a sender, assign, reject, reprocess, mark handled.

Each action runs inside the caller's write session and returns what it changed; the commands
only parse arguments and print. A refused action raises ReviewError with a Vietnamese message
(staff read it on their terminal) and changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from mailbot import db as dbm

# Mails in these states can be rejected (a decided mail, or one too large to download).
REJECTABLE = ("quarantined", "processed", "oversize")


class ReviewError(Exception):
    """The action cannot be done as asked (unknown mail or unit, wrong state)."""


@dataclass(frozen=True)
class Pending:
    """What waits for a person: quarantined mail, senders to confirm, units' mail to read."""

    quarantined: list[dbm.Mail]
    awaiting: list[dbm.Mail]
    forms: dict[int, list[str]]  # mail id -> forms received in it (for awaiting mails)
    unit_names: dict[str, str]
    # Units' mails without a form (a question, a cover letter) no one has marked handled.
    to_read: list[dbm.Mail] = field(default_factory=list)
    # Recorded but not answered: they reached the server over max_reply_age_days ago.
    unanswered_old: list[dbm.Mail] = field(default_factory=list)


@dataclass(frozen=True)
class Confirmed:
    """An address now confirmed for a unit, and how many waiting forms now count."""

    address: str
    unit_code: str
    unit_name: str
    forms_counted: int


@dataclass(frozen=True)
class Assigned:
    """A quarantined mail given to a unit and queued to be decided again."""

    mail_id: int
    unit_code: str
    unit_name: str


@dataclass(frozen=True)
class Rejected:
    """A mail set aside: its forms no longer count."""

    mail_id: int
    from_addr: str | None
    reason: str | None


@dataclass(frozen=True)
class Handled:
    """A unit's mail without a form that staff have read and dealt with."""

    mail_id: int
    from_addr: str | None
    by: str
    at: datetime


@dataclass(frozen=True)
class MailOutcome:
    """Where a mail stands after being decided again."""

    status: str
    quarantine_reason: str | None
    forms: list[str]


def pending(session: Session) -> Pending:
    """Everything a person must act on, oldest first."""
    awaiting = dbm.mails_awaiting_confirmation(session)
    return Pending(
        quarantined=dbm.mails_with_status(session, "quarantined"),
        awaiting=awaiting,
        forms={
            m.id: [
                sub.form if sub.unit_code == m.unit_code else f"{sub.form} của {sub.unit_code}"
                for sub in dbm.submissions_for_mail(session, m.id)
            ]
            for m in awaiting
        },
        unit_names={u.code: u.name for u in dbm.unit_register(session)},
        to_read=dbm.mails_for_staff(session),
        unanswered_old=dbm.mails_not_answered_for_age(session),
    )


def _mail(session: Session, mail_id: int) -> dbm.Mail:
    mail = dbm.get_mail(session, mail_id)
    if mail is None:
        raise ReviewError(f"không có thư mã {mail_id}")
    return mail


def _unit(session: Session, code: str) -> dbm.Unit:
    unit = dbm.get_unit(session, code)
    if unit is None:
        raise ReviewError(f"không có đơn vị mã {code!r} (xem mailbot status)")
    return unit


def confirm(
    session: Session,
    now: datetime,
    *,
    mail_id: int | None = None,
    email: str | None = None,
    unit_code: str | None = None,
) -> Confirmed:
    """Confirm a sender address for a unit: by a waiting mail, or by address and unit."""
    if mail_id is None and not (email and unit_code):
        raise ReviewError("cần --mail ID, hoặc --email ADDR cùng --unit CODE")
    if mail_id is not None:
        mail = _mail(session, mail_id)
        if not email and not unit_code and mail.unit_code and _sent_for_others(session, mail):
            # A registered unit sent forms naming other units: staff vouch for those forms,
            # the sender's address stays its own.
            subs = dbm.confirm_mail_forms(session, mail)
            dbm.add_event(
                session,
                "forms-confirmed",
                at=now,
                mail_id=mail.id,
                unit_code=mail.unit_code,
                detail=", ".join(f"{s.form} {s.unit_code}" for s in subs),
            )
            sender = _unit(session, mail.unit_code)
            return Confirmed((mail.from_addr or "").lower(), sender.code, sender.name, len(subs))
        addr = email or mail.from_addr
        code = unit_code or mail.unit_code
        if not addr:
            raise ReviewError(f"thư số {mail.id} không có địa chỉ người gửi")
        if not code:
            raise ReviewError(
                f"thư số {mail.id} chưa gắn với đơn vị nào; thêm --unit CODE "
                "hoặc dùng mailbot review assign"
            )
    else:
        assert email is not None and unit_code is not None
        addr, code = email, unit_code
    unit = _unit(session, code)
    count = dbm.confirm_sender(session, addr, unit.code, now)
    return Confirmed(addr.strip().lower(), unit.code, unit.name, count)


def _sent_for_others(session: Session, mail: dbm.Mail) -> bool:
    """The mail came from a registered unit and holds forms of other units awaiting staff."""
    return any(
        sub.awaiting_confirmation and sub.sent_by is not None
        for sub in dbm.submissions_for_mail(session, mail.id)
    )


def assign(session: Session, mail_id: int, unit_code: str, now: datetime) -> Assigned:
    """Give a quarantined mail to a unit (its sender confirmed) and queue it to be decided."""
    mail = _mail(session, mail_id)
    unit = _unit(session, unit_code)
    if mail.status != "quarantined":
        raise ReviewError(f"thư số {mail.id} không bị giữ lại (trạng thái {mail.status})")
    if mail.from_addr:
        dbm.add_unit_email(
            session, mail.from_addr, unit.code, confirmed=True, now=now, source="review"
        )
    dbm.add_event(
        session, "assigned", at=now, mail_id=mail.id, unit_code=unit.code, detail=mail.from_addr
    )
    dbm.reset_for_reprocess(session, mail, now)
    return Assigned(mail.id, unit.code, unit.name)


def reject(session: Session, mail_id: int, now: datetime, reason: str | None = None) -> Rejected:
    """Set a mail aside: its results are dropped and an unconfirmed sender is forgotten."""
    mail = _mail(session, mail_id)
    if mail.status not in REJECTABLE:
        raise ReviewError(f"thư số {mail.id} đang ở trạng thái {mail.status}, không loại được")
    addr = mail.from_addr
    if mail.awaiting_confirmation and addr:
        dbm.forget_unconfirmed_address(session, addr)
    dbm.reject(session, mail, now, detail=reason)
    return Rejected(mail.id, addr, reason)


def handled(session: Session, mail_id: int, now: datetime, by: str) -> Handled:
    """Mark a unit's mail without a form as read and dealt with: it leaves the lists."""
    mail = _mail(session, mail_id)
    if not mail.for_staff or mail.status != "processed":
        raise ReviewError(
            f"thư số {mail.id} không nằm trong danh sách thư cần cán bộ đọc (xem mailbot review)"
        )
    if mail.handled_at is not None:
        raise ReviewError(
            f"thư số {mail.id} đã được {mail.handled_by or 'cán bộ'} đánh dấu đã xử lý lúc "
            f"{mail.handled_at:%H:%M %d/%m/%Y} (giờ UTC)"
        )
    who = " ".join(by.split()) or "không rõ"
    dbm.mark_handled(session, mail, now, who)
    return Handled(mail.id, mail.from_addr, who, now)


def reprocess(session: Session, now: datetime, mail_ids: list[int] | None = None) -> list[int]:
    """Queue mails to be decided again: these ids, else those that failed processing.

    Raises ReviewError naming the unknown ids (and changes nothing) when some do not exist.
    """
    if mail_ids:
        mails = [dbm.get_mail(session, i) for i in mail_ids]
        unknown = [i for i, m in zip(mail_ids, mails, strict=True) if m is None]
        if unknown:
            raise ReviewError(f"không có thư mã {unknown}")
        chosen = [m for m in mails if m is not None]
    else:
        chosen = [
            m
            for m in dbm.mails_with_status(session, "quarantined")
            if m.quarantine_reason == "processing-failed"
        ]
    for mail in chosen:
        dbm.reset_for_reprocess(session, mail, now)
    return [m.id for m in chosen]


def mail_outcome(session: Session, mail_id: int) -> MailOutcome:
    """A mail's state and the forms recorded from it."""
    mail = _mail(session, mail_id)
    forms = [sub.form for sub in dbm.submissions_for_mail(session, mail.id)]
    return MailOutcome(mail.status, mail.quarantine_reason, forms)
