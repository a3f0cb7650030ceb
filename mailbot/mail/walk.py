"""The MIME walk: every part, forwarded mail and container of one mail, into a ParsedMail."""

from __future__ import annotations

import base64
import binascii
import re
from email.message import Message

from mailbot.mail.body import body_text, children, payload
from mailbot.mail.filetypes import (
    ARCHIVE_EXTENSIONS,
    FORM_EXTENSIONS,
    IGNORED_NAMES,
    IMAGE_EXTENSIONS,
    SNIFFED_KEEP,
    TYPE_EXTENSIONS,
    content_type_for,
    sniff_extension,
    suffix,
)
from mailbot.mail.headers import (
    addresses,
    content_type_of,
    decode_header_text,
    decoded_headers,
    disposition,
    header_date,
    msg_ids,
    part_filename,
    raw_get,
    sanitize_filename,
)
from mailbot.mail.message import ArchiveLimits, Attachment, MailProblem, ParsedMail
from mailbot.mail.pictures import is_document_picture
from mailbot.mail.tree import parse_message_bytes
from mailbot.mail.unpack import (
    SmimeUnpacker,
    Trouble,
    Unpacker,
    UuencodeUnpacker,
    file_unpackers,
)
from mailbot.mail.unpack.base import mb, too_deep, trouble, unsupported
from mailbot.mail.unpack.smime import encrypted_mail

__all__ = ["FORWARD_LABEL", "MAX_BODY_CHARS", "parse_mail"]

FORWARD_LABEL = "Thư chuyển tiếp"
MAX_BODY_CHARS = 1_000_000
# Parts that are never a submission: signatures, reports, invitations, business cards.
_IGNORED_TYPES = frozenset(
    {
        "application/pkcs7-signature",
        "application/x-pkcs7-signature",
        "application/pgp-signature",
        "application/pgp-keys",
        "message/delivery-status",
        "message/disposition-notification",
        "text/rfc822-headers",
        "message/rfc822-headers",
        # Meeting invitations and business cards that Outlook adds beside the real files.
        "text/calendar",
        "application/ics",
        "text/vcard",
        "text/x-vcard",
        "text/directory",
    }
)
_IGNORED_EXTENSIONS = frozenset({".ics", ".vcs", ".vcf", ".p7s"})
# Parts whose content is encrypted for the recipient: nothing in them can be read.
_ENCRYPTED_TYPES = frozenset(
    {"application/pgp-encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}
)


def _origin(path: tuple[str, ...]) -> str:
    return " > ".join(path)


def _encoded_message(part: Message, cte: str) -> bytes:
    inner = children(part)
    try:
        text = inner[0].as_bytes() if inner else payload(part)
        if cte == "base64":
            clean = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
            return base64.b64decode(clean + b"=" * (-len(clean) % 4))
        return binascii.a2b_qp(text)
    except (binascii.Error, ValueError, TypeError, LookupError):
        return b""


class _Collector:
    """Walks one mail, gathering its files and the problems met, within the limits."""

    def __init__(
        self, max_attachment_bytes: int, limits: ArchiveLimits, unpackers: tuple[Unpacker, ...]
    ) -> None:
        self.max_bytes = max_attachment_bytes
        self.limits = limits
        self.unpackers = unpackers
        self.smime = SmimeUnpacker()
        self.uuencode = UuencodeUnpacker()
        self.attachments: list[Attachment] = []
        self.problems: list[MailProblem] = []
        self.extracted = 0
        self.unnamed = 0
        # The files kept, so a duplicate counts once (a set of the contents themselves: the
        # built-in hash reads each file once, faster than a cryptographic digest).
        self.seen: set[bytes] = set()

    def trouble(self, found: Trouble, origin: str) -> None:
        """Record a problem (worded by the catalogue) at `origin` in the mail."""
        self.problems.append(
            MailProblem(found.code, found.filename, origin, found.message, found.severity)
        )

    # -- MIME tree --

    def walk(self, part: Message, path: tuple[str, ...], depth: int, parent: str) -> None:
        ctype = content_type_of(part, "message/rfc822" if parent == "multipart/digest" else "")
        ctype = ctype or "text/plain"
        if ctype in _IGNORED_TYPES:
            return
        if ctype == "multipart/encrypted" or ctype in _ENCRYPTED_TYPES:
            if self.smime.matches("", b"", ctype):
                self.container(self.smime, "", payload(part), path, depth, 0)
            else:
                encrypted = encrypted_mail()
                self.trouble(encrypted, _origin((*path, encrypted.filename)))
            return
        if ctype.startswith("multipart/"):
            for child in children(part):
                self.walk(child, path, depth, ctype)
            return
        if ctype == "message/rfc822" or (ctype.startswith("message/") and children(part)):
            cte = (raw_get(part, "content-transfer-encoding") or "").strip().lower()
            if cte in ("base64", "quoted-printable"):
                # Not allowed by RFC 2046, yet sent: the parser saw encoded text as a message.
                self.forwarded(parse_message_bytes(_encoded_message(part, cte)), path, depth)
                return
            for inner in children(part):
                self.forwarded(inner, path, depth)
            return
        self.leaf(part, ctype, path, depth, parent)

    def forwarded(self, inner: Message, path: tuple[str, ...], depth: int) -> None:
        here = (*path, FORWARD_LABEL)
        if depth + 1 > self.limits.max_forward_depth:
            self.trouble(trouble("forward-too-deep", FORWARD_LABEL), _origin(here))
            return
        self.walk(inner, here, depth + 1, "")

    def leaf(
        self, part: Message, ctype: str, path: tuple[str, ...], depth: int, parent: str
    ) -> None:
        raw_name = part_filename(part)
        disp = disposition(part)
        if raw_name is None:
            if ctype == "text/plain":
                self.container(self.uuencode, "", payload(part), path, depth, 0)
                return
            if ctype.startswith(("text/", "image/", "audio/", "video/")) and ctype not in (
                "text/csv",
                "text/rtf",
            ):
                return  # bodies and inline pictures
            if ctype == "application/ms-tnef":
                raw_name = "winmail.dat"
            elif ctype.startswith("application/") or ctype in ("text/csv", "text/rtf"):
                data = payload(part)
                if not data:
                    return
                ext = sniff_extension(data, ctype)
                # A nameless part is kept when it says or shows it is a document; scanners and
                # copiers send forms as nameless "inline" octet-streams.
                if ext not in SNIFFED_KEEP and not (
                    ctype in TYPE_EXTENSIONS
                    or (ctype == "application/octet-stream" and disp != "inline")
                ):
                    return
                self.unnamed += 1
                raw_name = f"Tệp đính kèm {self.unnamed}{ext}"
            else:
                return
        name = sanitize_filename(raw_name)
        if not suffix(name) and ctype in TYPE_EXTENSIONS:
            name += TYPE_EXTENSIONS[ctype]
        ext = suffix(name)
        is_image = ext in IMAGE_EXTENSIONS or (
            ctype.startswith("image/") and ext not in FORM_EXTENSIONS | ARCHIVE_EXTENSIONS
        )
        if is_image:
            inline = (
                disp == "inline"
                or parent == "multipart/related"
                or raw_get(part, "content-id") is not None
            )
            if inline and disp != "attachment" and not is_document_picture(payload(part)):
                # Signature logos and small pasted pictures; a named photo of page size (a
                # phone's picture of the signed form) is kept, so the receipt can name it.
                return
        if name.casefold() in IGNORED_NAMES or name.startswith("~$"):
            return
        if ext == ".p7m":
            self.container(self.smime, "", payload(part), path, depth, 0)
            return
        self.file(name, payload(part), ctype, path, depth, 0)

    def signed_mail(self, content: bytes, path: tuple[str, ...], depth: int) -> None:
        """The mail inside an opaque S/MIME signature, walked one forward level deeper."""
        if depth + 1 > self.limits.max_forward_depth:
            self.trouble(
                trouble("forward-too-deep", FORWARD_LABEL, variant="nested"),
                _origin(path or (FORWARD_LABEL,)),
            )
            return
        self.extracted += len(content)
        self.walk(parse_message_bytes(content), path, depth + 1, "")

    def container(
        self,
        unpacker: Unpacker,
        name: str,
        data: bytes,
        path: tuple[str, ...],
        forward_depth: int,
        archive_depth: int,
    ) -> None:
        """Open a container; `name` is "" for unnamed ones (a text body, an S/MIME part)."""
        inside = (*path, name) if name else path
        origin = _origin(inside)
        if unpacker.nests:
            archive_depth += 1
            if archive_depth > self.limits.max_archive_depth:
                self.trouble(too_deep(name), origin)
                return
        if not unpacker.able_to_run():
            self.trouble(unsupported(name, f".{unpacker.name}"), origin)
            return
        for found in unpacker.unpack(name, data, self.limits):
            if isinstance(found, Trouble):
                self.trouble(found, origin if name else _origin((*path, found.filename)))
            elif found.message:
                self.signed_mail(found.data, path, forward_depth)
            else:
                self.file(
                    found.name,
                    found.data,
                    "application/octet-stream",
                    inside,
                    forward_depth,
                    archive_depth,
                )

    # -- any file, from a part, an archive or a winmail.dat --

    def file(
        self,
        name: str,
        data: bytes,
        declared_type: str,
        path: tuple[str, ...],
        forward_depth: int,
        archive_depth: int,
    ) -> None:
        origin = _origin((*path, name))
        if len(data) > self.max_bytes:
            self.trouble(
                trouble(
                    "file-too-large",
                    name,
                    variant="attachment",
                    size=mb(len(data)),
                    limit=mb(self.max_bytes),
                ),
                origin,
            )
            return
        if self.extracted + len(data) > self.limits.max_mail_bytes:
            self.trouble(
                trouble(
                    "file-too-large",
                    name,
                    variant="mail-total",
                    limit=mb(self.limits.max_mail_bytes),
                ),
                origin,
            )
            return
        ext = suffix(name)
        if ext in _IGNORED_EXTENSIONS:
            return  # invitations, business cards, detached signatures: never a submission
        unpacker = next((u for u in self.unpackers if u.matches(name, data, declared_type)), None)
        is_mail = ext == ".eml" or declared_type == "message/rfc822"
        # A winmail.dat wins over a mail type; an archive-looking name never does.
        if is_mail and (unpacker is None or unpacker.nests):
            self.extracted += len(data)
            self.forwarded(parse_message_bytes(data), path, forward_depth)
            return
        if unpacker is not None:
            self.container(unpacker, name, data, path, forward_depth, archive_depth)
            return
        if ext == ".7z" or (ext not in FORM_EXTENSIONS and data.startswith(b"7z\xbc\xaf\x27\x1c")):
            self.trouble(unsupported(name), origin)
            return
        if data and data in self.seen:
            return  # the same file attached twice (or forwarded and attached): one submission
        self.seen.add(data)
        self.extracted += len(data)
        self.attachments.append(
            Attachment(name, data, content_type_for(name, declared_type), origin)
        )


def parse_mail(
    raw: bytes,
    max_attachment_bytes: int = 20 * 1024 * 1024,
    limits: ArchiveLimits | None = None,
    rar: bool = False,
) -> ParsedMail:
    """Read a raw RFC 5322 mail into a ParsedMail; never raises on malformed input.

    `rar` says whether a RAR extraction tool is available (the caller's context knows;
    without one a .rar is answered with "cannot be opened here").
    """
    limits = limits or ArchiveLimits()
    msg = parse_message_bytes(raw)
    headers = tuple(decoded_headers(msg))

    from_list = addresses(raw_get(msg, "from"))
    from_name, from_addr = from_list[0] if from_list else ("", "")
    if not from_addr:
        sender = addresses(raw_get(msg, "sender"))
        if sender:
            from_name, from_addr = sender[0]
    message_ids = msg_ids(raw_get(msg, "message-id"))
    in_reply_to = msg_ids(raw_get(msg, "in-reply-to"))

    collector = _Collector(max_attachment_bytes, limits, file_unpackers(rar))
    try:
        collector.walk(msg, (), 0, "")
    except RecursionError:
        collector.trouble(
            trouble("forward-too-deep", FORWARD_LABEL, variant="nested"), FORWARD_LABEL
        )
    try:
        body = body_text(msg)
    except RecursionError:
        body = ""

    return ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(a for _, a in addresses(raw_get(msg, "to"))),
        cc=tuple(a for _, a in addresses(raw_get(msg, "cc"))),
        reply_to=tuple(a for _, a in addresses(raw_get(msg, "reply-to"))),
        subject=decode_header_text(raw_get(msg, "subject")),
        date=header_date(raw_get(msg, "date")),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=msg_ids(raw_get(msg, "references")),
        body_text=body.strip()[:MAX_BODY_CHARS],
        attachments=tuple(collector.attachments),
        problems=tuple(collector.problems),
        headers=headers,
        content_type=content_type_of(msg),
        raw=raw,
    )
