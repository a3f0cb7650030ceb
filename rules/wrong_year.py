"""Rule: the form is the one for the campaign's year (the year in its title)."""

from __future__ import annotations

from rules.base import FormRecord, Problem

CODE = "wrong-year"
SEVERITY = "error"
MESSAGE = (
    "Tiêu đề biểu ghi năm {found}, nhưng đợt đăng ký hiện nay là năm {expected}. Có thể đơn vị "
    "đã dùng lại biểu của năm trước: đề nghị dùng biểu năm {expected} và kiểm tra lại nội dung."
)


def check(record: FormRecord) -> list[Problem]:
    form, campaign = record.form, record.campaign
    if campaign is None or form.year is None or form.year == campaign.year:
        return []
    return [
        Problem(
            SEVERITY,
            CODE,
            form.year_location or form.location,
            MESSAGE.format(found=form.year, expected=campaign.year),
        )
    ]
