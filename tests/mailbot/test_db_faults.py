"""The database and the disk under faults: empty, corrupt, locked, full; file modes."""

from __future__ import annotations

import contextlib
import logging
import mailbox
import os
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.cli import main
from mailbot.config import load_config
from tests.mailbot.test_scheduler import FORMS, drop, mail_with


def _config(tmp_path: Path, data_dir: Path, reserve_mb: int = 0) -> Path:
    mailbox.Maildir(str(tmp_path / "inbox"), create=True).close()
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'units_file = "{Path(__file__).parents[2] / "data" / "units.csv"}"\n'
        f'[inbox]\nurl = "maildir:{tmp_path / "inbox"}"\nprocess_since = "2000-01-01"\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "outbox"}"\nmax_auto_replies_per_hour = 100\n'
        f'[storage]\ndata_dir = "{data_dir}"\nreserve_mb = {reserve_mb}\n'
        "[processing]\nworkers = 0\n",
        encoding="utf-8",
    )
    return cfg


@pytest.mark.parametrize(
    ("content", "said"),
    [(b"", "tệp rỗng"), (b"PK\x03\x04 not a database at all" * 100, "không phải tệp SQLite")],
)
def test_an_empty_or_foreign_file_is_refused_with_the_way_to_restore(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, said: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / dbm.DB_FILE_NAME).write_bytes(content)
    cfg = _config(tmp_path, data)
    assert main(["--config", str(cfg), "outbox", "retry", "--all-failed"]) == 1
    err = capsys.readouterr().err
    assert said in err and "mailbot backup" in err and "Traceback" not in err
    assert (data / dbm.DB_FILE_NAME).read_bytes() == content  # left as it was, for forensics


def test_a_damaged_database_is_refused_not_half_used(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with dbm.open_database(data) as database, database.session() as s:
        for n in range(300):
            dbm.add_event(s, "t", at=dbm.utcnow(), detail="x" * 200 + str(n))
    path = data / dbm.DB_FILE_NAME
    with path.open("r+b") as f:  # a disk that lost some pages
        f.seek(4096 * 3)
        f.write(os.urandom(4096 * 4))
    with pytest.raises(dbm.DatabaseUnusable, match="bị hỏng"):
        dbm.open_database(data)


def test_a_lock_held_at_start_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    dbm.open_database(data).dispose()
    holder = sqlite3.connect(data / dbm.DB_FILE_NAME, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(2.0, lambda: holder.execute("ROLLBACK"))
    timer.start()
    start = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING):
            database = dbm.open_database(data, busy_timeout_ms=300)
        database.dispose()
    finally:
        timer.join()
        holder.close()
    assert time.monotonic() - start >= 1.5
    assert "locked by another process; waiting" in caplog.text


def test_a_lock_held_too_long_ends_with_an_error_not_a_hang(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dbm.open_database(data).dispose()
    holder = sqlite3.connect(data / dbm.DB_FILE_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(Exception, match="locked"):
            dbm.open_database(data, busy_timeout_ms=100, lock_wait_seconds=0.5)
    finally:
        holder.close()


def test_the_database_and_its_wal_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # a permissive umask, as by hand outside systemd
    try:
        with dbm.open_database(tmp_path / "data") as database:
            with database.session() as s:
                dbm.add_event(s, "t", at=dbm.utcnow())
            modes = {
                p.name: p.stat().st_mode & 0o777
                for p in (tmp_path / "data").glob("mailbot.sqlite3*")
            }
    finally:
        os.umask(old)
    assert modes == {
        "mailbot.sqlite3": 0o600,
        "mailbot.sqlite3-wal": 0o600,
        "mailbot.sqlite3-shm": 0o600,
    }


def test_the_wal_is_truncated_by_checkpoints(tmp_path: Path) -> None:
    with dbm.open_database(tmp_path / "data") as database:
        with database.session() as s:
            for n in range(1000):
                dbm.add_event(s, "t", at=dbm.utcnow(), detail="y" * 500 + str(n))
        wal = tmp_path / "data" / "mailbot.sqlite3-wal"
        assert wal.stat().st_size > 500_000
        assert database.checkpoint()
        assert wal.stat().st_size == 0


@contextlib.contextmanager
def small_disk(path: Path, size_mb: int) -> Iterator[Path]:
    """A tmpfs of `size_mb` at `path` (root only); skips where it cannot be mounted."""
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0700", "tmpfs", str(path)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace')}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path, leave_bytes: int) -> Path:
    """Fill the disk until about `leave_bytes` are free; the filler file."""
    filler = disk / "filler"
    with filler.open("ab") as f:
        while True:
            free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
            if free <= leave_bytes:
                break
            try:
                f.write(b"\0" * min(256 * 1024, max(4096, free - leave_bytes)))
                f.flush()
            except OSError:
                break
    return filler


def test_a_full_disk_holds_intake_back_and_recovers_when_space_returns(tmp_path: Path) -> None:
    name = sorted(p.name for p in FORMS.iterdir() if p.suffix == ".xlsx")[0]
    with small_disk(tmp_path / "disk", 24) as disk:
        cfg = _config(tmp_path, disk / "data", reserve_mb=2)
        config = load_config(cfg)
        with open_app(config) as app:
            robot = app.robot()
            drop(tmp_path / "inbox", mail_with("dangbo.khuongtrung@thanhxuan.example", name, n=1))
            assert robot.run_once().sent == 1

            # Below the reserve: new mail stays on the server, nothing is lost or half-done.
            filler = fill(disk, 1024 * 1024)
            drop(tmp_path / "inbox", mail_with("hoiccb@thanhxuan.example", name, n=2))
            stats = robot.run_once()
            assert stats.fetched == 0
            with app.database.session(write=False) as s:
                assert [e.kind for e in dbm.events_since(s, dbm.utcnow().replace(year=2000))][
                    -1:
                ] == ["disk-low"]

            # Completely full: passes fail (the daemon loop logs and retries them).
            fill(disk, 0)
            for _ in range(3):
                with contextlib.suppress(Exception):
                    robot.run_once()

            # Space returns: the daemon takes the mail in and answers it, once.
            filler.unlink()
            stats = robot.run_once()
            assert (stats.fetched, stats.processed, stats.sent) == (1, 1, 1)
            assert robot.run_once().sent == 0
    sent = list((tmp_path / "outbox").iterdir())
    assert len([p for p in sent if p.suffix == ".eml"]) == 2
