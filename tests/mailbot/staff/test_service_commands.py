"""A staff command through the robot's stages (Maildir, SQLite on disk): acts exactly once."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import select

from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.staff.tokens import sign
from tests.mailbot.campaign.support import at
from tests.mailbot.intake_support import INTAKE
from tests.mailbot.test_scheduler import drop, run_intake, write_config

STAFF = "lanhdao@thanhxuan.example"
KEY = bytes(range(32))


def _command(code: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"Lãnh đạo Ban <{STAFF}>"
    msg["To"] = "bdv_quthanhxuan@hanoi.gov.vn"
    msg["Subject"] = f"Xác nhận người gửi – {code}"
    msg["Message-ID"] = "<cmd-1@thanhxuan.example>"
    msg.set_content("Đồng chí chỉ cần bấm Gửi.")
    return msg.as_bytes()


def _state(app) -> tuple[bool, int, int, int]:
    """(sender still awaiting, used codes, staff-action events, answers to staff)."""
    with app.database.session(write=False) as s:
        waiting = bool(dbm.mails_awaiting_confirmation(s))
        used = len(list(s.scalars(select(dbm.StaffToken))))
        actions = len(dbm.events_since(s, at(1), ["staff-action"]))
        answers = sum(1 for row in s.scalars(select(dbm.Outbox)) if row.recipients == [STAFF])
    return waiting, used, actions, answers


def test_a_failure_before_commit_leaves_nothing_and_the_retry_acts_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "staff-token-key"
    key.write_bytes(KEY)
    cfg = write_config(tmp_path, f"dir:{tmp_path / 'out'}", (STAFF,))
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'[staff]\ntoken_key_file = "{key}"\n')
    inbox = tmp_path / "inbox"
    drop(inbox, (INTAKE / "unseen_yahoo_personal_awaiting.eml").read_bytes(), at(15, 8))
    with open_app(load_config(cfg)) as app:
        run_intake(app, at(15, 8, 30))
        with app.database.session(write=False) as s:
            [waiting] = dbm.mails_awaiting_confirmation(s)
        code = sign(KEY, "confirm", waiting.id, waiting.unit_code, at(15) + timedelta(days=14))
        drop(inbox, _command(code), at(15, 9))

        real = dbm.mark_processed

        def crash(*args: object, **kwargs: object) -> None:
            raise OSError("disk gone at the last step")

        monkeypatch.setattr(dbm, "mark_processed", crash)
        run_intake(app, at(15, 9, 1))
        # The action, the used code, the event and the answer went with the failed commit.
        assert _state(app) == (True, 0, 0, 0)

        monkeypatch.setattr(dbm, "mark_processed", real)
        run_intake(app, at(15, 9, 30))  # the retry (after its back-off) acts
        assert _state(app) == (False, 1, 1, 1)
        run_intake(app, at(15, 10))  # and a later pass never acts again
        assert _state(app) == (False, 1, 1, 1)


def test_forged_commands_are_each_recorded_but_answered_at_most_hourly_limit(
    tmp_path: Path,
) -> None:
    key = tmp_path / "staff-token-key"
    key.write_bytes(KEY)
    cfg = write_config(tmp_path, f"dir:{tmp_path / 'out'}", (STAFF,))
    with cfg.open("a", encoding="utf-8") as f:
        f.write(f'[staff]\ntoken_key_file = "{key}"\n')
    inbox = tmp_path / "inbox"
    for n in range(7):
        forged = sign(bytes(32), "reject", n + 1, None, at(15) + timedelta(days=14))
        drop(inbox, _command(forged).replace(b"cmd-1@", f"cmd-{n}@".encode()), at(15, 9))
    config = load_config(cfg)
    with open_app(config) as app:
        run_intake(app, at(15, 9, 30))
        with app.database.session(write=False) as s:
            refused = dbm.events_since(s, at(1), ["staff-command-refused"])
            processed = dbm.mails_with_status(s, "processed")
        assert _state(app)[1:] == (0, 0, config.outgoing.max_auto_replies_per_hour)
    assert len(refused) == 7 and len(processed) == 7
