"""A ward's mail sequence through real Dovecot: every form counts once, for its own unit."""

from __future__ import annotations

import io
import json

import openpyxl
import pytest

from mailbot.cli import main
from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    body_text,
    fixture_bytes,
    message_id_of,
    replies,
    write_config,
)
from tests.support.dovecot import Account, DovecotServer

pytestmark = pytest.mark.dovecot

SEQUENCE = (
    "attribution_1_ward_own.eml",
    "attribution_2_forward_school.eml",
    "attribution_3_forward_youth.eml",
    "attribution_4_for_mttq.eml",
    "attribution_5_correction.eml",
)
WARD = "Đảng ủy phường Khương Đình"


@pytest.fixture
def account(dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch) -> Account:
    acc = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, acc.password)
    return acc


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    return out


def test_ward_sequence_records_each_unit_and_versions_are_never_silent(
    tmp_path, dovecot, account, smtp_server, capsys
):
    raws = [fixture_bytes(name) for name in SEQUENCE]
    # The school's forward arrives first; then the ward's own form, the youth union's, the
    # Front's and the correction in one pass: one batch, decided against one context, so the
    # correction's receipt must learn from the database that the ward's first version exists.
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    append_all(dovecot, account, [raws[1]])
    _run(capsys, "--config", str(cfg), "poll", "--once")
    append_all(dovecot, account, [raws[0], *raws[2:]])
    _run(capsys, "--config", str(cfg), "poll", "--once")

    db = Db(tmp_path / "data")
    subs = db.rows(
        "SELECT unit_code, sent_by, status, awaiting_confirmation, entries_count "
        "FROM submissions ORDER BY mail_id, id"  # workers finish in any order; mails do not
    )
    assert [tuple(s) for s in subs] == [
        ("cb-thcs-khuong-dinh", "p-khuong-dinh", "valid", 0, 3),
        ("p-khuong-dinh", "p-khuong-dinh", "superseded", 0, 4),
        ("doan-khuong-dinh", "p-khuong-dinh", "valid", 0, 4),
        ("mttq", "p-khuong-dinh", "valid", 1, 1),
        ("p-khuong-dinh", "p-khuong-dinh", "valid", 0, 4),
    ]

    by_reply = {r.in_reply_to: body_text(r) for r in replies(smtp_server.messages)}
    texts = [" ".join(by_reply[message_id_of(raw)].split()) for raw in raws]
    assert f"được ghi nhận cho: Chi bộ Trường THCS Khương Đình (do {WARD} gửi)" in texts[1]
    assert f"được ghi nhận cho: Đoàn Thanh niên phường Khương Đình (do {WARD} gửi)" in texts[2]
    assert "CHỜ XÁC NHẬN NGƯỜI GỬI" in texts[3]
    # The correction came in the same batch as the version it replaced: its receipt still
    # names that version and the model it dropped.
    assert "Bản này thay thế bản Mẫu số 02 của Đảng ủy phường Khương Đình nhận lúc" in texts[4]
    assert "(4 mô hình)" in texts[4]
    assert "Công an phường – Tổ liên gia an toàn phòng cháy" in texts[4]
    for text in texts[1:3]:
        assert "thay thế bản" not in text.split("1. CÁC TỆP")[1].split("3. THỜI HẠN")[0]

    # Every unit's models are in the consolidated workbook: none vanished under the ward.
    out = tmp_path / "tong-hop.xlsx"
    _run(capsys, "--config", str(cfg), "export", "--out", str(out))
    wb = openpyxl.load_workbook(io.BytesIO(out.read_bytes()), read_only=True)
    cells = " ".join(
        str(v) for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for v in row if v
    )
    for model in (
        "Chợ phiên sách cũ",  # the ward's corrected version
        "Tủ sách dùng chung của lớp học",  # the school
        "Quỹ tương trợ giáo viên",
        "Thanh niên tự quản đường phố",  # the youth union
        "Thanh niên tham gia hòa giải cơ sở",
    ):
        assert model in cells, model
    assert "Tổ liên gia an toàn phòng cháy" not in cells  # dropped by the correction
    assert "Bữa cơm nghĩa tình" not in cells  # awaiting staff

    # Every version is kept and shown.
    shown = _run(capsys, "--config", str(cfg), "status", "--unit", "p-khuong-dinh")
    assert "Mẫu số 02" in shown and "2 bản đã nhận" in shown
    assert "Đã được thay bằng bản gửi sau" in shown and "Đã tiếp nhận, đang được tính" in shown
    shown = _run(capsys, "--config", str(cfg), "status", "--unit", "mttq")
    assert "Chờ xác nhận người gửi" in shown and "do Đảng ủy phường Khương Đình gửi" in shown
    data = json.loads(_run(capsys, "--config", str(cfg), "status", "--json"))
    assert set(data) == {"campaign", "deadline", "units"}
    states = {u["code"]: u for u in data["units"]}
    assert states["cb-thcs-khuong-dinh"]["forms"]["M2"]["entries"] == 3
    assert states["doan-khuong-dinh"]["forms"]["M2"]["entries"] == 4
    assert states["mttq"]["state"] == "awaiting-confirmation"

    # The digest lists the replacement.
    digest = _run(capsys, "--config", str(cfg), "digest", "--dry-run")
    assert "thay thế bản nhận lúc" in digest and "Đảng ủy phường Khương Đình – Mẫu số 02" in digest

    # Staff confirm the form sent for the Front: it counts, the ward's address stays the ward's.
    mail_id = db.mails()[message_id_of(raws[3])]["id"]
    _run(capsys, "--config", str(cfg), "review", "confirm", "--mail", str(mail_id))
    row = db.rows("SELECT status, awaiting_confirmation FROM submissions WHERE unit_code='mttq'")
    assert [tuple(r) for r in row] == [("valid", 0)]
    owner = db.rows(
        "SELECT unit_code FROM unit_emails WHERE email='dangbo.khuongdinh@thanhxuan.example'"
    )
    assert [r["unit_code"] for r in owner] == ["p-khuong-dinh"]
