"""A staff member's mail with an action code, as the pure intake reads it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from email.message import EmailMessage

from mailbot.intake import process_mail
from mailbot.staff.access import StaffAccess
from mailbot.staff.tokens import sign
from tests.mailbot.intake_support import BEFORE_DEADLINE, OUR_ADDRESS, context

KEY = bytes(range(32))
STAFF = "lanhdao@thanhxuan.example"
ACCESS = StaffAccess(frozenset({STAFF}), KEY)
EXPIRES = BEFORE_DEADLINE + timedelta(days=14)
CODE = sign(KEY, "confirm", 42, "mttq", EXPIRES)


def _mail(sender: str, subject: str, body: str = "Gửi để thực hiện.", **headers: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = subject
    msg["Message-ID"] = "<cmd-1@thanhxuan.example>"
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg.as_bytes()


def test_a_staff_mail_with_a_valid_code_is_a_command_not_a_submission() -> None:
    outcome = process_mail(
        _mail(f"Lãnh đạo Ban <{STAFF.upper()}>", f"Xác nhận – {CODE}"), context(staff=ACCESS)
    )
    assert outcome.action == "command" and outcome.reply is None and not outcome.submissions
    command = outcome.command
    assert command is not None and command.refused is None and command.actor == STAFF
    assert command.token is not None and (command.token.kind, command.token.mail_id) == (
        "confirm",
        42,
    )
    assert CODE not in repr(outcome.command) and KEY.hex() not in repr(ACCESS)


def test_without_staff_configured_a_code_means_nothing() -> None:
    outcome = process_mail(_mail(STAFF, f"Xác nhận – {CODE}"), context())
    assert outcome.command is None and outcome.action == "ignored" and outcome.other_mail


def test_codes_that_do_not_hold_are_refused() -> None:
    cases = {
        "forged": (STAFF, sign(b"x" * 32, "confirm", 42, "mttq", EXPIRES), ACCESS),
        "expired": (STAFF, sign(KEY, "confirm", 42, "mttq", BEFORE_DEADLINE), ACCESS),
        "malformed": (STAFF, "MBT-" + "A" * 30, ACCESS),
        "no-key": (STAFF, CODE, replace(ACCESS, key=None)),
    }
    for reason, (sender, code, access) in cases.items():
        outcome = process_mail(_mail(sender, f"Xác nhận – {code}"), context(staff=access))
        assert outcome.action == "command" and outcome.reason == reason
        assert outcome.command is not None and outcome.command.token is None
        assert outcome.command.answerable


def test_a_code_from_a_non_staff_address_is_listed_for_staff_and_not_answered() -> None:
    outcome = process_mail(
        _mail("mttq@thanhxuan.example", f"Xác nhận – {CODE}"), context(staff=ACCESS)
    )
    assert outcome.action == "ignored" and outcome.other_mail and outcome.reply is None
    assert outcome.command is not None and outcome.command.refused == "not-staff"
    assert not outcome.command.answerable


def test_with_a_trusted_server_the_staff_address_must_pass() -> None:
    ctx = context(staff=ACCESS, trusted_authserv_id="mx.hanoi.gov.vn")
    forged = process_mail(_mail(STAFF, f"Xác nhận – {CODE}"), ctx)
    assert forged.command is not None and forged.command.refused == "unauthenticated"
    passed = process_mail(
        _mail(
            STAFF,
            f"Xác nhận – {CODE}",
            Authentication_Results="mx.hanoi.gov.vn; dmarc=pass header.from=thanhxuan.example",
        ),
        ctx,
    )
    assert passed.action == "command" and passed.command is not None
    assert passed.command.refused is None


def test_assign_without_unit_reads_the_first_line() -> None:
    code = sign(KEY, "assign", 42, None, EXPIRES)
    body = "Đơn vị:   Quận đoàn   Thanh Xuân\n\nGhi tên (hoặc mã) đơn vị sau chữ …\n"
    outcome = process_mail(_mail(STAFF, f"Giao thư – {code}", body), context(staff=ACCESS))
    assert outcome.command is not None and outcome.command.unit_text == "Quận đoàn Thanh Xuân"
    empty = process_mail(
        _mail(STAFF, f"Giao thư – {code}", "Đơn vị:\n\nGhi tên …\n"), context(staff=ACCESS)
    )
    assert empty.command is not None and empty.command.unit_text is None


def test_an_auto_reply_quoting_a_code_is_no_command() -> None:
    outcome = process_mail(
        _mail(STAFF, f"Tự động trả lời: {CODE}", Auto_Submitted="auto-replied"),
        context(staff=ACCESS),
    )
    assert outcome.command is None and outcome.action == "ignored"
