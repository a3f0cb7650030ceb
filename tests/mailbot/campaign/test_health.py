"""The health judgement: a campaign long past, an empty register."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from mailbot import db as dbm
from mailbot.campaign.health import DailyHealthLog, campaign_stale, health_warnings
from rules.campaign import Milestone, newest_campaign


def test_stale_only_when_deadline_long_past_and_every_milestone_past() -> None:
    c = newest_campaign()  # deadline 20/02/2022, milestones 20/09 and 01/10/2022
    assert not campaign_stale(c, datetime(2022, 4, 1, tzinfo=UTC))  # 40 days after
    assert not campaign_stale(c, datetime(2022, 6, 1, tzinfo=UTC))  # a milestone ahead
    assert not campaign_stale(c, datetime(2022, 10, 1, 3, tzinfo=UTC))  # the last one is today
    assert campaign_stale(c, datetime(2022, 10, 2, 3, tzinfo=UTC))
    bare = replace(c, milestones=())
    assert campaign_stale(bare, datetime(2022, 4, 22, tzinfo=UTC))
    late = replace(c, milestones=(Milestone(date(2023, 1, 1), "x"),))
    assert not campaign_stale(late, datetime(2022, 12, 1, tzinfo=UTC))


def test_warnings_name_the_fix() -> None:
    c = newest_campaign()
    now = datetime(2023, 3, 1, tzinfo=UTC)
    assert [w.code for w in health_warnings(c, 12, now)] == ["stale-campaign"]
    warnings = health_warnings(c, 0, now)
    assert [w.code for w in warnings] == ["stale-campaign", "empty-register"]
    assert "19/02/2022" in warnings[0].text and "quản trị hệ thống" in warnings[0].text
    assert "mailbot campaign new YEAR" in warnings[0].log
    assert "mailbot units import" in warnings[1].log and "quản trị" in warnings[1].text
    assert not any("mailbot" in w.text or "`" in w.text for w in warnings)  # staff run nothing
    assert health_warnings(c, 3, datetime(2022, 2, 1, tzinfo=UTC)) == []


def test_daemon_logs_at_start_then_once_a_day(tmp_path, caplog) -> None:
    database = dbm.open_database(tmp_path / "data")
    try:
        health = DailyHealthLog(database, newest_campaign())
        start = datetime(2023, 3, 1, 1, 0, tzinfo=UTC)
        with caplog.at_level(logging.WARNING, logger="mailbot.campaign.health"):
            assert [w.code for w in health.check(start)] == ["stale-campaign", "empty-register"]
            assert health.check(start + timedelta(hours=10)) == []  # same local day
            assert len(health.check(start + timedelta(days=1))) == 2
        lines = [r.getMessage() for r in caplog.records]
        assert len(lines) == 4
        assert "dan-van-kheo-2022" in lines[0] and "mailbot campaign new YEAR" in lines[0]
        assert "unit register is empty" in lines[1]
    finally:
        database.dispose()
