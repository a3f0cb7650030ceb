"""Plain data the reminder and digest templates take: views of the campaign's state."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from mailbot.campaign.chart import DayCount, StateBar
from mailbot.contact import Contact
from mailbot.glossary import UNIT_STATE_LABELS
from mailbot.mail.views import DEFAULT_FORMATS, DEFAULT_OFFICE
from outbox_templates.labels import FIELD_LABELS
from parsers.model import FIELDS

# What a reminder is about, said first in its subject and body.
REMINDER_NOTHING_SENT = "nothing-sent"  # no form of the unit arrived at all
REMINDER_FORMS_MISSING = "forms-missing"  # some arrived, some never did
REMINDER_FORMS_WITH_ERRORS = "forms-with-errors"  # a form arrived with errors and does not count


@dataclass(frozen=True)
class ReminderFormView:
    """One owed form as the reminder names it: received when, with what open errors."""

    name: str  # "Mẫu số 01 (cấp Quận)"
    state: str  # glossary.FORM_STATE_LABELS
    received_at: datetime | None = None  # local time of the version shown
    sender: str | None = None
    problems: tuple[str, ...] = ()  # open errors of a form that does not count
    receipt_to: tuple[str, ...] = ()  # where the receipt with the details went


@dataclass(frozen=True)
class ReminderView:
    """A reminder to a unit that is not complete before the deadline."""

    unit_name: str  # the registered name, never a sender's display name
    campaign_name: str
    deadline_text: str
    deadline_words: str  # "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)"
    last_day: str  # "hết ngày thứ Bảy 19/02/2022"
    last_day_name: str  # "thứ Bảy 19/02/2022"
    days_left: int  # counted plainly, today included
    last_working_day: bool  # today is the last working day and the last day is a day off
    case: str  # REMINDER_NOTHING_SENT / REMINDER_FORMS_MISSING / REMINDER_FORMS_WITH_ERRORS
    as_of: datetime  # local moment the unit's state was read
    forms: tuple[ReminderFormView, ...]  # every owed form with its state, in campaign order
    missing_forms: tuple[str, ...]  # owed and never received
    error_forms: tuple[ReminderFormView, ...]  # received with errors, not counted
    unconfirmed_forms: tuple[ReminderFormView, ...]  # received, sender awaits staff
    attached_forms: tuple[str, ...]  # blank forms attached (.docx and .xlsx each)
    submission_address: str
    contact: Contact
    accepted_formats: tuple[str, ...] = DEFAULT_FORMATS
    office_name: str = DEFAULT_OFFICE

    @property
    def forms_to_send(self) -> tuple[str, ...]:
        """What the unit must still send: the missing forms, then the ones to correct."""
        return self.missing_forms + tuple(f.name for f in self.error_forms)


@dataclass(frozen=True)
class DigestCounts:
    """Units by state; `total` is the number of units in the register."""

    complete: int
    partial: int
    missing: int
    errors: int
    awaiting_confirmation: int
    total: int

    @property
    def bars(self) -> tuple[StateBar, ...]:
        """The states in the order staff read them (the chart's segments), with their words."""
        figures = {
            "complete": self.complete,
            "awaiting-confirmation": self.awaiting_confirmation,
            "errors": self.errors,
            "partial": self.partial,
            "missing": self.missing,
        }
        return tuple(StateBar(k, UNIT_STATE_LABELS[k], v) for k, v in figures.items())


@dataclass(frozen=True)
class ArrivalView:
    """One submission that arrived since the last digest."""

    time: datetime
    unit: str
    forms: tuple[str, ...]
    entries: int
    problems: int
    late: bool = False


@dataclass(frozen=True)
class ReplacementView:
    """A new version of a unit's form that replaced the one counted before."""

    time: datetime
    unit: str
    form: str
    previous_time: datetime
    previous_entries: int
    entries: int
    dropped: tuple[str, ...] = ()  # models of the earlier version not in the new one

    @property
    def text(self) -> str:
        """One line for the digest."""
        line = (
            f"{self.unit} – {self.form}: bản nhận lúc {self.time:%H:%M ngày %d/%m/%Y} "
            f"({self.entries} mô hình) thay thế bản nhận lúc "
            f"{self.previous_time:%H:%M ngày %d/%m/%Y} ({self.previous_entries} mô hình)"
        )
        if self.dropped:
            line += "; bỏ: " + "; ".join(self.dropped)
        return line


ACTION_KINDS: Final = ("confirm", "assign", "reject", "handled", "reprocess")


@dataclass(frozen=True)
class DigestAction:
    """One thing staff can do about an item: a one-click link, else a sentence saying what to do."""

    kind: str  # one of ACTION_KINDS
    label: str  # "Xác nhận người gửi", "Tính cho Đảng ủy phường Khương Trung", "Từ chối"
    href: str | None = None
    mail_id: int | None = None

    @property
    def todo(self) -> str:
        """The sentence said instead of the link when there is none."""
        return todo_line((self,))


def todo_line(actions: Sequence[DigestAction]) -> str:
    """What to do, in words, for the actions that have no link ("" when all have one)."""
    open_ = [a for a in actions if not a.href]
    if not open_:
        return ""
    ask = "Đề nghị đồng chí quản trị hệ thống thực hiện"
    if open_[0].mail_id is not None:
        ask += f" với thư số {open_[0].mail_id}"
    words = [a.label[:1].lower() + a.label[1:] for a in open_]
    if len(words) == 1:
        return f"{ask}: {words[0]}."
    return f"{ask} một trong các việc: {'; '.join(words)}."


@dataclass(frozen=True)
class AttentionView:
    """Something that needs a person: held mail, a sender to confirm, an unanswered mail."""

    kind_label: str
    detail: str
    when: datetime | None = None
    actions: tuple[DigestAction, ...] = ()

    @property
    def todo(self) -> str:
        """What to do in words, for the actions without a link."""
        return todo_line(self.actions)


@dataclass(frozen=True)
class ToReadView:
    """A unit's mail without a form (a question, a cover letter): staff read it, then mark it."""

    mail_id: int
    when: datetime
    unit: str
    sender: str
    subject: str
    excerpt: str
    actions: tuple[DigestAction, ...] = ()

    @property
    def todo(self) -> str:
        """What to do in words, for the actions without a link."""
        return todo_line(self.actions)


@dataclass(frozen=True)
class BounceView:
    """One of our mails that came back undelivered, naming the unit it was for."""

    when: datetime
    what: str  # "Thư nhắc hạn"
    unit: str  # the unit's name; "" when the address is no unit's
    recipient: str
    reason: str  # "địa chỉ không tồn tại"

    @property
    def text(self) -> str:
        """'Thư nhắc hạn gửi Hội Cựu chiến binh phường X (addr) bị trả lại: địa chỉ …'."""
        to = f"{self.unit} ({self.recipient})" if self.unit else self.recipient
        return f"{self.what} gửi {to} bị trả lại: {self.reason}"


@dataclass(frozen=True)
class UnitGroupView:
    """The units in one state, in register order; each name may carry a short note."""

    state: str
    label: str
    units: tuple[str, ...]


def percent(part: int, total: int) -> int:
    """Whole percent, rounded down so 100 means really all; 0 when total is 0."""
    if total <= 0:
        return 0
    return max(0, min(100, (part * 100) // total))


@dataclass(frozen=True)
class DigestView:
    """The daily report to staff: what needs a person, progress, units by state, questions."""

    generated_at: datetime
    campaign_name: str
    deadline_text: str
    counts: DigestCounts
    percent_complete: int
    counts_by_level_and_field: Mapping[str, Mapping[str, int]]
    arrivals: tuple[ArrivalView, ...]
    needs_attention: tuple[AttentionView, ...]
    after_deadline: bool
    since: datetime | None = None
    attachment_name: str | None = None
    office_name: str = DEFAULT_OFFICE
    deadline_words: str = ""
    to_read: tuple[ToReadView, ...] = ()
    replacements: tuple[ReplacementView, ...] = ()
    # Said first: the robot may be working on the wrong thing (a past campaign, no units).
    warnings: tuple[str, ...] = ()
    groups: tuple[UnitGroupView, ...] = ()
    bounces: tuple[BounceView, ...] = ()
    per_day: tuple[DayCount, ...] = ()
    last_day: date | None = None  # the last day that counts as on time
    chart_cid: str | None = None  # the chart's Content-ID in the mail (no brackets)
    contact: Contact | None = None

    @property
    def bar_done(self) -> int:
        return max(0, min(100, int(self.percent_complete)))

    @property
    def field_labels(self) -> tuple[str, ...]:
        labels = [FIELD_LABELS[f] for f in FIELDS]
        for per_field in self.counts_by_level_and_field.values():
            labels.extend(k for k in per_field if k not in labels)
        return tuple(labels)

    @property
    def units_line(self) -> str:
        """'12 đã gửi đủ, 5 gửi chưa đủ, …': the chart's left panel in words."""
        return ", ".join(f"{b.count} {b.label.lower()}" for b in self.counts.bars)

    @property
    def days_line(self) -> str:
        """'07/02: 2; 08/02: 5; …': the chart's right panel in words (days with mail only)."""
        busy = [f"{d.day:%d/%m}: {d.count}" for d in self.per_day if d.count]
        return "; ".join(busy) if busy else "chưa có"

    @property
    def chart_alt(self) -> str:
        """The chart's alternative text: the same figures."""
        return (
            f"Đơn vị theo tình trạng: {self.units_line}. "
            f"Số lượt gửi biểu theo ngày: {self.days_line}."
        )
