"""The staff digest: content, arrivals since the previous one, overdue units, workbook."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import openpyxl
from sqlalchemy import select

from mailbot import db as dbm
from mailbot.campaign.digest import build_digest, queue_digest
from mailbot.campaign.reminders import queue_reminders
from mailbot.config import Config
from outbox_templates import render
from tests.mailbot.campaign.support import (
    CAMPAIGN,
    CONFIG,
    add_form,
    at,
    outbox,
    parse,
)


def test_digest_content_and_workbook(database) -> None:
    add_form(database, "mttq", "M1", at(10), entries=3)
    add_form(database, "mttq", "M2", at(10), entries=2)
    add_form(database, "ldld", "M1", at(11), entries=1, fields=("security_defense",))
    add_form(database, "hoi-ccb", "M2", at(11), errors=2)
    add_form(database, "p-khuong-dinh", "M1", at(11), entries=0)
    add_form(database, "quan-doan", "M1", at(12), awaiting=True, sender="bt@gmail.example")
    with database.session() as s:
        quarantined, _ = dbm.record_received(
            s,
            source="test",
            uidvalidity=None,
            uid=None,
            message_id="<q@x.example>",
            sha256="f" * 64,
            raw_path="raw/q",
            size=10,
            from_addr="la@nowhere.example",
            subject="Gửi biểu",
            received_at=at(12, 10),
        )
        dbm.quarantine(s, quarantined, "unknown-unit", at(12, 10))
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(11, 8))) > 0
        reminder = s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == "reminder")).first()
        dbm.record_bounce(
            s,
            original_message_id=reminder.message_id,
            recipient=reminder.recipients[0],
            status="5.1.1",
            action="failed",
            diagnostic="no such user",
            received_at=at(11, 9),
            mail_id=None,
        )
    with database.session() as s:
        assert queue_digest(s, CAMPAIGN, CONFIG, at(14, 7, 30))
        assert not queue_digest(s, CAMPAIGN, CONFIG, at(14, 9))  # once a day
    [row] = outbox(database, "digest")
    msg = parse(row.raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["To"] == "lanhdao@thanhxuan.example, vanthu@thanhxuan.example"
    assert "1/44 đơn vị đã gửi đủ" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "- Đã gửi đủ: 1" in text and "- Có lỗi cần sửa: 1" in text
    assert "- Chờ xác nhận người gửi: 1" in text
    assert "Mẫu số 01 – cấp Quận: Kinh tế: 2; Văn hóa - Xã hội: 1; An ninh - Quốc phòng: 1" in text
    assert "Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân" in text  # arrivals
    assert "la@nowhere.example" in text and "không xác định được đơn vị gửi" in text
    assert "bt@gmail.example gửi biểu thay cho Quận đoàn Thanh Xuân" in text
    assert (
        f"Thư nhắc hạn gửi Chi bộ Bảo hiểm xã hội quận Thanh Xuân ({reminder.recipients[0]}) "
        "bị trả lại: địa chỉ không tồn tại"
    ) in text
    assert "width:" in html or "%" in html
    [attachment] = list(msg.iter_attachments())
    assert attachment.get_filename() == "Tổng hợp Dân vận khéo 2022 - 14-02-2022.xlsx"
    wb = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    try:
        level1 = wb[wb.sheetnames[0]]
        values = [str(c) for row_ in level1.iter_rows(values_only=True) for c in row_ if c]
        assert "Mô hình M1 số 1 của mttq" in values
        assert "Mô hình M1 số 1 của ldld" in values
        assert not any("hoi-ccb" in v for v in values)  # its only form has errors
        status = wb[wb.sheetnames[-1]]  # the internal sheet: codes and addresses
        rows = {r[0]: r for r in status.iter_rows(min_row=6, values_only=True) if r[0]}
        assert rows["mttq"][2] == "Đã gửi đủ"
        assert rows["hoi-ccb"][2] == "Có lỗi cần sửa"
        assert rows["quan-doan"][2] == "Chờ xác nhận người gửi"
        assert rows["cb-bhxh"][3] == "Còn thiếu"
        # register order: the Fatherland Front, the socio-political organisations, …
        assert list(rows)[:3] == ["mttq", "quan-doan", "hoi-lhpn"]
    finally:
        wb.close()


def test_digest_arrivals_since_previous_digest(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    with database.session() as s:
        assert queue_digest(s, CAMPAIGN, CONFIG, at(11, 7, 30))
    add_form(database, "ldld", "M1", at(11, 12))
    with database.session(write=False) as s:
        plan = build_digest(s, CAMPAIGN, CONFIG, at(12, 7, 30))
    assert [a.unit for a in plan.view.arrivals] == ["Liên đoàn Lao động quận Thanh Xuân"]
    assert plan.view.since == at(11, 7, 30)


def test_overdue_units_after_deadline(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    add_form(database, "mttq", "M2", at(10))
    with database.session(write=False) as s:
        before = build_digest(s, CAMPAIGN, CONFIG, at(19, 7, 30))
        after = build_digest(s, CAMPAIGN, CONFIG, at(20, 7, 30))
    assert not before.view.after_deadline and after.view.after_deadline
    groups = {g.state: g.units for g in after.view.groups}
    assert groups["complete"] == ("Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân",)
    assert sum(len(units) for units in groups.values()) == 44
    assert "Liên đoàn Lao động quận Thanh Xuân" in groups["missing"]
    assert "Chưa gửi, đã quá hạn (43)" in render("digest", after.view).text


def test_no_digest_without_recipients(database) -> None:
    with database.session() as s:
        assert not queue_digest(s, CAMPAIGN, Config(), at(14, 8))
    assert outbox(database, "digest") == []


def test_other_mail_is_one_short_line(database) -> None:
    with database.session() as s:
        for n in range(7):
            mail, _ = dbm.record_received(
                s,
                source="test",
                uidvalidity=None,
                uid=None,
                message_id=f"<other-{n}@x.example>",
                sha256=f"{n:064d}",
                raw_path=f"raw/o{n}",
                size=10,
                from_addr=f"nguoi{n}@la.example",
                subject="Bản tin",
                received_at=at(12, 10),
            )
            dbm.add_event(
                s, "other-mail", at=at(12, 10, n), mail_id=mail.id, detail=f"nguoi{n}@la.example"
            )
    with database.session(write=False) as s:
        plan = build_digest(s, CAMPAIGN, CONFIG, at(13, 7, 30))
    [line] = [a for a in plan.view.needs_attention if a.kind_label == "Thư khác"]
    assert line.detail.startswith("7 thư không phải của đơn vị trong danh sách")
    assert "nguoi0@la.example (thư số 1)" in line.detail and "nguoi5@la.example" not in line.detail
    assert line.detail.endswith("; và 2 thư khác")
    assert line.when == at(12, 10, 6)
    assert plan.news


def test_past_campaign_gets_one_digest_that_says_so(database) -> None:
    late = datetime(2023, 3, 1, 8, 0, tzinfo=UTC)  # a daemon started a year later, 2022's file
    with database.session() as s:
        first = queue_digest(s, CAMPAIGN, CONFIG, late)
    with database.session() as s:
        again = queue_digest(s, CAMPAIGN, CONFIG, late + timedelta(days=1))
    assert first is not None and again is None  # once, not every day
    (row,) = outbox(database, "digest")
    text = parse(row.raw).get_body(("plain",)).get_content()
    assert "CẢNH BÁO: Đợt thi đua đang dùng" in text and "hết ngày 19/02/2022" in text
    assert "lập đợt thi đua năm nay" in text and "Danh sách đơn vị đang trống" not in text
    assert "mailbot " not in text
    html = parse(row.raw).get_body(("html",)).get_content()
    assert "Cảnh báo" in html and "lập đợt thi đua năm nay" in html
    # During the campaign no warning at all.
    with database.session(write=False) as s:
        assert build_digest(s, CAMPAIGN, CONFIG, at(14, 7, 30)).view.warnings == ()


def test_empty_register_is_said_in_the_digest(tmp_path) -> None:
    empty = dbm.open_database(tmp_path / "empty")
    try:
        with empty.session() as s:
            assert queue_digest(s, CAMPAIGN, CONFIG, at(14, 8)) is not None
        (row,) = outbox(empty, "digest")
        text = parse(row.raw).get_body(("plain",)).get_content()
        assert "CẢNH BÁO: Danh sách đơn vị đang trống" in text and "mailbot " not in text
    finally:
        empty.dispose()
