"""Repository of mails: every change of a mail's state happens here (arrival: db/received.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, NamedTuple, Protocol, cast

from sqlalchemy import Table, bindparam, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from mailbot.db.common import (
    _cap,
    _norm_addr,
    backoff_delay,
    core,
    normalize_message_id,
    unlocked_ids,
)
from mailbot.db.driver import run_many
from mailbot.db.jobs import add_event
from mailbot.db.models import (
    Event,
    FileResult,
    Mail,
    Submission,
)
from mailbot.db.submissions import confirm_submission, resolve_supersede
from parsers.model import Problem


def note_headers(
    session: Session, mail: Mail, *, message_id: str | None, from_addr: str | None
) -> None:
    """Fill in what the listing did not give (Message-ID, sender) from the parsed mail."""
    if message_id and not mail.message_id:
        mail.message_id = normalize_message_id(message_id)
    if from_addr and not mail.from_addr:
        # No From in the listing (only Sender:): record whom the mail came from.
        mail.from_addr = from_addr
    session.flush()


def get_mail(session: Session, mail_id: int) -> Mail | None:
    """One mail by id."""
    return session.get(Mail, mail_id)


def find_mails_by_message_id(session: Session, message_id: str) -> list[Mail]:
    """Every recorded mail carrying this Message-ID (any source)."""
    mid = normalize_message_id(message_id)
    return list(session.scalars(select(Mail).where(Mail.message_id == mid).order_by(Mail.id)))


class DueMail(NamedTuple):
    """What deciding a due mail needs of its row."""

    id: int
    raw_path: str
    received_at: datetime
    from_addr: str | None


_MAILS = cast(Table, Mail.__table__)
# Built once: the deciding loop asks a page at a time, and the claims are one statement each.
_DUE = (
    select(_MAILS.c.id, _MAILS.c.raw_path, _MAILS.c.received_at, _MAILS.c.from_addr)
    .where(
        _MAILS.c.status.in_(("received", "retry")),
        _MAILS.c.next_attempt_at.is_(None)
        | (_MAILS.c.next_attempt_at <= bindparam("b_now", type_=_MAILS.c.next_attempt_at.type)),
        _MAILS.c.id > bindparam("b_after"),
    )
    .order_by(_MAILS.c.id)
)
_DUE_PAGE = _DUE.limit(bindparam("b_limit"))


def due_mails(
    session: Session, now: datetime, limit: int | None = None, *, after_id: int = 0
) -> list[DueMail]:
    """Mails waiting to be processed: new ones, and retries whose time has come; oldest first.

    `after_id` and `limit` page through them (a backlog is never loaded at once).
    """
    params: dict[str, Any] = {"b_now": now, "b_after": after_id}
    if limit is not None:
        params["b_limit"] = limit
    rows = core(session).execute(_DUE if limit is None else _DUE_PAGE, params)
    return [DueMail(*row) for row in rows]


_CLAIM_MAILS = (
    update(_MAILS)
    .where(
        _MAILS.c.id.in_(bindparam("b_ids", expanding=True)),
        _MAILS.c.status.in_(("received", "retry")),
    )
    .values(
        status="processing",
        claimed_at=bindparam("b_now", type_=_MAILS.c.claimed_at.type),
        claimed_by=bindparam("b_holder"),
    )
    .returning(_MAILS.c.id)
)


def claim_mails(session: Session, ids: Iterable[int], holder: str, now: datetime) -> list[int]:
    """Claim due mails for deciding (received/retry -> processing) in one compare-and-set.

    The ids won; a mail another daemon claimed first is not among them.
    """
    wanted = list(ids)
    if not wanted:
        return []
    free = unlocked_ids(
        session, Mail.id, [Mail.id.in_(wanted), Mail.status.in_(("received", "retry"))]
    )
    if free is not None:  # PostgreSQL: rows another daemon is claiming are skipped
        wanted = free
        if not wanted:
            return []
    params = {"b_ids": wanted, "b_now": now, "b_holder": holder}
    won = list(core(session).execute(_CLAIM_MAILS, params).scalars())
    session.expire_all()
    return sorted(won)


def mail_claims(session: Session) -> list[tuple[int, str | None, datetime | None]]:
    """Every claimed mail as (id, holder, claimed_at)."""
    rows = session.execute(
        select(Mail.id, Mail.claimed_by, Mail.claimed_at).where(Mail.status == "processing")
    )
    return [(i, by, at) for i, by, at in rows]


_RELEASE_MAILS = (
    update(_MAILS)
    .where(_MAILS.c.id.in_(bindparam("b_ids", expanding=True)), _MAILS.c.status == "processing")
    .values(
        status=case((_MAILS.c.attempts > 0, "retry"), else_="received"),
        claimed_at=None,
        claimed_by=None,
        next_attempt_at=None,
    )
    .returning(_MAILS.c.id)
)
_RELEASE_MAILS_OF = _RELEASE_MAILS.where(_MAILS.c.claimed_by == bindparam("b_holder"))


def release_mail_claims(
    session: Session, ids: Iterable[int], holder: str | None = None
) -> list[int]:
    """Give claimed mails back to the queue (as they were before, due at once); the ids released.

    With `holder`, only the claims it holds. The attempt is not counted: nothing was decided.
    """
    wanted = list(ids)
    if not wanted:
        return []
    if holder is None:
        rows = core(session).execute(_RELEASE_MAILS, {"b_ids": wanted})
    else:
        rows = core(session).execute(_RELEASE_MAILS_OF, {"b_ids": wanted, "b_holder": holder})
    released = list(rows.scalars())
    session.expire_all()
    return sorted(released)


class _Claimed(Protocol):
    """A mail row as loaded or as read for recording (mailbot.db.decided.MailToRecord)."""

    @property
    def status(self) -> str: ...

    @property
    def claimed_by(self) -> str | None: ...


def holds_claim(mail: _Claimed, holder: str) -> bool:
    """Whether this holder's claim on the mail still stands (no one else decided it)."""
    return mail.status == "processing" and mail.claimed_by == holder


def _unclaim(mail: Mail) -> None:
    mail.claimed_at = None
    mail.claimed_by = None


def mails_with_status(session: Session, status: str) -> list[Mail]:
    """Every mail in one status, oldest first (e.g. the quarantine for staff)."""
    return list(session.scalars(select(Mail).where(Mail.status == status).order_by(Mail.id)))


def mails_not_answered_for_age(session: Session) -> list[Mail]:
    """Mails recorded but not answered because they arrived too long ago, that staff have not
    handled since (had decided again, or rejected) and that are not quarantined."""
    staff_acted = (
        select(Event.id)
        .where(Event.mail_id == Mail.id, Event.kind.in_(("reprocess", "rejected")))
        .exists()
    )
    withheld = select(Event.mail_id).where(Event.kind == "reply-withheld-old").scalar_subquery()
    return list(
        session.scalars(
            select(Mail)
            # Quarantined mail is listed as such; assigning it answers it.
            .where(Mail.id.in_(withheld), ~staff_acted, Mail.status != "quarantined")
            .order_by(Mail.id)
        )
    )


class MailToMove(NamedTuple):
    """A decided mail still to move on the server: its id and how the source finds it."""

    id: int
    ref: str | None  # the source's handle (UID as text, Maildir key); None: nothing to move
    uidvalidity: int | None


def mails_to_move(
    session: Session, source: str, limit: int | None = None, *, after_id: int = 0
) -> list[MailToMove]:
    """Decided mails of a source not yet moved (or flagged) on the server, oldest first;
    `after_id` and `limit` page through them. Plain rows: moving loads no ORM objects."""
    query = (
        select(Mail.id, Mail.source_ref, Mail.uid, Mail.uidvalidity)
        .where(
            Mail.source == source,
            Mail.moved.is_(False),
            Mail.status.in_(("processed", "quarantined")),
            Mail.id > after_id,
        )
        .order_by(Mail.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return [
        MailToMove(mail_id, ref or (str(uid) if uid is not None else None), uidvalidity)
        for mail_id, ref, uid, uidvalidity in session.execute(query)
    ]


def reprocess_generation(session: Session, mail_id: int) -> int:
    """How often staff had this mail reprocessed: each round may answer once."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(Event)
            .where(Event.mail_id == mail_id, Event.kind == "reprocess")
        )
        or 0
    )


def assigned_units(session: Session, mail_ids: Iterable[int]) -> dict[int, str | None]:
    """The unit staff last assigned each mail to (`mailbot review assign`), in one query."""
    out: dict[int, str | None] = {}
    rows = session.execute(
        select(Event.mail_id, Event.unit_code)
        .where(Event.mail_id.in_(list(mail_ids)), Event.kind == "assigned")
        .order_by(Event.id)
    )
    for mail_id, unit_code in rows:
        if mail_id is not None:
            out[mail_id] = unit_code  # ascending ids: the last one wins
    return out


def mark_processed(
    session: Session,
    mail: Mail,
    now: datetime,
    *,
    unit_code: str | None = None,
    awaiting_confirmation: bool = False,
    for_staff: bool = False,
    excerpt: str | None = None,
) -> None:
    """The mail was understood and answered (in the same transaction as its results).

    `for_staff`: a unit's mail without a form, listed for staff to read until handled.
    """
    mail.status = "processed"
    _unclaim(mail)
    mail.processed_at = now
    mail.next_attempt_at = None
    mail.unit_code = unit_code
    mail.awaiting_confirmation = awaiting_confirmation
    mail.for_staff = for_staff
    mail.excerpt = excerpt if for_staff else None
    session.flush()


def mails_for_staff(session: Session) -> list[Mail]:
    """Units' mails without a form that no one has marked handled yet, oldest first."""
    return list(
        session.scalars(
            select(Mail)
            .where(
                Mail.for_staff.is_(True),
                Mail.handled_at.is_(None),
                Mail.status == "processed",
            )
            .order_by(Mail.id)
        )
    )


def mark_handled(session: Session, mail: Mail, now: datetime, by: str) -> None:
    """Staff read a listed mail and dealt with it (`mailbot review handled`): recorded who/when."""
    mail.handled_at = now
    mail.handled_by = by
    add_event(session, "handled", at=now, mail_id=mail.id, unit_code=mail.unit_code, detail=by)
    session.flush()


def mark_failed(
    session: Session,
    mail: Mail,
    error: str,
    now: datetime,
    max_attempts: int,
    base_seconds: float,
) -> None:
    """Processing failed: retry later with exponential back-off, quarantine after the last try."""
    mail.attempts = (mail.attempts or 0) + 1
    mail.last_error = _cap(error)
    if mail.attempts >= max_attempts:
        quarantine(session, mail, "processing-failed", now, detail=mail.last_error)
        return
    mail.status = "retry"
    _unclaim(mail)
    mail.next_attempt_at = now + backoff_delay(mail.attempts, base_seconds)
    session.flush()


def quarantine(
    session: Session, mail: Mail, reason: str, now: datetime, *, detail: str | None = None
) -> None:
    """Set a mail aside for staff (no more automatic attempts) and tell the digest."""
    mail.status = "quarantined"
    _unclaim(mail)
    mail.quarantine_reason = reason
    mail.next_attempt_at = None
    mail.processed_at = now
    add_event(
        session,
        "quarantined",
        at=now,
        mail_id=mail.id,
        unit_code=mail.unit_code,
        detail=f"{reason}: {detail}" if detail else reason,
    )


def mark_moved(session: Session, mail_ids: Iterable[int]) -> None:
    """These mails were moved (or flagged) on the server after success: one UPDATE."""
    ids = list(mail_ids)
    if ids:
        session.execute(update(Mail).where(Mail.id.in_(ids)).values(moved=True))


def confirm_awaiting(session: Session, from_addr: str, unit_code: str) -> list[Mail]:
    """Staff confirmed the sender: its mails for this unit no longer wait; returns them."""
    mails = list(
        session.scalars(
            select(Mail).where(
                Mail.from_addr == _norm_addr(from_addr),
                Mail.unit_code == unit_code,
                Mail.awaiting_confirmation.is_(True),
            )
        )
    )
    for mail in mails:
        mail.awaiting_confirmation = False
    session.flush()
    return mails


def reject(session: Session, mail: Mail, now: datetime, *, detail: str | None = None) -> None:
    """Staff rejected a mail (`mailbot review reject`): its results go, it is never answered."""
    clear_mail_results(session, mail.id)
    mail.status = "ignored"
    mail.awaiting_confirmation = False
    mail.quarantine_reason = "rejected"
    mail.next_attempt_at = None
    add_event(session, "rejected", at=now, mail_id=mail.id, unit_code=mail.unit_code, detail=detail)
    session.flush()


def reset_for_reprocess(session: Session, mail: Mail, now: datetime) -> None:
    """Make a mail due again (`mailbot reprocess`): its earlier results are removed first."""
    clear_mail_results(session, mail.id)
    mail.status = "received"
    mail.attempts = 0
    mail.next_attempt_at = None
    mail.last_error = None
    mail.quarantine_reason = None
    mail.processed_at = None
    mail.for_staff = False
    add_event(session, "reprocess", at=now, mail_id=mail.id, unit_code=mail.unit_code)


def clear_mail_results(session: Session, mail_id: int) -> None:
    """Delete a mail's file results and submissions, restoring what they had superseded."""
    touched = {
        (u, f)
        for u, f in session.execute(
            select(Submission.unit_code, Submission.form).where(Submission.mail_id == mail_id)
        )
    }
    session.execute(delete(Submission).where(Submission.mail_id == mail_id))
    session.execute(delete(FileResult).where(FileResult.mail_id == mail_id))
    session.expire_all()
    for unit_code, form in touched:
        resolve_supersede(session, unit_code, form)
    session.flush()


# --------------------------------------------------------------------------- results of a mail


def add_file_result(
    session: Session,
    *,
    mail_id: int,
    file_name: str,
    format: str,
    problems: Iterable[Problem | dict[str, Any]] = (),
    forms_count: int = 0,
) -> FileResult:
    """Record what became of one attachment, readable or not."""
    plist = [p.to_json() if isinstance(p, Problem) else dict(p) for p in problems]
    row = FileResult(
        mail_id=mail_id,
        file_name=file_name,
        format=format,
        problems_json=json.dumps(plist, ensure_ascii=False),
        forms_count=forms_count,
    )
    session.add(row)
    session.flush()
    return row


def add_file_results(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """`add_file_result` for many attachments at once (one executemany, no ORM objects).

    Each row has the keyword arguments of `add_file_result`.
    """
    values = [
        {
            "mail_id": r["mail_id"],
            "file_name": r["file_name"],
            "format": r["format"],
            "problems_json": json.dumps(
                [p.to_json() if isinstance(p, Problem) else dict(p) for p in r.get("problems", ())],
                ensure_ascii=False,
            ),
            "forms_count": r.get("forms_count", 0),
        }
        for r in rows
    ]
    if values:
        run_many(session, _INSERT_FILE_RESULT, values)


_INSERT_FILE_RESULT = insert(cast(Table, FileResult.__table__))


def file_results_for_mail(session: Session, mail_id: int) -> list[FileResult]:
    """The per-attachment results of one mail, in the order they were recorded."""
    return list(
        session.scalars(
            select(FileResult).where(FileResult.mail_id == mail_id).order_by(FileResult.id)
        )
    )


def confirm_mail_forms(session: Session, mail: Mail) -> list[Submission]:
    """Staff confirmed the forms a registered unit sent for other units: they now count."""
    subs = list(
        session.scalars(
            select(Submission).where(
                Submission.mail_id == mail.id,
                Submission.awaiting_confirmation.is_(True),
                Submission.sent_by.is_not(None),
            )
        )
    )
    for sub in subs:
        confirm_submission(session, sub)
    mail.awaiting_confirmation = False
    session.flush()
    return subs
