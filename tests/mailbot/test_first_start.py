"""First start on a used mailbox, `process_since`, the reply age limit, and the server's time.

Real Dovecot (APPEND with an INTERNALDATE) and a Maildir (Received: header, file time).
"""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import mailbot.app
import mailbot.commands.intake
from mailbot.app import open_app
from mailbot.campaign.attention import needs_attention
from mailbot.cli import main
from mailbot.config import load_config
from mailbot.service import Robot
from mailbot.sources import open_source
from tests.mailbot.e2e_support import (
    PROCESSED,
    PW_ENV,
    Db,
    body_text,
    fixture_bytes,
    replies,
    sent_mails,
    simple_mail,
    with_message_id,
    write_config,
)
from tests.support.dovecot import Account, DovecotServer, _quote_folder

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
STATS = re.compile(r"nhận (\d+) thư, xử lý (\d+) \(lỗi (\d+)\), gửi (\d+) thư")
UNIT_MAIL = "gmail_khuong_trung.eml"  # a unit's M1, answered with a receipt


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def poll(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, int, int, int]:
    """`mailbot poll --once`: (fetched, processed, failed, sent)."""
    code = main(["--config", str(cfg), "poll", "--once"])
    out, err = capsys.readouterr()
    assert code == 0, err
    m = STATS.search(out)
    assert m, out
    fetched, processed, failed, sent = (int(x) for x in m.groups())
    return fetched, processed, failed, sent


def unit_mail(tag: str) -> bytes:
    return with_message_id(fixture_bytes(UNIT_MAIL), f"<{tag}@first-start.example>")


def old_staff_mails() -> list[bytes]:
    """What the report found: mails from 2019 that staff had long read, no attachments."""
    return [
        simple_mail(
            f"Văn phòng <vanphong{n}@thanhxuan.example>",
            f"<old-{n}@thanhxuan.example>",
            subject="Lich hop thang 1/2019",
        )
        for n in range(3)
    ]


@pytest.mark.dovecot
def test_imap_first_start_answers_nothing_already_there(
    tmp_path, dovecot, account, smtp_server, capsys
):
    for n, raw in enumerate(old_staff_mails()):
        dovecot.append(
            account, raw, flags=[r"\Seen"], when=datetime(2019, 1, 10 + n, 8, 0, tzinfo=HANOI)
        )
    dovecot.append(account, unit_mail("already-there"))  # even a recent one, already there
    before = dovecot.uids(account)
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox={"process_since": None})

    assert poll(cfg, capsys) == (0, 0, 0, 0)
    assert smtp_server.messages == []
    assert dovecot.uids(account) == before  # nothing moved out of INBOX
    db = Db(tmp_path / "data")
    assert db.rows("SELECT id FROM mails") == []
    state = db.rows("SELECT last_uid FROM mailbox_state")
    assert [r["last_uid"] for r in state] == [max(before)]

    # A second pass still leaves them alone; mail arriving afterwards is the robot's.
    assert poll(cfg, capsys) == (0, 0, 0, 0)
    uid = dovecot.append(account, unit_mail("after-start"))
    assert poll(cfg, capsys) == (1, 1, 0, 1)
    [reply] = replies(smtp_server.messages)
    assert reply.in_reply_to == "<after-start@first-start.example>"
    assert uid not in dovecot.uids(account)
    assert dovecot.uids(account) == before


@pytest.mark.dovecot
def test_imap_process_since_takes_in_what_arrived_since(
    tmp_path, dovecot, account, smtp_server, capsys
):
    now = datetime.now(UTC)
    dovecot.append(account, unit_mail("before-since"), when=now - timedelta(days=30))
    dovecot.append(account, unit_mail("since"), when=now - timedelta(days=2))
    since = (now - timedelta(days=5)).astimezone(HANOI).date().isoformat()
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox={"process_since": since})

    assert poll(cfg, capsys) == (1, 1, 0, 1)
    [reply] = replies(smtp_server.messages)
    assert reply.in_reply_to == "<since@first-start.example>"
    mails = Db(tmp_path / "data").mails()
    assert set(mails) == {"<since@first-start.example>"}
    assert len(dovecot.uids(account)) == 1  # the older one stays where it was, untouched

    # Only the first meeting looks back: later passes go by UID as usual.
    assert poll(cfg, capsys) == (0, 0, 0, 0)


@pytest.mark.dovecot
def test_imap_old_mail_appended_later_is_recorded_but_not_answered(
    tmp_path, dovecot, account, smtp_server, capsys
):
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox={"process_since": None})
    assert poll(cfg, capsys) == (0, 0, 0, 0)  # first contact with an empty INBOX
    a_year_ago = datetime.now(UTC).replace(microsecond=0) - timedelta(days=365)
    dovecot.append(account, unit_mail("restored-from-archive"), when=a_year_ago)

    assert poll(cfg, capsys) == (1, 1, 0, 0)  # new by UID, so processed; old, so no answer
    assert smtp_server.messages == []
    db = Db(tmp_path / "data")
    [mail] = db.rows("SELECT * FROM mails")
    assert mail["status"] == "processed" and mail["unit_code"] == "p-khuong-trung"
    assert mail["received_at"].startswith(a_year_ago.strftime("%Y-%m-%d %H:%M:%S"))
    assert [r["form"] for r in db.rows("SELECT form FROM submissions")] == ["M1"]
    assert db.rows("SELECT id FROM outbox") == []
    [event] = db.rows("SELECT * FROM events WHERE kind = 'reply-withheld-old'")
    assert event["mail_id"] == mail["id"]

    config = load_config(cfg)
    with open_app(config, exclusive=False) as app, app.database.session(write=False) as s:
        items = needs_attention(s, None, datetime.now(UTC), app.campaign, {})
    lines = [i.detail for i in items if i.kind_label == "Thư cũ, không trả lời tự động"]
    assert len(lines) == 1
    assert f"Thư số {mail['id']} của dangbo.khuongtrung@thanhxuan.example" in lines[0]
    assert a_year_ago.astimezone(HANOI).strftime("%H:%M ngày %d/%m/%Y") in lines[0]
    [reprocess] = [i.actions for i in items if i.kind_label == "Thư cũ, không trả lời tự động"]
    assert [(a.kind, a.mail_id) for a in reprocess] == [("reprocess", mail["id"])]

    # `mailbot review` lists it too, until staff have it answered.
    assert main(["--config", str(cfg), "review"]) == 0
    out = capsys.readouterr().out
    assert "THƯ CŨ, CHƯA TRẢ LỜI TỰ ĐỘNG (1):" in out
    assert f"#{mail['id']}" in out and "quá 14 ngày" in out
    assert main(["--config", str(cfg), "reprocess", str(mail["id"])]) == 0
    capsys.readouterr()
    # Staff asked: answered now, whatever its age (reprocess delivers at once).
    assert len(smtp_server.messages) == 1
    assert (
        replies(smtp_server.messages)[0].in_reply_to
        == "<restored-from-archive@first-start.example>"
    )
    assert main(["--config", str(cfg), "review"]) == 0
    assert "THƯ CŨ" not in capsys.readouterr().out


@pytest.mark.dovecot
def test_imap_mail_received_before_the_deadline_is_not_late_when_read_after(
    tmp_path, dovecot, account, smtp_server, capsys, monkeypatch
):
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox={"process_since": None})
    assert poll(cfg, capsys) == (0, 0, 0, 0)
    # The robot was down: the mail reached the server at 23:50 on 19/02 (deadline: before
    # 20/02), the robot reads it at 01:30 on 20/02.
    reading = datetime(2022, 2, 20, 1, 30, tzinfo=HANOI)
    monkeypatch.setattr(mailbot.app, "utc_now", lambda: reading)
    monkeypatch.setattr(mailbot.commands.intake, "utc_now", lambda: reading)
    dovecot.append(account, unit_mail("on-time"), when=datetime(2022, 2, 19, 23, 50, tzinfo=HANOI))
    dovecot.append(account, unit_mail("late"), when=datetime(2022, 2, 20, 0, 10, tzinfo=HANOI))

    assert poll(cfg, capsys) == (2, 2, 0, 2)
    db = Db(tmp_path / "data")
    mails = db.mails()
    on_time, late = mails["<on-time@first-start.example>"], mails["<late@first-start.example>"]
    assert on_time["received_at"].startswith("2022-02-19 16:50:00")
    assert on_time["fetched_at"].startswith("2022-02-19 18:30:00")  # kept apart
    subs = {r["mail_id"]: bool(r["late"]) for r in db.rows("SELECT mail_id, late FROM submissions")}
    assert subs == {on_time["id"]: False, late["id"]: True}
    by_irt = {m.in_reply_to: body_text(m) for m in sent_mails(smtp_server.messages)}
    on_time_text = by_irt["<on-time@first-start.example>"]
    assert "lúc 23:50 ngày 19/02/2022" in on_time_text
    assert "gửi muộn" not in on_time_text
    assert "gửi muộn" in by_irt["<late@first-start.example>"]


@pytest.mark.dovecot
def test_imap_rebuilt_folder_answers_no_old_mail(tmp_path, dovecot, account, smtp_server, capsys):
    # The folder is rebuilt (new UIDVALIDITY) with years of old mail and one recent mail:
    # as before, everything unknown is processed, but only the recent one is answered.
    folder = "DonVi"
    dovecot.append(account, unit_mail("first"), folder=folder)
    cfg = write_config(
        tmp_path, dovecot, account, smtp_server, folder=folder, inbox={"process_since": None}
    )
    assert poll(cfg, capsys) == (0, 0, 0, 0)
    client = dovecot.connect(account, folder=None)
    try:
        assert client.delete(_quote_folder(folder))[0] == "OK"
    finally:
        client.logout()
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    for n in range(3):  # a unit's forms of years ago, which would each get a receipt
        when = datetime(2019, 1, 10 + n, tzinfo=HANOI)
        dovecot.append(account, unit_mail(f"old-{n}"), folder=folder, when=when)
    dovecot.append(account, unit_mail("recent"), folder=folder)

    assert poll(cfg, capsys) == (4, 4, 0, 1)
    [reply] = replies(smtp_server.messages)
    assert reply.in_reply_to == "<recent@first-start.example>"
    withheld = Db(tmp_path / "data").rows("SELECT id FROM events WHERE kind = 'reply-withheld-old'")
    assert len(withheld) == 3


# --------------------------------------------------------------------------- Maildir


def maildir_config(tmp_path: Path, since: str | None = None) -> Path:
    inbox = tmp_path / "inbox"
    mailbox.Maildir(str(inbox), create=True).close()
    extra = f"process_since = {since}\n" if since else ""
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'units_file = "{Path(__file__).resolve().parents[2] / "data" / "units.csv"}"\n'
        f'[inbox]\nurl = "maildir:{inbox}"\n{extra}'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n',
        encoding="utf-8",
    )
    return path


def deliver(tmp_path: Path, raw: bytes, *, mtime: datetime | None = None) -> str:
    """Put a mail into new/ as a delivery agent would; returns its file name."""
    name = f"{time.time_ns()}.P{os.getpid()}.test"
    tmp = tmp_path / "inbox" / "tmp" / name
    tmp.write_bytes(raw)
    if mtime is not None:
        os.utime(tmp, (mtime.timestamp(), mtime.timestamp()))
    os.rename(tmp, tmp_path / "inbox" / "new" / name)
    return name


def received(raw: bytes, when: datetime) -> bytes:
    """The mail as our server delivered it: a Received: line with the delivery time on top."""
    stamp = when.strftime("%a, %d %b %Y %H:%M:%S %z")
    return (
        b"Received: from mx.gmail.example by mail.thanhxuan.example with ESMTPS\r\n"
        b"\tfor <bdv_quthanhxuan@hanoi.gov.vn>; " + stamp.encode() + b"\r\n" + raw
    )


def run_pass(cfg: Path, now: datetime | None = None) -> None:
    config = load_config(cfg)
    with open_app(config) as app:
        source = open_source(config.inbox, base_dir=config.base_dir)
        try:
            robot = Robot(
                config,
                app.database,
                app.store,
                source,
                app.outgoing(),
                app.campaign,
                clock=(lambda: now) if now else (lambda: datetime.now(UTC)),
            )
            robot.run_once()
        finally:
            source.close()


def outbox_files(tmp_path: Path) -> list[Path]:
    out = tmp_path / "out"
    return sorted(out.glob("*.eml")) if out.is_dir() else []


def test_maildir_first_start_answers_nothing_already_there(tmp_path):
    cfg = maildir_config(tmp_path)
    names = [
        deliver(tmp_path, raw, mtime=datetime(2019, 1, 10, tzinfo=HANOI))
        for raw in old_staff_mails()
    ]
    names.append(deliver(tmp_path, unit_mail("already-there")))

    run_pass(cfg)
    run_pass(cfg)
    assert outbox_files(tmp_path) == []
    assert sorted(p.name for p in (tmp_path / "inbox" / "new").iterdir()) == sorted(names)
    assert not (tmp_path / "inbox" / f".{PROCESSED}").exists()
    db = Db(tmp_path / "var")
    assert db.rows("SELECT id FROM mails") == []
    assert len(db.rows("SELECT ref FROM mailbox_known")) == 4

    deliver(tmp_path, unit_mail("after-start"))
    run_pass(cfg)
    assert list(Db(tmp_path / "var").mails()) == ["<after-start@first-start.example>"]
    assert len(outbox_files(tmp_path)) == 1
    assert len(list((tmp_path / "inbox" / "new").iterdir())) == 4  # the old ones stay


def test_maildir_process_since_takes_in_what_was_delivered_since(tmp_path):
    cfg = maildir_config(tmp_path, since="2022-02-10")
    deliver(tmp_path, received(unit_mail("before"), datetime(2022, 2, 9, 23, 0, tzinfo=HANOI)))
    # No Received: line: the file's time is the delivery time.
    deliver(tmp_path, unit_mail("since"), mtime=datetime(2022, 2, 14, 9, 0, tzinfo=HANOI))

    run_pass(cfg, now=datetime(2022, 2, 15, 2, 0, tzinfo=UTC))
    mails = Db(tmp_path / "var").mails()
    assert list(mails) == ["<since@first-start.example>"]
    assert mails["<since@first-start.example>"]["received_at"].startswith("2022-02-14 02:00:00")
    assert len(outbox_files(tmp_path)) == 1


def test_maildir_received_header_before_the_deadline_is_not_late(tmp_path):
    cfg = maildir_config(tmp_path)
    run_pass(cfg, now=datetime(2022, 2, 1, tzinfo=UTC))  # first contact, empty
    arrived = datetime(2022, 2, 19, 23, 50, tzinfo=HANOI)
    # Written to disk long after (a restore, a slow delivery agent): the header decides.
    deliver(tmp_path, received(unit_mail("on-time"), arrived), mtime=arrived + timedelta(hours=3))

    run_pass(cfg, now=datetime(2022, 2, 20, 1, 30, tzinfo=HANOI))
    db = Db(tmp_path / "var")
    [mail] = db.rows("SELECT * FROM mails")
    assert mail["received_at"].startswith("2022-02-19 16:50:00")
    assert mail["fetched_at"].startswith("2022-02-19 18:30:00")
    assert [bool(r["late"]) for r in db.rows("SELECT late FROM submissions")] == [False]
    [sent] = outbox_files(tmp_path)
    msg = email.message_from_bytes(sent.read_bytes(), policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "lúc 23:50 ngày 19/02/2022" in text
    assert "gửi muộn" not in text
