"""Rule: the form says which unit filled it (the "TÊN ĐƠN VỊ" line is filled in)."""

from __future__ import annotations

from rules.base import FormRecord, Problem

CODE = "missing-unit-name"
SEVERITY = "error"
MESSAGE = (
    "Biểu chưa ghi tên đơn vị: dòng “TÊN ĐƠN VỊ” ở góc trên bên trái còn để trống hoặc để "
    "nguyên chữ mẫu. Đề nghị ghi rõ tên đơn vị (ví dụ: Đảng ủy phường Khương Trung) và gửi lại."
)


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    if form.unit:
        return []
    return [Problem(SEVERITY, CODE, form.unit_location or form.location, MESSAGE)]
