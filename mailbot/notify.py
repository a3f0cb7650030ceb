"""systemd's notify protocol (READY, WATCHDOG, STATUS, STOPPING) over $NOTIFY_SOCKET, no library."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mailbot.db import Database

log = logging.getLogger(__name__)


class StopRequested(Exception):
    """Raised from a heartbeat when a stop was asked for: the daemon ends after this mail."""


class Notifier:
    """Talks to the service manager when it listens ($NOTIFY_SOCKET); a no-op otherwise."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        # An abstract socket is written "@name"; on the wire its first byte is NUL.
        self._address = "\0" + address[1:] if address and address.startswith("@") else address
        self._socket: socket.socket | None = None
        self.watchdog_seconds: float | None = None
        usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
        if usec and usec.isdigit() and int(usec) > 0 and (not pid or pid == str(os.getpid())):
            self.watchdog_seconds = int(usec) / 1_000_000
        self._last_ping = 0.0
        self.ready_sent = False

    @property
    def enabled(self) -> bool:
        return self._address is not None

    @property
    def max_wait(self) -> float | None:
        """The longest a blocking wait may last so the watchdog is fed in time (half of it)."""
        return None if self.watchdog_seconds is None else self.watchdog_seconds / 2

    def send(self, **fields: str) -> bool:
        """Send one datagram of KEY=value lines; False when nobody listens or it failed."""
        if self._address is None:
            return False
        payload = "\n".join(f"{key}={value}" for key, value in fields.items()).encode("utf-8")
        try:
            if self._socket is None:
                self._socket = socket.socket(
                    socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC
                )
            self._socket.sendto(payload, self._address)
        except OSError as exc:
            log.warning("cannot notify the service manager at %s: %s", self._address, exc)
            return False
        return True

    def ready(self, status: str) -> None:
        """Startup is done (mailbox and database reachable): once per process."""
        if not self.ready_sent:
            self.ready_sent = True
            self.send(READY="1", STATUS=status)
            log.info("ready: %s", status)

    def status(self, text: str) -> None:
        self.send(STATUS=text)

    def watchdog(self) -> None:
        """Feed the watchdog, at most a few times per interval (cheap to call per mail)."""
        if self.watchdog_seconds is None:
            return
        now = time.monotonic()
        if now - self._last_ping >= self.watchdog_seconds / 4:
            self._last_ping = now
            self.send(WATCHDOG="1")

    def stopping(self) -> None:
        self.send(STOPPING="1", STATUS="Đang dừng")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def daemon_status(database: Database, last_poll: datetime) -> str:
    """The one-line STATUS shown by `systemctl status mailbot`: last poll and queue lengths."""
    from mailbot.db import queue_lengths

    with database.session(write=False) as s:
        waiting, queued = queue_lengths(s)
    return (
        f"Lần quét cuối {last_poll.astimezone().strftime('%Y-%m-%d %H:%M:%S')}; "
        f"chờ xử lý {waiting} thư, chờ gửi {queued} thư"
    )


def stop_between_mails(
    stop: threading.Event, heartbeat: Callable[[], None] | None
) -> Callable[[str], None]:
    """A progress hook for a daemon pass: feeds the watchdog after each mail and, once a
    stop is asked for, ends the pass there (mail is recorded before it is decided and each
    decision in one transaction, so the rest simply waits for the next start)."""

    def progress(_message: str) -> None:
        if heartbeat is not None:
            heartbeat()
        if stop.is_set():
            raise StopRequested

    return progress


def sliced_wait(
    wait: Callable[[float, threading.Event], bool],
    seconds: float,
    stop: threading.Event,
    heartbeat: Callable[[], None] | None,
    max_wait: float | None,
) -> bool:
    """`wait(timeout, stop)` for up to `seconds` in slices of at most `max_wait`, calling
    `heartbeat` before each; True as soon as one slice reports news."""
    deadline = time.monotonic() + max(0.0, seconds)
    while not stop.is_set():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        if heartbeat is not None:
            heartbeat()
        if wait(left if max_wait is None else min(left, max_wait), stop):
            return True
    return False
