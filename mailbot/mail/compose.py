"""Turn rendered templates into RFC 5322 mail: threading, loop-safety headers, attachments."""

from __future__ import annotations

import base64
import quopri
import re
import secrets
import unicodedata
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email import base64mime, quoprimime
from email.header import Header
from email.headerregistry import Address
from email.policy import EmailPolicy
from email.utils import format_datetime, make_msgid
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Final

from outbox_templates import Rendered

AUTO_SUBMITTED_VALUES: Final = ("auto-replied", "auto-generated", "auto-notified")
# Precedence is not standard (RFC 3834 3.1.8), but vacation responders that ignore
# Auto-Submitted still honour "bulk"; receipts say "auto_reply" so filters do not file them as bulk.
_PRECEDENCE: Final = MappingProxyType(
    {"auto-replied": "auto_reply", "auto-generated": "bulk", "auto-notified": "bulk"}
)
MAX_REFERENCES: Final = 20

# Reply prefixes of common clients: English, German, Nordic, Dutch, Vietnamese Outlook ("TL:").
_REPLY_PREFIX_RE = re.compile(
    r"^\s*(?:(?:re|aw|sv|vs|antw|tl|trả lời)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
    re.IGNORECASE,
)
_MSGID_TOKEN_RE = re.compile(r"<[^<>\s]+>")
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_CRLF: Final = "\r\n"
_LINE: Final = 78  # RFC 5322's recommended line length


@dataclass(frozen=True)
class Related:
    """A part the HTML shows inline (an image), referred to as `cid:<content_id>`."""

    content_id: str  # without the angle brackets
    data: bytes
    mimetype: str
    filename: str


def _fold_ids(name: str, value: str, limit: int, linesep: str) -> str:
    """A list of Message-IDs folded only between ids, never inside one.

    The email package treats these headers as unstructured text and would encode a long
    Message-ID as =?utf-8?q?...?=, which breaks threading in most clients; so the whole
    top-level header block is written here, and the email package writes only the body.
    """
    lines: list[str] = []
    line = f"{name}:"
    for index, token in enumerate(value.split()):
        if index and len(line) + 1 + len(token) > limit:
            lines.append(line)
            line = ""
        line += " " + token
    lines.append(line)
    return linesep.join(lines) + linesep


def _plain_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable() and "=?" not in text


# The SMTP policy, built through its public constructor: CRLF line ends, 78-column folding.
_POLICY: Final = EmailPolicy(linesep=_CRLF, max_line_length=_LINE)


def _stdlib_line(name: str, value: Any) -> str:
    """One header line folded by the email package (for the uncommon shapes)."""
    return str(_POLICY.header_factory(name, value).fold(policy=_POLICY))


def _text_line(name: str, value: str) -> str:
    """An unstructured header: as is when short plain ASCII, else RFC 2047 encoded words."""
    line = f"{name}: {value}"
    if value and len(line) <= _LINE and _plain_ascii(value):
        return line + _CRLF
    if not value.isascii():
        # Every word encoded, split between whole characters: decodes to exactly `value`.
        return f"{name}: {_utf8_words(name, value)}{_CRLF}"
    return _stdlib_line(name, value)


# "=?utf-8?b?" and "?=" around each word's encoded text.
_WORD_CHROME: Final = len("=?utf-8?b??=")
# The length of each ASCII character in a Q encoded word ("a": 1, "_" for " ": 1, "=3D": 3).
_Q_LENGTHS: Final = tuple(quoprimime.header_length(bytes([i])) for i in range(128))
_Q_PLAIN: Final = bytes(i for i in range(128) if _Q_LENGTHS[i] == 1)  # any other byte: 3


def _utf8_words(name: str, value: str) -> str:
    """`value` as RFC 2047 encoded words, folded exactly as email.header.Header does it.

    Header takes the shorter of base64 and Q for the whole value, then packs as many whole
    characters into each word as fit the line (the first one after "Name: "), encoding the
    line again after every character; this adds up the characters' encoded lengths instead.
    Text that Header would split into lines (or a long name) goes to Header itself.
    """
    if value.splitlines() != [value] or len(name) > 40:
        return str(Header(value, "utf-8", header_name=name).encode(linesep=_CRLF))
    data = value.encode("utf-8")
    b64 = base64mime.header_length(data) < len(data) + 2 * len(data.translate(None, _Q_PLAIN))
    coder: Any = base64mime if b64 else quoprimime
    room = _LINE - len(name) - 2 - _WORD_CHROME
    words: list[bytes] = []
    word = b""
    size = 0  # the word's length: in bytes for base64, in encoded characters for Q
    for char in value:
        piece = char.encode("utf-8")
        if b64:
            grown = size + len(piece)
            length = -(-grown // 3) * 4
        else:
            grown = size + (_Q_LENGTHS[ord(char)] if char.isascii() else 3 * len(piece))
            length = grown
        if word and length > room:
            words.append(word)
            word = b""
            room = _LINE - 1 - _WORD_CHROME  # a continuation line starts with one space
            grown -= size
        word += piece
        size = grown
    words.append(word)
    return (_CRLF + " ").join(coder.header_encode(w, charset="utf-8") for w in words)


@lru_cache(maxsize=32)
def _from_line(display_name: str, addr_spec: str) -> str:
    # The same sender on every mail: folded once (which also validates the address).
    return _stdlib_line("From", Address(display_name=display_name, addr_spec=addr_spec))


_SIMPLE_ADDR_RE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9.-]+")


def _to_line(recipients: Sequence[str]) -> str:
    value = ", ".join(recipients)
    if len(value) + 4 <= _LINE and all(_SIMPLE_ADDR_RE.fullmatch(r) for r in recipients):
        return f"To: {value}{_CRLF}"
    return _stdlib_line("To", value)


def _one_line(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def _domain(domain: str) -> str:
    d = domain.strip().strip(".")
    if not d or any(c in d for c in "<>@ \t\r\n[]()"):
        raise ValueError(f"not a usable Message-ID domain: {domain!r}")
    if not d.isascii():
        d = d.encode("idna").decode("ascii")
    return d


def new_message_id(domain: str) -> str:
    """A fresh '<...@domain>' Message-ID for a mail we send (assign it when the mail is queued)."""
    return make_msgid(domain=_domain(domain))


def message_ids(value: str | None) -> list[str]:
    """The '<id>' tokens of a Message-ID/In-Reply-To/References value; a bare id gets brackets."""
    if not value:
        return []
    found = _MSGID_TOKEN_RE.findall(value)
    if not found:
        bare = value.strip()
        if bare and not any(c.isspace() for c in bare) and "<" not in bare and ">" not in bare:
            found = [f"<{bare}>"]
    return [t for t in found if t.isascii() and t.isprintable()]


def reply_subject(original: str | None, fallback: str) -> str:
    """'Re: ' + the original subject without its reply prefixes; `fallback` when there is none."""
    core = _REPLY_PREFIX_RE.sub("", _one_line(original or "")).strip()
    return f"Re: {core}" if core else _one_line(fallback)


def _references(references: Iterable[str], in_reply_to: Sequence[str]) -> list[str]:
    chain: list[str] = []
    for value in references:
        for token in message_ids(value):
            if token not in chain:
                chain.append(token)
    for token in in_reply_to:
        if token in chain:
            chain.remove(token)
        chain.append(token)
    if len(chain) > MAX_REFERENCES:  # keep the thread's root and the most recent ancestors
        chain = [chain[0], *chain[-(MAX_REFERENCES - 1) :]]
    return chain


def _safe_filename(name: str) -> str:
    text = unicodedata.normalize("NFC", name)
    text = re.split(r"[\\/]", text)[-1]
    text = _CONTROL_RE.sub("", text).strip().strip(".") or "tep-dinh-kem"
    if len(text) > 150:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: 150 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else text[:150]
    return text


def _is_utf8(data: bytes) -> bool:
    try:
        bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _mime_type(mimetype: str) -> tuple[str, str]:
    maintype, slash, subtype = (mimetype or "").strip().lower().partition("/")
    if not slash or not maintype or not subtype or maintype == "multipart":
        return "application", "octet-stream"
    return maintype, subtype


def compose(
    *,
    rendered: Rendered,
    from_addr: str,
    from_name: str,
    to: Sequence[str],
    message_id_domain: str,
    auto_submitted: str,
    in_reply_to: str | None = None,
    references: Sequence[str] = (),
    original_subject: str | None = None,
    attachments: Sequence[tuple[str, bytes, str]] = (),
    related: Sequence[Related] = (),
    date: datetime | None = None,
    message_id: str | None = None,
) -> tuple[str, bytes]:
    """Build one outgoing mail; returns its Message-ID and the raw bytes (CRLF line ends).

    Text and HTML as multipart/alternative (inside multipart/mixed with attachments); the
    HTML with the `related` images it shows as multipart/related. A reply (given
    `original_subject`/`in_reply_to`) gets 'Re:', In-Reply-To and References.
    """
    if auto_submitted not in AUTO_SUBMITTED_VALUES:
        raise ValueError(f"Auto-Submitted must be one of {AUTO_SUBMITTED_VALUES}")
    recipients = [_one_line(r) for r in to if r and r.strip()]
    if not recipients:
        raise ValueError("an outgoing mail needs at least one recipient")
    when = date or datetime.now(UTC)
    if when.tzinfo is None:
        raise ValueError("the Date of an outgoing mail must be timezone-aware")
    if message_id is not None:
        given = message_ids(message_id)
        if len(given) != 1:
            raise ValueError(f"not a Message-ID: {message_id!r}")
        mid = given[0]
    else:
        mid = new_message_id(message_id_domain)
    parents = message_ids(in_reply_to)
    chain = _references(references, parents)

    if original_subject and original_subject.strip():
        subject = reply_subject(original_subject, rendered.subject)
    else:
        subject = _one_line(rendered.subject)
    # The top-level header block is written here, not by the email package: its general
    # folder costs more than parsing the forms (RFC 2047 word by word for Vietnamese text).
    head = [
        _from_line(_one_line(from_name), from_addr.strip()),
        _to_line(recipients),
        _text_line("Subject", subject),
        _text_line("Date", format_datetime(when)),
        _fold_ids("Message-ID", mid, _LINE, _CRLF),
    ]
    if parents:
        head.append(_fold_ids("In-Reply-To", " ".join(parents), _LINE, _CRLF))
    if chain:
        head.append(_fold_ids("References", " ".join(chain), _LINE, _CRLF))
    head.append(f"Auto-Submitted: {auto_submitted}{_CRLF}")
    head.append(f"X-Auto-Response-Suppress: All{_CRLF}")
    head.append(f"Precedence: {_PRECEDENCE[auto_submitted]}{_CRLF}")
    head.append(_text_line("X-Loop", from_addr.strip()))

    body = _mime_body(rendered.text, rendered.html, attachments, related)
    return mid, "".join(head).encode("ascii", "surrogateescape") + body


def _mime_body(
    text: str,
    html: str,
    attachments: Sequence[tuple[str, bytes, str]],
    related: Sequence[Related] = (),
) -> bytes:
    """MIME-Version, Content-* headers and the encoded body: text and HTML, then the files.

    Written directly (quoted-printable and base64 from the standard codecs): the email
    package's header folding for the part headers cost as much as the rest of the intake.
    """
    html_part = _text_part(html, "html")
    if related:
        inline = [_related_part(r) for r in related]
        html_part = _multipart("related", [html_part, *inline], 'type="text/html"')
    top = _multipart("alternative", [_text_part(text, "plain"), html_part])
    if attachments:
        files = [_attachment_part(name, data, mimetype) for name, data, mimetype in attachments]
        top = _multipart("mixed", [top, *files])
    head, _, rest = top.partition(b"\r\n\r\n")
    return b"MIME-Version: 1.0\r\n" + head + b"\r\nContent-Language: vi\r\n\r\n" + rest


# The longest line an 8bit part may hold (RFC 5322 2.1.1: 998 characters before CRLF).
MAX_8BIT_LINE: Final = 998
# Where a long line of HTML may be broken without changing what it shows: between table
# cells and rows, where the parser drops the whitespace.
_HTML_CELL_GAP = re.compile(r"(</t[dhr]>)(?=<t[dhr][\s>])")
# Where a space is not the same as a line break: then a long line is never cut at spaces.
_PREFORMATTED = re.compile(
    r"<(?:pre|textarea|listing|xmp|plaintext)\b|white-space\s*:\s*(?:pre|break-spaces)", re.I
)


def _text_part(text: str, subtype: str) -> bytes:
    """A text part in UTF-8: as it is (8bit, RFC 6152) when every line fits, which is a
    quarter smaller than quoted-printable for Vietnamese and cheaper for every server on
    the way; quoted-printable otherwise. `SmtpSender` turns 8bit back into quoted-printable
    for a server that does not take it."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n")
    if not lines.endswith("\n"):
        lines += "\n"
    data = lines.encode("utf-8")
    if subtype == "html" and not _fits_8bit(data):
        lines = _HTML_CELL_GAP.sub("\\1\n", lines)
        if not _PREFORMATTED.search(lines):
            lines = _break_at_text_spaces(lines)
        data = lines.encode("utf-8")
    if _fits_8bit(data):
        cte, encoded = "8bit", data.replace(b"\n", b"\r\n")
    else:
        cte, encoded = "quoted-printable", quopri.encodestring(data).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n'
    ).encode("ascii") + encoded


def _break_at_text_spaces(html: str) -> str:
    """Each line of `html` longer than an 8bit line may be cut at spaces between words (not
    inside a tag): HTML shows a line break there as the space it replaces."""
    out: list[str] = []
    for line in html.split("\n"):
        if len(line) * 4 <= MAX_8BIT_LINE or len(line.encode("utf-8")) <= MAX_8BIT_LINE:
            out.append(line)
            continue
        start = size = 0  # the current piece: where it starts, its length in bytes
        space = -1  # the last space outside a tag in it, and the piece's bytes before it
        before = 0
        in_tag = False
        for i, ch in enumerate(line):
            if ch == "<":
                in_tag = True
            elif ch == ">":
                in_tag = False
            elif ch == " " and not in_tag:
                space, before = i, size
            size += 1 if ch < "\x80" else len(ch.encode("utf-8"))
            if size > MAX_8BIT_LINE and space >= start:
                out.append(line[start:space])
                start, size, space = space + 1, size - before - 1, -1
        out.append(line[start:])
    return "\n".join(out)


def _fits_8bit(data: bytes) -> bool:
    """Whether LF-separated `data` can go as 8bit: no line too long, no NUL."""
    if b"\0" in data:
        return False
    if len(data) <= MAX_8BIT_LINE:
        return True
    return max(map(len, data.split(b"\n"))) <= MAX_8BIT_LINE


def _multipart(subtype: str, parts: Sequence[bytes], params: str = "") -> bytes:
    # QP escapes every "=" and base64 never puts "_" after one; an 8bit part could hold a
    # boundary only by a 1 in 2**128 chance, and then another one is drawn.
    boundary = f"=_{secrets.token_hex(16)}"
    while any(boundary.encode("ascii") in part for part in parts):
        boundary = f"=_{secrets.token_hex(16)}"
    extra = f"; {params}" if params else ""
    out = [
        f'Content-Type: multipart/{subtype}; boundary="{boundary}"{extra}\r\n\r\n'.encode("ascii")
    ]
    for part in parts:
        out.append(f"--{boundary}\r\n".encode("ascii") + part + b"\r\n")
    out.append(f"--{boundary}--\r\n".encode("ascii"))
    return b"".join(out)


def _attachment_part(name: str, data: bytes, mimetype: str) -> bytes:
    maintype, subtype = _mime_type(mimetype)
    ctype = f"Content-Type: {maintype}/{subtype}"
    if maintype == "text" and _is_utf8(data):
        ctype += '; charset="utf-8"'
    encoded = base64.encodebytes(bytes(data)).replace(b"\n", b"\r\n")
    disposition = _disposition(_safe_filename(name))
    # The blank line ends the part's header: without it the file's first line was read as
    # a broken header by strict readers (the email package only notes a defect).
    head = f"{ctype}\r\nContent-Transfer-Encoding: base64\r\n{disposition}\r\n\r\n"
    return head.encode("ascii") + encoded


def _related_part(part: Related) -> bytes:
    """An inline part the HTML refers to by its Content-ID."""
    maintype, subtype = _mime_type(part.mimetype)
    cid = _one_line(part.content_id).strip("<>")
    if not cid.isascii() or any(c in cid for c in "<> "):
        raise ValueError(f"not a usable Content-ID: {part.content_id!r}")
    name = _safe_filename(part.filename)
    if not (name.isascii() and name.isprintable()):
        raise ValueError(f"an inline part needs a plain file name: {part.filename!r}")
    encoded = base64.encodebytes(bytes(part.data)).replace(b"\n", b"\r\n")
    head = (
        f"Content-Type: {maintype}/{subtype}\r\nContent-Transfer-Encoding: base64\r\n"
        f"Content-ID: <{cid}>\r\n"
        f'Content-Disposition: inline; filename="{name}"\r\n\r\n'
    )
    return head.encode("ascii") + encoded


def _disposition(filename: str) -> str:
    """Content-Disposition with the file name; RFC 2231 continuations when it is not ASCII."""
    if filename.isascii() and filename.isprintable() and len(filename) < 60:
        quoted = filename.replace("\\", "\\\\").replace('"', '\\"')
        return f'Content-Disposition: attachment; filename="{quoted}"'
    # Percent-encode whole characters, then cut into short sections between escapes.
    escaped = [urllib.parse.quote(ch, safe="") for ch in filename]
    sections: list[str] = []
    for token in escaped:
        if sections and len(sections[-1]) + len(token) <= 60:
            sections[-1] += token
        else:
            sections.append(token)
    sections[0] = "utf-8''" + sections[0]
    params = [f"filename*{i}*={section}" for i, section in enumerate(sections)]
    return "Content-Disposition: attachment;\r\n " + ";\r\n ".join(params)


__all__ = [
    "AUTO_SUBMITTED_VALUES",
    "Related",
    "compose",
    "message_ids",
    "new_message_id",
    "reply_subject",
]
