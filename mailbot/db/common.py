"""Small helpers shared by the repository modules."""

from __future__ import annotations

from datetime import timedelta

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
    exponent = max(0, attempts - 1)
    seconds = base_seconds * (2 ** min(exponent, 30))
    return timedelta(seconds=min(seconds, MAX_BACKOFF_SECONDS))
