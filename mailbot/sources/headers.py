"""A listed mail's Message-ID, From and Subject, read the way the email package reads them.

Every listed mail needs these three headers before it is stored (a backlog of hundreds at
a time), and the email package's general parser and header classes cost a quarter of a
millisecond per mail. The usual header block (ASCII, well-formed lines, UTF-8 encoded
words) is read here directly, giving exactly what `email.parser` (compat32) followed by
`email.header.make_header` gives; anything else goes through the email package itself.
"""

from __future__ import annotations

import email.errors
import email.header
import email.parser
import email.policy
import re

# A header line the fast reader takes: a field name and its colon, or a folded continuation.
_FIELD = re.compile(r"[\041-\071\073-\176]+:")
# Lines as email.feedparser splits them: ending in CRLF, LF or CR, or the last one unended.
_LINES = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
_WANTED = ("message-id", "from", "subject")


def _nonctext(ch: str) -> bool:
    """email.header.Header._nonctext: whether a character separates words by itself."""
    return ch.isspace() or ch in ("(", ")", "\\")


def _joined(words: list[tuple[bytes | str, str | None]]) -> str | None:
    """str(make_header(words)) for words in US-ASCII or UTF-8 only (else None: not handled).

    Header.append decodes each word strictly, `_normalize` finds the charsets already
    alternating (decode_header merged equal neighbours), and `__str__` puts a space where
    an encoded word meets plain text without one.
    """
    out: list[str] = []
    last_ascii = True  # lastcs None at the start counts as US-ASCII
    last_space = False
    for word, charset in words:
        if charset is None:
            text = word.decode("ascii") if isinstance(word, bytes) else word
            if not text.isascii():
                return None
            plain = True
        elif charset == "utf-8":
            text = word.decode("utf-8") if isinstance(word, bytes) else word
            plain = False
        else:
            return None
        if out:
            has_space = bool(text) and _nonctext(text[0])
            if not last_ascii:
                if plain and not has_space:
                    out.append(" ")
            elif not plain and not last_space:
                out.append(" ")
        last_space = bool(text) and _nonctext(text[-1])
        last_ascii = plain
        out.append(text)
    return "".join(out)


def decode_header(value: str | None) -> str | None:
    """An RFC 2047 header as text; never raises on broken encodings."""
    if value is None:
        return None
    # (compat32 gives a Header, not a str, for a header with 8-bit bytes.)
    plain = isinstance(value, str)
    if plain and "=?" not in value and value.isascii():
        text = value  # decode_header gives it back whole, make_header as it is
    else:
        try:
            words = email.header.decode_header(value)
            joined = _joined(words) if plain else None
            text = str(email.header.make_header(words)) if joined is None else joined
        except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
            text = value
    return " ".join(text.split())


def _fields(block: bytes) -> dict[str, str] | None:
    """The first Message-ID, From and Subject of a plain header block, valued as compat32
    gives them; None when the block holds anything the fast reading does not take."""
    if not block.isascii():
        return None
    found: dict[str, str] = {}
    name = ""
    lines: list[str] = []

    def keep() -> None:
        key = name.lower()
        if key in _WANTED and key not in found:
            # compat32 header_source_parse: the first line's value left-stripped, the
            # folded lines as they are, the final line end removed.
            first = lines[0].split(":", 1)[1]
            found[key] = (first.lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n")

    for line in _LINES.findall(block.decode("ascii")):
        if line[0] in "\r\n":
            break  # the blank line ending the headers
        if line[0] in " \t":
            if not name:
                return None  # a continuation first: the parser's defect handling
            lines.append(line)
            continue
        if line.startswith("From ") or not _FIELD.match(line):
            return None  # an envelope line or a body line without separator
        if name:
            keep()
        name, lines = line[: line.index(":")], [line]
    if name:
        keep()
    return found


def parse_headers(block: bytes) -> tuple[str | None, str | None, str | None]:
    """(Message-ID, From, Subject) from a raw header block."""
    found = _fields(block)
    if found is None:
        msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
        raw = {key: msg.get(key) for key in _WANTED}
        found = {k: v for k, v in raw.items() if v is not None}
    mid = found.get("message-id")
    if mid is not None:
        mid = " ".join(str(mid).split()) or None
    return mid, decode_header(found.get("from")), decode_header(found.get("subject"))
