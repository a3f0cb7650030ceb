"""Intake speed against a real Dovecot and aiosmtpd: backlog throughput, memory and latency.

Run by hand: `python benchmarks/intake_bench.py [--mails 500] [--runs 3] [--samples 30]
[--daemons 2] [--database-url postgresql+psycopg://...] [--stages]`.
(a) APPENDs a backlog of mails with form attachments (the intake fixtures under fresh
Message-IDs) and times `mailbot poll --once` run as a subprocess (one per daemon, started
together, each with its own data directory over one shared raw store): messages/s, and the
peak RSS (VmHWM) of each daemon process and of its worker processes.
(b) Runs the daemon (IMAP IDLE) on a thread, APPENDs mails one at a time and times each from
the APPEND to the receipt reaching the SMTP server: median and 95th percentile.
(c) With --stages: the stages of one pass run one after another in-process, each timed.
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


def _peak_kb(pid: int) -> int:
    """VmHWM (peak resident set) of a live process in kB; 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _descendants(pid: int) -> list[int]:
    """The worker processes: the zygote a daemon started and the workers it forked."""
    found = _children(pid)
    for child in list(found):
        found += _children(child)
    return found


def _compile_bytecode() -> None:
    """Compile the project's modules once, as `pip install` does for a deployed daemon.

    A checkout run with PYTHONDONTWRITEBYTECODE (some shells and CI images set it) would
    otherwise compile every module from source at each start of the daemon and its workers,
    a fixed cost no installed daemon pays.
    """
    import compileall

    for package in ("mailbot", "parsers", "rules", "outbox_templates"):
        compileall.compile_dir(ROOT / package, quiet=1)
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("(bytecode compiled beforehand: PYTHONDONTWRITEBYTECODE is set here)")


# The database server's password, for --database-url (never on the command line).
DB_PASSWORD_ENV = "MAILBOT_BENCH_DB_PASSWORD"


def _with_database(cfg: Path, database_url: str | None) -> None:
    """Point the config at a database server (`[storage] database_url`) instead of SQLite."""
    if not database_url:
        return
    text = cfg.read_text(encoding="utf-8")
    line = f'database_url = "{database_url}"'
    if os.environ.get(DB_PASSWORD_ENV):
        line += f'\npassword_env = "{DB_PASSWORD_ENV}"'
    cfg.write_text(text.replace("[storage]\n", f"[storage]\n{line}\n", 1), encoding="utf-8")


def _poll_once(cfgs: list[Path]) -> tuple[float, list[int], int]:
    """Run `mailbot poll --once` once per config, all at the same time, sampling memory.

    Returns the wall time until the last one exits, each daemon's peak RSS and the peak
    RSS of any of their worker processes (kB).
    """
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), "poll", "--once"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(cfg.parent / "poll.log", "ab"),  # noqa: SIM115 - closed with the process
        )
        for cfg in cfgs
    ]
    peaks = [0] * len(procs)
    worker_peak = 0
    while any(p.poll() is None for p in procs):
        for i, proc in enumerate(procs):
            peaks[i] = max(peaks[i], _peak_kb(proc.pid))
            for child in _descendants(proc.pid):
                worker_peak = max(worker_peak, _peak_kb(child))
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    for proc, cfg in zip(procs, cfgs, strict=True):
        if proc.returncode != 0:
            log = (cfg.parent / "poll.log").read_text(encoding="utf-8", errors="replace")
            tail = "\n".join(log.splitlines()[-5:])
            raise RuntimeError(f"poll --once exited {proc.returncode}:\n{tail}")
    return elapsed, peaks, worker_peak


def throughput(  # noqa: ANN001
    dovecot, smtp, work: Path, count: int, *, daemons: int = 1, database_url: str | None = None
) -> tuple[float, int]:
    """One `poll --once` (a subprocess per daemon) over a backlog; (messages/s, peak RSS kB).

    With a database server and several daemons, each daemon serves a mailbox of its own with
    `count` mails (one daemon per mailbox is the rule: a second one for the same mailbox only
    waits as a standby), all in the one database; else the daemons share one mailbox.
    """
    own_mailboxes = bool(database_url) and daemons > 1
    accounts = [dovecot.add_user() for _ in range(daemons if own_mailboxes else 1)]
    cfgs = []
    for n in range(daemons):
        home = work / f"d{n}"
        home.mkdir(parents=True)
        account = accounts[n if own_mailboxes else 0]
        env_name = f"{PW_ENV}_{n}"
        os.environ[env_name] = account.password
        # The daemon has met the mailbox (empty) before: the backlog is ordinary new mail.
        cfg = write_config(
            home,
            dovecot,
            account,
            smtp,
            inbox={"process_since": None, "password_env": env_name},
            # The backlog cycles through a few senders: every mail is to be answered.
            outgoing={"max_auto_replies_per_hour": 2 * count * daemons},
        )
        _with_database(cfg, database_url)
        if own_mailboxes:
            # A district of a city: its own schema in the one database (`[[mailbox]]`).
            with cfg.open("a", encoding="utf-8") as f:
                f.write(f'\n[[mailbox]]\nname = "bench-{n}"\n')
        cfgs.append(cfg)
    if daemons > 1 and not own_mailboxes:
        # One raw store for all (each daemon reads what another one fetched), one lock each.
        shared = work / "raw"
        shared.mkdir()
        for cfg in cfgs:
            (cfg.parent / "data").mkdir()
            (cfg.parent / "data" / "raw").symlink_to(shared)
    _poll_once(cfgs if own_mailboxes else cfgs[:1])
    size = 0
    started = time.perf_counter()
    for n, account in enumerate(accounts):
        mails = backlog(count, f"bench-{work.name}-{n}")
        append_all(dovecot, account, mails)
        size += sum(len(m) for m in mails)
        del mails
    appended = time.perf_counter() - started
    total = count * len(accounts)
    before = len(smtp.messages)
    load = os.getloadavg()[0]
    elapsed, peaks, worker_peak = _poll_once(cfgs)
    got = replies(smtp.messages[before:])
    answered = len({m.in_reply_to for m in got})
    if answered != total or len(got) != total:
        raise RuntimeError(f"{total} mails, {len(got)} receipts for {answered} of them")
    rate = total / elapsed
    where = "database " + database_url.split("@")[-1] if database_url else "SQLite"
    print(
        f"(a) {total} mails ({size / 1e6:.1f} MB, APPENDed in {appended:.1f} s), "
        f"{daemons} daemon(s), {len(accounts)} mailbox(es), {where}: "
        f"{elapsed:.1f} s => {rate:.1f} messages/s; peak RSS daemon "
        f"{', '.join(f'{p / 1024:.0f}' for p in peaks)} MB, worker {worker_peak / 1024:.0f} MB; "
        f"load before {load:.2f}"
    )
    return rate, max(peaks)


def stages(dovecot, smtp, work: Path, count: int) -> None:  # noqa: ANN001
    """The stages of one pass run one after another in this process, each timed."""
    account = dovecot.add_user()
    os.environ[PW_ENV] = account.password
    work.mkdir()
    cfg = write_config(work, dovecot, account, smtp, inbox={"process_since": None})
    with open_app(load_config(cfg)) as app:
        app.robot().run_once()  # meet the mailbox while it is empty
    append_all(dovecot, account, backlog(count, "stages"))
    before = len(smtp.messages)
    with open_app(load_config(cfg)) as app:
        robot = app.robot()
        timed = {}
        started = time.perf_counter()
        for name, stage in (
            ("fetch+store+record", robot.fetch_new),
            ("decide (parse, judge, compose, record)", robot.process_due),
            ("move on the server", robot.move_done),
            ("deliver (SMTP)", robot.deliver),
        ):
            t = time.perf_counter()
            stage()
            timed[name] = time.perf_counter() - t
        total = time.perf_counter() - started
    got = replies(smtp.messages[before:])
    assert len({m.in_reply_to for m in got}) == count, len(got)
    print(f"(c) the stages one after another, in-process, {count} mails:")
    for name, seconds in timed.items():
        print(f"    {name:42s} {seconds:7.2f} s  ({seconds / count * 1000:6.1f} ms/mail)")
    print(f"    total {total:.2f} s => {count / total:.1f} messages/s")


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
    parser.add_argument("--runs", type=int, default=3, help="backlog passes; the median is given")
    parser.add_argument("--daemons", type=int, default=1, help="poll --once processes at once")
    parser.add_argument(
        "--database-url",
        help=f"a database server instead of SQLite (its password in ${DB_PASSWORD_ENV})",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="start a throwaway PostgreSQL (initdb in a temp dir, as the tests do) and use it",
    )
    parser.add_argument("--samples", type=int, default=30, help="latency samples (0: none)")
    parser.add_argument("--stages", action="store_true", help="also time each stage alone")
    args = parser.parse_args()
    print(_machine())
    _compile_bytecode()
    pg = None
    if args.postgres:
        from tests.support.postgres import PASSWORD, start_postgres

        pg = start_postgres()
        os.environ[DB_PASSWORD_ENV] = PASSWORD
    dovecot = start_dovecot()
    smtp = start_smtpd(pipelining=True)  # as Postfix offers it: the daemon pipelines
    try:
        with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
            results = [
                throughput(
                    dovecot,
                    smtp,
                    Path(tmp) / f"a{n}",
                    args.mails,
                    daemons=args.daemons,
                    database_url=(
                        pg.url(pg.create_database(migrated=False)) if pg else args.database_url
                    ),
                )
                for n in range(args.runs)
            ]
            if len(results) > 1:
                print(
                    f"    median of {len(results)}: "
                    f"{statistics.median(r for r, _ in results):.1f} messages/s, "
                    f"peak RSS {statistics.median(p for _, p in results) / 1024:.0f} MB"
                )
            if args.stages:
                stages(dovecot, smtp, Path(tmp) / "c", args.mails)
            if args.samples:
                (Path(tmp) / "b").mkdir()
                latency(dovecot, smtp, Path(tmp) / "b", args.samples)
    finally:
        smtp.stop()
        dovecot.stop()
        if pg is not None:
            pg.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
