"""The pure intake entry point, driven directly with client-shaped mails carrying real forms."""

from __future__ import annotations

import email
import re
import shutil
from dataclasses import replace
from datetime import datetime
from email import policy
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import pytest

from mailbot.decision import Outcome, Tools
from mailbot.intake import oversize_reply, process_mail
from mailbot.units import Register, Unit
from parsers.convert import convert_with_soffice
from tests.mailbot.intake_support import (
    INTAKE,
    OUR_ADDRESS,
    context,
    expected_for,
    intake_fixtures,
    sample_register,
)


def _receipt_text(outcome: Outcome) -> str:
    assert outcome.reply is not None
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    return msg.get_body(("plain",)).get_content()


@pytest.mark.parametrize("path", intake_fixtures(), ids=lambda p: p.name)
def test_intake_corpus(path):
    expected = expected_for(path)
    # "context": fields a case needs (a trusted authserv-id); the e2e corpus walk skips those.
    outcome = process_mail(path.read_bytes(), context(**expected.get("context", {})))
    assert outcome.action == expected["action"], outcome.reason
    assert (outcome.unit.code if outcome.unit else None) == expected["unit"]
    assert outcome.needs_confirmation == expected["awaiting_confirmation"]
    assert [[s.form.form, s.valid, len(s.form.entries)] for s in outcome.submissions] == expected[
        "submissions"
    ]
    if "recorded_for" in expected:
        assert [[s.unit_code, s.attribution, s.awaiting] for s in outcome.submissions] == expected[
            "recorded_for"
        ]
    problems = {
        r.file: sorted(p.code for p in r.all_problems())
        for r in outcome.results
        if r.all_problems()
    }
    for name, codes in expected["file_problems"].items():
        assert problems.get(name) == codes
    assert (outcome.reply.kind if outcome.reply else None) == expected["reply"]
    if "other_mail" in expected:
        assert outcome.other_mail == expected["other_mail"]
    if "reply_to" in expected:
        assert outcome.reply is not None and outcome.reply.to == expected["reply_to"]
    if "for_staff" in expected:
        assert outcome.for_staff == expected["for_staff"]
    for needle in expected.get("excerpt_contains", ()):
        assert needle in (outcome.excerpt or "")
    for needle in expected.get("excerpt_lacks", ()):
        assert needle not in (outcome.excerpt or "")
    if expected["mentions"]:
        text = _receipt_text(outcome)
        for needle in expected["mentions"]:
            assert needle in text


def test_every_intake_fixture_has_an_expectation():
    emls = {p.name for p in intake_fixtures()}
    expectations = {p.name.removesuffix(".expected.json") for p in INTAKE.glob("*.expected.json")}
    assert emls == expectations


def test_receipt_threads_and_is_marked_automatic():
    path = INTAKE / "gmail_khuong_trung.eml"
    outcome = process_mail(path.read_bytes(), context())
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    assert msg["In-Reply-To"] == "<CAJx8Yk1=abc123+XYZ@mail.gmail.com>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["Subject"].startswith("Re: ")
    assert msg["Message-ID"].endswith("@mailbot.invalid>")
    assert outcome.reply.to == "dangbo.khuongtrung@thanhxuan.example"


def test_late_mail_is_marked_late_in_record_and_receipt():
    late = datetime(2022, 2, 21, 9, 0, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
    outcome = process_mail((INTAKE / "gmail_khuong_trung.eml").read_bytes(), context(late))
    assert outcome.late and all(s.late for s in outcome.submissions)
    assert "muộn" in _receipt_text(outcome)


def test_forms_already_on_file_are_not_reported_missing():
    ctx = context(forms_on_file={"p-khuong-trung": frozenset({"M2"})})
    outcome = process_mail((INTAKE / "gmail_khuong_trung.eml").read_bytes(), ctx)
    text = _receipt_text(outcome)
    assert "Còn thiếu" not in text and "Mẫu số 02 (cấp cơ sở)" not in text


def test_a_form_received_earlier_with_errors_is_not_called_missing():
    ctx = context(forms_not_counted={"p-khuong-trung": {"M2": "errors"}})
    text = _receipt_text(process_mail((INTAKE / "gmail_khuong_trung.eml").read_bytes(), ctx))
    assert "Còn thiếu" not in text
    assert (
        "- Bản gửi trước của Mẫu số 02 (cấp cơ sở): đã nhận, có lỗi, chưa được tính; "
        "đề nghị sửa và gửi lại."
    ) in text
    assert "Cần sửa lỗi và gửi lại:\r\n- Mẫu số 02 (cấp cơ sở), bản gửi trước" in text
    waiting = context(forms_not_counted={"p-khuong-trung": {"M2": "awaiting"}})
    text = _receipt_text(process_mail((INTAKE / "gmail_khuong_trung.eml").read_bytes(), waiting))
    assert "Còn thiếu" not in text and "Cần sửa lỗi" not in text
    assert "- Bản gửi trước của Mẫu số 02 (cấp cơ sở): chờ xác nhận người gửi." in text


def test_sender_address_wins_over_the_name_on_the_form():
    # The Kim Giang office forwards for itself: the address decides, so no confirmation.
    outcome = process_mail((INTAKE / "forwarded_kim_giang.eml").read_bytes(), context())
    assert outcome.unit.code == "p-kim-giang" and not outcome.awaiting_confirmation


def test_unknown_unit_is_quarantined_with_a_short_notice():
    register = Register([Unit("x", "Hội Khác", ("other@thanhxuan.example",), ())])
    outcome = process_mail(
        (INTAKE / "gmail_khuong_trung.eml").read_bytes(), context(register=register)
    )
    assert outcome.action == "quarantined" and outcome.reason == "unknown-unit"
    assert outcome.reply is not None and outcome.reply.kind == "notice"
    assert outcome.submissions == ()


def test_dmarc_failure_from_trusted_server_is_quarantined_without_reply():
    raw = (
        (INTAKE / "gmail_khuong_trung.eml")
        .read_bytes()
        .replace(b"dmarc=pass (p=NONE)", b"dmarc=fail (p=REJECT)")
    )
    outcome = process_mail(raw, context(trusted_authserv_id="mx.hanoi.gov.vn"))
    assert outcome.action == "quarantined" and outcome.reason == "dmarc-fail"
    assert outcome.reply is None
    # The same header from a server we don't trust proves nothing.
    outcome = process_mail(raw, context(trusted_authserv_id="mx.other.example"))
    assert outcome.action == "accepted"


def test_our_own_address_never_gets_an_answer():
    raw = (
        (INTAKE / "gmail_khuong_trung.eml")
        .read_bytes()
        .replace(
            b"<DangBo.KhuongTrung@thanhxuan.example>", b"<" + OUR_ADDRESS.upper().encode() + b">"
        )
    )
    assert process_mail(raw, context()).reply is None


def test_mail_without_attachment_gets_a_notice():
    raw = (
        b"From: dangbo.khuongtrung@thanhxuan.example\r\nTo: "
        + OUR_ADDRESS.encode()
        + b"\r\nSubject: Hoi\r\nMessage-ID: <q1@thanhxuan.example>\r\n\r\nXin hoi bieu mau?\r\n"
    )
    outcome = process_mail(raw, context())
    assert outcome.reason == "no-attachment" and outcome.reply.kind == "notice"


def test_oversize_notice_from_headers_only():
    headers = (INTAKE / "gmail_khuong_trung.eml").read_bytes().split(b"\r\n\r\n", 1)[0]
    reply = oversize_reply(headers + b"\r\n\r\n", context())
    assert reply is not None and reply.kind == "notice"
    auto = headers + b"\r\nAuto-Submitted: auto-replied\r\n\r\n"
    assert oversize_reply(auto, context()) is None


def test_process_mail_never_raises_on_garbage():
    garbage = (
        b"",
        b"\x00\xff" * 100,
        b"From: \r\n\r\n",
        b"Content-Type: multipart/mixed\r\n\r\n--",
    )
    for raw in garbage:
        outcome = process_mail(raw, context())
        assert outcome.action in ("accepted", "quarantined", "ignored", "bounce")


def test_register_is_only_data():
    # The pure core must not need a database: the register is passed in.
    ctx = context()
    assert replace(ctx, register=sample_register()).register.by_code("mttq") is not None


def test_staff_assignment_overrides_sender_checks():
    raw = (
        (INTAKE / "gmail_khuong_trung.eml")
        .read_bytes()
        .replace(b"dmarc=pass (p=NONE)", b"dmarc=fail (p=REJECT)")
    )
    ctx = context(trusted_authserv_id="mx.hanoi.gov.vn", assigned_unit="p-khuong-trung")
    outcome = process_mail(raw, ctx)
    assert outcome.action == "accepted" and outcome.unit.code == "p-khuong-trung"
    assert not outcome.awaiting_confirmation and outcome.reply.kind == "receipt"


def test_answer_goes_to_reply_to_unless_it_is_ours_or_a_system_address():
    base = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    for reply_to, expected in (
        (b"Mai <mai.lt@gmail.example>", "mai.lt@gmail.example"),
        (OUR_ADDRESS.encode(), "dangbo.khuongtrung@thanhxuan.example"),
        (b"noreply@thanhxuan.example", "dangbo.khuongtrung@thanhxuan.example"),
    ):
        raw = base.replace(
            b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nReply-To: " + reply_to + b"\r\n", 1
        )
        outcome = process_mail(raw, context())
        assert outcome.reply.to == expected
        # The unit is still known by its From address.
        assert outcome.unit.code == "p-khuong-trung"


def test_list_relay_counts_the_forms_but_answers_nobody():
    raw = (
        (INTAKE / "gmail_khuong_trung.eml")
        .read_bytes()
        .replace(
            b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nList-Id: <can-bo.lists.example>\r\n", 1
        )
    )
    outcome = process_mail(raw, context())
    assert outcome.action == "accepted" and outcome.reply is None
    assert [s.form.form for s in outcome.submissions] == ["M1"]


FORMS = INTAKE.parent / "forms"


def _mail_with_files(*files: tuple[str, bytes]) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = "dangbo.khuongtrung@thanhxuan.example"
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = "Gửi biểu đăng ký"
    msg["Message-ID"] = "<files@thanhxuan.example>"
    msg.set_content("Kính gửi Ban Dân vận, đơn vị gửi biểu mẫu.")
    for name, data in files:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_bytes()


def test_without_tools_doc_and_rar_are_answered_cannot_read_here():
    doc = (FORMS / "Mau 01 - Quan doan.doc").read_bytes()
    raw = _mail_with_files(("Mau 01.doc", doc), ("Ho so.rar", b"Rar!\x1a\x07\x01\x00filler"))
    outcome = process_mail(raw, context())  # the default context: no converter, no RAR tool
    assert outcome.action == "accepted" and outcome.submissions == ()
    by_file = {r.file: [p.code for p in r.problems] for r in outcome.results}
    assert by_file["Mau 01.doc"] == ["unsupported-format"]
    assert "định dạng .doc" in outcome.results[0].problems[0].message
    assert [(p.code, p.filename) for p in outcome.mail.problems] == [
        ("archive-unsupported", "Ho so.rar")
    ]
    text = _receipt_text(outcome)
    assert "Mau 01.doc" in text and "Ho so.rar" in text


@pytest.mark.soffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_with_the_real_office_converter_a_doc_form_is_read():
    doc = (FORMS / "Mau 01 - Quan doan.doc").read_bytes()
    tools = Tools(office=convert_with_soffice)
    outcome = process_mail(_mail_with_files(("Mau 01.doc", doc)), context(tools=tools))
    assert [s.form.form for s in outcome.submissions] == ["M1"]


def test_reply_to_another_domain_is_followed_only_on_authenticated_mail():
    base = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    unit_addr = "dangbo.khuongtrung@thanhxuan.example"
    trusted = context(trusted_authserv_id="mx.hanoi.gov.vn")
    forged = (
        base.replace(b"dmarc=pass (p=NONE)", b"dmarc=none")
        .replace(b"dkim=pass", b"dkim=none")
        .replace(b"spf=pass", b"spf=fail")
    )
    for raw, ctx, reply_to, expected in (
        # Authenticated: the person named in Reply-To gets the receipt.
        (base, trusted, b"mai.lt@gmail.example", "mai.lt@gmail.example"),
        # Not authenticated: never another domain; the same domain is still fine.
        (forged, trusted, b"nhanbieu@evil.example", unit_addr),
        (forged, trusted, b"vanthu@thanhxuan.example", "vanthu@thanhxuan.example"),
        # No trusted server configured: today's behaviour (mailbot check warns).
        (forged, context(), b"mai.lt@gmail.example", "mai.lt@gmail.example"),
    ):
        raw = raw.replace(
            b"MIME-Version: 1.0\r\n", b"MIME-Version: 1.0\r\nReply-To: " + reply_to + b"\r\n", 1
        )
        outcome = process_mail(raw, ctx)
        assert outcome.reply is not None and outcome.reply.to == expected, reply_to
    unverified = process_mail(forged, trusted)
    assert unverified.awaiting_confirmation and unverified.reason == "unverified-sender"
    assert all(s.unit_code == "p-khuong-trung" for s in unverified.submissions)


def test_a_reply_to_our_mail_without_a_form_is_left_to_staff():
    raw = (INTAKE / "hostile_naive_autoresponder.eml").read_bytes()
    outcome = process_mail(raw, context())
    assert outcome.action == "accepted" and outcome.reply is None
    assert outcome.reason == "reply-to-our-mail" and outcome.unit.code == "p-khuong-trung"
    # An unknown sender doing the same is "other mail" for staff, unanswered.
    stranger = raw.replace(b"dangbo.khuongtrung@thanhxuan.example", b"ai.do@evil.example")
    outcome = process_mail(stranger, context())
    assert outcome.action == "ignored" and outcome.other_mail
    assert outcome.reply is None
    # The same words in reply to someone else's mail are answered as usual.
    other = raw.replace(b"@mailbot.invalid>", b"@thanhxuan.example>")
    assert process_mail(other, context()).reply is not None


def test_a_mail_out_of_time_is_answered_too_complex_from_its_headers():
    from mailbot.intake import too_complex_outcome

    raw = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    outcome = too_complex_outcome(raw, context())
    assert outcome.action == "accepted" and outcome.reason == "too-complex"
    assert outcome.unit.code == "p-khuong-trung" and outcome.submissions == ()
    assert [(r.file, [p.code for p in r.problems]) for r in outcome.results] == [
        ("Mẫu 01 - Đảng ủy phường Khương Trung.xlsx", ["file-too-large"])
    ]
    assert "quá lớn hoặc quá phức tạp" in _receipt_text(outcome)
    # Machines and lists still get nothing; garbage never raises.
    auto = (INTAKE / "outlook_auto_reply.eml").read_bytes()
    assert too_complex_outcome(auto, context()).reply is None
    assert too_complex_outcome(b"\x00garbage", context()).reply is None


def _owing(code: str, forms: tuple[str, ...]) -> Register:
    units = [replace(u, forms=forms) if u.code == code else u for u in sample_register()]
    return Register(units, district="Thanh Xuân")


def test_receipt_counts_only_the_forms_the_unit_owes():
    raw = (INTAKE / "gmail_khuong_trung.eml").read_bytes()
    everything = process_mail(raw, context())
    sent = {s.form.form for s in everything.submissions if s.valid}
    assert sent and sent != {"M1", "M2"}  # this mail carries one form of the two
    owes_sent = process_mail(raw, context(register=_owing("p-khuong-trung", tuple(sent))))
    text = _receipt_text(owes_sent)
    assert "Đơn vị đã gửi đủ các biểu mẫu theo yêu cầu." in text
    assert "Còn thiếu" not in text
    assert "Còn thiếu" in _receipt_text(everything)


def test_question_mail_notice_names_the_forms_the_unit_owes():
    # A fresh question (as a reply to one of our mails it gets no automatic answer at all).
    raw = (INTAKE / "unseen_reply_question_no_attachment.eml").read_bytes()
    raw = re.sub(rb"(In-Reply-To|References): [^\r\n]*\r\n", b"", raw)
    outcome = process_mail(raw, context(register=_owing("cb-thue", ("M2",))))
    assert outcome.for_staff and outcome.excerpt == "Cho hỏi chi bộ có phải nộp mẫu 02 không ạ?"
    text = _receipt_text(outcome)
    assert "đơn vị cần gửi: Mẫu số 02 (cấp cơ sở)." in text
    assert "Mẫu số 01" not in text


def test_mail_with_forms_is_not_listed_for_staff():
    outcome = process_mail((INTAKE / "gmail_khuong_trung.eml").read_bytes(), context())
    assert outcome.submissions and not outcome.for_staff and outcome.excerpt is None
    assert "chuyển cán bộ" not in _receipt_text(outcome)


def test_mail_from_a_stranger_is_not_listed_as_a_units_mail():
    raw = (INTAKE / "unseen_reply_question_no_attachment.eml").read_bytes()
    empty = Register([], district="Thanh Xuân")
    outcome = process_mail(raw, context(register=empty))
    # A stranger's mail without a form is "Thư khác" in the digest, answered by nobody.
    assert outcome.action == "ignored" and outcome.other_mail and not outcome.for_staff
    assert outcome.reply is None
