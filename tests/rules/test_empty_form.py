from rules import empty_form


def test_form_with_entries_passes(record):
    assert empty_form.check(record()) == []


def test_empty_form_is_an_error(record):
    problems = empty_form.check(record(entries=[], form="M2"))
    assert [(p.code, p.location) for p in problems] == [("empty-form", "Sheet1")]
    assert "Mẫu số 02" in problems[0].message


def test_explicit_no_registration_counts_as_sent(record):
    assert empty_form.check(record(entries=[], declared_empty=True)) == []
