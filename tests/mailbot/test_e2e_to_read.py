"""A unit's question without a form, end to end: real Dovecot and aiosmtpd, SQLite on disk.

The question is answered honestly, listed in the digest and `mailbot review` until staff mark
it handled, and then gone from both.
"""

from __future__ import annotations

import re

import pytest

from mailbot.cli import main
from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    body_text,
    fixture_bytes,
    replies,
    sent_mails,
    write_config,
)

pytestmark = pytest.mark.dovecot

QUESTION = "Cho hỏi chi bộ có phải nộp mẫu 02 không ạ?"
STAFF = "lanhdao@thanhxuan.example"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out


def _digests(smtp_server) -> list[str]:
    return [body_text(m) for m in sent_mails(smtp_server.messages) if m.to == (STAFF,)]


def test_question_is_listed_until_staff_mark_it_handled(
    tmp_path, dovecot, smtp_server, monkeypatch, capsys
):
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'\n[digest]\nrecipients = ["{STAFF}"]\n')
    # A fresh question: as a reply to one of our mails it would get no automatic answer.
    question = re.sub(
        rb"(In-Reply-To|References): [^\r\n]*\r\n",
        b"",
        fixture_bytes("unseen_reply_question_no_attachment.eml"),
    )
    append_all(dovecot, account, [question])

    _run(capsys, "--config", str(cfg), "poll", "--once")
    [notice] = replies(smtp_server.messages)
    text = body_text(notice)
    assert "Nội dung thư này đã được chuyển cán bộ" in text
    assert "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)" in text
    [row] = Db(tmp_path / "data").rows("SELECT * FROM mails")
    assert row["for_staff"] == 1 and row["handled_at"] is None
    mail_id = row["id"]

    listed = _run(capsys, "--config", str(cfg), "review")
    assert f"#{mail_id}" in listed and QUESTION in listed

    _run(capsys, "--config", str(cfg), "digest")
    [first] = _digests(smtp_server)
    assert QUESTION in first and "chibo.thue@thanhxuan.example" in first
    assert f"thực hiện với thư số {mail_id}: đã xử lý." in first

    done = _run(
        capsys, "--config", str(cfg), "review", "handled", "--mail", str(mail_id), "--by", "Lan"
    )
    assert f"thư số {mail_id}" in done and "Lan" in done
    [row] = Db(tmp_path / "data").rows("SELECT * FROM mails")
    assert row["handled_by"] == "Lan" and row["handled_at"] is not None

    assert QUESTION not in _run(capsys, "--config", str(cfg), "review")
    _run(capsys, "--config", str(cfg), "digest")
    second = _digests(smtp_server)[-1]
    assert len(_digests(smtp_server)) == 2
    assert QUESTION not in second and f"thư số {mail_id}" not in second

    # A second mark is refused with a message, not a traceback.
    code = main(["--config", str(cfg), "review", "handled", "--mail", str(mail_id)])
    out, err = capsys.readouterr()
    assert code != 0 and "đã được Lan đánh dấu" in err and "Traceback" not in err
