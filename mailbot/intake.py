"""The pure core of the robot: one raw mail in, one decided outcome out (no I/O at all)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import getaddresses
from typing import Literal

from mailbot.mail.auth import dmarc_failed
from mailbot.mail.auto import auto_reply_reason, automatic_reason, relay_reason
from mailbot.mail.body import excerpt
from mailbot.mail.bounce import Bounce, parse_bounce
from mailbot.mail.compose import compose
from mailbot.mail.message import ParsedMail
from mailbot.mail.views import FileView, NoticeView, ReceiptView, file_view
from mailbot.mail.walk import parse_mail
from mailbot.units import Register, Unit
from outbox_templates import render
from outbox_templates.labels import form_required_label
from parsers import parse_file
from parsers.convert import OfficeConverter
from parsers.model import Form, ParseResult
from rules import judge
from rules.base import FORM_NAMES
from rules.campaign import Campaign

Action = Literal["accepted", "quarantined", "ignored", "bounce"]


@dataclass(frozen=True)
class Tools:
    """The external converters the decision may use; the default is "nothing available".

    `office` converts .doc/.odt/.ods to OOXML (LibreOffice); `rar` says whether a RAR
    extraction tool is installed. The shell probes the machine (workers.local_tools).
    """

    office: OfficeConverter | None = None
    rar: bool = False


@dataclass(frozen=True)
class IntakeContext:
    """Everything the decision needs besides the mail, gathered by the shell beforehand."""

    campaign: Campaign
    register: Register
    received_at: datetime
    from_address: str
    from_name: str
    message_id_domain: str
    own_addresses: tuple[str, ...] = ()
    trusted_authserv_id: str | None = None
    max_attachment_bytes: int = 20 * 1024 * 1024
    # Forms each unit already has a valid latest version of (unit code -> {"M1", ...}).
    forms_on_file: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Set when staff assigned this mail to a unit: their word replaces the sender checks.
    assigned_unit: str | None = None
    tools: Tools = field(default_factory=Tools)


@dataclass(frozen=True)
class Submission:
    """One form found in the mail, ready to be stored against a unit."""

    unit_code: str
    form: Form
    file_name: str
    valid: bool
    late: bool


@dataclass(frozen=True)
class Reply:
    """An automatic answer, already rendered and composed, waiting for the outbox."""

    kind: Literal["receipt", "notice"]
    message_id: str
    to: str
    subject: str
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """What to record and whom to answer for one incoming mail."""

    action: Action
    reason: str | None
    mail: ParsedMail
    unit: Unit | None = None
    awaiting_confirmation: bool = False
    late: bool = False
    results: tuple[ParseResult, ...] = ()
    submissions: tuple[Submission, ...] = ()
    reply: Reply | None = None
    bounce: Bounce | None = None
    # A unit's mail that carries no form (a question, a cover letter): listed for staff to
    # read until they mark it handled, with the first lines of its text.
    for_staff: bool = False
    excerpt: str | None = None


def _late(ctx: IntakeContext) -> bool:
    return ctx.received_at >= ctx.campaign.deadline


def _identify(
    mail: ParsedMail, results: list[ParseResult], register: Register
) -> tuple[Unit | None, bool]:
    """The unit by sender address, else by the unit name written on a form (unconfirmed)."""
    unit = register.by_email(mail.from_addr) if mail.from_addr else None
    if unit is not None:
        return unit, False
    # A unit's own mailbox that passed the mail on unchanged ("Resent-From") vouches for it.
    for _, addr in getaddresses(list(mail.header_all("Resent-From"))):
        unit = register.by_email(addr.lower()) if addr else None
        if unit is not None:
            return unit, False
    for result in results:
        for form in result.forms:
            if form.unit:
                unit = register.by_name(form.unit)
                if unit is not None:
                    return unit, True
    return None, False


def _reply(
    kind: Literal["receipt", "notice"], view: object, mail: ParsedMail, ctx: IntakeContext
) -> Reply:
    rendered = render(kind, view)
    to = answer_address(mail, ctx)
    message_id, raw = compose(
        rendered=rendered,
        from_addr=ctx.from_address,
        from_name=ctx.from_name,
        to=[to],
        message_id_domain=ctx.message_id_domain,
        auto_submitted="auto-replied",
        in_reply_to=mail.message_id,
        references=mail.references,
        original_subject=mail.subject,
        date=ctx.received_at,
    )
    return Reply(kind, message_id, to, rendered.subject, raw)


_SYSTEM_LOCALPARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply")


def answer_address(mail: ParsedMail, ctx: IntakeContext) -> str:
    """Where an answer goes: Reply-To when it names a person (RFC 5322 3.6.2), else From."""
    own = {a.lower() for a in ctx.own_addresses}
    for addr in mail.reply_to:
        local = addr.split("@", 1)[0].lower()
        if "@" in addr and addr.lower() not in own and not local.startswith(_SYSTEM_LOCALPARTS):
            return addr.lower()
    return mail.from_addr


def _owed_names(unit: Unit, campaign: Campaign) -> tuple[str, ...]:
    """The forms this unit must send, named as in a list: 'Mẫu số 02 (cấp cơ sở)'."""
    specs = {f.code: f for f in campaign.forms}
    return tuple(
        form_required_label(c, specs[c].title, specs[c].level)
        if c in specs
        else form_required_label(c)
        for c in campaign.forms_owed(unit.forms)
    )


def _notice(
    reason: str,
    mail: ParsedMail,
    ctx: IntakeContext,
    *,
    unit: Unit | None = None,
    for_staff: bool = False,
) -> Reply:
    view = NoticeView(
        recipient=mail.from_name or None,
        reason_code=reason,
        received_at=ctx.received_at.astimezone(ctx.campaign.tz),
        original_subject=mail.subject,
        max_size_mb=ctx.max_attachment_bytes // (1024 * 1024),
        submission_address=ctx.campaign.submission_address or ctx.from_address,
        campaign_name=ctx.campaign.name,
        deadline_text=ctx.campaign.deadline_text,
        deadline_words=ctx.campaign.deadline_words,
        owed_forms=_owed_names(unit, ctx.campaign) if unit is not None else (),
        for_staff=for_staff,
    )
    return _reply("notice", view, mail, ctx)


def process_mail(raw: bytes, ctx: IntakeContext) -> Outcome:
    """Decide everything about one raw mail: who sent it, which forms it holds, what to answer."""
    mail = parse_mail(raw, max_attachment_bytes=ctx.max_attachment_bytes, rar=ctx.tools.rar)
    bounce = parse_bounce(mail)
    if bounce is not None:
        return Outcome("bounce", "delivery report", mail, bounce=bounce)
    machine = automatic_reason(mail, ctx.own_addresses, ctx.message_id_domain)
    if machine is not None:
        return Outcome("ignored", machine, mail)
    # A person's mail that came through a list or a forwarding rule: its forms count, but an
    # automatic answer could loop or reach a whole list, so it gets none.
    silent = relay_reason(mail)
    if silent is not None and not mail.attachments and not mail.problems:
        return Outcome("ignored", silent, mail)
    outcome = _decide(mail, ctx)
    return replace(outcome, reply=None, reason=silent) if silent is not None else outcome


def _decide(mail: ParsedMail, ctx: IntakeContext) -> Outcome:
    """A person's mail: identify the unit, read the forms, write the answer."""
    assigned = ctx.register.by_code(ctx.assigned_unit) if ctx.assigned_unit else None
    if assigned is None and dmarc_failed(mail, ctx.trusted_authserv_id):
        return Outcome("quarantined", "dmarc-fail", mail)

    results = [
        judge(parse_file(att.content, att.filename, office=ctx.tools.office), ctx.campaign)
        for att in mail.attachments
    ]
    unit: Unit | None = assigned
    awaiting = False
    if unit is None:
        unit, awaiting = _identify(mail, results, ctx.register)
    late = _late(ctx)
    if unit is None:
        reply = _notice("quarantined-unknown-unit", mail, ctx) if mail.from_addr else None
        return Outcome("quarantined", "unknown-unit", mail, results=tuple(results), reply=reply)
    if not mail.attachments and not mail.problems:
        return Outcome(
            "accepted",
            "no-attachment",
            mail,
            unit=unit,
            awaiting_confirmation=awaiting,
            late=late,
            reply=_notice("no-attachment", mail, ctx, unit=unit, for_staff=True),
            for_staff=True,
            excerpt=excerpt(mail.body_text),
        )

    submissions: list[Submission] = []
    for result in results:
        for form in result.forms:
            valid = not any(p.severity == "error" for p in form.problems)
            submissions.append(Submission(unit.code, form, result.file, valid, late))

    on_file = set(ctx.forms_on_file.get(unit.code, frozenset()))
    on_file |= {s.form.form for s in submissions if s.valid}
    owed = ctx.campaign.forms_owed(unit.forms)
    missing = tuple(FORM_NAMES.get(f, f) for f in owed if f not in on_file)
    # No form at all in the mail (a cover letter, photos, a file that is not a form): a
    # person reads it, whatever it asks.
    for_staff = not submissions
    files: list[FileView] = [file_view(r) for r in results]
    files.extend(file_view(p.as_result()) for p in mail.problems)
    view = ReceiptView(
        recipient_name=mail.from_name or None,
        unit_name=unit.name,
        awaiting_confirmation=awaiting,
        campaign_name=ctx.campaign.name,
        deadline_text=ctx.campaign.deadline_text,
        deadline=ctx.campaign.deadline.date(),
        received_at=ctx.received_at.astimezone(ctx.campaign.tz),
        late=late,
        files=tuple(files),
        missing_forms=missing,
        all_complete=not missing,
        submission_address=ctx.campaign.submission_address or ctx.from_address,
        original_subject=mail.subject,
        deadline_words=ctx.campaign.deadline_words,
        for_staff=for_staff,
    )
    return Outcome(
        "accepted",
        None,
        mail,
        unit=unit,
        awaiting_confirmation=awaiting,
        late=late,
        results=tuple(results),
        submissions=tuple(submissions),
        reply=_reply("receipt", view, mail, ctx),
        for_staff=for_staff,
        excerpt=excerpt(mail.body_text) if for_staff else None,
    )


def oversize_reply(headers: bytes, ctx: IntakeContext) -> Reply | None:
    """A notice for a mail too large to download, from its headers alone (None: don't answer)."""
    mail = parse_mail(headers or b"\r\n")
    if not mail.from_addr:
        return None
    if auto_reply_reason(mail, ctx.own_addresses, ctx.message_id_domain) is not None:
        return None
    if dmarc_failed(mail, ctx.trusted_authserv_id):
        return None
    return _notice("oversize", mail, ctx)
