"""What every mail source shares: the Source protocol, IncomingRef, errors, header peeking."""

from __future__ import annotations

import email.parser
import email.policy
import email.utils
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

# Largest header block read for an oversize mail (enough for From/Subject and loop headers).
HEADER_PEEK_BYTES = 64 * 1024


class SourceError(Exception):
    """The mailbox could not be reached or refused a command; try again later."""


class StaleUidValidity(SourceError):
    """The folder's UIDVALIDITY changed, so an old UID may now name another message."""


@dataclass(frozen=True)
class IncomingRef:
    """One mail waiting in a source: enough to decide whether and how to download it."""

    key: str  # the source's handle: the UID as text (IMAP) or the Maildir key
    uid: int | None  # IMAP UID, None for Maildir
    uidvalidity: int | None
    size: int
    message_id: str | None = None
    from_header: str | None = None
    subject: str | None = None
    oversize: bool = False
    # The raw header block, only filled for oversize mails (for the reply to the sender).
    headers: bytes = b""
    # Message-ID, or for a Maildir mail without one "sha256:<hex of the file>".
    identity: str = ""
    # When the mail server received the mail (IMAP INTERNALDATE, a Maildir's delivery time);
    # None when the source cannot tell (the robot then uses the time it read the mail).
    arrived_at: datetime | None = None


@dataclass(frozen=True)
class Baseline:
    """Where a mailbox stands the first time the robot meets it.

    Mail up to `last_uid` (IMAP) or with a key in `known_keys` (Maildir) is old and left
    alone, except `catch_up`: the old mail that arrived since `[inbox] process_since`.
    """

    uidvalidity: int | None
    last_uid: int | None
    known_keys: tuple[str, ...] = ()
    catch_up: tuple[IncomingRef, ...] = ()


KnownFn = Callable[[IncomingRef], bool]
# A decided mail to move: the source's handle (IncomingRef.key) and the UIDVALIDITY stored
# with it (None for a Maildir), which guards against moving another mail after renumbering.
DoneRef = tuple[str, int | None]


@runtime_checkable
class Source(Protocol):
    """A mailbox the robot reads from."""

    source_key: str

    def uidvalidity(self) -> int | None: ...

    def new_messages(
        self, last_uid: int | None = None, known: KnownFn | None = None
    ) -> Iterator[IncomingRef]: ...

    def fetch(self, refs: Iterable[IncomingRef]) -> Iterator[tuple[IncomingRef, bytes]]: ...

    def mark_done_many(self, refs: Sequence[DoneRef]) -> dict[DoneRef, SourceError]: ...

    def baseline(self, since: datetime | None) -> Baseline: ...

    def wait(self, timeout: float, stop: threading.Event | None = None) -> bool: ...

    def close(self) -> None: ...


def received_date(block: bytes) -> datetime | None:
    """The date of the topmost `Received:` header (added last, by our own server), in UTC."""
    msg = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(block)
    value = msg.get("Received")
    if value is None:
        return None
    # RFC 5321 4.4: "... ; date-time" -- the date follows the last semicolon.
    stamp = " ".join(str(value).rsplit(";", 1)[-1].split())
    try:
        when = email.utils.parsedate_to_datetime(stamp)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None  # "-0000": the zone is unknown, better the file's time than a guess
    return when.astimezone(UTC)


def header_block(raw: bytes) -> bytes:
    """The header part of a raw message (up to the first blank line)."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        pos = raw.find(sep)
        if pos >= 0:
            return raw[: pos + len(sep)]
    return raw


def sleep_until(deadline: float, stop: threading.Event | None) -> None:
    """Sleep until the monotonic `deadline`, or less when `stop` is set meanwhile."""
    left = deadline - time.monotonic()
    if left <= 0:
        return
    if stop is not None:
        stop.wait(left)
    else:
        time.sleep(left)
