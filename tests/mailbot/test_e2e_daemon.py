"""The daemon end to end: IDLE wake-up to receipt in seconds, reconnects, SIGTERM, the lock."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from mailbot.app import open_app
from mailbot.cli import main
from mailbot.commands.intake import run_daemon
from mailbot.config import load_config
from mailbot.service import Robot
from tests.mailbot.e2e_support import (
    PW_ENV,
    append_all,
    backlog,
    message_id_of,
    replies,
    write_config,
)
from tests.mailbot.test_e2e_crash import _env, _wait_started
from tests.support.dovecot import Account, DovecotServer

pytestmark = pytest.mark.dovecot

# The catch-up interval is far longer than any wait below: only IDLE can wake the daemon.
SLOW_POLL = {"poll_interval_seconds": 600}
RECEIPT_WITHIN = 15.0


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


@contextmanager
def daemon(cfg: Path) -> Iterator[threading.Event]:
    """run_daemon on a thread; yields an event set after every finished pass."""
    passed = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []
    with open_app(load_config(cfg)) as app:

        def target() -> None:
            try:
                run_daemon(app, stop, on_pass=lambda _robot: passed.set())
            except BaseException as exc:  # noqa: BLE001 - reported to the test below
                errors.append(exc)

        thread = threading.Thread(target=target, name="mailbot-daemon", daemon=True)
        thread.start()
        try:
            assert passed.wait(30), "the daemon's first pass did not finish"
            yield passed
        finally:
            stop.set()
            thread.join(timeout=15)
        assert not thread.is_alive(), "the daemon did not stop"
        assert not errors, errors


def wait_receipts(smtp_server, count: int, timeout: float = RECEIPT_WITHIN) -> float:  # noqa: ANN001
    start = time.monotonic()
    got = smtp_server.handler.wait_for(count, timeout=timeout)
    assert len(got) >= count, f"only {len(got)} of {count} receipts after {timeout} s"
    return time.monotonic() - start


def test_idle_brings_the_receipt_within_seconds_and_survives_a_kick(
    tmp_path, dovecot, account, smtp_server
):
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox=SLOW_POLL)
    first, second, third = backlog(3, "idle")
    with daemon(cfg) as passed:
        time.sleep(0.5)  # let it settle into IDLE
        append_all(dovecot, account, [first])
        latency = wait_receipts(smtp_server, 1)
        print(f"APPEND to receipt with IDLE: {latency:.2f} s")
        assert replies(smtp_server.messages)[0].in_reply_to == message_id_of(first)

        # The server drops the connection (restart, admin kick): the daemon reconnects
        # with back-off and still answers within seconds, without losing or repeating mail.
        time.sleep(0.5)
        dovecot.kick(account)
        append_all(dovecot, account, [second])
        wait_receipts(smtp_server, 2)
        passed.clear()
        dovecot.kick(account)
        time.sleep(0.3)
        dovecot.kick(account)  # twice in a row, while reconnecting
        append_all(dovecot, account, [third])
        wait_receipts(smtp_server, 3)
    answered = [m.in_reply_to for m in replies(smtp_server.messages)]
    assert answered == [message_id_of(m) for m in (first, second, third)]
    assert dovecot.uids(account) == []


def test_a_failing_pass_does_not_end_the_daemon(
    tmp_path, dovecot, account, smtp_server, monkeypatch
):
    real = Robot.deliver
    failures = {"left": 2}

    def deliver(self):  # noqa: ANN001, ANN202
        if failures["left"]:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database is locked")
        return real(self)

    monkeypatch.setattr(Robot, "deliver", deliver)
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox=SLOW_POLL)
    (mail,) = backlog(1, "flaky")
    append_all(dovecot, account, [mail])
    with daemon(cfg):
        wait_receipts(smtp_server, 1)
    assert failures["left"] == 0
    assert replies(smtp_server.messages)[0].in_reply_to == message_id_of(mail)


def test_mailbot_run_sigterm_and_one_daemon_per_data_dir(tmp_path, dovecot, account, smtp_server):
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox=SLOW_POLL)
    log = tmp_path / "run.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), "run"],
            cwd=tmp_path,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        _wait_started(tmp_path / "data", proc)
        time.sleep(1.0)  # past the first pass, into IDLE
        (mail,) = backlog(1, "cli-run")
        append_all(dovecot, account, [mail])
        wait_receipts(smtp_server, 1)

        for args in (["run"], ["poll", "--once"]):
            second = subprocess.run(
                [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), *args],
                cwd=tmp_path,
                env=_env(),
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert second.returncode == 1, second.stderr
            assert str(proc.pid) in second.stderr
            assert "Traceback" not in second.stderr
        # `poll` starts its workers before it asks for the lock: refused, it stops them.
        parents = _worker_parents(tmp_path.resolve())
        assert proc.pid in parents  # the running daemon's own workers are seen
        assert parents <= {proc.pid, os.getpid()}
        assert proc.poll() is None, "the first daemon must keep running"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = log.read_text(errors="replace")
    assert "Traceback" not in text
    assert "mailbot stopped" in text
    assert [m.in_reply_to for m in replies(smtp_server.messages)] == [message_id_of(mail)]


def _worker_parents(cwd: Path) -> set[int]:
    """The daemon pids named by the live worker processes started in `cwd`: the zygote's
    third argument (the workers it forks share its command line). Other test runs on the
    machine have their own working directories."""
    parents = set()
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            if any(b"workers_zygote" in a for a in argv) and (entry / "cwd").resolve() == cwd:
                parents.add(int(argv[argv.index(b"-c") + 4]))
        except OSError:
            continue
    return parents


def test_missing_password_is_a_clear_message_not_a_traceback(
    tmp_path, dovecot, account, smtp_server, monkeypatch, capsys
):
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    monkeypatch.delenv(PW_ENV)
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    err = capsys.readouterr().err
    assert PW_ENV in err and "cấu hình" in err
