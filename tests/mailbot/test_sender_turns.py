"""Which mail a worker gets next: a sender's mails wait for its earlier ones' records."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from mailbot.service import _SenderTurns

_AT = datetime(2027, 2, 10, 8, 0, tzinfo=UTC)


def _turns(*senders: str | None) -> _SenderTurns:
    return _SenderTurns([(n, f"raw/{n}", _AT, s) for n, s in enumerate(senders, start=1)])


def _id(turn: tuple[tuple[int, str, datetime, str | None], bool] | None) -> tuple[int, bool]:
    assert turn is not None
    return turn[0][0], turn[1]


def test_another_senders_mail_goes_first_while_an_earlier_one_is_being_decided() -> None:
    turns = _turns("a@x.vn", "A@x.vn ", "b@x.vn", None)
    assert _id(turns.next(set())) == (1, False)
    assert _id(turns.next(set())) == (3, False)  # 2 waits: 1 is being decided
    assert _id(turns.next(set())) == (4, False)  # no sender: waits for no one
    assert not turns.ready([])  # only 2 is left, and 1 is still being decided
    assert _id(turns.next(set())) == (2, False)  # a free worker gets it anyway
    assert turns.next(set()) is None and turns.ready([])


def test_a_mail_whose_earlier_ones_are_only_held_goes_after_they_are_recorded() -> None:
    turns = _turns("a@x.vn", "a@x.vn", "a@x.vn")
    assert _id(turns.next(set())) == (1, False)
    held = [(1, object(), None)]
    assert turns.ready(held)  # type: ignore[arg-type]
    assert _id(turns.next({1})) == (2, True)  # the held outcome is recorded first
    turns.recorded([1])
    assert not turns.ready([])  # 3 waits for 2, being decided
    turns.recorded([2])
    assert _id(turns.next(set())) == (3, False)


def test_a_failed_or_deferred_mail_no_longer_holds_its_senders_next() -> None:
    turns = _turns("a@x.vn", "a@x.vn")
    assert _id(turns.next(set())) == (1, False)
    turns.recorded({1})
    assert turns.ready([]) and _id(turns.next(set())) == (2, False)


def _reference_choice(turns: _SenderTurns, held: set[int]) -> tuple[int, bool] | None:
    """The choice by its definition: every mail left looked at, in mailbox order."""
    flush = None
    for n, (mail_id, _, _, sender) in enumerate(turns._left):
        key = sender.strip().lower() if sender else None
        ids = turns._open.get(key, []) if key else []
        earlier = ids[: ids.index(mail_id)] if mail_id in ids else []
        if not earlier:
            return n, False
        if flush is None and all(m in held for m in earlier):
            flush = n
    return None if flush is None else (flush, True)


def test_a_long_page_looks_only_at_each_senders_first_mail_and_chooses_the_same() -> None:
    rng = random.Random(20261128)
    for _ in range(300):
        senders = [rng.choice(["a@x.vn", "b@x.vn", "c@x.vn", "B@x.vn", None]) for _ in range(40)]
        turns = _turns(*senders)
        handed: list[int] = []
        while turns._left:
            held = {m for m in handed if rng.random() < 0.5}
            assert turns._choice(held) == _reference_choice(turns, held)
            turn = turns.next(held)
            assert turn is not None
            handed.append(turn[0][0])
            if rng.random() < 0.4:
                done = [m for m in handed if rng.random() < 0.5]
                turns.recorded(done)
                handed = [m for m in handed if m not in done]
