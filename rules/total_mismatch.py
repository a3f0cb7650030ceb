"""Rule: the figures on the TỔNG row agree with the models actually listed."""

from __future__ import annotations

from parsers.model import FIELDS, Severity
from parsers.problems import problem, spec
from rules.base import FIELD_NAMES, FormRecord, Problem

CODE = "total-mismatch"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    counts = {f: 0 for f in FIELDS}
    for entry in form.entries:
        counts[entry.field] = counts.get(entry.field, 0) + 1
    counts["all"] = len(form.entries)
    problems: list[Problem] = []
    for key in (*FIELDS, "all"):
        declared = form.declared_totals.get(key)
        if declared is None or declared == counts[key]:
            continue
        problems.append(
            problem(
                CODE,
                form.totals_location.get(key, form.location),
                declared=declared,
                field=FIELD_NAMES[key],
                counted=counts[key],
            )
        )
    return problems
