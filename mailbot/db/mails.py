"""Repository of mails and their read positions: every change of a mail's state happens here."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, case, delete, func, insert, select, update
from sqlalchemy.orm import Session

from mailbot.db.common import (
    _cap,
    _norm_addr,
    backoff_delay,
    claim_rows,
    normalize_message_id,
)
from mailbot.db.jobs import add_event
from mailbot.db.models import (
    Event,
    FileResult,
    Mail,
    MailboxKnown,
    MailboxState,
    Submission,
    utcnow,
)
from mailbot.db.submissions import confirm_submission, resolve_supersede
from parsers.model import Problem


def get_mailbox_state(session: Session, source: str) -> MailboxState | None:
    """The read position of one inbox, or None before its first pass."""
    return session.get(MailboxState, source)


def set_mailbox_state(
    session: Session, source: str, uidvalidity: int, last_uid: int, now: datetime | None = None
) -> MailboxState:
    """Record the read position; within the same UIDVALIDITY it never moves backwards."""
    now = now or utcnow()
    state = session.get(MailboxState, source)
    if state is None:
        state = MailboxState(
            source=source, uidvalidity=uidvalidity, last_uid=last_uid, updated_at=now
        )
        session.add(state)
    else:
        if state.uidvalidity == uidvalidity:
            state.last_uid = max(state.last_uid, last_uid)
        else:
            state.uidvalidity = uidvalidity
            state.last_uid = last_uid
        state.updated_at = now
    session.flush()
    return state


def first_contact(session: Session, source: str) -> bool:
    """Whether the robot has never met this mailbox: no read position, no mail recorded."""
    if session.get(MailboxState, source) is not None:
        return False
    return session.scalar(select(Mail.id).where(Mail.source == source).limit(1)) is None


def record_baseline(
    session: Session,
    source: str,
    *,
    uidvalidity: int | None,
    last_uid: int | None,
    known_refs: Iterable[str],
    now: datetime,
) -> None:
    """Note where a mailbox stood when first met: its read position and the mail it held.

    A Maildir has no UIDs: its position is (0, 0) and its files are listed as known.
    """
    set_mailbox_state(session, source, uidvalidity or 0, last_uid or 0, now)
    rows = [{"source": source, "ref": ref, "noted_at": now} for ref in dict.fromkeys(known_refs)]
    if rows:
        session.execute(insert(cast(Table, MailboxKnown.__table__)), rows)


# --------------------------------------------------------------------------- incoming mail


def find_received(
    session: Session,
    *,
    source: str,
    uidvalidity: int | None,
    uid: int | None,
    message_id: str | None = None,
    sha256: str | None = None,
) -> Mail | None:
    """The recorded mail with this identity: (source, UIDVALIDITY, UID), else Message-ID+hash."""
    if uid is not None:
        return session.scalars(
            select(Mail).where(
                Mail.source == source, Mail.uidvalidity == uidvalidity, Mail.uid == uid
            )
        ).first()
    if sha256 is None:
        return None
    # Same bytes means same Message-ID too, so the hash alone decides; the Message-ID is a
    # cheap indexed filter when present.
    query = select(Mail).where(Mail.source == source, Mail.uid.is_(None), Mail.sha256 == sha256)
    mid = normalize_message_id(message_id)
    if mid is not None:
        query = query.where(Mail.message_id == mid)
    return session.scalars(query.order_by(Mail.id)).first()


def is_known(session: Session, source: str, uidvalidity: int | None, uid: int) -> bool:
    """Whether the mail at this UID (within this UIDVALIDITY) is already recorded."""
    return find_received(session, source=source, uidvalidity=uidvalidity, uid=uid) is not None


def known_uids(
    session: Session, source: str, uidvalidity: int | None, uids: Iterable[int]
) -> set[int]:
    """Which of these UIDs (within this UIDVALIDITY) are already recorded: one query."""
    wanted = list(set(uids))
    if not wanted:
        return set()
    same_validity = (
        Mail.uidvalidity.is_(None) if uidvalidity is None else Mail.uidvalidity == uidvalidity
    )
    return set(
        session.scalars(
            select(Mail.uid).where(Mail.source == source, same_validity, Mail.uid.in_(wanted))
        )
    )


def known_by_message_id(
    session: Session, source: str, candidates: Iterable[tuple[str, int]]
) -> set[tuple[str, int]]:
    """The (Message-ID, size) pairs, as given, that match a recorded mail of the source.

    After a UIDVALIDITY change the same mail comes back under a new UID: this recognises it.
    """
    pairs = {(mid, size) for mid, size in candidates}
    wanted = list({m for m in (normalize_message_id(mid) for mid, _ in pairs) if m is not None})
    if not wanted:
        return set()
    recorded = {
        (mid, size)
        for mid, size in session.execute(
            select(Mail.message_id, Mail.size).where(
                Mail.message_id.in_(wanted), Mail.source == source
            )
        )
    }
    return {(mid, size) for mid, size in pairs if (normalize_message_id(mid), size) in recorded}


def known_source_refs(session: Session, source: str, refs: Iterable[str]) -> set[str]:
    """Which of these source handles (e.g. Maildir keys) belong to recorded mails, or to
    mail that was already there when the robot first met the mailbox."""
    wanted = list(set(refs))
    if not wanted:
        return set()
    known = {
        ref
        for ref in session.scalars(
            select(Mail.source_ref).where(Mail.source == source, Mail.source_ref.in_(wanted))
        )
        if ref is not None
    }
    known.update(
        session.scalars(
            select(MailboxKnown.ref).where(
                MailboxKnown.source == source, MailboxKnown.ref.in_(wanted)
            )
        )
    )
    return known


def record_received(
    session: Session,
    *,
    source: str,
    uidvalidity: int | None,
    uid: int | None,
    message_id: str | None,
    sha256: str,
    raw_path: str,
    size: int,
    from_addr: str | None,
    subject: str | None,
    received_at: datetime,
    status: str = "received",
    source_ref: str | None = None,
    fetched_at: datetime | None = None,
) -> tuple[Mail, bool]:
    """Record a stored raw mail as received: (mail, True), or (the known row, False).

    `received_at` is when the mail server received it; `fetched_at` when the robot read it.

    `source_ref`, the source's handle of the mail, is noted on a known row too: it is how
    the mail is found again to move it.
    """
    existing = find_received(
        session,
        source=source,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=message_id,
        sha256=sha256,
    )
    if existing is not None:
        if source_ref is not None and existing.source_ref != source_ref:
            existing.source_ref = source_ref
            session.flush()
        return existing, False
    if status not in ("received", "oversize", "ignored"):
        raise ValueError(f"a mail cannot arrive with status {status!r}")
    mail = Mail(
        source=source,
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=normalize_message_id(message_id),
        sha256=sha256,
        raw_path=raw_path,
        size=size,
        from_addr=_norm_addr(from_addr) if from_addr else None,
        subject=subject,
        received_at=received_at,
        fetched_at=fetched_at or received_at,
        status=status,
        attempts=0,
        awaiting_confirmation=False,
        moved=False,
        source_ref=source_ref,
    )
    session.add(mail)
    session.flush()
    return mail, True


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


def due_mails(
    session: Session, now: datetime, limit: int | None = None, *, after_id: int = 0
) -> list[Mail]:
    """Mails waiting to be processed: new ones, and retries whose time has come; oldest first.

    `after_id` and `limit` page through them (a backlog is never loaded at once).
    """
    query = (
        select(Mail)
        .where(
            Mail.status.in_(("received", "retry")),
            (Mail.next_attempt_at.is_(None)) | (Mail.next_attempt_at <= now),
            Mail.id > after_id,
        )
        .order_by(Mail.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def claim_mails(session: Session, ids: Iterable[int], holder: str, now: datetime) -> list[int]:
    """Claim due mails for deciding (received/retry -> processing) in one compare-and-set.

    The ids won; a mail another daemon claimed first is not among them.
    """
    return claim_rows(
        session,
        Mail,
        ids,
        [Mail.status.in_(("received", "retry"))],
        {"status": "processing", "claimed_at": now, "claimed_by": holder},
    )


def mail_claims(session: Session) -> list[tuple[int, str | None, datetime | None]]:
    """Every claimed mail as (id, holder, claimed_at)."""
    rows = session.execute(
        select(Mail.id, Mail.claimed_by, Mail.claimed_at).where(Mail.status == "processing")
    )
    return [(i, by, at) for i, by, at in rows]


def release_mail_claims(
    session: Session, ids: Iterable[int], holder: str | None = None
) -> list[int]:
    """Give claimed mails back to the queue (as they were before, due at once); the ids released.

    With `holder`, only the claims it holds. The attempt is not counted: nothing was decided.
    """
    wanted = list(ids)
    if not wanted:
        return []
    query = update(Mail).where(Mail.id.in_(wanted), Mail.status == "processing")
    if holder is not None:
        query = query.where(Mail.claimed_by == holder)
    released = session.scalars(
        query.values(
            status=case((Mail.attempts > 0, "retry"), else_="received"),
            claimed_at=None,
            claimed_by=None,
            next_attempt_at=None,
        )
        .returning(Mail.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.expire_all()
    return sorted(released)


def holds_claim(mail: Mail, holder: str) -> bool:
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


def mails_to_move(
    session: Session, source: str, limit: int | None = None, *, after_id: int = 0
) -> list[Mail]:
    """Decided mails of a source not yet moved (or flagged) on the server, oldest first;
    `after_id` and `limit` page through them."""
    query = (
        select(Mail)
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
    return list(session.scalars(query))


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


def mark_moved(session: Session, mail: Mail) -> None:
    """The mail was moved (or flagged) on the server after success."""
    mail.moved = True
    session.flush()


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
        session.execute(insert(cast(Table, FileResult.__table__)), values)


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
