"""Signed staff command tokens: HMAC-SHA256 over the action, mail, unit and expiry (pure)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

Kind = Literal["confirm", "assign", "reject", "handled", "reprocess"]
KINDS: Final[tuple[Kind, ...]] = ("confirm", "assign", "reject", "handled", "reprocess")
VERSION: Final = 1
PREFIX: Final = "MBT-"
# 80 bits of MAC: an online forger gets one guess per mail, each answered and logged.
MAC_BYTES: Final = 10
MAX_UNIT_BYTES: Final = 64
# The shortest key accepted: 32 random bytes (`head -c 32 /dev/urandom`).
MIN_KEY_BYTES: Final = 32
_HEAD = struct.Struct(">BBIq")  # version, kind index, mail id, expiry (unix seconds)
_FIND = re.compile(r"(?i)\bMBT-([A-Z2-7]{20,200})\b")

Refusal = Literal["malformed", "forged", "expired"]


class TokenError(Exception):
    """A token that must not be acted on; `reason` says why (malformed, forged, expired)."""

    def __init__(self, reason: Refusal) -> None:
        super().__init__(reason)
        self.reason: Refusal = reason


@dataclass(frozen=True)
class Token:
    """What a verified token allows: one action on one mail (and unit) until `expires`."""

    kind: Kind
    mail_id: int
    unit_code: str | None
    expires: datetime


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode("ascii").rstrip("=")


def _unb32(text: str) -> bytes:
    text = text.upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def _payload(kind: Kind, mail_id: int, unit_code: str | None, expires: datetime) -> bytes:
    unit = (unit_code or "").encode("utf-8")
    if len(unit) > MAX_UNIT_BYTES:
        raise ValueError(f"unit code too long for a token: {unit_code!r}")
    if not 0 < mail_id < 2**32:
        raise ValueError(f"mail id out of range: {mail_id}")
    head = _HEAD.pack(VERSION, KINDS.index(kind), mail_id, int(expires.timestamp()))
    return head + bytes([len(unit)]) + unit


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()[:MAC_BYTES]


def sign(key: bytes, kind: Kind, mail_id: int, unit_code: str | None, expires: datetime) -> str:
    """The token text, `MBT-` and base32 (case-insensitive, about 50 characters)."""
    if len(key) < MIN_KEY_BYTES:
        raise ValueError("staff token key too short")
    payload = _payload(kind, mail_id, unit_code, expires)
    return PREFIX + _b32(payload + _mac(key, payload))


def verify(key: bytes, text: str, now: datetime) -> Token:
    """The token's content when its MAC is right and it has not expired at `now`.

    `now` is when the mail server received the command, not when the robot read it.
    Raises TokenError otherwise.
    """
    body = text[len(PREFIX) :] if text.upper().startswith(PREFIX) else text
    try:
        data = _unb32(body)
    except (ValueError, TypeError) as exc:
        raise TokenError("malformed") from exc
    if len(data) < _HEAD.size + 1 + MAC_BYTES:
        raise TokenError("malformed")
    payload, mac = data[:-MAC_BYTES], data[-MAC_BYTES:]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        raise TokenError("forged")
    version, kind_index, mail_id, expiry = _HEAD.unpack_from(payload)
    size = payload[_HEAD.size]
    unit = payload[_HEAD.size + 1 :]
    if version != VERSION or kind_index >= len(KINDS) or len(unit) != size:
        raise TokenError("malformed")
    expires = datetime.fromtimestamp(expiry, UTC)
    if now >= expires:
        raise TokenError("expired")
    return Token(KINDS[kind_index], mail_id, unit.decode("utf-8") or None, expires)


def find_token(*texts: str) -> str | None:
    """The first token written in these texts (a subject, a body), as `MBT-…` upper case."""
    for text in texts:
        match = _FIND.search(text or "")
        if match:
            return PREFIX + match.group(1).upper()
    return None


def token_digest(text: str) -> str:
    """What is recorded of a used token (never the token itself): its SHA-256, hex."""
    return hashlib.sha256(text.upper().encode("ascii", "replace")).hexdigest()
