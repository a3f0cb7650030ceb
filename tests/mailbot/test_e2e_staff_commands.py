"""Staff act by mail, end to end: real Dovecot and aiosmtpd, SQLite on disk, real codes.

A code from the digest's link confirms a sender and the answer says what changed; a forged
code, an expired one, a replayed one and one sent from a non-staff address change nothing.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import pytest

from mailbot.cli import main
from mailbot.config import load_config
from mailbot.staff.links import link_factory
from mailbot.staff.tokens import sign
from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    body_text,
    fixture_bytes,
    replies,
    write_config,
)

pytestmark = pytest.mark.dovecot

STAFF = "lanhdao@thanhxuan.example"
KEY = bytes(range(32))


def _poll(cfg, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--config", str(cfg), "poll", "--once"])
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err


def _mailto_parts(link: str) -> tuple[str, str, str]:
    """(to, subject, body) of a mailto: link, as a mail client fills the new mail."""
    parts = urlsplit(link)
    query = parse_qs(parts.query)
    return parts.path, query["subject"][0], query["body"][0]


def _command(sender: str, message_id: str, subject: str, body: str) -> bytes:
    """The mail a staff member's client sends from the link (or a forger writes)."""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "bdv_quthanhxuan@hanoi.gov.vn"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content(body)
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def test_signed_commands_by_mail(tmp_path, dovecot, smtp_server, monkeypatch, capsys) -> None:
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    key_file = tmp_path / "staff-token-key"
    key_file.write_bytes(KEY)
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'\n[digest]\nrecipients = ["{STAFF}"]\n')
        f.write(f'\n[staff]\ntoken_key_file = "{key_file}"\n')
    db = Db(tmp_path / "data")

    # A unit's form from a personal address the register does not know: it awaits staff.
    append_all(dovecot, account, [fixture_bytes("unseen_yahoo_personal_awaiting.eml")])
    _poll(cfg, capsys)
    [waiting] = db.rows("SELECT * FROM mails WHERE awaiting_confirmation = 1")
    assert waiting["unit_code"] == "hoi-ctd"
    sent_before = len(smtp_server.messages)

    now = datetime.now(UTC)
    link_for = link_factory(load_config(cfg), KEY, now)
    assert link_for is not None
    to, subject, body = _mailto_parts(link_for("confirm", waiting["id"], "hoi-ctd"))
    assert to == "bdv_quthanhxuan@hanoi.gov.vn" and subject.startswith("Xác nhận người gửi")

    forged_link = link_factory(load_config(cfg), bytes(32), now)
    assert forged_link is not None
    _, forged_subject, _ = _mailto_parts(forged_link("confirm", waiting["id"], "hoi-ctd"))
    expired = sign(KEY, "confirm", waiting["id"], "hoi-ctd", now - timedelta(minutes=1))
    append_all(
        dovecot,
        account,
        [
            _command(STAFF, "<forged@e2e.example>", forged_subject, body),
            _command(STAFF, "<expired@e2e.example>", f"Xác nhận – {expired}", body),
            _command("ai.do@thanhxuan.example", "<stranger@e2e.example>", subject, body),
        ],
    )
    _poll(cfg, capsys)
    [still] = db.rows("SELECT * FROM mails WHERE id = ?", waiting["id"])
    assert still["awaiting_confirmation"] == 1
    assert not db.rows("SELECT * FROM unit_emails WHERE confirmed = 1 AND email LIKE 'lan_%'")
    assert db.rows("SELECT * FROM staff_tokens") == []
    refused = [json.loads(e["detail"])["refused"] for e in db.events("staff-command-refused")]
    assert sorted(refused) == ["expired", "forged", "not-staff"]
    answers = replies(smtp_server.messages[sent_before:])
    # Staff hear why nothing happened; the non-staff sender hears nothing.
    assert sorted(a.to for a in answers) == [(STAFF,), (STAFF,)]
    texts = " ".join(body_text(a) for a in answers)
    assert "mã thao tác không hợp lệ" in texts and "đã hết hạn" in texts
    assert "Không có gì thay đổi" in texts
    assert all("MBT-" not in a.subject and "MBT-" not in body_text(a) for a in answers)

    # The real code from the staff address: the sender is confirmed, the answer says so.
    sent_before = len(smtp_server.messages)
    append_all(dovecot, account, [_command(STAFF, "<real@e2e.example>", subject, body)])
    _poll(cfg, capsys)
    [done] = db.rows("SELECT * FROM mails WHERE id = ?", waiting["id"])
    assert done["awaiting_confirmation"] == 0
    [address] = db.rows("SELECT * FROM unit_emails WHERE email = 'lan_nguyen1975@yahoo.example'")
    assert address["confirmed"] == 1 and address["unit_code"] == "hoi-ctd"
    [answer] = replies(smtp_server.messages[sent_before:])
    assert answer.to == (STAFF,) and answer.subject.startswith("[Đã thực hiện] Xác nhận người gửi")
    text = body_text(answer)
    assert "lan_nguyen1975@yahoo.example được xác nhận là địa chỉ của Hội Chữ thập đỏ" in text
    assert "Số biểu đang chờ xác nhận nay được tính: 1" in text
    [action] = db.events("staff-action")
    assert action["mail_id"] == waiting["id"] and action["unit_code"] == "hoi-ctd"
    assert json.loads(action["detail"])["actor"] == STAFF
    [used] = db.rows("SELECT * FROM staff_tokens")
    assert used["actor"] == STAFF and used["target_mail_id"] == waiting["id"]

    # The same code again (a second click, a forwarded copy): refused, nothing changes.
    sent_before = len(smtp_server.messages)
    append_all(dovecot, account, [_command(STAFF, "<replay@e2e.example>", subject, body)])
    _poll(cfg, capsys)
    [answer] = replies(smtp_server.messages[sent_before:])
    assert "mỗi mã chỉ dùng một lần" in body_text(answer)
    assert answer.subject.startswith("[Chưa thực hiện]")
    assert len(db.events("staff-action")) == 1
    assert len(db.rows("SELECT * FROM staff_tokens")) == 1
    assert json.loads(db.events("staff-command-refused")[-1]["detail"])["refused"] == "replayed"
