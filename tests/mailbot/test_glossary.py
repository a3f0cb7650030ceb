"""One spelling per state: templates and code use mailbot.glossary, never another wording."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from pathlib import Path
from typing import NamedTuple
from zoneinfo import ZoneInfo

import pytest

from mailbot import glossary
from mailbot.campaign import status
from mailbot.contact import Contact
from mailbot.mail.views import NoticeView, ReceiptView, file_view
from outbox_templates import render
from parsers.model import Entry, Form, ParseResult, Problem

ROOT = Path(__file__).resolve().parents[2]


class Variant(NamedTuple):
    """A wording that must not appear, and the glossary word to use instead."""

    name: str  # the test id
    pattern: str  # a regular expression, case-sensitive
    use: str


FORBIDDEN: tuple[Variant, ...] = (
    Variant(
        "quy-don-vi",
        r"Quý đơn vị",
        f"“đơn vị”, “đồng chí”, or “{glossary.GREETING_UNKNOWN}” in a greeting",
    ),
    Variant("chua-nop", r"\bChưa nộp\b", glossary.UNIT_STATE_LABELS["missing"]),
    Variant("chua-nop-lower", r"\bchưa nộp\b", glossary.UNIT_STATE_LABELS["missing"].lower()),
    Variant("da-du", r"\bĐã đủ\b", glossary.UNIT_STATE_LABELS["complete"]),
    Variant("da-nop-du", r"\bĐã nộp đủ\b", glossary.UNIT_STATE_LABELS["complete"]),
    Variant("gui-thieu", r"\bGửi thiếu\b", glossary.UNIT_STATE_LABELS["partial"]),
    # "Còn thiếu" names a form not received at all, never a unit's state.
    Variant(
        "con-thieu-as-unit-state",
        r"\"partial\"\s*:\s*\"Còn thiếu\"",
        glossary.UNIT_STATE_LABELS["partial"],
    ),
    Variant("khong-phai-nop", r"\b[Kk]hông phải nộp\b", glossary.NOT_OWED),
    Variant("nop-muon", r"\b[Nn]ộp muộn\b", glossary.LATE),
    Variant("nop-sau-thoi-han", r"\b[Nn]ộp sau thời hạn\b", glossary.LATE),
    Variant(
        "dinh-dang", r"\(định dạng\b", "no format, or glossary.format_words: “tệp Excel (.xlsx)”"
    ),
    Variant("format-upper", r"format\|upper", "no format, or the format_words filter"),
    Variant(
        "so-bieu-mau-doc-duoc",
        r"số biểu mẫu đọc được",
        "each form with its glossary.FORM_OUTCOME_LABELS",
    ),
    Variant(
        "so-mo-hinh-ghi-nhan", r"số mô hình ghi nhận", "models counted from accepted forms only"
    ),
    Variant("cac-mo-hinh-da-ghi-nhan", r"Các mô hình đã ghi nhận", "FormView.models_heading"),
    Variant(
        "da-luu-cho-xac-nhan",
        r"(?i)đã lưu – chờ xác nhận",
        glossary.FORM_OUTCOME_LABELS["awaiting"],
    ),
    Variant(
        "chua-tiep-nhan-co-loi",
        r"(?i)chưa tiếp nhận – có lỗi",
        glossary.FORM_OUTCOME_LABELS["errors"],
    ),
    Variant(
        "co-loi-khong-duoc-tinh", r"có lỗi, không được tính", glossary.FORM_OUTCOME_LABELS["errors"]
    ),
    Variant("tag-can-sua-loi", r"\[Cần sửa lỗi\]", glossary.RECEIPT_OUTCOME_LABELS["errors"]),
    Variant("tag-da-nhan-du", r"\[Đã nhận đủ\]", glossary.RECEIPT_OUTCOME_LABELS["complete"]),
    Variant(
        "da-nhan-con-thieu", r"Đã nhận – còn thiếu", glossary.RECEIPT_OUTCOME_LABELS["partial"]
    ),
)


def _sources() -> list[Path]:
    files = [*(ROOT / "outbox_templates").glob("*.j2"), *(ROOT / "outbox_templates").glob("*.py")]
    for package in ("mailbot", "rules"):
        files += (ROOT / package).rglob("*.py")
    return sorted(p for p in files if p != ROOT / "mailbot" / "glossary.py")


def test_the_scan_covers_templates_and_code() -> None:
    names = {p.relative_to(ROOT).as_posix() for p in _sources()}
    assert {"outbox_templates/receipt.txt.j2", "mailbot/intake.py", "rules/campaign.py"} <= names
    assert "mailbot/glossary.py" not in names


@pytest.mark.parametrize("variant", FORBIDDEN, ids=lambda v: v.name)
def test_no_state_is_spelled_another_way(variant: Variant) -> None:
    pattern = re.compile(variant.pattern)
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line.strip()[:120]}"
        for path in _sources()
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, f"use {variant.use!r} (mailbot/glossary.py) instead:\n" + "\n".join(found)


def test_glossary_states_are_each_spelled_once_per_meaning() -> None:
    # The same state in two tables has the same words (a form's and a version's outcome).
    assert glossary.FORM_OUTCOME_LABELS["accepted"] == glossary.VERSION_LABELS["valid"]
    assert glossary.FORM_OUTCOME_LABELS["errors"] == glossary.FORM_STATE_LABELS["errors"]
    assert glossary.FORM_OUTCOME_LABELS["errors"] == glossary.VERSION_LABELS["invalid"]
    assert (
        glossary.FORM_OUTCOME_LABELS["awaiting"]
        == glossary.UNIT_STATE_LABELS["awaiting-confirmation"]
    )
    assert glossary.FORM_STATE_LABELS["none"] == glossary.MISSING
    assert status.STATE_LABELS is glossary.UNIT_STATE_LABELS
    assert set(status.VERSION_LABELS.values()) <= set(glossary.VERSION_LABELS.values())


def test_format_words_name_the_program_not_a_machine_word() -> None:
    assert glossary.format_words(("xlsx",)) == "tệp Excel (.xlsx)"
    assert glossary.format_words(("xlsx", "docx", "xls", "doc")) == (
        "tệp Excel (.xlsx, .xls) hoặc tệp Word (.docx, .doc)"
    )


# --------------------------------------------------------------------------- renders

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CONTACT = Contact("Ban Dân vận Quận ủy Thanh Xuân", None, None, "bdv@x.example", "")


def _form(form: str, problems: list[Problem]) -> ParseResult:
    entry = Entry("collective", "1", "Chi bộ 5", "economy", "Chợ văn minh", None, "Sheet1!D9")
    unit = "Đảng ủy phường Khương Trung"
    parsed = Form(form, unit, 2022, None, "Sheet1", [entry], problems=problems)
    return ParseResult(file=f"{form}.xlsx", format="xlsx", forms=[parsed])


def _receipt(**changes: object) -> ReceiptView:
    error = Problem("error", "total-mismatch", "Sheet1!D20", "Dòng TỔNG không khớp.")
    view = ReceiptView(
        unit_name="Đảng ủy phường Khương Trung",
        awaiting_confirmation=False,
        campaign_name="Phong trào thi đua “Dân vận khéo” năm 2022",
        deadline_text="trước ngày 20/02/2022",
        deadline=date(2022, 2, 20),
        received_at=datetime(2022, 2, 14, 9, 41, tzinfo=TZ),
        late=False,
        files=(file_view(_form("M1", [])), file_view(_form("M2", [error]))),
        missing_forms=(),
        all_complete=False,
        submission_address="bdv@x.example",
        contact=CONTACT,
    )
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]


def test_a_receipt_says_each_outcome_in_the_glossarys_words() -> None:
    view = _receipt()
    out = render("receipt", view)
    accepted, rejected = view.forms
    assert (accepted.outcome_label, rejected.outcome_label) == (
        glossary.FORM_OUTCOME_LABELS["accepted"],
        glossary.FORM_OUTCOME_LABELS["errors"],
    )
    for body in (out.text, out.html):
        assert glossary.FORM_OUTCOME_LABELS["accepted"] in body
        assert glossary.FORM_OUTCOME_LABELS["errors"] in body
        # a form sent with errors is not "missing"
        assert glossary.MISSING not in body
    assert view.outcome_label in render("receipt", _receipt(original_subject=None)).subject


def test_missing_forms_late_and_awaiting_use_the_glossary() -> None:
    out = render(
        "receipt",
        _receipt(missing_forms=("Mẫu số 02 (cấp cơ sở)",), late=True, awaiting_confirmation=True),
    )
    for body in (out.text, out.html):
        assert f"{glossary.MISSING}: " in body
        assert glossary.LATE in body or glossary.LATE.upper() in body
        assert glossary.FORM_OUTCOME_LABELS["awaiting"] in body or (
            glossary.FORM_OUTCOME_LABELS["awaiting"].upper() in body
        )
        assert f"Kính gửi: {glossary.GREETING_UNKNOWN}" in body.replace("<strong>", "")


def test_notices_greet_the_unit_or_the_neutral_greeting() -> None:
    view = NoticeView(
        unit_name=None,
        reason_code="quarantined-unknown-unit",
        received_at=datetime(2022, 2, 14, 9, 41, tzinfo=TZ),
        original_subject=None,
        max_size_mb=20,
        submission_address="bdv@x.example",
        campaign_name="Phong trào thi đua “Dân vận khéo” năm 2022",
        contact=CONTACT,
    )
    assert f"Kính gửi: {glossary.GREETING_UNKNOWN}," in render("notice", view).text
