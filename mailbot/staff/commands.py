"""A staff member's mail carrying an action code, read and checked without any I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from mailbot.mail.auth import sender_authenticated
from mailbot.mail.message import ParsedMail
from mailbot.staff.access import StaffAccess
from mailbot.staff.tokens import Token, TokenError, find_token, token_digest, verify

Refused = Literal["not-staff", "unauthenticated", "no-key", "malformed", "forged", "expired"]
REFUSED: Final[tuple[Refused, ...]] = (
    "not-staff",
    "unauthenticated",
    "no-key",
    "malformed",
    "forged",
    "expired",
)
_MAX_UNIT_TEXT: Final = 200
# The first line of an "assign" mail without a unit: staff write the unit after it.
UNIT_LINE_LABEL: Final = "Đơn vị:"


@dataclass(frozen=True)
class StaffCommand:
    """What a mail with an action code asks, and whether the code and sender hold."""

    actor: str  # the From address, lower case
    digest: str  # SHA-256 of the code (the code itself is never stored or logged)
    token: Token | None  # None when refused
    refused: Refused | None = None
    # For "assign" without a unit in the code: the unit staff wrote on the first line.
    unit_text: str | None = None

    @property
    def answerable(self) -> bool:
        """Whether the sender gets an answer: a staff address (forged or not), never others."""
        return self.refused != "not-staff"


def _unit_line(body: str) -> str | None:
    """The first written line of the body, without the "Đơn vị:" label the link puts there."""
    for line in body.splitlines():
        text = line.strip()
        if not text:
            continue
        if text.casefold().startswith(UNIT_LINE_LABEL.casefold()):
            text = text[len(UNIT_LINE_LABEL) :].strip()
        return " ".join(text.split())[:_MAX_UNIT_TEXT] or None
    return None


def read_command(
    mail: ParsedMail,
    access: StaffAccess | None,
    received_at: datetime,
    trusted_authserv_id: str | None = None,
) -> StaffCommand | None:
    """The staff command this mail carries (None: no code in it, or no staff configured).

    The code must come from a staff address, vouched for by our trusted server when one is
    set, and verify with the key at the time the server received the mail.
    """
    if access is None:
        return None
    text = find_token(mail.subject or "", mail.body_text or "")
    if text is None:
        return None
    actor = (mail.from_addr or "").strip().lower()
    digest = token_digest(text)
    if not access.is_staff(actor):
        return StaffCommand(actor, digest, None, "not-staff")
    if trusted_authserv_id and not sender_authenticated(mail, trusted_authserv_id):
        return StaffCommand(actor, digest, None, "unauthenticated")
    if access.key is None:
        return StaffCommand(actor, digest, None, "no-key")
    try:
        token = verify(access.key, text, received_at)
    except TokenError as exc:
        return StaffCommand(actor, digest, None, exc.reason)
    unit_text = None
    if token.kind == "assign" and token.unit_code is None:
        unit_text = _unit_line(mail.body_text or "")
    return StaffCommand(actor, digest, token, None, unit_text)
