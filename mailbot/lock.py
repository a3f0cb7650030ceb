"""One daemon at a time: a lock file on the data directory (SQLite), or a PostgreSQL advisory
lock per mailbox, which a second daemon waits on as a hot standby."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mailbot.claims import Claimant, claimant_key
from mailbot.errors import OperatorError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from mailbot.config import Config

log = logging.getLogger(__name__)

LOCK_FILE_NAME = "mailbot.lock"


class AlreadyRunning(RuntimeError):
    """Another mailbot process holds the data directory."""

    def __init__(self, data_dir: Path, pid: int | None) -> None:
        self.data_dir = data_dir
        self.pid = pid
        who = f"tiến trình {pid}" if pid is not None else "một tiến trình khác"
        # Operators and staff read this on their terminal: Vietnamese, like the CLI.
        super().__init__(
            f"thư mục dữ liệu {data_dir} đang được {who} sử dụng (một mailbot khác đang "
            "chạy); hãy dừng nó trước, hoặc dùng thư mục dữ liệu riêng cho lần chạy này"
        )


class DataDirLock:
    """A non-blocking flock on data_dir/mailbot.lock; the holder's PID is written into it.

    The lock belongs to the open file description: it is released when this object
    releases it or when the process dies, even by kill -9. The file itself stays.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.path = self.data_dir / LOCK_FILE_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock or raise AlreadyRunning naming the holder's PID."""
        if self._fd is not None:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(self.data_dir, pid) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (the stale PID is cleared first)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --------------------------------------------------------------------------- PostgreSQL


def mailbox_key(config: Config) -> str:
    """The identity of the mailbox a daemon serves: one active daemon per identity."""
    inbox = config.inbox
    url = inbox.url
    if "://" in url and "@" in url:
        # Never a password in it: it is logged and shown to the operator.
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        url = f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return f"{url}#{inbox.folder}"


def advisory_key(identity: str) -> int:
    """A PostgreSQL advisory lock key (a non-negative bigint) for a mailbox identity."""
    digest = hashlib.sha256(f"mailbot-mailbox:{identity}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class MailboxTaken(OperatorError):
    """Another mailbot holds this mailbox's lock on the database server."""

    def __init__(self, identity: str, holder: str | None) -> None:
        who = f" ({holder})" if holder else ""
        super().__init__(
            f"hộp thư {identity} đang được một mailbot khác xử lý{who}; hãy dừng nó trước, "
            "hoặc chạy lệnh này khi nó đã dừng"
        )
        self.identity = identity


class MailboxLock:
    """`pg_advisory_lock` on a connection of its own, held for the daemon's life.

    The server releases it when that connection ends, whatever ended it (the holder killed,
    its host gone, the server restarted), so a standby polling `pg_try_advisory_lock` takes
    over. The holder checks the connection every few seconds and is told (`on_lost`) when it
    is gone: the lock may be another daemon's by then.
    """

    def __init__(self, engine: Engine, identity: str, *, poll_seconds: float = 5.0) -> None:
        self.engine = engine
        self.identity = identity
        self.key = advisory_key(identity)
        self.poll_seconds = poll_seconds
        self._conn: Any = None
        self._held = False
        self._unreachable = False
        self._stop_watch = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock now."""
        return self._held

    def _connection(self) -> Any:
        if self._conn is None:
            pooled = self.engine.raw_connection()
            conn = pooled.driver_connection
            pooled.detach()  # ours alone, closed for real when we are done with it
            if conn is None:
                raise RuntimeError("no driver connection for the mailbox lock")
            conn.autocommit = True
            conn.execute(
                "SELECT set_config('application_name', %s, false)",
                (f"mailbot {os.uname().nodename}:{os.getpid()}",),
            )
            self._conn = conn
        return self._conn

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def try_acquire(self) -> bool:
        """Take the lock if free; False when another session holds it."""
        if self._held:
            return True
        try:
            conn = self._connection()
            self._held = bool(
                conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()[0]
            )
            if self._held:
                # While this session lives, this process's claims are known to be held
                # (shared: every mailbox lock of the process holds it alike).
                token = Claimant.for_this_process().token
                conn.execute("SELECT pg_advisory_lock_shared(%s)", (claimant_key(token),))
        except Exception as exc:  # noqa: BLE001 - the driver's errors: the server is away
            self._held = False  # whatever it took went with the connection
            self._drop_connection()
            if not self._unreachable:  # once per outage, not at every try
                log.warning("mailbox lock: database connection failed: %s", exc)
            self._unreachable = True
            return False
        self._unreachable = False
        return self._held

    def holder(self) -> str | None:
        """The name the session holding the lock gave itself (host:pid), when visible."""
        try:
            row = (
                self._connection()
                .execute(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a "
                    "ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.objsubid = 1 AND ((l.classid::bigint << 32) | l.objid::bigint) = %s",
                    (self.key,),
                )
                .fetchone()
            )
        except Exception:  # noqa: BLE001 - only a nicer message is lost
            return None
        return str(row[0]) if row and row[0] else None

    def acquire(
        self,
        *,
        standby: threading.Event | None = None,
        on_wait: Callable[[], None] | None = None,
    ) -> bool:
        """Take the lock. Without `standby`, once: MailboxTaken if another daemon has it.

        With `standby` (the daemon's stop event), wait as a hot standby, trying again every
        `poll_seconds`, until the lock is ours (True) or `standby` is set (False).
        """
        if self.try_acquire():
            return True
        if standby is None:
            raise MailboxTaken(self.identity, self.holder())
        log.info(
            "standby: mailbox %s is served by another mailbot (%s); waiting to take over",
            self.identity,
            self.holder() or "unknown",
        )
        while not standby.wait(self.poll_seconds):
            if on_wait is not None:
                on_wait()
            if self.try_acquire():
                log.warning("taking over mailbox %s: the other mailbot stopped", self.identity)
                return True
        return False

    def alive(self) -> bool:
        """Whether the lock's connection still answers (so the lock is still ours)."""
        if not self._held or self._conn is None:
            return False
        try:
            self._conn.execute("SELECT 1").fetchone()
        except Exception:  # noqa: BLE001 - any failure means the session, and the lock, are gone
            return False
        return True

    def watch(self, on_lost: Callable[[], None]) -> None:
        """Check the lock every `poll_seconds` in a thread; `on_lost()` once when it is gone."""

        def run() -> None:
            while not self._stop_watch.wait(self.poll_seconds):
                if not self.alive():
                    log.error(
                        "lost the lock on mailbox %s (database connection dropped): stopping",
                        self.identity,
                    )
                    self._held = False
                    on_lost()
                    return

        self._watcher = threading.Thread(target=run, name="mailbox-lock", daemon=True)
        self._watcher.start()

    def release(self) -> None:
        """Give the lock up and close its connection."""
        self._stop_watch.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join()
        self._watcher = None
        if self._held and self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        self._held = False
        self._drop_connection()
