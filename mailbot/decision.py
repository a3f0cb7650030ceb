"""What the pure intake gets and gives: its context, outcome and answer, free of the parsing
stack (the daemon builds and records them; only the workers import mailbot.intake)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mailbot.contact import Contact
    from mailbot.mail.bounce import Bounce
    from mailbot.mail.message import ParsedMail
    from mailbot.staff.access import StaffAccess
    from mailbot.staff.commands import StaffCommand
    from mailbot.units import Register, Unit
    from parsers.convert import OfficeConverter
    from parsers.model import Form, ParseResult
    from rules.campaign import Campaign

Action = Literal["accepted", "quarantined", "ignored", "bounce", "command"]


Attribution = Literal["own", "under", "other", "no-name", "unknown-name", "unconfirmed-sender"]


@dataclass(frozen=True)
class PriorVersion:
    """The accepted (valid, confirmed) version of one unit's form already on file."""

    received_at: datetime
    models: tuple[str, ...]  # "name – model" per entry, in form order


@dataclass(frozen=True)
class Tools:
    """The external converters the decision may use; the default is "nothing available".

    `office` converts .doc/.odt/.ods to OOXML (LibreOffice); `rar` says whether a RAR
    extraction tool is installed. The shell probes the machine (workers.local_tools).
    """

    office: OfficeConverter | None = None
    rar: bool = False


@dataclass(frozen=True)
class IntakeContext:
    """Everything the decision needs besides the mail, gathered by the shell beforehand."""

    campaign: Campaign
    register: Register
    # When the mail server received the mail (not when the robot read it): lateness and the
    # time in the answer follow it.
    received_at: datetime
    from_address: str
    from_name: str
    message_id_domain: str
    # Whom units call and the letter asking for the forms (mailbot.contact.contact_of).
    contact: Contact
    own_addresses: tuple[str, ...] = ()
    trusted_authserv_id: str | None = None
    max_attachment_bytes: int = 20 * 1024 * 1024
    # Forms each unit already has a valid latest version of (unit code -> {"M1", ...}).
    forms_on_file: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Forms received earlier that do not count (unit code -> {"M2": "errors" | "awaiting"}).
    forms_not_counted: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    # The version that counts now for each (unit code, form), to say what a new one replaces.
    versions_on_file: Mapping[tuple[str, str], PriorVersion] = field(default_factory=dict)
    # Set when staff assigned this mail to a unit: their word replaces the sender checks.
    assigned_unit: str | None = None
    tools: Tools = field(default_factory=Tools)
    # Who may act by mail with a signed code (mailbot.staff); None: nobody.
    staff: StaffAccess | None = None


@dataclass(frozen=True)
class Submission:
    """One form found in the mail, ready to be stored against the unit it is recorded for."""

    unit_code: str
    form: Form
    file_name: str
    valid: bool
    late: bool
    sent_by: str | None = None  # the registered unit whose address sent it
    attribution: Attribution = "own"
    awaiting: bool = False  # counts only once staff confirm it; never replaces on its own
    previous: PriorVersion | None = None  # what was on file for this unit and form

    @property
    def replaces(self) -> PriorVersion | None:
        """The version this one replaces (it is valid and counts at once), else None."""
        return self.previous if self.valid and not self.awaiting else None


@dataclass(frozen=True)
class Reply:
    """An automatic answer, already rendered and composed, waiting for the outbox."""

    kind: Literal["receipt", "notice"]
    message_id: str
    to: str
    subject: str
    raw: bytes


@dataclass(frozen=True)
class Outcome:
    """What to record and whom to answer for one incoming mail."""

    action: Action
    reason: str | None
    mail: ParsedMail
    unit: Unit | None = None
    awaiting_confirmation: bool = False
    late: bool = False
    results: tuple[ParseResult, ...] = ()
    submissions: tuple[Submission, ...] = ()
    reply: Reply | None = None
    bounce: Bounce | None = None
    # Not from a unit and no form in it (a stranger, a newsletter, an invoice): nobody is
    # answered, staff see it in the digest as "Thư khác".
    other_mail: bool = False
    # A unit's mail that carries no form (a question, a cover letter): listed for staff to
    # read until they mark it handled, with the first lines of its text.
    for_staff: bool = False
    excerpt: str | None = None
    # A mail carrying a staff action code: carried out (or refused) by the shell.
    command: StaffCommand | None = None

    @property
    def needs_confirmation(self) -> bool:
        """Staff must confirm something: an unknown sender, or a form sent for another unit."""
        return self.awaiting_confirmation or any(s.awaiting for s in self.submissions)


def model_label(name: str | None, model: str) -> str:
    """One registered model as receipts and the digest name it: "who – what"."""
    return f"{name} – {model}" if name else model
