"""Who holds a claim on a mail or an outbox row, and whether that holder is gone.

Exactly-once does not rest on the data directory lock: a row is claimed in the database by a
compare-and-set that names its holder (`host:pid:nonce`). A claim is given back when its
holder is known to be gone (a process of this host that no longer runs, or an earlier
incarnation under the same PID) or, for holders we cannot see (another host), when it has
been held longer than the timeout. A live holder of this host never loses its claims.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Claimant:
    """The token one process writes into the rows it claims."""

    token: str

    @classmethod
    def for_this_process(cls) -> Claimant:
        """A new token: this host, this PID, and a nonce that tells restarts apart."""
        return cls(f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}")


def holder_alive(token: str | None, me: Claimant) -> bool | None:
    """True/False for a holder on this host; None when it cannot be told (another host)."""
    if token is None:
        return None
    if token == me.token:
        return True
    host, _, rest = token.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    if pid == os.getpid():
        return False  # an earlier process that had our PID (a container's PID 1, say)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it runs, under another user
    return True


def releasable(
    claims: Iterable[tuple[int, str | None, datetime | None]],
    me: Claimant,
    now: datetime,
    timeout: timedelta,
    *,
    held_before: datetime | None = None,
) -> list[int]:
    """Which of these (id, holder, claimed_at) claims may be taken back.

    A holder known to be gone: at once. A holder we cannot see: after `timeout`; a claim
    without holder (written before claims named one) also once it predates `held_before`.
    """
    out = []
    for row_id, token, claimed_at in claims:
        alive = holder_alive(token, me)
        if alive is True:
            continue
        stale = claimed_at is None or claimed_at < now - timeout
        legacy = token is None and held_before is not None and (claimed_at or now) < held_before
        if alive is False or stale or legacy:
            out.append(row_id)
    return out
