"""Reminders to units not complete before the deadline: who, what they miss, the mails queued.

A reminder point is claimed in `job_runs` in the same transaction as the mails it queues, so a
point is never handled twice, whatever restarts or clock jumps.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, time

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.forms import DOCX_TYPE, XLSX_TYPE, blank_form_docx, blank_form_xlsx
from mailbot.campaign.schedule import (
    REMINDER_JOB,
    day_words,
    days_left,
    last_working_day,
    local,
    point_key,
    reminder_schedule,
)
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    FORM_UNCONFIRMED,
    UnitState,
    unit_states,
)
from mailbot.campaign.views import (
    REMINDER_FORMS_MISSING,
    REMINDER_FORMS_WITH_ERRORS,
    REMINDER_NOTHING_SENT,
    ReminderFormView,
    ReminderView,
)
from mailbot.config import Config
from mailbot.contact import contact_of
from mailbot.glossary import FORM_STATE_LABELS
from mailbot.mail.compose import compose, new_message_id
from outbox_templates import render
from outbox_templates.labels import form_required_label
from rules.campaign import Campaign, last_day

log = logging.getLogger(__name__)


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
    view: ReminderView
    template_forms: tuple[str, ...]  # blank forms attached (.docx and .xlsx each)
    dedupe_key: str


def _form_names(codes: tuple[str, ...], campaign: Campaign) -> tuple[str, ...]:
    specs = {f.code: f for f in campaign.forms}
    out = []
    for code in codes:
        spec = specs.get(code)
        out.append(
            form_required_label(code, spec.title if spec else None, spec.level if spec else None)
        )
    return tuple(out)


def last_day_phrase(campaign: Campaign) -> str:
    """'hết ngày thứ Bảy 19/02/2022', or 'trước 17:00 ngày thứ Hai 21/02/2022' mid-day."""
    here = campaign.deadline.astimezone(campaign.tz)
    if here.time() == time(0, 0):
        return f"hết ngày {day_words(last_day(campaign.deadline, campaign.tz))}"
    return f"trước {here:%H:%M} ngày {day_words(here.date())}"


def _form_view(
    unit: UnitState, code: str, campaign: Campaign, receipts: dict[int, tuple[str, ...]]
) -> ReminderFormView:
    f = unit.forms[code]
    return ReminderFormView(
        name=_form_names((code,), campaign)[0],
        state=FORM_STATE_LABELS[f.status],
        received_at=local(f.received_at, campaign) if f.received_at else None,
        sender=f.sender,
        problems=f.problems if f.status == FORM_ERRORS else (),
        receipt_to=receipts.get(f.mail_id, ()) if f.mail_id is not None else (),
    )


def _case(missing: tuple[str, ...], errors: tuple[str, ...], received: int) -> str:
    if errors:
        return REMINDER_FORMS_WITH_ERRORS
    return REMINDER_FORMS_MISSING if received else REMINDER_NOTHING_SENT


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
    errors, and it has an address. A unit whose only gap is a form awaiting staff confirmation
    is not: it has done its part, the next step is staff's, and a reminder would make it send
    the same file again; when it is reminded for another form, one line says the waiting form
    needs nothing from it. Nothing after the deadline.
    """
    if point is None:
        point = reminder_schedule(session, campaign, now).due
    if point is None or now >= campaign.deadline:
        return []
    config = config or Config()
    office = config.outgoing.from_name
    address = campaign.submission_address or config.outgoing.from_address
    contact = contact_of(config, campaign)
    today = local(now, campaign).date()
    final_working_day = (
        last_working_day(campaign) == today and last_day(campaign.deadline, campaign.tz) != today
    )
    states = [u for u in unit_states(session, campaign, now) if not u.complete and u.emails]
    receipts = dbm.receipt_recipients(
        session,
        (f.mail_id for u in states for f in u.forms.values() if f.mail_id is not None),
    )
    plans: list[PlannedReminder] = []
    for unit in states:
        required = set(unit.owed)
        missing = tuple(c for c in unit.forms_with(FORM_NONE) if c in required)
        errors = tuple(c for c in unit.forms_with(FORM_ERRORS) if c in required)
        if not missing and not errors:
            continue
        ok = tuple(c for c in unit.forms_with(FORM_OK) if c in required)
        waiting = tuple(c for c in unit.forms_with(FORM_UNCONFIRMED) if c in required)
        templates = tuple(c for c in unit.forms if c in missing or c in errors)
        view = ReminderView(
            unit_name=unit.name,
            campaign_name=campaign.name,
            deadline_text=campaign.deadline_text,
            deadline_words=campaign.deadline_words,
            last_day=last_day_phrase(campaign),
            last_day_name=day_words(last_day(campaign.deadline, campaign.tz)),
            days_left=days_left(campaign, now),
            last_working_day=final_working_day,
            case=_case(missing, errors, len(ok) + len(waiting)),
            as_of=local(now, campaign),
            missing_forms=_form_names(missing, campaign),
            forms=tuple(
                _form_view(unit, c, campaign, receipts) for c in unit.forms if c in required
            ),
            error_forms=tuple(_form_view(unit, c, campaign, receipts) for c in errors),
            unconfirmed_forms=tuple(_form_view(unit, c, campaign, receipts) for c in waiting),
            attached_forms=_form_names(templates, campaign),
            submission_address=address,
            contact=contact,
            accepted_formats=campaign.accepted_formats,
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
                unconfirmed_forms=waiting,
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
) -> list[int]:
    """Queue the reminders due at `now` (see reminder_schedule); returns their outbox ids.

    The point is claimed in the same transaction as the mails; stale points are recorded as
    skipped. The caller sends the queued rows (outbox.deliver) once this transaction commits.
    """
    schedule = reminder_schedule(session, campaign, now, manual=manual)
    record_stale_points(session, campaign, schedule.stale, now)
    if schedule.due is None:
        return []
    plans = plan_reminders(session, campaign, now, point=schedule.due, config=config)
    detail = json.dumps(
        {"units": [p.unit_code for p in plans], "manual": manual}, ensure_ascii=False
    )
    if not dbm.claim_job_run(
        session, REMINDER_JOB, point_key(campaign, schedule.due), now, detail=detail
    ):
        return []
    cache: dict[str, list[tuple[str, bytes, str]]] = {}
    out = config.outgoing
    ids: list[int] = []
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
        ids.append(row.id)
    log.info("queued %d reminders for %s", len(ids), local(schedule.due, campaign).isoformat())
    return ids
