"""Convert .doc/.odt/.ods/.xls to OOXML with headless LibreOffice, isolated in a temp dir."""

from __future__ import annotations

import contextlib
import ctypes
import functools
import logging
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

# Export filters by target extension.
_FILTERS = {
    "docx": "docx:MS Word 2007 XML",
    "xlsx": "xlsx:Calc MS Excel 2007 XML",
    # The reverse directions make test inputs the way units' old software saves them.
    "doc": "doc:MS Word 97",
    "xls": "xls:MS Excel 97",
    "odt": "odt:writer8",
    "ods": "ods:calc8",
}
# Source extensions we hand to LibreOffice: the temp file is always "input.<ext>".
_SOURCES = {"doc", "docx", "odt", "rtf", "xls", "xlsx", "ods", "html", "xml"}
_MAX_OUTPUT = 50 * 1024 * 1024
_KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
# Address space of one conversion (LibreOffice maps about 700 MB just to start); never above
# what the calling process may use itself (a worker's own limit is inherited).
DEFAULT_MEMORY_MB = 1536
# Temporary directories: "mailbot-soffice-<pid of the converting process>-<random>", so the
# daemon can remove those of a worker it killed, and stale ones at start.
TEMP_PREFIX = "mailbot-soffice-"
# The converter's first process: in its own session (a process group of its own), it dies
# with its parent (PR_SET_PDEATHSIG: SIGTERM) and then kills its whole group, LibreOffice's
# oosplash and soffice.bin included, which no death signal of their own would reach.
_GUARD = 'trap "kill -KILL 0" TERM HUP INT; "$@" & wait $!; exit $?'
_PR_SET_PDEATHSIG = 1


# (data, source extension, target extension, timeout in seconds) -> the converted file.
# Raises ConversionFailed, or ConversionUnavailable when no converter can run here.
OfficeConverter = Callable[[bytes, str, str, float], bytes]


class ConversionUnavailable(Exception):
    """LibreOffice (soffice) is not installed on this machine."""


class ConversionFailed(Exception):
    """LibreOffice ran but produced no usable file (bad input, timeout, crash)."""


def soffice_path() -> str | None:
    """The soffice executable on the PATH, or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def soffice_converter(
    exe: str | None = None, memory_mb: int | None = None
) -> OfficeConverter | None:
    """convert_with_soffice when LibreOffice is installed here, else None.

    `exe` replaces the soffice command (tests inject a slow one); both arguments travel
    with the converter to the worker processes (a partial of a module function pickles).
    """
    if exe is None and memory_mb is None:
        return convert_with_soffice if soffice_path() is not None else None
    if exe is None and soffice_path() is None:
        return None
    return functools.partial(convert_with_soffice, exe=exe, memory_mb=memory_mb)


def _libc_prctl() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)  # the C library is loaded already: no ldconfig run
        return libc.prctl
    except (OSError, AttributeError):
        return None


def _child_setup(memory_bytes: int, parent_pid: int) -> Callable[[], None]:
    """The pre-exec step: death signal and memory limit (prepared here: no import, no dlopen
    after fork, which may deadlock in a process with threads)."""
    prctl = _libc_prctl()
    setrlimit, rlimit_as = resource.setrlimit, resource.RLIMIT_AS
    getppid, exit_now = os.getppid, os._exit

    def setup() -> None:
        if prctl is not None:
            prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
            if getppid() != parent_pid:  # the parent died before prctl took effect
                exit_now(1)
        if memory_bytes > 0:
            setrlimit(rlimit_as, (memory_bytes, memory_bytes))

    return setup


def _memory_bytes(memory_mb: int) -> int:
    """The conversion's address-space limit, within what this process may use."""
    want = memory_mb * 1024 * 1024 if memory_mb > 0 else resource.RLIM_INFINITY
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    for cap in (soft, hard):
        if cap != resource.RLIM_INFINITY and (want == resource.RLIM_INFINITY or want > cap):
            want = cap
    return 0 if want == resource.RLIM_INFINITY else want


def remove_temp_dirs(owner_pid: int, root: str | None = None) -> int:
    """Remove the temporary directories of conversions run by process `owner_pid` (dead);
    returns how many are still there (a dying converter may still be writing in one)."""
    pattern = f"{TEMP_PREFIX}{owner_pid}-*"
    base = Path(root or tempfile.gettempdir())
    for path in base.glob(pattern):
        shutil.rmtree(path, ignore_errors=True)
    return sum(1 for _ in base.glob(pattern))


def _owner_gone(path: Path) -> bool:
    """Whether the process named in a conversion directory's name no longer exists."""
    pid_text = path.name[len(TEMP_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit() or int(pid_text) <= 0:
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # alive, another user's
    try:  # a zombie (killed, not yet reaped) is gone too
        stat = Path(f"/proc/{pid_text}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


def clean_stale_temp(max_age: float, root: str | None = None) -> int:
    """At daemon start: remove conversion directories whose process is gone or that are older
    than `max_age` seconds (their process was killed before its `finally` ran). Returns how
    many were removed."""
    base = Path(root or tempfile.gettempdir())
    cutoff = time.time() - max_age
    removed = 0
    for path in base.glob(f"{TEMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            if (
                path.is_dir()
                and not path.is_symlink()
                and (_owner_gone(path) or path.stat().st_mtime < cutoff)
            ):
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
    return removed


def convert_with_soffice(
    data: bytes,
    src_ext: str,
    target_ext: str,
    timeout: float = 60,
    infilter: str | None = None,
    *,
    exe: str | None = None,
    memory_mb: int | None = None,
) -> bytes:
    """Convert `data` (a file of type `src_ext`) to `target_ext` bytes with LibreOffice.

    Runs in its own process group under a time and memory limit; the whole group is
    killed on timeout, when this process is terminated, or when it dies.
    """
    exe = exe or soffice_path()
    if exe is None:
        raise ConversionUnavailable("soffice not found on PATH")
    memory = _memory_bytes(DEFAULT_MEMORY_MB if memory_mb is None else memory_mb)
    src_ext = src_ext.lower().lstrip(".")
    target_ext = target_ext.lower().lstrip(".")
    if src_ext not in _SOURCES or target_ext not in _FILTERS:
        raise ConversionFailed(f"unsupported conversion {src_ext} -> {target_ext}")
    with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "out").mkdir()
        (root / "home").mkdir()
        src = root / "in" / f"input.{src_ext}"
        src.write_bytes(data)
        env = {k: os.environ[k] for k in _KEEP_ENV if k in os.environ}
        env.update(HOME=str(root / "home"), TMPDIR=str(root), SAL_USE_VCLPLUGIN="svp")
        cmd = [
            exe,
            f"-env:UserInstallation={(root / 'profile').as_uri()}",
            "--headless",
            "--invisible",
            "--norestore",
            "--nologo",
            "--nodefault",
            "--nolockcheck",
            "--nofirststartwizard",
        ]
        if infilter:
            cmd.append(f"--infilter={infilter}")
        cmd += ["--convert-to", _FILTERS[target_ext], "--outdir", str(root / "out"), str(src)]
        proc = subprocess.Popen(
            ["/bin/sh", "-c", _GUARD, "mailbot-convert", *cmd],
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            preexec_fn=_child_setup(memory, os.getpid()),  # noqa: PLW1509 - see _child_setup
        )
        try:
            _out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc.pid)
            proc.communicate()
            raise ConversionFailed(f"LibreOffice timed out after {timeout:g}s") from exc
        finally:
            # Stray helpers of the converter, and the whole group when this process is being
            # terminated (SystemExit from a worker's SIGTERM handler unwinds through here).
            _kill_group(proc.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        result = root / "out" / f"input.{target_ext}"
        if proc.returncode != 0 or not result.is_file():
            tail = err.decode("utf-8", "replace").strip()[-300:]
            raise ConversionFailed(f"LibreOffice exit {proc.returncode}: {tail}")
        size = result.stat().st_size
        if size == 0 or size > _MAX_OUTPUT:
            raise ConversionFailed(f"LibreOffice produced {size} bytes")
        return result.read_bytes()


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
