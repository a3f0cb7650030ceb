"""`mailbot poll --once` end to end: a real Dovecot, a real aiosmtpd, SQLite on disk."""

from __future__ import annotations

import hashlib
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest

import mailbot.app
import mailbot.commands.intake
import mailbot.intake
from mailbot.app import open_app
from mailbot.cli import main
from mailbot.clock import utc_now
from mailbot.config import load_config
from mailbot.intake import answer_address
from mailbot.mail.walk import parse_mail
from rules.base import FORM_NAMES
from tests.mailbot.e2e_support import (
    PROCESSED,
    PW_ENV,
    Db,
    append_all,
    backlog,
    body_text,
    corpus,
    fixture_bytes,
    message_id_of,
    replies,
    sent_mails,
    simple_mail,
    with_message_id,
    write_config,
)
from tests.mailbot.intake_support import context
from tests.support.dovecot import Account, DovecotServer, _quote_folder

pytestmark = pytest.mark.dovecot

STATS = re.compile(r"nhận (\d+) thư, xử lý (\d+) \(lỗi (\d+)\), gửi (\d+) thư \(lỗi (\d+)\)")


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def poll(cfg: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, int]:
    """Run `mailbot --config cfg poll --once` in-process; its figures by name."""
    code = main(["--config", str(cfg), "poll", "--once"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    m = STATS.search(out)
    assert m, out
    return dict(
        zip(
            ("fetched", "processed", "failed", "sent", "send_failed"),
            map(int, m.groups()),
            strict=True,
        )
    )


def test_poll_once_handles_the_corpus_end_to_end(tmp_path, dovecot, account, smtp_server, capsys):
    cases = corpus()
    raws = {p.name: p.read_bytes() for p, _ in cases}
    # One mail carries a staff flag: the robot must leave flags alone.
    flagged = "outlook_ccb_docx.eml"
    for path, _ in cases:
        append_all(
            dovecot, account, [raws[path.name]], flags=[r"\Flagged"] if path.name == flagged else []
        )
    cfg = write_config(tmp_path, dovecot, account, smtp_server)

    stats = poll(cfg, capsys)
    expected_replies = [e for _, e in cases if e["reply"]]
    assert stats["fetched"] == len(cases)
    assert stats["processed"] == len(cases) and stats["failed"] == 0
    assert stats["sent"] == len(expected_replies)

    # The database: every mail stored raw (content-addressed) and decided as expected.
    db = Db(tmp_path / "data")
    mails = db.mails()
    assert len(db.rows("SELECT id FROM mails")) == len(cases)
    for path, expected in cases:
        raw = raws[path.name]
        mail = mails[message_id_of(raw)]
        sha = hashlib.sha256(raw).hexdigest()
        assert mail["sha256"] == sha, path.name
        assert mail["raw_path"] == f"raw/{sha[:2]}/{sha[2:]}.eml"
        stored = (tmp_path / "data" / mail["raw_path"]).read_bytes()
        assert stored == raw and hashlib.sha256(stored).hexdigest() == sha
        want_status = "quarantined" if expected["action"] == "quarantined" else "processed"
        assert mail["status"] == want_status, (path.name, mail["last_error"])
        assert mail["unit_code"] == (expected["unit"] if want_status == "processed" else None)
        assert bool(mail["awaiting_confirmation"]) == expected["awaiting_confirmation"]
        subs = db.rows(
            "SELECT form, errors_count, entries_count FROM submissions WHERE mail_id = ? "
            "ORDER BY id",
            mail["id"],
        )
        assert [[s["form"], s["errors_count"] == 0, s["entries_count"]] for s in subs] == (
            expected["submissions"]
        ), path.name
        outbox = db.rows("SELECT kind, status FROM outbox WHERE mail_id = ?", mail["id"])
        assert [o["kind"] for o in outbox] == ([expected["reply"]] if expected["reply"] else [])
        assert all(o["status"] == "sent" for o in outbox)
        if "other_mail" in expected:
            others = db.rows(
                "SELECT id FROM events WHERE mail_id = ? AND kind = 'other-mail'", mail["id"]
            )
            assert len(others) == (1 if expected["other_mail"] else 0), path.name

    # Unknown senders await confirmation of their address; a registered unit sending a form
    # of another unit keeps its address, only that form waits.
    awaiting = [
        p
        for p, e in cases
        if e["awaiting_confirmation"]
        and not any(r[1] == "other" for r in e.get("recorded_for", []))
    ]
    assert awaiting, "the corpus should hold a mail awaiting confirmation"
    unconfirmed = {r["email"] for r in db.rows("SELECT email FROM unit_emails WHERE NOT confirmed")}
    for path in awaiting:
        sender = mails[message_id_of(raws[path.name])]["from_addr"]
        assert sender in unconfirmed
    assert len(db.events("awaiting-confirmation")) == len(awaiting)

    # The SMTP server: exactly one answer per expected reply, threaded, marked automatic.
    got = replies(smtp_server.messages)
    assert len(smtp_server.messages) == len(expected_replies)
    by_original = {m.in_reply_to: m for m in got}
    assert len(by_original) == len(got)
    for path, expected in cases:
        original = message_id_of(raws[path.name])
        if not expected["reply"]:
            assert original not in by_original, path.name
            continue
        answer = by_original[original]
        assert answer.auto_submitted == "auto-replied"
        assert answer.subject.startswith("Re:")
        assert answer.message_id.endswith("@mailbot.invalid>")
        assert original in str(answer.message["References"])
        # Reply-To when it names a person, else From (RFC 5322 3.6.2).
        assert answer.to == (answer_address(parse_mail(raws[path.name]), context()),)
        text = body_text(answer)
        for needle in expected["mentions"]:
            if needle in FORM_NAMES.values():
                # "still missing": in one shared mailbox another corpus mail of the same unit
                # may have brought that form first (the pure intake test checks it alone).
                continue
            assert needle in text, (path.name, needle)

    # The mailbox: everything moved to the processed folder (created), nothing deleted,
    # \Seen untouched, staff flags kept.
    assert dovecot.uids(account) == []
    moved = dovecot.uids(account, PROCESSED)
    assert len(moved) == len(cases)
    flags = {uid: dovecot.flags(account, uid, PROCESSED) for uid in moved}
    assert not any(r"\Seen" in f or r"\Deleted" in f for f in flags.values()), flags
    assert sum(r"\Flagged" in f for f in flags.values()) == 1

    # A second pass finds nothing and sends nothing.
    assert poll(cfg, capsys) == dict(fetched=0, processed=0, failed=0, sent=0, send_failed=0)
    assert len(smtp_server.messages) == len(expected_replies)

    # A mail arriving later, already \Seen (staff read it first), is still picked up: new
    # means a higher UID, not an unseen flag.
    late = simple_mail(
        "Đảng ủy phường Khương Trung <dangbo.khuongtrung@thanhxuan.example>",
        "<later-0001@thanhxuan.example>",
    )
    append_all(dovecot, account, [late], flags=[r"\Seen"])
    stats = poll(cfg, capsys)
    assert stats["fetched"] == 1 and stats["sent"] == 1
    answer = replies(smtp_server.messages)[-1]
    assert answer.in_reply_to == "<later-0001@thanhxuan.example>"
    assert dovecot.uids(account) == []


def test_rate_limit_per_address(tmp_path, dovecot, account, smtp_server, capsys):
    raw = fixture_bytes("gmail_khuong_trung.eml")
    mails = [with_message_id(raw, f"<rate-{n}@thanhxuan.example>") for n in range(3)]
    append_all(dovecot, account, mails)
    cfg = write_config(
        tmp_path, dovecot, account, smtp_server, outgoing={"max_auto_replies_per_hour": 2}
    )

    stats = poll(cfg, capsys)
    assert stats["processed"] == 3 and stats["sent"] == 2
    got = replies(smtp_server.messages)
    # Outcomes are recorded as the workers finish them: any two of the three are answered.
    ids = {f"<rate-{n}@thanhxuan.example>" for n in range(3)}
    answered = {m.in_reply_to for m in got}
    assert len(answered) == 2 and answered < ids
    db = Db(tmp_path / "data")
    third = db.mails()[(ids - answered).pop()]
    # The third mail is recorded and its form kept; only the answer is held back.
    assert third["status"] == "processed"
    assert len(db.rows("SELECT id FROM submissions WHERE mail_id = ?", third["id"])) == 1
    limited = db.events("rate-limited")
    assert [(e["mail_id"], e["detail"]) for e in limited] == [
        (third["id"], "dangbo.khuongtrung@thanhxuan.example")
    ]
    assert db.rows("SELECT id FROM outbox WHERE mail_id = ?", third["id"]) == []


def test_oversize_mail_is_recorded_kept_and_its_sender_told(
    tmp_path, dovecot, account, smtp_server, capsys
):
    small = fixture_bytes("gmail_khuong_trung.eml")
    big = fixture_bytes("outlook_ccb_docx.eml")  # ~54 kB with its form
    big_list = fixture_bytes("mailing_list.eml").replace(
        b"\r\n\r\n", b"\r\n\r\n" + b"x" * 60_000 + b"\r\n", 1
    )
    assert len(small) < 30_000 < min(len(big), len(big_list))
    uids = append_all(dovecot, account, [small, big, big_list])
    cfg = write_config(tmp_path, dovecot, account, smtp_server, inbox={"max_message_bytes": 30_000})

    stats = poll(cfg, capsys)
    assert stats["fetched"] == 3
    db = Db(tmp_path / "data")
    mails = db.mails()
    for raw in (big, big_list):
        row = mails[message_id_of(raw)]
        assert row["status"] == "oversize"
        assert row["size"] == len(raw)
        # Only the header block was downloaded and stored.
        stored = (tmp_path / "data" / row["raw_path"]).read_bytes()
        assert len(stored) < 30_000 and raw.startswith(stored.rstrip(b"\r\n"))
    assert len(db.events("oversize")) == 2

    got = replies(smtp_server.messages)
    assert sorted(m.in_reply_to for m in got) == sorted([message_id_of(small), message_id_of(big)])
    notice = next(m for m in got if m.in_reply_to == message_id_of(big))
    assert notice.to == ("hoiccb@thanhxuan.example",)
    kinds = {r["message_id"]: r["kind"] for r in db.rows("SELECT * FROM outbox")}
    assert kinds[notice.message_id] == "notice"
    # The list mail gets nothing, oversize or not. Both big mails stay on the server.
    assert dovecot.uids(account) == uids[1:]
    assert len(dovecot.uids(account, PROCESSED)) == 1

    assert poll(cfg, capsys)["fetched"] == 0
    assert len(smtp_server.messages) == 2


def test_bounce_of_our_receipt_is_matched(tmp_path, dovecot, account, smtp_server, capsys):
    append_all(dovecot, account, [fixture_bytes("gmail_khuong_trung.eml")])
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    assert poll(cfg, capsys)["sent"] == 1
    receipt = sent_mails(smtp_server.messages)[0]

    dsn = (
        fixture_bytes("dsn_bounce.eml")
        .replace(b"<receipt-44.1645153400@mailbot.invalid>", receipt.message_id.encode())
        .replace(b"nobody@thanhxuan.example", b"dangbo.khuongtrung@thanhxuan.example")
    )
    append_all(dovecot, account, [dsn])
    stats = poll(cfg, capsys)
    assert stats["fetched"] == 1 and stats["sent"] == 0

    db = Db(tmp_path / "data")
    outbox = db.rows("SELECT * FROM outbox WHERE message_id = ?", receipt.message_id)[0]
    assert outbox["status"] == "bounced"
    bounces = db.rows("SELECT * FROM bounces")
    assert len(bounces) == 1
    assert bounces[0]["outbox_id"] == outbox["id"]
    assert bounces[0]["recipient"] == "dangbo.khuongtrung@thanhxuan.example"
    assert bounces[0]["status"] == "5.1.1"
    event = db.events("bounce")[0]
    assert event["unit_code"] == "p-khuong-trung"
    assert len(smtp_server.messages) == 1  # nobody answers a mailer-daemon


class FakeClock:
    """The robot's clock, moved by the test (back-off is minutes, the test is seconds)."""

    def __init__(self) -> None:
        self.now = utc_now()

    def __call__(self):  # noqa: ANN204
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def test_failing_mail_is_retried_quarantined_and_reprocessed(
    tmp_path, dovecot, account, smtp_server, capsys, monkeypatch
):
    clock = FakeClock()
    monkeypatch.setattr(mailbot.app, "utc_now", clock)
    monkeypatch.setattr(mailbot.commands.intake, "utc_now", clock)
    real = mailbot.intake.process_mail
    broken = {"on": True}

    def flaky(raw: bytes, ctx):  # noqa: ANN001, ANN202
        if broken["on"] and b"<bad-0001@thanhxuan.example>" in raw:
            raise RuntimeError("parser bug triggered by this one mail")
        return real(raw, ctx)

    monkeypatch.setattr(mailbot.intake, "process_mail", flaky)
    good1 = with_message_id(fixture_bytes("gmail_khuong_trung.eml"), "<good-1@thanhxuan.example>")
    bad = with_message_id(fixture_bytes("outlook_ccb_docx.eml"), "<bad-0001@thanhxuan.example>")
    good2 = with_message_id(fixture_bytes("forwarded_kim_giang.eml"), "<good-2@thanhxuan.example>")
    append_all(dovecot, account, [good1, bad, good2])
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        processing={"max_attempts": 3, "retry_base_seconds": 60, "workers": 0},
    )
    db = Db(tmp_path / "data")

    def bad_row():  # noqa: ANN202
        return db.mails()["<bad-0001@thanhxuan.example>"]

    stats = poll(cfg, capsys)
    # The bad mail sits between two good ones; they are answered regardless.
    assert (stats["processed"], stats["failed"], stats["sent"]) == (2, 1, 2)
    assert bad_row()["status"] == "retry" and bad_row()["attempts"] == 1
    assert "parser bug" in bad_row()["last_error"]
    assert len(dovecot.uids(account)) == 1  # only the failed one is left in the inbox

    clock.advance(30)  # before its back-off ends: not tried again
    assert poll(cfg, capsys)["failed"] == 0
    assert bad_row()["attempts"] == 1
    clock.advance(31)
    assert poll(cfg, capsys)["failed"] == 1
    assert bad_row()["status"] == "retry" and bad_row()["attempts"] == 2
    clock.advance(119)  # the second back-off is twice as long
    assert poll(cfg, capsys)["failed"] == 0
    clock.advance(2)
    assert poll(cfg, capsys)["failed"] == 1
    row = bad_row()
    assert row["status"] == "quarantined" and row["quarantine_reason"] == "processing-failed"
    assert [e["mail_id"] for e in db.events("quarantined")] == [row["id"]]
    assert len(smtp_server.messages) == 2
    # Kept on the server, never deleted.
    assert len(dovecot.uids(account)) + len(dovecot.uids(account, PROCESSED)) == 3

    broken["on"] = False  # the fix is deployed
    code = main(["--config", str(cfg), "reprocess"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "thành công 1, lỗi 0" in out
    row = bad_row()
    assert row["status"] == "processed" and row["unit_code"] == "hoi-ccb"
    assert len(db.rows("SELECT id FROM submissions WHERE mail_id = ?", row["id"])) == 1
    answer = replies(smtp_server.messages)[-1]
    assert answer.in_reply_to == "<bad-0001@thanhxuan.example>"
    assert len(smtp_server.messages) == 3
    assert dovecot.uids(account) == []


def test_uidvalidity_change_does_not_answer_again(tmp_path, dovecot, account, smtp_server, capsys):
    folder = "Biểu mẫu"  # a non-INBOX folder can be deleted and recreated
    old = [
        fixture_bytes("gmail_khuong_trung.eml"),
        fixture_bytes("outlook_ccb_docx.eml"),
        fixture_bytes("forwarded_kim_giang.eml"),
    ]
    append_all(dovecot, account, old, folder=folder)
    cfg = write_config(tmp_path, dovecot, account, smtp_server, folder=folder)
    assert poll(cfg, capsys)["sent"] == 3
    db = Db(tmp_path / "data")
    (state,) = db.rows("SELECT * FROM mailbox_state")

    # An admin restores the folder from a backup: new UIDVALIDITY, two answered mails under
    # new UIDs, and a mail that came meanwhile (under a lower UID than the known ones).
    client = dovecot.connect(account, folder=None)
    try:
        assert client.delete(_quote_folder(folder))[0] == "OK"
    finally:
        client.logout()
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    new = fixture_bytes("zip_of_forms.eml")
    uids = append_all(dovecot, account, [new, old[0], old[1]], folder=folder)
    stats = poll(cfg, capsys)
    assert stats["fetched"] == 1 and stats["sent"] == 1
    answers = replies(smtp_server.messages)
    assert len(answers) == 4
    assert answers[-1].in_reply_to == message_id_of(new)
    assert len(db.rows("SELECT id FROM mails")) == 4
    (after,) = db.rows("SELECT * FROM mailbox_state")
    assert after["uidvalidity"] != state["uidvalidity"]
    assert after["last_uid"] == max(uids)

    # The read position moved past the known mails: no rescan, nothing new.
    assert poll(cfg, capsys)["fetched"] == 0
    assert len(smtp_server.messages) == 4
    # The restored copies stay where the admin put them.
    assert dovecot.uids(account, folder) == uids[1:]


def test_renumbered_folder_under_a_live_connection_loses_nothing(
    tmp_path, dovecot, account, smtp_server
):
    # The daemon keeps its connection: the folder is recreated behind it with other mail,
    # whose new UIDs are partly below the old read position.
    folder = "Intake"
    append_all(dovecot, account, backlog(3, "before"), folder=folder)
    cfg = write_config(tmp_path, dovecot, account, smtp_server, folder=folder)
    with open_app(load_config(cfg)) as app:
        robot = app.robot()
        assert robot.run_once().sent == 3
        client = dovecot.connect(account, folder=None)
        try:
            assert client.delete(_quote_folder(folder))[0] == "OK"
        finally:
            client.logout()
        time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
        after = backlog(5, "after")
        append_all(dovecot, account, after, folder=folder)
        stats = robot.run_once()
        assert (stats.fetched, stats.sent) == (5, 5)
        assert robot.run_once().fetched == 0
    answered = {m.in_reply_to for m in replies(smtp_server.messages)}
    assert {message_id_of(m) for m in after} <= answered
    assert len(smtp_server.messages) == 8
