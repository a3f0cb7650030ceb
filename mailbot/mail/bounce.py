"""Delivery reports (RFC 3464 DSNs and the common non-standard bounces): who failed, and why."""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

from mailbot.mail.auto import carries_documents, fold_subject
from mailbot.mail.body import children, payload, text_of
from mailbot.mail.headers import content_type_of, msg_ids, raw_get
from mailbot.mail.message import ParsedMail
from mailbot.mail.tree import parse_message_bytes
from mailbot.mail.walk import parse_mail

__all__ = ["Bounce", "BounceRecipient", "parse_bounce"]


@dataclass(frozen=True)
class BounceRecipient:
    """One recipient a delivery report is about."""

    address: str
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str | None  # e.g. 5.1.1
    diagnostic: str | None

    @property
    def permanent(self) -> bool:
        return self.action == "failed" or (self.status or "").startswith("5")


@dataclass(frozen=True)
class Bounce:
    """A delivery report: which of our mails it answers and what happened to whom."""

    original_message_id: str | None
    recipients: tuple[BounceRecipient, ...]
    kind: str  # "dsn", "qmail", "exchange" or "heuristic"
    reporting_mta: str | None = None

    @property
    def failed_recipients(self) -> tuple[str, ...]:
        return tuple(r.address for r in self.recipients if r.permanent)

    @property
    def permanent(self) -> bool:
        return any(r.permanent for r in self.recipients)


_STATUS = re.compile(r"\b([245]\.\d{1,3}\.\d{1,3})\b")
_SMTP_CODE = re.compile(r"\b([45]\d\d)[ -]")
_ADDR = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_MSGID_LINE = re.compile(r"^message-id:\s*(<[^<>\s]+>)", re.I | re.M)


def _field(block: Message, name: str) -> str | None:
    value = raw_get(block, name)
    if value is None:
        return None
    return re.sub(r"\s+", " ", value).strip() or None


def _typed_address(value: str | None) -> str | None:
    if not value:
        return None
    addr = value.split(";", 1)[1] if ";" in value else value
    addr = addr.strip().strip("<>").strip()
    return addr.lower() or None


def _dsn_blocks(part: Message) -> list[Message]:
    blocks = children(part)
    if blocks:
        return blocks
    # Some parsers leave the body as text: split it into blank-line separated field blocks.
    data = part.get_payload(decode=True) or b""
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
    return [HeaderParser().parsestr(b.strip() + "\n") for b in re.split(r"\n\s*\n", text) if b]


def _original_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = content_type_of(part)
        if ctype in ("message/rfc822", "message/global") and children(part):
            ids = msg_ids(raw_get(children(part)[0], "message-id"))
            if ids:
                return ids[0]
        if ctype in ("text/rfc822-headers", "message/rfc822-headers", "message/global-headers"):
            inner = children(part)
            if inner:
                ids = msg_ids(raw_get(inner[0], "message-id"))
            else:
                head = HeaderParser().parsestr(payload(part).decode("utf-8", "replace"))
                ids = msg_ids(raw_get(head, "message-id"))
            if ids:
                return ids[0]
    return None


def _all_text(msg: Message) -> str:
    texts = []
    for part in msg.walk():
        if content_type_of(part).startswith("text/"):
            try:
                texts.append(text_of(part))
            except Exception:
                continue
    return "\n".join(texts)


def _system_sender(mail: ParsedMail) -> bool:
    local = mail.from_addr.partition("@")[0].lower()
    return local in ("mailer-daemon", "postmaster", "mailerdaemon") or local.startswith("bounce")


def _looks_like_bounce(mail: ParsedMail) -> bool:
    if _system_sender(mail):
        return True
    subject = fold_subject(mail.subject)
    return bool(
        re.match(
            r"^(?:(?:re|fw|fwd)\s*:\s*)*(undeliverable|undelivered|delivery status notification"
            r"|delivery failure|mail delivery failed|returned mail|failure notice"
            r"|delivery has failed|khong gui duoc|khong the gui)",
            subject,
        )
    )


def parse_bounce(raw_or_mail: bytes | ParsedMail) -> Bounce | None:
    """Read a delivery status notification (standard or common non-standard), else None."""
    mail = raw_or_mail if isinstance(raw_or_mail, ParsedMail) else parse_mail(raw_or_mail)
    is_report = mail.content_type in (
        "multipart/report",
        "message/delivery-status",
        "message/global-delivery-status",
    )
    if not mail.raw or not (is_report or _looks_like_bounce(mail)):
        return None  # ordinary mail: no second parse
    if not is_report and carries_documents(mail) and not _system_sender(mail):
        return None  # a person's submission whose subject only reads like a bounce
    msg = parse_message_bytes(mail.raw)
    thread_ids = ([mail.in_reply_to] if mail.in_reply_to else []) + list(mail.references)

    for part in msg.walk():
        if content_type_of(part) not in (
            "message/delivery-status",
            "message/global-delivery-status",
        ):
            continue
        blocks = _dsn_blocks(part)
        mta = _field(blocks[0], "reporting-mta") if blocks else None
        recipients = []
        for block in blocks:
            address = _typed_address(_field(block, "final-recipient")) or _typed_address(
                _field(block, "original-recipient")
            )
            if not address:
                continue
            action = (_field(block, "action") or "failed").lower().split()[0]
            status = _field(block, "status")
            if status:
                m = _STATUS.search(status)
                status = m.group(1) if m else status
            recipients.append(
                BounceRecipient(address, action, status, _field(block, "diagnostic-code"))
            )
        original = _original_id(msg) or (thread_ids[-1] if thread_ids else None)
        if mta:
            mta = _typed_address(mta)
        return Bounce(original, tuple(recipients), "dsn", mta)

    text = _all_text(msg)
    original = _original_id(msg)
    if original is None:
        m = _MSGID_LINE.search(text)
        original = m.group(1) if m else (thread_ids[-1] if thread_ids else None)

    if "This is the qmail-send program" in text:
        head = text.split("--- Below this line is a copy of the message.", 1)[0]
        recipients = []
        for m in re.finditer(r"^<([^<>\s]+@[^<>\s]+)>:\s*\n(.*?)(?=^<|\Z)", head, re.M | re.S):
            diag = re.sub(r"\s+", " ", m.group(2)).strip() or None
            status = _status_from(diag)
            recipients.append(BounceRecipient(m.group(1).lower(), "failed", status, diag))
        return Bounce(original, tuple(recipients), "qmail")

    kind = (
        "exchange"
        if re.search(r"delivery has failed to these recipients", text, re.I)
        else ("heuristic")
    )
    own = {mail.from_addr}
    found: dict[str, BounceRecipient] = {}
    body_part = text.split("Original message headers", 1)[0]
    for line in body_part.splitlines():
        addrs = [a.lower() for a in _ADDR.findall(line)]
        if not addrs:
            continue
        diag_line = line.strip()
        status = _status_from(diag_line)
        for addr in addrs:
            if addr in own or addr in found or addr.partition("@")[0] in ("postmaster",):
                continue
            if (
                status
                or re.search(r"fail|reject|unknown|not exist|does not|khong", diag_line, re.I)
                or kind == "exchange"
            ):
                found[addr] = BounceRecipient(addr, "failed", status, diag_line[:300] or None)
    if not found:
        status = _status_from(body_part)
        if status is None:
            return None
    # The reason usually sits on its own line ("Remote Server returned '550 5.1.1 ...'").
    reason = next(
        (
            ln.strip()
            for ln in body_part.splitlines()
            if _STATUS.search(ln) or _SMTP_CODE.search(ln)
        ),
        None,
    )
    failed = tuple(
        r
        if r.status
        else BounceRecipient(r.address, r.action, _status_from(reason), reason or r.diagnostic)
        for r in found.values()
    )
    return Bounce(original, failed, kind)


def _status_from(text: str | None) -> str | None:
    if not text:
        return None
    m = _STATUS.search(text)
    if m:
        return m.group(1)
    m = _SMTP_CODE.search(text)
    if m:
        return f"{m.group(1)[0]}.0.0"
    return None
