"""A local Maildir as a mail source: every file in new/ and cur/ is waiting mail."""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from mailbot.config import InboxConfig
from mailbot.sources.base import (
    HEADER_PEEK_BYTES,
    Baseline,
    DoneRef,
    IncomingRef,
    KnownFn,
    SourceError,
    header_block,
    received_date,
    sleep_until,
)
from mailbot.sources.headers import parse_headers

log = logging.getLogger(__name__)

# How often wait() looks at new/ for a change.
_POLL_SECONDS = 0.5


class MaildirSource:
    """A local Maildir: new mail in new/ and cur/, processed mail moved to a Maildir++ folder."""

    def __init__(self, config: InboxConfig, path: str | os.PathLike[str]) -> None:
        self.config = config
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._md = mailbox.Maildir(str(self.path), factory=None, create=True)
        self.source_key = f"maildir:{self.path.resolve()}"
        # key -> ((mtime_ns, size, inode), ref) of the files listed last time.
        self._described: dict[str, tuple[tuple[int, int, int], IncomingRef]] = {}

    def uidvalidity(self) -> int | None:
        """Always None: a Maildir has keys, not UIDs."""
        return None

    def _files(self) -> list[tuple[str, Path]]:
        out: list[tuple[str, Path]] = []
        for sub in ("new", "cur"):
            try:
                entries = list(os.scandir(self.path / sub))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                out.append((entry.name.split(":", 1)[0], Path(entry.path)))
        return out

    def _find(self, key: str) -> Path | None:
        for k, p in self._files():
            if k == key:
                return p
        return None

    def new_messages(
        self, last_uid: int | None = None, known: KnownFn | None = None
    ) -> Iterator[IncomingRef]:
        """Every mail still in the inbox (oldest first) that `known` does not recognise."""
        files = []
        for key, path in self._files():
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            files.append((st.st_mtime_ns, key, path, (st.st_mtime_ns, st.st_size, st.st_ino)))
        files.sort()
        # Mail left in the inbox (known since the first start, or processed without a
        # processed folder) is listed every pass: read each unchanged file only once.
        present = {f[1] for f in files}
        self._described = {k: v for k, v in self._described.items() if k in present}
        limit = int(self.config.max_message_bytes)
        for mtime_ns, key, path, stamp in files:
            cached = self._described.get(key)
            if cached is not None and cached[0] == stamp:
                if known is None or not known(cached[1]):
                    yield cached[1]
                continue
            try:
                size = stamp[1]
                with path.open("rb") as fh:
                    if size > limit:
                        block = header_block(fh.read(HEADER_PEEK_BYTES))
                        digest = None
                    else:
                        data = fh.read()
                        block = header_block(data)
                        digest = hashlib.sha256(data).hexdigest()
            except FileNotFoundError:
                continue  # moved away meanwhile
            mid, from_, subject = parse_headers(block)
            identity = mid or (f"sha256:{digest}" if digest else f"maildir-key:{key}")
            ref = IncomingRef(
                key=key,
                uid=None,
                uidvalidity=None,
                size=size,
                message_id=mid,
                from_header=from_,
                subject=subject,
                oversize=size > limit,
                headers=block if size > limit else b"",
                identity=identity,
                # Delivery time: our server's Received: line, else when the file was written.
                arrived_at=received_date(block)
                or datetime.fromtimestamp(mtime_ns / 1e9, UTC).replace(microsecond=0),
            )
            self._described[key] = (stamp, ref)
            if known is not None and known(ref):
                continue
            yield ref

    def baseline(self, since: datetime | None) -> Baseline:
        """Every file now in the inbox is known, except those delivered since `since`."""
        known: list[str] = []
        catch_up: list[IncomingRef] = []
        for ref in self.new_messages():
            if since is not None and (ref.arrived_at is None or ref.arrived_at >= since):
                catch_up.append(ref)
            else:
                known.append(ref.key)
        return Baseline(None, None, known_keys=tuple(known), catch_up=tuple(catch_up))

    def fetch(self, refs: Iterable[IncomingRef]) -> Iterator[tuple[IncomingRef, bytes]]:
        """Read whole mails; oversize ones are skipped, vanished ones logged and skipped."""
        paths = dict(self._files())  # one listing for the lot, not one per mail
        for ref in refs:
            if ref.oversize:
                continue
            raw = self._read(paths.get(ref.key))
            if raw is None:  # renamed since the listing (new/ to cur/): look again
                raw = self._read(self._find(ref.key))
            if raw is None:
                log.warning("maildir message %s vanished before reading", ref.key)
                continue
            yield ref, raw

    @staticmethod
    def _read(path: Path | None) -> bytes | None:
        """The file's bytes; None when it is not there (any more: a client may rename it)."""
        if path is None:
            return None
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def mark_done_many(self, refs: Sequence[DoneRef]) -> dict[DoneRef, SourceError]:
        """Move the files into the processed Maildir++ folder (atomic renames), never delete;
        the failures by ref. A file already gone (moved before) counts as done."""
        folder_name = self.config.processed_folder
        if not folder_name or not refs:
            return {}  # the caller's record of the key is the mark
        if folder_name not in self._md.list_folders():
            self._md.add_folder(folder_name)
        paths = dict(self._files())  # one listing for the page
        failures: dict[DoneRef, SourceError] = {}
        made: set[Path] = set()
        for done in refs:
            key = done[0]
            path = paths.get(key)
            if path is None:
                continue  # already moved
            dest_dir = self.path / f".{folder_name}" / path.parent.name
            try:
                if dest_dir not in made:
                    dest_dir.mkdir(parents=True, exist_ok=True)
                    made.add(dest_dir)
                os.replace(path, dest_dir / path.name)
            except FileNotFoundError:
                continue  # moved meanwhile
            except OSError as exc:
                failures[done] = SourceError(f"cannot move maildir message {key}: {exc}")
        return failures

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool:
        """Sleep until the timeout, waking early when new/ changes; True when it did."""
        deadline = time.monotonic() + max(0.0, timeout)
        before = self._stamp()
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or (stop is not None and stop.is_set()):
                return False
            sleep_until(time.monotonic() + min(left, _POLL_SECONDS), stop)
            if self._stamp() != before:
                return True

    def _stamp(self) -> tuple[int, int]:
        try:
            st = (self.path / "new").stat()
            return st.st_mtime_ns, st.st_ino
        except FileNotFoundError:
            return 0, 0

    def close(self) -> None:
        """Release the Maildir handle."""
        self._md.close()
