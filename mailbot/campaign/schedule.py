"""When campaign jobs are due: reminder points, the digest time, local time and days left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.config import Config
from rules.campaign import VN_WEEKDAYS, Campaign, last_day

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


def working_day_on_or_before(campaign: Campaign, day: date) -> date:
    """`day` itself when it is a working day, else the working day before it."""
    for _ in range(366):  # a campaign file listing a whole year of holidays is a typo
        if campaign.is_working_day(day):
            return day
        day -= timedelta(days=1)
    raise ValueError(f"no working day in the year before {day:%d/%m/%Y}")


@dataclass(frozen=True)
class ReminderPoint:
    """One reminder moment: when it goes out and which `days_before` of the file it serves."""

    at: datetime  # aware, local reminder time, always on a working day
    days_before: tuple[int, ...]  # largest first: (3, 1) when D-3 and D-1 land on one day
    planned: tuple[date, ...]  # the days those points fell on in the file, oldest first

    @property
    def moved_from(self) -> tuple[date, ...]:
        """The planned days that were not working days (the point moved off them)."""
        return tuple(d for d in self.planned if d != self.at.date())


def reminder_plan(campaign: Campaign) -> list[ReminderPoint]:
    """The reminder moments, oldest first, each moved off weekends and holidays.

    A point is N days before the deadline's day at the reminder time: "trước ngày 20/02/2022"
    is 20/02 00:00, so D-1 is 19/02. A point on a Saturday, Sunday or holiday of the campaign
    file goes out on the working day before (D-1 on Saturday 19/02 goes out Friday 18/02);
    points that land on one day go out once. Points at or after the deadline are dropped.
    """
    tz = campaign.tz
    deadline_day = campaign.deadline.astimezone(tz).date()
    at = parse_hhmm(campaign.reminder_time)
    by_day: dict[date, list[tuple[int, date]]] = {}
    for n in sorted(set(campaign.reminder_days), reverse=True):
        planned = deadline_day - timedelta(days=n)
        if datetime.combine(planned, at, tzinfo=tz) >= campaign.deadline:
            continue
        by_day.setdefault(working_day_on_or_before(campaign, planned), []).append((n, planned))
    return [
        ReminderPoint(
            at=datetime.combine(day, at, tzinfo=tz),
            days_before=tuple(n for n, _ in served),
            planned=tuple(p for _, p in served),
        )
        for day, served in sorted(by_day.items())
    ]


def reminder_points(campaign: Campaign) -> list[datetime]:
    """The reminder moments (aware, oldest first) on working days: see reminder_plan."""
    return [p.at for p in reminder_plan(campaign)]


def point_key(campaign: Campaign, point: datetime) -> str:
    """The job_runs point of a reminder: '<campaign-id>:<local ISO time>'."""
    return f"{campaign.id}:{local(point, campaign).isoformat()}"


def digest_time(config: Config, campaign: Campaign) -> time:
    """When the daily digest goes out: the config's time, else the campaign's."""
    return parse_hhmm(config.digest.time or campaign.digest_time)


def days_left(campaign: Campaign, now: datetime) -> int:
    """Days left counted plainly, today included: 2 on Friday for a deadline ending Saturday.

    1 on the last day itself, 0 once the deadline has passed.
    """
    if now >= campaign.deadline:
        return 0
    today = local(now, campaign).date()
    return (last_day(campaign.deadline, campaign.tz) - today).days + 1


def last_working_day(campaign: Campaign) -> date:
    """The last working day on or before the last day still on time."""
    return working_day_on_or_before(campaign, last_day(campaign.deadline, campaign.tz))


@dataclass(frozen=True)
class ReminderPoints:
    """What the reminder schedule asks for at a moment."""

    due: datetime | None  # the point to send now, if any
    stale: tuple[datetime, ...] = ()  # past points not handled and no longer useful
    upcoming: datetime | None = None  # the next point after now
    day_off: bool = False  # today is a weekend or holiday: no reminder goes out today


def reminder_schedule(
    session: Session, campaign: Campaign, now: datetime, *, manual: bool = False
) -> ReminderPoints:
    """Which point is due at `now` and which missed ones are stale.

    Scheduled (manual=False): the latest past point not yet handled, if `now` is before the
    deadline and on the same local day as the point (a daemon down at 08:00 still sends at
    10:00, but not the next day). By hand (manual=True): the latest past point not yet handled,
    whatever the day, as long as the deadline has not passed. Never on a weekend or holiday:
    points only fall on working days, so a daemon back on Saturday records Friday's point as
    stale; by hand on a day off nothing is sent and nothing is recorded (the latest point
    stays pending for the next working day). Every other unhandled past point is stale.
    """
    points = reminder_points(campaign)
    past = [p for p in points if p <= now]
    upcoming = next((p for p in points if p > now), None)
    pending = [p for p in past if not dbm.job_done(session, REMINDER_JOB, point_key(campaign, p))]
    today = local(now, campaign).date()
    day_off = not campaign.is_working_day(today)
    due = None
    if pending and now < campaign.deadline:
        latest = pending[-1]
        same_day = local(latest, campaign).date() == today
        if manual and day_off:
            pending = pending[:-1]  # kept for the next working day
        elif manual or same_day:
            due = latest
    stale = tuple(p for p in pending if p != due)
    return ReminderPoints(due=due, stale=stale, upcoming=upcoming, day_off=day_off)


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


def day_words(day: date) -> str:
    """'thứ Bảy 19/02/2022': a day as a letter names it."""
    return f"{VN_WEEKDAYS[day.weekday()]} {day:%d/%m/%Y}"


def schedule_lines(campaign: Campaign) -> list[str]:
    """The reminder schedule as staff read it, one line per point, moved days said.

    'nhắc lần 3 (trước hạn 1 ngày): thứ Sáu 18/02/2022 lúc 08:00 (dời từ thứ Bảy 19/02/2022,
    nghỉ cuối tuần)'. The days before count from the deadline's day, as the campaign file does.
    """
    lines = []
    for n, point in enumerate(reminder_plan(campaign), start=1):
        here = local(point.at, campaign)
        served = " và ".join(str(d) for d in point.days_before)
        line = f"nhắc lần {n} (trước hạn {served} ngày): {day_words(here.date())} lúc {here:%H:%M}"
        moved = [
            f"{day_words(d)}, {'nghỉ lễ' if d in campaign.holidays else 'nghỉ cuối tuần'}"
            for d in point.moved_from
        ]
        if moved:
            line += f" (dời từ {'; '.join(moved)})"
        lines.append(line)
    return lines
