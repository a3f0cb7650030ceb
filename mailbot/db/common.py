"""Small helpers shared by the repository modules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, Connection, select, text, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from mailbot.backoff import delay
from mailbot.claims import claimant_key
from mailbot.db.models import MAX_BACKOFF_SECONDS, MAX_ERROR_CHARS


def normalize_message_id(value: str | None) -> str | None:
    """A Message-ID in its header form `<...>`, trimmed; None for an empty one."""
    if value is None:
        return None
    v = value.strip()
    if not v:
        return None
    if not v.startswith("<"):
        v = "<" + v
    if not v.endswith(">"):
        v = v + ">"
    return v


def _norm_addr(addr: str) -> str:
    return addr.strip().lower()


def _cap(error: str) -> str:
    return error if len(error) <= MAX_ERROR_CHARS else error[: MAX_ERROR_CHARS - 1] + "…"


def backoff_delay(attempts: int, base_seconds: float) -> timedelta:
    """Delay before the next try after `attempts` failures: base, 2*base, 4*base... capped."""
    return timedelta(seconds=delay(attempts, base_seconds, MAX_BACKOFF_SECONDS))


def unlocked_ids(
    session: Session,
    id_column: InstrumentedAttribute[int],
    conditions: Sequence[ColumnElement[Any]],
) -> list[int] | None:
    """On PostgreSQL, lock the matching rows that no other transaction holds (SKIP LOCKED)
    and return their ids; None on SQLite, whose writers never run side by side.

    A claim then updates only these rows: two daemons claiming at once each take rows the
    other does not, instead of one waiting for the other's transaction to end.
    """
    if session.get_bind().dialect.name == "sqlite":
        return None
    query = select(id_column).where(*conditions).with_for_update(skip_locked=True)
    return list(session.scalars(query))


def core(session: Session) -> Connection:
    """The session's connection for a Core statement, pending ORM changes flushed first.

    What `session.execute` does for such a statement (autoflush), without the ORM layer it
    adds to each one: the statements of a recorded group run many times per second.
    """
    session.flush()
    return session.connection()


def claim_rows(
    session: Session,
    model: Any,
    ids: Iterable[int],
    conditions: Sequence[ColumnElement[Any]],
    values: dict[str, Any],
) -> list[int]:
    """Claim the rows of `ids` still matching `conditions` in one compare-and-set (SKIP
    LOCKED first on PostgreSQL); the ids won, sorted. A row another claimer took is not
    among them: each claimed row has exactly one holder."""
    wanted = list(ids)
    if not wanted:
        return []
    where = [model.id.in_(wanted), *conditions]
    free = unlocked_ids(session, model.id, where)
    if free is not None:
        if not free:
            return []
        where.append(model.id.in_(free))
    won: list[int] = list(
        session.scalars(
            update(model)
            .where(*where)
            .values(**values)
            .returning(model.id)
            .execution_options(synchronize_session=False)
        ).all()
    )
    session.expire_all()
    return sorted(won)


def gone_claimants(session: Session, tokens: Iterable[str | None]) -> set[str]:
    """The claim holders that no longer hold their liveness lock (PostgreSQL; see
    mailbot.claims): gone, whatever host they ran on. Always empty on SQLite."""
    if session.get_bind().dialect.name == "sqlite":
        return set()
    gone = set()
    for token in {t for t in tokens if t}:
        # Taken only if no session holds it; a transaction lock, let go at commit.
        free = session.scalar(
            text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": claimant_key(token)}
        )
        if free:
            gone.add(token)
    return gone


# --------------------------------------------------------------------------- mailbox state
