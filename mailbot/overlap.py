"""The mailbox and the outgoing side of a pass on threads of their own, overlapping deciding."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

log = logging.getLogger("mailbot.service")

# Decided mail is moved, and the answers queued are delivered, each time this many more
# mails were decided: a round's fixed cost (a few queries) is shared by them all.
ROUND_EVERY = 20


class _Pass(Protocol):
    """What the threads need of the robot (mailbot.service.Robot)."""

    def fetch_new(self) -> int: ...

    def move_done(self) -> int: ...

    def _deliver_meanwhile(self) -> None: ...


class _RoundThread(threading.Thread):
    """Runs its round each time ROUND_EVERY more mails were decided, or when nudged."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, daemon=True)
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._decided = 0  # since the last round
        self._wake = threading.Condition()

    def run(self) -> None:
        while self._next_round():
            self.round()

    def round(self) -> None:
        raise NotImplementedError

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
        """Stop after the current step and wait for it."""
        with self._wake:
            self.stop.set()
            self._wake.notify()
        self.join()


class MailboxThread(_RoundThread):
    """The mailbox side of a pass: fetch everything new, then move decided mail in rounds.

    Only this thread talks to the mailbox while it runs (an IMAP connection serves one
    command at a time); the SQLite writer lock keeps writes one at a time. Rounds between
    fetched pages were measured (sessions 5 and 6): fetching slowed behind them and the pass
    took as long or longer, so the backlog is fetched first (it is waited for whole).
    """

    def __init__(self, robot: _Pass, *, fetch: bool) -> None:
        super().__init__("mailbot-mailbox")
        self.robot = robot
        self.do_fetch = fetch
        self.fetched = threading.Event()  # set once fetching has ended, however
        self.count = 0

    def run(self) -> None:
        try:
            if self.do_fetch:
                self.count = self.robot.fetch_new()
        except BaseException as exc:  # noqa: BLE001 - raised again by the pass
            self.error = exc
        finally:
            self.fetched.set()
        if self.error is None:
            super().run()

    def round(self) -> None:
        try:
            self.robot.move_done()
        except Exception as exc:  # noqa: BLE001 - the pass moves again at its end
            log.warning("moving during processing failed: %s", exc)


class DeliveryThread(_RoundThread):
    """The outgoing side of a pass: deliver the answers queued, from the first decided on.

    It talks only to the SMTP server and the database, so answers go out while the mailbox
    thread is still fetching a long backlog (they used to wait for its end: at 5,000 mails
    that left ~800 receipts to send after the last decision).
    """

    def __init__(self, robot: _Pass) -> None:
        super().__init__("mailbot-delivery")
        self.robot = robot

    def round(self) -> None:
        self.robot._deliver_meanwhile()  # logs and counts its own failures


class Overlap:
    """Both threads of a pass, told together of each decided mail."""

    def __init__(self, robot: _Pass, *, fetch: bool) -> None:
        self.mailbox = MailboxThread(robot, fetch=fetch)
        self.delivery = DeliveryThread(robot)

    @property
    def fetched(self) -> threading.Event:
        """Set once fetching has ended, however."""
        return self.mailbox.fetched

    def start(self) -> None:
        """Start fetching, and delivering as soon as answers are queued."""
        self.mailbox.start()
        self.delivery.start()

    def decided(self) -> None:
        """One more mail decided (called by the deciding thread)."""
        self.mailbox.decided()
        self.delivery.decided()

    def nudge(self) -> None:
        """A round of each now: deciding waits for a slow mail."""
        self.mailbox.nudge()
        self.delivery.nudge()

    def finish(self) -> None:
        """Stop both after their current step and wait for them."""
        self.delivery.finish()
        self.mailbox.finish()
