"""Rule: the figures on the TỔNG row agree with the models actually listed."""

from __future__ import annotations

from parsers.model import FIELDS
from rules.base import FIELD_NAMES, FormRecord, Problem

CODE = "total-mismatch"
SEVERITY = "error"
MESSAGE = (
    "Dòng TỔNG ghi {declared} mô hình ở cột “{field}” nhưng biểu liệt kê {counted} mô hình. "
    "Đề nghị kiểm tra lại số liệu dòng TỔNG."
)


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    counts = {f: 0 for f in FIELDS}
    for entry in form.entries:
        counts[entry.field] = counts.get(entry.field, 0) + 1
    counts["all"] = len(form.entries)
    problems = []
    for key in (*FIELDS, "all"):
        declared = form.declared_totals.get(key)
        if declared is None or declared == counts[key]:
            continue
        problems.append(
            Problem(
                SEVERITY,
                CODE,
                form.totals_location.get(key, form.location),
                MESSAGE.format(declared=declared, field=FIELD_NAMES[key], counted=counts[key]),
            )
        )
    return problems
