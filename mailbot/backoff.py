"""Exponential back-off: the one rule for how long to wait after repeated failures."""

from __future__ import annotations

import random
from dataclasses import dataclass


def delay(attempt: int, base: float, cap: float, *, jitter: float = 0.0) -> float:
    """Seconds to wait after the `attempt`-th failure in a row: base, 2*base, 4*base... <= cap.

    `jitter` (0..1) shortens the wait by a random share of up to that fraction, so that
    many clients failing together do not retry in step; the default 0 is deterministic.
    """
    exponent = min(max(0, attempt - 1), 62)  # beyond 2**62 every sane cap has long been hit
    seconds = min(cap, base * 2.0**exponent)
    if jitter > 0:
        seconds *= 1.0 - min(jitter, 1.0) * random.random()
    return seconds


@dataclass
class Backoff:
    """A run of failures in a wait loop: each one waits twice as long, a success starts over."""

    base: float
    cap: float
    jitter: float = 0.0
    failures: int = 0

    def failed(self) -> float:
        """Count one more failure; the wait it calls for."""
        self.failures += 1
        return self.current()

    def current(self) -> float:
        """The wait the failures so far call for; 0 when there were none."""
        if self.failures == 0:
            return 0.0
        return delay(self.failures, self.base, self.cap, jitter=self.jitter)

    def next_delay(self) -> float:
        """The wait the next failure would call for (`base` after a success)."""
        return delay(self.failures + 1, self.base, self.cap, jitter=self.jitter)

    def reset(self) -> None:
        """A success: the next failure waits `base` again."""
        self.failures = 0
