"""The data directory lock: one holder at a time, the holder named, freed when it dies."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.lock import AlreadyRunning, DataDirLock

HOLDER = """
import sys
from pathlib import Path
from mailbot.lock import DataDirLock
lock = DataDirLock(Path(sys.argv[1]))
lock.acquire()
print("locked", flush=True)
sys.stdin.read()
"""


def test_a_second_holder_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with DataDirLock(tmp_path) as first:
        assert first.held
        assert (tmp_path / "mailbot.lock").read_text().strip() == str(os.getpid())
        with pytest.raises(AlreadyRunning) as info, DataDirLock(tmp_path):
            pass
        assert info.value.pid == os.getpid()
        assert str(os.getpid()) in str(info.value)
        assert str(tmp_path) in str(info.value)
    assert not first.held
    with DataDirLock(tmp_path) as again:  # released: the next one gets it
        assert again.held


def test_the_lock_creates_the_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "var" / "mailbot"
    with DataDirLock(data):
        assert (data / "mailbot.lock").is_file()


def test_another_process_holding_the_lock_is_named_and_kill_9_frees_it(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(AlreadyRunning) as info:
            DataDirLock(tmp_path).acquire()
        assert info.value.pid == proc.pid
        assert f"tiến trình {proc.pid}" in str(info.value)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()
    with DataDirLock(tmp_path) as lock:  # the kernel released the dead holder's lock
        assert lock.held
        assert (tmp_path / "mailbot.lock").read_text().strip() == str(os.getpid())


def test_acquire_twice_on_one_object_is_harmless(tmp_path: Path) -> None:
    lock = DataDirLock(tmp_path)
    lock.acquire()
    lock.acquire()
    lock.release()
    lock.release()
    assert not lock.held
