"""Rule: a form lists at least one model, or says explicitly that the unit registers none."""

from __future__ import annotations

from parsers.model import Severity
from parsers.problems import problem, spec
from rules.base import FORM_NAMES, FormRecord, Problem

CODE = "empty-form"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    if form.entries or form.declared_empty or form.unfilled_rows:
        return []
    return [problem(CODE, form.location, form=FORM_NAMES[form.form])]
