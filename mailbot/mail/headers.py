"""Header decoding: RFC 2047 encoded words, RFC 2231 parameters, charset fallbacks, addresses."""

from __future__ import annotations

import base64
import binascii
import codecs
import re
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import Message
from email.utils import getaddresses, parsedate_to_datetime
from functools import lru_cache
from pathlib import PurePosixPath
from urllib.parse import unquote_to_bytes

from mailbot.mail.filetypes import suffix
from mailbot.mail.tree import Part

__all__ = [
    "addresses",
    "content_type_of",
    "decode_bytes",
    "decode_header_text",
    "decode_words",
    "decoded_headers",
    "disposition",
    "header_date",
    "header_param",
    "msg_ids",
    "normalize_text",
    "part_filename",
    "raw_get",
    "raw_headers",
    "sanitize_filename",
    "unescape_surrogates",
]

MAX_FILENAME_CHARS = 150
_SINGLE_BYTE_CHARSETS = ("ascii", "latin_1", "cp125", "iso8859", "cp437", "cp850", "mac_roman")


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


_SURROGATE = re.compile("[\udc80-\udcff]")
# Unicode category Cc is exactly these code points (C0, DEL and C1).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def unescape_surrogates(text: str) -> str:
    """Headers holding raw 8-bit bytes come back from the parser as surrogate escapes."""
    if text.isascii() or _SURROGATE.search(text) is None:
        return text
    return decode_bytes(text.encode("utf-8", "surrogateescape"))


_FOLD = re.compile(r"\r?\n(?=[ \t])")  # a folded line's break (RFC 5322 2.2.3)
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
    return " ".join(_CONTROL.sub(" ", text).split())


def decode_header_text(value: str | None) -> str:
    """A header value as readable text: raw 8-bit bytes and RFC 2047 decoded, NFC, unfolded."""
    if value is None:
        return ""
    value = str(value)
    if value.isascii() and "=?" not in value:
        # Nothing to decode (most headers): unfolding and NFC change nothing either.
        return " ".join((value if value.isprintable() else _CONTROL.sub(" ", value)).split())
    value = unescape_surrogates(value)
    value = _FOLD.sub("", value)
    return normalize_text(decode_words(value))


# ---------------------------------------------------------------------------
# Header parameters (own parser: robust to raw bytes, RFC 2231 and RFC 2047 alike)


def _split_params(value: str) -> list[str]:
    if '"' not in value:  # nothing quoted: every ";" separates
        return value.split(";")
    if "\\" not in value:  # no escapes: quotes alternate, ";" separates outside them
        found: list[str] = []
        current = ""
        for index, segment in enumerate(value.split('"')):
            if index % 2:
                current += '"' + segment
                continue
            first, *rest = segment.split(";")
            current += ('"' if index else "") + first
            for piece in rest:
                found.append(current)
                current = piece
        found.append(current)
        return found
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
    # Each "%" and two hex digits is that byte; any other "%" stays as it is.
    return unquote_to_bytes(text.encode("utf-8", "surrogateescape"))


def header_param(raw_value: str | None, name: str) -> str | None:
    """One parameter of a structured header, RFC 2231 (continuations, charsets) understood."""
    if not raw_value:
        return None
    if "\n" in raw_value:
        raw_value = _FOLD.sub("", raw_value)
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
        if not key.startswith(name + "*"):
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


def raw_headers(part: Message) -> list[tuple[str, str]]:
    """Every (name, raw value) of a part, in order; [] when the headers cannot be read."""
    try:
        return [(str(k), str(v)) for k, v in part.raw_items()]
    except Exception:  # a malformed header object must not stop the mail
        return []


def raw_get(part: Message, name: str) -> str | None:
    """The first raw (undecoded) value of a header, or None."""
    key = name.lower()
    try:
        if isinstance(part, Part):
            return part.first_header(key)
        for k, v in part.raw_items():
            if k.lower() == key:
                return str(v)
    except Exception:  # a malformed header object must not stop the mail
        return None
    return None


_MIME_TYPE = re.compile(r"[a-z0-9!#$&^_.+-]+/[a-z0-9!#$&^_.+-]+")


def content_type_of(part: Message, default: str = "text/plain") -> str:
    """The part's lower-case MIME type, or `default` when absent or malformed."""
    raw = raw_get(part, "content-type")
    if raw:
        ctype = unescape_surrogates(raw).split(";", 1)[0].strip().lower()
        if _MIME_TYPE.fullmatch(ctype):
            return ctype
    return default


def disposition(part: Message) -> str:
    """The Content-Disposition token ("attachment", "inline"), or ""."""
    raw = raw_get(part, "content-disposition")
    if not raw:
        return ""
    return raw.split(";", 1)[0].strip().lower()


def part_filename(part: Message) -> str | None:
    """The part's file name; a lossy fallback ("M?u 01.xlsx", no extension) loses to the other."""
    first = header_param(raw_get(part, "content-disposition"), "filename")
    if first and not _lossy(first):
        return first  # the usual case: the other name could only lose to it
    second = header_param(raw_get(part, "content-type"), "name")
    if second and (not first or not _lossy(second)):
        return second
    return first or None


def _lossy(name: str) -> bool:
    return "\ufffd" in name or "?" in name or not suffix(name)


# ---------------------------------------------------------------------------
# File names


_UNSAFE_CHARS = re.compile(r'[<>:"|?*]')


def sanitize_filename(name: str | None, fallback: str = "tệp đính kèm") -> str:
    """A safe base name: NFC, no directories or "..", no control characters, bounded length."""
    text = unicodedata.normalize("NFC", name or "")
    if not text.isprintable():  # only then can it hold a control or format character
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


# ---------------------------------------------------------------------------
# Whole messages, addresses, ids and dates


def addresses(raw: str | None) -> list[tuple[str, str]]:
    """(display name, lowercased addr-spec) pairs; modern parser first, then the lenient one."""
    if not raw:
        return []
    return list(_addresses(raw))


# The same From and To headers come back mail after mail (a unit's sender, our own address),
# and the modern address parser costs a few hundred microseconds each time.
@lru_cache(maxsize=1024)
def _addresses(raw: str) -> tuple[tuple[str, str], ...]:
    text = unescape_surrogates(raw)
    text = _FOLD.sub("", text)
    out: list[tuple[str, str]] = []
    try:
        header = email_policy.default.header_factory("to", text)
        for addr in header.addresses:
            if addr.username and addr.domain:
                out.append((normalize_text(addr.display_name or ""), addr.addr_spec.lower()))
    except Exception:
        out = []
    if out:
        return tuple(out)
    for name, addr in getaddresses([text]):
        if "@" in addr:
            out.append((decode_header_text(name), addr.strip().lower()))
    return tuple(out)


_MSGID = re.compile(r"<[^<>\s]+>")


def msg_ids(raw: str | None) -> tuple[str, ...]:
    """The '<id>' tokens of a Message-ID/In-Reply-To/References header (bare ids bracketed)."""
    if not raw:
        return ()
    text = unescape_surrogates(raw)
    found = _MSGID.findall(text)
    if not found:
        found = [f"<{t}>" for t in text.split() if "@" in t and "<" not in t and ">" not in t]
    return tuple(found)


def header_date(raw: str | None) -> datetime | None:
    """A Date header as an aware datetime (UTC when the zone is missing), or None."""
    if not raw:
        return None
    try:
        value = parsedate_to_datetime(unescape_surrogates(raw).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def decoded_headers(msg: Message) -> Iterator[tuple[str, str]]:
    """Every header of a message as (name, readable text), top first."""
    for name, value in raw_headers(msg):
        yield name, decode_header_text(value)
