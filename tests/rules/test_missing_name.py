from dataclasses import replace

from rules import missing_name
from tests.rules.conftest import entry


def test_named_entries_pass(record):
    assert missing_name.check(record()) == []


def test_entry_without_name_is_reported_at_its_cell(record):
    problems = missing_name.check(
        record(entries=[entry(), entry(name=None, no="2", loc="Sheet1!D11", model="Camera")])
    )
    assert [(p.code, p.location) for p in problems] == [("missing-name", "Sheet1!D11")]
    # The row (section, TT) is the place a receipt gives, not repeated in the message.
    assert "Camera" in problems[0].message and "Dòng" not in problems[0].message


def test_one_row_with_two_models_is_reported_once_at_the_name_cell(record):
    row = [
        entry(name=None, no="3", loc="Sheet1!C12"),
        entry(name=None, no="3", loc="Sheet1!E12", field="security_defense"),
    ]
    row = [replace(e, name_location="Sheet1!B12") for e in row]
    problems = missing_name.check(record(entries=row))
    assert [p.location for p in problems] == ["Sheet1!B12"]


def test_same_number_in_both_sections_is_two_problems(record):
    rows = [
        replace(entry(name=None, no="2", loc="Sheet1!D12"), name_location="Sheet1!B12"),
        replace(
            entry(name=None, no="2", loc="Sheet1!C15", kind="individual"),
            name_location="Sheet1!B15",
        ),
    ]
    problems = missing_name.check(record(entries=rows))
    assert [p.location for p in problems] == ["Sheet1!B12", "Sheet1!B15"]
