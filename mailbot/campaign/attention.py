"""What the digest asks a person to do, in plain words, each with its one-click actions.

Held mail, senders to confirm, mail not answered, units' questions, bounced mail. An action
is a link from `link_for` (a signed `mailto:` to the robot) or, without one, a sentence
saying what to do: never a command line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.schedule import local
from mailbot.campaign.status import QUARANTINE_REASONS
from mailbot.campaign.views import AttentionView, BounceView, DigestAction, ToReadView
from mailbot.units import Register, Unit
from rules.campaign import Campaign

# (action kind, mail id, unit code or None) -> the link's href, or None when there is none.
LinkFor = Callable[[str, int, str | None], str | None]

# How many senders the "Thư khác" line names before it only counts the rest.
OTHER_MAIL_SHOWN: Final = 5
# How many likely units an unknown sender's mail offers to count it for.
MAX_CANDIDATES: Final = 3
# A domain shared by more units than this says nothing about the sender (a public provider,
# the district's own domain).
DOMAIN_HINT_MAX_UNITS: Final = 2
OUTGOING_KIND_LABELS: Final = {
    "receipt": "Thư xác nhận",
    "reminder": "Thư nhắc hạn",
    "digest": "Báo cáo hằng ngày",
    "notice": "Thư thông báo",
}
# Why a mail came back (its DSN status), as staff read it; the class (5.x.x) when not listed.
BOUNCE_REASONS: Final = {
    "5.1.1": "địa chỉ không tồn tại",
    "5.1.2": "tên miền của địa chỉ không tồn tại",
    "5.1.10": "địa chỉ không tồn tại",
    "5.2.1": "hộp thư đã bị khóa",
    "5.2.2": "hộp thư đã đầy",
    "4.2.2": "hộp thư đã đầy",
    "5.3.4": "thư quá lớn so với mức hộp thư nhận",
    "5.7.1": "máy chủ của người nhận từ chối thư",
}
BOUNCE_CLASS_REASONS: Final = {
    "5": "không gửi đến được",
    "4": "tạm thời chưa gửi đến được",
}
_OUTBOX_DETAIL_RE = re.compile(r"^(\w+) \S+ to (.+?): ")


def action(
    link_for: LinkFor | None, kind: str, mail_id: int, unit: str | None, label: str
) -> DigestAction:
    """One action on one mail: its link when `link_for` gives one, else the sentence to say."""
    href = link_for(kind, mail_id, unit) if link_for is not None else None
    return DigestAction(kind=kind, label=label, href=href, mail_id=mail_id)


def candidates(mail: dbm.Mail, register: Register) -> tuple[Unit, ...]:
    """Units an unknown sender's mail likely comes from, most likely first.

    The unit named in the subject; a unit with the same mailbox name at another provider
    (dangbo.khuongtrung@gmail vs @thanhxuan); a unit alone in the sender's domain.
    """
    found: list[Unit] = []
    by_subject = register.by_name(mail.subject or "") if mail.subject else None
    if by_subject is not None:
        found.append(by_subject)
    sender = (mail.from_addr or "").lower()
    local_part, _, domain = sender.rpartition("@")
    if local_part:
        found.extend(
            u for u in register if any(e.lower().rpartition("@")[0] == local_part for e in u.emails)
        )
    if domain:
        in_domain = [u for u in register if any(e.lower().endswith("@" + domain) for e in u.emails)]
        if len(in_domain) <= DOMAIN_HINT_MAX_UNITS:
            found.extend(in_domain)
    unique: dict[str, Unit] = {}
    for unit in found:
        unique.setdefault(unit.code, unit)
    return tuple(unique.values())[:MAX_CANDIDATES]


def _subject(mail: dbm.Mail) -> str:
    return f" (tiêu đề “{mail.subject}”)" if mail.subject else ""


def _held(
    mail: dbm.Mail, register: Register, link_for: LinkFor | None, campaign: Campaign
) -> AttentionView:
    """A quarantined mail: what it is, why it waits, and what staff may do."""
    sender = mail.from_addr or "(không rõ người gửi)"
    reason = QUARANTINE_REASONS.get(mail.quarantine_reason or "", "cần cán bộ xem")
    when = local(mail.received_at, campaign)
    actions: list[DigestAction] = []
    if mail.quarantine_reason == "processing-failed":
        label = "Thư chưa xử lý được"
        detail = f"Thư số {mail.id} của {sender}{_subject(mail)}: {reason}."
        actions.append(action(link_for, "reprocess", mail.id, None, "Xử lý lại"))
    else:
        if mail.quarantine_reason == "dmarc-fail":
            label = "Thư bị giữ lại"
            why = "không qua kiểm tra xác thực người gửi, có thể do người khác mạo danh địa chỉ này"
        else:
            label = "Người gửi không xác định"
            why = f"có biểu mẫu nhưng {reason}"
        detail = (
            f"Thư số {mail.id} của {sender}{_subject(mail)} {why}. Nếu biết chắc là thư của "
            "đơn vị nào, đề nghị tính cho đơn vị đó; nếu không, từ chối."
        )
        for unit in candidates(mail, register):
            actions.append(action(link_for, "assign", mail.id, unit.code, f"Tính cho {unit.name}"))
        actions.append(action(link_for, "assign", mail.id, None, "Tính cho đơn vị khác"))
    actions.append(action(link_for, "reject", mail.id, None, "Từ chối"))
    return AttentionView(label, detail, when, tuple(actions))


def _awaiting(
    mail: dbm.Mail, names: dict[str, str], link_for: LinkFor | None, campaign: Campaign
) -> AttentionView:
    unit = names.get(mail.unit_code or "", "một đơn vị")
    return AttentionView(
        "Chờ xác nhận người gửi",
        f"{mail.from_addr} gửi biểu thay cho {unit} (thư số {mail.id}). Biểu chỉ được tính "
        "khi cán bộ xác nhận địa chỉ này đúng là của đơn vị.",
        local(mail.received_at, campaign),
        (
            action(link_for, "confirm", mail.id, mail.unit_code, "Xác nhận người gửi"),
            action(link_for, "reject", mail.id, None, "Từ chối"),
        ),
    )


def _old_mail(ev: dbm.Event, campaign: Campaign, link_for: LinkFor | None) -> AttentionView:
    """A mail recorded but not answered because it reached the server long ago."""
    try:
        info = json.loads(ev.detail or "{}")
        arrived = local(datetime.fromisoformat(info["arrived_at"]), campaign)
        when = arrived.strftime("%H:%M ngày %d/%m/%Y")
    except (ValueError, KeyError, TypeError):
        info, when = {}, "(không rõ)"
    sender = info.get("from") or "(không rõ người gửi)"
    subject = f" (tiêu đề “{info['subject']}”)" if info.get("subject") else ""
    days = info.get("max_days") or "?"
    mail_id = ev.mail_id or 0
    return AttentionView(
        "Thư cũ, không trả lời tự động",
        f"Thư số {mail_id} của {sender}{subject} đến máy chủ lúc {when}, đã quá {days} ngày: "
        "đã ghi nhận nhưng hệ thống không gửi trả lời tự động. Nếu cần trả lời, đề nghị cán bộ "
        "trả lời trực tiếp, hoặc xử lý lại để hệ thống gửi trả lời.",
        local(ev.at, campaign),
        (action(link_for, "reprocess", mail_id, None, "Xử lý lại và gửi trả lời"),)
        if ev.mail_id
        else (),
    )


def _outgoing(detail: str | None) -> str:
    """'Thư nhắc hạn gửi a@b' from an outbox event's detail ('reminder <id> to a@b: …')."""
    found = _OUTBOX_DETAIL_RE.match(detail or "")
    if found is None:
        return "Một thư gửi đi"
    return f"{OUTGOING_KIND_LABELS.get(found.group(1), 'Thư')} gửi {found.group(2)}"


def _event_item(
    ev: dbm.Event, names: dict[str, str], campaign: Campaign, link_for: LinkFor | None
) -> AttentionView | None:
    """An event staff should act on, or None for events shown another way (or not at all)."""
    unit = names.get(ev.unit_code or "", "")
    mail = f" (thư số {ev.mail_id})" if ev.mail_id else ""
    when = local(ev.at, campaign)
    if ev.kind == "unreadable-file":
        who = f" của {unit}" if unit else ""
        return AttentionView(
            "Tệp không đọc được",
            f"Không đọc được tệp {ev.detail or 'đính kèm'}{who}{mail}; hệ thống đã báo đơn vị "
            "gửi lại.",
            when,
        )
    if ev.kind == "rate-limited":
        return AttentionView(
            "Không trả lời tự động",
            f"{ev.detail} đã nhận đủ số thư tự động trong một giờ{mail}; thư này chưa được trả "
            "lời.",
            when,
        )
    if ev.kind == "reply-withheld-old":
        return _old_mail(ev, campaign, link_for)
    if ev.kind == "oversize":
        size, _, sender = (ev.detail or "").partition(" bytes from ")
        megabytes = f" ({int(size) / 2**20:.1f} MB)" if size.isdigit() else ""
        return AttentionView(
            "Thư quá lớn",
            f"Thư của {sender or '(không rõ người gửi)'}{megabytes}{mail} quá lớn, hệ thống "
            "không tải về và đã đề nghị người gửi gửi lại tệp nhỏ hơn.",
            when,
        )
    if ev.kind == "send-failed":
        return AttentionView(
            "Gửi thư thất bại",
            f"{_outgoing(ev.detail)} không gửi được. Đề nghị đồng chí quản trị hệ thống kiểm "
            "tra máy chủ thư và gửi lại.",
            when,
        )
    if ev.kind == "disk-low":
        return AttentionView(
            "Ổ đĩa sắp đầy",
            f"Thư mục dữ liệu chỉ còn {ev.detail} trống: hệ thống tạm ngừng nhận thư mới (thư "
            "vẫn nằm trên máy chủ, không mất) cho đến khi có thêm chỗ trống.",
            when,
        )
    if ev.kind == "send-delayed":
        return AttentionView(
            "Thư gửi đi bị chậm",
            f"{_outgoing(ev.detail)} chưa gửi được: máy chủ thư tạm thời không nhận; hệ thống "
            "tiếp tục gửi lại (tối đa mỗi giờ một lần).",
            when,
        )
    return None


def needs_attention(
    session: Session,
    since: datetime | None,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
    link_for: LinkFor | None = None,
    district: str | None = None,
) -> tuple[AttentionView, ...]:
    """What a person must act on: held mail, unconfirmed senders, and recent events.

    `district` lets a unit named without it in a held mail's subject be offered.
    """
    items: list[AttentionView] = []
    held = dbm.mails_with_status(session, "quarantined")
    register = register_of(session, district) if held else Register(())
    for mail in held:
        items.append(_held(mail, register, link_for, campaign))
    for mail in dbm.mails_awaiting_confirmation(session):
        items.append(_awaiting(mail, names, link_for, campaign))
    if since is None:
        since = campaign.deadline - timedelta(days=365)
    others: list[dbm.Event] = []
    for ev in dbm.events_since(session, since):
        if ev.at > now:
            continue
        if ev.kind == "other-mail":
            others.append(ev)
            continue
        shown = _event_item(ev, names, campaign, link_for)
        if shown is not None:
            items.append(shown)
    if others:
        items.append(_other_mail_line(others, campaign))
    return tuple(items)


def register_of(session: Session, district: str | None) -> Register:
    """The register with its confirmed addresses: where a held mail's likely units come from."""
    return Register(
        (
            Unit(code=r.code, name=r.name, emails=r.emails, aliases=r.aliases)
            for r in dbm.unit_register(session)
        ),
        district=district,
    )


def _other_mail_line(events: list[dbm.Event], campaign: Campaign) -> AttentionView:
    """One short line for the mail not from a unit and holding no form (not answered)."""
    shown = [
        f"{ev.detail or '(không rõ)'} (thư số {ev.mail_id})" for ev in events[:OTHER_MAIL_SHOWN]
    ]
    rest = len(events) - len(shown)
    more = f"; và {rest} thư khác" if rest > 0 else ""
    return AttentionView(
        kind_label="Thư khác",
        detail=f"{len(events)} thư không phải của đơn vị trong danh sách, không kèm biểu mẫu, "
        f"không trả lời tự động: {'; '.join(shown)}{more}",
        when=local(events[-1].at, campaign),
    )


def bounces(
    session: Session,
    since: datetime | None,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
) -> tuple[BounceView, ...]:
    """Our mails that came back since `since`, each naming the unit it was for."""
    start = since if since is not None else campaign.deadline - timedelta(days=365)
    out = []
    for ev in dbm.events_since(session, start, ("bounce",)):
        if ev.at > now:
            continue
        try:
            info = json.loads(ev.detail or "{}")
        except ValueError:
            info = {}
        status = str(info.get("status") or "")
        reason = BOUNCE_REASONS.get(status) or BOUNCE_CLASS_REASONS.get(
            status[:1], "không gửi đến được"
        )
        out.append(
            BounceView(
                when=local(ev.at, campaign),
                what=OUTGOING_KIND_LABELS.get(info.get("kind") or "", "Thư"),
                unit=names.get(ev.unit_code or "", ""),
                recipient=info.get("recipient") or "(không rõ người nhận)",
                reason=reason,
            )
        )
    return tuple(out)


def mails_to_read(
    session: Session,
    now: datetime,
    campaign: Campaign,
    names: dict[str, str],
    link_for: LinkFor | None = None,
) -> tuple[ToReadView, ...]:
    """Units' mails without a form that no one has marked handled, received by `now`."""
    return tuple(
        ToReadView(
            mail_id=m.id,
            when=local(m.received_at, campaign),
            unit=names.get(m.unit_code or "", ""),
            sender=m.from_addr or "(không rõ)",
            subject=m.subject or "",
            excerpt=m.excerpt or "",
            actions=(action(link_for, "handled", m.id, None, "Đã xử lý"),),
        )
        for m in dbm.mails_for_staff(session)
        if m.received_at <= now
    )
