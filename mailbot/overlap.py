"""The mailbox side of a pass on its own thread: fetching, moving and sending overlap deciding."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("mailbot.service")

# How often the mailbox thread moves decided mail and delivers the answers queued.
_MEANWHILE_SECONDS = 0.2


class _Pass(Protocol):
    """What the thread needs of the robot (mailbot.service.Robot)."""

    def fetch_new(self) -> int: ...

    def move_done(self) -> int: ...

    def _deliver_meanwhile(self) -> None: ...


class MailboxThread(threading.Thread):
    """The mailbox side of a pass: fetch everything new, then move and deliver meanwhile.

    Only this thread talks to the mailbox while it runs (an IMAP connection serves one
    command at a time); the SQLite writer lock keeps writes one at a time.
    """

    def __init__(self, robot: _Pass, *, fetch: bool) -> None:
        super().__init__(name="mailbot-mailbox", daemon=True)
        self.robot = robot
        self.do_fetch = fetch
        self.fetched = threading.Event()  # set once fetching has ended, however
        self.stop = threading.Event()
        self.count = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            if self.do_fetch:
                self.count = self.robot.fetch_new()
        except BaseException as exc:  # noqa: BLE001 - raised again by the pass
            self.error = exc
        finally:
            self.fetched.set()
        if self.error is not None:
            return
        while not self.stop.wait(_MEANWHILE_SECONDS):
            try:
                self.robot.move_done()
            except Exception as exc:  # noqa: BLE001 - the pass moves again at its end
                log.warning("moving during processing failed: %s", exc)
            self.robot._deliver_meanwhile()

    def finish(self) -> None:
        """Stop after the current step and wait for it (fetching is waited for whole)."""
        self.stop.set()
        self.join()
