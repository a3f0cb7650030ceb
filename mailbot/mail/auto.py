"""Mail written by machines or relayed by them (RFC 3834): what must never get an answer."""

from __future__ import annotations

import re
from collections.abc import Iterable

from mailbot.mail.filetypes import ARCHIVE_EXTENSIONS, FORM_EXTENSIONS
from mailbot.mail.headers import header_param
from mailbot.mail.message import ParsedMail
from parsers.vntext import fold_accents

__all__ = [
    "SYSTEM_LOCALPART_STEMS",
    "auto_reply_reason",
    "automatic_reason",
    "carries_documents",
    "fold_subject",
    "is_system_address",
    "relay_reason",
    "replies_to_us",
]

# Local parts (the part before "@") of addresses no automatic mail ever goes to, whatever the
# mail looks like. Compared with "-", "_" and "." folded away and any "+tag" removed, anywhere in
# the local part: "no-reply-invoice", "hoadon.noreply", "bounces-123", "notifications" all match.
SYSTEM_LOCALPART_STEMS: tuple[str, ...] = (
    "noreply",  # no-reply, no_reply, noreply, no-reply-invoice, ...
    "donotreply",  # do-not-reply, do_not_reply, donotreply
    "dontreply",
    "mailerdaemon",  # MAILER-DAEMON
    "postmaster",
    "bounce",  # bounce, bounces, bounces+..., VERP and SRS return addresses
    "notification",  # notification, notifications, ...-notifications
    "notify",
    "listserv",
    "majordomo",
    "autoreply",  # auto-reply, autoreply
    "autoresponder",
)
_AUTO_SUPPRESS_VALUES = frozenset({"all", "oof", "autoreply"})
_AUTO_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoreply-from",
    "x-mail-autoreply",
)
# Mail a person wrote that reached us through an automaton (a list, a server rule, a
# forwarding script): no automatic answer, yet its forms are real submissions.
_RELAY_HEADERS = (
    "x-ms-exchange-inbox-rules-loop",
    "x-ms-exchange-organization-autoforwarded",
)
# Subjects that on their own mark an automatic mail (accent-folded, case-folded).
_AUTO_SUBJECTS = re.compile(
    r"^(?:(?:re|tl|tr|aw|sv|fw|fwd)\s*:\s*)*(?:"
    r"automatic reply|auto(?:matic)?[- ]?reply|autoreply|out of (?:the )?office|"
    r"tra loi tu dong|tu dong tra loi|thu tra loi tu dong|vang mat|thong bao vang mat|"
    r"abwesenheitsnotiz|automatische antwort|reponse automatique|autosvar|"
    r"undeliverable|undelivered mail|delivery status notification|"
    r"delivery failure|mail delivery failed|returned mail|failure notice|"
    r"delivery has failed|non[- ]?remis|khong gui duoc|khong the gui"
    r")\b"
)
# Weaker markers, believed only on a reply to one of our own mails.
_WEAK_AUTO_SUBJECTS = re.compile(
    r"^(?:(?:re|tl|tr)\s*:\s*)*(?:auto\b|tu dong\b|thong bao tu dong|away\b|on leave|"
    r"nghi phep|di cong tac|read:|da doc:|read receipt|not read:)"
)


def fold_subject(text: str) -> str:
    """A subject compared loosely: case-folded, accents and đ folded away, spaces collapsed."""
    return re.sub(r"\s+", " ", fold_accents(text)).strip()


def _domain_of(msg_id: str) -> str:
    return msg_id.strip("<> ").rpartition("@")[2].lower()


def _points_to(ids: Iterable[str], own_domain: str) -> bool:
    own = own_domain.lower().strip()
    return bool(own) and any(_domain_of(i) == own for i in ids)


def is_system_address(address: str) -> bool:
    """Whether an address belongs to a machine that must never get automatic mail."""
    local = address.strip().strip("<>").rpartition("@")[0] or address
    folded = re.sub(r"[-_.]", "", local.split("+", 1)[0].lower())
    return any(stem in folded for stem in SYSTEM_LOCALPART_STEMS)


def replies_to_us(mail: ParsedMail, own_domain: str) -> bool:
    """Whether In-Reply-To or References names a mail of ours (our Message-ID domain)."""
    ids = ([mail.in_reply_to] if mail.in_reply_to else []) + list(mail.references)
    return _points_to(ids, own_domain)


def carries_documents(mail: ParsedMail) -> bool:
    """Whether the mail holds files that could be forms (what an auto-reply never carries)."""
    return any(
        a.extension in FORM_EXTENSIONS or a.extension in ARCHIVE_EXTENSIONS
        for a in mail.attachments
    )


def automatic_reason(mail: ParsedMail, own_addresses: Iterable[str], own_domain: str) -> str | None:
    """Why this mail was written by a machine (auto-reply, report, our own echo), or None.

    Such mail is neither answered nor read for forms. A person's mail that merely must not be
    answered automatically (a list, a forwarding rule) is not automatic: see relay_reason.
    """
    own = {a.strip().lower() for a in own_addresses if a and a.strip()}
    sender = mail.from_addr.lower()
    if sender and sender in own:
        return f"sent from our own address {sender}"
    if sender and is_system_address(sender):
        return f"sender {sender} is a system address"

    auto = mail.header("Auto-Submitted")
    if auto is not None:
        token = auto.split(";", 1)[0].strip().lower()
        if token != "no":
            return f"Auto-Submitted: {token or 'present'}"
    return_path = mail.header("Return-Path")
    if return_path is not None and return_path.strip().strip("<>").strip() == "":
        return "empty Return-Path (a bounce or notification)"
    for name in ("Precedence", "X-Precedence"):
        value = mail.header(name)
        if value and value.strip().lower() in ("junk", "auto_reply"):
            return f"{name}: {value.strip().lower()}"
    present = {name.lower() for name, _value in mail.headers}
    for name in _AUTO_HEADERS:
        if name.lower() in present:
            return f"{name} header present"
    autogen = mail.header("X-Autogenerated")
    if autogen and autogen.strip().lower() in ("reply", "forward", "group", "mirror"):
        return f"X-Autogenerated: {autogen.strip()}"

    if mail.message_id and _points_to([mail.message_id], own_domain):
        return "Message-ID from our own mailer (a loop)"
    report_type = (header_param(_content_type_raw(mail), "report-type") or "").lower()
    if mail.content_type == "multipart/report" or mail.content_type.startswith(
        ("message/delivery-status", "message/disposition-notification")
    ):
        return f"delivery or read report ({report_type or mail.content_type})"

    if carries_documents(mail):
        # The subject alone is weak evidence: "Không gửi được qua Zalo nên gửi qua thư" with a
        # form attached is a person's submission, and auto-replies never carry forms.
        return None
    subject = fold_subject(mail.subject)
    if _AUTO_SUBJECTS.match(subject):
        return f"automatic-reply subject: {mail.subject[:80]}"
    if replies_to_us(mail, own_domain) and _WEAK_AUTO_SUBJECTS.match(subject):
        return f"automatic answer to our mail: {mail.subject[:80]}"
    return None


def relay_reason(mail: ParsedMail) -> str | None:
    """Why a person's mail must get no automatic answer (list, rule, no sender), or None."""
    if not mail.from_addr:
        return "no sender address"
    for name in ("Precedence", "X-Precedence"):
        value = mail.header(name)
        if value and value.strip().lower() in ("bulk", "list"):
            return f"{name}: {value.strip().lower()}"
    for name, _value in mail.headers:
        if name.lower().startswith("list-"):
            return f"mailing list ({name})"
    if mail.has_header("X-Loop"):
        return "X-Loop header present"
    suppress = mail.header("X-Auto-Response-Suppress")
    if suppress:
        values = {v.strip().lower() for v in re.split(r"[,;\s]+", suppress) if v.strip()}
        if values & _AUTO_SUPPRESS_VALUES:
            return f"X-Auto-Response-Suppress: {suppress.strip()}"
    present = {name.lower() for name, _value in mail.headers}
    for name in _RELAY_HEADERS:
        if name.lower() in present:
            return f"{name} header present"
    return None


def auto_reply_reason(
    mail: ParsedMail, own_addresses: Iterable[str], own_domain: str
) -> str | None:
    """Why we must not answer this mail automatically, in short English, or None if we may."""
    if not mail.from_addr:
        return "no sender address"
    return automatic_reason(mail, own_addresses, own_domain) or relay_reason(mail)


def _content_type_raw(mail: ParsedMail) -> str | None:
    return mail.header("Content-Type")
