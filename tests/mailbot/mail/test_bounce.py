"""Bounce reading (RFC 3464 and the common non-standard reports)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.mail.bounce import parse_bounce
from mailbot.mail.walk import parse_mail

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


def load(name: str):
    return parse_mail((MAIL / name).read_bytes())


def mail_with(*headers: str, subject: str = "Đăng ký mô hình", sender: str = "a@x.example"):
    lines = [f"From: {sender}", "To: bdv_quthanhxuan@hanoi.gov.vn", f"Subject: {subject}"]
    lines += list(headers)
    raw = "\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
    return parse_mail((raw + "\r\n\r\nNội dung\r\n").encode())


def test_dsn_bounce_matched_to_our_receipt():
    bounce = parse_bounce((MAIL / "dsn_bounce.eml").read_bytes())
    assert bounce is not None
    assert bounce.kind == "dsn"
    assert bounce.original_message_id == "<receipt-44.1645153400@mailbot.invalid>"
    assert bounce.failed_recipients == ("nobody@thanhxuan.example",)
    rcpt = bounce.recipients[0]
    assert (rcpt.action, rcpt.status) == ("failed", "5.1.1")
    assert "User unknown" in rcpt.diagnostic
    assert bounce.reporting_mta == "mx.thanhxuan.example"
    assert bounce.permanent


def test_dsn_with_full_original_message_and_delay():
    raw = (
        "From: Mail Delivery Subsystem <mailer-daemon@googlemail.example>\r\n"
        "To: bdv_quthanhxuan@hanoi.gov.vn\r\nSubject: Delivery Status Notification (Delay)\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; boundary="r"; report-type=delivery-status\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nDelayed.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; googlemail.example\r\n\r\n"
        "Final-Recipient: rfc822; slow@x.example\r\nAction: delayed\r\nStatus: 4.4.1\r\n"
        "--r\r\nContent-Type: message/rfc822\r\n\r\n"
        "Message-ID: <receipt-9@mailbot.invalid>\r\nSubject: Biên nhận\r\n\r\nbody\r\n"
        "--r--\r\n"
    ).encode()
    bounce = parse_bounce(raw)
    assert bounce.original_message_id == "<receipt-9@mailbot.invalid>"
    assert bounce.recipients[0].action == "delayed"
    assert bounce.recipients[0].status == "4.4.1"
    assert not bounce.permanent
    assert bounce.failed_recipients == ()


def test_qmail_bounce():
    bounce = parse_bounce(load("qmail_bounce.eml"))
    assert bounce.kind == "qmail"
    assert bounce.original_message_id == "<receipt-45.1645153500@mailbot.invalid>"
    assert bounce.failed_recipients == ("old.unit@example-isp.example",)
    assert bounce.recipients[0].status == "5.1.1"


def test_exchange_ndr():
    bounce = parse_bounce(load("exchange_ndr.eml"))
    assert bounce.kind == "exchange"
    assert bounce.original_message_id == "<receipt-46.1645153600@mailbot.invalid>"
    assert bounce.failed_recipients == ("ban.a@thanhxuan.example",)
    assert bounce.recipients[0].status == "5.1.10"
    assert "RecipientNotFound" in bounce.recipients[0].diagnostic


@pytest.mark.parametrize(
    "name", ["gmail_rfc2231.eml", "outlook_auto_reply.eml", "mailing_list.eml", "malformed.eml"]
)
def test_non_bounces_are_not_bounces(name):
    assert parse_bounce(load(name)) is None
