"""Content-addressed store of raw mail (data_dir/raw/ab/cdef….eml), written atomically, durably."""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import stat
import tempfile
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from pathlib import Path, PurePosixPath

from mailbot.fsutil import fsync_dir

RAW_DIR = "raw"
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A path as the store hands them out: nothing in it to check but symlinks.
_STORED = re.compile(rf"{RAW_DIR}/[0-9a-f]{{2}}/[0-9a-f]{{62}}\.eml")
# Files of a batch are flushed to disk by this many threads at once.
_SYNC_THREADS = 8
# A raw mail's temporary file: created new, never through a symlink, not inherited.
_TMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class StoreError(Exception):
    """A raw mail could not be stored or read, or a path points outside the store."""


class RawStore:
    """Raw mails by SHA-256 under data_dir/raw; paths handed out are relative to data_dir."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / RAW_DIR
        # Hash directories (their two hex digits) found to be real directories inside the
        # store: checked once, or made by the store itself.
        self._checked_dirs: set[str] = set()
        # Names a batch's temporary files (with the process id): one fewer random name.
        self._tmp_serial = itertools.count()
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
            if leaf.name not in self._checked_dirs:
                if not leaf.resolve().is_relative_to(self._root()):
                    raise StoreError(f"path outside the raw mail store: {relative_path!r}")
                if leaf.is_dir():
                    self._checked_dirs.add(leaf.name)
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

    def _leaf(self, prefix: str) -> tuple[str, bool]:
        """The hash directory for `prefix` (made when missing), and whether the store's root
        was made with it; refuses a way out of the store (a symlinked directory)."""
        leaf = os.path.join(self.root, prefix)
        if prefix in self._checked_dirs:
            return leaf, False
        new_root = not self.root.exists()
        if new_root:
            self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.mkdir(leaf, 0o700)
        except FileExistsError:
            # Made before (or a symlink someone put there): it must lead inside the store.
            if not Path(leaf).resolve().is_relative_to(self._root()):
                raise StoreError(f"path outside the raw mail store: {leaf}") from None
            if not os.path.isdir(leaf):
                raise StoreError(f"not a directory in the raw mail store: {leaf}") from None
        self._checked_dirs.add(prefix)
        return leaf, new_root

    def _each(self, fn: Callable[[str], None], paths: Iterable[str]) -> None:
        """fn on every path, by a few threads when there are several (fsync releases the GIL)."""
        todo = deque(paths)
        if len(todo) <= 1:
            for path in todo:
                fn(path)
            return

        def drain() -> None:
            # Each thread takes the next path until none is left: a few tasks per batch,
            # not one (with its future and locks) per path.
            while True:
                try:
                    path = todo.popleft()
                except IndexError:
                    return
                fn(path)

        tasks = [self._syncer.submit(drain) for _ in range(min(_SYNC_THREADS, len(todo)))]
        wait(tasks)  # all of them, even when one failed, before the batch cleans up
        for task in tasks:
            task.result()

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
        self._pending: dict[str, tuple[str, str]] = {}  # sha -> (temporary, final) path
        self._dirs: set[str] = set()  # directories to flush at the end
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
        rel = f"{RAW_DIR}/{sha[:2]}/{sha[2:]}.eml"
        if sha in self._pending:
            return sha, rel
        leaf, new_root = store._leaf(sha[:2])
        self._new_root = self._new_root or new_root
        self._dirs.add(leaf)
        name = f"{sha[2:]}.eml"
        final = os.path.join(leaf, name)
        try:
            mode = os.lstat(final).st_mode
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISLNK(mode):
                raise StoreError(f"path outside the raw mail store: {final}")
            if stat.S_ISREG(mode) and store._intact(Path(final), sha):
                # Left by a run killed before it flushed the directory: flushed now, before
                # the record that names it is committed.
                return sha, rel
        tmp = os.path.join(leaf, f".{name}.{os.getpid()}-{next(store._tmp_serial)}.tmp")
        try:
            fd = os.open(tmp, _TMP_FLAGS, 0o600)
        except FileExistsError:  # left by a process of the same id that was killed
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=leaf)
        try:
            try:
                view = memoryview(raw)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except BaseException:
            os.unlink(tmp)
            raise
        self._pending[sha] = (tmp, final)
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
        dirs = self._dirs | {str(self._store.root)}
        if self._new_root:
            dirs.add(str(self._store.data_dir))
        self._store._each(_fsync_dir, dirs)


def _fsync_dir(path: str) -> None:
    """Flush a directory's entries to disk."""
    fsync_dir(Path(path))


def _fsync_file(path: str) -> None:
    """Flush a written file's data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
