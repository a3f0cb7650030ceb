"""Content-addressed store of raw mail (data_dir/raw/ab/cdef….eml), written atomically, durably."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path, PurePosixPath

from mailbot.fsutil import atomic_write, fsync_dir

RAW_DIR = "raw"
_HEX64 = re.compile(r"[0-9a-f]{64}")


class StoreError(Exception):
    """A raw mail could not be stored or read, or a path points outside the store."""


class RawStore:
    """Raw mails by SHA-256 under data_dir/raw; paths handed out are relative to data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / RAW_DIR

    @staticmethod
    def relative_path_for(sha256: str) -> str:
        """The path (relative to the data directory) where a mail with this hash lives."""
        if not _HEX64.fullmatch(sha256):
            raise StoreError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{RAW_DIR}/{sha256[:2]}/{sha256[2:]}.eml"

    def resolve(self, relative_path: str) -> Path:
        """The absolute path of a stored mail; refuses anything outside the store."""
        rel = PurePosixPath(relative_path.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] != RAW_DIR:
            raise StoreError(f"path outside the raw mail store: {relative_path!r}")
        path = self.data_dir.joinpath(*rel.parts)
        root = self.root.resolve()
        # Symlinks inside the store must not lead out of it either.
        if not path.resolve().is_relative_to(root):
            raise StoreError(f"path outside the raw mail store: {relative_path!r}")
        return path

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store raw bytes; returns (sha256 hex, path relative to the data directory).

        Idempotent: an intact copy already present is kept; a damaged one is replaced.
        The file is complete and on disk (file and directory fsynced) when this returns.
        """
        sha = hashlib.sha256(raw).hexdigest()
        rel = self.relative_path_for(sha)
        final = self.resolve(rel)
        if final.is_file() and self._intact(final, sha):
            return sha, rel
        created_root = not self.root.exists()
        final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if created_root:
            fsync_dir(self.data_dir)
        atomic_write(final, raw)
        fsync_dir(self.root)
        return sha, rel

    def get(self, relative_path: str, *, verify: bool = False) -> bytes:
        """The stored bytes; with verify, check them against the hash in the name."""
        path = self.resolve(relative_path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise StoreError(f"cannot read stored mail {relative_path}: {exc.strerror}") from exc
        if verify:
            expected = path.parent.name + path.stem
            if hashlib.sha256(data).hexdigest() != expected:
                raise StoreError(f"stored mail {relative_path} is damaged (hash mismatch)")
        return data

    def exists(self, relative_path: str) -> bool:
        """Whether a stored mail is present at this relative path."""
        return self.resolve(relative_path).is_file()

    @staticmethod
    def _intact(path: Path, sha: str) -> bool:
        h = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        except OSError:
            return False
        return h.hexdigest() == sha
