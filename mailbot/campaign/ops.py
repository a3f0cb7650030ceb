"""Campaign jobs over one database session: reminders, the staff digest, the consolidated export.

Everything here works from the database and an injected `now`; the scheduler and the CLI
decide when to call it. A scheduled point is claimed in `job_runs` in the same transaction as
the mails it queues, so a point is never handled twice, whatever restarts or clock jumps.
"""

from __future__ import annotations

import json
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.export import (
    ExportModel,
    FormStatus,
    UnitStatusRow,
    write_consolidated_docx,
    write_consolidated_xlsx,
)
from mailbot.campaign.forms import blank_form_docx, blank_form_xlsx
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    FORM_UNCONFIRMED,
    UnitState,
    count_states,
    unit_states,
)
from mailbot.config import Config
from mailbot.mail.compose import compose, new_message_id
from mailbot.mail.views import (
    ArrivalView,
    AttentionView,
    DigestCounts,
    DigestView,
    ReminderView,
    percent,
)
from mailbot.transport import DeliveryError, PermanentFailure, Sender, TemporaryFailure
from outbox_templates import render
from outbox_templates.labels import FIELD_LABELS, form_required_label
from parsers.model import FIELDS
from rules.campaign import Campaign

log = logging.getLogger(__name__)

REMINDER_JOB: Final = "reminder"
DIGEST_JOB: Final = "digest"
MANUAL_DIGEST_JOB: Final = "digest-manual"
# Mails queued by a campaign job are held back from the intake's sender for this long, so the
# job delivers them itself right away and two threads never send the same row; if the job dies
# before sending, the normal sender takes them once the hold ends.
HOLD: Final = timedelta(minutes=15)
# After the deadline, a digest goes out only on days with news (the first day always).
QUIET_AFTER_DEADLINE: Final = timedelta(days=1)
XLSX_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_TYPE: Final = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

QUARANTINE_REASONS: Final = {
    "unknown-unit": "không xác định được đơn vị gửi",
    "dmarc-fail": "không qua kiểm tra xác thực người gửi (DMARC)",
    "processing-failed": "lỗi khi xử lý thư",
}
OUTGOING_KIND_LABELS: Final = {
    "receipt": "Thư xác nhận",
    "reminder": "Thư nhắc hạn",
    "digest": "Báo cáo hằng ngày",
    "notice": "Thư thông báo",
}


# --------------------------------------------------------------------------- time helpers


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


# --------------------------------------------------------------------------- reminders


@dataclass(frozen=True)
class PlannedReminder:
    """One reminder to one incomplete unit for one scheduled point."""

    unit_code: str
    unit_name: str
    to: tuple[str, ...]
    point: datetime
    state: str
    missing_forms: tuple[str, ...]  # never received
    error_forms: tuple[str, ...]  # received, but the newest version has errors
    unconfirmed_forms: tuple[str, ...]  # received from an address staff must still confirm
    open_problems: tuple[str, ...]
    view: ReminderView
    template_forms: tuple[str, ...]  # blank forms attached (.docx and .xlsx each)
    dedupe_key: str


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


def _form_names(codes: tuple[str, ...], campaign: Campaign) -> tuple[str, ...]:
    specs = {f.code: f for f in campaign.forms}
    out = []
    for code in codes:
        spec = specs.get(code)
        out.append(
            form_required_label(code, spec.title if spec else None, spec.level if spec else None)
        )
    return tuple(out)


def _attachment_note(unit: UnitState, templates: tuple[str, ...], campaign: Campaign) -> str | None:
    parts = []
    if templates:
        names = ", ".join(_form_names(templates, campaign))
        parts.append(
            f"Gửi kèm thư này biểu mẫu trống ({names}) dạng Word (.docx) và Excel (.xlsx) "
            "theo đúng mẫu của công văn để Quý đơn vị điền."
        )
    for code in unit.forms_with(FORM_UNCONFIRMED):
        f = unit.forms[code]
        name = _form_names((code,), campaign)[0]
        parts.append(
            f"{name} Quý đơn vị gửi từ địa chỉ {f.sender or 'chưa đăng ký'} đã được nhận và "
            "đang chờ Ban Dân vận xác nhận người gửi; không cần gửi lại."
        )
    return " ".join(parts) or None


def plan_reminders(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    point: datetime | None = None,
    config: Config | None = None,
) -> list[PlannedReminder]:
    """The reminders for `point` (default: the point due at `now`), one per incomplete unit.

    A unit is reminded when a required form was never received or its newest version has
    errors, and it has an address; a unit whose only gap is a form awaiting staff confirmation
    is not (it has done its part). Nothing after the deadline.
    """
    if point is None:
        point = reminder_schedule(session, campaign, now).due
    if point is None or now >= campaign.deadline:
        return []
    config = config or Config()
    office = config.outgoing.from_name
    address = campaign.submission_address or config.outgoing.from_address
    plans: list[PlannedReminder] = []
    for unit in unit_states(session, campaign, now):
        if unit.complete or not unit.emails:
            continue
        required = set(campaign.required_forms)
        missing = tuple(c for c in unit.forms_with(FORM_NONE) if c in required)
        errors = tuple(c for c in unit.forms_with(FORM_ERRORS) if c in required)
        if not missing and not errors:
            continue
        templates = tuple(c for c in unit.forms if c in missing or c in errors)
        view = ReminderView(
            unit_name=unit.name,
            campaign_name=campaign.name,
            deadline_text=campaign.deadline_text,
            days_left=days_left(campaign, now),
            missing_forms=_form_names(templates, campaign),
            open_problems=unit.open_problems,
            submission_address=address,
            accepted_formats=campaign.accepted_formats,
            attachments_note=_attachment_note(unit, templates, campaign),
            office_name=office,
        )
        plans.append(
            PlannedReminder(
                unit_code=unit.code,
                unit_name=unit.name,
                to=unit.emails,
                point=point,
                state=unit.state,
                missing_forms=missing,
                error_forms=errors,
                unconfirmed_forms=unit.forms_with(FORM_UNCONFIRMED),
                open_problems=unit.open_problems,
                view=view,
                template_forms=templates,
                dedupe_key=f"{REMINDER_JOB}:{point_key(campaign, point)}:{unit.code}",
            )
        )
    return plans


def units_without_address(session: Session, campaign: Campaign, now: datetime) -> list[UnitState]:
    """Incomplete units that cannot be reminded: the register has no address for them."""
    return [u for u in unit_states(session, campaign, now) if not u.complete and not u.emails]


def template_attachments(
    forms: tuple[str, ...], campaign: Campaign, cache: dict[str, list[tuple[str, bytes, str]]]
) -> list[tuple[str, bytes, str]]:
    """The blank forms as (file name, bytes, MIME type), .docx and .xlsx for each form."""
    specs = {f.code: f for f in campaign.forms}
    out: list[tuple[str, bytes, str]] = []
    for code in forms:
        if code not in cache:
            spec = specs.get(code)
            stem = f"{spec.title} - {spec.level}" if spec else code
            stem = f"{stem} - {campaign.year}"
            cache[code] = [
                (f"{stem}.docx", blank_form_docx(code, campaign), DOCX_TYPE),
                (f"{stem}.xlsx", blank_form_xlsx(code, campaign), XLSX_TYPE),
            ]
        out.extend(cache[code])
    return out


def _hold(row: dbm.Outbox, now: datetime) -> None:
    if row.attempts == 0 and row.status == "queued":
        row.next_attempt_at = now + HOLD


def record_stale_points(
    session: Session, campaign: Campaign, points: tuple[datetime, ...], now: datetime
) -> int:
    """Mark missed points handled without sending (a reminder a day late would mislead)."""
    done = 0
    for p in points:
        detail = json.dumps({"skipped": "missed", "at": now.isoformat()})
        if dbm.claim_job_run(session, REMINDER_JOB, point_key(campaign, p), now, detail=detail):
            log.info("reminder point %s missed; skipped", local(p, campaign).isoformat())
            done += 1
    return done


def queue_reminders(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    *,
    manual: bool = False,
) -> int:
    """Queue the reminders due at `now` (see reminder_schedule); returns how many were queued.

    The point is claimed in the same transaction as the mails; stale points are recorded as
    skipped. Queued mails are held (HOLD) for the caller to deliver at once.
    """
    schedule = reminder_schedule(session, campaign, now, manual=manual)
    record_stale_points(session, campaign, schedule.stale, now)
    if schedule.due is None:
        return 0
    plans = plan_reminders(session, campaign, now, point=schedule.due, config=config)
    detail = json.dumps(
        {"units": [p.unit_code for p in plans], "manual": manual}, ensure_ascii=False
    )
    if not dbm.claim_job_run(
        session, REMINDER_JOB, point_key(campaign, schedule.due), now, detail=detail
    ):
        return 0
    cache: dict[str, list[tuple[str, bytes, str]]] = {}
    out = config.outgoing
    for plan in plans:
        rendered = render("reminder", plan.view)
        mid, raw = compose(
            rendered=rendered,
            from_addr=out.from_address,
            from_name=out.from_name,
            to=list(plan.to),
            message_id_domain=out.message_id_domain,
            auto_submitted="auto-generated",
            attachments=template_attachments(plan.template_forms, campaign, cache),
            date=now,
            message_id=new_message_id(out.message_id_domain),
        )
        row = dbm.queue_outgoing(
            session,
            kind="reminder",
            message_id=mid,
            to_addrs=list(plan.to),
            subject=rendered.subject,
            raw=raw,
            dedupe_key=plan.dedupe_key,
            now=now,
        )
        _hold(row, now)
    session.flush()
    log.info("queued %d reminders for %s", len(plans), local(schedule.due, campaign).isoformat())
    return len(plans)


# --------------------------------------------------------------------------- the export


def export_data(
    session: Session,
    campaign: Campaign,
    now: datetime | None = None,
    states: list[UnitState] | None = None,
) -> tuple[list[ExportModel], list[UnitStatusRow]]:
    """The consolidated workbook's rows: models of each unit's counting forms, status rows."""
    states = states if states is not None else unit_states(session, campaign, now)
    models: list[ExportModel] = []
    rows: list[UnitStatusRow] = []
    for unit in states:
        forms: dict[str, FormStatus | None] = {}
        for code, f in unit.forms.items():
            if not f.received or f.received_at is None:
                forms[code] = None
                continue
            problems = list(f.problems)
            if f.status == FORM_OK and f.declared_empty:
                problems.insert(0, "Không đăng ký mô hình")
            forms[code] = FormStatus(
                received_at=f.received_at,
                late=f.late,
                entries=f.entries,
                errors=f.errors,
                problems=problems,
                sender=f.sender or "",
            )
            if f.status != FORM_OK or f.submission_id is None:
                continue
            sub = session.get(dbm.Submission, f.submission_id)
            if sub is None:
                continue
            for e in sub.entries:
                try:
                    models.append(
                        ExportModel(
                            unit_code=unit.code,
                            unit_name=unit.name,
                            form=code,
                            kind=e.kind,
                            field=e.field,
                            no=e.no,
                            name=e.name,
                            model=e.model,
                            note=e.note,
                        )
                    )
                except ValueError:
                    log.warning("entry %s of submission %s not exportable", e.id, sub.id)
        rows.append(UnitStatusRow(unit.code, unit.name, unit.state, forms))
    return models, rows


def consolidated_xlsx(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    issuer: str | None = None,
    states: list[UnitState] | None = None,
) -> bytes:
    """The consolidated workbook (xlsx bytes) as the database stands at `now`."""
    models, rows = export_data(session, campaign, now, states)
    return write_consolidated_xlsx(models, rows, campaign, now, issuer=issuer)


def consolidated_docx(
    session: Session, campaign: Campaign, now: datetime, *, issuer: str | None = None
) -> bytes:
    """The same tables as a Word document."""
    models, rows = export_data(session, campaign, now)
    return write_consolidated_docx(models, rows, campaign, now, issuer=issuer)


def issuer_of(config: Config) -> str:
    """The office named top-left on the consolidated sheets."""
    return config.outgoing.from_name.upper()


def export_file_name(campaign: Campaign, now: datetime, suffix: str = "xlsx") -> str:
    """'Tổng hợp Dân vận khéo 2022 - 14-02-2022.xlsx'."""
    day = local(now, campaign).strftime("%d-%m-%Y")
    return f"Tổng hợp Dân vận khéo {campaign.year} - {day}.{suffix}"


# --------------------------------------------------------------------------- the digest


@dataclass(frozen=True)
class DigestPlan:
    """A digest ready to render: the view, its recipients and the attached workbook."""

    view: DigestView
    recipients: tuple[str, ...]
    attachment_name: str
    workbook: bytes
    point: str  # the local date
    news: bool  # anything arrived or happened since the previous digest
    states: list[UnitState] = field(default_factory=list)


def previous_digest_at(session: Session) -> datetime | None:
    """When the last digest (scheduled or by hand) was made; skipped days do not count."""
    runs = session.scalars(
        select(dbm.JobRun)
        .where(dbm.JobRun.job.in_((DIGEST_JOB, MANUAL_DIGEST_JOB)))
        .order_by(dbm.JobRun.done_at.desc(), dbm.JobRun.id.desc())
    )
    return next((r.done_at for r in runs if not _skipped(r)), None)


def _skipped(run: dbm.JobRun) -> bool:
    try:
        return bool(json.loads(run.detail or "{}").get("skipped"))
    except (ValueError, AttributeError):
        return False


def _arrivals(
    session: Session,
    since: datetime | None,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
) -> tuple[ArrivalView, ...]:
    query = select(dbm.Submission).where(dbm.Submission.received_at <= now)
    if since is not None:
        query = query.where(dbm.Submission.received_at >= since)
    by_mail: dict[int, list[dbm.Submission]] = defaultdict(list)
    for sub in session.scalars(query.order_by(dbm.Submission.received_at, dbm.Submission.id)):
        by_mail[sub.mail_id].append(sub)
    out = []
    for subs in by_mail.values():
        first = subs[0]
        unit = names.get(first.unit_code, first.unit_code)
        if any(s.awaiting_confirmation for s in subs):
            unit += " (chờ xác nhận người gửi)"
        out.append(
            ArrivalView(
                time=local(first.received_at, campaign),
                unit=unit,
                forms=tuple(s.form for s in subs),
                entries=sum(s.entries_count for s in subs),
                problems=sum(s.errors_count for s in subs),
                late=any(s.late for s in subs),
            )
        )
    return tuple(out)


def _event_detail(ev: dbm.Event, names: dict[str, str]) -> tuple[str, str] | None:
    """(label, detail) of an event staff should see, or None for events shown another way."""
    unit = names.get(ev.unit_code or "", ev.unit_code or "")
    mail = f" (thư #{ev.mail_id})" if ev.mail_id else ""
    if ev.kind == "unreadable-file":
        who = f" của {unit}" if unit else ""
        return "Tệp không đọc được", f"{ev.detail or 'tệp đính kèm'}{who}{mail}"
    if ev.kind == "bounce":
        try:
            info = json.loads(ev.detail or "{}")
        except ValueError:
            info = {}
        kind = OUTGOING_KIND_LABELS.get(info.get("kind") or "", "Thư")
        rcpt = info.get("recipient") or "(không rõ người nhận)"
        who = f" – {unit}" if unit else ""
        status = f", mã {info['status']}" if info.get("status") else ""
        return "Thư bị trả lại", f"{kind} gửi {rcpt}{who} không đến được{status}"
    if ev.kind == "rate-limited":
        return (
            "Không trả lời tự động",
            f"{ev.detail} đã nhận đủ số thư tự động trong một giờ{mail}",
        )
    if ev.kind == "oversize":
        return "Thư quá lớn", f"{ev.detail or ''}{mail}".strip()
    if ev.kind == "send-failed":
        return "Gửi thư thất bại", ev.detail or ""
    return None


def needs_attention(
    session: Session,
    since: datetime | None,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
) -> tuple[AttentionView, ...]:
    """What a person must look at: the quarantine, unconfirmed senders, and recent events."""
    items: list[AttentionView] = []
    for mail in dbm.mails_with_status(session, "quarantined"):
        reason = QUARANTINE_REASONS.get(mail.quarantine_reason or "", mail.quarantine_reason or "")
        label = (
            "Người gửi không xác định"
            if mail.quarantine_reason == "unknown-unit"
            else "Thư bị giữ lại"
        )
        subject = f" – “{mail.subject}”" if mail.subject else ""
        items.append(
            AttentionView(
                kind_label=label,
                detail=f"Thư #{mail.id} từ {mail.from_addr or '(không rõ)'}{subject}: {reason}. "
                f"Xử lý: mailbot review assign --mail {mail.id} --unit MÃ_ĐƠN_VỊ, "
                f"hoặc mailbot review reject --mail {mail.id}",
                when=local(mail.received_at, campaign),
            )
        )
    waiting = session.scalars(
        select(dbm.Mail)
        .where(dbm.Mail.awaiting_confirmation.is_(True), dbm.Mail.status == "processed")
        .order_by(dbm.Mail.id)
    )
    for mail in waiting:
        unit = names.get(mail.unit_code or "", mail.unit_code or "?")
        items.append(
            AttentionView(
                kind_label="Chờ xác nhận người gửi",
                detail=f"{mail.from_addr} gửi biểu thay cho {unit} (thư #{mail.id}). "
                f"Xác nhận: mailbot review confirm --mail {mail.id}",
                when=local(mail.received_at, campaign),
            )
        )
    if since is None:
        since = campaign.deadline - timedelta(days=365)
    for ev in dbm.events_since(session, since):
        if ev.at > now:
            continue
        shown = _event_detail(ev, names)
        if shown is not None:
            items.append(AttentionView(shown[0], shown[1], local(ev.at, campaign)))
    return tuple(items)


def _counts_by_level_and_field(
    session: Session, states: list[UnitState]
) -> dict[str, dict[str, int]]:
    ids = [
        f.submission_id
        for u in states
        for f in u.forms.values()
        if f.status == FORM_OK and f.submission_id is not None
    ]
    forms: list[str] = []
    for u in states:
        forms.extend(c for c in u.forms if c not in forms)
    counts = {code: {FIELD_LABELS[k]: 0 for k in FIELDS} for code in forms}
    if ids:
        rows = session.execute(
            select(dbm.Submission.form, dbm.SubmissionEntry.field)
            .join(dbm.SubmissionEntry, dbm.SubmissionEntry.submission_id == dbm.Submission.id)
            .where(dbm.Submission.id.in_(ids))
        )
        for form, fld in rows:
            label = FIELD_LABELS.get(fld, fld)
            per = counts.setdefault(form, {FIELD_LABELS[k]: 0 for k in FIELDS})
            per[label] = per.get(label, 0) + 1
    return counts


def build_digest(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    export_bytes: bytes | None = None,
    *,
    since: datetime | None = None,
    use_previous: bool = True,
) -> DigestPlan:
    """Everything the digest says at `now`, with the consolidated workbook attached."""
    if use_previous and since is None:
        since = previous_digest_at(session)
    states = unit_states(session, campaign, now)
    names = {u.code: u.name for u in states}
    counts = count_states(states)
    total = len(states)
    after = now >= campaign.deadline
    arrivals = _arrivals(session, since, now, campaign, names)
    attention = needs_attention(session, since, now, campaign, names)
    overdue = tuple(f"{u.name} – {u.label}" for u in states if not u.complete) if after else ()
    name = export_file_name(campaign, now)
    workbook = (
        export_bytes
        if export_bytes is not None
        else consolidated_xlsx(
            session,
            campaign,
            now,
            issuer=issuer_of(config),
            states=states,
        )
    )
    view = DigestView(
        generated_at=local(now, campaign),
        campaign_name=campaign.name,
        deadline_text=campaign.deadline_text,
        counts=DigestCounts(
            complete=counts["complete"],
            partial=counts["partial"],
            missing=counts["missing"],
            errors=counts["errors"],
            awaiting_confirmation=counts["awaiting-confirmation"],
            total=total,
        ),
        percent_complete=percent(counts["complete"], total),
        counts_by_level_and_field=_counts_by_level_and_field(session, states),
        arrivals=arrivals,
        needs_attention=attention,
        overdue_units=overdue,
        after_deadline=after,
        since=local(since, campaign) if since is not None else None,
        attachment_name=name,
        office_name=config.outgoing.from_name,
    )
    news = (
        bool(arrivals)
        or any(a.when is not None and since is not None and a.when >= since for a in attention)
        or since is None
    )
    return DigestPlan(
        view=view,
        recipients=tuple(config.digest.recipients),
        attachment_name=name,
        workbook=workbook,
        point=local(now, campaign).date().isoformat(),
        news=news,
        states=states,
    )


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


def _queue_digest_plan(
    session: Session, plan: DigestPlan, config: Config, now: datetime, dedupe_key: str
) -> dbm.Outbox:
    rendered = render("digest", plan.view)
    out = config.outgoing
    mid, raw = compose(
        rendered=rendered,
        from_addr=out.from_address,
        from_name=out.from_name,
        to=list(plan.recipients),
        message_id_domain=out.message_id_domain,
        auto_submitted="auto-generated",
        attachments=[(plan.attachment_name, plan.workbook, XLSX_TYPE)],
        date=now,
        message_id=new_message_id(out.message_id_domain),
    )
    row = dbm.queue_outgoing(
        session,
        kind="digest",
        message_id=mid,
        to_addrs=list(plan.recipients),
        subject=rendered.subject,
        raw=raw,
        dedupe_key=dedupe_key,
        now=now,
    )
    _hold(row, now)
    return row


def queue_digest(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    export_bytes: bytes | None = None,
    *,
    manual: bool = False,
) -> bool:
    """Queue the daily digest when due (claiming `digest:<local date>`); True when queued.

    Nothing without recipients. After the deadline's first day a digest goes out only when
    something arrived or happened since the previous one (quiet days are recorded as skipped).
    By hand (manual=True) a digest is made now whatever the hour; it also stands for today's
    scheduled one when that has not gone out yet.
    """
    if not config.digest.recipients:
        return False
    point = local(now, campaign).date().isoformat()
    if manual:
        plan = build_digest(session, campaign, config, now, export_bytes)
        dbm.claim_job_run(session, DIGEST_JOB, point, now, detail=json.dumps({"manual": True}))
        dbm.claim_job_run(session, MANUAL_DIGEST_JOB, now.isoformat(), now)
        _queue_digest_plan(session, plan, config, now, f"{MANUAL_DIGEST_JOB}:{now.isoformat()}")
        return True
    if digest_due(session, campaign, config, now) is None:
        return False
    plan = build_digest(session, campaign, config, now, export_bytes)
    if now >= campaign.deadline + QUIET_AFTER_DEADLINE and not plan.news:
        dbm.claim_job_run(
            session, DIGEST_JOB, point, now, detail=json.dumps({"skipped": "nothing new"})
        )
        return False
    if not dbm.claim_job_run(session, DIGEST_JOB, point, now):
        return False
    _queue_digest_plan(session, plan, config, now, f"{DIGEST_JOB}:{point}")
    log.info("queued the digest of %s to %s", point, ", ".join(plan.recipients))
    return True


# --------------------------------------------------------------------------- delivering


def held_outgoing(session: Session, now: datetime) -> list[int]:
    """Ids of campaign mails queued and held for their job to send (never attempted yet)."""
    return list(
        session.scalars(
            select(dbm.Outbox.id)
            .where(
                dbm.Outbox.status == "queued",
                dbm.Outbox.kind.in_(("reminder", "digest")),
                dbm.Outbox.attempts == 0,
                dbm.Outbox.next_attempt_at.is_not(None),
                dbm.Outbox.next_attempt_at > now,
            )
            .order_by(dbm.Outbox.id)
        )
    )


def deliver_rows(
    database: dbm.Database,
    sender: Sender,
    config: Config,
    ids: list[int],
    clock: Callable[[], datetime],
) -> tuple[int, int]:
    """Send these outbox rows now (those still queued); failures retry through the outbox.

    The same outcome handling as the intake's sender: a temporary failure is retried later
    with back-off by the normal outbox sender, a permanent one is final and shown to staff.
    """
    sent = failed = 0
    for outbox_id in ids:
        with database.session(write=False) as s:
            row = s.get(dbm.Outbox, outbox_id)
            if row is None or row.status != "queued":
                continue
            raw, recipients = row.raw, row.recipients
        error: DeliveryError | None = None
        try:
            refused = sender.send(raw, config.outgoing.from_address, list(recipients))
            if refused and len(refused) == len(recipients):
                error = PermanentFailure(f"all recipients refused: {refused}")
        except DeliveryError as exc:
            error = exc
        except OSError as exc:
            error = TemporaryFailure(str(exc))
        with database.session() as s:
            row = s.get(dbm.Outbox, outbox_id)
            if row is None:
                continue
            if error is None:
                dbm.mark_sent(s, row, clock())
                sent += 1
                log.info("sent %s %s to %s", row.kind, row.message_id, row.to_addrs)
            else:
                dbm.mark_send_failed(
                    s,
                    row,
                    str(error),
                    clock(),
                    temporary=isinstance(error, TemporaryFailure),
                    max_attempts=config.outgoing.max_attempts,
                )
                failed += 1
                log.warning("sending %s %s failed: %s", row.kind, row.message_id, error)
    return sent, failed
