"""The daily staff digest: what needs a person, progress and chart, units, questions, bounces.

The consolidated workbook is attached, the chart shown inline (a multipart/related image).

A digest point (the local date) is claimed in `job_runs` in the same transaction as the mail
it queues, so a day's digest is never sent twice.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.attention import LinkFor, bounces, mails_to_read, needs_attention
from mailbot.campaign.chart import DayCount, progress_png
from mailbot.campaign.export import consolidated_xlsx, export_file_name
from mailbot.campaign.forms import XLSX_TYPE
from mailbot.campaign.health import campaign_stale, health_warnings
from mailbot.campaign.schedule import (
    DIGEST_JOB,
    MANUAL_DIGEST_JOB,
    digest_due,
    digest_time,
    local,
)
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    FORM_UNCONFIRMED,
    STATES,
    UnitState,
    count_states,
    unit_states,
)
from mailbot.campaign.views import (
    ArrivalView,
    DigestCounts,
    DigestView,
    ReplacementView,
    UnitGroupView,
    percent,
)
from mailbot.config import Config
from mailbot.contact import contact_of
from mailbot.decision import model_label
from mailbot.glossary import UNIT_STATE_LABELS
from mailbot.mail.compose import Related, compose, new_message_id
from outbox_templates import render
from outbox_templates.labels import FIELD_LABELS, form_short
from parsers.model import FIELDS
from rules.base import FORM_NAMES
from rules.campaign import Campaign

log = logging.getLogger(__name__)

# After the deadline, a digest goes out only on days with news (the first day always).
QUIET_AFTER_DEADLINE: Final = timedelta(days=1)
# Once per campaign: the digest that tells staff the robot still runs a long-past campaign.
STALE_DIGEST_JOB: Final = "digest-stale-campaign"
# The chart's right panel covers at most this many days, ending today or at the deadline.
CHART_DAYS: Final = 28
CHART_NAME: Final = "tien-do.png"


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
    runs = dbm.job_runs(session, (DIGEST_JOB, MANUAL_DIGEST_JOB))
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
    # One line per mail and unit: a ward's mail may carry the forms of units under it.
    by_mail: dict[tuple[int, str], list[dbm.Submission]] = defaultdict(list)
    for sub in dbm.submissions_received(session, since, now):
        by_mail[(sub.mail_id, sub.unit_code)].append(sub)
    out = []
    for subs in by_mail.values():
        first = subs[0]
        unit = names.get(first.unit_code, first.unit_code)
        if first.sent_by and first.sent_by != first.unit_code:
            unit += f" (do {names.get(first.sent_by, first.sent_by)} gửi)"
        if any(s.awaiting_confirmation for s in subs):
            unit += " (chờ xác nhận)"
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


def _replacements(
    session: Session,
    since: datetime | None,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
) -> tuple[ReplacementView, ...]:
    """Versions received since the last digest that replaced the version counted before."""
    out = []
    for new, old in dbm.replacements(session, since, now):
        kept = {_model_key(e.name, e.model) for e in new.entries}
        out.append(
            ReplacementView(
                time=local(new.received_at, campaign),
                unit=names.get(new.unit_code, new.unit_code),
                form=FORM_NAMES.get(new.form, new.form),
                previous_time=local(old.received_at, campaign),
                previous_entries=old.entries_count,
                entries=new.entries_count,
                dropped=tuple(
                    model_label(e.name, e.model)
                    for e in old.entries
                    if _model_key(e.name, e.model) not in kept
                ),
            )
        )
    return tuple(out)


def _model_key(name: str | None, model: str) -> str:
    return " ".join(model_label(name, model).casefold().split())


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
    for form, fld in dbm.entry_fields(session, ids):
        label = FIELD_LABELS.get(fld, fld)
        per = counts.setdefault(form, {FIELD_LABELS[k]: 0 for k in FIELDS})
        per[label] = per.get(label, 0) + 1
    return counts


def last_on_time_day(campaign: Campaign) -> date:
    """The last local day whose mail is on time (the deadline is the first late moment)."""
    return local(campaign.deadline - timedelta(microseconds=1), campaign).date()


def per_day(
    session: Session, now: datetime, campaign: Campaign, last_day: date
) -> tuple[DayCount, ...]:
    """Submissions (one per mail and unit) received each local day, up to today or the deadline.

    Days run from the first submission (at most CHART_DAYS back) to the later of today and
    the last day on time, so the deadline is always on the chart.
    """
    days: dict[date, set[tuple[int, str]]] = defaultdict(set)
    for sub in dbm.submissions_received(session, None, now):
        days[local(sub.received_at, campaign).date()].add((sub.mail_id, sub.unit_code))
    today = local(now, campaign).date()
    end = max(today, last_day)
    start = max(min([*days, today]), end - timedelta(days=CHART_DAYS - 1))
    count = (end - start).days + 1
    return tuple(
        DayCount(start + timedelta(days=i), len(days.get(start + timedelta(days=i), ())))
        for i in range(count)
    )


def unit_groups(states: list[UnitState]) -> tuple[UnitGroupView, ...]:
    """The units in each state, in register order, each with what it still lacks."""
    by_state: dict[str, list[str]] = defaultdict(list)
    for u in states:
        by_state[u.state].append(u.name + _unit_note(u))
    return tuple(
        UnitGroupView(state, UNIT_STATE_LABELS[state], tuple(by_state[state]))
        for state in STATES
        if by_state.get(state)
    )


def _unit_note(u: UnitState) -> str:
    """' (còn thiếu Mẫu 02; Mẫu 01 có lỗi)': what keeps a unit from complete."""
    notes = []
    missing = [form_short(c) for c in u.forms_with(FORM_NONE) if u.owes(c)]
    if missing and u.state != "missing":
        notes.append("còn thiếu " + ", ".join(missing))
    notes.extend(f"{form_short(c)} có lỗi" for c in u.forms_with(FORM_ERRORS) if u.owes(c))
    notes.extend(
        f"{form_short(c)} chờ xác nhận" for c in u.forms_with(FORM_UNCONFIRMED) if u.owes(c)
    )
    return f" ({'; '.join(notes)})" if notes else ""


def build_digest(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    export_bytes: bytes | None = None,
    *,
    since: datetime | None = None,
    use_previous: bool = True,
    link_for: LinkFor | None = None,
) -> DigestPlan:
    """Everything the digest says at `now`, with the consolidated workbook attached.

    `link_for(kind, mail id, unit code)` gives each action its one-click link (None: the
    digest says in words what to do).
    """
    if use_previous and since is None:
        since = previous_digest_at(session)
    states = unit_states(session, campaign, now)
    names = {u.code: u.name for u in states}
    counts = count_states(states)
    total = len(states)
    after = now >= campaign.deadline
    arrivals = _arrivals(session, since, now, campaign, names)
    replaced = _replacements(session, since, now, campaign, names)
    attention = needs_attention(
        session, since, now, campaign, names, link_for, district=config.district
    )
    to_read = mails_to_read(session, now, campaign, names, link_for)
    last_day = last_on_time_day(campaign)
    name = export_file_name(campaign, now)
    workbook = (
        export_bytes
        if export_bytes is not None
        else consolidated_xlsx(
            session,
            campaign,
            now,
            board=config.board,
            states=states,
        )
    )
    view = DigestView(
        generated_at=local(now, campaign),
        campaign_name=campaign.name,
        deadline_text=campaign.deadline_text,
        deadline_words=campaign.deadline_words,
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
        replacements=replaced,
        needs_attention=attention,
        after_deadline=after,
        since=local(since, campaign) if since is not None else None,
        attachment_name=name,
        office_name=config.outgoing.from_name,
        to_read=to_read,
        warnings=tuple(w.text for w in health_warnings(campaign, total, now)),
        groups=unit_groups(states),
        bounces=bounces(session, since, now, campaign, names),
        per_day=per_day(session, now, campaign, last_day),
        last_day=last_day,
        chart_cid=f"tien-do.{local(now, campaign):%Y%m%d}@{config.outgoing.message_id_domain}",
        contact=contact_of(config, campaign),
    )
    news = (
        bool(arrivals)
        or any(a.when is not None and since is not None and a.when >= since for a in attention)
        or any(since is not None and r.when >= since for r in to_read)
        or any(since is not None and b.when >= since for b in view.bounces)
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


def _queue_digest_plan(
    session: Session, plan: DigestPlan, config: Config, now: datetime, dedupe_key: str
) -> dbm.Outbox:
    rendered = render("digest", plan.view)
    out = config.outgoing
    related = []
    if plan.view.chart_cid and plan.view.last_day is not None:
        chart = progress_png(plan.view.counts.bars, plan.view.per_day, plan.view.last_day)
        related.append(Related(plan.view.chart_cid, chart, "image/png", CHART_NAME))
    mid, raw = compose(
        rendered=rendered,
        from_addr=out.from_address,
        from_name=out.from_name,
        to=list(plan.recipients),
        message_id_domain=out.message_id_domain,
        auto_submitted="auto-generated",
        attachments=[(plan.attachment_name, plan.workbook, XLSX_TYPE)],
        related=related,
        date=now,
        message_id=new_message_id(out.message_id_domain),
    )
    return dbm.queue_outgoing(
        session,
        kind="digest",
        message_id=mid,
        to_addrs=list(plan.recipients),
        subject=rendered.subject,
        raw=raw,
        dedupe_key=dedupe_key,
        now=now,
    )


def queue_digest(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    export_bytes: bytes | None = None,
    *,
    manual: bool = False,
    link_for: LinkFor | None = None,
) -> int | None:
    """Queue the daily digest when due (claiming `digest:<local date>`); its outbox id, or None.

    Nothing without recipients. After the deadline's first day a digest goes out only when
    something arrived or happened since the previous one (quiet days are recorded as skipped).
    By hand (manual=True) a digest is made now whatever the hour; it also stands for today's
    scheduled one when that has not gone out yet. The caller sends the queued row.
    """
    if not config.digest.recipients:
        return None
    point = local(now, campaign).date().isoformat()
    if manual:
        plan = build_digest(session, campaign, config, now, export_bytes, link_for=link_for)
        dbm.claim_job_run(session, DIGEST_JOB, point, now, detail=json.dumps({"manual": True}))
        dbm.claim_job_run(session, MANUAL_DIGEST_JOB, now.isoformat(), now)
        row = _queue_digest_plan(
            session, plan, config, now, f"{MANUAL_DIGEST_JOB}:{now.isoformat()}"
        )
        return row.id
    if digest_due(session, campaign, config, now) is None:
        return _queue_stale_digest(session, campaign, config, now, export_bytes, link_for)
    plan = build_digest(session, campaign, config, now, export_bytes, link_for=link_for)
    if now >= campaign.deadline + QUIET_AFTER_DEADLINE and not plan.news:
        dbm.claim_job_run(
            session, DIGEST_JOB, point, now, detail=json.dumps({"skipped": "nothing new"})
        )
        return None
    if not dbm.claim_job_run(session, DIGEST_JOB, point, now):
        return None
    row = _queue_digest_plan(session, plan, config, now, f"{DIGEST_JOB}:{point}")
    log.info("queued the digest of %s to %s", point, ", ".join(plan.recipients))
    return row.id


def _queue_stale_digest(
    session: Session,
    campaign: Campaign,
    config: Config,
    now: datetime,
    export_bytes: bytes | None,
    link_for: LinkFor | None,
) -> int | None:
    """One digest, once per campaign, when the daemon runs a campaign long past.

    Daily digests stop after the last milestone; staff still hear, once, that the robot is
    working on last year's file (the digest says so first, and how to fix it).
    """
    if not campaign_stale(campaign, now):
        return None
    if local(now, campaign).time() < digest_time(config, campaign):
        return None
    if not dbm.claim_job_run(session, STALE_DIGEST_JOB, campaign.id, now):
        return None
    plan = build_digest(session, campaign, config, now, export_bytes, link_for=link_for)
    row = _queue_digest_plan(session, plan, config, now, f"{STALE_DIGEST_JOB}:{campaign.id}")
    log.warning("queued a digest telling staff that campaign %s is long past", campaign.id)
    return row.id
