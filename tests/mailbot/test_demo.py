"""`mailbot demo`: the README's first command, end to end on a local Maildir."""

from __future__ import annotations

import email
import sqlite3
from email import policy

from mailbot.cli import main


def test_demo_processes_the_sample_season_and_can_run_again(tmp_path, capsys):
    base = tmp_path / "demo"
    assert main(["demo", "--dir", str(base)]) == 0
    out = capsys.readouterr().out
    assert "Biểu đã ghi nhận" in out and str(base / "outbox") in out
    receipts = sorted((base / "outbox").glob("*.eml"))
    # Good, faulty, personal-address and late mails get receipts; the stranger's mail without
    # a form and the out-of-office reply get nothing (the stranger is listed as "Thư khác").
    assert len(receipts) == 4
    assert "Thư khác" in out and "someone@unknown.example" in out
    kinds = []
    for path in receipts:
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["Auto-Submitted"] == "auto-replied"
        kinds.append(msg["To"])
    assert not any("nhanchinh" in k for k in kinds)
    with sqlite3.connect(base / "data" / "mailbot.sqlite3") as db:
        rows = db.execute(
            "SELECT unit_code, form, status, late, awaiting_confirmation FROM submissions"
            " ORDER BY id"
        ).fetchall()
        quarantined = db.execute("SELECT count(*) FROM mails WHERE status='quarantined'").fetchone()
    db.close()
    assert ("p-khuong-trung", "M1", "valid", 0, 0) in rows
    assert ("hoi-lhpn", "M1", "invalid", 0, 0) in rows
    assert ("hoi-ccb", "M2", "valid", 0, 1) in rows
    assert ("p-ha-dinh", "M1", "valid", 1, 0) in rows
    assert quarantined == (0,)
    # A second run starts afresh in the same folder.
    assert main(["demo", "--dir", str(base)]) == 0
    assert len(list((base / "outbox").glob("*.eml"))) == 4


def test_demo_refuses_a_folder_with_other_data(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("x", encoding="utf-8")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert (tmp_path / "notes.txt").exists()
