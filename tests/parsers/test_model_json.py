"""The records' JSON (spelled out for speed) holds every field the dataclass has, in order."""

from __future__ import annotations

import dataclasses

from parsers.model import Entry, Problem, Totals


def test_problem_json_is_every_field_in_order() -> None:
    problem = Problem("error", "E_CODE", "Sheet1!D9", "Thiếu tên mô hình")
    assert list(problem.to_json().items()) == list(dataclasses.asdict(problem).items())


def test_entry_json_is_every_field_but_the_name_location() -> None:
    entry = Entry("individual", "1", "Nguyễn Văn A", "economy", "Mô hình", None, "B7", "C7")
    expected = dataclasses.asdict(entry)
    del expected["name_location"]
    assert list(entry.to_json().items()) == list(expected.items())


def test_totals_json_is_every_field_in_order() -> None:
    totals = Totals(1, 2, None, 4, 7)
    assert list(totals.to_json().items()) == list(dataclasses.asdict(totals).items())
