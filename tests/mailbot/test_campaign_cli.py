"""The campaign commands run in-process through mailbot.cli.main with a real config and data."""

from __future__ import annotations

import email
import email.policy
import io
import json

import jsonschema
import openpyxl
import pytest
from docx import Document
from sqlalchemy import select

from mailbot import cli
from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.config import load_config
from rules.campaign import load_campaign
from tests.mailbot.campaign.support import STATUS_SCHEMA, at
from tests.mailbot.test_scheduler import drop, mail_with, run_intake, write_config


def mailbot(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def setup(tmp_path):
    """A data directory with a few real mails processed on 14/02/2022."""
    config_path = write_config(tmp_path, f"dir:{tmp_path / 'out'}", ("lanhdao@thanhxuan.example",))
    config = load_config(config_path)
    inbox = tmp_path / "inbox"
    drop(
        inbox,
        mail_with("MTTQ <mttq@thanhxuan.example>", "M1 va M2 - MTTQ quan.docx", n=11),
        when=at(14, 9),
    )
    drop(
        inbox, mail_with("LĐLĐ <ldld@thanhxuan.example>", "LDLD quan M1.xlsx", n=12), when=at(14, 9)
    )
    drop(
        inbox,
        mail_with("Bí thư <bithu.doan@gmail.example>", "Quan doan - dang ky DVK 2022.xlsx", n=13),
        when=at(14, 9),
    )
    drop(
        inbox,
        mail_with("Ai đó <la@nowhere.example>", "Mau 01 chua ghi ten don vi.xlsx", n=14),
        when=at(14, 9),
    )
    with open_app(config) as app:
        run_intake(app, at(14, 9))
    return tmp_path, str(config_path), config


def outbox_rows(config) -> list[dbm.Outbox]:
    with open_app(config, exclusive=False) as app, app.database.session(write=False) as s:
        return list(s.scalars(select(dbm.Outbox).order_by(dbm.Outbox.id)))


def mail_id_from(config, addr: str) -> int:
    with open_app(config, exclusive=False) as app, app.database.session(write=False) as s:
        return s.scalars(select(dbm.Mail.id).where(dbm.Mail.from_addr == addr)).one()


def test_status_json_follows_the_contract(setup, capsys) -> None:
    _tmp, cfg, _config = setup
    code, out, _err = mailbot(capsys, "--config", cfg, "status", "--json")
    assert code == 0
    data = json.loads(out)
    jsonschema.validate(data, STATUS_SCHEMA)
    states = {u["code"]: u["state"] for u in data["units"]}
    assert states["mttq"] == "complete"
    assert states["ldld"] == "partial"
    assert states["quan-doan"] == "awaiting-confirmation"
    assert states["hoi-ccb"] == "missing"
    assert "awaiting-confirmation" not in {states[c] for c in states if c != "quan-doan"}
    assert data["units"][0]["code"] == "cb-bhxh"
    mttq = next(u for u in data["units"] if u["code"] == "mttq")
    assert mttq["forms"]["M1"] == {
        "received_at": "2022-02-14T09:00:00+07:00",
        "late": False,
        "entries": 3,
        "errors": 0,
    }
    code, out, _err = mailbot(capsys, "--config", cfg, "status")
    assert code == 0
    assert "Chờ xác nhận người gửi" in out and "Đã gửi đủ 1/44 đơn vị (2%)" in out
    # Columns never run together: each one starts where the header's does, after a gap.
    lines = out.splitlines()
    head = next(line for line in lines if line.startswith("Mã"))
    starts = [head.index(word) for word in ("Đơn vị", "Tình trạng", "M1", "M2")]
    body = lines[lines.index(head) + 2 :]
    rows = body[: next(i for i, line in enumerate(body) if line.startswith("-"))]
    assert len(rows) == 44
    for row in rows:
        for start in starts:
            assert row[start - 2 : start] == "  ", row


def test_remind_dry_run_then_real_then_nothing_pending(setup, capsys) -> None:
    tmp, cfg, config = setup
    before = len(outbox_rows(config))
    code, out, _ = mailbot(
        capsys, "--config", cfg, "remind", "--dry-run", "--now", "2022-02-17T08:05"
    )
    assert code == 0
    assert "Đợt nhắc 08:00 ngày 17/02/2022" in out and "sẽ gửi 43 thư nhắc" in out
    assert "Đợt nhắc 08:00 ngày 11/02/2022 đã lỡ" in out
    assert "- Liên đoàn Lao động quận Thanh Xuân <ldld@thanhxuan.example>: chưa gửi M2" in out
    assert "Ủy ban Mặt trận" not in out
    assert len(outbox_rows(config)) == before  # a dry run changes nothing

    code, out, _ = mailbot(capsys, "--config", cfg, "remind", "--now", "2022-02-17T08:05")
    assert code == 0 and "đã lập 43 thư nhắc; gửi được 43, lỗi 0" in out
    reminders = [r for r in outbox_rows(config) if r.kind == "reminder"]
    assert len(reminders) == 43 and {r.status for r in reminders} == {"sent"}
    written = sorted((tmp / "out").glob("*.eml"))
    assert len([p for p in written if b"auto-generated" in p.read_bytes()]) == 43

    code, out, _ = mailbot(capsys, "--config", cfg, "remind", "--now", "2022-02-17T09:00")
    assert code == 0 and "Đợt tiếp theo: 08:00 ngày 18/02/2022" in out
    code, out, _ = mailbot(capsys, "--config", cfg, "remind", "--now", "2022-02-19T09:00")
    assert code == 0 and "hôm nay (thứ Bảy 19/02/2022) là ngày nghỉ: không gửi thư nhắc" in out
    code, out, _ = mailbot(capsys, "--config", cfg, "remind", "--now", "2022-02-20T08:00")
    assert "đã hết hạn nộp" in out
    assert len([r for r in outbox_rows(config) if r.kind == "reminder"]) == 43


def test_digest_over_real_smtp(setup, capsys, smtp_server) -> None:
    tmp, _cfg, _config = setup
    cfg = write_config(tmp, smtp_server.url(), ("lanhdao@thanhxuan.example",))
    code, out, _ = mailbot(
        capsys, "--config", str(cfg), "digest", "--dry-run", "--now", "2022-02-15T07:30"
    )
    assert code == 0 and "Báo cáo sẽ gửi đến: lanhdao@thanhxuan.example" in out
    assert "1/44 đơn vị đã gửi đủ" in out and smtp_server.messages == []
    code, out, _ = mailbot(capsys, "--config", str(cfg), "digest", "--now", "2022-02-15T07:30")
    assert code == 0
    [captured] = smtp_server.handler.wait_for(1)
    assert captured.rcpt_tos == ("lanhdao@thanhxuan.example",)
    msg = email.message_from_bytes(captured.data, policy=email.policy.default)
    text = msg.get_body(("plain",)).get_content()
    assert "la@nowhere.example" in text  # quarantined, unknown sender
    [att] = list(msg.iter_attachments())
    wb = openpyxl.load_workbook(io.BytesIO(att.get_content()))
    try:
        cells = {c for row in wb[wb.sheetnames[0]].iter_rows(values_only=True) for c in row if c}
        assert "Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân" in cells
    finally:
        wb.close()


def test_export_xlsx_and_docx(setup, capsys) -> None:
    tmp, cfg, _config = setup
    out_file = tmp / "tong-hop.xlsx"
    code, out, _ = mailbot(capsys, "--config", cfg, "export", "--out", str(out_file), "--docx")
    assert code == 0
    wb = openpyxl.load_workbook(out_file)
    try:
        assert wb.sheetnames[-1].startswith("Nội bộ")
        internal = wb[wb.sheetnames[-1]]
        status = {r[0]: r[2] for r in internal.iter_rows(min_row=6, values_only=True) if r[0]}
        assert status["mttq"] == "Đã gửi đủ" and status["ldld"] == "Gửi chưa đủ"
    finally:
        wb.close()
    doc = Document(str(out_file.with_suffix(".docx")))
    assert len(doc.tables) >= 3
    assert not list(tmp.glob(".tong-hop*"))  # no temporary file left behind
    code, _, err = mailbot(capsys, "--config", cfg, "export", "--out", str(tmp / "no" / "x.xlsx"))
    assert code == 2 and "không tồn tại" in err


def test_review_confirm_assign_reject(setup, capsys) -> None:
    _tmp, cfg, config = setup
    code, out, _ = mailbot(capsys, "--config", cfg, "review")
    assert code == 0
    assert "THƯ BỊ GIỮ LẠI (1)" in out and "la@nowhere.example" in out
    assert "NGƯỜI GỬI CHỜ XÁC NHẬN (1)" in out and "bithu.doan@gmail.example" in out

    waiting = mail_id_from(config, "bithu.doan@gmail.example")
    code, out, _ = mailbot(capsys, "--config", cfg, "review", "confirm", "--mail", str(waiting))
    assert code == 0 and "1 biểu mẫu chờ xác nhận nay được tính" in out
    with open_app(config, exclusive=False) as app, app.database.session(write=False) as s:
        assert dbm.unit_for_address(s, "bithu.doan@gmail.example") == ("quan-doan", True)

    stray = mail_id_from(config, "la@nowhere.example")
    code, out, _ = mailbot(
        capsys, "--config", cfg, "review", "assign", "--mail", str(stray), "--unit", "hoi-ccb"
    )
    assert code == 0 and "1 biểu mẫu (M1)" in out
    code, out, _ = mailbot(capsys, "--config", cfg, "status", "--json")
    states = {u["code"]: u["state"] for u in json.loads(out)["units"]}
    assert states["hoi-ccb"] == "errors"  # the assigned form lacks the unit name
    assert states["quan-doan"] == "partial"

    ldld = mail_id_from(config, "ldld@thanhxuan.example")
    code, out, _ = mailbot(
        capsys, "--config", cfg, "review", "reject", "--mail", str(ldld), "--reason", "gửi nhầm"
    )
    assert code == 0 and "gửi nhầm" in out
    code, out, _ = mailbot(capsys, "--config", cfg, "status", "--json")
    assert {u["code"]: u["state"] for u in json.loads(out)["units"]}["ldld"] == "missing"

    code, _, err = mailbot(
        capsys, "--config", cfg, "review", "assign", "--mail", "9999", "--unit", "ldld"
    )
    assert code == 2 and "không có thư mã 9999" in err
    code, out, _ = mailbot(capsys, "--config", cfg, "review")
    assert "Không có việc nào chờ xử lý." in out


def test_bad_now_is_a_usage_error(setup, capsys) -> None:
    _tmp, cfg, _config = setup
    code, _, err = mailbot(capsys, "--config", cfg, "remind", "--now", "hôm qua")
    assert code == 2 and "ISO-8601" in err


def test_campaign_new_moves_dates_and_refuses_overwrite(tmp_path, capsys) -> None:
    target = tmp_path / "dan-van-kheo-2023.toml"
    code, out, _ = mailbot(capsys, "campaign", "new", "2023", "--out", str(target))
    assert code == 0 and "trước ngày 20/02/2023" in out
    made = load_campaign(target)
    assert made.year == 2023 and made.id == "dan-van-kheo-2023"
    assert made.deadline.isoformat() == "2023-02-20T00:00:00+07:00"
    assert [m.date.isoformat() for m in made.milestones] == ["2023-09-20", "2023-10-01"]
    assert made.reminder_days == (7, 3, 1) and made.required_forms == ("M1", "M2")
    before = target.read_bytes()
    code, _, err = mailbot(capsys, "campaign", "new", "2023", "--out", str(target))
    assert code == 1 and "không ghi đè" in err and target.read_bytes() == before
