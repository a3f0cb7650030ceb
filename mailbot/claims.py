"""Who holds a claim on a mail or an outbox row, and whether that holder is gone.

Exactly-once does not rest on the data directory lock: a row is claimed in the database by a
compare-and-set that names its holder (`host:pid:start`, the process's start time, so a
PID used again by a later process is told apart). A claim is given back when its holder is
known to be gone (a process of this host that no longer runs) or, for holders we cannot
see (another host), when it has been held longer than the timeout. A live holder of this
host never loses its claims. On PostgreSQL every claimant also holds an advisory lock on its
token (`claimant_key`) while it lives: a holder on another host whose lock is free is gone.
"""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class Claimant:
    """The token one process writes into the rows it claims."""

    token: str

    @classmethod
    def for_this_process(cls) -> Claimant:
        """This process's token: host, PID and the PID's start time (the same all its life)."""
        pid = os.getpid()
        return cls(f"{socket.gethostname()}:{pid}:{_start_time(pid)}")


def claimant_key(token: str) -> int:
    """The PostgreSQL advisory lock key (a non-negative bigint) a claimant holds while alive."""
    digest = hashlib.sha256(f"mailbot-claimant:{token}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def _start_time(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "0" when unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return "0"
    # The command name (field 2) may hold spaces and parentheses: count from the last ")".
    fields = stat.rsplit(b")", 1)[-1].split()
    return fields[19].decode("ascii") if len(fields) > 19 else "0"


def holder_alive(token: str | None, me: Claimant) -> bool | None:
    """True/False for a holder on this host; None when it cannot be told (another host)."""
    if token is None:
        return None
    if token == me.token:
        return True
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it runs, under another user
    # Another process under the same PID (a restarted container's PID 1, say) is not it.
    now_start = _start_time(pid)
    return not (start and now_start != "0" and start != "0" and now_start != start)


def releasable(
    claims: Iterable[tuple[int, str | None, datetime | None]],
    me: Claimant,
    now: datetime,
    timeout: timedelta,
    *,
    held_before: datetime | None = None,
    gone: Collection[str] = (),
) -> list[int]:
    """Which of these (id, holder, claimed_at) claims may be taken back.

    A holder known to be gone (of this host, or in `gone`: the database says so): at once.
    A holder we cannot see: after `timeout`; a claim without holder (written before claims
    named one) also once it predates `held_before`.
    """
    out = []
    for row_id, token, claimed_at in claims:
        alive = holder_alive(token, me)
        if alive is None and token is not None and token in gone:
            alive = False
        if alive is True:
            continue
        stale = claimed_at is None or claimed_at < now - timeout
        legacy = token is None and held_before is not None and (claimed_at or now) < held_before
        if alive is False or stale or legacy:
            out.append(row_id)
    return out
