"""Extra files beside the forms are notes, photos are named, machines and strangers get no mail."""

from __future__ import annotations

import email
from datetime import date
from email import policy
from email.message import EmailMessage

from mailbot.campaign.samples import filled_form_docx, filled_form_xlsx
from mailbot.decision import Outcome
from mailbot.extras import settle_extras
from mailbot.intake import answer_address, process_mail
from mailbot.mail.walk import parse_mail
from mailbot.units import Register, Unit
from parsers import parse_file
from parsers.model import Form, ParseResult, Problem
from rules.campaign import newest_campaign
from tests.mailbot.intake_support import OUR_ADDRESS, context
from tests.mailbot.mail.pictures_support import jpeg

CAMPAIGN = newest_campaign()
WHEN = date(CAMPAIGN.year, 2, 15)
UNIT = "Đảng ủy phường Khương Trung"
SENDER = "dangbo.khuongtrung@thanhxuan.example"
ROWS = [
    ("Chi bộ Tổ dân phố số 5", "culture_society", "Tổ dân phố xanh - sạch - đẹp"),
    ("Chi hội Cựu chiến binh TDP 3", "security_defense", "Camera an ninh khu dân cư"),
]
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
PDF_BYTES = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def m1_xlsx(rows=ROWS, totals: dict[str, int] | None = None) -> bytes:
    return filled_form_xlsx("M1", CAMPAIGN, UNIT, WHEN, collectives=rows, totals=totals)


def mail(
    *files: tuple[str, bytes, tuple[str, str]],
    inline_photo: tuple[str, bytes] | None = None,
    sender: str = SENDER,
    reply_to: str | None = None,
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = sender
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = "Gửi biểu đăng ký"
    msg["Message-ID"] = "<extras@thanhxuan.example>"
    if reply_to:
        msg["Reply-To"] = reply_to
    msg.set_content("Kính gửi Ban Dân vận, đơn vị gửi biểu mẫu.")
    if inline_photo is not None:
        name, data = inline_photo
        msg.add_alternative('<p>Kính gửi Ban Dân vận</p><img src="cid:photo-1@iphone">', "html")
        html = msg.get_payload()[1]
        html.add_related(
            data, "image", "jpeg", cid="<photo-1@iphone>", filename=name, disposition="inline"
        )
    for name, data, (maintype, subtype) in files:
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return msg.as_bytes()


def receipt(outcome: Outcome) -> tuple[str, str, str]:
    assert outcome.reply is not None and outcome.reply.kind == "receipt"
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    return outcome.reply.subject, text, html


def codes(outcome: Outcome) -> dict[str, list[str]]:
    return {r.file: [p.code for p in r.all_problems()] for r in outcome.results}


# --------------------------------------------------------------------------- scans and PDFs


def test_signed_pdf_beside_a_valid_form_is_a_note_not_an_error():
    raw = mail(
        ("Mẫu 01.xlsx", m1_xlsx(), XLSX),
        ("Mẫu 01 (bản ký).pdf", PDF_BYTES, ("application", "pdf")),
    )
    outcome = process_mail(raw, context())
    assert [(s.form.form, s.valid) for s in outcome.submissions] == [("M1", True)]
    assert codes(outcome)["Mẫu 01 (bản ký).pdf"] == ["extra-document"]
    assert all(p.severity == "warning" for p in outcome.results[1].problems)
    subject, text, html = receipt(outcome)
    assert "[Có lỗi cần sửa]" not in subject and "lỗi cần sửa" not in text
    assert "không gửi bản PDF" not in text
    assert "Lưu ý: Tệp “Mẫu 01 (bản ký).pdf” là bản PDF hoặc bản quét" in text
    assert "gửi kèm biểu mẫu đã đọc từ tệp “Mẫu 01.xlsx”" in text
    assert "Kết quả tiếp nhận: Mẫu số 01: đã tiếp nhận;" in text
    assert "Lưu ý:</strong> Tệp “Mẫu 01 (bản ký).pdf”" in html


def test_a_scan_beside_a_form_with_errors_adds_no_error_of_its_own():
    bad = m1_xlsx(totals={"economy": 5})
    raw = mail(("Mẫu 01.xlsx", bad, XLSX), ("scan.pdf", PDF_BYTES, ("application", "pdf")))
    outcome = process_mail(raw, context())
    assert codes(outcome)["scan.pdf"] == ["extra-document"]
    assert [s.valid for s in outcome.submissions] == [False]
    _, text, _ = receipt(outcome)
    errors = sum(p.severity == "error" for r in outcome.results for p in r.all_problems())
    assert errors >= 1 and f"({errors} lỗi cần sửa)" in text


def test_a_pdf_alone_is_still_an_error_asking_for_the_file():
    outcome = process_mail(mail(("Mẫu 01.pdf", PDF_BYTES, ("application", "pdf"))), context())
    assert codes(outcome) == {"Mẫu 01.pdf": ["unsupported-format"]}
    subject, text, _ = receipt(outcome)
    assert "[Có lỗi cần sửa]" in subject and "Tệp “Mẫu 01.pdf”: không đọc được" in text
    assert "Đề nghị gửi tệp Word (.docx) hoặc Excel (.xlsx) đã điền" in text


# --------------------------------------------------------------------------- copies


def test_the_same_form_in_two_formats_is_counted_once_from_the_direct_format():
    docx = filled_form_docx("M1", CAMPAIGN, UNIT, WHEN, collectives=ROWS)
    raw = mail(
        ("Mẫu 01 (bản in).docx", docx, ("application", "msword")),
        ("Mẫu 01.xlsx", m1_xlsx(), XLSX),
    )
    outcome = process_mail(raw, context())
    assert [(s.file_name, s.form.form) for s in outcome.submissions] == [("Mẫu 01.xlsx", "M1")]
    assert codes(outcome)["Mẫu 01 (bản in).docx"] == ["duplicate-copy"]
    _, text, _ = receipt(outcome)
    assert "Kết quả tiếp nhận: Mẫu số 01: đã tiếp nhận;" in text
    assert (
        "Tệp “Mẫu 01 (bản in).docx” là một bản khác của Mẫu số 01 (cấp Quận) trong tệp "
        "“Mẫu 01.xlsx” (cùng các mô hình) nên chỉ được tính một lần." in text
    )


def _m1_form(valid: bool) -> Form:
    [form] = parse_file(m1_xlsx(), "m.xlsx").forms
    if not valid:
        form.problems.append(Problem("error", "total-mismatch", "Sheet1!C20", "Sai tổng"))
    return form


def test_a_valid_copy_wins_over_a_first_copy_with_errors():
    results = [
        ParseResult("a.xlsx", "xlsx", [_m1_form(valid=False)]),
        ParseResult("b.xls", "xls", [_m1_form(valid=True)]),
    ]
    settled = settle_extras(results, ())
    assert [r.file for r in settled if r.forms] == ["b.xls"]
    assert [p.code for p in settled[0].problems] == ["duplicate-copy"]


def test_forms_with_different_models_are_not_copies():
    other = m1_xlsx(rows=[("Chi bộ 9", "economy", "Mô hình khác")])
    raw = mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX), ("Mẫu 01 sửa.xlsx", other, XLSX))
    outcome = process_mail(raw, context())
    assert len(outcome.submissions) == 2
    assert not any("duplicate-copy" in c for c in codes(outcome).values())


# --------------------------------------------------------------------------- photos


def test_an_inline_photo_alone_is_named_in_the_receipt_not_called_no_file():
    raw = mail(inline_photo=("IMG_0412.jpeg", jpeg(1200, 1600)))
    assert [a.filename for a in parse_mail(raw).attachments] == ["IMG_0412.jpeg"]
    outcome = process_mail(raw, context())
    assert outcome.reason != "no-attachment"
    assert codes(outcome) == {"IMG_0412.jpeg": ["unsupported-format"]}
    _, text, _ = receipt(outcome)
    assert "Tệp 1: IMG_0412.jpeg" in text and "là ảnh chụp/scan" in text
    assert "Đề nghị gửi tệp Word (.docx) hoặc Excel (.xlsx) đã điền" in text


def test_an_inline_photo_beside_the_form_is_a_note():
    raw = mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX), inline_photo=("IMG_0413.jpeg", jpeg(1200, 1600)))
    outcome = process_mail(raw, context())
    assert codes(outcome)["IMG_0413.jpeg"] == ["extra-document"]
    subject, text, _ = receipt(outcome)
    assert "[Có lỗi cần sửa]" not in subject
    assert "Lưu ý: Ảnh “IMG_0413.jpeg” là ảnh chụp" in text


def test_a_signature_logo_stays_out_of_the_receipt():
    raw = mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX), inline_photo=("image001.jpg", jpeg(180, 60)))
    outcome = process_mail(raw, context())
    assert list(codes(outcome)) == ["Mẫu 01.xlsx"]
    assert "image001.jpg" not in receipt(outcome)[1]


# --------------------------------------------------------------------------- who gets no mail


def test_a_stranger_without_a_form_gets_no_answer_and_is_other_mail():
    raw = mail(("Bảng giá.pdf", PDF_BYTES, ("application", "pdf")), sender="sale@inan.example")
    outcome = process_mail(raw, context())
    assert outcome.action == "ignored" and outcome.reason == "other-mail"
    assert outcome.reply is None and outcome.other_mail and outcome.unit is None
    text_only = mail(sender="ai.do@gmail.example")
    outcome = process_mail(text_only, context())
    assert outcome.reply is None and outcome.other_mail


def test_a_stranger_with_a_photo_only_gets_no_answer():
    raw = mail(inline_photo=("IMG_1.jpeg", jpeg(1200, 1600)), sender="ai.do@gmail.example")
    outcome = process_mail(raw, context())
    assert outcome.reply is None and outcome.other_mail


def test_a_stranger_with_a_form_still_gets_the_short_notice():
    register = Register([Unit("x", "Hội Khác", ("other@thanhxuan.example",), ())])
    outcome = process_mail(mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX)), context(register=register))
    assert outcome.action == "quarantined" and not outcome.other_mail
    assert outcome.reply is not None and outcome.reply.kind == "notice"


def test_a_system_address_never_gets_mail_even_from_the_register():
    register = Register(
        [Unit("p-x", UNIT, ("no-reply.khuongtrung@thanhxuan.example",), ())], district="Thanh Xuân"
    )
    raw = mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX), sender="no-reply.khuongtrung@thanhxuan.example")
    outcome = process_mail(raw, context(register=register))
    assert outcome.reply is None and not outcome.other_mail
    invoice = mail(
        ("HD_0001234.pdf", PDF_BYTES, ("application", "pdf")),
        sender="no-reply-invoice@hoadon.example",
    )
    outcome = process_mail(invoice, context())
    assert outcome.action == "ignored" and outcome.reply is None and outcome.other_mail


def test_answers_skip_system_reply_to_addresses():
    for reply_to in ("notifications@portal.example", "bounce-123@x.example"):
        raw = mail(("Mẫu 01.xlsx", m1_xlsx(), XLSX), reply_to=reply_to)
        parsed = parse_mail(raw)
        assert answer_address(parsed, context()) == SENDER
        assert process_mail(raw, context()).reply.to == SENDER
