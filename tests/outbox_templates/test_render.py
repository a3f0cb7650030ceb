"""Render every outgoing-mail event (text and HTML) from the view dataclasses and check content."""

from __future__ import annotations

import dataclasses
import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from jinja2 import UndefinedError

from mailbot.alerts import AlertView
from mailbot.campaign.views import (
    AttentionView,
    DigestCounts,
    DigestView,
    ReminderView,
    percent,
)
from mailbot.contact import Contact
from mailbot.mail.views import (
    NOTICE_REASONS,
    NoticeView,
    ReceiptView,
    file_view,
    form_rows,
    form_view,
    human_location,
    problem_place,
)
from outbox_templates import EVENTS, Rendered, environment, render
from parsers.model import Entry, Form, ParseResult, Problem
from rules.campaign import FormSpec
from tests.outbox_templates.reminder_samples import reminder_view

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
CAMPAIGN = "Phong trào thi đua “Dân vận khéo” năm 2022"
DEADLINE_TEXT = "trước ngày 20/02/2022"
WORDS = "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)"
SPECS = (
    FormSpec(code="M1", title="Mẫu số 01", level="cấp Quận"),
    FormSpec(code="M2", title="Mẫu số 02", level="cấp cơ sở"),
)
HOSTILE = "<script>alert(1)</script>"
CONTACT = Contact(
    office="Ban Dân vận Quận ủy Thanh Xuân",
    person="đồng chí Nguyễn Thị Hà",
    phone="024 3858 1234",
    email="bdv_quthanhxuan@hanoi.gov.vn",
    letter="Công văn số 719-CV/QU ngày 07/01/2022",
)


def _workbook_result() -> ParseResult:
    form = Form(
        form="M1",
        unit="Đảng ủy phường Khương Trung",
        year=2022,
        date="2022-02-14",
        location="Sheet1",
        entries=[
            Entry(
                "collective",
                "1",
                "Chi bộ Tổ dân phố số 5",
                "culture_society",
                "Tổ dân phố xanh - sạch - đẹp",
                None,
                "Sheet1!D9",
            ),
            Entry(
                "collective",
                "2",
                HOSTILE,
                "economy",
                "Mô hình <b>kinh tế</b> & “hộ”",
                "Tiêu biểu",
                "Sheet1!C10",
            ),
            Entry(
                "individual",
                "1",
                "Nguyễn Thị Hồng Nhung",
                "political_system",
                "Dân vận khéo trong công tác phát triển đảng viên",
                None,
                "Sheet1!F14",
            ),
        ],
        problems=[
            Problem(
                "error",
                "total-mismatch",
                "Sheet1!D20",
                "Dòng TỔNG ghi 3 mô hình lĩnh vực văn hóa - xã hội, nhưng bảng có 1.",
            ),
            Problem(
                "warning",
                "legacy-encoding-converted",
                None,
                "Tệp dùng phông chữ TCVN3; đã chuyển sang Unicode.",
            ),
        ],
    )
    return ParseResult(file="Mau 01 - Khuong Trung.xlsx", format="xlsx", forms=[form])


def _document_result() -> ParseResult:
    form = Form(
        form="M2",
        unit="Đảng ủy phường Khương Trung",
        year=2022,
        date=None,
        location="table 1",
        entries=[
            Entry(
                "individual",
                "1",
                "Trần Văn Bình",
                "security_defense",
                "Tổ tự quản an ninh trật tự khu dân cư",
                None,
                "table 1, row 9, column 5",
            ),
        ],
        problems=[
            Problem(
                "error",
                "missing-name",
                "table 1, row 10, column 2",
                "Dòng 2 mục II có mô hình nhưng chưa ghi tên cá nhân.",
            ),
        ],
    )
    return ParseResult(file="Mẫu 02 – cơ sở.docx", format="docx", forms=[form])


def _unreadable_result() -> ParseResult:
    return ParseResult(
        file=f"Ảnh chụp {HOSTILE}.pdf",
        format="pdf",
        problems=[
            Problem(
                "error",
                "unsupported-format",
                None,
                "Tệp PDF là bản in, không đọc được bảng đăng ký.",
            )
        ],
    )


def _receipt(**changes: object) -> ReceiptView:
    view = ReceiptView(
        unit_name="Đảng ủy phường Khương Trung",
        awaiting_confirmation=False,
        campaign_name=CAMPAIGN,
        deadline_text=DEADLINE_TEXT,
        deadline_words=WORDS,
        deadline=date(2022, 2, 20),
        received_at=datetime(2022, 2, 14, 9, 41, tzinfo=TZ),
        late=False,
        files=(
            file_view(_workbook_result(), form_specs=SPECS, superseding={"M1"}),
            file_view(_unreadable_result(), form_specs=SPECS),
        ),
        missing_forms=("Mẫu số 02 (cấp cơ sở)",),
        all_complete=False,
        submission_address="bdv_quthanhxuan@hanoi.gov.vn",
        contact=CONTACT,
        original_subject="Gửi đăng ký mô hình DVK 2022",
    )
    return dataclasses.replace(view, **changes)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- locations


@pytest.mark.parametrize(
    ("machine", "human"),
    [
        ("Sheet1!D9", "ô D9 (trang tính Sheet1)"),
        ("'Mẫu 01'!$C$10", "ô C10 (trang tính Mẫu 01)"),
        ("'Bob''s sheet'!a1", "ô A1 (trang tính Bob's sheet)"),
        ("Sheet1!B20:G20", "vùng B20:G20 (trang tính Sheet1)"),
        ("table 1, row 9, column 4", "bảng 1, dòng 9, cột 4"),
        ("table 2", "bảng 2"),
        ("Sheet1", "trang tính Sheet1"),
        (None, ""),
        ("   ", ""),
    ],
)
def test_human_location(machine: str | None, human: str) -> None:
    assert human_location(machine) == human


# --------------------------------------------------------------------------- builders


def test_file_view_maps_records_to_vietnamese_labels() -> None:
    fv = file_view(_workbook_result(), form_specs=SPECS, superseding={"M1"})
    assert fv.readable and fv.reason is None
    (fm,) = fv.forms
    assert fm.form_title == "Mẫu số 01 – cấp Quận"
    assert fm.date == "14/02/2022"
    assert fm.supersedes_previous is True
    assert fm.accepted is False  # it has an error
    assert [e.kind_label for e in fm.entries] == ["Tập thể", "Tập thể", "Cá nhân"]
    assert [e.field_label for e in fm.collective] == ["Văn hóa - Xã hội", "Kinh tế"]
    assert fm.counts == {
        "Kinh tế": 1,
        "Văn hóa - Xã hội": 1,
        "An ninh - Quốc phòng": 0,
        "Xây dựng hệ thống chính trị": 1,
    }
    assert fm.total == 3
    error, warning = fm.problems
    assert (error.severity_label, error.location) == ("Lỗi", "Dòng TỔNG (ô D20)")
    assert (warning.severity_label, warning.location) == ("Lưu ý", "")


def test_file_view_unreadable_file_gets_the_reason_not_a_duplicate_problem() -> None:
    fv = file_view(_unreadable_result())
    assert fv.readable is False
    assert fv.reason == "Tệp PDF là bản in, không đọc được bảng đăng ký."
    assert fv.problems == ()
    assert fv.error_count == 1


def test_file_without_a_form_is_readable_but_says_so() -> None:
    letter = ParseResult(
        file="Công văn.docx",
        format="docx",
        problems=[Problem("error", "no-form-found", None, "Tệp không có bảng đăng ký mô hình.")],
    )
    fv = file_view(letter)
    assert fv.readable is True
    assert [p.code for p in fv.problems] == ["no-form-found"]
    text = render("receipt", _receipt(files=(fv,))).text
    assert "Không tìm thấy biểu mẫu đăng ký nào trong tệp này." in text
    assert "Tệp không có bảng đăng ký mô hình." in text


def test_form_view_accepts_a_clean_form() -> None:
    form = Form(
        form="M2",
        unit="Hội Nông dân quận",
        year=2022,
        date=None,
        location="Sheet1",
        declared_empty=True,
    )
    fv = form_view(form)
    assert fv.accepted is True and fv.total == 0 and fv.form_title == "Mẫu số 02 – cấp cơ sở"


# --------------------------------------------------------------------------- receipt


def test_receipt_text_lists_files_forms_models_problems_missing_and_deadline() -> None:
    out = render("receipt", _receipt())
    assert isinstance(out, Rendered)
    text = out.text
    # the preview line first: the outcome, in the glossary's words
    assert text.startswith(
        "Kết quả tiếp nhận: Mẫu số 01: đã nhận, có lỗi, chưa được tính; "
        "còn thiếu Mẫu số 02 (cấp cơ sở).\n\nKính gửi: Đảng ủy phường Khương Trung,"
    )
    assert (
        "Ban Dân vận Quận ủy Thanh Xuân đã nhận được thư của đơn vị lúc 09:41 ngày 14/02/2022"
    ) in text
    assert "Tệp 1: Mau 01 - Khuong Trung.xlsx\n" in text  # no "(định dạng XLSX)"
    assert "Mẫu số 01 – cấp Quận (trang tính Sheet1): ĐÃ NHẬN, CÓ LỖI, CHƯA ĐƯỢC TÍNH" in text
    assert "- Mẫu số 01 – cấp Quận: Đã nhận, có lỗi, chưa được tính (1 lỗi cần sửa)." in text
    assert "thay thế bản gửi trước" not in text  # a form with errors is not accepted
    # its models are listed, never as taken
    assert "Các mô hình ghi trong biểu (chưa được tính vì biểu còn lỗi):" in text
    assert "đã tiếp nhận:" not in text and "mô hình ghi nhận" not in text
    section_i, section_ii = text.index("Mục I. Tập thể"), text.index("Mục II. Cá nhân")
    row = "1. Chi bộ Tổ dân phố số 5 – Lĩnh vực Văn hóa - Xã hội: Tổ dân phố xanh - sạch - đẹp"
    assert section_i < text.index(row) < section_ii
    assert section_ii < text.index("Nguyễn Thị Hồng Nhung – Lĩnh vực Xây dựng hệ thống chính trị")
    assert "Tổng: 3." in text
    # every problem with its place; the message alone says how to fix it (never twice)
    assert "[Lỗi] Dòng TỔNG (ô D20): Dòng TỔNG ghi 3 mô hình" in text
    assert "Cách sửa" not in text
    assert "[Lưu ý] Toàn tệp: Tệp dùng phông chữ TCVN3" in text
    # an unreadable file is named with the reason
    assert f"Tệp 2: Ảnh chụp {HOSTILE}.pdf" in text  # plain text is not escaped
    assert "\n   [Lỗi] Tệp PDF là bản in, không đọc được bảng đăng ký.\n" in text
    # missing form (never the form sent with errors) and deadline
    assert "Còn thiếu (chưa nhận được):\n- Mẫu số 02 (cấp cơ sở)" in text
    assert "Cần sửa lỗi và gửi lại:\n- Mẫu số 01 – cấp Quận" in text
    assert f"Đề nghị đơn vị gửi trước ngày 20/02/2022, {WORDS}." in text
    assert f"Thời hạn gửi biểu mẫu: trước ngày 20/02/2022, {WORDS}." in text
    assert "ghi rõ “Không đăng ký” trong bảng (dòng TỔNG ghi 0)" in text
    assert "gửi muộn" not in text
    assert "CHỜ XÁC NHẬN" not in text
    # the contact and the letter, then the signature
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in text
    assert "liên hệ đồng chí Nguyễn Thị Hà, điện thoại 024 3858 1234" in text
    assert text.index("Căn cứ:") < text.index("Trân trọng.")
    assert "Quý đơn vị" not in text and "định dạng" not in text
    assert out.subject == (
        "[Có lỗi cần sửa] Xác nhận tiếp nhận hồ sơ đăng ký mô hình “Dân vận khéo” – "
        "Đảng ủy phường Khương Trung"
    )


def test_receipt_document_locations_in_the_units_terms() -> None:
    files = (file_view(_document_result(), form_specs=SPECS),)
    out = render("receipt", _receipt(files=files, missing_forms=("Mẫu số 01 (cấp Quận)",)))
    for body in (out.text, out.html):
        assert "bảng 1, dòng 10, cột 2" in body  # a row that holds no model: the plain place
        assert "Tổ tự quản an ninh trật tự khu dân cư" in body
        assert "Mẫu số 01 (cấp Quận)" in body
    assert "Mẫu 02 – cơ sở.docx" in out.html


def test_problem_on_a_model_row_is_placed_by_section_and_tt() -> None:
    entries = [
        Entry("collective", "2", None, "economy", "Chợ văn minh", None, "Sheet1!D12", "Sheet1!B12"),
        Entry("individual", "1", None, "economy", "Nuôi ong", None, "table 1, row 9, column 4"),
    ]
    sheet = Form(form="M2", unit="X", year=2022, date=None, location="Sheet1", entries=entries)
    rows = form_rows(sheet)
    assert problem_place("Sheet1!B12", rows) == "Mục I. Tập thể, dòng TT 2 (ô B12)"
    assert problem_place("table 1, row 9, column 2", rows) == "Mục II. Cá nhân, dòng TT 1 (bảng 1)"
    assert problem_place("Sheet1!D20", rows, "total-mismatch") == "Dòng TỔNG (ô D20)"
    assert problem_place("Sheet1!D20", rows) == "ô D20 (trang tính Sheet1)"
    assert problem_place(None, rows) == ""


def test_receipt_late_and_awaiting_confirmation() -> None:
    out = render(
        "receipt",
        _receipt(
            late=True,
            awaiting_confirmation=True,
            received_at=datetime(2022, 2, 21, 8, 5, tzinfo=TZ),
        ),
    )
    # the address is not registered: the unit named on the form is not greeted by that name
    assert "\nKính gửi: Đơn vị gửi hồ sơ,\n" in out.text
    assert f"GỬI MUỘN: Thời hạn gửi biểu mẫu là trước ngày 20/02/2022, {WORDS}." in out.text
    assert "08:05 ngày 21/02/2022, sau thời hạn, nên được ghi nhận là gửi muộn" in out.text
    assert "Đề nghị đơn vị gửi sớm nhất có thể" in out.text
    assert "chưa có trong danh sách liên hệ của Đảng ủy phường Khương Trung" in out.text
    assert "xác nhận người gửi" in out.text
    assert "Gửi muộn" in out.html and "<strong>gửi muộn</strong>" in out.html
    assert "Chờ xác nhận người gửi" in out.html


def test_receipt_complete_and_accepted() -> None:
    clean = _workbook_result()
    clean.forms[0].problems.clear()
    out = render(
        "receipt",
        _receipt(
            files=(file_view(clean, form_specs=SPECS, superseding={"M1"}),),
            missing_forms=(),
            all_complete=True,
        ),
    )
    assert out.subject.startswith("[Đã tiếp nhận đủ biểu mẫu]")
    assert out.text.startswith(
        "Kết quả tiếp nhận: Mẫu số 01: đã tiếp nhận, thay thế bản gửi trước; "
        "đơn vị đã gửi đủ biểu mẫu."
    )
    assert "ĐÃ TIẾP NHẬN, THAY THẾ BẢN GỬI TRƯỚC" in out.text
    assert "- Mẫu số 01 – cấp Quận: Đã tiếp nhận, thay thế bản gửi trước (3 mô hình)." in out.text
    assert "Các mô hình đã tiếp nhận:" in out.text
    assert "Đơn vị đã gửi đủ các biểu mẫu theo yêu cầu." in out.text
    assert "Còn thiếu" not in out.text
    assert "Đã tiếp nhận, thay thế bản gửi trước" in out.html
    assert "lỗi" not in out.text.split("TÓM TẮT")[1].split("1. CÁC TỆP")[0]


def test_receipt_awaiting_form_has_its_own_badge() -> None:
    fv = file_view(_workbook_result(), form_specs=SPECS)
    (fm,) = fv.forms
    waiting = dataclasses.replace(fm, accepted=True, awaiting=True, problems=())
    out = render("receipt", _receipt(files=(dataclasses.replace(fv, forms=(waiting,)),)))
    assert "Mẫu số 01: chờ xác nhận người gửi" in out.text.splitlines()[0]
    assert "Chờ xác nhận người gửi (đơn vị không cần gửi lại):\n- Mẫu số 01 – cấp Quận" in out.text
    assert "(được tính sau khi cán bộ xác nhận)" in out.text
    assert "#1d4ed8" in out.html and "Chờ xác nhận người gửi</span>" in out.html


def test_receipt_html_content_and_table() -> None:
    html = render("receipt", _receipt()).html
    assert html.startswith("<!DOCTYPE html>") and '<html lang="vi">' in html
    # the hidden preview line comes first in the body
    body = html.split("<body", 1)[1]
    assert body.index("Kết quả tiếp nhận: Mẫu số 01") < body.index("Kính gửi:")
    assert "Kính gửi: <strong>Đảng ủy phường Khương Trung</strong>" in html
    # models table: section rows, then rows with TT, name, field, model
    i, ii = html.index("Mục I. Tập thể"), html.index("Mục II. Cá nhân")
    assert i < html.index("Tổ dân phố xanh - sạch - đẹp") < ii < html.index("Nguyễn Thị Hồng Nhung")
    assert re.search(r">Văn hóa - Xã hội</td>\s*<td[^>]*>Tổ dân phố xanh - sạch - đẹp</td>", html)
    assert "Dòng TỔNG (ô D20)" in html
    assert "Không đọc được tệp này" in html
    assert "Mẫu số 02 (cấp cơ sở)" in html
    assert f"<strong>trước ngày 20/02/2022, {WORDS}</strong>" in html
    assert "Đã nhận, có lỗi, chưa được tính</span>" in html
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in html


def test_receipt_html_escapes_unit_text() -> None:
    out = render("receipt", _receipt(original_subject='"><img src=x onerror=alert(1)>'))
    html = out.html
    assert "<script" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # the name and the file name
    assert "Mô hình &lt;b&gt;kinh tế&lt;/b&gt; &amp; “hộ”" in html
    assert "<img" not in html
    assert "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in html
    assert HOSTILE in out.text  # text alternative keeps the unit's words as written


@pytest.mark.parametrize("event", EVENTS)
def test_html_is_mail_client_safe(event: str) -> None:
    html = render(event, _sample(event)).html
    assert "<script" not in html.lower()
    assert "class=" not in html
    assert "<style" not in html.lower()
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", html, re.IGNORECASE)
    assert "Trân trọng." in html


# --------------------------------------------------------------------------- notice


def _notice(reason: str) -> NoticeView:
    return NoticeView(
        unit_name="Đảng ủy phường Khương Trung",
        reason_code=reason,
        received_at=datetime(2022, 2, 15, 10, 0, tzinfo=TZ),
        original_subject="Gửi hồ sơ",
        max_size_mb=25,
        submission_address="bdv_quthanhxuan@hanoi.gov.vn",
        campaign_name=CAMPAIGN,
        contact=CONTACT,
    )


@pytest.mark.parametrize("reason", NOTICE_REASONS)
def test_notice_each_reason(reason: str) -> None:
    out = render("notice", _notice(reason))
    title = out.text.split("\n", 1)[0]
    assert title.endswith(".") and title[:-1] in out.subject  # the preview line is the outcome
    assert "\n\nKính gửi: Đảng ủy phường Khương Trung,\n" in out.text
    assert "Quý đơn vị" not in out.text and "Quý đơn vị" not in out.html
    assert "đã nhận được thư của đơn vị lúc 10:00 ngày 15/02/2022" in out.text
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in out.text
    assert "Căn cứ: Công văn số 719-CV/QU ngày 07/01/2022." in out.html
    assert "(tiêu đề: “Gửi hồ sơ”)" in out.text
    assert "Trân trọng." in out.text
    assert out.subject.startswith("[") and "Thông báo về thư gửi Ban Dân vận" in out.subject
    # the explanation is present, in both alternatives
    explanation = out.text.split("\n\n")[3].splitlines()[1]
    assert len(explanation) > 40 and explanation in out.html


def test_notice_subjects_differ_and_oversize_names_the_limit() -> None:
    subjects = {render("notice", _notice(r)).subject for r in NOTICE_REASONS}
    assert len(subjects) == len(NOTICE_REASONS)
    oversize = render("notice", _notice("oversize"))
    assert "vượt quá giới hạn 25 MB" in oversize.text and "mỗi thư dưới 25 MB" in oversize.text
    no_file = render("notice", _notice("no-attachment")).text
    assert ", dạng tệp Excel (.xlsx, .xls) hoặc tệp Word (.docx, .doc), đến" in no_file
    assert "DMARC" in render("notice", _notice("dmarc-fail")).html


def test_notice_to_an_unknown_sender_greets_neutrally() -> None:
    view = dataclasses.replace(_notice("quarantined-unknown-unit"), unit_name=None)
    assert "\nKính gửi: Đơn vị gửi hồ sơ,\n" in render("notice", view).text


def test_notice_rejects_unknown_reason() -> None:
    with pytest.raises(ValueError, match="unknown notice reason"):
        _notice("because")


# --------------------------------------------------------------------------- reminder


def _reminder() -> ReminderView:
    """The reminder's wording is checked case by case in test_reminder.py."""
    return reminder_view()


# --------------------------------------------------------------------------- digest


def _digest(after_deadline: bool = False) -> DigestView:
    """A digest for the tests every event shares; tests/outbox_templates/test_digest_render.py
    checks the digest's content."""
    return DigestView(
        generated_at=datetime(2022, 2, 16, 7, 30, tzinfo=TZ),
        campaign_name=CAMPAIGN,
        deadline_text=DEADLINE_TEXT,
        deadline_words=WORDS,
        counts=DigestCounts(
            complete=12, partial=5, missing=20, errors=2, awaiting_confirmation=1, total=40
        ),
        percent_complete=percent(12, 40),
        counts_by_level_and_field={"M1": {"Kinh tế": 3}},
        arrivals=(),
        needs_attention=(
            AttentionView("Thư bị giữ lại", f"Thư từ {HOSTILE} không xác định được đơn vị"),
        ),
        after_deadline=after_deadline,
        attachment_name="tong-hop-dan-van-kheo-2022.xlsx",
    )


def test_percent_rounds_down() -> None:
    assert (percent(39, 40), percent(40, 40), percent(1, 3), percent(0, 0)) == (97, 100, 33, 0)


# --------------------------------------------------------------------------- the render function


# --------------------------------------------------------------------------- alert


def _alert(event: str, **over: object) -> AlertView:
    values: dict[str, object] = {
        "event": event,
        "channel_label": "máy chủ gửi thư (SMTP)",
        "where": "smtps://mail.hanoi.gov.vn:465",
        "since": datetime(2022, 2, 15, 9, 0, tzinfo=TZ),
        "at": datetime(2022, 2, 15, 9, 45, tzinfo=TZ),
        "minutes": 45,
        "error": "ConnectionRefusedError: [Errno 111] Connection refused",
        "hint": "Đề nghị kiểm tra máy chủ gửi thư.",
        "office_name": "Ban Dân vận Quận ủy Thanh Xuân",
        "contact": CONTACT,
    }
    values.update(over)
    return AlertView(**values)  # type: ignore[arg-type]


def test_alert_down_and_up() -> None:
    down = render("alert", _alert("down"))
    assert down.subject == ("[mailbot – CẢNH BÁO] Không kết nối được máy chủ gửi thư (SMTP)")
    for needle in (
        "từ 09:00 ngày 15/02/2022, đã hơn 45 phút",
        "smtps://mail.hanoi.gov.vn:465",
        "Connection refused",
        "Đề nghị kiểm tra máy chủ gửi thư.",
        "Khi kết nối trở lại sẽ có một thư báo.",
    ):
        assert needle in down.text and needle in down.html
    up = render("alert", _alert("up", error=None))
    assert up.subject == "[mailbot – ĐÃ KHÔI PHỤC] Máy chủ gửi thư (SMTP) đã hoạt động trở lại"
    assert "lúc 09:45 ngày 15/02/2022, sau 45 phút gián đoạn" in up.text
    assert "#047857" in up.html and "#b91c1c" not in up.html
    for body in (down.text, down.html, up.text, up.html):
        assert "liên hệ đồng chí Nguyễn Thị Hà" in body


def test_alert_quarantine_lists_the_mails_escaped() -> None:
    items = ("Thư số 7 từ a@x.example – “<b>Biểu</b>”: không đọc được", "Thư số 9 từ b@x.example")
    out = render("alert", _alert("quarantine", channel_label="thư bị giữ lại", items=items))
    assert out.subject == "[mailbot – CẢNH BÁO] 2 thư mới bị giữ lại, chờ cán bộ xử lý"
    assert "- Thư số 7 từ a@x.example – “<b>Biểu</b>”" in out.text
    assert "&lt;b&gt;Biểu&lt;/b&gt;" in out.html and "mailbot review" in out.html
    clear = render("alert", _alert("quarantine-clear", channel_label="thư bị giữ lại"))
    assert clear.subject == "[mailbot – ĐÃ KHÔI PHỤC] Không còn thư nào bị giữ lại"


def _sample(event: str) -> object:
    return {
        "receipt": _receipt(),
        "notice": _notice("no-attachment"),
        "reminder": _reminder(),
        "digest": _digest(after_deadline=True),
        "alert": _alert("down"),
        "action": _action(),
    }[event]


def _action(**over: object) -> object:
    from mailbot.staff.answer import ActionView

    base: dict[str, object] = dict(
        office_name="Ban Dân vận Quận ủy Thanh Xuân",
        recipient="Nguyễn Thị Hà",
        received_at=datetime(2022, 2, 15, 10, 5, tzinfo=TZ),
        done=True,
        action_label="xác nhận người gửi",
        mail_id=12,
        changes=("Địa chỉ <a@x.example> được xác nhận là địa chỉ của Quận đoàn Thanh Xuân.",),
        refusal=None,
    )
    base.update(over)
    return ActionView(**base)  # type: ignore[arg-type]


def test_action_answer_says_what_changed_or_why_not() -> None:
    done = render("action", _action())
    assert done.subject == "[Đã thực hiện] Xác nhận người gửi – thư số 12"
    assert "Kính gửi: đồng chí Nguyễn Thị Hà," in done.text
    assert "đã thực hiện yêu cầu xác nhận người gửi trong thư đồng chí gửi lúc 10:05 ngày " in (
        done.text
    )
    assert "- Địa chỉ <a@x.example> được xác nhận" in done.text
    assert "&lt;a@x.example&gt;" in done.html
    refused = render("action", _action(done=False, changes=(), refusal="mã thao tác đã hết hạn"))
    assert refused.subject == "[Chưa thực hiện] Yêu cầu xác nhận người gửi – thư số 12"
    assert "vì mã thao tác đã hết hạn." in refused.text and "Không có gì thay đổi" in refused.text
    unknown = render("action", _action(done=False, action_label=None, mail_id=None, refusal="x"))
    assert unknown.subject == "[Chưa thực hiện] Yêu cầu thao tác"


@pytest.mark.parametrize("event", EVENTS)
def test_every_event_renders_one_line_subject_text_and_html(event: str) -> None:
    out = render(event, _sample(event))
    assert out.subject and "\n" not in out.subject and out.subject == out.subject.strip()
    assert out.text.strip() and "Trân trọng." in out.text
    assert out.html.lstrip().startswith("<!DOCTYPE html>") and out.html.rstrip().endswith("</html>")
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.subject = "x"  # type: ignore[misc]


@pytest.mark.parametrize("event", EVENTS)
def test_strict_undefined_catches_missing_names(event: str) -> None:
    partial = {
        f.name: getattr(_sample(event), f.name)
        for f in dataclasses.fields(_sample(event))  # type: ignore[arg-type]
    }
    partial.pop(next(iter(partial)))  # drop the first field the templates need
    with pytest.raises(UndefinedError):
        render(event, partial)


def test_render_rejects_unknown_event_and_bad_context() -> None:
    with pytest.raises(ValueError, match="unknown mail event"):
        render("invoice", _receipt())
    with pytest.raises(TypeError):
        render("receipt", "not a context")


def test_long_subject_is_cut_on_a_word() -> None:
    out = render("receipt", _receipt(unit_name="Đơn vị " * 80))
    assert len(out.subject) <= 200 and out.subject.endswith("…")


def test_a_file_with_only_notes_is_an_extra_document_said_once() -> None:
    note = "Tệp “Mẫu 01 (bản ký).pdf” là bản PDF hoặc bản quét, gửi kèm biểu mẫu đã đọc."
    scan = ParseResult(
        file="Mẫu 01 (bản ký).pdf",
        format="pdf",
        problems=[Problem("warning", "extra-document", None, note)],
    )
    fv = file_view(scan)
    assert fv.readable and fv.note == note and fv.problems == () and fv.error_count == 0
    clean = _workbook_result()
    clean.forms[0].problems.clear()
    out = render(
        "receipt",
        _receipt(
            files=(file_view(clean, form_specs=SPECS), fv), missing_forms=(), all_complete=True
        ),
    )
    assert out.subject.startswith("[Đã tiếp nhận đủ biểu mẫu]")
    assert f"   Lưu ý: {note}" in out.text
    assert "- Lưu ý: 1 tệp gửi kèm (bản PDF, bản quét, ảnh chụp hoặc bản sao" in out.text
    assert "Không tìm thấy biểu mẫu đăng ký nào trong tệp này." not in out.text
    assert "[Lưu ý] Toàn tệp" not in out.text  # said once, not again as a problem
    assert '<strong style="color:#92400e;">Lưu ý:</strong> Tệp “Mẫu 01 (bản ký).pdf”' in out.html
    assert "Lưu ý: 1 tệp gửi kèm" in out.html


def test_a_note_beside_a_real_problem_is_not_an_extra_document() -> None:
    mixed = ParseResult(
        file="x.pdf",
        format="pdf",
        problems=[
            Problem("warning", "duplicate-copy", None, "Bản sao."),
            Problem("error", "unsupported-format", None, "Không đọc được."),
        ],
    )
    assert file_view(mixed).note is None


def test_warm_compiles_the_answer_templates_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from outbox_templates import environment, warm

    environment.cache_clear()  # a new environment: what other tests rendered is not in it
    warm()
    env = environment()
    assert env.loader is not None

    def no_source(*args: object) -> None:
        raise AssertionError("a warmed template was loaded again")

    # Warmed: the receipt and notice templates come from the cache, never from the files,
    # and so do the layout, macros and texts they pull in when they render.
    monkeypatch.setattr(env.loader, "get_source", no_source)
    for event in ("receipt", "notice"):
        for part in ("subject", "txt", "html"):
            assert env.get_template(f"{event}.{part}.j2").name == f"{event}.{part}.j2"
    assert "Kính gửi" in render("receipt", _receipt()).text
    for reason in NOTICE_REASONS:
        assert render("notice", _notice(reason)).html
    warm()


@pytest.mark.parametrize(
    "when",
    [datetime(2022, 2, 14, 9, 5), datetime(2022, 12, 31, 23, 59), datetime(999, 1, 2, 0, 0)],
)
def test_vn_datetime_writes_what_strftime_writes(when: datetime) -> None:
    written = environment().filters["vn_datetime"](when)
    assert written == f"{when.strftime('%H:%M')} ngày {when.strftime('%d/%m/%Y')}"
