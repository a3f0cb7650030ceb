"""The mailbox thread: it fetches the whole backlog first, then moves and answers in rounds.

Rounds between fetched pages were measured (sessions 5 and 6): fetching slowed behind them
and the pass took as long or longer, so the backlog is fetched first.
"""

from __future__ import annotations

import threading

from mailbot.overlap import ROUND_EVERY, MailboxThread


class _Robot:
    """Records the order of what the thread asked for; `decided_per_page` mails are reported
    decided by the deciding thread while each page is fetched."""

    def __init__(self, pages: int, decided_per_page: int) -> None:
        self.pages = pages
        self.decided_per_page = decided_per_page
        self.events: list[str] = []
        self.thread: MailboxThread | None = None
        self.fetch_done = threading.Event()
        self.rounds = threading.Semaphore(0)

    def fetch_new(self) -> int:
        assert self.thread is not None
        for page in range(self.pages):
            self.events.append(f"page {page}")
            for _ in range(self.decided_per_page):
                self.thread.decided()
        self.fetch_done.set()
        return self.pages * 20

    def move_done(self) -> int:
        self.events.append("move")
        return 0

    def _deliver_meanwhile(self) -> None:
        self.events.append("deliver")
        self.rounds.release()


def _start(robot: _Robot) -> MailboxThread:
    thread = MailboxThread(robot, fetch=True)
    robot.thread = thread
    thread.start()
    assert robot.fetch_done.wait(10)
    return thread


def test_the_backlog_is_fetched_before_the_first_round() -> None:
    robot = _Robot(pages=3, decided_per_page=ROUND_EVERY)
    thread = _start(robot)
    assert robot.rounds.acquire(timeout=10)
    thread.finish()
    assert robot.events == ["page 0", "page 1", "page 2", "move", "deliver"]


def test_after_fetching_a_round_follows_every_round_of_decided_mail() -> None:
    robot = _Robot(pages=1, decided_per_page=0)
    thread = _start(robot)
    for _ in range(ROUND_EVERY - 1):
        thread.decided()
    assert not robot.rounds.acquire(timeout=0.2)  # not enough yet
    thread.decided()
    assert robot.rounds.acquire(timeout=10)
    thread.nudge()  # deciding waits for a slow mail: a round now
    assert robot.rounds.acquire(timeout=10)
    thread.finish()
    assert robot.events == ["page 0", "move", "deliver", "move", "deliver"]
    assert thread.error is None
