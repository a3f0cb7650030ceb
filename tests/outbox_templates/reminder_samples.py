"""Reminder views for the render tests: the three cases of a unit that is not complete."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.campaign.views import (
    REMINDER_FORMS_MISSING,
    REMINDER_FORMS_WITH_ERRORS,
    REMINDER_NOTHING_SENT,
    ReminderFormView,
    ReminderView,
)
from mailbot.contact import Contact

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
M1 = "Mẫu số 01 (cấp Quận)"
M2 = "Mẫu số 02 (cấp cơ sở)"
CONTACT = Contact(
    office="Ban Dân vận Quận ủy Thanh Xuân",
    person="đồng chí Nguyễn Thị Hà",
    phone="024 3858 1234",
    email="bdv_quthanhxuan@hanoi.gov.vn",
    letter="Công văn số 719-CV/QU ngày 07/01/2022",
)
RECEIVED = ReminderFormView(
    name=M1, state="Đã tiếp nhận", received_at=datetime(2022, 2, 15, 9, 0, tzinfo=TZ)
)
MISSING = ReminderFormView(name=M2, state="Còn thiếu")
WITH_ERRORS = ReminderFormView(
    name=M1,
    state="Đã nhận, có lỗi, chưa được tính",
    received_at=datetime(2022, 2, 16, 11, 0, tzinfo=TZ),
    sender="hoiccb@thanhxuan.example",
    problems=("Mục I. Tập thể, dòng TT 2 (ô B12): Dòng này chưa ghi tên tập thể, cá nhân.",),
    receipt_to=("hoiccb@thanhxuan.example",),
)


def reminder_view(case: str = REMINDER_NOTHING_SENT, **changes: object) -> ReminderView:
    """A reminder at D-3 (Thursday 17/02/2022) to a unit in one of the three cases."""
    forms: dict[str, object] = {
        REMINDER_NOTHING_SENT: {
            "forms": (replace(MISSING, name=M1), MISSING),
            "missing_forms": (M1, M2),
            "attached_forms": (M1, M2),
        },
        REMINDER_FORMS_MISSING: {
            "forms": (RECEIVED, MISSING),
            "missing_forms": (M2,),
            "attached_forms": (M2,),
        },
        REMINDER_FORMS_WITH_ERRORS: {
            "forms": (WITH_ERRORS, replace(RECEIVED, name=M2)),
            "missing_forms": (),
            "error_forms": (WITH_ERRORS,),
            "attached_forms": (M1,),
        },
    }[case]  # type: ignore[assignment]
    values: dict[str, object] = {
        "unit_name": "Hội Cựu chiến binh quận Thanh Xuân",
        "campaign_name": "Phong trào thi đua “Dân vận khéo” năm 2022",
        "deadline_text": "trước ngày 20/02/2022",
        "deadline_words": "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)",
        "last_day": "hết ngày thứ Bảy 19/02/2022",
        "last_day_name": "thứ Bảy 19/02/2022",
        "days_left": 3,
        "last_working_day": False,
        "case": case,
        "as_of": datetime(2022, 2, 17, 8, 0, tzinfo=TZ),
        "error_forms": (),
        "unconfirmed_forms": (),
        "submission_address": "bdv_quthanhxuan@hanoi.gov.vn",
        "contact": CONTACT,
        "accepted_formats": ("xlsx", "docx", "xls", "doc"),
        "office_name": "Ban Dân vận Quận ủy Thanh Xuân",
        **forms,  # type: ignore[dict-item]
        **changes,
    }
    return ReminderView(**values)  # type: ignore[arg-type]
