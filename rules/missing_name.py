"""Rule: every registered model says which collective or individual carries it."""

from __future__ import annotations

from rules.base import FormRecord, Problem

CODE = "missing-name"
SEVERITY = "error"
MESSAGE = (
    "Dòng {no}có tên mô hình “{model}” nhưng chưa ghi tên tập thể, cá nhân. Đề nghị ghi rõ "
    "tên tập thể hoặc cá nhân thực hiện mô hình vào cột “Tên tập thể, cá nhân”."
)


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
        no = f"số {entry.no} " if entry.no else ""
        problems.append(
            Problem(
                SEVERITY,
                CODE,
                entry.name_location or entry.location,
                MESSAGE.format(no=no, model=entry.model),
            )
        )
    return problems
