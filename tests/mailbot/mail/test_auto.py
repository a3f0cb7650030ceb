"""Loop safety (RFC 3834): automatic, relayed and answerable mail told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.mail.auto import (
    auto_reply_reason,
    automatic_reason,
    is_system_address,
    relay_reason,
)
from mailbot.mail.bounce import parse_bounce
from mailbot.mail.walk import parse_mail

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"
OWN = ("bdv_quthanhxuan@hanoi.gov.vn",)
DOMAIN = "mailbot.invalid"


def load(name: str):
    return parse_mail((MAIL / name).read_bytes())


def mail_with(*headers: str, subject: str = "Đăng ký mô hình", sender: str = "a@x.example"):
    lines = [f"From: {sender}", "To: bdv_quthanhxuan@hanoi.gov.vn", f"Subject: {subject}"]
    lines += list(headers)
    raw = "\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
    return parse_mail((raw + "\r\n\r\nNội dung\r\n").encode())


def reason(mail):
    return auto_reply_reason(mail, OWN, DOMAIN)


@pytest.mark.parametrize(
    "name",
    [
        "gmail_rfc2231.eml",
        "outlook_rfc2047.eml",
        "outlook_winmail.eml",
        "thunderbird_continuations.eml",
        "forwarded.eml",
        "forward_of_forward.eml",
        "windows1258_body.eml",
        "zip_cp437.eml",
        "inline_images.eml",
        "raw_utf8_headers.eml",
    ],
)
def test_normal_submissions_get_a_reply(name):
    assert reason(load(name)) is None


@pytest.mark.parametrize(
    "name",
    [
        "outlook_auto_reply.eml",
        "auto_reply_subject_only.eml",
        "dsn_bounce.eml",
        "qmail_bounce.eml",
        "exchange_ndr.eml",
        "mailing_list.eml",
    ],
)
def test_automatic_mail_gets_no_reply(name):
    assert reason(load(name))


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "expect"),
    [
        (["Auto-Submitted: auto-replied"], "a@x.example", "Re: x", "Auto-Submitted"),
        (["Auto-Submitted: auto-generated; owner-email=x@y"], "a@x.example", "x", "Auto-Submitted"),
        (["Return-Path: <>"], "a@x.example", "x", "Return-Path"),
        (["Precedence: bulk"], "a@x.example", "x", "Precedence"),
        (["Precedence: junk"], "a@x.example", "x", "Precedence"),
        (["List-Unsubscribe: <mailto:u@x.example>"], "a@x.example", "x", "List-Unsubscribe"),
        (["X-Loop: helpdesk@x.example"], "a@x.example", "x", "X-Loop"),
        (["X-Auto-Response-Suppress: OOF, AutoReply"], "a@x.example", "x", "Suppress"),
        (["X-Autoreply: yes"], "a@x.example", "x", "x-autoreply"),
        (["X-Autorespond: yes"], "a@x.example", "x", "x-autorespond"),
        ([], "MAILER-DAEMON@mx.example", "x", "system address"),
        ([], "postmaster@x.example", "x", "system address"),
        ([], "no-reply@x.example", "x", "system address"),
        ([], "noreply+abc@x.example", "x", "system address"),
        ([], "donotreply@x.example", "x", "system address"),
        ([], "bounces+123@x.example", "x", "system address"),
        ([], "BDV_QuThanhXuan@hanoi.gov.vn", "x", "own address"),
        (["Message-ID: <receipt-1@mailbot.invalid>"], "a@x.example", "x", "own mailer"),
        ([], "a@x.example", "Automatic reply: Biên nhận", "subject"),
        ([], "a@x.example", "Out of Office: Biên nhận", "subject"),
        ([], "a@x.example", "Trả lời tự động: Biên nhận", "subject"),
        ([], "a@x.example", "Tra loi tu dong: Bien nhan", "subject"),
        ([], "a@x.example", "RE: Vắng mặt", "subject"),
        ([], "a@x.example", "Undeliverable: Biên nhận", "subject"),
        (
            ["Content-Type: multipart/report; report-type=disposition-notification"],
            "a@x.example",
            "Đã đọc: Biên nhận",
            "report",
        ),
    ],
)
def test_each_loop_signal(headers, sender, subject, expect):
    mail = mail_with(*headers, subject=subject, sender=sender)
    got = reason(mail)
    assert got is not None
    assert expect.lower() in got.lower()


@pytest.mark.parametrize(
    "headers",
    [
        ["Auto-Submitted: no"],
        ["Return-Path: <unit@x.example>"],
        ["Precedence: normal"],
        ["X-Auto-Response-Suppress: DR, RN"],  # suppresses receipts, not replies
        ["In-Reply-To: <receipt-1@mailbot.invalid>"],  # a human answering our receipt
        ["References: <receipt-1@mailbot.invalid>", "Disposition-Notification-To: a@x.example"],
    ],
)
def test_ordinary_headers_do_not_block(headers):
    assert reason(mail_with(*headers, subject="Re: Biên nhận - gửi lại biểu đã sửa")) is None


def test_weak_subject_blocks_only_in_reply_to_our_mail():
    assert reason(mail_with(subject="Tự động: đang đi công tác")) is None
    replying = mail_with("In-Reply-To: <receipt-1@mailbot.invalid>", subject="Tự động: đi công tác")
    assert "our mail" in reason(replying)


def test_no_sender_means_no_reply():
    raw = b"Subject: x\r\n\r\nbody\r\n"
    assert reason(parse_mail(raw)) == "no sender address"


def mail_with_form(*headers: str, subject: str, sender: str = "a@x.example"):
    lines = [
        f"From: {sender}",
        "To: bdv_quthanhxuan@hanoi.gov.vn",
        f"Subject: {subject}",
        *headers,
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b"',
    ]
    body = (
        "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nGửi biểu.\r\n"
        '--b\r\nContent-Type: application/octet-stream; name="Mau 01.xlsx"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\nUEsDBA==\r\n--b--\r\n"
    )
    return parse_mail(("\r\n".join(lines) + "\r\n\r\n" + body).encode())


@pytest.mark.parametrize(
    "subject",
    [
        "Không gửi được qua Zalo nên gửi qua thư",
        "Vắng mặt hôm họp nên gửi biểu qua thư",
        "Undeliverable qua cổng thông tin, gửi lại",
    ],
)
def test_a_bounce_like_subject_does_not_drop_a_form(subject):
    mail = mail_with_form(subject=subject)
    assert reason(mail) is None
    assert automatic_reason(mail, OWN, DOMAIN) is None
    assert parse_bounce(mail) is None
    # Without a form the same subject is still read as an automatic mail.
    assert reason(mail_with(subject=subject)) is not None


def test_headers_still_win_over_a_form_attachment():
    mail = mail_with_form("Auto-Submitted: auto-replied", subject="Không gửi được")
    assert automatic_reason(mail, OWN, DOMAIN) == "Auto-Submitted: auto-replied"
    mail = mail_with_form(subject="Undelivered Mail", sender="MAILER-DAEMON@x.example")
    assert automatic_reason(mail, OWN, DOMAIN) is not None


@pytest.mark.parametrize(
    "header",
    [
        "List-Id: <dvk.lists.thanhxuan.example>",
        "Precedence: list",
        "Precedence: bulk",
        "X-Loop: procmail",
        "X-Auto-Response-Suppress: All",
        "X-MS-Exchange-Inbox-Rules-Loop: unit@thanhxuan.example",
        "X-MS-Exchange-Organization-AutoForwarded: true",
    ],
)
def test_relayed_person_mail_is_not_automatic_but_gets_no_answer(header):
    mail = mail_with_form(header, subject="Biểu mẫu 01")
    assert automatic_reason(mail, OWN, DOMAIN) is None
    assert relay_reason(mail) is not None
    assert reason(mail) == relay_reason(mail)


@pytest.mark.parametrize(
    "headers,subject",
    [
        (("Auto-Submitted: auto-replied",), "Trả lời tự động: Biên nhận"),
        (("Precedence: junk",), "x"),
        (("X-Autoreply: yes",), "x"),
        ((f"Message-ID: <1.2@{DOMAIN}>",), "x"),
        ((), "Thư trả lời tự động: Biên nhận"),
        ((f"In-Reply-To: <r1@{DOMAIN}>",), "Đã đọc: Biên nhận"),
    ],
)
def test_machine_made_mail_is_automatic(headers, subject):
    mail = mail_with(*headers, subject=subject)
    assert automatic_reason(mail, OWN, DOMAIN) is not None
    assert reason(mail) == automatic_reason(mail, OWN, DOMAIN)


def test_a_reply_to_our_receipt_with_the_corrected_form_is_answered():
    mail = mail_with_form(
        f"In-Reply-To: <170.42@{DOMAIN}>",
        f"References: <a@gmail.example> <170.42@{DOMAIN}>",
        subject="Re: Re: Biên nhận: Đăng ký mô hình Dân vận khéo",
    )
    assert reason(mail) is None
    question = mail_with(
        f"In-Reply-To: <170.43@{DOMAIN}>", subject="TL: Biên nhận: Đăng ký mô hình"
    )
    assert reason(question) is None  # a person's question: the no-attachment notice answers


def test_read_receipt_for_our_receipt_is_automatic():
    raw = (
        "From: unit@x.example\r\nTo: bdv_quthanhxuan@hanoi.gov.vn\r\n"
        "Subject: =?utf-8?B?WMOhYyBuaOG6rW4gxJHDoyDEkeG7jWM=?=\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=disposition-notification; boundary="m"\r\n'
        "\r\n--m\r\nContent-Type: text/plain\r\n\r\nread\r\n--m\r\n"
        "Content-Type: message/disposition-notification\r\n\r\n"
        "Disposition: manual-action/MDN-sent-manually; displayed\r\n--m--\r\n"
    )
    mail = parse_mail(raw.encode())
    assert "disposition-notification" in automatic_reason(mail, OWN, DOMAIN)


@pytest.mark.parametrize(
    "address",
    [
        "no-reply-invoice@hoadon.example",
        "hoadon.noreply@vnpt.example",
        "NoReply@x.example",
        "no_reply@x.example",
        "do-not-reply@x.example",
        "do_not_reply@x.example",
        "DoNotReply@x.example",
        "dont-reply@x.example",
        "mailer-daemon@x.example",
        "postmaster@x.example",
        "bounce@x.example",
        "bounces-123-abc=thanhxuan.example@lists.example",
        "msprvs1=19443=bounces-123@x.example",
        "notifications@github.example",
        "notification@facebookmail.example",
        "account-notify@x.example",
        "noreply+tag@x.example",
    ],
)
def test_system_addresses_are_recognised(address):
    assert is_system_address(address)
    assert "system address" in reason(mail_with(sender=address))


@pytest.mark.parametrize(
    "address",
    [
        "dangbo.khuongtrung@thanhxuan.example",
        "nguyen.van.an@gmail.example",
        "vanphong.mttq@thanhxuan.example",
        "thongbao@thanhxuan.example",
        "hoiphunu@thanhxuan.example",
        "replyall.nguyen@x.example",
    ],
)
def test_people_and_units_are_not_system_addresses(address):
    assert not is_system_address(address)
