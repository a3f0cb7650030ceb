"""Part contents: decoded payloads, child parts, and the readable body text (HTML to text)."""

from __future__ import annotations

import binascii
import re
import unicodedata
from email.message import Message
from html.parser import HTMLParser

from mailbot.mail.headers import (
    content_type_of,
    decode_bytes,
    disposition,
    header_param,
    part_filename,
    raw_get,
)

__all__ = ["body_text", "children", "excerpt", "html_to_text", "payload", "text_of"]

# A uuencoded file inside a text body is an attachment (see unpack/uuencode.py), not text.
_UU_TEXT = re.compile(r"^begin[ \t]+[0-7]{3,4}[ \t]+[^\n]+\n.*?^end[ \t]*$", re.M | re.S)


def _clean_base64(part: Message) -> bytes | None:
    """A base64 body decoded at once when it is clean (None: let the email package do it).

    The email package joins the body's lines and decodes them strictly; for a body of
    whole, well padded base64 that is exactly the bytes decoded here, without building a
    list of its lines first (a file of a few hundred kB has thousands).
    """
    if part.is_multipart():
        return None
    body = part.get_payload()
    if not isinstance(body, str) or not body.isascii():
        return None
    if (raw_get(part, "content-transfer-encoding") or "").lower() != "base64":
        return None
    joined = body.encode("ascii").translate(None, b"\r\n")
    if len(joined) % 4:
        return None  # the email package pads it and notes a defect
    try:
        return binascii.a2b_base64(joined, strict_mode=True)
    except binascii.Error:
        return None


def payload(part: Message) -> bytes:
    """The decoded content of a leaf part (transfer encoding undone); b"" when there is none."""
    clean = _clean_base64(part)
    if clean is not None:
        return clean
    try:
        data = part.get_payload(decode=True)
    except Exception:
        data = None
    if isinstance(data, bytes):
        return data
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogateescape")
    return b""


def children(part: Message) -> list[Message]:
    """The sub-parts of a multipart or message part ([] for a leaf)."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


# ---------------------------------------------------------------------------
# HTML to text


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {
            "p",
            "div",
            "tr",
            "li",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "table",
            "ul",
            "ol",
            "blockquote",
            "pre",
            "section",
            "article",
            "header",
            "footer",
            "hr",
        }
    )
    _SKIP = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
        elif tag == "br" or tag in self._BLOCK:
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Plain text of an HTML body: tags dropped, blocks on their own lines, entities decoded."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # HTMLParser is lenient; guard against the odd assertion anyway
        return re.sub(r"<[^>]*>", " ", html)
    text = "".join(parser.parts)
    lines = [re.sub(r"[ \t\u00a0]+", " ", line).strip() for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def text_of(part: Message) -> str:
    """A text part as str: charset guessed when missing or wrong, HTML turned to text, NFC."""
    data = payload(part)
    charset = header_param(raw_get(part, "content-type"), "charset")
    ctype = content_type_of(part)
    if ctype == "text/html" and not charset:
        m = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_:.-]+)""", data[:4096], re.I)
        charset = m.group(1).decode("ascii") if m else None
    text = decode_bytes(data, charset)
    if ctype == "text/html":
        text = html_to_text(text)
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n"))


def _is_attachment_part(part: Message) -> bool:
    return disposition(part) == "attachment" or part_filename(part) is not None


def _body_of(part: Message) -> str:
    ctype = content_type_of(part)
    if ctype.startswith("multipart/"):
        kids = children(part)
        if ctype == "multipart/alternative":
            plain = [c for c in kids if content_type_of(c) == "text/plain"]
            for candidate in plain + [c for c in kids if c not in plain]:
                text = _body_of(candidate)
                if text.strip():
                    return text
            return ""
        texts = []
        for child in kids:
            if _is_attachment_part(child) or content_type_of(child).startswith("message/"):
                continue
            text = _body_of(child)
            if text.strip():
                texts.append(text)
                if ctype == "multipart/related":
                    break
        return "\n\n".join(texts)
    if ctype in ("text/plain", "text/html") and not _is_attachment_part(part):
        text = text_of(part)
        return _UU_TEXT.sub("", text) if ctype == "text/plain" and "begin " in text else text
    return ""


def body_text(msg: Message) -> str:
    """The readable body of a mail (attachments and forwarded mails left out)."""
    body = _body_of(msg)
    if body.strip() or not content_type_of(msg).startswith("multipart/") or children(msg):
        return body
    # A multipart whose boundary could not be found: its text is better than nothing.
    return decode_bytes(payload(msg))


# Where the quoted part of a reply begins (Gmail/Outlook/Thunderbird, English and Vietnamese).
_QUOTE_START = re.compile(
    r"^(>|-{2,}\s*(original message|forwarded message|thư gốc|thư chuyển tiếp)"
    r"|_{10,}|on .{3,200} wrote:|vào .{3,200} đã viết:|from: .+|từ: .+)",
    re.IGNORECASE,
)
_SIGNATURE = re.compile(r"^--\s*$")


def excerpt(text: str, max_lines: int = 6, max_chars: int = 500) -> str:
    """The first lines a person wrote: quoted replies and signatures left out, blanks folded."""
    lines: list[str] = []
    for raw in text.replace("\r\n", "\n").split("\n"):
        if _SIGNATURE.match(raw) or _QUOTE_START.match(raw.strip()):
            break
        line = " ".join(raw.split())
        if line:
            lines.append(line)
        if len(lines) >= max_lines:
            break
    out = "\n".join(lines)
    if len(out) > max_chars:
        out = out[: max_chars - 1].rsplit(" ", 1)[0] + "…"
    return out
