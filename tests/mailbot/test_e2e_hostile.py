"""Attacks and bad days against real Dovecot and SMTP: forged senders, naive auto-responders,
a mail that stalls its worker."""

from __future__ import annotations

import threading
import time

import pytest

from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.intake import process_mail
from mailbot.workers import Decider
from tests.mailbot import worker_funcs
from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    backlog,
    body_text,
    fixture_bytes,
    message_id_of,
    replies,
    write_config,
)
from tests.mailbot.intake_support import context
from tests.support.dovecot import Account, DovecotServer

pytestmark = pytest.mark.dovecot

TRUSTED = {"trusted_authserv_id": "mx.hanoi.gov.vn"}
UNIT_ADDR = "dangbo.khuongtrung@thanhxuan.example"


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def _valid_m1(db: Db) -> list[tuple[str, str]]:
    """(Message-ID, status) of the unit's M1 submissions, oldest first."""
    return [
        (r["message_id"], r["status"])
        for r in db.rows(
            "SELECT m.message_id, s.status, s.awaiting_confirmation FROM submissions s "
            "JOIN mails m ON m.id = s.mail_id WHERE s.unit_code = 'p-khuong-trung' "
            "AND s.form = 'M1' AND NOT s.awaiting_confirmation ORDER BY m.id, s.id"
        )
    ]


def test_a_forged_from_never_takes_over_a_units_submission(tmp_path, dovecot, account, smtp_server):
    genuine = fixture_bytes("gmail_khuong_trung.eml")
    forged = [
        fixture_bytes(name)
        for name in (
            "hostile_forged_no_auth.eml",
            "hostile_forged_untrusted_server.eml",
            "hostile_forged_spf_fail_dmarc_none.eml",
        )
    ]
    naive = fixture_bytes("hostile_naive_autoresponder.eml")
    append_all(dovecot, account, [genuine, *forged, naive])
    cfg = write_config(tmp_path, dovecot, account, smtp_server, security=TRUSTED)
    with open_app(load_config(cfg)) as app:
        stats = app.robot().run_once()
    assert stats.processed == 5 and stats.failed == 0

    db = Db(tmp_path / "data")
    # The genuine form stays the unit's accepted one; the forged ones wait for staff.
    assert _valid_m1(db) == [(message_id_of(genuine), "valid")]
    mails = db.mails()
    for raw in forged:
        row = mails[message_id_of(raw)]
        assert row["status"] == "processed" and row["awaiting_confirmation"] == 1
    waiting = {e["mail_id"] for e in db.events("awaiting-confirmation")}
    assert {mails[message_id_of(raw)]["id"] for raw in forged} <= waiting

    # Every receipt goes to the unit's own address, none to the forger's Reply-To; the
    # forged ones tell the unit the mail could not be verified. The auto-responder gets none.
    got = replies(smtp_server.messages)
    assert sorted(m.in_reply_to for m in got) == sorted(
        message_id_of(r) for r in [genuine, *forged]
    )
    assert all(m.to == (UNIT_ADDR,) for m in got)
    assert not any("evil.example" in rcpt for m in smtp_server.messages for rcpt in m.rcpt_tos)
    for m in got:
        verified = m.in_reply_to == message_id_of(genuine)
        assert ("không xác thực được" in body_text(m)) is not verified
    naive_row = mails[message_id_of(naive)]
    assert naive_row["status"] == "processed"
    assert naive_row["for_staff"] == 1  # listed for staff to read (digest, review)

    # Staff confirm one forged mail: only then does it count (and supersede).
    from mailbot.cli import main

    forged_id = mails[message_id_of(forged[0])]["id"]
    assert main(["--config", str(cfg), "review", "confirm", "--mail", str(forged_id)]) == 0
    # (Confirming the sender confirms its other waiting mails too: `review confirm` is per
    # address, and all three came "from" the unit's address.)
    assert _valid_m1(db)[-1] in {(message_id_of(r), "valid") for r in forged}


def test_a_slow_mail_delays_no_one_and_is_answered_once(tmp_path, dovecot, account, smtp_server):
    slow, normal = backlog(2, "stall")
    slow = slow.replace(b"\r\n\r\n", b"\r\nX-Test-Slow: yes\r\n\r\n", 1)
    append_all(dovecot, account, [slow, normal])
    cfg = write_config(tmp_path, dovecot, account, smtp_server, processing={"max_attempts": 5})
    timeout = 6.0
    with open_app(load_config(cfg)) as app:
        decider = Decider(
            2, 120, 0, inline=lambda: process_mail, worker_fn=worker_funcs.slow_marked
        )
        app._decider = decider
        # The daemon's workers live as long as it does: start them (and their imports) first.
        warm = list(decider.decide([(n, normal, context()) for n in range(2)]))
        assert not [o for _, o in warm if isinstance(o, Exception)]
        decider.timeout = timeout
        robot = app.robot()
        result: list[object] = []
        runner = threading.Thread(target=lambda: result.append(robot.run_once()))
        start = time.monotonic()
        runner.start()
        first = smtp_server.handler.wait_for(1, timeout=timeout + 20)
        waited = time.monotonic() - start
        # The normal mail's receipt left while the slow mail was still being decided.
        assert first and first[0] and runner.is_alive() and waited < timeout
        runner.join(60)
        assert not runner.is_alive()
        assert robot.run_once().processed == 0  # nothing left to retry

    got = {m.in_reply_to: m for m in replies(smtp_server.messages)}
    assert set(got) == {message_id_of(slow), message_id_of(normal)}
    assert "quá lớn hoặc quá phức tạp" in body_text(got[message_id_of(slow)])
    db = Db(tmp_path / "data")
    row = db.mails()[message_id_of(slow)]
    assert row["status"] == "processed" and row["attempts"] in (0, 1)
    problems = db.rows("SELECT problems_json FROM file_results WHERE mail_id = ?", row["id"])
    assert problems and all("file-too-large" in p["problems_json"] for p in problems)
