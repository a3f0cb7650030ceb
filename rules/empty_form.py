"""Rule: a form lists at least one model, or says explicitly that the unit registers none."""

from __future__ import annotations

from rules.base import FORM_NAMES, FormRecord, Problem

CODE = "empty-form"
SEVERITY = "error"
MESSAGE = (
    "{form} chưa có mô hình nào. Đề nghị ghi các mô hình đăng ký vào bảng; nếu đơn vị không "
    "đăng ký mô hình nào ở cấp này, ghi rõ “Không đăng ký” trong bảng rồi gửi lại."
)


def check(record: FormRecord) -> list[Problem]:
    form = record.form
    if form.entries or form.declared_empty or form.unfilled_rows:
        return []
    return [Problem(SEVERITY, CODE, form.location, MESSAGE.format(form=FORM_NAMES[form.form]))]
