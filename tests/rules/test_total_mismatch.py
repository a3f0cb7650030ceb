from rules import total_mismatch
from tests.rules.conftest import Totals, entry


def test_matching_and_blank_totals_pass(record):
    totals = Totals(economy=1, all=1)
    assert total_mismatch.check(record(declared_totals=totals)) == []
    assert total_mismatch.check(record(declared_totals=Totals())) == []


def test_wrong_field_total_points_at_its_cell(record):
    r = record(
        entries=[entry(), entry(field="culture_society", loc="Sheet1!D11")],
        declared_totals=Totals(economy=1, culture_society=3, all=2),
        totals_location={"culture_society": "Sheet1!D20", "economy": "Sheet1!C20"},
    )
    problems = total_mismatch.check(r)
    assert [(p.code, p.location) for p in problems] == [("total-mismatch", "Sheet1!D20")]
    assert "3" in problems[0].message and "1" in problems[0].message


def test_wrong_overall_total(record):
    problems = total_mismatch.check(record(declared_totals=Totals(all=5)))
    assert len(problems) == 1 and "Tổng số" in problems[0].message
