"""One glossary: every state and label staff and units read, spelled one way everywhere.

Receipts, reminders, the digest, `mailbot status` and the workbook take their words from
here; tests/mailbot/test_glossary.py fails when a state is spelled another way anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
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

# One recorded version of a form (submissions.status, plus awaiting confirmation);
# `mailbot status --unit` also tells the version that counts from an older valid one.
VERSION_LABELS: Final = MappingProxyType(
    {
        "valid": "Đã tiếp nhận",
        "invalid": "Đã nhận, có lỗi, chưa được tính",
        "superseded": "Đã được thay bằng bản gửi sau",
        "awaiting-confirmation": "Chờ xác nhận người gửi",
        "counting": "Đã tiếp nhận, đang được tính",
        "not-latest": "Đã tiếp nhận, không phải bản mới nhất",
    }
)

LATE: Final = "Gửi muộn"
NOT_OWED: Final = "Không phải gửi"
NO_MODELS: Final = "Không đăng ký mô hình"

# One form in one receipt (mailbot.mail.views.FormView.outcome): what became of it.
FORM_OUTCOME_LABELS: Final = MappingProxyType(
    {
        "accepted": "Đã tiếp nhận",
        "replaces": "Đã tiếp nhận, thay thế bản gửi trước",
        "errors": "Đã nhận, có lỗi, chưa được tính",
        "awaiting": "Chờ xác nhận người gửi",
    }
)
# The receipt's first line and its subject when the unit's mail had none: the whole outcome.
RECEIPT_OUTCOME_LABELS: Final = MappingProxyType(
    {
        "complete": "Đã tiếp nhận đủ biểu mẫu",
        "errors": "Có lỗi cần sửa",
        "awaiting": "Chờ xác nhận người gửi",
        "partial": "Đã tiếp nhận, còn thiếu biểu mẫu",
        "nothing": "Chưa tiếp nhận được biểu mẫu nào",
    }
)
# Whom a mail greets when the unit is not (yet) known: never a display name, never "Quý đơn vị".
GREETING_UNKNOWN: Final = "Đơn vị gửi hồ sơ"
GREETING_OPERATORS: Final = "Đồng chí phụ trách vận hành hệ thống tiếp nhận hồ sơ"
MISSING: Final = FORM_STATE_LABELS["none"]

# How a file format is named to a unit ("tệp Excel (.xlsx)"), never "XLSX" or "OTHER".
_FORMAT_FAMILIES: Final = MappingProxyType(
    {
        "xlsx": "Excel",
        "xlsm": "Excel",
        "xls": "Excel",
        "ods": "Excel",
        "docx": "Word",
        "doc": "Word",
        "odt": "Word",
    }
)


def format_words(formats: Iterable[str]) -> str:
    """('xlsx', 'docx', 'xls', 'doc') -> 'tệp Excel (.xlsx, .xls) hoặc tệp Word (.docx, .doc)'."""
    families: dict[str, list[str]] = {}
    for fmt in formats:
        ext = str(fmt).lstrip(".").lower()
        families.setdefault(_FORMAT_FAMILIES.get(ext, ""), []).append("." + ext)
    parts = [
        f"tệp {family} ({', '.join(exts)})" if family else ", ".join(exts)
        for family, exts in families.items()
    ]
    return " hoặc ".join(parts)
