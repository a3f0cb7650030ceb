"""DMARC verdicts from our trusted server's Authentication-Results (RFC 8601)."""

from __future__ import annotations

from pathlib import Path

from mailbot.mail.auth import dmarc_failed
from mailbot.mail.walk import parse_mail

MAIL = Path(__file__).resolve().parents[2] / "fixtures" / "mail"


def load(name: str):
    return parse_mail((MAIL / name).read_bytes())


def mail_with(*headers: str, subject: str = "Đăng ký mô hình", sender: str = "a@x.example"):
    lines = [f"From: {sender}", "To: bdv_quthanhxuan@hanoi.gov.vn", f"Subject: {subject}"]
    lines += list(headers)
    raw = "\r\n".join(lines) + "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8"
    return parse_mail((raw + "\r\n\r\nNội dung\r\n").encode())


TRUSTED = "mx.hanoi.gov.vn"


def test_dmarc_pass_and_absent():
    assert dmarc_failed(load("gmail_rfc2231.eml"), TRUSTED) is False
    assert dmarc_failed(load("outlook_rfc2047.eml"), TRUSTED) is False


def test_dmarc_fail_from_trusted_server():
    mail = mail_with(
        "Authentication-Results: mx.hanoi.gov.vn (Postfix); dkim=none; spf=softfail "
        "smtp.mailfrom=x.example; dmarc=fail (p=reject dis=none) header.from=x.example"
    )
    assert dmarc_failed(mail, TRUSTED) is True
    assert dmarc_failed(mail, "MX.HANOI.GOV.VN") is True
    assert dmarc_failed(mail, None) is False  # nothing is trusted without configuration


def test_dmarc_forged_header_from_other_server_is_ignored():
    mail = mail_with(
        "Authentication-Results: evil.example; dmarc=pass header.from=x.example",
        "Authentication-Results: mx.hanoi.gov.vn 1; dmarc=none",
    )
    assert dmarc_failed(mail, TRUSTED) is False
    forged_fail = mail_with("Authentication-Results: other.example; dmarc=fail")
    assert dmarc_failed(forged_fail, TRUSTED) is False


def test_dmarc_comment_does_not_fool_the_reader():
    mail = mail_with("Authentication-Results: mx.hanoi.gov.vn; dmarc=pass (not dmarc=fail)")
    assert dmarc_failed(mail, TRUSTED) is False


# ---------------------------------------------------------------------------
# Machine-made mail versus a person's mail that must merely not be answered
