"""The daily digest to staff: progress, arrivals, what needs a person, the workbook attached.

A digest point (the local date) is claimed in `job_runs` in the same transaction as the mail
it queues, so a day's digest is never sent twice.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
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
    FORM_OK,
    QUARANTINE_REASONS,
    UnitState,
    count_states,
    unit_states,
)
from mailbot.campaign.views import (
    ArrivalView,
    AttentionView,
    DigestCounts,
    DigestView,
    ReplacementView,
    ToReadView,
    percent,
)
from mailbot.config import Config
from mailbot.mail.compose import compose, new_message_id
from mailbot.mail.views import model_label
from outbox_templates import render
from outbox_templates.labels import FIELD_LABELS
from parsers.model import FIELDS
from rules.base import FORM_NAMES
from rules.campaign import Campaign

log = logging.getLogger(__name__)

# How many senders the "Thư khác" line names before it only counts the rest.
OTHER_MAIL_SHOWN: Final = 5
# After the deadline, a digest goes out only on days with news (the first day always).
QUIET_AFTER_DEADLINE: Final = timedelta(days=1)
# Once per campaign: the digest that tells staff the robot still runs a long-past campaign.
STALE_DIGEST_JOB: Final = "digest-stale-campaign"
OUTGOING_KIND_LABELS: Final = {
    "receipt": "Thư xác nhận",
    "reminder": "Thư nhắc hạn",
    "digest": "Báo cáo hằng ngày",
    "notice": "Thư thông báo",
}


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


def _event_detail(
    ev: dbm.Event, names: dict[str, str], campaign: Campaign
) -> tuple[str, str] | None:
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
    if ev.kind == "reply-withheld-old":
        return "Thư cũ, không trả lời tự động", _old_mail_detail(ev, campaign)
    if ev.kind == "oversize":
        return "Thư quá lớn", f"{ev.detail or ''}{mail}".strip()
    if ev.kind == "send-failed":
        return (
            "Gửi thư thất bại",
            f"{ev.detail or ''}. Gửi lại: mailbot outbox retry --all-failed".lstrip(". "),
        )
    if ev.kind == "disk-low":
        return (
            "Ổ đĩa sắp đầy",
            f"Thư mục dữ liệu chỉ còn {ev.detail} trống: mailbot tạm ngừng nhận thư mới (thư "
            "vẫn nằm trên máy chủ, không mất) cho đến khi có thêm chỗ trống",
        )
    if ev.kind == "send-delayed":
        return (
            "Thư gửi đi bị chậm",
            f"{ev.detail or ''}. Máy chủ thư tạm thời không nhận; mailbot tiếp tục gửi lại "
            "(tối đa mỗi giờ một lần)".lstrip(". "),
        )
    return None


def _old_mail_detail(ev: dbm.Event, campaign: Campaign) -> str:
    """Staff's line for a mail recorded but not answered because it arrived long ago."""
    try:
        info = json.loads(ev.detail or "{}")
        arrived = local(datetime.fromisoformat(info["arrived_at"]), campaign)
        when = arrived.strftime("%H:%M ngày %d/%m/%Y")
    except (ValueError, KeyError, TypeError):
        info, when = {}, "(không rõ)"
    sender = info.get("from") or "(không rõ người gửi)"
    subject = f" (tiêu đề: “{info['subject']}”)" if info.get("subject") else ""
    days = info.get("max_days") or "?"
    return (
        f"Thư #{ev.mail_id} của {sender}{subject} đến máy chủ lúc {when}, đã quá {days} ngày: "
        "đã ghi nhận nhưng hệ thống không gửi trả lời tự động. Nếu cần trả lời, đề nghị cán bộ "
        f"trả lời trực tiếp hoặc chạy mailbot reprocess {ev.mail_id}"
    )


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
    for mail in dbm.mails_awaiting_confirmation(session):
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
    others: list[dbm.Event] = []
    for ev in dbm.events_since(session, since):
        if ev.at > now:
            continue
        if ev.kind == "other-mail":
            others.append(ev)
            continue
        shown = _event_detail(ev, names, campaign)
        if shown is not None:
            items.append(AttentionView(shown[0], shown[1], local(ev.at, campaign)))
    if others:
        items.append(_other_mail_line(others, campaign))
    return tuple(items)


def _other_mail_line(events: list[dbm.Event], campaign: Campaign) -> AttentionView:
    """One short line for the mail not from a unit and holding no form (not answered)."""
    shown = [f"{ev.detail or '(không rõ)'} (thư #{ev.mail_id})" for ev in events[:OTHER_MAIL_SHOWN]]
    rest = len(events) - len(shown)
    more = f"; và {rest} thư khác" if rest > 0 else ""
    return AttentionView(
        kind_label="Thư khác",
        detail=f"{len(events)} thư không phải của đơn vị trong danh sách, không kèm biểu mẫu, "
        f"không trả lời tự động: {'; '.join(shown)}{more}",
        when=local(events[-1].at, campaign),
    )


def mails_to_read(
    session: Session, now: datetime, campaign: Campaign, names: dict[str, str]
) -> tuple[ToReadView, ...]:
    """Units' mails without a form that no one has marked handled, received by `now`."""
    return tuple(
        ToReadView(
            mail_id=m.id,
            when=local(m.received_at, campaign),
            unit=names.get(m.unit_code or "", m.unit_code or ""),
            sender=m.from_addr or "(không rõ)",
            subject=m.subject or "",
            excerpt=m.excerpt or "",
        )
        for m in dbm.mails_for_staff(session)
        if m.received_at <= now
    )


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
    replaced = _replacements(session, since, now, campaign, names)
    attention = needs_attention(session, since, now, campaign, names)
    to_read = mails_to_read(session, now, campaign, names)
    overdue = tuple(f"{u.name} – {u.label}" for u in states if not u.complete) if after else ()
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
        overdue_units=overdue,
        after_deadline=after,
        since=local(since, campaign) if since is not None else None,
        attachment_name=name,
        office_name=config.outgoing.from_name,
        to_read=to_read,
        warnings=tuple(w.text for w in health_warnings(campaign, total, now)),
    )
    news = (
        bool(arrivals)
        or any(a.when is not None and since is not None and a.when >= since for a in attention)
        or any(since is not None and r.when >= since for r in to_read)
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
        plan = build_digest(session, campaign, config, now, export_bytes)
        dbm.claim_job_run(session, DIGEST_JOB, point, now, detail=json.dumps({"manual": True}))
        dbm.claim_job_run(session, MANUAL_DIGEST_JOB, now.isoformat(), now)
        row = _queue_digest_plan(
            session, plan, config, now, f"{MANUAL_DIGEST_JOB}:{now.isoformat()}"
        )
        return row.id
    if digest_due(session, campaign, config, now) is None:
        return _queue_stale_digest(session, campaign, config, now, export_bytes)
    plan = build_digest(session, campaign, config, now, export_bytes)
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
    plan = build_digest(session, campaign, config, now, export_bytes)
    row = _queue_digest_plan(session, plan, config, now, f"{STALE_DIGEST_JOB}:{campaign.id}")
    log.warning("queued a digest telling staff that campaign %s is long past", campaign.id)
    return row.id
