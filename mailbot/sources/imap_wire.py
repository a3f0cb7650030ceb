"""IMAP wire helpers: replies, FETCH responses, UID sets, INTERNALDATE, folder names."""

from __future__ import annotations

import imaplib
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from imap_tools.utils import encode_folder

from mailbot.sources.base import IncomingRef, SourceError


def mailbox_name(folder: str) -> str:
    """A folder name as an IMAP argument: modified UTF-7, quoted (ASCII, as imaplib wants)."""
    return encode_folder(folder).decode("ascii")


def ok(reply: tuple[str, list[Any]], command: str) -> list[Any]:
    """The data of a tagged OK reply; SourceError naming the command and the server's words."""
    typ, data = reply
    if typ == "OK":
        return data
    said = " ".join(
        d.decode("utf-8", "replace") if isinstance(d, bytes) else str(d) for d in data if d
    )
    raise SourceError(f"IMAP {command} failed: {typ} {said}".rstrip())


FETCH_UID = re.compile(rb"UID (\d+)")
FETCH_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")
FETCH_INTERNALDATE = re.compile(rb'INTERNALDATE "([^"]+)"')
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}


def parse_internaldate(meta: bytes) -> datetime | None:
    """The INTERNALDATE of a FETCH response ("19-Feb-2026 23:50:00 +0700") in UTC."""
    m = FETCH_INTERNALDATE.search(meta)
    if m is None:
        return None
    try:
        day, mon, rest = m.group(1).decode("ascii").strip().split("-", 2)
        year, clock, zone = rest.split()
        hh, mm, ss = (int(x) for x in clock.split(":"))
        sign = -1 if zone[0] == "-" else 1
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[3:5])) * sign
        when = datetime(int(year), _MONTHS[mon.title()], int(day), hh, mm, ss, tzinfo=UTC)
        return when - offset
    except (KeyError, ValueError, IndexError, UnicodeDecodeError):
        return None


def fetch_items(data: list[Any]) -> Iterator[tuple[bytes, bytes | None]]:
    """(metadata, literal) per FETCH response from imaplib's data list.

    imaplib splits a response around its literal: (b'1 (UID 5 BODY[] {n}', literal), then the
    rest as bytes, e.g. b' UID 5 RFC822.SIZE 9)' on servers that put UID after the body.
    That rest belongs to the response before it; a bytes item starting with a digit is a
    response of its own (e.g. an unsolicited FLAGS update).
    """
    meta: bytes | None = None
    literal: bytes | None = None
    for item in data:
        if isinstance(item, tuple):
            if meta is not None:
                yield meta, literal
            meta, literal = item[0], item[1]
        elif isinstance(item, bytes):
            if item[:1].isdigit():
                if meta is not None:
                    yield meta, literal
                meta, literal = item, None
            elif meta is not None:
                meta += b" " + item
    if meta is not None:
        yield meta, literal


def literals_by_uid(data: list[Any]) -> dict[int, bytes]:
    """UID -> literal of each FETCH response that carries both."""
    out: dict[int, bytes] = {}
    for meta, literal in fetch_items(data):
        m_uid = FETCH_UID.search(meta)
        if m_uid and literal is not None:
            out[int(m_uid.group(1))] = literal
    return out


def set_size(uid_set: bytes) -> int:
    """How many UIDs a sequence set such as b"1:3,7" names."""
    total = 0
    for run in uid_set.split(b","):
        low, _, high = run.partition(b":")
        total += abs(int(high) - int(low)) + 1 if high else 1
    return total


def as_source_error(exc: Exception) -> SourceError:
    """An imaplib error (a BAD reply) as the SourceError the callers expect."""
    return exc if isinstance(exc, SourceError) else SourceError(f"IMAP command failed: {exc}")


def uid_set_text(uids: Iterable[int]) -> str:
    """A compact IMAP sequence set: 1:3,7,9:10."""
    runs: list[str] = []
    start = prev = -1
    for uid in sorted(set(uids)):
        if uid == prev + 1 and start >= 0:
            prev = uid
            continue
        if start >= 0:
            runs.append(f"{start}:{prev}" if start != prev else str(start))
        start = prev = uid
    if start >= 0:
        runs.append(f"{start}:{prev}" if start != prev else str(start))
    return ",".join(runs)


def size_batches(
    refs: list[IncomingRef], count: int, max_bytes: int
) -> Iterator[list[IncomingRef]]:
    """Runs of at most `count` refs and (unless one alone is larger) `max_bytes` bytes."""
    chunk: list[IncomingRef] = []
    total = 0
    for ref in refs:
        if chunk and (len(chunk) >= count or total + ref.size > max_bytes):
            yield chunk
            chunk, total = [], 0
        chunk.append(ref)
        total += ref.size
    if chunk:
        yield chunk


def untagged_int(client: imaplib.IMAP4, name: str) -> int | None:
    """The last number the server sent as an untagged `name` response (UIDVALIDITY...)."""
    values = client.untagged_responses.get(name) or []
    for v in reversed(values):
        if isinstance(v, bytes) and v.strip().isdigit():
            return int(v)
    return None
