"""The threads of a pass: the mailbox fetches the whole backlog, then moves in rounds; the
answers go out in rounds from the first decided mail on, while fetching still goes on.

Moving between fetched pages was measured (sessions 5 and 6): fetching slowed behind it and
the pass took as long or longer, so the backlog is fetched first.
"""

from __future__ import annotations

import threading

from mailbot.overlap import ROUND_EVERY, Overlap


class _Robot:
    """Records the order of what the threads asked for; `decided_per_page` mails are reported
    decided by the deciding thread while each page is fetched. With `hold_fetch`, fetching
    does not end before an answer was delivered (or 10 s passed)."""

    def __init__(self, pages: int, decided_per_page: int, *, hold_fetch: bool = False) -> None:
        self.pages = pages
        self.decided_per_page = decided_per_page
        self.hold_fetch = hold_fetch
        self.events: list[str] = []
        self.lock = threading.Lock()
        self.overlap: Overlap | None = None
        self.fetch_done = threading.Event()
        self.delivered = threading.Event()
        self.moves = threading.Semaphore(0)
        self.deliveries = threading.Semaphore(0)

    def _event(self, what: str) -> None:
        with self.lock:
            self.events.append(what)

    def fetch_new(self) -> int:
        assert self.overlap is not None
        for page in range(self.pages):
            self._event(f"page {page}")
            for _ in range(self.decided_per_page):
                self.overlap.decided()
        if self.hold_fetch:
            self.delivered.wait(10)
        self._event("fetched")
        self.fetch_done.set()
        return self.pages * 20

    def move_done(self) -> int:
        self._event("move")
        self.moves.release()
        return 0

    def _deliver_meanwhile(self) -> None:
        self._event("deliver")
        self.delivered.set()
        self.deliveries.release()


def _start(robot: _Robot) -> Overlap:
    overlap = Overlap(robot, fetch=True)
    robot.overlap = overlap
    overlap.start()
    assert robot.fetch_done.wait(10)
    return overlap


def test_the_backlog_is_fetched_before_the_first_move() -> None:
    robot = _Robot(pages=3, decided_per_page=ROUND_EVERY)
    overlap = _start(robot)
    assert robot.moves.acquire(timeout=10)
    overlap.finish()
    moves = [e for e in robot.events if e != "deliver"]
    assert moves == ["page 0", "page 1", "page 2", "fetched", "move"]


def test_answers_go_out_while_the_backlog_is_still_fetched() -> None:
    robot = _Robot(pages=2, decided_per_page=ROUND_EVERY, hold_fetch=True)
    overlap = _start(robot)
    overlap.finish()
    # The first round of answers came before fetching ended (it waited for it, 10 s at most).
    assert robot.events.index("deliver") < robot.events.index("fetched")
    assert robot.events.index("fetched") < robot.events.index("move")
    assert overlap.mailbox.error is None and overlap.mailbox.count == 40


def test_a_round_of_each_follows_every_round_of_decided_mail_and_each_nudge() -> None:
    robot = _Robot(pages=1, decided_per_page=0)
    overlap = _start(robot)
    for _ in range(ROUND_EVERY - 1):
        overlap.decided()
    assert not robot.moves.acquire(timeout=0.2)  # not enough yet
    assert not robot.deliveries.acquire(timeout=0.01)
    overlap.decided()
    assert robot.moves.acquire(timeout=10) and robot.deliveries.acquire(timeout=10)
    overlap.nudge()  # deciding waits for a slow mail: a round now
    assert robot.moves.acquire(timeout=10) and robot.deliveries.acquire(timeout=10)
    overlap.finish()
    assert robot.events.count("move") == 2 and robot.events.count("deliver") == 2
    assert overlap.mailbox.error is None


def test_a_failed_fetch_is_kept_for_the_pass_and_no_move_follows() -> None:
    class _Failing(_Robot):
        def fetch_new(self) -> int:
            self.fetch_done.set()
            raise ConnectionError("mailbox gone")

    robot = _Failing(pages=1, decided_per_page=0)
    overlap = _start(robot)
    assert overlap.fetched.wait(10)
    overlap.nudge()
    assert robot.deliveries.acquire(timeout=10)  # answers already queued still go out
    overlap.finish()
    assert isinstance(overlap.mailbox.error, ConnectionError)
    assert "move" not in robot.events
