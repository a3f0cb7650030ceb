"""kill -9 of `mailbot run` while real LibreOffice converts: nothing of it survives or stays.

The daemon runs as a subprocess on a Maildir inbox and a `dir:` outbox, with TMPDIR inside
this test's directory: every conversion's profile (`-env:UserInstallation`) and temp dir then
carry that path, which is how this test knows LibreOffice processes and directories as its own.
"""

from __future__ import annotations

import email
import mailbox
import os
import shutil
import signal
import subprocess
import sys
import time
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from parsers.convert import TEMP_PREFIX
from tests.mailbot.intake_support import ROOT

pytestmark = [
    pytest.mark.soffice,
    pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice"),
]

DOC = ROOT / "tests" / "fixtures" / "forms" / "Mau 01 - Quan doan.doc"
MESSAGE_ID = "<soffice-kill-0001@e2e.thanhxuan.example>"


def _mail() -> bytes:
    """A unit's mail with three old Word files: converted one after another in one worker."""
    msg = EmailMessage()
    msg["From"] = "dangbo.khuongtrung@thanhxuan.example"
    msg["To"] = "bdv_quthanhxuan@hanoi.gov.vn"
    msg["Subject"] = "Gửi biểu mẫu Dân vận khéo"
    msg["Message-ID"] = MESSAGE_ID
    msg["Date"] = "Mon, 20 Jun 2022 09:00:00 +0700"
    msg.set_content("Kính gửi Ban Dân vận Quận ủy, xin gửi biểu mẫu.\n")
    data = DOC.read_bytes()
    for n in range(3):
        msg.add_attachment(
            data, maintype="application", subtype="msword", filename=f"Mẫu 01 bản {n + 1}.doc"
        )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def _config(tmp_path: Path) -> Path:
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'units_file = "{ROOT / "data" / "units.csv"}"\n'
        f'[inbox]\nurl = "maildir:{tmp_path / "inbox"}"\nprocess_since = "2000-01-01"\n'
        "poll_interval_seconds = 1\n"
        f'[outgoing]\nurl = "dir:{tmp_path / "outbox"}"\nmax_auto_replies_per_hour = 100\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        "[processing]\nworkers = 1\n",
        encoding="utf-8",
    )
    return cfg


def _start(cfg: Path, tmp: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["TMPDIR"] = str(tmp)
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "mailbot.cli", "--config", str(cfg), "run"],
            cwd=cfg.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )


def _ours(mark: str) -> dict[int, str]:
    """Live processes (pid -> command name) whose command line carries `mark`."""
    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
            stat = (proc / "stat").read_text()
            comm = (proc / "comm").read_text().strip()
        except OSError:
            continue
        if mark.encode() in cmdline and stat.rsplit(")", 1)[1].split()[0] != "Z":
            found[int(proc.name)] = comm
    return found


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _replies(outbox: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(outbox.glob("*.eml")) if outbox.is_dir() else []:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if str(msg["In-Reply-To"] or "").strip() == MESSAGE_ID:
            out.append(msg)
    return out


def test_kill_9_during_conversion_leaves_no_libreoffice_and_no_temp(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    mailbox.Maildir(str(tmp_path / "inbox"), create=True).add(_mail())
    cfg = _config(tmp_path)
    log = tmp_path / "daemon.log"
    mark = str(tmp / TEMP_PREFIX)

    daemon = _start(cfg, tmp, log)
    try:
        end = time.monotonic() + 30
        seen: dict[int, str] = {}
        while "soffice.bin" not in seen.values():
            assert time.monotonic() < end, f"no soffice.bin: {log.read_text()[-2000:]}"
            assert daemon.poll() is None, log.read_text()[-2000:]
            seen.update(_ours(mark))
            time.sleep(0.05)
        daemon.kill()
        daemon.wait(10)
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait(10)

    # Within 10 s not one process of its conversions is left: guard, oosplash, soffice.bin.
    end = time.monotonic() + 10
    while left := _ours(mark):
        assert time.monotonic() < end, f"still running after kill -9: {left}"
        time.sleep(0.1)
    killed_dirs = sorted(p.name for p in tmp.glob(f"{TEMP_PREFIX}*"))
    assert killed_dirs  # kill -9: its `finally` never ran
    # The worker that ran the conversion (its pid names the directory) is gone too.
    workers = {int(name[len(TEMP_PREFIX) :].split("-")[0]) for name in killed_dirs}
    while alive := {pid for pid in workers if _running(pid)}:
        assert time.monotonic() < end, f"worker still running after kill -9: {alive}"
        time.sleep(0.1)

    # The next start removes what the killed conversion left and answers the mail, once.
    daemon = _start(cfg, tmp, log)
    try:
        end = time.monotonic() + 60
        while not _replies(tmp_path / "outbox"):
            assert time.monotonic() < end, log.read_text()[-3000:]
            assert daemon.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        time.sleep(1.5)  # one more pass: nothing is sent twice
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
    assert daemon.returncode == 0, log.read_text()[-2000:]
    assert len(_replies(tmp_path / "outbox")) == 1
    assert not any((tmp / name).exists() for name in killed_dirs), killed_dirs
    assert list(tmp.glob(f"{TEMP_PREFIX}*")) == []
    assert not _ours(mark)
