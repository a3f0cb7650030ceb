"""Campaign definitions: one TOML file per year of the movement (forms, deadlines, schedule)."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

# Python's weekday() order, Monday first, as an official letter writes the day.
VN_WEEKDAYS = ("thứ Hai", "thứ Ba", "thứ Tư", "thứ Năm", "thứ Sáu", "thứ Bảy", "Chủ nhật")


def last_day(deadline: datetime, tz: tzinfo) -> date:
    """The last local day still on time: the day before a cut-off at midnight."""
    return (deadline.astimezone(tz) - timedelta(microseconds=1)).date()


def deadline_words(deadline: datetime, tz: tzinfo) -> str:
    """The deadline as units read it: 'hạn cuối: hết ngày 19/02/2022 (thứ Bảy)'.

    A cut-off "trước ngày 20/02/2022" (late from 20/02 00:00) ends with 19/02; a cut-off in
    the middle of a day ("2022-02-20T17:00") is said with its hour.
    """
    local = deadline.astimezone(tz)
    if local.time() == datetime.min.time():
        day = last_day(deadline, tz)
        return f"hạn cuối: hết ngày {day:%d/%m/%Y} ({VN_WEEKDAYS[day.weekday()]})"
    day = local.date()
    return f"hạn cuối: trước {local:%H:%M} ngày {day:%d/%m/%Y} ({VN_WEEKDAYS[day.weekday()]})"


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
    # The letter that asks for the forms, named in every mail: "719-CV/QU", 2022-01-07.
    letter_number: str = ""
    letter_date: date | None = None
    submission_address: str = ""
    accepted_formats: tuple[str, ...] = ("xlsx", "docx", "xls", "doc")
    forms: tuple[FormSpec, ...] = ()
    milestones: tuple[Milestone, ...] = ()
    reminder_days: tuple[int, ...] = (7, 3, 1)
    reminder_time: str = "08:00"
    digest_time: str = "07:30"
    # Days off besides Saturdays and Sundays (Tết, national holidays): no reminder goes out.
    holidays: tuple[date, ...] = ()
    source: str | None = field(default=None, compare=False)

    @property
    def letter_words(self) -> str:
        """'Công văn số 719-CV/QU ngày 07/01/2022': the letter as every mail names it."""
        if self.letter_number:
            day = f" ngày {self.letter_date:%d/%m/%Y}" if self.letter_date else ""
            return f"Công văn số {self.letter_number}{day}"
        return self.document

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a holiday listed in the campaign file."""
        return day.weekday() < 5 and day not in self.holidays

    @property
    def required_forms(self) -> tuple[str, ...]:
        return tuple(f.code for f in self.forms if f.required)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def deadline_words(self) -> str:
        """'hạn cuối: hết ngày 19/02/2022 (thứ Bảy)': every text naming the deadline uses it."""
        return deadline_words(self.deadline, self.tz)

    @property
    def form_codes(self) -> tuple[str, ...]:
        """Every form of the campaign, in its order."""
        return tuple(f.code for f in self.forms)

    def forms_owed(self, unit_forms: Sequence[str] = ()) -> tuple[str, ...]:
        """The forms one unit must send: its own list from the register, else the required ones.

        Codes the campaign does not know are left out; the campaign's order is kept.
        """
        own = {c.strip().upper() for c in unit_forms if c and c.strip()}
        if own:
            chosen = tuple(c for c in self.form_codes if c in own)
            if chosen:
                return chosen
        return self.required_forms


class CampaignError(ValueError):
    """A campaign file that cannot be read; the message says where, in Vietnamese."""


def parse_campaign(text: str, source: str | None = None, timezone: str | None = None) -> Campaign:
    """Build a Campaign from the TOML text of a campaign file (`timezone` overrides its own)."""
    where = source or "tệp đợt thi đua"
    try:
        return _parse_campaign(text, source, timezone)
    except tomllib.TOMLDecodeError as exc:
        raise CampaignError(f"{where}: không đúng cú pháp TOML ({exc})") from exc
    except KeyError as exc:
        raise CampaignError(f"{where}: thiếu khóa {exc.args[0]!r}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise CampaignError(f"{where}: giá trị không hợp lệ ({exc})") from exc


def _parse_campaign(text: str, source: str | None, timezone: str | None) -> Campaign:
    data = tomllib.loads(text)
    tz = ZoneInfo(timezone or data.get("timezone", "Asia/Ho_Chi_Minh"))
    deadline = datetime.fromisoformat(str(data["deadline"]))
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
        letter_number=str(data.get("letter_number", "")),
        letter_date=_date_or_none(data.get("letter_date")),
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
        holidays=tuple(sorted(date.fromisoformat(str(d)) for d in data.get("holidays", ()))),
        source=source,
    )


def _date_or_none(value: object) -> date | None:
    if value is None or value == "":
        return None
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def load_campaign(path: str | Path, timezone: str | None = None) -> Campaign:
    """Read a campaign file from disk."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignError(f"không đọc được tệp đợt thi đua {p}: {exc}") from exc
    return parse_campaign(text, source=str(p), timezone=timezone)


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


def _shift_year(value: date, years: int) -> date:
    try:
        return value.replace(year=value.year + years)
    except ValueError:  # 29 February into a common year
        return value.replace(year=value.year + years, day=28)


def _toml_str(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(value, ensure_ascii=False)


def new_campaign_text(campaign: Campaign, year: int) -> str:
    """The TOML of next year's campaign: `campaign` with every date moved by whole years.

    Years written in the texts (name, deadline text, id) move too; the letter reference of the
    old year is kept only as a comment, for staff to replace with the new letter.
    """
    years = year - campaign.year
    old, new = str(campaign.year), str(year)
    tz = campaign.tz
    deadline = campaign.deadline.astimezone(tz)
    day = _shift_year(deadline.date(), years)
    new_deadline = deadline.replace(year=day.year, month=day.month, day=day.day)
    new_id = campaign.id.replace(old, new) if old in campaign.id else f"{campaign.id}-{new}"
    lines = [
        f"# {campaign.name.replace(old, new)}.",
        f"# Made by `mailbot campaign new {year}` from {campaign.id}: every date moved by "
        f"{years} year(s). Check the dates and the letter against this year's document.",
        f"id = {_toml_str(new_id)}",
        f"name = {_toml_str(campaign.name.replace(old, new))}",
        f"year = {year}",
        f"timezone = {_toml_str(campaign.timezone)}",
    ]
    if campaign.document:
        lines.append(f"# Last year's letter: {campaign.document}")
    lines += [
        'document = ""',
        'letter_number = ""',
        "# letter_date = " + f"{year}-01-01",
        "# This year's days off besides Saturdays and Sundays (Tết, national holidays, as the",
        "# government announces them; Tết moves every year, so last year's are not copied): a",
        "# reminder due on one goes out the working day before. E.g. holidays = ["
        + f"{year}-04-30, {year}-05-01]",
        f"deadline = {_toml_str(new_deadline.replace(tzinfo=None).isoformat())}",
        f"deadline_text = {_toml_str(campaign.deadline_text.replace(old, new))}",
        f"submission_address = {_toml_str(campaign.submission_address)}",
        "accepted_formats = [" + ", ".join(_toml_str(f) for f in campaign.accepted_formats) + "]",
    ]
    for spec in campaign.forms:
        lines += [
            "",
            "[[forms]]",
            f"code = {_toml_str(spec.code)}",
            f"title = {_toml_str(spec.title)}",
            f"level = {_toml_str(spec.level)}",
            f"required = {'true' if spec.required else 'false'}",
        ]
    for m in campaign.milestones:
        lines += [
            "",
            "[[milestones]]",
            f"date = {_toml_str(_shift_year(m.date, years).isoformat())}",
            f"text = {_toml_str(m.text.replace(old, new))}",
        ]
    lines += [
        "",
        "[reminders]",
        "days_before = [" + ", ".join(str(d) for d in campaign.reminder_days) + "]",
        f"time = {_toml_str(campaign.reminder_time)}",
        "",
        "[digest]",
        f"time = {_toml_str(campaign.digest_time)}",
        "",
    ]
    text = "\n".join(lines)
    parse_campaign(text)  # what we write must load
    return text
