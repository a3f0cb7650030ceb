"""Understand one raw mail: headers, body and every attached document, wherever it hides."""

from __future__ import annotations

import base64
import binascii
import bz2
import codecs
import hashlib
import io
import lzma
import mimetypes
import re
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import PurePosixPath

from parsers.model import FORMATS, ParseResult, Problem

__all__ = [
    "ArchiveLimits",
    "Attachment",
    "MailProblem",
    "ParsedMail",
    "decode_bytes",
    "decode_header_text",
    "html_to_text",
    "parse_mail",
    "parse_message_bytes",
    "sanitize_filename",
]

# Extensions of files that can hold a form (or that we must at least name in the receipt).
FORM_EXTENSIONS = frozenset(
    {".xlsx", ".xlsm", ".xls", ".docx", ".doc", ".ods", ".odt", ".pdf", ".csv", ".rtf"}
)
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif", ".webp"}
)
ARCHIVE_EXTENSIONS = frozenset({".zip", ".rar", ".7z", ".tar", ".gz", ".tgz", ".bz2", ".xz"})
# Files that are never a submission: signatures, OS junk, Office lock files.
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
_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini", ".ds_store", "smime.p7s"})
_IGNORED_EXTENSIONS = frozenset({".ics", ".vcs", ".vcf", ".p7s"})
# Parts whose content is encrypted for the recipient: nothing in them can be read.
_ENCRYPTED_TYPES = frozenset(
    {"application/pgp-encrypted", "application/pkcs7-mime", "application/x-pkcs7-mime"}
)

_TYPE_EXTENSIONS = {
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.12": ".xlsm",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/msword": ".doc",
    "application/vnd.oasis.opendocument.spreadsheet": ".ods",
    "application/vnd.oasis.opendocument.text": ".odt",
    "application/pdf": ".pdf",
    "text/csv": ".csv",
    "application/rtf": ".rtf",
    "text/rtf": ".rtf",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
    "application/x-rar-compressed": ".rar",
    "application/vnd.rar": ".rar",
    "application/x-7z-compressed": ".7z",
    "application/x-tar": ".tar",
    "application/gzip": ".gz",
    "application/x-gzip": ".gz",
    "application/x-compressed-tar": ".tgz",
    # Samsung phones (Hancom Office) and Kingsoft WPS label Office files with their own types.
    "application/haansoftxlsx": ".xlsx",
    "application/haansoftdocx": ".docx",
    "application/haansoftxls": ".xls",
    "application/haansoftdoc": ".doc",
    "application/kswps": ".doc",
    "application/kset": ".xls",
    "application/excel": ".xls",
    "application/x-excel": ".xls",
    "application/x-msexcel": ".xls",
    "application/vnd.ms-word": ".doc",
}
_SNIFFED_KEEP = FORM_EXTENSIONS | ARCHIVE_EXTENSIONS | {".eml"}

FORWARD_LABEL = "Thư chuyển tiếp"
MAX_FILENAME_CHARS = 150
MAX_BODY_CHARS = 1_000_000
_SINGLE_BYTE_CHARSETS = ("ascii", "latin_1", "cp125", "iso8859", "cp437", "cp850", "mac_roman")


@dataclass(frozen=True)
class ArchiveLimits:
    """Bounds that keep hostile archives and deep forwards from exhausting the machine."""

    max_total_uncompressed: int = 100 * 1024 * 1024  # per archive
    max_members: int = 200
    max_ratio: int = 100  # uncompressed / compressed, judged for members over ratio_floor
    ratio_floor: int = 1024 * 1024
    max_archive_depth: int = 2  # a zip inside a zip, no deeper
    max_forward_depth: int = 5
    max_mail_bytes: int = 200 * 1024 * 1024  # everything extracted from one mail


@dataclass(frozen=True)
class Attachment:
    """One file found in a mail, with a safe name and where it was found."""

    filename: str
    content: bytes = field(repr=False)
    content_type: str
    origin: str

    @property
    def extension(self) -> str:
        return PurePosixPath(self.filename).suffix.lower()

    @property
    def is_image(self) -> bool:
        return self.extension in IMAGE_EXTENSIONS or self.content_type.startswith("image/")

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class MailProblem:
    """A file that was found but could not be used, explained to the unit in Vietnamese."""

    code: str
    filename: str
    origin: str
    message: str
    severity: str = "error"

    def as_result(self) -> ParseResult:
        """The problem as a file-level parse result, so receipts list it like any file."""
        ext = _suffix(self.filename).lstrip(".")
        return ParseResult(
            file=self.filename,
            format=ext if ext in FORMATS else "other",
            problems=[Problem(self.severity, self.code, self.origin, self.message)],  # type: ignore[arg-type]
        )


@dataclass(frozen=True)
class ParsedMail:
    """What one raw mail says: who, when, which thread, what text and which files."""

    message_id: str | None
    from_addr: str
    from_name: str
    to: tuple[str, ...]
    subject: str
    date: datetime | None
    in_reply_to: str | None
    references: tuple[str, ...]
    body_text: str
    attachments: tuple[Attachment, ...]
    problems: tuple[MailProblem, ...]
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    cc: tuple[str, ...] = ()
    reply_to: tuple[str, ...] = ()
    content_type: str = "text/plain"
    raw: bytes = field(default=b"", repr=False, compare=False)

    def header(self, name: str) -> str | None:
        """The first header of that name (decoded, unfolded), or None."""
        key = name.lower()
        for k, v in self.headers:
            if k.lower() == key:
                return v
        return None

    def header_all(self, name: str) -> tuple[str, ...]:
        """Every header of that name, top first."""
        key = name.lower()
        return tuple(v for k, v in self.headers if k.lower() == key)

    def has_header(self, name: str) -> bool:
        return self.header(name) is not None


# ---------------------------------------------------------------------------
# Text decoding


def _codec(charset: str | None) -> str | None:
    if not charset:
        return None
    cs = charset.strip().strip("\"'").lower()
    if cs in ("x-unknown", "unknown-8bit", "x-user-defined", "default", ""):
        return None
    try:
        return codecs.lookup(cs).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None = None) -> str:
    """Decode text in a declared charset, surviving wrong or missing labels (UTF-8, then cp1258)."""
    cs = _codec(charset)
    if cs and cs.startswith(_SINGLE_BYTE_CHARSETS) and not data.isascii():
        # Mislabelled UTF-8 is common; valid multi-byte UTF-8 is improbable in 8-bit text.
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
    if cs:
        try:
            return data.decode(cs)
        except (UnicodeDecodeError, LookupError):
            pass
    for guess in ("utf-8", "cp1258"):
        try:
            return data.decode(guess)
        except UnicodeDecodeError:
            continue
    return data.decode(cs or "utf-8", errors="replace")


def _unescape_surrogates(text: str) -> str:
    """Headers holding raw 8-bit bytes come back from the parser as surrogate escapes."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


_ENCODED_WORD = re.compile(r"=\?([^?\s]+?)\?([qQbB])\?([^?\s]*?)\?=")


def _decode_word(kind: str, payload: str) -> bytes | None:
    try:
        if kind in "bB":
            return base64.b64decode(payload + "=" * (-len(payload) % 4))
        return binascii.a2b_qp(payload.encode("latin-1", "replace"), header=True)
    except (binascii.Error, ValueError):
        return None


def decode_words(text: str) -> str:
    """Decode RFC 2047 encoded-words, joining adjacent words so split characters survive."""
    out: list[str] = []
    pending: list[bytes] = []
    pending_cs: str | None = None
    pos = 0

    def flush() -> None:
        nonlocal pending_cs
        if pending:
            out.append(decode_bytes(b"".join(pending), pending_cs))
            pending.clear()
        pending_cs = None

    prev_was_word = False
    for m in _ENCODED_WORD.finditer(text):
        between = text[pos : m.start()]
        charset = m.group(1).split("*", 1)[0]
        data = _decode_word(m.group(2), m.group(3))
        pos = m.end()
        if data is None:
            flush()
            out.append(between + m.group(0))
            prev_was_word = False
            continue
        if prev_was_word and between.strip() == "":
            # White space between two encoded words is not part of the text (RFC 2047 6.2).
            if _codec(charset) == _codec(pending_cs):
                pending.append(data)
                continue
            flush()
        else:
            flush()
            out.append(between)
        pending.append(data)
        pending_cs = charset
        prev_was_word = True
    flush()
    out.append(text[pos:])
    return "".join(out)


def normalize_text(text: str) -> str:
    """NFC, no control characters, white space folded."""
    text = unicodedata.normalize("NFC", text.replace("\u00a0", " "))
    text = "".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in text)
    return re.sub(r"\s+", " ", text).strip()


def decode_header_text(value: str | None) -> str:
    """A header value as readable text: raw 8-bit bytes and RFC 2047 decoded, NFC, unfolded."""
    if value is None:
        return ""
    value = _unescape_surrogates(str(value))
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    return normalize_text(decode_words(value))


# ---------------------------------------------------------------------------
# Header parameters (own parser: robust to raw bytes, RFC 2231 and RFC 2047 alike)


def _split_params(value: str) -> list[str]:
    parts, buf, quoted, escaped = [], [], False, False
    for ch in value:
        if escaped:
            buf.append(ch)
            escaped = False
        elif ch == "\\" and quoted:
            buf.append(ch)
            escaped = True
        elif ch == '"':
            quoted = not quoted
            buf.append(ch)
        elif ch == ";" and not quoted:
            parts.append("".join(buf))
            buf = []
        else:
            buf.append(ch)
    parts.append("".join(buf))
    return parts


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def _percent_bytes(text: str) -> bytes:
    raw = text.encode("utf-8", "surrogateescape")
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), raw)


def header_param(raw_value: str | None, name: str) -> str | None:
    """One parameter of a structured header, RFC 2231 (continuations, charsets) understood."""
    if not raw_value:
        return None
    raw_value = re.sub(r"\r?\n(?=[ \t])", "", raw_value)
    plain: str | None = None
    segments: dict[int, tuple[bool, str]] = {}
    name = name.lower()
    for item in _split_params(raw_value)[1:]:
        key, sep, val = item.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        if key == name:
            if plain is None:
                plain = _unquote(val)
            continue
        m = re.fullmatch(re.escape(name) + r"\*(?:(\d+)(\*)?|)", key)
        if not m:
            continue
        if m.group(1) is None:  # name*=charset'lang'value
            segments.setdefault(0, (True, val.strip()))
        else:
            segments.setdefault(int(m.group(1)), (bool(m.group(2)), _unquote(val)))
    if segments:
        charset = None
        chunks: list[bytes] = []
        for i, (_index, (extended, val)) in enumerate(sorted(segments.items())):
            # A missing segment is tolerated: the rest of the name beats none of it.
            if extended:
                if i == 0 and val.count("'") >= 2:
                    charset, _lang, val = val.split("'", 2)
                chunks.append(_percent_bytes(_unquote(val)))
            else:
                chunks.append(val.encode("utf-8", "surrogateescape"))
        text = decode_bytes(b"".join(chunks), charset or None)
        if text.strip():
            return decode_header_text(text)
    if plain is not None:
        return decode_header_text(plain)
    return None


def _raw_headers(part: Message) -> list[tuple[str, str]]:
    try:
        return [(str(k), str(v)) for k, v in part.raw_items()]
    except Exception:  # a malformed header object must not stop the mail
        return []


def _raw_get(part: Message, name: str) -> str | None:
    key = name.lower()
    for k, v in _raw_headers(part):
        if k.lower() == key:
            return v
    return None


def _content_type(part: Message, default: str = "text/plain") -> str:
    raw = _raw_get(part, "content-type")
    if raw:
        ctype = _unescape_surrogates(raw).split(";", 1)[0].strip().lower()
        if re.fullmatch(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+", ctype):
            return ctype
    return default


def _disposition(part: Message) -> str:
    raw = _raw_get(part, "content-disposition")
    if not raw:
        return ""
    return raw.split(";", 1)[0].strip().lower()


def _part_filename(part: Message) -> str | None:
    """The part's file name; a lossy fallback ("M?u 01.xlsx", no extension) loses to the other."""
    names = [
        name
        for header, param in (("content-disposition", "filename"), ("content-type", "name"))
        if (name := header_param(_raw_get(part, header), param))
    ]
    if not names:
        return None

    def lossy(name: str) -> bool:
        return "\ufffd" in name or "?" in name or not _suffix(name)

    return next((n for n in names if not lossy(n)), names[0])


def _encoded_message(part: Message, cte: str) -> bytes:
    children = _children(part)
    try:
        text = children[0].as_bytes() if children else _payload(part)
        if cte == "base64":
            clean = re.sub(rb"[^A-Za-z0-9+/]", b"", text)
            return base64.b64decode(clean + b"=" * (-len(clean) % 4))
        return binascii.a2b_qp(text)
    except (binascii.Error, ValueError, TypeError, LookupError):
        return b""


def _payload(part: Message) -> bytes:
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


# ---------------------------------------------------------------------------
# File names


_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')


def sanitize_filename(name: str | None, fallback: str = "tệp đính kèm") -> str:
    """A safe base name: NFC, no directories or "..", no control characters, bounded length."""
    text = unicodedata.normalize("NFC", name or "")
    text = "".join(
        "" if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") else ch for ch in text
    )
    text = text.replace("\\", "/")
    text = text.rsplit("/", 1)[-1]
    text = _UNSAFE_CHARS.sub("_", text)
    text = re.sub(r"\s+", " ", text).strip(" .")
    if not text or set(text) <= {".", "_", " "}:
        text = fallback
    if len(text) > MAX_FILENAME_CHARS:
        p = PurePosixPath(text)
        suffix = p.suffix if len(p.suffix) <= 10 else ""
        text = text[: MAX_FILENAME_CHARS - len(suffix)].rstrip(" .") + suffix
    return text


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _sniff_extension(data: bytes, content_type: str) -> str:
    """An extension for a nameless part: by content type, else by the bytes themselves."""
    if content_type in _TYPE_EXTENSIONS:
        return _TYPE_EXTENSIONS[content_type]
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                names = set(zf.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return ".zip"
        if "xl/workbook.xml" in names:
            return ".xlsx"
        if "word/document.xml" in names:
            return ".docx"
        if "mimetype" in names:
            return ".ods"
        return ".zip"
    if data.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        if b"W\x00o\x00r\x00k\x00b\x00o\x00o\x00k" in data[:1_000_000]:
            return ".xls"
        if b"W\x00o\x00r\x00d\x00D\x00o\x00c" in data[:1_000_000]:
            return ".doc"
        return ".xls"
    if data.startswith(b"%PDF"):
        return ".pdf"
    if data.startswith(b"{\\rtf"):
        return ".rtf"
    if data.startswith(b"Rar!\x1a\x07"):
        return ".rar"
    if data.startswith(b"7z\xbc\xaf\x27\x1c"):
        return ".7z"
    if data.startswith(b"\x1f\x8b"):
        return ".gz"
    if data[257:262] == b"ustar":
        return ".tar"
    if data.startswith((b"From: ", b"Received: ", b"Return-Path: ", b"MIME-Version: ")):
        return ".eml"
    return mimetypes.guess_extension(content_type) or ".bin"


def _content_type_for(name: str, declared: str = "application/octet-stream") -> str:
    guessed = mimetypes.guess_type(name, strict=False)[0]
    if declared in ("application/octet-stream", "application/x-download", "") and guessed:
        return guessed
    ext = _suffix(name)
    for ctype, type_ext in _TYPE_EXTENSIONS.items():
        if type_ext == ext:
            return ctype
    return guessed or declared or "application/octet-stream"


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


def _text_of(part: Message) -> str:
    data = _payload(part)
    charset = header_param(_raw_get(part, "content-type"), "charset")
    ctype = _content_type(part)
    if ctype == "text/html" and not charset:
        m = re.search(rb"""<meta[^>]+charset=["']?([A-Za-z0-9_:.-]+)""", data[:4096], re.I)
        charset = m.group(1).decode("ascii") if m else None
    text = decode_bytes(data, charset)
    if ctype == "text/html":
        text = html_to_text(text)
    return unicodedata.normalize("NFC", text.replace("\r\n", "\n"))


def _is_attachment_part(part: Message) -> bool:
    return _disposition(part) == "attachment" or _part_filename(part) is not None


def _body_of(part: Message) -> str:
    ctype = _content_type(part)
    if ctype.startswith("multipart/"):
        children = [c for c in _children(part)]
        if ctype == "multipart/alternative":
            plain = [c for c in children if _content_type(c) == "text/plain"]
            for candidate in plain + [c for c in children if c not in plain]:
                text = _body_of(candidate)
                if text.strip():
                    return text
            return ""
        texts = []
        for child in children:
            if _is_attachment_part(child) or _content_type(child).startswith("message/"):
                continue
            text = _body_of(child)
            if text.strip():
                texts.append(text)
                if ctype == "multipart/related":
                    break
        return "\n\n".join(texts)
    if ctype in ("text/plain", "text/html") and not _is_attachment_part(part):
        text = _text_of(part)
        return _UU_TEXT.sub("", text) if ctype == "text/plain" and "begin " in text else text
    return ""


# A uuencoded file inside a text body (Outlook Express, The Bat!, old Unix mailers).
_UU_BLOCK = re.compile(
    rb"^begin[ \t]+[0-7]{3,4}[ \t]+([^\r\n]+?)[ \t]*\r?\n(.*?)^end[ \t]*\r?$", re.M | re.S
)
_UU_TEXT = re.compile(r"^begin[ \t]+[0-7]{3,4}[ \t]+[^\n]+\n.*?^end[ \t]*$", re.M | re.S)


def _decode_uu_lines(block: bytes) -> bytes | None:
    out = []
    for line in block.splitlines():
        line = line.rstrip(b"\r")
        if not line.strip() or line.strip() == b"`":
            continue
        try:
            out.append(binascii.a2b_uu(line))
        except binascii.Error:
            try:  # trailing garbage from broken encoders: trust the length byte
                nbytes = (((line[0] - 32) & 63) * 4 + 5) // 3
                out.append(binascii.a2b_uu(line[:nbytes]))
            except (binascii.Error, IndexError):
                return None
    return b"".join(out)


def _body_or_raw(msg: Message) -> str:
    body = _body_of(msg)
    if body.strip() or not _content_type(msg).startswith("multipart/") or _children(msg):
        return body
    # A multipart whose boundary could not be found: its text is better than nothing.
    return decode_bytes(_payload(msg))


def _children(part: Message) -> list[Message]:
    payload = part.get_payload()
    if isinstance(payload, list):
        return [p for p in payload if isinstance(p, Message)]
    return []


# ---------------------------------------------------------------------------
# Attachments


class _Collector:
    def __init__(self, max_attachment_bytes: int, limits: ArchiveLimits) -> None:
        self.max_bytes = max_attachment_bytes
        self.limits = limits
        self.attachments: list[Attachment] = []
        self.problems: list[MailProblem] = []
        self.extracted = 0
        self.unnamed = 0
        self.seen: set[bytes] = set()  # digests of the files kept, so a duplicate counts once

    def problem(
        self, code: str, name: str, origin: str, message: str, severity: str = "error"
    ) -> None:
        self.problems.append(MailProblem(code, name, origin, message, severity))

    # -- MIME tree --

    def walk(self, part: Message, path: tuple[str, ...], depth: int, parent: str) -> None:
        ctype = _content_type(part, "message/rfc822" if parent == "multipart/digest" else "")
        ctype = ctype or "text/plain"
        if ctype in _IGNORED_TYPES:
            return
        if ctype == "multipart/encrypted" or ctype in _ENCRYPTED_TYPES:
            if ctype in ("application/pkcs7-mime", "application/x-pkcs7-mime"):
                self.pkcs7(_payload(part), path, depth)
            else:
                self._encrypted_mail(path)
            return
        if ctype.startswith("multipart/"):
            for child in _children(part):
                self.walk(child, path, depth, ctype)
            return
        if ctype == "message/rfc822" or (ctype.startswith("message/") and _children(part)):
            cte = (_raw_get(part, "content-transfer-encoding") or "").strip().lower()
            if cte in ("base64", "quoted-printable"):
                # Not allowed by RFC 2046, yet sent: the parser saw encoded text as a message.
                self.forwarded(parse_message_bytes(_encoded_message(part, cte)), path, depth)
                return
            for inner in _children(part):
                self.forwarded(inner, path, depth)
            return
        self.leaf(part, ctype, path, depth, parent)

    def forwarded(self, inner: Message, path: tuple[str, ...], depth: int) -> None:
        here = (*path, FORWARD_LABEL)
        if depth + 1 > self.limits.max_forward_depth:
            self.problem(
                "forward-too-deep",
                FORWARD_LABEL,
                _origin(here),
                "Thư có quá nhiều lớp chuyển tiếp lồng nhau nên các tệp ở lớp sâu nhất không "
                "được đọc. Vui lòng đính kèm trực tiếp các tệp biểu mẫu vào thư.",
            )
            return
        self.walk(inner, here, depth + 1, "")

    def leaf(
        self, part: Message, ctype: str, path: tuple[str, ...], depth: int, parent: str
    ) -> None:
        raw_name = _part_filename(part)
        disposition = _disposition(part)
        if raw_name is None:
            if ctype == "text/plain":
                self.uuencoded(_payload(part), path, depth)
                return
            if ctype.startswith(("text/", "image/", "audio/", "video/")) and ctype not in (
                "text/csv",
                "text/rtf",
            ):
                return  # bodies and inline pictures
            if ctype == "application/ms-tnef":
                raw_name = "winmail.dat"
            elif ctype.startswith("application/") or ctype in ("text/csv", "text/rtf"):
                data = _payload(part)
                if not data:
                    return
                ext = _sniff_extension(data, ctype)
                # A nameless part is kept when it says or shows it is a document; scanners and
                # copiers send forms as nameless "inline" octet-streams.
                if ext not in _SNIFFED_KEEP and not (
                    ctype in _TYPE_EXTENSIONS
                    or (ctype == "application/octet-stream" and disposition != "inline")
                ):
                    return
                self.unnamed += 1
                raw_name = f"Tệp đính kèm {self.unnamed}{ext}"
            else:
                return
        name = sanitize_filename(raw_name)
        if not _suffix(name) and ctype in _TYPE_EXTENSIONS:
            name += _TYPE_EXTENSIONS[ctype]
        ext = _suffix(name)
        is_image = ext in IMAGE_EXTENSIONS or (
            ctype.startswith("image/") and ext not in FORM_EXTENSIONS | ARCHIVE_EXTENSIONS
        )
        if is_image:
            inline = (
                disposition == "inline"
                or parent == "multipart/related"
                or _raw_get(part, "content-id") is not None
            )
            if inline and disposition != "attachment":
                return  # signature logos and pasted pictures
        if name.casefold() in _IGNORED_NAMES or name.startswith("~$"):
            return
        if ext == ".p7m":
            self.pkcs7(_payload(part), path, depth)
            return
        self.file(name, _payload(part), ctype, path, depth, 0)

    def uuencoded(self, text: bytes, path: tuple[str, ...], depth: int) -> None:
        """Files uuencoded inside a plain-text body."""
        if b"begin " not in text:
            return
        for m in _UU_BLOCK.finditer(text):
            name = sanitize_filename(decode_bytes(m.group(1)))
            data = _decode_uu_lines(m.group(2))
            if data is None:
                self.problem(
                    "attachment-unreadable",
                    name,
                    _origin((*path, name)),
                    f"Tệp “{name}” trong nội dung thư (mã hóa uuencode) bị lỗi, không đọc được. "
                    "Vui lòng gửi lại tệp dưới dạng tệp đính kèm thông thường.",
                )
                continue
            self.file(name, data, "application/octet-stream", path, depth, 0)

    def _encrypted_mail(self, path: tuple[str, ...]) -> None:
        self.problem(
            "mail-encrypted",
            "Thư mã hóa",
            _origin((*path, "Thư mã hóa")),
            "Thư (hoặc phần thư) được mã hóa (S/MIME hoặc PGP) nên hệ thống không đọc được các "
            "tệp đính kèm. Vui lòng gửi lại thư không mã hóa (chữ ký số vẫn dùng được).",
        )

    def pkcs7(self, data: bytes, path: tuple[str, ...], depth: int) -> None:
        """S/MIME opaque-signed content (smime.p7m) is read; encrypted content is reported."""
        content = _pkcs7_signed_content(data)
        if content is None:
            self._encrypted_mail(path)
            return
        if depth + 1 > self.limits.max_forward_depth:
            self.problem(
                "forward-too-deep",
                FORWARD_LABEL,
                _origin(path or (FORWARD_LABEL,)),
                "Cấu trúc thư lồng nhau quá sâu nên một số tệp không được đọc. Vui lòng đính "
                "kèm trực tiếp các tệp biểu mẫu vào thư.",
            )
            return
        self.extracted += len(content)
        self.walk(parse_message_bytes(content), path, depth + 1, "")

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
            self.problem(
                "file-too-large",
                name,
                origin,
                f"Tệp “{name}” có dung lượng {_mb(len(data))}, vượt giới hạn "
                f"{_mb(self.max_bytes)} nên không được đọc. Vui lòng gửi tệp nhỏ hơn "
                "(ví dụ bỏ bớt hình ảnh, hoặc lưu lại dưới dạng .xlsx/.docx).",
            )
            return
        if self.extracted + len(data) > self.limits.max_mail_bytes:
            self.problem(
                "file-too-large",
                name,
                origin,
                f"Tổng dung lượng các tệp trong thư vượt {_mb(self.limits.max_mail_bytes)} "
                f"nên tệp “{name}” không được đọc. Vui lòng gửi các tệp trong nhiều thư.",
            )
            return
        ext = _suffix(name)
        lname = name.casefold()
        if ext in _IGNORED_EXTENSIONS:
            return  # invitations, business cards, detached signatures: never a submission
        if declared_type == "application/ms-tnef" or lname in ("winmail.dat", "win.dat"):
            self.tnef(name, data, path, forward_depth, archive_depth)
            return
        if ext == ".eml" or declared_type == "message/rfc822":
            self.extracted += len(data)
            self.forwarded(parse_message_bytes(data), path, forward_depth)
            return
        is_zip = ext == ".zip" or (
            ext not in FORM_EXTENSIONS
            and data.startswith(b"PK\x03\x04")
            and declared_type in ("application/zip", "application/x-zip-compressed")
        )
        if is_zip:
            self.zip(name, data, path, forward_depth, archive_depth + 1)
            return
        if ext == ".rar" or (ext not in FORM_EXTENSIONS and data.startswith(b"Rar!\x1a\x07")):
            self.rar(name, data, path, forward_depth, archive_depth + 1)
            return
        if ext in (".tar", ".gz", ".tgz", ".bz2", ".xz", ".tbz2", ".txz") or (
            ext not in FORM_EXTENSIONS and _sniff_extension(data, "") in (".gz", ".tar")
        ):
            self.tar(name, data, path, forward_depth, archive_depth + 1)
            return
        if ext == ".7z" or (ext not in FORM_EXTENSIONS and data.startswith(b"7z\xbc\xaf\x27\x1c")):
            self.problem(
                "archive-unsupported",
                name,
                origin,
                f"Hệ thống chưa mở được tệp nén “{name}”. Vui lòng nén lại dưới dạng .zip "
                "hoặc đính kèm trực tiếp các tệp biểu mẫu.",
            )
            return
        digest = hashlib.sha256(data).digest()
        if digest in self.seen and data:
            return  # the same file attached twice (or forwarded and attached): one submission
        self.seen.add(digest)
        self.extracted += len(data)
        self.attachments.append(
            Attachment(name, data, _content_type_for(name, declared_type), origin)
        )

    def _too_deep(self, name: str, origin: str, depth: int) -> bool:
        if depth <= self.limits.max_archive_depth:
            return False
        self.problem(
            "archive-too-deep",
            name,
            origin,
            f"Tệp nén “{name}” nằm trong quá nhiều lớp nén nên không được mở. "
            "Vui lòng gửi trực tiếp các tệp biểu mẫu hoặc chỉ nén một lớp.",
        )
        return True

    def _bomb(self, name: str, origin: str) -> None:
        self.problem(
            "archive-too-large",
            name,
            origin,
            f"Tệp nén “{name}” khi giải nén quá lớn (vượt "
            f"{_mb(self.limits.max_total_uncompressed)} hoặc tỉ lệ nén bất thường) nên không "
            "được mở. Vui lòng gửi trực tiếp các tệp biểu mẫu.",
        )

    def _encrypted(self, name: str, origin: str) -> None:
        self.problem(
            "archive-encrypted",
            name,
            origin,
            f"Tệp nén “{name}” có đặt mật khẩu nên không mở được. Vui lòng gửi lại tệp "
            "không đặt mật khẩu, hoặc đính kèm trực tiếp các tệp biểu mẫu.",
        )

    def _unreadable(self, name: str, origin: str) -> None:
        self.problem(
            "archive-unreadable",
            name,
            origin,
            f"Tệp nén “{name}” bị lỗi, không giải nén được. Vui lòng nén lại hoặc đính kèm "
            "trực tiếp các tệp biểu mẫu.",
        )

    def _empty(self, name: str, origin: str) -> None:
        self.problem(
            "archive-empty",
            name,
            origin,
            f"Tệp nén “{name}” không chứa tệp nào để đọc.",
            "warning",
        )

    def _too_many(self, name: str, origin: str) -> None:
        self.problem(
            "archive-too-many-files",
            name,
            origin,
            f"Tệp nén “{name}” chứa quá nhiều tệp (trên {self.limits.max_members}) nên không "
            "được mở. Vui lòng chỉ gửi các tệp biểu mẫu.",
        )

    def zip(self, name: str, data: bytes, path: tuple[str, ...], fdepth: int, adepth: int) -> None:
        origin = _origin((*path, name))
        if self._too_deep(name, origin, adepth):
            return
        try:
            zf = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
            self._unreadable(name, origin)
            return
        with zf:
            infos = [i for i in zf.infolist() if not i.is_dir()]
            if len(infos) > self.limits.max_members:
                self._too_many(name, origin)
                return
            declared = sum(i.file_size for i in infos)
            if declared > self.limits.max_total_uncompressed or any(
                _ratio_bad(i.file_size, i.compress_size, self.limits) for i in infos
            ):
                self._bomb(name, origin)
                return
            wanted = []
            encrypted = False
            for info in infos:
                member = zip_member_name(info)
                if _junk_member(member):
                    continue
                if info.flag_bits & 0x1:
                    encrypted = True
                    continue
                wanted.append((info, member))
            if encrypted:
                self._encrypted(name, origin)
            if not wanted:
                if not encrypted:
                    self._empty(name, origin)
                return
            budget = self.limits.max_total_uncompressed
            for info, member in wanted:
                try:
                    with zf.open(info) as fh:
                        content = fh.read(min(budget, info.file_size) + 1)
                except (
                    zipfile.BadZipFile,
                    OSError,
                    ValueError,
                    EOFError,
                    NotImplementedError,
                    RuntimeError,
                    zlib.error,
                ):
                    self._unreadable(f"{name} > {member}", origin)
                    continue
                if len(content) > info.file_size or len(content) > budget:
                    self._bomb(name, origin)  # the headers lied about the size
                    return
                budget -= len(content)
                self.file(
                    sanitize_filename(member),
                    content,
                    "application/octet-stream",
                    (*path, name),
                    fdepth,
                    adepth,
                )

    def rar(self, name: str, data: bytes, path: tuple[str, ...], fdepth: int, adepth: int) -> None:
        origin = _origin((*path, name))
        if self._too_deep(name, origin, adepth):
            return
        try:
            import rarfile
        except ImportError:  # pragma: no cover - a declared dependency
            rarfile = None
        if rarfile is None or not rar_tool_available():
            self.problem(
                "archive-unsupported",
                name,
                origin,
                f"Hệ thống chưa mở được tệp nén .rar “{name}”. Vui lòng nén lại dưới dạng .zip "
                "hoặc đính kèm trực tiếp các tệp biểu mẫu.",
            )
            return
        try:
            rf = rarfile.RarFile(io.BytesIO(data))
        except Exception:
            self._unreadable(name, origin)
            return
        with rf:
            try:
                if rf.needs_password():
                    self._encrypted(name, origin)
                    return
                infos = [i for i in rf.infolist() if not i.is_dir()]
            except Exception:
                self._unreadable(name, origin)
                return
            if len(infos) > self.limits.max_members:
                self._too_many(name, origin)
                return
            declared = sum(i.file_size or 0 for i in infos)
            if declared > self.limits.max_total_uncompressed or any(
                _ratio_bad(i.file_size or 0, i.compress_size or 0, self.limits) for i in infos
            ):
                self._bomb(name, origin)
                return
            budget = self.limits.max_total_uncompressed
            found = False
            for info in infos:
                member = unicodedata.normalize("NFC", info.filename or "")
                if _junk_member(member):
                    continue
                try:
                    with rf.open(info) as fh:
                        content = fh.read(min(budget, info.file_size or 0) + 1)
                except Exception:
                    self._unreadable(name, origin)
                    return
                if len(content) > (info.file_size or 0) or len(content) > budget:
                    self._bomb(name, origin)
                    return
                budget -= len(content)
                found = True
                self.file(
                    sanitize_filename(member),
                    content,
                    "application/octet-stream",
                    (*path, name),
                    fdepth,
                    adepth,
                )
            if not found:
                self._empty(name, origin)

    def tar(self, name: str, data: bytes, path: tuple[str, ...], fdepth: int, adepth: int) -> None:
        """.tar, .tar.gz/.tgz/.bz2/.xz, or one compressed file ("Mẫu 01.xlsx.gz")."""
        origin = _origin((*path, name))
        if self._too_deep(name, origin, adepth):
            return
        limit = self.limits.max_total_uncompressed
        plain = _decompress(data, limit)
        if plain is None:
            self._unreadable(name, origin)
            return
        if len(plain) > limit or _ratio_bad(len(plain), len(data), self.limits):
            self._bomb(name, origin)
            return
        if plain is not data and plain[257:262] != b"ustar" and not _is_old_tar(plain):
            # One compressed file: its name is the archive's without the compression suffix.
            inner = re.sub(r"\.(gz|bz2|xz)$", "", name, flags=re.I)
            if inner == name or not _suffix(inner):
                inner = f"{PurePosixPath(name).stem or name}{_sniff_extension(plain, '')}"
            self.file(
                sanitize_filename(inner),
                plain,
                "application/octet-stream",
                (*path, name),
                fdepth,
                adepth,
            )
            return
        entries: list[tuple[str, bytes]] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(plain), mode="r:") as tf:
                files = [m for m in tf.getmembers() if m.isreg()]  # never links or devices
                if len(files) > self.limits.max_members:
                    self._too_many(name, origin)
                    return
                for member in files:
                    member_name = decode_bytes(member.name.encode("utf-8", "surrogateescape"))
                    member_name = unicodedata.normalize("NFC", member_name)
                    if _junk_member(member_name):
                        continue
                    fh = tf.extractfile(member)
                    entries.append((member_name, fh.read() if fh is not None else b""))
        except (tarfile.TarError, OSError, ValueError, EOFError):
            self._unreadable(name, origin)
            return
        if not entries:
            self._empty(name, origin)
        for member_name, content in entries:
            self.file(
                sanitize_filename(member_name),
                content,
                "application/octet-stream",
                (*path, name),
                fdepth,
                adepth,
            )

    def tnef(self, name: str, data: bytes, path: tuple[str, ...], fdepth: int, adepth: int) -> None:
        origin = _origin((*path, name))
        try:
            from tnefparse import TNEF

            tnef = TNEF(data, do_checksum=False)
            found = []
            for att in tnef.attachments:
                att_name = _tnef_name(att)
                att_data = att.data if isinstance(att.data, bytes) else b""
                if att_data:
                    found.append((att_name, att_data))
        except Exception:
            self.problem(
                "tnef-unreadable",
                name,
                origin,
                f"Tệp “{name}” (định dạng riêng của Outlook) không đọc được. Vui lòng gửi lại "
                "thư ở định dạng HTML hoặc văn bản thường (không dùng Rich Text) để các tệp "
                "đính kèm đến nguyên vẹn.",
            )
            return
        for index, (att_name, att_data) in enumerate(found, 1):
            safe = sanitize_filename(att_name, f"Tệp đính kèm {index}")
            if _suffix(safe) in IMAGE_EXTENSIONS | {".wmf", ".emf"} and len(found) > 1:
                continue  # rendering pictures Outlook embeds next to the real files
            self.file(safe, att_data, "application/octet-stream", (*path, name), fdepth, adepth)


def _tnef_name(att: object) -> str:
    for getter in ("long_filename", "name"):
        try:
            value = getattr(att, getter)
            value = value() if callable(value) else value
        except Exception:
            continue
        if isinstance(value, list):
            value = value[0] if value else ""
        if isinstance(value, bytes):
            value = decode_bytes(value.rstrip(b"\x00"))
        if isinstance(value, str) and value.strip("\x00 "):
            return value.strip("\x00 ")
    raw = getattr(att, "_name", b"")  # the 8.3 title, in the sender's code page
    if isinstance(raw, bytes) and raw.strip(b"\x00 "):
        return decode_bytes(raw.strip(b"\x00 "))
    return ""


def _decompress(data: bytes, limit: int) -> bytes | None:
    """gzip/bzip2/xz data inflated to at most limit+1 bytes; plain data as is; None if broken."""
    try:
        if data.startswith(b"\x1f\x8b"):
            out = bytearray()
            rest = data
            while rest.startswith(b"\x1f\x8b") and len(out) <= limit:  # concatenated members
                inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                out += inflater.decompress(rest, limit + 1 - len(out))
                if not inflater.eof:
                    return bytes(out) if len(out) > limit else None  # a bomb, or truncated
                rest = inflater.unused_data
            return bytes(out)
        if data.startswith(b"BZh"):
            unpacker: bz2.BZ2Decompressor | lzma.LZMADecompressor = bz2.BZ2Decompressor()
        elif data.startswith(b"\xfd7zXZ\x00"):
            unpacker = lzma.LZMADecompressor()
        else:
            return data
        plain = unpacker.decompress(data, max_length=limit + 1)
        return plain if unpacker.eof or len(plain) > limit else None
    except (zlib.error, OSError, EOFError, ValueError, lzma.LZMAError):
        return None


def _is_old_tar(data: bytes) -> bool:
    """A pre-POSIX tar header: a valid octal checksum over the first 512 bytes."""
    if len(data) < 512:
        return False
    try:
        stored = int(data[148:156].replace(b"\x00", b" ").strip() or b"-1", 8)
    except ValueError:
        return False
    return stored == sum(data[:148]) + 32 * 8 + sum(data[156:512])


# -- S/MIME opaque signatures: just enough BER to find the signed content -------------------

_OID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")


def _ber(data: bytes, pos: int, depth: int = 0) -> tuple[int, int, int, int]:
    """(tag, content start, content end, next position) of the element at pos."""
    if depth > 40 or pos + 2 > len(data):
        raise ValueError("BER too deep or truncated")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("high tag numbers are not used in CMS")
    first = data[pos + 1]
    pos += 2
    if first == 0x80:  # indefinite length: children up to the end-of-contents octets
        if not tag & 0x20:
            raise ValueError("indefinite primitive")
        start = pos
        while data[pos : pos + 2] != b"\x00\x00":
            pos = _ber(data, pos, depth + 1)[3]
        return tag, start, pos, pos + 2
    if first & 0x80:
        n = first & 0x7F
        if n > 4:
            raise ValueError("length too long")
        length = int.from_bytes(data[pos : pos + n], "big")
        pos += n
    else:
        length = first
    if pos + length > len(data):
        raise ValueError("truncated")
    return tag, pos, pos + length, pos + length


def _ber_children(data: bytes, start: int, end: int, depth: int) -> list[tuple[int, int, int]]:
    out, pos = [], start
    while pos < end:
        tag, cstart, cend, pos = _ber(data, pos, depth)
        out.append((tag, cstart, cend))
    return out


def _octets(data: bytes, tag: int, start: int, end: int, depth: int = 0) -> bytes:
    if tag == 0x04:
        return data[start:end]
    if tag == 0x24:  # constructed OCTET STRING (BER): the chunks in order
        return b"".join(
            _octets(data, t, s, e, depth + 1)
            for t, s, e in _ber_children(data, start, end, depth + 1)
        )
    raise ValueError("not an OCTET STRING")


def _pkcs7_signed_content(data: bytes) -> bytes | None:
    """The MIME entity inside a CMS SignedData (smime.p7m), or None (encrypted or unreadable)."""
    if data[:1] not in (b"\x30",):
        try:  # some clients send the DER base64 twice over
            data = base64.b64decode(re.sub(rb"\s+", b"", data), validate=True)
        except (binascii.Error, ValueError):
            return None
    try:
        tag, start, end, _ = _ber(data, 0)
        info = _ber_children(data, start, end, 1)
        if tag != 0x30 or len(info) < 2 or info[0][0] != 0x06:
            return None
        if data[info[0][1] : info[0][2]] != _OID_SIGNED_DATA or info[1][0] != 0xA0:
            return None
        signed = _ber_children(data, info[1][1], info[1][2], 2)
        sd = _ber_children(data, signed[0][1], signed[0][2], 3)
        encap = next(c for c in sd[2:] if c[0] == 0x30)
        econtent = _ber_children(data, encap[1], encap[2], 4)
        if len(econtent) < 2 or econtent[1][0] != 0xA0:
            return None  # detached: the content is elsewhere
        inner = _ber_children(data, econtent[1][1], econtent[1][2], 5)
        return _octets(data, *inner[0], depth=6) if inner else None
    except (ValueError, IndexError, StopIteration):
        return None


def _ratio_bad(size: int, compressed: int, limits: ArchiveLimits) -> bool:
    if size <= limits.ratio_floor:
        return False
    return compressed <= 0 or size / compressed > limits.max_ratio


def _junk_member(member: str) -> bool:
    parts = [p for p in member.replace("\\", "/").split("/") if p]
    if not parts:
        return True
    if any(p == "__MACOSX" or p.startswith(".") for p in parts):
        return True
    base = parts[-1]
    return base.casefold() in _IGNORED_NAMES or base.startswith("~$")


def _origin(path: tuple[str, ...]) -> str:
    return " > ".join(path)


def _mb(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB".replace(".", ",")


def rar_tool_available() -> bool:
    """Whether rarfile has an external tool (unrar, unar, 7z, bsdtar) to extract with."""
    try:
        import rarfile

        rarfile.tool_setup()
    except Exception:
        return False
    return True


_VIETNAMESE_LETTERS = set("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")


def _vietnamese_score(text: str) -> int:
    lowered = unicodedata.normalize("NFC", text).lower()
    good = sum(ch in _VIETNAMESE_LETTERS for ch in lowered)
    bad = sum(not (ch.isalnum() or ch in " ._-()[]{},'&+~!@#$%^=") for ch in lowered)
    return good - 3 * bad


def zip_member_name(info: zipfile.ZipInfo) -> str:
    """A member's real name: the Unicode Path extra field, the UTF-8 flag, else a best guess."""
    if info.flag_bits & 0x800:
        return unicodedata.normalize("NFC", info.filename)
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return unicodedata.normalize("NFC", info.filename)
    unicode_path = _unicode_path_extra(info.extra, raw)
    if unicode_path:
        return unicode_path
    if raw.isascii():
        return info.filename
    try:
        return unicodedata.normalize("NFC", raw.decode("utf-8"))
    except UnicodeDecodeError:
        pass
    candidates = []
    for cs in ("cp1258", "cp1252", "cp437"):
        try:
            candidates.append(unicodedata.normalize("NFC", raw.decode(cs)))
        except UnicodeDecodeError:
            continue
    return max(candidates, key=_vietnamese_score) if candidates else info.filename


def _unicode_path_extra(extra: bytes, raw_name: bytes) -> str | None:
    pos = 0
    while pos + 4 <= len(extra):
        tag = int.from_bytes(extra[pos : pos + 2], "little")
        size = int.from_bytes(extra[pos + 2 : pos + 4], "little")
        body = extra[pos + 4 : pos + 4 + size]
        pos += 4 + size
        if tag == 0x7075 and len(body) > 5 and body[0] == 1:
            if int.from_bytes(body[1:5], "little") != zlib.crc32(raw_name):
                return None  # the name was changed after the field was written
            try:
                return unicodedata.normalize("NFC", body[5:].decode("utf-8"))
            except UnicodeDecodeError:
                return None
    return None


# ---------------------------------------------------------------------------
# The mail itself


def parse_message_bytes(raw: bytes) -> Message:
    """The MIME tree of a raw mail (compat32: lenient, never raises on malformed headers)."""
    return BytesParser(policy=email_policy.compat32).parsebytes(raw)


def _addresses(raw: str | None) -> list[tuple[str, str]]:
    """(display name, lowercased addr-spec) pairs; modern parser first, then the lenient one."""
    if not raw:
        return []
    text = _unescape_surrogates(raw)
    text = re.sub(r"\r?\n(?=[ \t])", "", text)
    out: list[tuple[str, str]] = []
    try:
        header = email_policy.default.header_factory("to", text)
        for addr in header.addresses:
            if addr.username and addr.domain:
                out.append((normalize_text(addr.display_name or ""), addr.addr_spec.lower()))
    except Exception:
        out = []
    if out:
        return out
    for name, addr in getaddresses([text]):
        if "@" in addr:
            out.append((decode_header_text(name), addr.strip().lower()))
    return out


_MSGID = re.compile(r"<[^<>\s]+>")


def _msg_ids(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    text = _unescape_surrogates(raw)
    found = _MSGID.findall(text)
    if not found:
        found = [f"<{t}>" for t in text.split() if "@" in t and "<" not in t and ">" not in t]
    return tuple(found)


def _date(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(_unescape_surrogates(raw).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iter_decoded_headers(msg: Message) -> Iterator[tuple[str, str]]:
    for name, value in _raw_headers(msg):
        yield name, decode_header_text(value)


def parse_mail(
    raw: bytes,
    max_attachment_bytes: int = 20 * 1024 * 1024,
    limits: ArchiveLimits | None = None,
) -> ParsedMail:
    """Read a raw RFC 5322 mail into a ParsedMail; never raises on malformed input."""
    limits = limits or ArchiveLimits()
    msg = parse_message_bytes(raw)
    headers = tuple(_iter_decoded_headers(msg))

    from_list = _addresses(_raw_get(msg, "from"))
    from_name, from_addr = from_list[0] if from_list else ("", "")
    if not from_addr:
        sender = _addresses(_raw_get(msg, "sender"))
        if sender:
            from_name, from_addr = sender[0]
    message_ids = _msg_ids(_raw_get(msg, "message-id"))
    in_reply_to = _msg_ids(_raw_get(msg, "in-reply-to"))

    collector = _Collector(max_attachment_bytes, limits)
    try:
        collector.walk(msg, (), 0, "")
    except RecursionError:
        collector.problem(
            "forward-too-deep",
            FORWARD_LABEL,
            FORWARD_LABEL,
            "Cấu trúc thư lồng nhau quá sâu nên một số tệp không được đọc. Vui lòng đính kèm "
            "trực tiếp các tệp biểu mẫu vào thư.",
        )
    try:
        body = _body_or_raw(msg)
    except RecursionError:
        body = ""

    return ParsedMail(
        message_id=message_ids[0] if message_ids else None,
        from_addr=from_addr,
        from_name=from_name,
        to=tuple(a for _, a in _addresses(_raw_get(msg, "to"))),
        cc=tuple(a for _, a in _addresses(_raw_get(msg, "cc"))),
        reply_to=tuple(a for _, a in _addresses(_raw_get(msg, "reply-to"))),
        subject=decode_header_text(_raw_get(msg, "subject")),
        date=_date(_raw_get(msg, "date")),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_msg_ids(_raw_get(msg, "references")),
        body_text=body.strip()[:MAX_BODY_CHARS],
        attachments=tuple(collector.attachments),
        problems=tuple(collector.problems),
        headers=headers,
        content_type=_content_type(msg),
        raw=raw,
    )
