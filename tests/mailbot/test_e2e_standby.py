"""Two daemons for one mailbox on one PostgreSQL: the second waits as a hot standby, and takes
over within a minute when the first is killed with SIGKILL in the middle of a batch. Every
mail is still processed once and answered once (receipts counted at the SMTP server by
In-Reply-To)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.mailbot.e2e_support import PW_ENV, Db, append_all, backlog, replies, write_config
from tests.mailbot.test_e2e_crash import (
    _start_run,
    _wait_started,
    assert_exactly_once,
    storage_for,
)
from tests.support.dovecot import Account, DovecotServer
from tests.support.postgres import mailbox_lock_holders

pytestmark = pytest.mark.dovecot

MAILS = 40


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def _wait_for(text: str, log: Path, timeout: float) -> float:
    """Until `text` appears in the log; when it did (monotonic)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in log.read_text(errors="replace"):
            return time.monotonic()
        time.sleep(0.05)
    raise AssertionError(f"{text!r} not in {log.name}: {log.read_text(errors='replace')[-3000:]}")


def test_the_standby_takes_over_a_killed_daemon_and_nothing_is_done_twice(
    tmp_path, dovecot, account, smtp_server, pg_url
):
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        inbox={"batch_size": 5, "poll_interval_seconds": 2},
        processing={"workers": 0},
        storage=storage_for(pg_url),
    )
    data_dir = tmp_path / "data"
    active_log, standby_log = tmp_path / "active.log", tmp_path / "standby.log"
    db = Db(data_dir, pg_url)
    active = standby = None
    try:
        active = _start_run(cfg, active_log)
        _wait_started(data_dir, active, db_url=pg_url)
        standby = _start_run(cfg, standby_log)
        _wait_for("standby:", standby_log, 30)
        assert mailbox_lock_holders(pg_url) == [_holder(active.pid)]

        mails = backlog(MAILS, "standby")
        append_all(dovecot, account, mails)
        # Killed once it has decided a few mails: in the middle of the backlog.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(_processed(db)) < 3:
            time.sleep(0.02)
        active.send_signal(signal.SIGKILL)
        assert active.wait(timeout=10) == -signal.SIGKILL
        killed = time.monotonic()
        done_before = len(_processed(db))
        assert 0 < done_before < MAILS, done_before

        took_over = _wait_for("taking over mailbox", standby_log, 60)
        print(f"standby took over {took_over - killed:.1f} s after the kill")
        assert took_over - killed < 60
        _wait_started(data_dir, standby, db_url=pg_url)

        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            sent = db.rows(
                "SELECT COUNT(*) AS n FROM outbox WHERE status = 'sent' "
                "AND kind IN ('receipt', 'notice')"
            )[0]["n"]
            answered = {m.in_reply_to for m in replies(smtp_server.messages)}
            if sent == MAILS and len(answered) == MAILS:
                break
            time.sleep(0.2)
        time.sleep(2.0)  # room for a duplicate to show up
        standby.send_signal(signal.SIGTERM)
        assert standby.wait(timeout=30) == 0, standby_log.read_text(errors="replace")[-3000:]
    finally:
        for proc in (active, standby):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    resends = assert_exactly_once(
        tmp_path, dovecot, account, smtp_server, mails, allow_same_id_resend=True, db_url=pg_url
    )
    print(f"{done_before} of {MAILS} processed before the kill; same-Message-ID resends: {resends}")
    for log in (active_log, standby_log):
        assert "Traceback" not in log.read_text(errors="replace")


def _processed(db: Db) -> list[object]:
    return db.rows("SELECT id FROM mails WHERE status = 'processed'")


def _holder(pid: int) -> str:
    import socket

    return f"mailbot {socket.gethostname()}:{pid}"
