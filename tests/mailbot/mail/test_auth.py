"""DMARC verdicts from our trusted server's Authentication-Results (RFC 8601)."""

from __future__ import annotations

from pathlib import Path

from mailbot.mail.auth import aligned, auth_results, dmarc_failed, sender_authenticated
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


# ---------------------------------------------------------------------------
# Whether the trusted server vouches for the sender (aligned pass)


def _ar(results: str, server: str = TRUSTED) -> str:
    return f"Authentication-Results: {server}; {results}"


def test_sender_authenticated_needs_an_aligned_pass_from_the_trusted_server():
    sender = "dangbo@thanhxuan.example"
    cases = [
        ((), False),  # no header at all
        ((_ar("dmarc=pass header.from=thanhxuan.example"),), True),
        ((_ar("dmarc=pass header.from=thanhxuan.example", "mx.evil.example"),), False),
        ((_ar("spf=fail smtp.mailfrom=thanhxuan.example; dmarc=none"),), False),
        ((_ar("dkim=pass header.d=thanhxuan.example; dmarc=none"),), True),
        ((_ar("dkim=pass header.d=mail.thanhxuan.example; dmarc=none"),), True),
        ((_ar("spf=pass smtp.mailfrom=bounce@thanhxuan.example"),), True),  # no DMARC result
        ((_ar("dkim=pass header.d=evil.example; spf=pass smtp.mailfrom=evil.example"),), False),
        ((_ar("dkim=pass header.d=thanhxuan.example; dmarc=fail"),), False),
        ((_ar("dkim=pass header.d=thanhxuan.example; dmarc=temperror"),), False),
        ((_ar("dkim=pass (header.d=thanhxuan.example) header.d=evil.example; dmarc=none"),), False),
        # A pass split over two headers of the trusted server (OpenDKIM, then OpenDMARC).
        ((_ar("dkim=pass header.d=thanhxuan.example"), _ar("dmarc=pass")), True),
    ]
    for headers, expected in cases:
        mail = mail_with(*headers, sender=sender)
        assert sender_authenticated(mail, TRUSTED) is expected, headers
        assert sender_authenticated(mail, None) is False


def test_resent_from_is_vouched_for_by_its_own_domain_only():
    mail = mail_with(
        "Resent-From: dangbo@thanhxuan.example",
        _ar("dkim=pass header.d=thanhxuan.example; dmarc=pass header.from=gmail.example"),
        sender="mai@gmail.example",
    )
    assert sender_authenticated(mail, TRUSTED, "dangbo@thanhxuan.example") is True
    assert sender_authenticated(mail, TRUSTED, "x@other.example") is False


def test_alignment_is_relaxed_but_not_a_suffix_match():
    assert aligned("thanhxuan.example", "mail.thanhxuan.example")
    assert aligned("THANHXUAN.example.", "thanhxuan.example")
    assert not aligned("evilthanhxuan.example", "thanhxuan.example")
    assert not aligned("", "thanhxuan.example")
    results = auth_results(mail_with(_ar("dkim=pass header.i=@thanhxuan.example")), TRUSTED)
    assert results is not None and results.dkim_pass == ("thanhxuan.example",)
