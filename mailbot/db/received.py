"""Mail as it arrives: read positions, recognising recorded mail, recording new mail."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Integer, Table, bindparam, case, insert, select, update
from sqlalchemy.orm import Session

from mailbot.db.common import _norm_addr, core, normalize_message_id
from mailbot.db.models import Mail, MailboxKnown, MailboxState, utcnow


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


_ADVANCE = (
    update(cast(Table, MailboxState.__table__))
    .where(MailboxState.source == bindparam("b_source"))
    .values(
        last_uid=case(
            (
                (MailboxState.uidvalidity == bindparam("b_v", type_=Integer))
                & (MailboxState.last_uid > bindparam("b_uid", type_=Integer)),
                MailboxState.last_uid,
            ),
            else_=bindparam("b_uid", type_=Integer),
        ),
        uidvalidity=bindparam("b_v", type_=Integer),
        updated_at=bindparam("b_now", type_=MailboxState.updated_at.type),
    )
)


def advance_read_position(
    session: Session, source: str, uidvalidity: int, last_uid: int, now: datetime
) -> None:
    """`set_mailbox_state` as one Core UPDATE, for the fetch's every batch (the ORM's load
    and flush cost several times the statement); the first position is written by it.

    For a session that has not loaded the state (its object would not see the change).
    """
    params = {"b_source": source, "b_v": uidvalidity, "b_uid": last_uid, "b_now": now}
    if not core(session).execute(_ADVANCE, params).rowcount:
        set_mailbox_state(session, source, uidvalidity, last_uid, now)


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


# Built once (see `_RECENT_TO` in db/outbox.py): a batch of listed mails asks these, and
# a statement built per call, with its IN list coerced value by value, costs more Python
# than running it.
_KNOWN_UIDS = {
    validity: select(Mail.uid).where(
        Mail.source == bindparam("b_source"),
        Mail.uidvalidity.is_(None) if validity is None else Mail.uidvalidity == bindparam("b_v"),
        Mail.uid.in_(bindparam("b_uids", expanding=True)),
    )
    for validity in (None, 0)
}
_KNOWN_BY_MESSAGE_ID = select(Mail.message_id, Mail.size).where(
    Mail.message_id.in_(bindparam("b_mids", expanding=True)), Mail.source == bindparam("b_source")
)


def known_uids(
    session: Session, source: str, uidvalidity: int | None, uids: Iterable[int]
) -> set[int]:
    """Which of these UIDs (within this UIDVALIDITY) are already recorded: one query."""
    wanted = list(set(uids))
    if not wanted:
        return set()
    params: dict[str, Any] = {"b_source": source, "b_uids": wanted}
    if uidvalidity is not None:
        params["b_v"] = uidvalidity
    statement = _KNOWN_UIDS[None if uidvalidity is None else 0]
    return {uid for uid in core(session).execute(statement, params).scalars() if uid is not None}


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
    params = {"b_mids": wanted, "b_source": source}
    recorded = {(mid, size) for mid, size in core(session).execute(_KNOWN_BY_MESSAGE_ID, params)}
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


class Received(NamedTuple):
    """A stored raw mail to record as received (see record_received)."""

    uidvalidity: int | None
    uid: int | None
    message_id: str | None
    sha256: str
    raw_path: str
    size: int
    from_addr: str | None
    subject: str | None
    received_at: datetime
    status: str = "received"
    source_ref: str | None = None
    fetched_at: datetime | None = None


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
    one = Received(
        uidvalidity=uidvalidity,
        uid=uid,
        message_id=message_id,
        sha256=sha256,
        raw_path=raw_path,
        size=size,
        from_addr=from_addr,
        subject=subject,
        received_at=received_at,
        status=status,
        source_ref=source_ref,
        fetched_at=fetched_at,
    )
    [(mail_id, created)] = record_received_many(session, source, [one])
    mail = session.get(Mail, mail_id)
    assert mail is not None  # just recorded or found, in this transaction
    return mail, created


def record_received_many(
    session: Session, source: str, mails: Sequence[Received]
) -> list[tuple[int, bool]]:
    """Record a page of stored raw mails as record_received does: (mail id, created) for
    each, in order. One look-up of the known ones, one INSERT of the new ones and one
    look-up of their ids, not two statements and an ORM object per mail.

    A mail is known by (source, UIDVALIDITY, UID), or without a UID by its hash (and its
    Message-ID when it has one); a mail listed twice in the page is recorded once.
    """
    for m in mails:
        if m.status not in ("received", "oversize", "ignored"):
            raise ValueError(f"a mail cannot arrive with status {m.status!r}")
    known = _Recorded(session, source, mails)
    out: list[tuple[int | None, bool]] = []  # None: the id of a row inserted below
    new: dict[tuple[int | None, int | None, str | None], dict[str, Any]] = {}
    for m in mails:
        row = known.find(m)
        if row is not None:
            mail_id, source_ref = row
            if m.source_ref is not None and source_ref != m.source_ref:
                session.execute(
                    update(Mail).where(Mail.id == mail_id).values(source_ref=m.source_ref)
                )
            out.append((mail_id, False))
            continue
        # What makes it the same mail: (UIDVALIDITY, UID), else its hash.
        key = (m.uidvalidity, m.uid, None) if m.uid is not None else (None, None, m.sha256)
        out.append((None, key not in new))  # listed twice in this page: recorded once
        new[key] = new.get(key) or {
            "source": source,
            "uidvalidity": m.uidvalidity,
            "uid": m.uid,
            "message_id": normalize_message_id(m.message_id),
            "sha256": m.sha256,
            "raw_path": m.raw_path,
            "size": m.size,
            "from_addr": _norm_addr(m.from_addr) if m.from_addr else None,
            "subject": m.subject,
            "received_at": m.received_at,
            "fetched_at": m.fetched_at or m.received_at,
            "status": m.status,
            "attempts": 0,
            "awaiting_confirmation": False,
            "moved": False,
            "source_ref": m.source_ref,
        }
    if new:
        session.execute(insert(cast(Table, Mail.__table__)), list(new.values()))
        inserted = [m for m, (mail_id, _) in zip(mails, out, strict=True) if mail_id is None]
        known = _Recorded(session, source, inserted)
    return [
        (mail_id if mail_id is not None else known.id_of(m), created)
        for m, (mail_id, created) in zip(mails, out, strict=True)
    ]


_RECORDED_BY_UID = (
    select(Mail.id, Mail.uidvalidity, Mail.uid, Mail.source_ref)
    .where(Mail.source == bindparam("b_source"), Mail.uid.in_(bindparam("b_uids", expanding=True)))
    .order_by(Mail.id)
)
_RECORDED_BY_SHA = (
    select(Mail.id, Mail.sha256, Mail.message_id, Mail.source_ref)
    .where(
        Mail.source == bindparam("b_source"),
        Mail.uid.is_(None),
        Mail.sha256.in_(bindparam("b_shas", expanding=True)),
    )
    .order_by(Mail.id)
)


class _Recorded:
    """The recorded rows (id, source_ref) of a page of mails, in two queries at most."""

    def __init__(self, session: Session, source: str, mails: Sequence[Received]) -> None:
        self.by_uid: dict[tuple[int | None, int | None], tuple[int, str | None]] = {}
        self.by_sha: dict[str, list[tuple[int, str | None, str | None]]] = {}
        uids = list({m.uid for m in mails if m.uid is not None})
        if uids:
            params = {"b_source": source, "b_uids": uids}
            for mail_id, uidvalidity, uid, ref in core(session).execute(_RECORDED_BY_UID, params):
                self.by_uid.setdefault((uidvalidity, uid), (mail_id, ref))
        shas = list({m.sha256 for m in mails if m.uid is None})
        if shas:
            params = {"b_source": source, "b_shas": shas}
            for mail_id, sha, mid, ref in core(session).execute(_RECORDED_BY_SHA, params):
                self.by_sha.setdefault(sha, []).append((mail_id, ref, mid))

    def find(self, m: Received) -> tuple[int, str | None] | None:
        """The recorded (id, source_ref) of this mail, if any."""
        if m.uid is not None:
            return self.by_uid.get((m.uidvalidity, m.uid))
        # Same bytes means same Message-ID too, so the hash alone decides; the Message-ID
        # only narrows it when present.
        mid = normalize_message_id(m.message_id)
        for mail_id, ref, row_mid in self.by_sha.get(m.sha256, ()):
            if mid is None or row_mid == mid:
                return mail_id, ref
        return None

    def id_of(self, m: Received) -> int:
        """The id of the row just inserted for this mail."""
        row = self.find(m)
        if row is None:
            raise RuntimeError(f"mail uid={m.uid} sha256={m.sha256} vanished once recorded")
        return row[0]
