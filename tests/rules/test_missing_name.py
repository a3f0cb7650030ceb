from rules import missing_name
from tests.rules.conftest import entry


def test_named_entries_pass(record):
    assert missing_name.check(record()) == []


def test_entry_without_name_is_reported_at_its_cell(record):
    problems = missing_name.check(
        record(entries=[entry(), entry(name=None, no="2", loc="Sheet1!D11", model="Camera")])
    )
    assert [(p.code, p.location) for p in problems] == [("missing-name", "Sheet1!D11")]
    assert "Camera" in problems[0].message and "số 2" in problems[0].message


def test_one_row_with_two_models_is_reported_once(record):
    problems = missing_name.check(
        record(entries=[entry(name=None, no="3", loc="Sheet1!C12"),
                        entry(name=None, no="3", loc="Sheet1!E12", field="security_defense")])
    )
    assert len(problems) == 1
