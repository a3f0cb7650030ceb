"""Convert .doc/.odt/.ods/.xls to OOXML with headless LibreOffice, isolated in a temp dir."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import tempfile
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


# (data, source extension, target extension, timeout in seconds) -> converted bytes.
OfficeConverter = Callable[[bytes, str, str, float], bytes]


class ConversionUnavailable(Exception):
    """LibreOffice (soffice) is not installed on this machine."""


class ConversionFailed(Exception):
    """LibreOffice ran but produced no usable file (bad input, timeout, crash)."""


def soffice_path() -> str | None:
    """The soffice executable on the PATH, or None."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def soffice_converter() -> OfficeConverter | None:
    """`convert_with_soffice` when LibreOffice is installed here, else None."""
    return convert_with_soffice if soffice_path() is not None else None


def convert_with_soffice(
    data: bytes,
    src_ext: str,
    target_ext: str,
    timeout: float = 60,
    infilter: str | None = None,
) -> bytes:
    """Convert `data` (a file of type `src_ext`) to `target_ext` bytes with LibreOffice."""
    exe = soffice_path()
    if exe is None:
        raise ConversionUnavailable("soffice not found on PATH")
    src_ext = src_ext.lower().lstrip(".")
    target_ext = target_ext.lower().lstrip(".")
    if src_ext not in _SOURCES or target_ext not in _FILTERS:
        raise ConversionFailed(f"unsupported conversion {src_ext} -> {target_ext}")
    with tempfile.TemporaryDirectory(prefix="mailbot-soffice-") as tmp:
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
            cmd,
            cwd=root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            _out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            _kill_group(proc.pid)
            proc.communicate()
            raise ConversionFailed(f"LibreOffice timed out after {timeout:g}s") from exc
        finally:
            _kill_group(proc.pid)  # stray helpers of the converter, if any are left
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
