from rules import missing_model
from tests.rules.conftest import UnfilledRow


def test_no_unfilled_rows_pass(record):
    assert missing_model.check(record()) == []


def test_named_row_without_model(record):
    row = UnfilledRow(kind="individual", no="1", name="Nguyễn Thị Hoa", location="Sheet1!B16")
    problems = missing_model.check(record(unfilled_rows=[row]))
    assert [(p.code, p.severity, p.location) for p in problems] == [
        ("missing-model", "error", "Sheet1!B16")
    ]
    assert "Nguyễn Thị Hoa" in problems[0].message
