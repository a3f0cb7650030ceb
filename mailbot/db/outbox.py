"""Repository of outgoing mail: queueing, sending state, refusals and bounces."""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Table,
    bindparam,
    func,
    literal,
    null,
    select,
    union_all,
    update,
)
from sqlalchemy.orm import Session

from mailbot.db.common import (
    _cap,
    _norm_addr,
    backoff_delay,
    claim_rows,
    core,
    normalize_message_id,
)
from mailbot.db.driver import fetch_all, run_many
from mailbot.db.jobs import add_event
from mailbot.db.models import OUTBOX_KINDS, Bounce, Event, Outbox, utcnow
from mailbot.db.units import unit_for_address

if TYPE_CHECKING:
    from mailbot.db.engine import Database


def _outbox_values(
    *,
    kind: str,
    message_id: str,
    to_addrs: Sequence[str] | str,
    subject: str,
    raw: bytes,
    mail_id: int | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The outbox row of one finished outgoing mail (its column values), checked."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outgoing kind {kind!r}")
    addrs = [to_addrs] if isinstance(to_addrs, str) else list(to_addrs)
    if not addrs:
        raise ValueError("an outgoing mail needs at least one recipient")
    mid = normalize_message_id(message_id)
    if mid is None:
        raise ValueError("an outgoing mail needs its Message-ID when queued")
    return {
        "message_id": mid,
        "kind": kind,
        "mail_id": mail_id,
        "to_addrs": json.dumps([a.strip() for a in addrs], ensure_ascii=False),
        "to_key": _norm_addr(addrs[0]) if len(addrs) == 1 else None,
        "subject": subject,
        "raw": raw,
        "status": "queued",
        "attempts": 0,
        "created_at": now or utcnow(),
        "dedupe_key": dedupe_key,
    }


def queue_outgoing(
    session: Session,
    *,
    kind: str,
    message_id: str,
    to_addrs: Sequence[str] | str,
    subject: str,
    raw: bytes,
    mail_id: int | None = None,
    dedupe_key: str | None = None,
    now: datetime | None = None,
) -> Outbox:
    """Queue a finished outgoing mail; with a dedupe_key already queued, the existing row."""
    if kind not in OUTBOX_KINDS:
        raise ValueError(f"unknown outgoing kind {kind!r}")
    if dedupe_key is not None:
        existing = session.scalars(select(Outbox).where(Outbox.dedupe_key == dedupe_key)).first()
        if existing is not None:
            return existing
    row = Outbox(
        **_outbox_values(
            kind=kind,
            message_id=message_id,
            to_addrs=to_addrs,
            subject=subject,
            raw=raw,
            mail_id=mail_id,
            dedupe_key=dedupe_key,
            now=now,
        )
    )
    session.add(row)
    session.flush()
    return row


def queue_outgoing_many(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """`queue_outgoing` for many mails at once: one INSERT, no ORM objects; a row whose
    dedupe key is already queued is left out (the queued one stays as it is).

    Each row has the keyword arguments of `queue_outgoing`.
    """
    values = [_outbox_values(**row) for row in rows]
    if not values:
        return
    run_many(session, _queue_new(session.get_bind().dialect.name), values)


@functools.cache
def _queue_new(dialect: str) -> Any:
    """The INSERT of new outgoing mail skipping a queued dedupe key, built once per dialect
    (a statement built per call is keyed for the cache again each time). The dialect's
    module is imported on first use: PostgreSQL's brings asyncio, for nothing on SQLite."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(cast(Table, Outbox.__table__)).on_conflict_do_nothing(
            index_elements=["dedupe_key"]
        )
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(cast(Table, Outbox.__table__)).on_conflict_do_nothing(
            index_elements=["dedupe_key"]
        )
    raise NotImplementedError(dialect)  # pragma: no cover - mailbot runs on SQLite or PostgreSQL


def due_outgoing(session: Session, now: datetime, limit: int | None = None) -> list[Outbox]:
    """Queued mails whose (re)try time has come, oldest first."""
    query = (
        select(Outbox)
        .where(
            Outbox.status == "queued",
            (Outbox.next_attempt_at.is_(None)) | (Outbox.next_attempt_at <= now),
        )
        .order_by(Outbox.id)
    )
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


# Built once (asked at every delivery round, a few times a second in a pass), run as Core.
_DUE_IDS = select(Outbox.id).where(
    Outbox.status == "queued",
    (Outbox.next_attempt_at.is_(None)) | (Outbox.next_attempt_at <= bindparam("b_now")),
)
_DUE_IDS_OF = _DUE_IDS.where(Outbox.id.in_(bindparam("b_ids", expanding=True))).order_by(Outbox.id)
_DUE_IDS = _DUE_IDS.order_by(Outbox.id)
_CLAIMS = select(Outbox.id, Outbox.claimed_by, Outbox.claimed_at).where(Outbox.status == "sending")


def due_outgoing_ids(
    session: Session, now: datetime, ids: Iterable[int] | None = None
) -> list[int]:
    """Ids of queued mails whose (re)try time has come, oldest first; only `ids` when given."""
    if ids is None:
        return list(core(session).execute(_DUE_IDS, {"b_now": now}).scalars())
    wanted = list(ids)
    if not wanted:
        return []
    return list(core(session).execute(_DUE_IDS_OF, {"b_now": now, "b_ids": wanted}).scalars())


def get_outbox(session: Session, outbox_id: int) -> Outbox | None:
    """One outgoing mail by id."""
    return session.get(Outbox, outbox_id)


class Sendable(NamedTuple):
    """What a sender needs of one claimed row, read once when the page is claimed."""

    id: int
    kind: str
    message_id: str
    mail_id: int | None
    raw: bytes
    recipients: list[str]


_TO_SEND = (
    select(Outbox.id, Outbox.kind, Outbox.message_id, Outbox.mail_id, Outbox.raw, Outbox.to_addrs)
    .where(Outbox.id.in_(bindparam("b_ids", expanding=True)))
    .order_by(Outbox.id)
)


def outgoing_to_send(session: Session, ids: Iterable[int]) -> list[Sendable]:
    """The rows of `ids` as senders need them (one query, no ORM objects), by id."""
    wanted = list(ids)
    if not wanted:
        return []
    rows = core(session).execute(_TO_SEND, {"b_ids": wanted})
    return [
        Sendable(i, kind, mid, mail_id, raw, list(json.loads(to)))
        for i, kind, mid, mail_id, raw, to in rows
    ]


def claim_outgoing(
    session: Session, ids: Iterable[int], now: datetime, holder: str | None = None
) -> list[int]:
    """Claim queued rows for sending (queued -> sending) in one compare-and-set; the ids won.

    Whoever loses the race for a row (another thread or process claimed it first) does not
    get it back here, so each claimed row has exactly one sender.
    """
    return claim_rows(
        session,
        Outbox,
        ids,
        [Outbox.status == "queued"],
        {"status": "sending", "claimed_at": now, "claimed_by": holder},
    )


def outgoing_claims(session: Session) -> list[tuple[int, str | None, datetime | None]]:
    """Every row being sent as (id, holder, claimed_at)."""
    return [(i, by, at) for i, by, at in core(session).execute(_CLAIMS)]


def release_claims(
    session: Session,
    *,
    claimed_before: datetime | None = None,
    ids: Iterable[int] | None = None,
    holder: str | None = None,
) -> list[int]:
    """Put claimed rows back in the queue (their sender died or gave up); the ids released.

    `claimed_before` takes claims older than a moment, `ids` these rows, `holder` the claims
    of one process; each narrows.
    """
    query = update(Outbox).where(Outbox.status == "sending")
    if holder is not None:
        query = query.where(Outbox.claimed_by == holder)
    if claimed_before is not None:
        query = query.where(Outbox.claimed_at < claimed_before)
    if ids is not None:
        query = query.where(Outbox.id.in_(list(ids)))
    released = session.scalars(
        query.values(status="queued", claimed_at=None, claimed_by=None)
        .returning(Outbox.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.expire_all()
    return sorted(released)


def find_outbox_by_message_id(session: Session, message_id: str | None) -> Outbox | None:
    """Our outgoing mail with this Message-ID (to recognise our own mail and its bounces)."""
    mid = normalize_message_id(message_id)
    if mid is None:
        return None
    return session.scalars(select(Outbox).where(Outbox.message_id == mid)).first()


def receipt_recipients(session: Session, mail_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Where the receipt of each of these mails went (mails never answered are left out)."""
    ids = set(mail_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Outbox.mail_id, Outbox.to_addrs)
        .where(Outbox.kind == "receipt", Outbox.mail_id.in_(ids))
        .order_by(Outbox.id)
    ).all()
    return {mail_id: tuple(json.loads(to)) for mail_id, to in rows if mail_id is not None}


# Built once, on the table rather than the mapped class (no ORM step when it runs):
# composing a statement costs more Python than running it, and this one runs for every
# mail sent (see record_sent).
_OUTBOX = cast(Table, Outbox.__table__)
_RECORD_SENT = (
    update(_OUTBOX)
    .where(
        _OUTBOX.c.id == bindparam("b_id"),
        _OUTBOX.c.status == "sending",
        _OUTBOX.c.claimed_by == bindparam("b_holder"),
    )
    .values(
        status="sent",
        sent_at=bindparam("b_now", type_=_OUTBOX.c.sent_at.type),
        claimed_at=None,
        claimed_by=None,
        attempts=func.coalesce(_OUTBOX.c.attempts, 0) + 1,
        next_attempt_at=None,
        last_error=None,
    )
)


def record_sent(bind: Session | Connection, outbox_id: int, now: datetime, holder: str) -> bool:
    """The server accepted a row `holder` claims: one UPDATE, as `mark_sent`; False (nothing
    written) when the row is no longer `holder`'s claim."""
    params = {"b_id": outbox_id, "b_holder": holder, "b_now": now}
    conn = core(bind) if isinstance(bind, Session) else bind
    return bool(conn.execute(_RECORD_SENT, params).rowcount)


def record_sent_alone(database: Database, outbox_id: int, now: datetime, holder: str) -> bool:
    """`record_sent` in a write transaction of its own (committed): the one statement a
    mail sent costs, run the cheapest way the database offers (`Database.write_one`)."""
    params = {"b_id": outbox_id, "b_holder": holder, "b_now": now}
    return bool(database.write_one(_RECORD_SENT, params))


def mark_sent(session: Session, outbox: Outbox, now: datetime) -> None:
    """The SMTP server (or the directory sink) accepted the mail."""
    outbox.status = "sent"
    outbox.sent_at = now
    outbox.claimed_at = None
    outbox.claimed_by = None
    outbox.attempts = (outbox.attempts or 0) + 1
    outbox.next_attempt_at = None
    outbox.last_error = None
    session.flush()


def mark_send_failed(
    session: Session,
    outbox: Outbox,
    error: str,
    now: datetime,
    *,
    temporary: bool,
    max_attempts: int = 8,
    base_seconds: float = 60,
    give_up_after: timedelta = timedelta(days=7),
    max_delay_seconds: float = 3600,
) -> None:
    """Delivery failed: a temporary failure retries with capped back-off, a permanent one is final.

    Temporary failures keep being retried (at most `max_delay_seconds` apart) until the row
    is `give_up_after` old; staff hear once, at the `max_attempts`-th failure, that it is late.
    """
    outbox.attempts = (outbox.attempts or 0) + 1
    outbox.last_error = _cap(error)
    outbox.claimed_at = None
    outbox.claimed_by = None
    if temporary and now - _retries_since(session, outbox) < give_up_after:
        outbox.status = "queued"
        delay = min(backoff_delay(outbox.attempts, base_seconds).total_seconds(), max_delay_seconds)
        outbox.next_attempt_at = now + timedelta(seconds=delay)
        if outbox.attempts == max_attempts:
            add_event(
                session,
                "send-delayed",
                at=now,
                mail_id=outbox.mail_id,
                detail=f"{outbox.kind} {outbox.message_id} to {', '.join(outbox.recipients)}: "
                f"{outbox.attempts} attempts, {outbox.last_error}",
            )
        session.flush()
        return
    outbox.status = "failed"
    outbox.next_attempt_at = None
    add_event(
        session,
        "send-failed",
        at=now,
        mail_id=outbox.mail_id,
        detail=f"{outbox.kind} {outbox.message_id} to {', '.join(outbox.recipients)}: "
        f"{outbox.last_error}",
    )


def _retries_since(session: Session, outbox: Outbox) -> datetime:
    """When the current run of retries began: queueing, or the operator's last resend."""
    last = session.scalar(
        select(func.max(Event.at)).where(
            Event.kind == "send-retry", Event.detail == outbox.message_id
        )
    )
    if last is None:
        return outbox.created_at
    return max(outbox.created_at, last.replace(tzinfo=UTC) if last.tzinfo is None else last)


def failed_outgoing_ids(session: Session) -> list[int]:
    """Every outgoing mail that failed for good, oldest first."""
    return list(
        session.scalars(select(Outbox.id).where(Outbox.status == "failed").order_by(Outbox.id))
    )


def requeue_outgoing(session: Session, outbox: Outbox, now: datetime) -> bool:
    """An operator asks to send a failed mail again (same bytes, same Message-ID); False if
    it is not failed (sent, queued, being sent or bounced)."""
    if outbox.status != "failed":
        return False
    outbox.status = "queued"
    outbox.next_attempt_at = None
    outbox.attempts = 0
    # The event also starts a new `give_up_after` window (see _retries_since).
    add_event(session, "send-retry", at=now, mail_id=outbox.mail_id, detail=outbox.message_id)
    session.flush()
    return True


def record_refused(
    session: Session, mail_id: int | None, refused: Mapping[str, tuple[int, str]], now: datetime
) -> None:
    """Recipients refused while others accepted the mail (of the outgoing row answering
    `mail_id`): noted, never retried (no duplicates)."""
    for addr, (code, text) in refused.items():
        known = unit_for_address(session, addr)
        add_event(
            session,
            "recipient-refused",
            at=now,
            mail_id=mail_id,
            unit_code=known[0] if known else None,
            detail=f"{addr}: {code} {text}",
        )


def count_auto_replies(
    session: Session, addr: str, since: datetime, kinds: Iterable[str] | None = None
) -> int:
    """How many mails we queued to this address since a moment (for the per-hour limit)."""
    return count_auto_replies_many(session, [addr], since, kinds)[_norm_addr(addr)]


def _recent_to(kinds: list[str] | None) -> CompoundSelect[Any]:
    """Since `b_since`: how many mails went to each of the addresses `b_keys` (counted by
    the database, by the indexed key), and every row with several recipients (read)."""
    by_key = select(Outbox.to_key, func.count(), null()).where(
        Outbox.to_key.in_(bindparam("b_keys", expanding=True)),
        Outbox.created_at >= bindparam("b_since"),
    )
    shared = select(Outbox.to_key, literal(1), Outbox.to_addrs).where(
        Outbox.to_key.is_(None), Outbox.created_at >= bindparam("b_since")
    )
    if kinds is not None:
        by_key = by_key.where(Outbox.kind.in_(kinds))
        shared = shared.where(Outbox.kind.in_(kinds))
    return union_all(by_key.group_by(Outbox.to_key), shared)


_RECENT_TO = _recent_to(None)  # built once: asked for every recorded group


def count_auto_replies_many(
    session: Session, addrs: Iterable[str], since: datetime, kinds: Iterable[str] | None = None
) -> dict[str, int]:
    """`count_auto_replies` for several addresses in one query, by normalised address.

    Rows with one recipient are counted by the database, by their indexed key; the few
    with several (digests to staff) are read, so the cost grows neither with the hour's
    other mail nor with the mail to these addresses.
    """
    counts = dict.fromkeys({_norm_addr(a) for a in addrs}, 0)
    if not counts:
        return counts
    params = {"b_keys": sorted(counts), "b_since": since}
    if kinds is None:  # the statement built once: compiled once for the driver
        rows = fetch_all(session, _RECENT_TO, params)
    else:
        rows = core(session).execute(_recent_to(list(kinds)), params).all()
    for to_key, count, to_addrs in rows:
        if to_key is not None:
            counts[to_key] += count
            continue
        for target in {_norm_addr(a) for a in json.loads(to_addrs)} & counts.keys():
            counts[target] += 1
    return counts


# --------------------------------------------------------------------------- bounces and events


def record_bounce(
    session: Session,
    *,
    original_message_id: str | None,
    recipient: str | None,
    status: str | None,
    action: str | None,
    diagnostic: str | None,
    received_at: datetime,
    mail_id: int | None,
    outbox_id: int | None = None,
) -> Bounce:
    """Record a delivery report, matched to our outgoing mail by its Message-ID when possible."""
    mid = normalize_message_id(original_message_id)
    outbox = session.get(Outbox, outbox_id) if outbox_id is not None else None
    if outbox is None:
        outbox = find_outbox_by_message_id(session, mid)
    bounce = Bounce(
        outbox_id=outbox.id if outbox is not None else None,
        original_message_id=mid,
        recipient=_norm_addr(recipient) if recipient else None,
        status=status,
        action=action,
        diagnostic=_cap(diagnostic) if diagnostic else None,
        received_at=received_at,
        mail_id=mail_id,
    )
    session.add(bounce)
    permanent = (action or "").lower() == "failed" or (status or "").startswith("5")
    if outbox is not None and permanent:
        outbox.status = "bounced"
    unit_code = None
    if recipient:
        known = unit_for_address(session, recipient)
        unit_code = known[0] if known else None
    session.flush()
    add_event(
        session,
        "bounce",
        at=received_at,
        mail_id=mail_id,
        unit_code=unit_code,
        detail=json.dumps(
            {
                "recipient": bounce.recipient,
                "status": status,
                "action": action,
                "kind": outbox.kind if outbox is not None else None,
                "message_id": mid,
            },
            ensure_ascii=False,
        ),
    )
    return bounce
