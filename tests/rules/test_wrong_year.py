from rules import wrong_year
from rules.base import FormRecord
from tests.rules.conftest import form


def test_campaign_year_passes(record):
    assert wrong_year.check(record()) == []


def test_last_years_form_is_an_error(record):
    problems = wrong_year.check(record(year=2021, year_location="Sheet1!A6"))
    assert [(p.code, p.severity, p.location) for p in problems] == [
        ("wrong-year", "error", "Sheet1!A6")
    ]
    assert "2021" in problems[0].message and "2022" in problems[0].message


def test_unknown_year_or_campaign_is_not_judged(record):
    assert wrong_year.check(record(year=None)) == []
    assert wrong_year.check(FormRecord(form(year=2019), None)) == []
