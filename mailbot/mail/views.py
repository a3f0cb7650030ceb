"""Plain data the outgoing-mail templates take (receipt, notice, reminder, digest) and builders."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from types import MappingProxyType
from typing import Final

from mailbot.contact import Contact
from mailbot.glossary import (
    FORM_OUTCOME_LABELS,
    GREETING_UNKNOWN,
    RECEIPT_OUTCOME_LABELS,
)
from outbox_templates.labels import (
    FIELD_LABELS,
    FORM_NUMBERS,
    KIND_LABELS,
    KIND_SECTIONS,
    SEVERITY_LABELS,
    form_title,
)
from parsers.model import FIELDS, Entry, Form, ParseResult, Problem
from rules.campaign import FormSpec

DEFAULT_OFFICE: Final = "Ban Dân vận Quận ủy Thanh Xuân"
DEFAULT_FORMATS: Final = ("xlsx", "docx", "xls", "doc")


# Codes for which no receipt is sent but a short notice: what happened and what to do.
NOTICE_REASONS: Final = (
    "quarantined-unknown-unit",
    "dmarc-fail",
    "oversize",
    "no-attachment",
    "processing-failed",
)

# File-level problems that mean "we got a form-less file, but we did read it".
_READABLE_NO_FORM_CODES: Final = frozenset({"no-form-found", "empty-form"})
# Notes on a file beside a form (a signed scan, a photo, a second copy): said once, not listed.
NOTE_CODES: Final = frozenset({"extra-document", "duplicate-copy"})


# --------------------------------------------------------------------------- locations

_CELL_RE = re.compile(r"^\$?([A-Za-z]{1,3})\$?(\d+)$")
_RANGE_RE = re.compile(r"^\$?[A-Za-z]{1,3}\$?\d+:\$?[A-Za-z]{1,3}\$?\d+$")
_DOC_PART_RE = re.compile(r"^(table|row|column|col|paragraph)\s+(\d+)$", re.IGNORECASE)
_DOC_WORDS: Final = MappingProxyType(
    {"table": "bảng", "row": "dòng", "column": "cột", "col": "cột", "paragraph": "đoạn"}
)


def _sheet_name(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        raw = raw[1:-1].replace("''", "'")
    return raw


def human_location(location: str | None) -> str:
    """The contract's machine location in Vietnamese: 'Sheet1!D9' -> 'ô D9 (trang tính Sheet1)'.

    'table 1, row 9, column 4' -> 'bảng 1, dòng 9, cột 4'; a bare sheet name -> 'trang tính X';
    None or blank -> '' (the whole file). Anything else is returned unchanged.
    """
    if location is None:
        return ""
    loc = " ".join(str(location).split())
    if not loc:
        return ""
    parts = [p.strip() for p in loc.split(",")]
    matches = [_DOC_PART_RE.match(p) for p in parts]
    if all(matches):
        return ", ".join(
            f"{_DOC_WORDS[m.group(1).lower()]} {m.group(2)}" for m in matches if m is not None
        )
    sheet, bang, ref = loc.rpartition("!")
    if bang and sheet:
        where = f"trang tính {_sheet_name(sheet)}"
        ref = ref.strip()
        if _CELL_RE.match(ref):
            return f"ô {ref.replace('$', '').upper()} ({where})"
        if _RANGE_RE.match(ref):
            return f"vùng {ref.replace('$', '').upper()} ({where})"
        if ref.isdigit():
            return f"dòng {ref} ({where})"
        return f"{ref} ({where})" if ref else where
    # Every location the parsers give names its sheet ("Sheet1!D9"), so a bare word is a
    # sheet title, even one that looks like a cell ("M1").
    if "/" in loc or "\\" in loc:
        return loc
    return f"trang tính {_sheet_name(loc)}"


# A table row of a form: (sheet or table, row number) -> (kind, TT) of the model row there.
RowKey = tuple[str, int]
_SHEET_ROW_RE = re.compile(r"^(?P<sheet>.+)!\$?[A-Za-z]{1,3}\$?(?P<row>\d+)$")
_TABLE_ROW_RE = re.compile(r"^table (?P<table>\d+), row (?P<row>\d+)(?:,|$)", re.IGNORECASE)


def row_key(location: str | None) -> RowKey | None:
    """'Sheet1!B12' -> ('Sheet1', 12); 'table 2, row 5, column 4' -> ('table 2', 5)."""
    loc = " ".join(str(location or "").split())
    if m := _TABLE_ROW_RE.match(loc):
        return f"table {m.group('table')}", int(m.group("row"))
    if m := _SHEET_ROW_RE.match(loc):
        return _sheet_name(m.group("sheet")), int(m.group("row"))
    return None


def _where_in_file(location: str) -> str:
    """The short place beside a row: 'ô B12' in a workbook, 'bảng 2' in a document."""
    loc = " ".join(location.split())
    if m := _TABLE_ROW_RE.match(loc):
        return f"bảng {m.group('table')}"
    ref = loc.rpartition("!")[2].replace("$", "").upper()
    return f"ô {ref}" if _CELL_RE.match(ref) else human_location(loc)


def problem_place(
    location: str | None, rows: Mapping[RowKey, tuple[str, str | None]], code: str = ""
) -> str:
    """Where a problem is, in the unit's terms.

    On a model row: 'Mục I. Tập thể, dòng TT 2 (ô B12)' or 'Mục II. Cá nhân, dòng TT 1
    (bảng 1)'; on the TỔNG row: 'Dòng TỔNG (ô D20)'; elsewhere the plain location.
    """
    if not location:
        return ""
    key = row_key(location)
    if key is not None and key in rows:
        kind, no = rows[key]
        section = f"Mục {KIND_SECTIONS.get(kind, '')}. {KIND_LABELS.get(kind, kind)}"
        line = f"dòng TT {no}" if no else "dòng chưa ghi TT"
        return f"{section}, {line} ({_where_in_file(location)})"
    if code == "total-mismatch" and key is not None:
        return f"Dòng TỔNG ({_where_in_file(location)})"
    return human_location(location)


def form_rows(form: Form) -> dict[RowKey, tuple[str, str | None]]:
    """Each model row of a form (and each row left without a model) by its place."""
    rows: dict[RowKey, tuple[str, str | None]] = {}
    for loc, kind, no in [
        *((e.name_location or e.location, e.kind, e.no) for e in form.entries),
        *((e.location, e.kind, e.no) for e in form.entries),
        *((r.location, r.kind, r.no) for r in form.unfilled_rows),
    ]:
        key = row_key(loc)
        if key is not None:
            rows.setdefault(key, (kind, no))
    return rows


# --------------------------------------------------------------------------- receipt parts


@dataclass(frozen=True)
class ProblemView:
    """One problem as the unit reads it: how serious, where (in Vietnamese), what to do."""

    severity_label: str
    code: str
    location: str
    message: str
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


@dataclass(frozen=True)
class EntryView:
    """One model row of the receipt's table."""

    kind: str
    kind_label: str
    no: str | None
    name: str | None
    field: str
    field_label: str
    model: str
    note: str | None = None
    location: str = ""


# Why a form was recorded for the unit it was (see intake._attribute).
ATTRIBUTIONS: Final = (
    "own",  # the form names the sending unit (or staff assigned the mail)
    "under",  # it names a unit under the sender in the register (trusted)
    "other",  # it names another registered unit: kept, awaiting staff confirmation
    "no-name",  # no unit name on the form: recorded for the sender, with a warning
    "unknown-name",  # a name the register does not know: recorded for the sender, warning
    "unconfirmed-sender",  # the address is not registered: awaiting confirmation
)


@dataclass(frozen=True)
class PreviousView:
    """The version of the same unit and form that was on file when this one arrived."""

    received_at: datetime
    entries: int
    replaced: bool  # True: the new version replaces it; False: it still counts
    dropped_models: tuple[str, ...] = ()  # its models missing from the new version


@dataclass(frozen=True)
class FormView:
    """One form found in a file, with its models, counts and problems."""

    form: str
    form_title: str
    unit_on_form: str | None
    year: int | None
    date: str | None
    accepted: bool
    supersedes_previous: bool
    entries: tuple[EntryView, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    problems: tuple[ProblemView, ...] = ()
    declared_empty: bool = False
    location: str = ""
    form_number: str = ""  # "Mẫu số 02"
    recorded_for: str | None = None  # the unit the form is recorded for
    sent_by: str | None = None  # the sending unit, when it is not the one recorded for
    attribution: str = "own"
    awaiting: bool = False  # recorded, but counts only once staff confirm it
    previous: PreviousView | None = None

    @property
    def outcome(self) -> str:
        """A key of glossary.FORM_OUTCOME_LABELS: what became of the form."""
        if not self.accepted:
            return "errors"
        if self.awaiting:
            return "awaiting"
        return "replaces" if self.supersedes_previous else "accepted"

    @property
    def outcome_label(self) -> str:
        """The form's outcome in the glossary's words ("Đã nhận, có lỗi, chưa được tính")."""
        return FORM_OUTCOME_LABELS[self.outcome]

    @property
    def counts_now(self) -> bool:
        """Whether its models count from now on (accepted, not waiting for staff)."""
        return self.accepted and not self.awaiting

    @property
    def models_heading(self) -> str:
        """What the list of models is, so a rejected form never says its models were taken."""
        if not self.accepted:
            return "Các mô hình ghi trong biểu (chưa được tính vì biểu còn lỗi)"
        if self.awaiting:
            return "Các mô hình ghi trong biểu (được tính sau khi cán bộ xác nhận)"
        return "Các mô hình đã tiếp nhận"

    @property
    def recorded_line(self) -> str | None:
        """ "Biểu Mẫu số 02 được ghi nhận cho: X (do Y gửi)"; "được lưu cho" with errors."""
        if not self.recorded_for:
            return None
        by = f" (do {self.sent_by} gửi)" if self.sent_by else ""
        # "ghi nhận" only for a form that counts: one with errors is kept, not taken.
        verb = "được ghi nhận cho" if self.accepted else "được lưu cho"
        return f"Biểu {self.form_number or self.form} {verb}: {self.recorded_for}{by}"

    @property
    def attribution_note(self) -> str | None:
        """Why the form was recorded where it was, when the unit should know (or act)."""
        if self.attribution == "no-name":
            return (
                "Lưu ý: biểu không ghi tên đơn vị nên được ghi nhận cho đơn vị gửi thư. Nếu đây "
                "là biểu của đơn vị khác, đề nghị ghi tên đơn vị vào dòng “TÊN ĐƠN VỊ” và gửi lại."
            )
        if self.attribution == "unknown-name":
            return (
                f"Lưu ý: tên đơn vị ghi trên biểu (“{self.unit_on_form}”) không có trong danh "
                "sách đơn vị nên biểu được ghi nhận cho đơn vị gửi thư. Nếu đây là biểu của đơn "
                "vị khác, đề nghị ghi đúng tên đơn vị trên biểu và gửi lại."
            )
        if self.attribution == "other":
            return (
                f"Chờ xác nhận: biểu ghi tên {self.recorded_for}, không phải đơn vị gửi thư và "
                "không trực thuộc đơn vị gửi thư. Biểu đã được lưu và chờ cán bộ tiếp nhận xác "
                f"nhận; trước khi được xác nhận, biểu không thay thế bản đã tiếp nhận của "
                f"{self.recorded_for}."
            )
        return None

    @property
    def version_note(self) -> str | None:
        """What became of the version on file: replaced (when, how many models) or kept."""
        prev = self.previous
        if prev is None:
            return None
        when = f"{prev.received_at:%H:%M} ngày {prev.received_at:%d/%m/%Y}"
        earlier = (
            f"bản {self.form_number or self.form} của {self.recorded_for} nhận lúc {when} "
            f"({prev.entries} mô hình)"
        )
        if prev.replaced:
            tail = (
                " Các mô hình của bản trước không có trong bản này (không còn được tính):"
                if prev.dropped_models
                else " Bản này giữ đủ các mô hình của bản trước."
            )
            return f"Bản này thay thế {earlier}.{tail}"
        return f"{earlier[0].upper()}{earlier[1:]} vẫn được giữ và tiếp tục được tính."

    @cached_property
    def collective(self) -> tuple[EntryView, ...]:
        return tuple(e for e in self.entries if e.kind == "collective")

    @cached_property
    def individual(self) -> tuple[EntryView, ...]:
        return tuple(e for e in self.entries if e.kind == "individual")

    @cached_property
    def total(self) -> int:
        return sum(self.counts.values())

    @cached_property
    def error_count(self) -> int:
        return sum(1 for p in self.problems if p.is_error)


@dataclass(frozen=True)
class FileView:
    """One attachment: read or not (and why), its file-level problems and its forms."""

    file_name: str
    format: str
    readable: bool
    reason: str | None = None
    problems: tuple[ProblemView, ...] = ()
    forms: tuple[FormView, ...] = ()
    # Set for a file kept beside the forms (scan, photo, copy): what the receipt says of it.
    note: str | None = None

    @property
    def error_count(self) -> int:
        own = sum(1 for p in self.problems if p.is_error) + (0 if self.readable else 1)
        return own + sum(f.error_count for f in self.forms)


def problem_view(
    problem: Problem, rows: Mapping[RowKey, tuple[str, str | None]] | None = None
) -> ProblemView:
    """Map a parser/rule Problem to what the receipt shows; `rows` place it on a model row."""
    return ProblemView(
        severity_label=SEVERITY_LABELS.get(problem.severity, problem.severity),
        code=problem.code,
        location=problem_place(problem.location, rows or {}, problem.code),
        message=problem.message,
        severity=problem.severity,
    )


def entry_view(entry: Entry) -> EntryView:
    """Map a parser Entry to a table row with Vietnamese labels."""
    return EntryView(
        kind=entry.kind,
        kind_label=KIND_LABELS.get(entry.kind, entry.kind),
        no=entry.no,
        name=entry.name,
        field=entry.field,
        field_label=FIELD_LABELS.get(entry.field, entry.field),
        model=entry.model,
        note=entry.note,
        location=human_location(entry.location),
    )


def field_counts(entries: Sequence[Entry] | Sequence[EntryView]) -> dict[str, int]:
    """Models per field, every field present (in the form's column order), keyed by label."""
    counts = {FIELD_LABELS[f]: 0 for f in FIELDS}
    for e in entries:
        label = FIELD_LABELS.get(e.field, e.field)
        counts[label] = counts.get(label, 0) + 1
    return counts


def display_date(value: str | date | None) -> str | None:
    """ISO '2022-02-14' (or a date) -> '14/02/2022'; text that is not ISO is kept."""
    if value is None:
        return None
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    try:
        return date.fromisoformat(value.strip()).strftime("%d/%m/%Y")
    except ValueError:
        return value


def _spec_for(code: str, specs: Sequence[FormSpec]) -> FormSpec | None:
    return next((s for s in specs if s.code == code), None)


def form_view(
    form: Form,
    *,
    form_specs: Sequence[FormSpec] = (),
    supersedes_previous: bool = False,
    accepted: bool | None = None,
) -> FormView:
    """Map a parsed Form to its view; accepted defaults to "no problem of severity error"."""
    spec = _spec_for(form.form, form_specs)
    title = form_title(form.form, spec.title if spec else None, spec.level if spec else None)
    rows = form_rows(form)
    problems = tuple(problem_view(p, rows) for p in form.problems)
    entries = tuple(entry_view(e) for e in form.entries)
    return FormView(
        form=form.form,
        form_title=title,
        unit_on_form=form.unit,
        year=form.year,
        date=display_date(form.date),
        accepted=(not any(p.is_error for p in problems)) if accepted is None else accepted,
        supersedes_previous=supersedes_previous,
        entries=entries,
        counts=field_counts(entries),
        problems=problems,
        declared_empty=form.declared_empty,
        location=human_location(form.location),
        form_number=FORM_NUMBERS.get(form.form, form.form),
    )


def file_view(
    result: ParseResult,
    *,
    form_specs: Sequence[FormSpec] = (),
    superseding: Collection[str] = (),
) -> FileView:
    """Map one attachment's ParseResult to its view.

    `superseding` holds the form codes (M1/M2) of this file that replace an earlier version.
    A file is unreadable when it gave no form and a file-level error other than "no form here".
    A file with only notes (NOTE_CODES) is an extra document: its view carries the note.
    """
    if not result.forms and result.problems and all(p.code in NOTE_CODES for p in result.problems):
        return FileView(
            file_name=result.file,
            format=result.format,
            readable=True,
            note=" ".join(p.message for p in result.problems),
        )
    blocking = [
        p
        for p in result.problems
        if p.severity == "error" and p.code not in _READABLE_NO_FORM_CODES
    ]
    readable = bool(result.forms) or not blocking
    reason_problem = None if readable else blocking[0]
    problems = tuple(problem_view(p) for p in result.problems if p is not reason_problem)
    forms = tuple(
        form_view(f, form_specs=form_specs, supersedes_previous=f.form in superseding)
        for f in result.forms
    )
    return FileView(
        file_name=result.file,
        format=result.format,
        readable=readable,
        reason=reason_problem.message if reason_problem else None,
        problems=problems,
        forms=forms,
    )


# --------------------------------------------------------------------------- the four events


@dataclass(frozen=True)
class ReceiptView:
    """The answer to one submission: every file, form, model and problem, and what is missing.

    What it derives is computed once (cached_property): the three templates of a receipt
    read the same values many times, and a frozen view never changes.
    """

    unit_name: str | None
    awaiting_confirmation: bool
    campaign_name: str
    deadline_text: str
    deadline: date
    received_at: datetime
    late: bool
    files: tuple[FileView, ...]
    # Required forms not received at all (neither on file nor in this mail).
    missing_forms: tuple[str, ...]
    # Every required form has a valid, confirmed version on file.
    all_complete: bool
    submission_address: str
    contact: Contact
    original_subject: str | None = None
    office_name: str = DEFAULT_OFFICE
    # Awaiting because our mail server could not vouch for a registered address (not
    # because the address is new): the wording differs, the unit may not have sent it.
    sender_unverified: bool = False
    # "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)" (Campaign.deadline_words).
    deadline_words: str = ""
    # The mail carried no form and is listed for staff to read (digest, `mailbot review`).
    for_staff: bool = False
    # Required forms received in an earlier mail that do not count yet (list names).
    earlier_forms_to_fix: tuple[str, ...] = ()
    earlier_forms_awaiting: tuple[str, ...] = ()

    @property
    def greeting(self) -> str:
        """Whom the receipt addresses: the registered unit, or a neutral "Đơn vị gửi hồ sơ".

        A unit found only by the name written on a form (the address is not registered) is
        not greeted by that name: the sender may be someone else.
        """
        if self.unit_name and not (self.awaiting_confirmation and not self.sender_unverified):
            return self.unit_name
        return GREETING_UNKNOWN

    @cached_property
    def forms(self) -> tuple[FormView, ...]:
        return tuple(f for fv in self.files for f in fv.forms)

    @cached_property
    def error_count(self) -> int:
        return sum(f.error_count for f in self.files)

    @cached_property
    def forms_to_fix(self) -> tuple[str, ...]:
        """The forms received with errors (in this mail, then earlier ones), named once each."""
        here = (f.form_title for f in self.forms if not f.accepted)
        earlier = (f"{name}, bản gửi trước" for name in self.earlier_forms_to_fix)
        return tuple(dict.fromkeys([*here, *earlier]))

    @cached_property
    def has_form_errors(self) -> bool:
        """Whether a form of this mail has errors (so it does not count)."""
        return any(not f.accepted for f in self.forms)

    @cached_property
    def forms_awaiting(self) -> tuple[str, ...]:
        """The forms that count once staff confirm them (this mail's, then earlier ones)."""
        here = (f.form_title for f in self.forms if f.accepted and f.awaiting)
        earlier = (f"{name}, bản gửi trước" for name in self.earlier_forms_awaiting)
        return tuple(dict.fromkeys([*here, *earlier]))

    @cached_property
    def unreadable_files(self) -> tuple[FileView, ...]:
        return tuple(f for f in self.files if not f.readable)

    @cached_property
    def noted_files(self) -> tuple[FileView, ...]:
        return tuple(f for f in self.files if f.note)

    @cached_property
    def outcome(self) -> str:
        """A key of glossary.RECEIPT_OUTCOME_LABELS: the mail's outcome as a whole."""
        forms = self.forms
        if self.error_count:
            return "errors"
        if self.awaiting_confirmation or any(f.awaiting for f in forms):
            return "awaiting"
        if not forms:
            return "complete" if self.all_complete else "nothing"
        return "complete" if self.all_complete else "partial"

    @cached_property
    def outcome_label(self) -> str:
        return RECEIPT_OUTCOME_LABELS[self.outcome]

    @cached_property
    def headline(self) -> str:
        """The first line of the receipt, the one a mail client previews in the inbox list.

        The subject stays "Re: <the unit's subject>": Gmail threads a reply only when its
        subject matches the thread's (prefixes aside) besides In-Reply-To/References, and
        Outlook groups a conversation by its topic (the subject without prefixes), so a tag
        added to the subject would split the thread. The outcome goes here instead.
        """
        parts = [
            f"{f.form_number or f.form}"
            + (f" của {f.recorded_for}" if f.recorded_for not in (None, self.unit_name) else "")
            + f": {f.outcome_label.lower()}"
            for f in self.forms
        ]
        if not parts:
            parts.append(RECEIPT_OUTCOME_LABELS["nothing"].lower())
        if self.missing_forms:
            parts.append(f"còn thiếu {', '.join(self.missing_forms)}")
        elif self.all_complete and self.outcome == "complete":
            parts.append("đơn vị đã gửi đủ biểu mẫu")
        return "Kết quả tiếp nhận: " + "; ".join(parts) + "."


@dataclass(frozen=True)
class NoticeView:
    """A short answer to a mail we could not handle in detail."""

    unit_name: str | None  # the registered unit that sent it; None when not known
    reason_code: str
    received_at: datetime
    original_subject: str | None
    max_size_mb: float | None
    submission_address: str
    campaign_name: str
    contact: Contact
    accepted_formats: tuple[str, ...] = DEFAULT_FORMATS
    office_name: str = DEFAULT_OFFICE
    deadline_text: str = ""
    deadline_words: str = ""
    # The forms this unit must send, as named in a list ("Mẫu số 02 (cấp cơ sở)").
    owed_forms: tuple[str, ...] = ()
    # The mail is listed for staff to read: only then does the notice say they will.
    for_staff: bool = False

    @property
    def greeting(self) -> str:
        """The registered unit's name, else the neutral "Đơn vị gửi hồ sơ"."""
        return self.unit_name or GREETING_UNKNOWN

    def __post_init__(self) -> None:
        if self.reason_code not in NOTICE_REASONS:
            raise ValueError(f"unknown notice reason {self.reason_code!r}")
