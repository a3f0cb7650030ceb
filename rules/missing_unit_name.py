"""Rule: the form says which unit filled it (the "TÊN ĐƠN VỊ" line is filled in)."""

from __future__ import annotations

from parsers.model import Severity
from parsers.problems import problem, spec
from rules.base import FormRecord, Problem

CODE = "missing-unit-name"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    if form.unit:
        return []
    return [problem(CODE, form.unit_location or form.location)]
