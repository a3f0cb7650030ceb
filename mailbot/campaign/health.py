"""Is the robot working on the right thing? A stale campaign file, an empty unit register.

One judgement, said three ways: a log line in the daemon, a `[CẢNH BÁO]` line in `mailbot
check`, a line in the staff digest.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from mailbot import db as dbm
from rules.campaign import Campaign

log = logging.getLogger(__name__)

# A deadline this far behind, with every milestone past, is probably last year's file.
STALE_CAMPAIGN_AFTER: Final = timedelta(days=60)


def campaign_stale(campaign: Campaign, now: datetime) -> bool:
    """The deadline is more than 60 days ago and every milestone is past."""
    if now - campaign.deadline <= STALE_CAMPAIGN_AFTER:
        return False
    today = now.astimezone(campaign.tz).date()
    return all(m.date < today for m in campaign.milestones)


@dataclass(frozen=True)
class HealthWarning:
    """One thing that is wrong: a code, an English log text (with the command that fixes it)
    and the Vietnamese text staff read in the digest (no commands: the operator acts)."""

    code: str  # "stale-campaign" | "empty-register"
    log: str
    text: str


def stale_campaign_warning(campaign: Campaign) -> HealthWarning:
    """The warning about a campaign whose dates are long past."""
    deadline = campaign.deadline.astimezone(campaign.tz)
    return HealthWarning(
        code="stale-campaign",
        log=(
            f"the active campaign {campaign.id} (year {campaign.year}, deadline "
            f"{deadline:%Y-%m-%d}) is long past: create this year's file with `mailbot "
            "campaign new YEAR` and set the `campaign` key of the configuration"
        ),
        text=(
            f"Đợt thi đua đang dùng ({campaign.name}, {campaign.deadline_words}) đã qua "
            "từ lâu, mọi mốc thời gian đều đã qua. Nếu Quận ủy đã có công văn phát động đợt "
            "mới, đề nghị đồng chí quản trị hệ thống lập đợt thi đua năm nay theo công văn đó."
        ),
    )


def empty_register_warning() -> HealthWarning:
    """The warning about a unit register with no unit."""
    return HealthWarning(
        code="empty-register",
        log=(
            "the unit register is empty: no sender can be recognised; load it with "
            "`mailbot units import FILE`"
        ),
        text=(
            "Danh sách đơn vị đang trống: chưa nhận ra được đơn vị nào theo địa chỉ gửi. Đề "
            "nghị gửi danh sách đơn vị (tên đơn vị, địa chỉ thư điện tử) để đồng chí quản trị "
            "hệ thống nhập vào."
        ),
    )


def health_warnings(campaign: Campaign, unit_count: int, now: datetime) -> list[HealthWarning]:
    """What is wrong with the campaign and the register at `now` (empty when all is well)."""
    out = []
    if campaign_stale(campaign, now):
        out.append(stale_campaign_warning(campaign))
    if unit_count == 0:
        out.append(empty_register_warning())
    return out


class DailyHealthLog:
    """The daemon's warning lines: at start, then at most once a (local) day."""

    def __init__(self, database: dbm.Database, campaign: Campaign) -> None:
        self._database = database
        self._campaign = campaign
        self._logged_on: date | None = None

    def check(self, now: datetime) -> list[HealthWarning]:
        """Log today's warnings unless already done today; the warnings logged now."""
        today = now.astimezone(self._campaign.tz).date()
        if self._logged_on == today:
            return []
        with self._database.session(write=False) as s:
            units = dbm.count_units(s)
        self._logged_on = today
        warnings = health_warnings(self._campaign, units, now)
        for warning in warnings:
            log.warning("%s", warning.log)
        return warnings


__all__ = [
    "DailyHealthLog",
    "STALE_CAMPAIGN_AFTER",
    "HealthWarning",
    "campaign_stale",
    "empty_register_warning",
    "health_warnings",
    "stale_campaign_warning",
]
