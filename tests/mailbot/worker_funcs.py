"""Stand-in deciders that run inside spawned worker processes (they must be importable)."""

from __future__ import annotations

import time


def slow_or_echo(raw: bytes, ctx: object) -> bytes:
    if raw == b"slow":
        time.sleep(60)
    return raw.upper()


def greedy(raw: bytes, ctx: object) -> int:
    if raw == b"greedy":
        return len(bytearray(1024 * 1024 * 1024))  # 1 GiB: over the worker's limit
    return len(raw)
