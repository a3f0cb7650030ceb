"""Two districts in one deployment: two Dovecot accounts, one config with two [[mailbox]]."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook

from mailbot.cli import main
from mailbot.config import load_config
from tests.mailbot.e2e_support import (
    PROCESSED,
    UNITS_FILE,
    Db,
    append_all,
    fixture_bytes,
    message_id_of,
    replies,
    sent_mails,
    with_message_id,
)
from tests.support.dovecot import Account, DovecotServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.dovecot

DISTRICTS = {
    "thanh-xuan": ("Thanh Xuân", "bdv_quthanhxuan@hanoi.gov.vn", "staff-tx@example.org"),
    "ba-dinh": ("Ba Đình", "bdv_qbadinh@hanoi.gov.vn", "staff-bd@example.org"),
}
MAILS = {"thanh-xuan": "gmail_khuong_trung.eml", "ba-dinh": "outlook_ccb_docx.eml"}


def _config(
    tmp_path: Path, dovecot: DovecotServer, accounts: dict[str, Account], smtp: SmtpServer
) -> Path:
    lines = [
        f'units_file = "{UNITS_FILE}"',
        "[inbox]",
        f'processed_folder = "{PROCESSED}"',
        'process_since = "2000-01-01"',
        "timeout_seconds = 10",
        "[outgoing]",
        f'url = "{smtp.url()}"',
        "max_auto_replies_per_hour = 1000",
        "[storage]",
        f'data_dir = "{tmp_path / "data"}"',
        "[processing]",
        "workers = 0",
    ]
    for name, (district, sender, staff) in DISTRICTS.items():
        lines += [
            "[[mailbox]]",
            f'name = "{name}"',
            f'district = "{district}"',
            f'from_address = "{sender}"',
            f'from_name = "Ban Dân vận Quận ủy {district}"',
            f'digest_recipients = ["{staff}"]',
            "[mailbox.inbox]",
            f'url = "{dovecot.url(accounts[name])}"',
            f'password_env = "MAILBOT_E2E_{name.upper().replace("-", "_")}"',
        ]
    path = tmp_path / "mailbot.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out


def test_two_districts_in_one_deployment(tmp_path, dovecot, smtp_server, monkeypatch, capsys):
    accounts = {name: dovecot.add_user() for name in DISTRICTS}
    for name, acc in accounts.items():
        monkeypatch.setenv(f"MAILBOT_E2E_{name.upper().replace('-', '_')}", acc.password)
    cfg = _config(tmp_path, dovecot, accounts, smtp_server)
    ids = {}
    for name, fixture in MAILS.items():
        raw = with_message_id(fixture_bytes(fixture), f"<{name}@e2e.city.example>")
        ids[name] = message_id_of(raw)
        append_all(dovecot, accounts[name], [raw])

    # Several mailboxes: a command on one of them must say which.
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    err = capsys.readouterr().err
    assert "--mailbox" in err and "thanh-xuan" in err and "ba-dinh" in err

    for name in DISTRICTS:
        _run(capsys, "--config", str(cfg), "poll", "--once", "--mailbox", name)

    # Each mail is in its own district's store and nowhere else.
    for name in DISTRICTS:
        stored = Db(tmp_path / "data" / name).mails()
        assert set(stored) == {ids[name]}
    assert not (tmp_path / "data" / "mailbot.sqlite3").exists()

    # Each receipt comes from its district's address, in answer to its district's mail.
    answers = {r.in_reply_to: r for r in replies(smtp_server.handler.messages)}
    assert set(answers) == set(ids.values())
    for name, (_district, sender, _staff) in DISTRICTS.items():
        assert sender in str(answers[ids[name]].message["From"])

    # Digests go to each district's own staff.
    before = len(smtp_server.handler.messages)
    for name in DISTRICTS:
        _run(capsys, "--config", str(cfg), "digest", "--mailbox", name)
    digests = sent_mails(smtp_server.handler.messages[before:])
    by_recipient = {d.to: d for d in digests}
    for _district, sender, staff in DISTRICTS.values():
        assert sender in str(by_recipient[(staff,)].message["From"])
    assert len(digests) == 2

    # Status without --mailbox: one line per mailbox.
    out = _run(capsys, "--config", str(cfg), "status")
    lines = [line for line in out.splitlines() if line.startswith(tuple(DISTRICTS))]
    assert len(lines) == 2 and "Ba Đình" in out and "Thanh Xuân" in out

    # The city's workbook: both districts' figures and models.
    target = tmp_path / "city.xlsx"
    _run(capsys, "--config", str(cfg), "export", "--all", "-o", str(target), "--docx")
    assert target.with_suffix(".docx").stat().st_size > 0
    wb = load_workbook(io.BytesIO(target.read_bytes()))
    summary = wb.worksheets[0]
    rows = {
        r[1]: r for r in summary.iter_rows(values_only=True) if r[1] in ("Thanh Xuân", "Ba Đình")
    }
    config = load_config(cfg)
    for name, (district, _sender, _staff) in DISTRICTS.items():
        db = Db(config.for_mailbox(name).data_dir)
        units = db.rows("SELECT count(*) AS n FROM units")[0]["n"]
        entries = db.rows(
            "SELECT count(*) AS n FROM entries e JOIN submissions s ON e.submission_id = s.id"
        )[0]["n"]
        row = rows[district]
        assert row[2] == units and entries > 0
        models = [
            r
            for ws in wb.worksheets[1:]
            for r in ws.iter_rows(values_only=True)
            if r[1] == district and isinstance(r[0], int)
        ]
        assert len(models) == entries
