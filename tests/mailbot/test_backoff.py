"""The one back-off rule: doubling waits from a base up to a cap, optional jitter, a loop helper."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mailbot import db as dbm
from mailbot.backoff import Backoff, delay


def test_waits_double_from_the_base_up_to_the_cap():
    assert [delay(n, 2.0, 300.0) for n in range(1, 10)] == [2, 4, 8, 16, 32, 64, 128, 256, 300]
    assert delay(0, 2.0, 300.0) == 2.0  # no failure counted yet still waits the base
    assert delay(10_000, 60.0, 86_400.0) == 86_400.0  # no overflow for long failure runs


def test_jitter_only_shortens_and_is_off_by_default():
    assert {delay(5, 1.0, 100.0) for _ in range(20)} == {16.0}
    waits = [delay(5, 1.0, 100.0, jitter=0.5) for _ in range(200)]
    assert all(8.0 <= w <= 16.0 for w in waits)
    assert len(set(waits)) > 1


def test_a_loop_backs_off_while_failing_and_starts_over_after_a_success():
    b = Backoff(base=1.0, cap=5.0)
    assert (b.current(), b.next_delay()) == (0.0, 1.0)
    assert [b.failed() for _ in range(5)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert (b.failures, b.current(), b.next_delay()) == (5, 5.0, 5.0)
    b.reset()
    assert (b.failures, b.current(), b.next_delay()) == (0, 0.0, 1.0)


@pytest.mark.parametrize(("attempts", "seconds"), [(1, 60), (4, 480), (100, None)])
def test_mail_and_outbox_retries_use_the_same_rule(attempts: int, seconds: int | None) -> None:
    expected = seconds if seconds is not None else dbm.MAX_BACKOFF_SECONDS
    assert dbm.backoff_delay(attempts, 60) == timedelta(seconds=expected)
    assert dbm.backoff_delay(attempts, 60).total_seconds() == delay(
        attempts, 60, dbm.MAX_BACKOFF_SECONDS
    )
