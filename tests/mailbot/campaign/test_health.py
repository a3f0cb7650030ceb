"""The health judgement: a campaign long past, an empty register."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

from mailbot.campaign.health import campaign_stale, health_warnings
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
    assert "mailbot campaign new NĂM" in warnings[0].text and "20/02/2022" in warnings[0].text
    assert "mailbot units import" in warnings[1].text
    assert health_warnings(c, 3, datetime(2022, 2, 1, tzinfo=UTC)) == []
