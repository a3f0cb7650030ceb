"""Rule: a collective or individual listed on the form has a model in one of the field columns."""

from __future__ import annotations

from rules.base import FormRecord, Problem

CODE = "missing-model"
SEVERITY = "error"
MESSAGE = (
    "Đã ghi “{name}” nhưng chưa ghi tên mô hình ở cột lĩnh vực nào. Đề nghị ghi tên mô hình "
    "“Dân vận khéo” vào ô lĩnh vực tương ứng (kinh tế, văn hóa - xã hội, an ninh - quốc phòng "
    "hoặc xây dựng hệ thống chính trị), hoặc xóa dòng này nếu không đăng ký."
)


def check(record: FormRecord) -> list[Problem]:
    return [
        Problem(SEVERITY, CODE, row.location, MESSAGE.format(name=row.name or f"dòng {row.no}"))
        for row in record.form.unfilled_rows
    ]
