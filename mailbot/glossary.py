"""One glossary: every state and label staff and units read, spelled one way everywhere.

Receipts, reminders, the digest, `mailbot status` and the workbook take their words from
here; tests/mailbot/test_glossary.py fails when a state is spelled another way anywhere.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

# A unit in the campaign (mailbot.campaign.status.STATES, in order of precedence).
UNIT_STATE_LABELS: Final = MappingProxyType(
    {
        "complete": "Đã gửi đủ",
        "awaiting-confirmation": "Chờ xác nhận người gửi",
        "errors": "Có lỗi cần sửa",
        "partial": "Gửi chưa đủ",
        "missing": "Chưa gửi",
    }
)

# One required form of one unit (mailbot.campaign.status FORM_*): what the form amounts to.
FORM_STATE_LABELS: Final = MappingProxyType(
    {
        "ok": "Đã tiếp nhận",
        "unconfirmed": "Chờ xác nhận người gửi",
        "errors": "Đã nhận, có lỗi, chưa được tính",
        "none": "Còn thiếu",
    }
)

# One recorded version of a form (submissions.status, plus awaiting confirmation).
VERSION_LABELS: Final = MappingProxyType(
    {
        "valid": "Đã tiếp nhận",
        "invalid": "Đã nhận, có lỗi, chưa được tính",
        "superseded": "Đã được thay bằng bản gửi sau",
        "awaiting-confirmation": "Chờ xác nhận người gửi",
    }
)

LATE: Final = "Gửi muộn"
NOT_OWED: Final = "Không phải gửi"
NO_MODELS: Final = "Không đăng ký mô hình"
