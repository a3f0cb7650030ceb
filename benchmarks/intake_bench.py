"""Intake speed against a real Dovecot and aiosmtpd: backlog throughput and APPEND-to-receipt.

Run by hand: `python benchmarks/intake_bench.py [--mails 500] [--samples 30]`.
(a) APPENDs a backlog of mails with form attachments (the intake fixtures under fresh
Message-IDs) and times one `poll --once` pass (Robot.run_once, in-process): messages/s.
(b) Runs the daemon (IMAP IDLE) on a thread, APPENDs mails one at a time and times each from
the APPEND to the receipt reaching the SMTP server: median and 95th percentile.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.app import open_app  # noqa: E402
from mailbot.commands.intake import run_daemon  # noqa: E402
from mailbot.config import load_config  # noqa: E402
from tests.mailbot.e2e_support import (  # noqa: E402
    PW_ENV,
    append_all,
    backlog,
    replies,
    write_config,
)
from tests.support.dovecot import find_dovecot, start_dovecot  # noqa: E402
from tests.support.smtpd import start_smtpd  # noqa: E402


def _machine() -> str:
    dovecot = find_dovecot()
    version = "?"
    if dovecot:
        out = subprocess.run([dovecot, "--version"], capture_output=True, text=True, check=False)
        version = out.stdout.strip() or "?"
    return (
        f"machine: {os.cpu_count()} cores, {platform.machine()}, {platform.system()} "
        f"{platform.release()}; Python {platform.python_version()}; Dovecot {version}"
    )


def throughput(dovecot, smtp, work: Path, count: int) -> None:  # noqa: ANN001
    account = dovecot.add_user()
    os.environ[PW_ENV] = account.password
    mails = backlog(count, "bench")
    started = time.perf_counter()
    append_all(dovecot, account, mails)
    appended = time.perf_counter() - started
    size = sum(len(m) for m in mails)
    print(f"(a) backlog: {count} mails, {size / 1e6:.1f} MB, APPENDed in {appended:.1f} s")

    cfg = write_config(work, dovecot, account, smtp, inbox={"batch_size": 50})
    with open_app(load_config(cfg)) as app:
        robot = app.robot()
        stages = {}
        started = time.perf_counter()
        t = time.perf_counter()
        fetched = robot.fetch_new()
        stages["fetch+store+record"] = time.perf_counter() - t
        t = time.perf_counter()
        done, failed = robot.process_due()
        stages["process (parse, judge, compose, record)"] = time.perf_counter() - t
        t = time.perf_counter()
        moved = robot.move_done()
        stages["move on the server"] = time.perf_counter() - t
        t = time.perf_counter()
        sent, send_failed = robot.deliver()
        stages["deliver (SMTP)"] = time.perf_counter() - t
        total = time.perf_counter() - started
    assert fetched == done == moved == sent == count, (fetched, done, failed, moved, sent)
    assert failed == send_failed == 0
    assert len({m.in_reply_to for m in replies(smtp.messages)}) == count
    for name, seconds in stages.items():
        print(f"    {name:42s} {seconds:7.2f} s  ({seconds / count * 1000:6.1f} ms/mail)")
    print(f"    one pass (poll --once work), total        {total:7.2f} s")
    print(f"    => {count / total:.1f} messages/s")


def latency(dovecot, smtp, work: Path, samples: int) -> None:  # noqa: ANN001
    account = dovecot.add_user()
    os.environ[PW_ENV] = account.password
    cfg = write_config(work, dovecot, account, smtp, inbox={"poll_interval_seconds": 600})
    mails = backlog(samples + 1, "latency")
    before = len(smtp.messages)
    stop = threading.Event()
    passed = threading.Event()
    times: list[float] = []
    with open_app(load_config(cfg)) as app:
        thread = threading.Thread(
            target=run_daemon,
            args=(app, stop),
            kwargs={"on_pass": lambda _r: passed.set()},
            daemon=True,
        )
        thread.start()
        try:
            if not passed.wait(30):
                raise RuntimeError("the daemon's first pass did not finish")
            for n, raw in enumerate(mails):
                time.sleep(0.3)  # the daemon is back in IDLE, as with mail from people
                started = time.perf_counter()
                append_all(dovecot, account, [raw])
                got = smtp.handler.wait_for(before + n + 1, timeout=60)
                if len(got) < before + n + 1:
                    raise RuntimeError(f"no receipt for mail {n} within 60 s")
                if n:  # the first one warms the caches up
                    times.append(time.perf_counter() - started)
        finally:
            stop.set()
            thread.join(timeout=30)
    times.sort()
    p95 = times[max(0, int(round(0.95 * len(times))) - 1)]
    print(f"(b) daemon with IDLE, APPEND to receipt at the SMTP server, {len(times)} mails:")
    print(
        f"    median {statistics.median(times):.2f} s, p95 {p95:.2f} s, "
        f"min {times[0]:.2f} s, max {times[-1]:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mails", type=int, default=500, help="backlog size (default 500)")
    parser.add_argument("--samples", type=int, default=30, help="latency samples (default 30)")
    args = parser.parse_args()
    print(_machine())
    dovecot = start_dovecot()
    smtp = start_smtpd()
    try:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
            (Path(tmp) / "a").mkdir()
            (Path(tmp) / "b").mkdir()
            throughput(dovecot, smtp, Path(tmp) / "a", args.mails)
            latency(dovecot, smtp, Path(tmp) / "b", args.samples)
    finally:
        smtp.stop()
        dovecot.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
