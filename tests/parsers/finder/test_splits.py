"""Numbered lines in one cell: the TỔNG row decides between several models and one."""

from __future__ import annotations

from parsers.finder.splits import Decision, Listed, apply, decide
from parsers.grid import Cell
from parsers.model import Entry, Totals


def _counts(**kw: int) -> dict[str, int]:
    base = {"economy": 0, "culture_society": 0, "security_defense": 0, "political_system": 0}
    return base | kw


def test_without_a_total_cells_stay_split() -> None:
    d = decide([("economy", 3)], _counts(economy=3), Totals())
    assert d == Decision((True,), ())


def test_total_matching_the_split_keeps_it() -> None:
    assert decide([("economy", 3)], _counts(economy=4), Totals(economy=4)).split == (True,)


def test_total_matching_one_model_keeps_the_cell_whole() -> None:
    d = decide([("economy", 3)], _counts(economy=4), Totals(economy=2))
    assert d == Decision((False,), ())


def test_one_description_and_one_real_list_in_the_same_field() -> None:
    # A 4-line description and a 2-item list, nothing else: TỔNG 3 = whole + 2.
    d = decide(
        [("culture_society", 4), ("culture_society", 2)],
        _counts(culture_society=6),
        Totals(culture_society=3),
    )
    assert d == Decision((False, True), ())


def test_neither_reading_matches_keeps_the_split_and_says_so() -> None:
    d = decide(
        [("economy", 3), ("culture_society", 2)],
        _counts(economy=3, culture_society=2),
        Totals(economy=2, culture_society=2),
    )
    assert d == Decision((True, True), ((0, "neither"),))


def test_several_readings_match_keeps_the_split_and_says_so() -> None:
    d = decide([("economy", 2), ("economy", 2)], _counts(economy=4), Totals(economy=3))
    assert d == Decision((True, True), ((0, "several"), (1, "several")))


def test_grand_total_decides_fields_without_their_own_figure() -> None:
    listed = [("culture_society", 4), ("security_defense", 3), ("economy", 2)]
    counts = _counts(culture_society=4, security_defense=3, economy=2, political_system=1)
    # Economy has its own figure (2: keep its list); the grand total 5 settles the others.
    d = decide(listed, counts, Totals(economy=2, all=5))
    assert d == Decision((False, False, True), ())


def test_a_total_below_even_the_whole_reading_is_neither() -> None:
    d = decide([("economy", 2)], _counts(economy=5), Totals(economy=1))
    assert d == Decision((True,), ((0, "neither"),))


def _entry(model: str, location: str) -> Entry:
    return Entry("collective", "1", "Chi bộ 5", "economy", model, None, location)


def test_apply_puts_the_whole_cell_back_as_one_entry() -> None:
    cell = Cell(
        "Mô hình A 1. Mục đích 2. Nội dung",
        "Sheet1!C9",
        ("Mô hình A", "1. Mục đích", "2. Nội dung"),
    )
    entries = (
        [_entry("x", "Sheet1!C8")]
        + [_entry(m, "Sheet1!C9") for m in ("Mô hình A", "Mục đích", "Nội dung")]
        + [_entry("y", "Sheet1!C10")]
    )
    listed = [Listed("economy", cell, 1, 3)]
    out = apply(entries, listed, Decision((False,), ()))
    assert [e.model for e in out] == ["x", "Mô hình A 1. Mục đích 2. Nội dung", "y"]
    assert apply(entries, listed, Decision((True,), ())) == entries
