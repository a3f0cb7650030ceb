"""Rule: a collective or individual listed on the form has a model in one of the field columns."""

from __future__ import annotations

from parsers.model import Severity
from parsers.problems import problem, spec
from rules.base import FormRecord, Problem

CODE = "missing-model"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    return [
        problem(CODE, row.location, name=row.name or f"dòng {row.no}")
        for row in record.form.unfilled_rows
    ]
