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


def environment(raw: bytes, ctx: object) -> dict[str, str]:
    import os

    return dict(os.environ)


def killed(raw: bytes, ctx: object) -> int:
    """Dies the way the kernel's OOM killer or a cgroup memory limit ends a worker."""
    import os
    import signal

    if raw == b"die":
        os.kill(os.getpid(), signal.SIGKILL)
    return len(raw)


def convert(raw: bytes, ctx: dict) -> bytes:
    """Converts `raw` with the converter command in ctx, after noting this worker's pid."""
    import os
    from pathlib import Path

    from parsers.convert import convert_with_soffice

    Path(ctx["pid_file"]).write_text(str(os.getpid()))
    src, target = ctx.get("direction", ("doc", "docx"))
    return convert_with_soffice(
        raw,
        src,
        target,
        timeout=ctx.get("timeout", 60),
        exe=ctx.get("exe"),
        memory_mb=ctx.get("mb"),
    )


def slow_marked(raw: bytes, ctx: object) -> object:
    """The real decision, except for mails marked slow: those hang like a stuck conversion."""
    from mailbot.workers import _decide_in_worker

    if b"X-Test-Slow: yes" in raw[:8000]:
        time.sleep(120)
    return _decide_in_worker(raw, ctx)


def parse(raw: bytes, ctx: object) -> list[str]:
    """Parses `raw` as an .xlsx attachment with relaxed size checks: the reader must cope."""
    from parsers.dispatch import parse_file
    from parsers.safety import Limits

    limits = Limits(max_member_ratio=1e9, max_total_uncompressed=1 << 40, max_xml_part=1 << 40)
    return [p.code for p in parse_file(raw, "Mau01.xlsx", limits=limits).problems]


def whoami(raw: bytes, ctx: str | None) -> tuple[int, int]:
    """This worker's pid and its parent's, noted in the file `ctx` names; "slow" hangs."""
    import os
    from pathlib import Path

    if ctx:
        Path(ctx).write_text(str(os.getpid()))
    if raw == b"slow":
        time.sleep(60)
    return os.getpid(), os.getppid()
