"""Reminder points and missed points, over a real SQLite database, time injected."""

from __future__ import annotations

import json

from sqlalchemy import select

from mailbot import db as dbm
from mailbot.campaign.reminders import queue_reminders
from mailbot.campaign.schedule import (
    REMINDER_JOB,
    point_key,
    reminder_points,
    reminder_schedule,
)
from tests.mailbot.campaign.support import (
    CAMPAIGN,
    CONFIG,
    at,
    outbox,
    unit_of,
)


def test_reminder_points_are_d7_d3_d1_at_eight_local() -> None:
    assert reminder_points(CAMPAIGN) == [at(13, 8), at(17, 8), at(19, 8)]


def test_missed_point_sent_same_day_only(database) -> None:
    with database.session() as s:  # daemon first up at 10:00 on D-3: D-7 stale, D-3 sent
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(17, 10))) == 44
    with database.session(write=False) as s:
        assert dbm.job_done(s, REMINDER_JOB, point_key(CAMPAIGN, at(13, 8)))
    assert {r.created_at for r in outbox(database, "reminder")} == {at(17, 10)}


def test_missed_point_skipped_next_day(database) -> None:
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9))) == 0
        assert reminder_schedule(s, CAMPAIGN, at(18, 9)).due is None
    with database.session(write=False) as s:
        run = s.scalars(
            select(dbm.JobRun).where(dbm.JobRun.point == point_key(CAMPAIGN, at(17, 8)))
        ).one()
        assert json.loads(run.detail)["skipped"] == "missed"
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(19, 8, 1))) == 44
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(19, 9))) == 0
    assert outbox(database, "reminder")[0].created_at == at(19, 8, 1)


def test_manual_remind_sends_latest_pending_point(database) -> None:
    with database.session() as s:
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9), manual=True)) == 44
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(18, 9, 5), manual=True)) == 0
    assert {unit_of(r) for r in outbox(database, "reminder")} != set()
    with database.session() as s:  # never after the deadline, even by hand
        assert len(queue_reminders(s, CAMPAIGN, CONFIG, at(20, 0), manual=True)) == 0
