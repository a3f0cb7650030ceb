"""The pure core of the robot: one raw mail in, one decided outcome out (no I/O at all)."""

from __future__ import annotations

import email
import email.policy
import re
import unicodedata
from dataclasses import replace
from email.utils import getaddresses
from typing import Literal

from mailbot.decision import (
    Attribution,
    IntakeContext,
    Outcome,
    PriorVersion,
    Reply,
    Submission,
    model_label,
)
from mailbot.extras import settle_extras
from mailbot.mail.auth import aligned, dmarc_failed, sender_authenticated
from mailbot.mail.auto import (
    auto_reply_reason,
    automatic_reason,
    carries_documents,
    is_system_address,
    relay_reason,
    replies_to_us,
)
from mailbot.mail.body import excerpt
from mailbot.mail.bounce import parse_bounce
from mailbot.mail.compose import compose
from mailbot.mail.headers import decode_header_text, sanitize_filename
from mailbot.mail.message import ParsedMail
from mailbot.mail.views import (
    FileView,
    FormView,
    NoticeView,
    PreviousView,
    ReceiptView,
    file_view,
)
from mailbot.mail.walk import parse_mail
from mailbot.staff.commands import read_command
from mailbot.units import Register, Unit
from outbox_templates import render
from outbox_templates.labels import form_required_label
from parsers import parse_file
from parsers.model import FORMATS, Form, ParseResult
from parsers.problems import problem
from rules import judge
from rules.campaign import Campaign

# The reason of a mail that replied to one of ours with no form: staff answer it by hand.
REPLY_TO_OUR_MAIL = "reply-to-our-mail"


def _late(ctx: IntakeContext) -> bool:
    return ctx.received_at >= ctx.campaign.deadline


def _vouched(mail: ParsedMail, ctx: IntakeContext, address: str | None = None) -> bool:
    """Whether a registered address may be believed: always without a trusted server
    (nothing can be checked then: `mailbot check` warns), else only on an aligned pass."""
    if not ctx.trusted_authserv_id:
        return True
    return sender_authenticated(mail, ctx.trusted_authserv_id, address)


def _attribute(
    form: Form, sender: Unit | None, mail_unit: Unit, register: Register
) -> tuple[Unit, Attribution]:
    """The unit a form is recorded for: the one it names when the register knows it.

    `sender` is the registered unit whose address sent the mail (or that staff assigned it
    to), None when the address is unknown (then `mail_unit` was found by a name on a form).
    """
    named = register.by_name(form.unit) if form.unit else None
    if sender is None:
        return named or mail_unit, "unconfirmed-sender"
    if named is None:
        return sender, "unknown-name" if form.unit else "no-name"
    if named.code == sender.code:
        return sender, "own"
    if register.is_under(named.code, sender.code):
        return named, "under"
    return named, "other"


def _model_key(label: str) -> str:
    return " ".join(unicodedata.normalize("NFC", label).casefold().split())


def dropped_models(previous: PriorVersion, form: Form) -> tuple[str, ...]:
    """The models of the earlier version that the new form no longer lists."""
    kept = {_model_key(model_label(e.name, e.model)) for e in form.entries}
    return tuple(m for m in previous.models if _model_key(m) not in kept)


def _identify(
    mail: ParsedMail, results: list[ParseResult], ctx: IntakeContext
) -> tuple[Unit | None, bool, bool]:
    """(unit, awaiting confirmation, registered address not vouched for).

    The unit by sender address, else by the unit name written on a form (unconfirmed). A
    registered address our trusted server does not vouch for names the unit, but the mail
    awaits staff confirmation: a forged From never replaces an accepted form on its own.
    """
    register = ctx.register
    unit = register.by_email(mail.from_addr) if mail.from_addr else None
    if unit is not None:
        unverified = not _vouched(mail, ctx)
        return unit, unverified, unverified
    # A unit's own mailbox that passed the mail on unchanged ("Resent-From") vouches for it.
    for _, addr in getaddresses(list(mail.header_all("Resent-From"))):
        unit = register.by_email(addr.lower()) if addr else None
        if unit is not None:
            unverified = not _vouched(mail, ctx, addr.lower())
            return unit, unverified, unverified
    for result in results:
        for form in result.forms:
            if form.unit:
                unit = register.by_name(form.unit)
                if unit is not None:
                    return unit, True, False
    return None, False, False


def _reply(
    kind: Literal["receipt", "notice"], view: object, mail: ParsedMail, ctx: IntakeContext
) -> Reply | None:
    to = answer_address(mail, ctx, authenticated=_vouched(mail, ctx))
    if not to or is_system_address(to):
        return None  # never an automatic mail to a machine, whatever the mail looked like
    rendered = render(kind, view)
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


def answer_address(mail: ParsedMail, ctx: IntakeContext, authenticated: bool = True) -> str:
    """Where an answer goes: Reply-To when it names a person (RFC 5322 3.6.2), else From.

    A Reply-To in another domain than From is followed only on authenticated mail: on a
    forged From it would hand the receipt to whoever forged it.
    """
    own = {a.lower() for a in ctx.own_addresses}
    from_domain = mail.from_addr.rpartition("@")[2]
    for addr in mail.reply_to:
        if "@" not in addr or addr.lower() in own or is_system_address(addr):
            continue
        if not authenticated and not aligned(addr.rpartition("@")[2], from_domain):
            continue
        return addr.lower()
    return mail.from_addr


def _owed_name(code: str, campaign: Campaign) -> str:
    """A form as named in a list: 'Mẫu số 02 (cấp cơ sở)'."""
    spec = next((f for f in campaign.forms if f.code == code), None)
    return form_required_label(code, spec.title, spec.level) if spec else form_required_label(code)


def _owed_names(unit: Unit, campaign: Campaign) -> tuple[str, ...]:
    """The forms this unit must send, named as in a list."""
    return tuple(_owed_name(c, campaign) for c in campaign.forms_owed(unit.forms))


def _notice(
    reason: str,
    mail: ParsedMail,
    ctx: IntakeContext,
    *,
    unit: Unit | None = None,
    for_staff: bool = False,
) -> Reply | None:
    if unit is None and mail.from_addr and _vouched(mail, ctx):
        unit = ctx.register.by_email(mail.from_addr)
    view = NoticeView(
        unit_name=unit.name if unit is not None else None,
        reason_code=reason,
        received_at=ctx.received_at.astimezone(ctx.campaign.tz),
        original_subject=mail.subject,
        max_size_mb=ctx.max_attachment_bytes // (1024 * 1024),
        submission_address=ctx.campaign.submission_address or ctx.from_address,
        campaign_name=ctx.campaign.name,
        contact=ctx.contact,
        office_name=ctx.from_name,
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
        return Outcome("ignored", machine, mail, other_mail=_stranger(mail, ctx))
    command = read_command(mail, ctx.staff, ctx.received_at, ctx.trusted_authserv_id)
    if command is not None:
        if not command.answerable:
            # A code from an address that may not act: nothing is done, staff see the mail.
            return Outcome(
                "ignored", "staff-code-not-staff", mail, other_mail=True, command=command
            )
        return Outcome("command", command.refused, mail, command=command)
    # A person's mail that came through a list or a forwarding rule: its forms count, but an
    # automatic answer could loop or reach a whole list, so it gets none.
    silent = relay_reason(mail)
    if silent is not None and not mail.attachments and not mail.problems:
        return Outcome("ignored", silent, mail, other_mail=_stranger(mail, ctx))
    if (
        silent is None
        and replies_to_us(mail, ctx.message_id_domain)
        and not carries_documents(mail)
    ):
        # A reply to one of our automatic mails without a form: a naive auto-responder (no
        # auto headers) or a person's question. Staff read it; no automatic answer, which
        # stops a loop with an auto-responder at one mail.
        silent = REPLY_TO_OUR_MAIL
    outcome = _decide(mail, ctx)
    if silent is None:
        return outcome
    if outcome.action == "quarantined":
        return replace(outcome, reply=None)  # its quarantine reason is what staff need
    return replace(outcome, reply=None, reason=silent)


def _stranger(mail: ParsedMail, ctx: IntakeContext) -> bool:
    """Whether the sender is neither a unit in the register nor this robot itself."""
    sender = mail.from_addr.lower()
    if sender and sender in {a.lower() for a in ctx.own_addresses}:
        return False
    return not sender or ctx.register.by_email(sender) is None


def _decide(mail: ParsedMail, ctx: IntakeContext, read: list[ParseResult] | None = None) -> Outcome:
    """A person's mail: identify the unit, read the forms, write the answer.

    `read`: the files' results when they are already known (not read again).
    """
    assigned = ctx.register.by_code(ctx.assigned_unit) if ctx.assigned_unit else None
    if assigned is None and dmarc_failed(mail, ctx.trusted_authserv_id):
        return Outcome("quarantined", "dmarc-fail", mail)

    if read is not None:
        results = read
    else:
        results = settle_extras(
            [
                judge(parse_file(att.content, att.filename, office=ctx.tools.office), ctx.campaign)
                for att in mail.attachments
            ],
            mail.attachments,
        )
    unit: Unit | None = assigned
    awaiting = unverified = False
    if unit is None:
        unit, awaiting, unverified = _identify(mail, results, ctx)
    late = _late(ctx)
    if unit is None and not any(r.forms for r in results):
        # Not a unit, and no form to say which unit it might be: a stranger's mail, a
        # newsletter, an invoice. Answering would only teach spammers our address works.
        return Outcome("ignored", "other-mail", mail, results=tuple(results), other_mail=True)
    if unit is None:
        reply = _notice("quarantined-unknown-unit", mail, ctx) if mail.from_addr else None
        return Outcome("quarantined", "unknown-unit", mail, results=tuple(results), reply=reply)
    if not results and not mail.problems:
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

    sender = None if awaiting else unit
    versions = dict(ctx.versions_on_file)
    submissions: list[Submission] = []
    files: list[FileView] = []
    for result in results:
        fv = file_view(result)
        form_views: list[FormView] = []
        for form, form_v in zip(result.forms, fv.forms, strict=True):
            valid = not any(p.severity == "error" for p in form.problems)
            target, attribution = _attribute(form, sender, unit, ctx.register)
            sub = Submission(
                target.code,
                form,
                result.file,
                valid,
                late,
                sent_by=sender.code if sender else None,
                attribution=attribution,
                awaiting=awaiting or attribution == "other",
                previous=versions.get((target.code, form.form)),
            )
            if sub.valid and not sub.awaiting:
                # A second copy of the same form in this mail replaces the first one.
                versions[(target.code, form.form)] = PriorVersion(
                    ctx.received_at, tuple(model_label(e.name, e.model) for e in form.entries)
                )
            submissions.append(sub)
            form_views.append(_with_attribution(form_v, sub, target, sender, ctx))
        files.append(replace(fv, forms=tuple(form_views)))

    on_file = set(ctx.forms_on_file.get(unit.code, frozenset()))
    on_file |= {
        s.form.form for s in submissions if s.valid and not s.awaiting and s.unit_code == unit.code
    }
    owed = ctx.campaign.forms_owed(unit.forms)
    # "Còn thiếu" is said only of a form not received at all: one sent in this mail with
    # errors, or awaiting confirmation, is named as such beside its form instead.
    received = {s.form.form for s in submissions if s.unit_code == unit.code}
    earlier = ctx.forms_not_counted.get(unit.code, {})
    pending = [f for f in owed if f not in on_file and f not in received]
    missing = tuple(_owed_name(f, ctx.campaign) for f in pending if f not in earlier)
    earlier_errors = tuple(
        _owed_name(f, ctx.campaign) for f in pending if earlier.get(f) == "errors"
    )
    earlier_awaiting = tuple(
        _owed_name(f, ctx.campaign) for f in pending if earlier.get(f) == "awaiting"
    )
    complete = all(f in on_file for f in owed)
    # No form at all in the mail (a cover letter, photos, a file that is not a form): a
    # person reads it, whatever it asks.
    for_staff = not submissions
    files.extend(file_view(p.as_result()) for p in mail.problems)
    view = ReceiptView(
        unit_name=unit.name,
        awaiting_confirmation=awaiting,
        campaign_name=ctx.campaign.name,
        deadline_text=ctx.campaign.deadline_text,
        deadline=ctx.campaign.deadline.date(),
        received_at=ctx.received_at.astimezone(ctx.campaign.tz),
        late=late,
        files=tuple(files),
        missing_forms=missing,
        earlier_forms_to_fix=earlier_errors,
        earlier_forms_awaiting=earlier_awaiting,
        all_complete=complete,
        submission_address=ctx.campaign.submission_address or ctx.from_address,
        contact=ctx.contact,
        office_name=ctx.from_name,
        original_subject=mail.subject,
        sender_unverified=unverified,
        deadline_words=ctx.campaign.deadline_words,
        for_staff=for_staff,
    )
    return Outcome(
        "accepted",
        "unverified-sender" if unverified else None,
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


TOO_COMPLEX = "too-complex"
_MAX_NAMES = 50


def _attachment_names(raw: bytes) -> list[str]:
    """The file names in a mail, from its MIME headers alone (nothing decoded or unpacked)."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        names = []
        for part in msg.walk():
            name = part.get_filename()
            if name:
                names.append(sanitize_filename(decode_header_text(str(name))))
            if len(names) >= _MAX_NAMES:
                break
        return names
    except Exception:  # noqa: BLE001 - a mail this broken is answered without names
        return []


def too_complex_outcome(raw: bytes, ctx: IntakeContext) -> Outcome:
    """The answer to a mail whose decision ran out of time or memory once: each of its files
    is "too large or too complex" (file-too-large), read from the headers only, so the
    mail is answered instead of stalling the queue again."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    mail = parse_mail(head + b"\r\n\r\n")
    if parse_bounce(mail) is not None:
        return Outcome("ignored", f"{TOO_COMPLEX}: delivery report", mail)
    machine = automatic_reason(mail, ctx.own_addresses, ctx.message_id_domain)
    if machine is not None:
        return Outcome("ignored", machine, mail)
    names = _attachment_names(raw) or ["tệp đính kèm"]
    results = [
        ParseResult(
            file=name,
            format=ext if (ext := name.rpartition(".")[2].lower()) in FORMATS else "other",
            problems=[problem("file-too-large", variant="too-slow", name=f"“{name}”")],
        )
        for name in names
    ]
    outcome = _decide(mail, ctx, read=results)
    if relay_reason(mail) is not None:
        outcome = replace(outcome, reply=None)
    if outcome.action == "accepted":
        outcome = replace(outcome, reason=TOO_COMPLEX)
    return outcome


def _with_attribution(
    view: FormView, sub: Submission, target: Unit, sender: Unit | None, ctx: IntakeContext
) -> FormView:
    """The receipt's form view, saying whom it is recorded for and what it replaced."""
    previous = None
    if sub.previous is not None:
        replaced = sub.replaces is not None
        previous = PreviousView(
            received_at=sub.previous.received_at.astimezone(ctx.campaign.tz),
            entries=len(sub.previous.models),
            replaced=replaced,
            dropped_models=dropped_models(sub.previous, sub.form) if replaced else (),
        )
    return replace(
        view,
        recorded_for=target.name,
        sent_by=sender.name if sender is not None and sender.code != target.code else None,
        attribution=sub.attribution,
        awaiting=sub.awaiting,
        supersedes_previous=previous is not None and previous.replaced,
        previous=previous,
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
