"""Is the robot working on the right thing? A stale campaign file, an empty unit register.

One judgement, said three ways: a log line in the daemon, a `[CẢNH BÁO]` line in `mailbot
check`, a line in the staff digest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from rules.campaign import Campaign

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
    """One thing that is wrong: a code, an English log text and the Vietnamese text for people."""

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
            f"Đợt thi đua đang dùng ({campaign.name}, hạn nộp {deadline:%d/%m/%Y}) đã qua "
            "từ lâu, mọi mốc thời gian đều đã qua: nếu đây là đợt mới, đề nghị tạo tệp đợt "
            "thi đua bằng lệnh `mailbot campaign new NĂM` và đặt khóa campaign trong tệp "
            "cấu hình."
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
            "Danh sách đơn vị đang trống: chưa nhận ra được đơn vị nào theo địa chỉ gửi; đề "
            "nghị nhập danh sách bằng lệnh `mailbot units import TỆP` (CSV/XLSX: code, name, "
            "emails, aliases)."
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


__all__ = [
    "STALE_CAMPAIGN_AFTER",
    "HealthWarning",
    "campaign_stale",
    "empty_register_warning",
    "health_warnings",
    "stale_campaign_warning",
]
