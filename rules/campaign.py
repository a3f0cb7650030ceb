"""Campaign definitions: one TOML file per year of the movement (forms, deadlines, schedule)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class FormSpec:
    code: str
    title: str
    level: str
    required: bool = True


@dataclass(frozen=True)
class Milestone:
    date: date
    text: str


@dataclass(frozen=True)
class Campaign:
    """One year of "Dân vận khéo": what must be sent, by when, and when to remind."""

    id: str
    name: str
    year: int
    deadline: datetime  # timezone-aware: the first moment that counts as late
    deadline_text: str
    timezone: str = "Asia/Ho_Chi_Minh"
    document: str = ""
    submission_address: str = ""
    accepted_formats: tuple[str, ...] = ("xlsx", "docx", "xls", "doc")
    forms: tuple[FormSpec, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    reminder_days: tuple[int, ...] = (7, 3, 1)
    reminder_time: str = "08:00"
    digest_time: str = "07:30"
    source: str | None = field(default=None, compare=False)

    @property
    def required_forms(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.forms if f.required)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def parse_campaign(text: str, source: str | None = None) -> Campaign:
    """Build a Campaign from the TOML text of a campaign file."""
    data = tomllib.loads(text)
    tz = ZoneInfo(data.get("timezone", "Asia/Ho_Chi_Minh"))
    deadline = datetime.fromisoformat(data["deadline"])
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=tz)
    reminders = data.get("reminders", {})
    return Campaign(
        id=data["id"],
        name=data["name"],
        year=int(data["year"]),
        deadline=deadline,
        deadline_text=data.get("deadline_text", deadline.strftime("%d/%m/%Y")),
        timezone=str(tz),
        document=data.get("document", ""),
        submission_address=data.get("submission_address", ""),
        accepted_formats=tuple(data.get("accepted_formats", ("xlsx", "docx", "xls", "doc"))),
        forms=tuple(FormSpec(**f) for f in data.get("forms", ())),
        milestones=tuple(
            Milestone(date=date.fromisoformat(str(m["date"])), text=m["text"])
            for m in data.get("milestones", ())
        ),
        reminder_days=tuple(int(d) for d in reminders.get("days_before", (7, 3, 1))),
        reminder_time=reminders.get("time", "08:00"),
        digest_time=data.get("digest", {}).get("time", "07:30"),
        source=source,
    )


def load_campaign(path: str | Path) -> Campaign:
    """Read a campaign file from disk."""
    p = Path(path)
    return parse_campaign(p.read_text(encoding="utf-8"), source=str(p))


def shipped_campaigns() -> list[Campaign]:
    """The campaign files shipped in rules/campaigns/, oldest year first."""
    folder = resources.files("rules") / "campaigns"
    found = [
        parse_campaign(item.read_text(encoding="utf-8"), source=item.name)
        for item in folder.iterdir()
        if item.name.endswith(".toml")
    ]
    return sorted(found, key=lambda c: c.year)


def newest_campaign() -> Campaign:
    """The newest shipped campaign: what `mailbot parse` judges against by default."""
    return shipped_campaigns()[-1]
