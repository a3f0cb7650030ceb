"""systemd notify: READY, WATCHDOG within the interval, STATUS, STOPPING and a clean SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from mailbot.notify import Notifier, StopRequested, sliced_wait, stop_between_mails

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def listener():  # noqa: ANN201
    """A datagram socket standing in for systemd's (short path: AF_UNIX has a 108-byte limit)."""
    folder = tempfile.mkdtemp(prefix="mbn-")
    path = os.path.join(folder, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    yield sock, path
    sock.close()
    os.unlink(path)
    os.rmdir(folder)


def _receive(sock: socket.socket, until: float) -> list[tuple[float, dict[str, str]]]:
    got = []
    while time.monotonic() < until:
        try:
            data = sock.recv(4096)
        except TimeoutError:
            continue
        fields = dict(line.split("=", 1) for line in data.decode("utf-8").splitlines())
        got.append((time.monotonic(), fields))
    return got


def test_notifier_abstract_socket_and_watchdog_interval():
    name = f"mailbot-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        n = Notifier({"NOTIFY_SOCKET": "@" + name, "WATCHDOG_USEC": "2000000"})
        assert n.enabled and n.max_wait == 1.0
        n.ready("sẵn sàng")
        n.ready("lần hai")  # once only
        n.watchdog()
        assert sock.recv(4096).decode() == "READY=1\nSTATUS=sẵn sàng"
        assert sock.recv(4096) == b"WATCHDOG=1"
        n.close()
    finally:
        sock.close()
    quiet = Notifier({"WATCHDOG_USEC": "2000000", "WATCHDOG_PID": "1"})
    assert not quiet.enabled and quiet.max_wait is None and quiet.send(READY="1") is False


def test_sliced_wait_feeds_the_heartbeat_and_stop_ends_a_pass():
    beats: list[float] = []
    stop = threading.Event()
    started = time.monotonic()
    woke = sliced_wait(lambda t, ev: ev.wait(t), 0.5, stop, lambda: beats.append(1), 0.1)
    assert woke is False and time.monotonic() - started >= 0.5 and len(beats) >= 4
    progress = stop_between_mails(stop, lambda: beats.append(2))
    progress("đã xử lý 1/2 thư")
    stop.set()
    with pytest.raises(StopRequested):
        progress("đã xử lý 2/2 thư")


def test_run_under_a_service_manager(tmp_path, listener):
    sock, path = listener
    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{inbox}"\npoll_interval_seconds = 3600\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        "[processing]\nworkers = 0\n",
        encoding="utf-8",
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NOTIFY_SOCKET": path,
        "WATCHDOG_USEC": "2000000",
        "MAILBOT_CONFIG": str(cfg),
    }
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        got = []
        deadline = time.monotonic() + 120
        while not any(f.get("READY") == "1" for _, f in got) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            got += _receive(sock, time.monotonic() + 0.5)
        ready = [(t, f) for t, f in got if f.get("READY") == "1"]
        assert ready, proc.poll()
        assert "chờ xử lý 0 thư" in ready[0][1]["STATUS"]
        after = _receive(sock, time.monotonic() + 2.2)
        pings = [t for t, f in after if f.get("WATCHDOG") == "1"]
        assert len(pings) >= 2
        assert max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 2.0
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stopping = _receive(sock, time.monotonic() + 0.5)
    assert any(f.get("STOPPING") == "1" for _, f in stopping)
    assert "mailbot stopped" in err
