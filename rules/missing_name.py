"""Rule: every registered model says which collective or individual carries it."""

from __future__ import annotations

from parsers.model import Severity
from parsers.problems import problem, spec
from rules.base import FormRecord, Problem

CODE = "missing-name"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[str] = set()
    for entry in record.form.entries:
        if entry.name:
            continue
        # One problem per row: a row with two models names its missing name once.
        key = entry.name_location or entry.location
        if key in seen:
            continue
        seen.add(key)
        # The row (its section and TT) is the problem's place: receipts say it, not the text.
        problems.append(problem(CODE, key, model=entry.model))
    return problems
