"""Where each unit stands in a campaign, computed from the submissions in the database."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot import glossary
from mailbot.glossary import UNIT_STATE_LABELS
from mailbot.mail.views import RowKey, problem_place, row_key
from rules.base import FORM_NAMES
from rules.campaign import Campaign

# Why a mail was held back (mails.quarantine_reason), as staff read it.
QUARANTINE_REASONS: Final = {
    "unknown-unit": "không xác định được đơn vị gửi",
    "dmarc-fail": "không qua kiểm tra xác thực người gửi (DMARC)",
    "processing-failed": "lỗi khi xử lý thư",
}

# The unit states of the contract, in the order they are checked (first match wins):
#   complete               every required form has a valid, confirmed latest version
#   awaiting-confirmation  some required form lacks a counting version but did arrive, from an
#                          address staff have not confirmed yet (a person must act first; the
#                          confirmation may well complete the unit)
#   errors                 some required form lacks a counting version and its newest confirmed
#                          version has errors (the unit must send a corrected file)
#   partial                at least one required form counts, another was never sent
#   missing                no required form counts and none arrived at all
STATES: Final = ("complete", "awaiting-confirmation", "errors", "partial", "missing")
STATE_LABELS: Final = UNIT_STATE_LABELS

# Per form: what its versions amount to (same order of precedence as the unit states).
FORM_OK: Final = "ok"
FORM_UNCONFIRMED: Final = "unconfirmed"
FORM_ERRORS: Final = "errors"
FORM_NONE: Final = "none"


@dataclass(frozen=True)
class FormState:
    """One required form of one unit: the version shown and whether the form counts."""

    form: str
    status: str  # ok / unconfirmed / errors / none
    submission_id: int | None = None
    mail_id: int | None = None
    received_at: datetime | None = None
    late: bool = False
    entries: int = 0
    errors: int = 0
    warnings: int = 0
    declared_empty: bool = False
    awaiting_confirmation: bool = False
    sender: str | None = None
    file_name: str | None = None
    problems: tuple[str, ...] = ()  # messages of the errors still open (or notes for staff)

    @property
    def counts(self) -> bool:
        return self.status == FORM_OK

    @property
    def received(self) -> bool:
        return self.submission_id is not None

    def to_contract(self) -> dict[str, Any] | None:
        """The contract's per-form object, or None when nothing arrived."""
        if not self.received or self.received_at is None:
            return None
        return {
            "received_at": self.received_at.isoformat(),
            "late": self.late,
            "entries": self.entries,
            "errors": self.errors,
        }


@dataclass(frozen=True)
class UnitState:
    """One unit of the register and where it stands."""

    code: str
    name: str
    state: str
    forms: dict[str, FormState] = field(default_factory=dict)
    emails: tuple[str, ...] = ()
    # The forms this unit must send (its register entry, else the campaign's required ones).
    owed: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return self.state == "complete"

    def forms_with(self, status: str) -> tuple[str, ...]:
        """Codes of the forms in one per-form status (ok, unconfirmed, errors, none)."""
        return tuple(code for code, f in self.forms.items() if f.status == status)

    def owes(self, code: str) -> bool:
        """Whether the unit must send this form (every form when `owed` is not known)."""
        return not self.owed or code in self.owed

    @property
    def missing_forms(self) -> tuple[str, ...]:
        """Forms the unit owes and never sent in any version."""
        return tuple(c for c in self.forms_with(FORM_NONE) if self.owes(c))

    @property
    def open_problems(self) -> tuple[str, ...]:
        """The error messages of forms that do not count yet, each naming its form."""
        out: list[str] = []
        for code in self.forms_with(FORM_ERRORS):
            if not self.owes(code):
                continue
            name = FORM_NAMES.get(code, code)
            out.extend(f"{name}: {p}" for p in self.forms[code].problems)
        return tuple(out)

    @property
    def label(self) -> str:
        return STATE_LABELS.get(self.state, self.state)


def _error_messages(result: dict[str, Any]) -> tuple[str, ...]:
    """The form's errors, each with its place in the unit's terms ('Mục I. Tập thể, dòng TT 2
    (ô B12): …'), as the receipt said them."""
    rows: dict[RowKey, tuple[str, str | None]] = {}
    for entry in result.get("entries", ()):
        key = row_key(entry.get("location"))
        if key is not None:
            rows.setdefault(key, (str(entry.get("kind")), entry.get("no")))
    out = []
    for p in result.get("problems", ()):
        if p.get("severity") != "error":
            continue
        message = str(p.get("message") or p.get("code"))
        place = problem_place(p.get("location"), rows, str(p.get("code") or ""))
        out.append(f"{place}: {message}" if place else message)
    return tuple(out)


def _result(sub: dbm.Submission) -> dict[str, Any]:
    try:
        return sub.result
    except (ValueError, TypeError):
        return {}


def _form_state(
    code: str, versions: list[tuple[dbm.Submission, str | None]], tz: tzinfo
) -> FormState:
    """Decide one form from its versions (newest first) with their sender addresses."""
    if not versions:
        return FormState(form=code, status=FORM_NONE)
    counting = next(
        ((s, a) for s, a in versions if s.status == "valid" and not s.awaiting_confirmation),
        None,
    )
    newest, newest_addr = versions[0]
    if counting is not None:
        shown, addr = counting
        notes: tuple[str, ...] = ()
        if shown is not newest:
            when = newest.received_at.astimezone(tz)
            notes = (
                f"Bản gửi sau (lúc {when:%H:%M %d/%m/%Y}) chưa được tính"
                + (" vì có lỗi" if newest.errors_count else " vì chờ xác nhận người gửi")
                + "; bản hợp lệ trước đó vẫn được tính.",
            )
        status = FORM_OK
    else:
        shown, addr = newest, newest_addr
        unconfirmed = [(s, a) for s, a in versions if s.awaiting_confirmation]
        if unconfirmed:
            shown, addr = unconfirmed[0]
            status = FORM_UNCONFIRMED
            notes = (f"Nhận từ địa chỉ chưa xác nhận {addr or '(không rõ)'}.",)
        else:
            status = FORM_ERRORS
            notes = _error_messages(_result(shown)) or (f"{shown.errors_count} lỗi",)
        if status == FORM_UNCONFIRMED and shown.errors_count:
            notes = notes + _error_messages(_result(shown))
    result = _result(shown)
    return FormState(
        form=code,
        status=status,
        submission_id=shown.id,
        mail_id=shown.mail_id,
        received_at=shown.received_at,
        late=bool(shown.late),
        entries=shown.entries_count,
        errors=shown.errors_count,
        warnings=shown.warnings_count,
        declared_empty=bool(result.get("declared_empty"))
        or (shown.status in ("valid", "superseded") and shown.entries_count == 0),
        awaiting_confirmation=bool(shown.awaiting_confirmation),
        sender=addr,
        file_name=shown.file_name,
        problems=notes,
    )


def unit_state_of(forms: dict[str, FormState], required: tuple[str, ...]) -> str:
    """The unit's state from its forms' statuses, by the precedence documented in STATES."""
    statuses = [forms[c].status for c in required if c in forms]
    if all(s == FORM_OK for s in statuses):
        return "complete"
    if FORM_UNCONFIRMED in statuses:
        return "awaiting-confirmation"
    if FORM_ERRORS in statuses:
        return "errors"
    if FORM_OK in statuses:
        return "partial"
    return "missing"


def unit_states(
    session: Session, campaign: Campaign, now: datetime | None = None
) -> list[UnitState]:
    """Every unit of the register (by code) with its state; only forms received by `now` count."""
    versions: dict[tuple[str, str], list[tuple[dbm.Submission, str | None]]] = defaultdict(list)
    for sub, addr in dbm.submission_versions(session, now):
        versions[(sub.unit_code, sub.form)].append((sub, addr))
    codes = [f.code for f in campaign.forms] or list(dbm.FORM_TYPES)
    out: list[UnitState] = []
    for unit in dbm.unit_register(session):
        required = campaign.forms_owed(unit.forms) or tuple(codes)
        forms = {
            code: _form_state(code, versions.get((unit.code, code), []), campaign.tz)
            for code in codes
        }
        out.append(
            UnitState(
                code=unit.code,
                name=unit.name,
                state=unit_state_of(forms, required),
                forms=forms,
                emails=tuple(unit.emails),
                owed=required,
            )
        )
    return out


def count_states(states: list[UnitState]) -> dict[str, int]:
    """How many units are in each state (every state present)."""
    counts = dict.fromkeys(STATES, 0)
    for s in states:
        counts[s.state] = counts.get(s.state, 0) + 1
    return counts


def status_json(campaign: Campaign, states: list[UnitState]) -> dict[str, Any]:
    """The `mailbot status --json` object of the contract."""
    tz = campaign.tz

    def form_obj(f: FormState) -> dict[str, Any] | None:
        obj = f.to_contract()
        if obj is not None and f.received_at is not None:
            obj["received_at"] = f.received_at.astimezone(tz).isoformat()
        return obj

    return {
        "campaign": campaign.id,
        "deadline": campaign.deadline.isoformat(),
        "units": [
            {
                "code": s.code,
                "name": s.name,
                "state": s.state,
                "forms": {code: form_obj(f) for code, f in s.forms.items()},
            }
            for s in states
        ],
    }


def json_dumps(data: Any) -> str:
    """JSON for people and scripts: UTF-8 text, not \\u escapes."""
    return json.dumps(data, ensure_ascii=False, indent=2)


# --------------------------------------------------------------------------- one unit's versions

# A version's state (VersionRow.state) in the glossary's words.
VERSION_LABELS: Final = {
    "counting": glossary.VERSION_LABELS["counting"],
    "superseded": glossary.VERSION_LABELS["superseded"],
    "awaiting": glossary.VERSION_LABELS["awaiting-confirmation"],
    "invalid": glossary.VERSION_LABELS["invalid"],
    "valid": glossary.VERSION_LABELS["not-latest"],
}


@dataclass(frozen=True)
class VersionRow:
    """One recorded version of a unit's form, as `mailbot status --unit` shows it."""

    submission_id: int
    mail_id: int
    form: str
    received_at: datetime
    sender_address: str | None
    sender_unit: str | None  # name of the registered unit that sent it
    entries: int
    errors: int
    state: str  # a key of VERSION_LABELS
    late: bool
    file_name: str

    @property
    def label(self) -> str:
        return VERSION_LABELS.get(self.state, self.state)


def unit_history(session: Session, code: str) -> list[VersionRow]:
    """Every version recorded for one unit, per form oldest first, with what became of it."""
    names = {u.code: u.name for u in dbm.unit_register(session)}
    rows = dbm.unit_versions(session, code)
    counting = {
        form: sub.id
        for form in {s.form for s, _ in rows}
        if (sub := dbm.latest_valid_submission(session, code, form)) is not None
    }
    out: list[VersionRow] = []
    for sub, addr in rows:
        if sub.awaiting_confirmation:
            state = "awaiting"
        elif sub.status == "invalid":
            state = "invalid"
        elif counting.get(sub.form) == sub.id:
            state = "counting"
        else:
            state = sub.status
        out.append(
            VersionRow(
                submission_id=sub.id,
                mail_id=sub.mail_id,
                form=sub.form,
                received_at=sub.received_at,
                sender_address=addr,
                sender_unit=names.get(sub.sent_by or "") if sub.sent_by else None,
                entries=sub.entries_count,
                errors=sub.errors_count,
                state=state,
                late=bool(sub.late),
                file_name=sub.file_name,
            )
        )
    return out
