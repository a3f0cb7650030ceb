"""Compiled answer templates kept on disk between starts (a Jinja bytecode cache).

Compiling the templates took a quarter of a CPU-second at each start of the worker zygote;
loading their compiled code takes a hundredth. An entry is used only when everything that
made it is unchanged: the template's text (Jinja's checksum of the source, in the entry),
the Jinja and Python versions and the environment's definition (the directory's name), and
the entry's own bytes (a SHA-256 over them, so a torn or damaged file is compiled again).
A directory that is missing, read-only or damaged only means compiling as before.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path

import jinja2
from jinja2.bccache import Bucket, BytecodeCache

_DIGEST = hashlib.sha256().digest_size


def cache_key(definition: Path) -> str | None:
    """What the compiled code depends on besides the templates' text, as a directory name:
    the Jinja and Python versions and the module defining the environment (its options and
    autoescape rules); None when that module cannot be read."""
    try:
        source = definition.read_bytes()
    except OSError:
        return None
    h = hashlib.sha256(source)
    h.update(f"\0{jinja2.__version__}\0{sys.version}\0{sys.implementation.cache_tag}".encode())
    return h.hexdigest()[:32]


class CompiledCache(BytecodeCache):
    """Compiled templates in a private directory of the daemon's data directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._usable: bool | None = None  # the directory made and writable (checked once)

    def _path(self, bucket: Bucket) -> Path:
        return self.directory / f"{bucket.key}.j2c"

    def load_bytecode(self, bucket: Bucket) -> None:
        """Fill `bucket` from its entry when the entry is whole and of the same source."""
        try:
            data = self._path(bucket).read_bytes()
        except OSError:
            return
        digest, payload = data[:_DIGEST], data[_DIGEST:]
        if len(digest) != _DIGEST or hashlib.sha256(payload).digest() != digest:
            return
        try:
            # Jinja checks its magic (its bytecode format, Python's version) and the
            # template source's checksum, and leaves the bucket empty when either differs.
            bucket.bytecode_from_string(payload)
        except Exception:  # noqa: BLE001 - an unreadable entry is compiled again
            bucket.reset()

    def dump_bytecode(self, bucket: Bucket) -> None:
        """Write `bucket`'s entry whole or not at all (a temporary file renamed over it)."""
        if not self._ready():
            return
        payload = bucket.bytecode_to_string()
        try:
            fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(hashlib.sha256(payload).digest() + payload)
            os.replace(tmp, self._path(bucket))
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _ready(self) -> bool:
        if self._usable is None:
            try:
                # Private: the entries hold code the zygote runs.
                self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                self._usable = os.access(self.directory, os.W_OK | os.X_OK)
            except OSError:
                self._usable = False
        return self._usable

    def clear(self) -> None:
        """Remove every entry (the directory stays)."""
        for path in self.directory.glob("*.j2c"):
            with contextlib.suppress(OSError):
                path.unlink()


def compiled_cache(root: Path, definition: Path) -> CompiledCache | None:
    """The cache under `root` for this Jinja, Python and environment; None without a key."""
    key = cache_key(definition)
    return None if key is None else CompiledCache(root / key)
