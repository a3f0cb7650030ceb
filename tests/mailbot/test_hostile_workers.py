"""Hostile and slow work in the worker processes: killed whole, cleaned up, no secrets inside."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from mailbot.workers import Decider, DecisionTimeout, WorkerDied, worker_environment
from parsers.convert import (
    TEMP_PREFIX,
    ConversionFailed,
    clean_stale_temp,
    convert_with_soffice,
)
from tests.mailbot import worker_funcs

# A stand-in for soffice shaped like the real one: the command starts a helper (oosplash ->
# soffice.bin) that does the work, and records both pids. "hang": never finishes;
# "limit": writes the address-space limit it runs under as the converted file.
FAKE_SOFFICE = """#!/bin/sh
out=""; prev=""
for a in "$@"; do [ "$prev" = "--outdir" ] && out="$a"; prev="$a"; done
echo $$ > {dir}/child.pid
case "{mode}" in
  hang) sleep 300 & echo $! > {dir}/grandchild.pid; wait ;;
  limit) ulimit -v > "$out/input.docx" ;;
esac
"""


def fake_soffice(tmp_path: Path, mode: str) -> Path:
    exe = tmp_path / f"soffice-{mode}"
    exe.write_text(FAKE_SOFFICE.format(dir=tmp_path, mode=mode))
    exe.chmod(0o755)
    return exe


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def wait_pid_file(path: Path, timeout: float = 30) -> int:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never written")


def gone(*pids: int, within: float = 5) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def temp_dirs_of(pid: int) -> list[Path]:
    return list(Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}{pid}-*"))


def test_a_timed_out_conversion_is_killed_with_its_helpers_and_leaves_nothing(tmp_path):
    exe = fake_soffice(tmp_path, "hang")
    with pytest.raises(ConversionFailed, match="timed out"):
        convert_with_soffice(b"doc", "doc", "docx", timeout=1, exe=str(exe))
    child = int((tmp_path / "child.pid").read_text())
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert gone(child, grandchild)
    assert temp_dirs_of(os.getpid()) == []


def test_the_conversion_runs_under_its_own_memory_limit(tmp_path):
    exe = fake_soffice(tmp_path, "limit")
    out = convert_with_soffice(b"doc", "doc", "docx", exe=str(exe), memory_mb=700)
    assert int(out) == 700 * 1024  # ulimit -v counts KiB


def test_a_worker_stopped_for_time_takes_its_conversion_group_with_it(tmp_path):
    exe = fake_soffice(tmp_path, "hang")
    ctx = {"exe": str(exe), "pid_file": str(tmp_path / "worker.pid")}
    pool = Decider(1, 4, 0, inline=lambda: None, worker_fn=worker_funcs.convert)
    try:
        [(_, outcome)] = list(pool.decide([("slow", b"doc", ctx)]))
    finally:
        pool.close()
    assert isinstance(outcome, DecisionTimeout)
    worker = int((tmp_path / "worker.pid").read_text())
    child = int((tmp_path / "child.pid").read_text())
    grandchild = int((tmp_path / "grandchild.pid").read_text())
    assert gone(worker, child, grandchild)
    assert temp_dirs_of(worker) == []


def test_a_worker_killed_outright_still_takes_its_conversion_group(tmp_path):
    # kill -9 runs no handler: the converter's guard sees its parent die and kills its group.
    exe = fake_soffice(tmp_path, "hang")
    ctx = {"exe": str(exe), "pid_file": str(tmp_path / "worker.pid")}
    pool = Decider(1, 60, 0, inline=lambda: None, worker_fn=worker_funcs.convert)
    results = pool.decide([("k", b"doc", ctx)])
    try:
        grandchild_file = tmp_path / "grandchild.pid"

        def kill_when_converting() -> None:
            wait_pid_file(grandchild_file)
            os.kill(wait_pid_file(tmp_path / "worker.pid"), signal.SIGKILL)

        import threading

        killer = threading.Thread(target=kill_when_converting)
        killer.start()
        [(_, outcome)] = list(results)
        killer.join()
    finally:
        pool.close()
    assert isinstance(outcome, WorkerDied)
    worker = int((tmp_path / "worker.pid").read_text())
    assert gone(int((tmp_path / "child.pid").read_text()), int(grandchild_file.read_text()))
    assert temp_dirs_of(worker) == []  # removed by the daemon on the worker's behalf


def test_a_worker_killed_for_memory_is_reported_and_the_pool_goes_on():
    pool = Decider(1, 30, 0, inline=lambda: None, worker_fn=worker_funcs.killed)
    try:
        out = dict(pool.decide([(1, b"die", None), (2, b"ok", None)]))
    finally:
        pool.close()
    assert isinstance(out[1], WorkerDied) and out[2] == 2


def test_workers_get_no_secrets(monkeypatch):
    monkeypatch.setenv("MAILBOT_IMAP_PASSWORD", "mật khẩu")
    monkeypatch.setenv("SMTP_PASS", "bí mật")  # named in the config's password_env
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", "/run/credentials/mailbot.service")
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("MAILBOT_KEEP_ME", "1")
    pool = Decider(
        1, 30, 0, inline=lambda: None, worker_fn=worker_funcs.environment, secret_env=["SMTP_PASS"]
    )
    try:
        [(_, env)] = list(pool.decide([(1, b"", None)]))
        assert pool._zygote is not None  # the process the workers are forked from
        zygote_env = Path(f"/proc/{pool._zygote.proc.pid}/environ").read_bytes()
    finally:
        pool.close()
    assert b"MAILBOT_KEEP_ME=1" in zygote_env
    assert b"SMTP_PASS" not in zygote_env and "bí mật".encode() not in zygote_env
    for name in ("MAILBOT_IMAP_PASSWORD", "SMTP_PASS", "CREDENTIALS_DIRECTORY", "NOTIFY_SOCKET"):
        assert name not in env
    assert env["MAILBOT_KEEP_ME"] == "1"
    assert worker_environment({"x_password_file": "1", "PATH": "/bin"}) == {"PATH": "/bin"}


def test_stale_conversion_directories_are_removed_at_start(tmp_path):
    gone = subprocess.Popen(["true"])
    gone.wait()  # a process that no longer exists (killed before its `finally` ran)
    old = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-abc"
    new = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-def"
    orphan = tmp_path / f"{TEMP_PREFIX}{gone.pid}-ghi"
    other = tmp_path / "someone-elses"
    for d in (old, new, orphan, other):
        (d / "in").mkdir(parents=True)
        (d / "in" / "input.doc").write_bytes(b"a unit's attachment")
    past = time.time() - 3600
    os.utime(old, (past, past))
    assert clean_stale_temp(600, root=str(tmp_path)) == 2
    assert not old.exists() and not orphan.exists()
    assert new.exists() and other.exists()  # a live process's conversion is left alone


def soffice_pids(owner: int) -> set[int]:
    """Processes of a real LibreOffice conversion run by process `owner` (by their profile)."""
    mark = f"{TEMP_PREFIX}{owner}-".encode()
    pids = set()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if mark in cmdline and alive(int(proc.name)):
                pids.add(int(proc.name))
    return pids


def none_left(owner: int, within: float = 5) -> bool:
    end = time.monotonic() + within
    while soffice_pids(owner):
        if time.monotonic() > end:
            return False
        time.sleep(0.1)
    return True


needs_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")


@pytest.mark.soffice
@needs_soffice
def test_real_libreoffice_is_killed_whole_on_timeout():
    from tests.parsers.builders import document

    with pytest.raises(ConversionFailed, match="timed out"):
        convert_with_soffice(document("Mẫu số 02"), "docx", "doc", timeout=1.5)
    assert none_left(os.getpid())
    assert temp_dirs_of(os.getpid()) == []


@pytest.mark.soffice
@needs_soffice
def test_real_libreoffice_dies_with_a_worker_killed_outright(tmp_path):
    # The reported case: soffice.bin ran on for minutes after its worker was killed.
    import threading

    from tests.parsers.builders import document

    ctx = {"pid_file": str(tmp_path / "worker.pid"), "direction": ("docx", "doc")}
    pool = Decider(1, 60, 0, inline=lambda: None, worker_fn=worker_funcs.convert)
    seen: dict[int, str] = {}  # pid -> command name, while it ran

    def kill_when_soffice_runs() -> None:
        worker = wait_pid_file(tmp_path / "worker.pid")
        end = time.monotonic() + 30
        while "soffice.bin" not in seen.values() and time.monotonic() < end:
            seen.update({p: _comm(p) for p in soffice_pids(worker)})
            time.sleep(0.05)
        time.sleep(0.5)  # soffice.bin at work, as in the report
        os.kill(worker, signal.SIGKILL)

    killer = threading.Thread(target=kill_when_soffice_runs)
    killer.start()
    try:
        [(_, outcome)] = list(pool.decide([("k", document("Mẫu số 02"), ctx)]))
        killer.join()
        worker = int((tmp_path / "worker.pid").read_text())
        if not isinstance(outcome, WorkerDied):
            pytest.skip("the conversion finished before the worker could be killed")
        assert "soffice.bin" in seen.values(), seen
        assert none_left(worker) and not any(alive(p) for p in seen)
    finally:
        killer.join()
        pool.close()  # removes what the dying converter still held
    assert temp_dirs_of(worker) == []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _reported_workbook() -> bytes:
    """The reported file: about 19 MB, one row of 8 million cells, the sheet part named .dat."""
    import io
    import zipfile

    from tests.parsers.builders import workbook

    src = zipfile.ZipFile(io.BytesIO(workbook(("A1", "Mẫu số 01"))))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(info.filename, src.read(info).replace(b"sheet1.xml", b"sheet1.dat"))
        with dst.open("xl/worksheets/sheet1.dat", "w", force_zip64=True) as fh:
            fh.write(
                b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                b'<sheetData><row r="1">'
            )
            for n in range(8):
                fh.write(b"".join(b"<c><v>%d</v></c>" % (n * 1_000_000 + i) for i in range(10**6)))
            fh.write(b"</row></sheetData></worksheet>")
    return out.getvalue()


@pytest.mark.soak
def test_soak_the_reported_eight_million_cell_row_in_a_worker():
    from parsers.dispatch import parse_file

    data = _reported_workbook()
    result = parse_file(data, "Mau01.xlsx")  # the size checks refuse it before reading
    assert [p.code for p in result.problems] == ["file-too-large"]
    pool = Decider(1, 120, 1024, inline=lambda: None, worker_fn=worker_funcs.parse)
    try:
        start = time.monotonic()
        [(_, codes)] = list(pool.decide([(1, data, None)]))
    finally:
        pool.close()
    assert codes == ["file-too-large"] and time.monotonic() - start < 60


# A daemon in miniature: two workers decide a mail each, then it waits to be killed.
_DAEMON = """
import time
from mailbot.workers import Decider
from tests.mailbot import worker_funcs
pool = Decider(2, 60, 0, inline=lambda: None, worker_fn=worker_funcs.whoami)
out = dict(pool.decide([(1, b"a", None), (2, b"b", None)]))
print(pool._zygote.proc.pid, *(pid for pid, _ in out.values()), flush=True)
time.sleep(120)
"""


def test_no_worker_outlives_a_daemon_killed_outright():
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-c", _DAEMON],
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(set(pids)) == 3 and all(alive(p) for p in pids)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert gone(*pids)  # the zygote died with the daemon, the workers with the zygote
