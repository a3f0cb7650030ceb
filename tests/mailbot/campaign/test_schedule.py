"""Reminder points on working days and missed points, over a real SQLite database, time injected."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, datetime

from sqlalchemy import select

from mailbot import db as dbm
from mailbot.campaign.reminders import plan_reminders, queue_reminders
from mailbot.campaign.schedule import (
    REMINDER_JOB,
    days_left,
    last_working_day,
    point_key,
    reminder_plan,
    reminder_points,
    reminder_schedule,
    schedule_lines,
)
from rules.campaign import Campaign
from tests.mailbot.campaign.support import (
    CAMPAIGN,
    CONFIG,
    TZ,
    at,
    outbox,
    unit_of,
)


def _with_deadline(day: date, *, days: tuple[int, ...] = (7, 3, 1)) -> Campaign:
    """The 2022 campaign (its holidays kept) with another deadline and reminder days."""
    deadline = datetime(day.year, day.month, day.day, tzinfo=TZ)
    return replace(CAMPAIGN, deadline=deadline, reminder_days=days)


def test_points_move_off_the_weekend_to_the_working_day_before() -> None:
    # "trước ngày 20/02/2022" (a Sunday): D-7 is Sunday 13/02, D-3 Thursday 17/02, D-1
    # Saturday 19/02, the last day itself.
    assert reminder_points(CAMPAIGN) == [at(11, 8), at(17, 8), at(18, 8)]
    plan = reminder_plan(CAMPAIGN)
    assert [p.moved_from for p in plan] == [(date(2022, 2, 13),), (), (date(2022, 2, 19),)]
    assert all(CAMPAIGN.is_working_day(p.at.date()) for p in plan)


def test_a_point_on_a_holiday_moves_before_the_holiday() -> None:
    # Deadline 08/02/2022: D-7 is Tuesday 01/02, in Tết (31/01-04/02 off in the campaign
    # file), and 29-30/01 are a weekend: it goes out Friday 28/01.
    campaign = _with_deadline(date(2022, 2, 8))
    points = reminder_plan(campaign)
    assert points[0].at == datetime(2022, 1, 28, 8, 0, tzinfo=TZ)
    assert date(2022, 2, 1) in points[0].moved_from


def test_two_points_landing_on_one_day_go_out_once() -> None:
    # Deadline Tuesday 15/03/2022: D-3 is Saturday 12/03, D-2 Sunday 13/03, D-4 Friday 11/03.
    campaign = _with_deadline(date(2022, 3, 15), days=(4, 3, 2))
    [point] = reminder_plan(campaign)
    assert point.at == datetime(2022, 3, 11, 8, 0, tzinfo=TZ)
    assert point.days_before == (4, 3, 2)
    assert point.moved_from == (date(2022, 3, 12), date(2022, 3, 13))
    line = schedule_lines(campaign)[0]
    assert line.startswith("nhắc lần 1 (trước hạn 4 và 3 và 2 ngày): thứ Sáu 11/03/2022")


def test_days_left_are_counted_plainly_today_included() -> None:
    assert days_left(CAMPAIGN, at(17, 8)) == 3  # Thursday, Friday, Saturday
    assert days_left(CAMPAIGN, at(18, 8)) == 2
    assert days_left(CAMPAIGN, at(19, 23, 59)) == 1
    assert days_left(CAMPAIGN, at(20, 0)) == 0
    assert last_working_day(CAMPAIGN) == date(2022, 2, 18)


def test_deadline_on_saturday_the_friday_reminder_says_it_is_the_last_working_day(
    database,
) -> None:
    with database.session(write=False) as s:
        [plan, *_] = plan_reminders(s, CAMPAIGN, at(18, 8), config=CONFIG)
        [before, *_] = plan_reminders(s, CAMPAIGN, at(17, 8), config=CONFIG)
    assert plan.point == at(18, 8)
    assert plan.view.days_left == 2 and plan.view.last_working_day
    assert plan.view.last_day == "hết ngày thứ Bảy 19/02/2022"
    assert before.view.days_left == 3 and not before.view.last_working_day


def test_schedule_lines_show_moved_days() -> None:
    assert schedule_lines(CAMPAIGN) == [
        "nhắc lần 1 (trước hạn 7 ngày): thứ Sáu 11/02/2022 lúc 08:00 "
        "(dời từ Chủ nhật 13/02/2022, nghỉ cuối tuần)",
        "nhắc lần 2 (trước hạn 3 ngày): thứ Năm 17/02/2022 lúc 08:00",
        "nhắc lần 3 (trước hạn 1 ngày): thứ Sáu 18/02/2022 lúc 08:00 "
        "(dời từ thứ Bảy 19/02/2022, nghỉ cuối tuần)",
    ]
    tet = schedule_lines(_with_deadline(date(2022, 2, 8), days=(7,)))
    assert tet == [
        "nhắc lần 1 (trước hạn 7 ngày): thứ Sáu 28/01/2022 lúc 08:00 "
        "(dời từ thứ Ba 01/02/2022, nghỉ lễ)"
    ]


def test_missed_point_sent_same_day_only(database) -> None:
    with database.session() as s:  # daemon first up at 10:00 on D-3: D-7 stale, D-3 sent
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(17, 10))) == 44
    with database.session(write=False) as s:
        assert dbm.job_done(s, REMINDER_JOB, point_key(CAMPAIGN, at(11, 8)))
    assert {r.created_at for r in outbox(database, "reminder")} == {at(17, 10)}


def test_missed_point_skipped_next_day(database) -> None:
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 7))) == 0
        assert reminder_schedule(s, CAMPAIGN, at(18, 7)).due is None
    with database.session(write=False) as s:
        run = s.scalars(
            select(dbm.JobRun).where(dbm.JobRun.point == point_key(CAMPAIGN, at(17, 8)))
        ).one()
        assert json.loads(run.detail)["skipped"] == "missed"
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 8, 1))) == 44
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9))) == 0
    assert outbox(database, "reminder")[0].created_at == at(18, 8, 1)


def test_catch_up_on_a_weekend_sends_nothing_and_records_fridays_point(database) -> None:
    """Down all Friday, back on Saturday 19/02 (the last day): no reminder on a day off."""
    with database.session() as s:
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(19, 8, 30)) == []
        schedule = reminder_schedule(s, CAMPAIGN, at(19, 9))
    assert schedule.due is None and schedule.day_off and schedule.stale == ()
    with database.session(write=False) as s:
        runs = {r.point: json.loads(r.detail) for r in s.scalars(select(dbm.JobRun))}
    assert set(runs) == {point_key(CAMPAIGN, p) for p in (at(11, 8), at(17, 8), at(18, 8))}
    assert all(d["skipped"] == "missed" for d in runs.values())
    assert outbox(database, "reminder") == []


def test_manual_remind_waits_for_a_working_day(database) -> None:
    with database.session() as s:  # Sunday 13/02 by hand: nothing sent, nothing recorded
        assert queue_reminders(s, CAMPAIGN, CONFIG, at(13, 9), manual=True) == []
        schedule = reminder_schedule(s, CAMPAIGN, at(13, 9), manual=True)
        assert schedule.day_off and schedule.due is None and schedule.stale == ()
    with database.session(write=False) as s:
        assert not dbm.job_done(s, REMINDER_JOB, point_key(CAMPAIGN, at(11, 8)))
    with database.session() as s:  # Monday 14/02 by hand: Friday's point goes out
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(14, 9), manual=True)) == 44
    assert {r.created_at for r in outbox(database, "reminder")} == {at(14, 9)}


def test_manual_remind_sends_latest_pending_point(database) -> None:
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(17, 9), manual=True)) == 44
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(17, 9, 5), manual=True)) == 0
    assert {unit_of(r) for r in outbox(database, "reminder")} != set()
    with database.session() as s:  # never after the deadline, even by hand
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(20, 0), manual=True)) == 0
