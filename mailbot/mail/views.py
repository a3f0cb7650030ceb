"""Plain data the outgoing-mail templates take (receipt, notice, reminder, digest) and builders."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import MappingProxyType
from typing import Final

from outbox_templates.labels import (
    FIELD_LABELS,
    KIND_LABELS,
    SEVERITY_LABELS,
    form_title,
)
from parsers.model import FIELDS, Entry, Form, ParseResult, Problem
from rules.campaign import FormSpec

DEFAULT_OFFICE: Final = "Ban Dân vận Quận ủy Thanh Xuân"
DEFAULT_FORMATS: Final = ("xlsx", "docx", "xls", "doc")

# What the unit can do about each contract problem code; shown under the rule's own message.
FIX_HINTS: Final = MappingProxyType(
    {
        "unreadable-file": "Mở lại tệp bằng Excel hoặc Word, lưu lại (Save As) dưới dạng .xlsx "
        "hoặc .docx rồi gửi lại; không đặt mật khẩu cho tệp.",
        "unsupported-format": "Gửi biểu mẫu dưới dạng tệp Excel (.xlsx, .xls) hoặc Word "
        "(.docx, .doc); không gửi ảnh chụp hoặc bản quét.",
        "file-too-large": "Xóa bớt nội dung thừa (ảnh, trang tính không dùng) hoặc chỉ gửi "
        "tệp biểu mẫu, rồi gửi lại.",
        "no-form-found": "Gửi đúng tệp biểu mẫu (Mẫu số 01 hoặc Mẫu số 02), giữ nguyên tiêu đề "
        "“BIỂU TỔNG HỢP” và hàng tiêu đề các cột của bảng.",
        "missing-unit-name": "Ghi tên đơn vị vào dòng “TÊN ĐƠN VỊ” ở đầu biểu mẫu.",
        "missing-name": "Ghi tên tập thể hoặc cá nhân vào cột “Tên tập thể, cá nhân” của dòng này.",
        "missing-model": "Ghi tên mô hình vào đúng ô lĩnh vực của dòng này, hoặc xóa dòng nếu "
        "không đăng ký.",
        "total-mismatch": "Sửa các số ở dòng “TỔNG” cho khớp với số mô hình đã ghi trong bảng.",
        "wrong-year": "Kiểm tra lại năm ghi ở tiêu đề và dòng ngày tháng của biểu mẫu.",
        "empty-form": "Nếu đơn vị không đăng ký mô hình nào, ghi rõ “Không đăng ký” trong biểu; "
        "nếu có, điền các mô hình vào bảng rồi gửi lại.",
        "legacy-encoding-converted": "Không cần gửi lại; lần sau đề nghị dùng phông chữ Unicode "
        "(ví dụ Times New Roman).",
    }
)

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


# --------------------------------------------------------------------------- receipt parts


@dataclass(frozen=True)
class ProblemView:
    """One problem as the unit reads it: how serious, where (in Vietnamese), what to do."""

    severity_label: str
    code: str
    location: str
    message: str
    severity: str = "error"
    hint: str | None = None

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

    @property
    def collective(self) -> tuple[EntryView, ...]:
        return tuple(e for e in self.entries if e.kind == "collective")

    @property
    def individual(self) -> tuple[EntryView, ...]:
        return tuple(e for e in self.entries if e.kind == "individual")

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
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
    reason_hint: str | None = None

    @property
    def error_count(self) -> int:
        own = sum(1 for p in self.problems if p.is_error) + (0 if self.readable else 1)
        return own + sum(f.error_count for f in self.forms)


def problem_view(problem: Problem) -> ProblemView:
    """Map a parser/rule Problem to what the receipt shows."""
    return ProblemView(
        severity_label=SEVERITY_LABELS.get(problem.severity, problem.severity),
        code=problem.code,
        location=human_location(problem.location),
        message=problem.message,
        severity=problem.severity,
        hint=FIX_HINTS.get(problem.code),
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
    problems = tuple(problem_view(p) for p in form.problems)
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
    """
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
        reason_hint=FIX_HINTS.get(reason_problem.code) if reason_problem else None,
    )


# --------------------------------------------------------------------------- the four events


@dataclass(frozen=True)
class ReceiptView:
    """The answer to one submission: every file, form, model and problem, and what is missing."""

    recipient_name: str | None
    unit_name: str | None
    awaiting_confirmation: bool
    campaign_name: str
    deadline_text: str
    deadline: date
    received_at: datetime
    late: bool
    files: tuple[FileView, ...]
    missing_forms: tuple[str, ...]
    all_complete: bool
    submission_address: str
    original_subject: str | None = None
    office_name: str = DEFAULT_OFFICE
    # "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)" (Campaign.deadline_words).
    deadline_words: str = ""
    # The mail carried no form and is listed for staff to read (digest, `mailbot review`).
    for_staff: bool = False

    @property
    def forms(self) -> tuple[FormView, ...]:
        return tuple(f for fv in self.files for f in fv.forms)

    @property
    def error_count(self) -> int:
        return sum(f.error_count for f in self.files)

    @property
    def unreadable_files(self) -> tuple[FileView, ...]:
        return tuple(f for f in self.files if not f.readable)


@dataclass(frozen=True)
class NoticeView:
    """A short answer to a mail we could not handle in detail."""

    recipient: str | None
    reason_code: str
    received_at: datetime
    original_subject: str | None
    max_size_mb: float | None
    submission_address: str
    campaign_name: str
    accepted_formats: tuple[str, ...] = DEFAULT_FORMATS
    office_name: str = DEFAULT_OFFICE
    deadline_text: str = ""
    deadline_words: str = ""
    # The forms this unit must send, as named in a list ("Mẫu số 02 (cấp cơ sở)").
    owed_forms: tuple[str, ...] = ()
    # The mail is listed for staff to read: only then does the notice say they will.
    for_staff: bool = False

    def __post_init__(self) -> None:
        if self.reason_code not in NOTICE_REASONS:
            raise ValueError(f"unknown notice reason {self.reason_code!r}")
