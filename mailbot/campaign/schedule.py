"""When campaign jobs are due: reminder points, the digest time, local time and days left."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.config import Config
from rules.campaign import Campaign

REMINDER_JOB: Final = "reminder"
DIGEST_JOB: Final = "digest"
MANUAL_DIGEST_JOB: Final = "digest-manual"


def local(when: datetime, campaign: Campaign) -> datetime:
    """An aware moment in the campaign's timezone."""
    if when.tzinfo is None:
        raise ValueError("pass a timezone-aware datetime")
    return when.astimezone(campaign.tz)


def parse_hhmm(text: str) -> time:
    """'08:00' -> time(8, 0); raises ValueError for anything else."""
    hours, sep, minutes = text.strip().partition(":")
    if not sep:
        raise ValueError(f"not a HH:MM time: {text!r}")
    return time(int(hours), int(minutes))


def reminder_points(campaign: Campaign) -> list[datetime]:
    """The reminder moments (aware, oldest first): N days before the deadline's day, local time.

    The deadline "trước ngày 20/02/2022" is 20/02 00:00, so D-1 at 08:00 is 19/02 08:00.
    Points at or after the deadline are dropped: never remind after it.
    """
    tz = campaign.tz
    deadline_day = campaign.deadline.astimezone(tz).date()
    at = parse_hhmm(campaign.reminder_time)
    points = {
        datetime.combine(deadline_day - timedelta(days=d), at, tzinfo=tz)
        for d in campaign.reminder_days
    }
    return sorted(p for p in points if p < campaign.deadline)


def point_key(campaign: Campaign, point: datetime) -> str:
    """The job_runs point of a reminder: '<campaign-id>:<local ISO time>'."""
    return f"{campaign.id}:{local(point, campaign).isoformat()}"


def digest_time(config: Config, campaign: Campaign) -> time:
    """When the daily digest goes out: the config's time, else the campaign's."""
    return parse_hhmm(config.digest.time or campaign.digest_time)


def days_left(campaign: Campaign, now: datetime) -> int:
    """Whole days (rounded up) until the deadline; 0 once it has passed."""
    seconds = (campaign.deadline - now).total_seconds()
    return max(0, math.ceil(seconds / 86400))


@dataclass(frozen=True)
class ReminderPoints:
    """What the reminder schedule asks for at a moment."""

    due: datetime | None  # the point to send now, if any
    stale: tuple[datetime, ...] = ()  # past points not handled and no longer useful
    upcoming: datetime | None = None  # the next point after now


def reminder_schedule(
    session: Session, campaign: Campaign, now: datetime, *, manual: bool = False
) -> ReminderPoints:
    """Which point is due at `now` and which missed ones are stale.

    Scheduled (manual=False): the latest past point not yet handled, if `now` is before the
    deadline and on the same local day as the point (a daemon down at 08:00 still sends at
    10:00, but not the next day). By hand (manual=True): the latest past point not yet handled,
    whatever the day, as long as the deadline has not passed. Every other unhandled past point
    is stale.
    """
    points = reminder_points(campaign)
    past = [p for p in points if p <= now]
    upcoming = next((p for p in points if p > now), None)
    pending = [p for p in past if not dbm.job_done(session, REMINDER_JOB, point_key(campaign, p))]
    due = None
    if pending and now < campaign.deadline:
        latest = pending[-1]
        same_day = local(latest, campaign).date() == local(now, campaign).date()
        if manual or same_day:
            due = latest
    stale = tuple(p for p in pending if p != due)
    return ReminderPoints(due=due, stale=stale, upcoming=upcoming)


def campaign_over(campaign: Campaign, now: datetime) -> bool:
    """After the last milestone (or 60 days after the deadline without one): no more digests."""
    if campaign.milestones:
        last = max(m.date for m in campaign.milestones)
        return local(now, campaign).date() > last
    return now > campaign.deadline + timedelta(days=60)


def digest_due(session: Session, campaign: Campaign, config: Config, now: datetime) -> str | None:
    """Today's digest point (local date) when it is due and not yet handled, else None."""
    if not config.digest.recipients or campaign_over(campaign, now):
        return None
    here = local(now, campaign)
    if here.time() < digest_time(config, campaign):
        return None
    point = here.date().isoformat()
    if dbm.job_done(session, DIGEST_JOB, point):
        return None
    return point
