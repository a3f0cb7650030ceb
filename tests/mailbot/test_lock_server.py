"""The mailbox lock on PostgreSQL: one holder, a standby that takes over, a lost lock noticed."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.db import Database, open_database
from mailbot.lock import MailboxLock, MailboxTaken, advisory_key, mailbox_key
from tests.support.postgres import PASSWORD, PASSWORD_ENV, PostgresServer, mailbox_lock_holders


@pytest.fixture
def database(pg_url: str, tmp_path: Path) -> Iterator[Database]:
    db = open_database(tmp_path, url=pg_url, password=PASSWORD, migrate=False)
    yield db
    db.dispose()


def test_the_mailbox_identity_never_holds_a_password() -> None:
    from mailbot.config import Config, InboxConfig

    config = Config(inbox=InboxConfig(url="imap://robot:secret@mail.example:993/X", folder="X"))
    assert mailbox_key(config) == "imap://robot@mail.example:993/X#X"


def test_keys_differ_by_mailbox_and_fit_a_bigint() -> None:
    a, b = advisory_key("imap://a@host/INBOX#INBOX"), advisory_key("imap://b@host/INBOX#INBOX")
    assert a != b
    assert 0 <= a < 2**63 and 0 <= b < 2**63


def test_a_second_holder_is_refused_naming_the_first(database: Database) -> None:
    first = MailboxLock(database.engine, "hộp thư 1")
    second = MailboxLock(database.engine, "hộp thư 1")
    other = MailboxLock(database.engine, "hộp thư 2")
    try:
        assert first.acquire()
        with pytest.raises(MailboxTaken) as info:
            second.acquire()
        assert "đang được một mailbot khác xử lý" in str(info.value)
        assert f":{os.getpid()}" in str(info.value)  # the holder, host:pid
        assert other.acquire()  # another mailbox is another lock
        first.release()
        assert second.acquire()
    finally:
        for lock in (first, second, other):
            lock.release()


def test_a_standby_takes_over_when_the_holder_connection_dies(
    database: Database, postgres: PostgresServer
) -> None:
    active = MailboxLock(database.engine, "mbox", poll_seconds=0.2)
    standby = MailboxLock(database.engine, "mbox", poll_seconds=0.2)
    lost = threading.Event()
    stop = threading.Event()
    took_over: list[float] = []
    try:
        assert active.acquire()
        active.watch(lost.set)

        def wait() -> None:
            if standby.acquire(standby=stop):
                took_over.append(time.monotonic())

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(1.0)
        assert not took_over and not lost.is_set()
        # The holder's session ends as when its process is killed: the server frees the lock.
        with postgres.admin() as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name LIKE 'mailbot %' AND pid IN "
                "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)"
            )
        killed = time.monotonic()
        waiter.join(timeout=10)
        assert took_over and took_over[0] - killed < 5
        assert standby.held
        # The old holder hears that its lock is gone (its daemon then stops).
        assert lost.wait(timeout=5)
        assert not active.held
    finally:
        stop.set()
        active.release()
        standby.release()


def test_a_standby_asked_to_stop_gives_up_waiting(database: Database) -> None:
    active = MailboxLock(database.engine, "mbox")
    standby = MailboxLock(database.engine, "mbox", poll_seconds=0.1)
    stop = threading.Event()
    try:
        assert active.acquire()
        threading.Timer(0.5, stop.set).start()
        assert standby.acquire(standby=stop) is False
        assert not standby.held
    finally:
        active.release()
        standby.release()


def test_a_server_restart_stops_the_active_daemon_which_then_exits_1(
    postgres: PostgresServer, pg_url: str, tmp_path: Path
) -> None:
    """The lock went with the server's restart (another daemon may hold it now): the daemon
    stops after the mail in hand, exit status 1, for systemd to start it again."""
    import subprocess
    import sys

    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{inbox}"\npoll_interval_seconds = 1\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\ndatabase_url = "{pg_url}"\n'
        f'password_env = "{PASSWORD_ENV}"\n',
        encoding="utf-8",
    )
    log = tmp_path / "run.log"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    with log.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), "run"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + 60
        while not any(h.endswith(f":{proc.pid}") for h in mailbox_lock_holders(pg_url)):
            assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        postgres.restart()
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    text = log.read_text(errors="replace")
    assert "lost the lock on mailbox" in text and "mailbot stopped" in text
    assert "Traceback" not in text
