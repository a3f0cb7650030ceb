"""Reminders, digest and consolidated workbook over a real SQLite database, time injected."""

from __future__ import annotations

import email
import email.policy
import io
import json
from collections import Counter
from datetime import timedelta
from email.message import EmailMessage

import openpyxl
import pytest
from sqlalchemy import select

from mailbot import db as dbm
from mailbot.campaign.ops import (
    REMINDER_JOB,
    build_digest,
    plan_reminders,
    point_key,
    queue_digest,
    queue_reminders,
    reminder_points,
    reminder_schedule,
)
from mailbot.config import Config, DigestConfig
from rules.campaign import newest_campaign
from tests.mailbot.test_progress import add_form, at, open_seeded

CAMPAIGN = newest_campaign()
CONFIG = Config(
    digest=DigestConfig(recipients=("lanhdao@thanhxuan.example", "vanthu@thanhxuan.example"))
)


@pytest.fixture
def database(tmp_path):
    database = open_seeded(tmp_path / "data")
    yield database
    database.dispose()


def outbox(database: dbm.Database, kind: str) -> list[dbm.Outbox]:
    with database.session(write=False) as s:
        return list(
            s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == kind).order_by(dbm.Outbox.id))
        )


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def unit_of(row: dbm.Outbox) -> str:
    return row.dedupe_key.rsplit(":", 1)[1] if row.dedupe_key else ""


def test_reminder_points_are_d7_d3_d1_at_eight_local() -> None:
    assert reminder_points(CAMPAIGN) == [at(13, 8), at(17, 8), at(19, 8)]


def test_whole_campaign_reminders_and_digests(database) -> None:
    """Every 30 minutes from 1 to 25 February: who is reminded when, and the daily digests."""
    script = {  # when a unit's form arrives
        at(14, 10): [("hoi-lhpn", "M1", {}), ("hoi-lhpn", "M2", {})],
        at(15, 9): [("mttq", "M1", {}), ("ldld", "M1", {})],
        at(16, 11): [("mttq", "M2", {}), ("hoi-ccb", "M1", {"errors": 1})],
        at(18, 15): [("ldld", "M2", {}), ("hoi-ccb", "M1", {}), ("hoi-ccb", "M2", {})],
        at(22, 9): [("p-kim-giang", "M1", {}), ("p-kim-giang", "M2", {})],  # late
    }
    t = at(1, 0)
    while t <= at(25, 0):
        for when, forms in script.items():
            if when == t:
                for unit, form, kw in forms:
                    add_form(database, unit, form, t, **kw)
        with database.session() as s:
            queue_reminders(s, CAMPAIGN, CONFIG, t)
        with database.session() as s:
            queue_digest(s, CAMPAIGN, CONFIG, t)
        t += timedelta(minutes=30)

    rows = outbox(database, "reminder")
    by_point = Counter(r.created_at.astimezone(CAMPAIGN.tz) for r in rows)
    assert set(by_point) == {at(13, 8), at(17, 8), at(19, 8)}
    d7 = {unit_of(r) for r in rows if r.created_at == at(13, 8)}
    d3 = {unit_of(r) for r in rows if r.created_at == at(17, 8)}
    d1 = {unit_of(r) for r in rows if r.created_at == at(19, 8)}
    assert len(d7) == by_point[at(13, 8)] == 38
    assert d3 == d7 - {"hoi-lhpn", "mttq"}  # ldld partial and hoi-ccb with errors: reminded
    assert d1 == d7 - {"hoi-lhpn", "mttq", "ldld", "hoi-ccb"}
    assert len(rows) == len({r.dedupe_key for r in rows})
    assert all(r.created_at < CAMPAIGN.deadline for r in rows)
    with database.session(write=False) as s:
        runs = s.scalars(select(dbm.JobRun).where(dbm.JobRun.job == REMINDER_JOB)).all()
    assert len(runs) == 3

    # the D-3 reminder to the unit whose M1 had errors names the open problem and attaches
    # only the forms still missing a valid version
    [ccb] = [r for r in rows if r.created_at == at(17, 8) and unit_of(r) == "hoi-ccb"]
    msg = parse(ccb.raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["To"] == "hoiccb@thanhxuan.example"
    text = msg.get_body(("plain",)).get_content()
    assert "Dòng này chưa ghi tên tập thể, cá nhân." in text
    assert "còn 3 ngày" in text and "trước ngày 20/02/2022" in text
    names = sorted(p.get_filename() for p in msg.iter_attachments())
    assert names == [
        "Mẫu số 01 - cấp Quận - 2022.docx",
        "Mẫu số 01 - cấp Quận - 2022.xlsx",
        "Mẫu số 02 - cấp cơ sở - 2022.docx",
        "Mẫu số 02 - cấp cơ sở - 2022.xlsx",
    ]
    [ldld] = [r for r in rows if r.created_at == at(17, 8) and unit_of(r) == "ldld"]
    ldld_names = [p.get_filename() for p in parse(ldld.raw).iter_attachments()]
    assert ldld_names == ["Mẫu số 02 - cấp cơ sở - 2022.docx", "Mẫu số 02 - cấp cơ sở - 2022.xlsx"]
    wb = openpyxl.load_workbook(
        io.BytesIO(
            next(
                p for p in parse(ldld.raw).iter_attachments() if p.get_filename().endswith(".xlsx")
            ).get_content()
        )
    )
    assert "M2" in wb.sheetnames
    wb.close()

    digests = outbox(database, "digest")
    days = [r.created_at.astimezone(CAMPAIGN.tz) for r in digests]
    # daily at 07:30 until the deadline's day, then only on days with news: the late forms of
    # the 22nd show on the 23rd
    assert days == [at(d, 7, 30) for d in range(1, 21)] + [at(23, 7, 30)]
    late = parse(digests[-1].raw).get_body(("plain",)).get_content()
    assert "Đảng ủy phường Kim Giang – Mẫu 02; 2 mô hình; 0 lỗi; nộp muộn" in late
    with database.session(write=False) as s:
        skipped = s.scalars(
            select(dbm.JobRun.point).where(
                dbm.JobRun.job == "digest", dbm.JobRun.detail.contains("nothing new")
            )
        ).all()
    assert skipped == ["2022-02-21", "2022-02-22", "2022-02-24"]
    assert all(json.loads(r.to_addrs) == list(CONFIG.digest.recipients) for r in digests)


def test_missed_point_sent_same_day_only(database) -> None:
    with database.session() as s:  # daemon first up at 10:00 on D-3: D-7 stale, D-3 sent
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(17, 10)) == 38
    with database.session(write=False) as s:
        assert dbm.job_done(s, REMINDER_JOB, point_key(CAMPAIGN, at(13, 8)))
    assert {r.created_at for r in outbox(database, "reminder")} == {at(17, 10)}


def test_missed_point_skipped_next_day(database) -> None:
    with database.session() as s:
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9)) == 0
        assert reminder_schedule(s, CAMPAIGN, at(18, 9)).due is None
    with database.session(write=False) as s:
        run = s.scalars(
            select(dbm.JobRun).where(dbm.JobRun.point == point_key(CAMPAIGN, at(17, 8)))
        ).one()
        assert json.loads(run.detail)["skipped"] == "missed"
    with database.session() as s:
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(19, 8, 1)) == 38
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(19, 9)) == 0
    assert outbox(database, "reminder")[0].created_at == at(19, 8, 1)


def test_manual_remind_sends_latest_pending_point(database) -> None:
    with database.session() as s:
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9), manual=True) == 38
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9, 5), manual=True) == 0
    assert {unit_of(r) for r in outbox(database, "reminder")} != set()
    with database.session() as s:  # never after the deadline, even by hand
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(20, 0), manual=True) == 0


def test_complete_units_are_never_reminded(database) -> None:
    for unit in ("mttq", "ldld"):
        add_form(database, unit, "M1", at(5))
        add_form(database, unit, "M2", at(5))
    add_form(database, "quan-doan", "M1", at(5))
    add_form(database, "quan-doan", "M2", at(5), awaiting=True, sender="x@gmail.example")
    with database.session(write=False) as s:
        plans = plan_reminders(s, CAMPAIGN, at(13, 8), point=at(13, 8), config=CONFIG)
    codes = {p.unit_code for p in plans}
    assert len(codes) == 35
    assert not codes & {"mttq", "ldld", "quan-doan"}  # quan-doan waits for staff, not for us


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
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(13, 8)) > 0
        reminder = s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == "reminder")).first()
        dbm.record_bounce(
            s,
            original_message_id=reminder.message_id,
            recipient=reminder.recipients[0],
            status="5.1.1",
            action="failed",
            diagnostic="no such user",
            received_at=at(13, 9),
            mail_id=None,
        )
    with database.session() as s:
        assert queue_digest(s, CAMPAIGN, CONFIG, at(14, 7, 30))
        assert not queue_digest(s, CAMPAIGN, CONFIG, at(14, 9))  # once a day
    [row] = outbox(database, "digest")
    msg = parse(row.raw)
    assert msg["Auto-Submitted"] == "auto-generated"
    assert msg["To"] == "lanhdao@thanhxuan.example, vanthu@thanhxuan.example"
    assert "1/38 đơn vị đã gửi đủ" in msg["Subject"]
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "- Đã gửi đủ: 1" in text and "- Có lỗi cần sửa: 1" in text
    assert "- Chờ xác nhận người gửi: 1" in text
    assert "Mẫu số 01 – cấp Quận: Kinh tế: 2; Văn hóa - Xã hội: 1; An ninh - Quốc phòng: 1" in text
    assert "Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân" in text  # arrivals
    assert "la@nowhere.example" in text and "không xác định được đơn vị gửi" in text
    assert "bt@gmail.example gửi biểu thay cho Quận đoàn Thanh Xuân" in text
    assert f"Thư nhắc hạn gửi {reminder.recipients[0]}" in text
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
        status = wb["Tình hình nộp"]
        rows = {r[0]: r for r in status.iter_rows(min_row=6, values_only=True) if r[0]}
        assert rows["mttq"][2] == "Đã đủ"
        assert rows["hoi-ccb"][2] == "Có lỗi"
        assert rows["quan-doan"][2] == "Chờ xác nhận"
        assert rows["cb-bhxh"][3] == "Chưa nộp"
        assert list(rows)[:3] == ["cb-bhxh", "cb-thi-hanh-an", "cb-thue"]  # register order
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
    assert before.view.overdue_units == () and not before.view.after_deadline
    assert len(after.view.overdue_units) == 37
    assert "Liên đoàn Lao động quận Thanh Xuân – Chưa gửi" in after.view.overdue_units


def test_no_digest_without_recipients(database) -> None:
    with database.session() as s:
        assert not queue_digest(s, CAMPAIGN, Config(), at(14, 8))
    assert outbox(database, "digest") == []
