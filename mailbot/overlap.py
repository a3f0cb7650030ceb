"""The mailbox side of a pass on its own thread: fetching, moving and sending overlap deciding."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("mailbot.service")

# The mailbox thread moves decided mail and delivers the answers queued each time this
# many more mails were decided: a round's fixed cost (a few queries) is shared by them all.
ROUND_EVERY = 20


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
        self._decided = 0  # since the last round
        self._wake = threading.Condition()

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
        while self._next_round():
            try:
                self.robot.move_done()
            except Exception as exc:  # noqa: BLE001 - the pass moves again at its end
                log.warning("moving during processing failed: %s", exc)
            self.robot._deliver_meanwhile()

    def _next_round(self) -> bool:
        """Wait until enough mails were decided for a round; False once the pass ends."""
        with self._wake:
            self._wake.wait_for(lambda: self.stop.is_set() or self._decided >= ROUND_EVERY)
            self._decided = 0
            return not self.stop.is_set()

    def decided(self) -> None:
        """One more mail decided (called by the deciding thread)."""
        with self._wake:
            self._decided += 1
            if self._decided >= ROUND_EVERY:
                self._wake.notify()

    def nudge(self) -> None:
        """A round now: the mails decided so far wait for a slow one otherwise."""
        with self._wake:
            self._decided = max(self._decided, ROUND_EVERY)
            self._wake.notify()

    def finish(self) -> None:
        """Stop after the current step and wait for it (fetching is waited for whole)."""
        with self._wake:
            self.stop.set()
            self._wake.notify()
        self.join()
