"""Reminders (and the digests beside them) through a whole campaign, time injected."""

from __future__ import annotations

import io
import json
from collections import Counter
from datetime import timedelta

import openpyxl
from sqlalchemy import select

from mailbot import db as dbm
from mailbot.campaign.digest import queue_digest
from mailbot.campaign.reminders import plan_reminders, queue_reminders
from mailbot.campaign.schedule import (
    REMINDER_JOB,
)
from mailbot.campaign.views import (
    REMINDER_FORMS_MISSING,
    REMINDER_FORMS_WITH_ERRORS,
    REMINDER_NOTHING_SENT,
)
from outbox_templates import render
from tests.mailbot.campaign.support import (
    CAMPAIGN,
    CONFIG,
    add_form,
    at,
    outbox,
    parse,
    unit_of,
)


def test_whole_campaign_reminders_and_digests(database) -> None:
    """Every 30 minutes from 1 to 25 February: who is reminded when, and the daily digests."""
    script = {  # when a unit's form arrives
        at(14, 10): [("hoi-lhpn", "M1", {}), ("hoi-lhpn", "M2", {})],
        at(15, 9): [("mttq", "M1", {}), ("ldld", "M1", {})],
        at(16, 11): [("mttq", "M2", {}), ("hoi-ccb", "M1", {"errors": 1})],
        at(17, 15): [("ldld", "M2", {}), ("hoi-ccb", "M1", {}), ("hoi-ccb", "M2", {})],
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
    # D-7 (Sunday 13/02) and D-1 (Saturday 19/02, the last day) go out on the Fridays before
    assert set(by_point) == {at(11, 8), at(17, 8), at(18, 8)}
    assert not {r for r in rows if r.created_at.astimezone(CAMPAIGN.tz).weekday() >= 5}
    d7 = {unit_of(r) for r in rows if r.created_at == at(11, 8)}
    d3 = {unit_of(r) for r in rows if r.created_at == at(17, 8)}
    d1 = {unit_of(r) for r in rows if r.created_at == at(18, 8)}
    assert len(d7) == by_point[at(11, 8)] == 44
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
    assert "Thời hạn còn 3 ngày, kể cả hôm nay." in text and "trước ngày 20/02/2022" in text
    assert text.startswith("Kính gửi: Hội Cựu chiến binh quận Thanh Xuân,")
    assert "Mẫu số 01 (cấp Quận) đơn vị gửi lúc 11:00 ngày 16/02/2022 có lỗi" in text
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

    [last] = [r for r in rows if r.created_at == at(18, 8) and unit_of(r) == "quan-doan"]
    last_text = parse(last.raw).get_body(("plain",)).get_content()
    assert "Thời hạn còn 2 ngày, kể cả hôm nay; hôm nay là ngày làm việc cuối cùng" in last_text
    assert "chỉ còn 1 ngày" not in last_text and "Quý đơn vị" not in last_text

    digests = outbox(database, "digest")
    days = [r.created_at.astimezone(CAMPAIGN.tz) for r in digests]
    # daily at 07:30 until the deadline's day, then only on days with news: the late forms of
    # the 22nd show on the 23rd
    assert days == [at(d, 7, 30) for d in range(1, 21)] + [at(23, 7, 30)]
    late = parse(digests[-1].raw).get_body(("plain",)).get_content()
    assert "Đảng ủy phường Kim Giang – Mẫu 02; 2 mô hình; 0 lỗi; gửi muộn" in late
    with database.session(write=False) as s:
        skipped = s.scalars(
            select(dbm.JobRun.point).where(
                dbm.JobRun.job == "digest", dbm.JobRun.detail.contains("nothing new")
            )
        ).all()
    assert skipped == ["2022-02-21", "2022-02-22", "2022-02-24"]
    assert all(json.loads(r.to_addrs) == list(CONFIG.digest.recipients) for r in digests)


def test_complete_units_are_never_reminded(database) -> None:
    for unit in ("mttq", "ldld"):
        add_form(database, unit, "M1", at(5))
        add_form(database, unit, "M2", at(5))
    add_form(database, "quan-doan", "M1", at(5))
    add_form(database, "quan-doan", "M2", at(5), awaiting=True, sender="x@gmail.example")
    with database.session(write=False) as s:
        plans = plan_reminders(s, CAMPAIGN, at(11, 8), point=at(11, 8), config=CONFIG)
    codes = {p.unit_code for p in plans}
    assert len(codes) == 41
    assert not codes & {"mttq", "ldld", "quan-doan"}  # quan-doan waits for staff, not for us


def test_each_case_gets_its_own_words_from_the_database(database) -> None:
    """Nothing sent, one form missing, a form with errors whose receipt went to the sender."""
    add_form(database, "ldld", "M1", at(15, 9))
    ccb_mail = add_form(database, "hoi-ccb", "M1", at(16, 11), errors=1)
    add_form(database, "hoi-ccb", "M2", at(16, 11))
    with database.session() as s:
        dbm.queue_outgoing(
            s,
            kind="receipt",
            message_id="<receipt-1@mailbot.test>",
            to_addrs=["vanphong.ccb@thanhxuan.example"],
            subject="Re: Biểu M1",
            raw=b"x",
            mail_id=ccb_mail,
            now=at(16, 11),
        )
    with database.session(write=False) as s:
        plans = {p.unit_code: p for p in plan_reminders(s, CAMPAIGN, at(17, 8), config=CONFIG)}
    assert plans["mttq"].view.case == REMINDER_NOTHING_SENT
    assert plans["ldld"].view.case == REMINDER_FORMS_MISSING
    ccb = plans["hoi-ccb"].view
    assert ccb.case == REMINDER_FORMS_WITH_ERRORS and ccb.missing_forms == ()
    assert ccb.error_forms[0].receipt_to == ("vanphong.ccb@thanhxuan.example",)
    assert [f.state for f in ccb.forms] == ["Đã nhận, có lỗi, chưa được tính", "Đã tiếp nhận"]
    texts = {code: render("reminder", plans[code].view).text for code in ("mttq", "ldld")}
    assert "chưa nhận được biểu mẫu nào của đơn vị" in texts["mttq"]
    assert "- Mẫu số 01 (cấp Quận): Đã tiếp nhận (nhận lúc 09:00 ngày 15/02/2022)" in texts["ldld"]
    ccb_text = render("reminder", ccb).text
    assert "thư xác nhận gửi đến vanphong.ccb@thanhxuan.example" in ccb_text
    assert "Kính gửi: Hội Cựu chiến binh quận Thanh Xuân," in ccb_text
    assert plans["hoi-ccb"].template_forms == ("M1",)
