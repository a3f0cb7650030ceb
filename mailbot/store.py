"""Content-addressed store of raw mail (data_dir/raw/ab/cdef….eml), written atomically, durably."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

from mailbot.fsutil import fsync_dir

RAW_DIR = "raw"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A path as the store hands them out: nothing in it to check but symlinks.
_STORED = re.compile(rf"{RAW_DIR}/[0-9a-f]{{2}}/[0-9a-f]{{62}}\.eml")
# Files of a batch are flushed to disk by this many threads at once.
_SYNC_THREADS = 8


class StoreError(Exception):
    """A raw mail could not be stored or read, or a path points outside the store."""


class RawStore:
    """Raw mails by SHA-256 under data_dir/raw; paths handed out are relative to data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / RAW_DIR
        # Hash directories found to be real directories inside the store (checked once).
        self._checked_dirs: set[Path] = set()
        self._real_root: Path | None = None  # the store's real path, once it exists
        # Flushes files of a batch at once; threads start on first use, idle ones cost nothing.
        self._syncer = ThreadPoolExecutor(max_workers=_SYNC_THREADS, thread_name_prefix="fsync")

    @staticmethod
    def relative_path_for(sha256: str) -> str:
        """The path (relative to the data directory) where a mail with this hash lives."""
        if not _HEX64.fullmatch(sha256):
            raise StoreError(f"not a SHA-256 hex digest: {sha256!r}")
        return f"{RAW_DIR}/{sha256[:2]}/{sha256[2:]}.eml"

    def resolve(self, relative_path: str) -> Path:
        """The absolute path of a stored mail; refuses anything outside the store."""
        if _STORED.fullmatch(relative_path):
            # The usual case, read for every mail decided: the hash directory's real path
            # is checked once, then only whether the file itself is a symlink.
            path = self.data_dir / relative_path
            leaf = path.parent
            if leaf not in self._checked_dirs:
                if not leaf.resolve().is_relative_to(self._root()):
                    raise StoreError(f"path outside the raw mail store: {relative_path!r}")
                if leaf.is_dir():
                    self._checked_dirs.add(leaf)
            if path.is_symlink() and not path.resolve().is_relative_to(self._root()):
                raise StoreError(f"path outside the raw mail store: {relative_path!r}")
            return path
        rel = PurePosixPath(relative_path.replace("\\", "/"))
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] != RAW_DIR:
            raise StoreError(f"path outside the raw mail store: {relative_path!r}")
        path = self.data_dir.joinpath(*rel.parts)
        # Symlinks inside the store must not lead out of it either.
        if not path.resolve().is_relative_to(self._root()):
            raise StoreError(f"path outside the raw mail store: {relative_path!r}")
        return path

    def _root(self) -> Path:
        """The store's real path (resolved once it exists; it never moves afterwards)."""
        if self._real_root is not None:
            return self._real_root
        real = self.root.resolve()
        if self.root.is_dir():
            self._real_root = real
        return real

    def put(self, raw: bytes) -> tuple[str, str]:
        """Store raw bytes; returns (sha256 hex, path relative to the data directory).

        Idempotent: an intact copy already present is kept; a damaged one is replaced.
        The file is complete and on disk (file and directory fsynced) when this returns.
        """
        with self.batch() as batch:
            return batch.put(raw)

    def batch(self) -> StoreBatch:
        """Several mails stored together: durable, all at once, when the `with` block ends."""
        return StoreBatch(self)

    def _target(self, sha: str) -> Path:
        """Where the mail with this hash is written; refuses a way out of the store (a
        symlinked directory or file), resolving each hash directory once, not per mail."""
        leaf = self.root / sha[:2]
        if leaf not in self._checked_dirs:
            if not leaf.resolve().is_relative_to(self._root()):
                raise StoreError(f"path outside the raw mail store: {leaf}")
            if leaf.is_dir():
                self._checked_dirs.add(leaf)
        final = leaf / f"{sha[2:]}.eml"
        if final.is_symlink():
            raise StoreError(f"path outside the raw mail store: {final}")
        return final

    def _each(self, fn: Callable[[Path], None], paths: Iterable[Path]) -> None:
        """fn on every path, by a few threads when there are several (fsync releases the GIL)."""
        todo = list(paths)
        if len(todo) <= 1:
            for path in todo:
                fn(path)
            return
        list(self._syncer.map(fn, todo))

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


class StoreBatch:
    """Raw mails written together and made durable together when the batch ends.

    Each mail is written under a temporary name; at the end all files are flushed at once
    (by a few threads: the file system joins concurrent flushes into one journal commit,
    where one after another each pays for its own), renamed into place, and each directory
    is flushed once. A path handed out is valid once the batch has ended without error; an
    error leaves no temporary file behind.
    """

    def __init__(self, store: RawStore) -> None:
        self._store = store
        self._pending: dict[str, tuple[Path, Path]] = {}  # sha -> (temporary, final) path
        self._dirs: set[Path] = set()  # directories to flush at the end
        self._new_root = False  # the store itself was created: the data directory's too

    def __enter__(self) -> StoreBatch:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        try:
            if exc_type is None:
                self._commit()
        finally:
            for tmp, _final in self._pending.values():
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
            self._pending.clear()

    def put(self, raw: bytes) -> tuple[str, str]:
        """Write one mail; (sha256 hex, path relative to the data directory) as RawStore.put."""
        store = self._store
        sha = hashlib.sha256(raw).hexdigest()
        rel = store.relative_path_for(sha)
        if sha in self._pending:
            return sha, rel
        final = store._target(sha)
        self._dirs.add(final.parent)
        if final.is_file() and store._intact(final, sha):
            # Left by a run killed before it flushed the directory: flushed now, before the
            # record that names it is committed.
            return sha, rel
        if not final.parent.is_dir():
            self._new_root = self._new_root or not store.root.exists()
            final.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Checked by `_target` (it led inside the store), made here: not checked again.
            if not final.parent.is_symlink():
                store._checked_dirs.add(final.parent)
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(raw)
        except BaseException:
            os.unlink(tmp)
            raise
        self._pending[sha] = (Path(tmp), final)
        return sha, rel

    def _commit(self) -> None:
        """Flush the files, rename them into place, flush their directories."""
        pending = list(self._pending.values())
        if not self._dirs:
            return
        # The data is on disk before the name appears: a crash never leaves a final name on
        # a partial file.
        self._store._each(_fsync_file, [tmp for tmp, _final in pending])
        for sha, (tmp, final) in list(self._pending.items()):
            os.replace(tmp, final)
            del self._pending[sha]
        # The root too, every time: a hash directory made by a batch that failed before
        # this point is flushed into it now.
        dirs = self._dirs | {self._store.root}
        if self._new_root:
            dirs.add(self._store.data_dir)
        self._store._each(fsync_dir, dirs)


def _fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
