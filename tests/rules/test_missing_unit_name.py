from rules import missing_unit_name


def test_filled_unit_is_fine(record):
    assert missing_unit_name.check(record()) == []


def test_missing_unit_points_at_the_unit_line(record):
    problems = missing_unit_name.check(record(unit=None, unit_location="Sheet1!A1"))
    assert [(p.code, p.severity, p.location) for p in problems] == [
        ("missing-unit-name", "error", "Sheet1!A1")
    ]
    assert "TÊN ĐƠN VỊ" in problems[0].message


def test_without_a_unit_line_the_form_is_named(record):
    problems = missing_unit_name.check(record(unit=None))
    assert problems[0].location == "Sheet1"
