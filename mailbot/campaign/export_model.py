"""The consolidated workbook's content, independent of the file format: rows, order, totals."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from mailbot.campaign.forms import FIELD_LABELS, TOTAL_LABEL, form_level, title_lines
from mailbot.config import BoardConfig
from mailbot.glossary import FORM_STATE_LABELS, LATE, NO_MODELS, NOT_OWED, UNIT_STATE_LABELS
from mailbot.units import group_label, guess_group, register_rank
from parsers.model import FIELDS
from rules.campaign import Campaign

KINDS = ("collective", "individual")
KIND_LABELS = {"collective": "Tập thể", "individual": "Cá nhân"}
# The field columns of the summary sheet: the form's field headings without "Lĩnh vực".
FIELD_SHORT = {
    key: label.removeprefix("Lĩnh vực ").capitalize() for key, label in FIELD_LABELS.items()
}
SUBTOTAL_LABEL = "Cộng"
MODELS_WORD = "mô hình"
# A form not received from a unit that owes it.
NOT_RECEIVED = FORM_STATE_LABELS["none"]
_ROMAN = (
    (1000, "M"),
    (900, "CM"),
    (500, "D"),
    (400, "CD"),
    (100, "C"),
    (90, "XC"),
    (50, "L"),
    (40, "XL"),
    (10, "X"),
    (9, "IX"),
    (5, "V"),
    (4, "IV"),
    (1, "I"),
)


@dataclass(frozen=True)
class ExportModel:
    """One registered model as the consolidated workbook lists it."""

    unit_code: str
    unit_name: str
    form: str  # "M1" / "M2"
    kind: str  # "collective" / "individual"
    field: str  # one of parsers.model.FIELDS
    no: str | None
    name: str | None
    model: str
    note: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ExportModel.kind must be one of {KINDS}, not {self.kind!r}")
        if self.field not in FIELDS:
            raise ValueError(f"ExportModel.field must be one of {FIELDS}, not {self.field!r}")


@dataclass(frozen=True)
class FormStatus:
    """The latest version of one form from one unit."""

    received_at: datetime  # aware; a naive value is taken as UTC
    late: bool
    entries: int
    errors: int = 0
    problems: list[str] = field(default_factory=list)
    sender: str = ""
    state: str = "ok"  # mailbot.campaign.status FORM_*: ok / unconfirmed / errors
    declared_empty: bool = False  # counted, and the unit registered no model on it

    @property
    def counts(self) -> bool:
        return self.state == "ok"


@dataclass(frozen=True)
class UnitStatusRow:
    """Where one unit stands: its state and, per form code, the latest form or None."""

    unit_code: str
    unit_name: str
    state: str  # complete / partial / missing / errors / awaiting-confirmation
    forms: dict[str, FormStatus | None] = field(default_factory=dict)
    owed: tuple[str, ...] = ()  # the forms the unit must send; empty: every form
    group: str | None = None  # the register's group (mailbot.units.UNIT_GROUPS)
    order: int | None = None  # its place in the group

    def owes(self, form: str) -> bool:
        return not self.owed or form in self.owed


@dataclass(frozen=True)
class Line:
    """One body row of a table, its role saying how it is drawn.

    Roles: group (a heading across), unit (a heading across), kind (Tập thể / Cá nhân),
    model, subtotal, total.
    """

    role: str
    cells: tuple[object, ...]


@dataclass(frozen=True)
class LevelTable:
    """One form's models, unit by unit in the register's order, with subtotals and TỔNG."""

    form: str
    level: str
    titles: tuple[str, ...]
    lines: tuple[Line, ...]
    note: str


@dataclass(frozen=True)
class UnitRef:
    """A unit as the tables order it."""

    code: str
    name: str
    group: str


def roman(number: int) -> str:
    """1 → "I", 4 → "IV"."""
    out = []
    for value, letters in _ROMAN:
        while number >= value:
            out.append(letters)
            number -= value
    return "".join(out)


def ordered_units(
    statuses: Sequence[UnitStatusRow], models: Iterable[ExportModel] = ()
) -> list[UnitRef]:
    """Every unit of the status rows and the models, in the register's order."""
    keyed: dict[str, tuple[tuple[int, int, str], UnitRef]] = {}
    for s in statuses:
        group = s.group or guess_group(s.unit_name)
        keyed[s.unit_code] = (
            register_rank(s.unit_name, group, s.order),
            UnitRef(s.unit_code, s.unit_name, group),
        )
    for m in models:
        if m.unit_code not in keyed:
            name = m.unit_name or m.unit_code
            keyed[m.unit_code] = (
                register_rank(name, None, None),
                UnitRef(m.unit_code, name, guess_group(name)),
            )
    return [ref for _rank, ref in sorted(keyed.values(), key=lambda t: (t[0], t[1].code))]


def forms_to_show(models: Iterable[ExportModel], campaign: Campaign) -> list[str]:
    """The campaign's forms, then any other form a model came on."""
    order = [spec.code for spec in campaign.forms] or ["M1", "M2"]
    for m in models:
        if m.form not in order:
            order.append(m.form)
    return order


def known_form(form: str, campaign: Campaign) -> bool:
    try:
        form_level(form, campaign)
    except ValueError:
        return False
    return True


def form_title(form: str, campaign: Campaign) -> str:
    """A form as staff name it: "Mẫu số 01 (cấp Quận)"."""
    for spec in campaign.forms:
        if spec.code == form:
            title = spec.title or form
            return f"{title} ({spec.level})" if spec.level else title
    return form


def local(when: datetime, campaign: Campaign) -> datetime:
    """`when` in the campaign's time zone (a naive value is UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(campaign.tz)


def fmt_time(when: datetime, campaign: Campaign) -> str:
    return local(when, campaign).strftime("%H:%M %d/%m/%Y")


def date_line(board: BoardConfig, campaign: Campaign, generated_at: datetime) -> str:
    """The date line, "Thanh Xuân, ngày 28 tháng 11 năm 2026" (dots: dated by hand)."""
    if board.date_by_hand:
        return f"{board.place}, ngày … tháng … năm {local(generated_at, campaign).year}"
    day = local(generated_at, campaign)
    # Days below 10 and the months 1 and 2 take a leading zero (ngày 05 tháng 02, tháng 11).
    month = f"{day.month:02d}" if day.month < 3 else str(day.month)
    return f"{board.place}, ngày {day.day:02d} tháng {month} năm {day.year}"


def data_line(campaign: Campaign, generated_at: datetime) -> str:
    """The line under the title: "(Số liệu tổng hợp đến 10 giờ 08 ngày 28/11/2026)"."""
    day = local(generated_at, campaign)
    return f"(Số liệu tổng hợp đến {day:%H} giờ {day:%M} ngày {day:%d/%m/%Y})"


def _counts(models: Iterable[ExportModel]) -> list[int]:
    mine = list(models)
    return [sum(1 for m in mine if m.field == key) for key in FIELDS] + [len(mine)]


def level_table(
    form: str, models: Sequence[ExportModel], statuses: Sequence[UnitStatusRow], campaign: Campaign
) -> LevelTable:
    """The form's table: group and unit headings, the unit's models by kind, subtotals, TỔNG.

    Cells: TT | name | the four fields | note (the form's columns). Subtotal and total rows
    carry numbers: one per field, then the count of models in the note column.
    """
    mine = [m for m in models if m.form == form]
    lines: list[Line] = []
    group_no = 0
    current_group: str | None = None
    unit_no = 0
    for ref in ordered_units(statuses, mine):
        theirs = [m for m in mine if m.unit_code == ref.code]
        if not theirs:
            continue
        if ref.group != current_group:
            current_group = ref.group
            group_no += 1
            lines.append(Line("group", (roman(group_no), group_label(ref.group).upper())))
        unit_no += 1
        lines.append(Line("unit", (str(unit_no), ref.name)))
        number = 0
        for kind in KINDS:
            of_kind = [m for m in theirs if m.kind == kind]
            if not of_kind:
                continue
            lines.append(Line("kind", (None, KIND_LABELS[kind])))
            for m in of_kind:
                number += 1
                fields = [m.model if m.field == key else None for key in FIELDS]
                lines.append(Line("model", (f"{unit_no}.{number}", m.name, *fields, m.note)))
        lines.append(Line("subtotal", (None, SUBTOTAL_LABEL, *_counts(theirs))))
    lines.append(Line("total", (None, TOTAL_LABEL, *_counts(mine))))
    known = known_form(form, campaign)
    level = form_level(form, campaign) if known else form
    return LevelTable(
        form=form,
        level=level,
        titles=title_lines(form, campaign) if known else (form,),
        lines=tuple(lines),
        note=_level_note(form, level, mine, statuses),
    )


def _level_note(
    form: str, level: str, mine: Sequence[ExportModel], statuses: Sequence[UnitStatusRow]
) -> str:
    units = len({m.unit_code for m in mine})
    collective = sum(1 for m in mine if m.kind == "collective")
    text = (
        f"Ghi chú: Tổng hợp {len(mine)} mô hình đăng ký {level} ({collective} của tập thể, "
        f"{len(mine) - collective} của cá nhân) do {units} đơn vị gửi."
    )
    owing = [s for s in statuses if s.owes(form)]
    empty = sum(1 for s in owing if (f := s.forms.get(form)) and f.counts and not f.entries)
    waiting = sum(1 for s in owing if not ((f := s.forms.get(form)) and f.counts))
    if empty:
        text += f" {empty} đơn vị không đăng ký mô hình."
    if waiting:
        text += (
            f" {waiting} đơn vị chưa gửi biểu hoặc biểu chưa được tính (xem phần tổng hợp chung)."
        )
    return text


# --- the summary for the evaluation -------------------------------------------------------------

# Per form on the summary: the four fields, collectives, individuals, all.
SUMMARY_PER_FORM = (*(FIELD_SHORT[k] for k in FIELDS), "Tập thể", "Cá nhân", SUBTOTAL_LABEL)


@dataclass(frozen=True)
class Summary:
    """Per unit × form: models by field and by kind; who registered nothing; forms left out."""

    forms: tuple[str, ...]
    headings: tuple[str, ...]  # one per form
    lines: tuple[Line, ...]  # group / unit / total; unit cells: TT, name, numbers…, all
    nothing: tuple[str, ...]  # units whose counted forms hold no model
    none_sent: tuple[str, ...]  # units that sent no form at all
    not_sent: tuple[str, ...]  # units that owe a form never received ("name: Mẫu số 02")
    left_out: tuple[str, ...]  # forms received that do not count, and why


def _per_form(models: Sequence[ExportModel]) -> list[int]:
    fields = [sum(1 for m in models if m.field == key) for key in FIELDS]
    kinds = [sum(1 for m in models if m.kind == kind) for kind in KINDS]
    return [*fields, *kinds, len(models)]


def summary(
    forms: Sequence[str],
    models: Sequence[ExportModel],
    statuses: Sequence[UnitStatusRow],
    campaign: Campaign,
) -> Summary:
    """The summary sheet's content for the evaluation and the report."""
    lines: list[Line] = []
    group_no = 0
    current: str | None = None
    unit_no = 0
    nothing: list[str] = []
    none_sent: list[str] = []
    not_sent: list[str] = []
    left_out: list[str] = []
    by_code = {s.unit_code: s for s in statuses}
    for ref in ordered_units(statuses, models):
        theirs = [m for m in models if m.unit_code == ref.code]
        status = by_code.get(ref.code)
        if status is not None:
            owed = [f for f in forms if status.owes(f) and known_form(f, campaign)]
            missing = [form_title(f, campaign) for f in owed if status.forms.get(f) is None]
            if missing and not any(status.forms.values()):
                none_sent.append(ref.name)
            elif missing:
                not_sent.append(f"{ref.name}: còn thiếu {', '.join(missing)}")
            for f in forms:
                st = status.forms.get(f)
                if st is not None and not st.counts:
                    left_out.append(f"{ref.name}, {form_title(f, campaign)}: {_why(st)}")
            counted = [st for st in status.forms.values() if st is not None and st.counts]
            if counted and not theirs:
                nothing.append(ref.name)
        if not theirs:
            continue
        if ref.group != current:
            current = ref.group
            group_no += 1
            lines.append(Line("group", (roman(group_no), group_label(ref.group).upper())))
        unit_no += 1
        cells: list[object] = [str(unit_no), ref.name]
        for f in forms:
            cells.extend(_per_form([m for m in theirs if m.form == f]))
        cells.append(len(theirs))
        lines.append(Line("unit", tuple(cells)))
    total: list[object] = [None, TOTAL_LABEL]
    for f in forms:
        total.extend(_per_form([m for m in models if m.form == f]))
    total.append(len(models))
    lines.append(Line("total", tuple(total)))
    return Summary(
        forms=tuple(forms),
        headings=tuple(form_title(f, campaign) for f in forms),
        lines=tuple(lines),
        nothing=tuple(nothing),
        none_sent=tuple(none_sent),
        not_sent=tuple(not_sent),
        left_out=tuple(left_out),
    )


def _why(st: FormStatus) -> str:
    """Why a received form does not count, in plain words."""
    if st.state == "unconfirmed":
        return "gửi từ địa chỉ thư chưa được xác nhận, chờ cán bộ xác nhận người gửi"
    label = FORM_STATE_LABELS.get(st.state, st.state)
    count = f" ({st.errors} lỗi)" if st.errors else ""
    return f"{label[:1].lower()}{label[1:]}{count}; đã đề nghị đơn vị sửa và gửi lại"


def summary_paragraphs(s: Summary) -> list[tuple[str, list[str]]]:
    """The paragraphs under the summary table: a heading line, then its item lines.

    Lists of unit names run on in one line ("A; B; C."); the others take a line each.
    """
    out: list[tuple[str, list[str]]] = []
    for heading, items, inline in (
        ("Đơn vị đã gửi biểu nhưng không đăng ký mô hình nào", s.nothing, True),
        ("Đơn vị chưa gửi biểu nào", s.none_sent, True),
        ("Đơn vị gửi chưa đủ biểu", s.not_sent, False),
        ("Biểu đã nhận nhưng chưa được tính", s.left_out, False),
    ):
        if not items:
            out.append((f"{heading}: không có.", []))
        elif inline:
            out.append((f"{heading} ({len(items)}):", ["; ".join(items) + "."]))
        else:
            out.append((f"{heading} ({len(items)}):", [f"- {item}." for item in items]))
    return out


# --- where each unit stands -----------------------------------------------------------------

# Per form on the printable sheet: (header, xlsx width, docx width in cm)
STATUS_FORM_COLUMNS = (("Ngày gửi", 17, 2.6), ("Số mô hình", 9, 1.6), ("Ghi chú", 26, 4.4))
STATUS_LEAD_COLUMNS = (("TT", 5, 0.9), ("Đơn vị", 36, 5.6), ("Tình trạng", 16, 2.4))
# Per form on the internal sheet: (header, xlsx width)
INTERNAL_FORM_COLUMNS = (
    ("Nhận lúc", 17),
    (LATE, 8),
    ("Số mô hình", 9),
    ("Vấn đề", 32),
    ("Người gửi", 24),
)
INTERNAL_LEAD_COLUMNS = (("Mã", 10), ("Đơn vị", 32), ("Tình trạng", 14))


def state_label(state: str) -> str:
    return UNIT_STATE_LABELS.get(state, state)


def status_lines(
    statuses: Sequence[UnitStatusRow], forms: Sequence[str], campaign: Campaign
) -> list[Line]:
    """The printable sheet: group headings, then per unit TT, name, state, per form 3 cells."""
    by_code = {s.unit_code: s for s in statuses}
    lines: list[Line] = []
    current: str | None = None
    group_no = 0
    for unit_no, ref in enumerate(ordered_units(statuses), start=1):
        row = by_code[ref.code]
        if ref.group != current:
            current = ref.group
            group_no += 1
            lines.append(Line("group", (roman(group_no), group_label(ref.group).upper())))
        cells: list[object] = [str(unit_no), row.unit_name, state_label(row.state)]
        for code in forms:
            cells.extend(_printable_form(row, code, campaign))
        lines.append(Line("unit", tuple(cells)))
    return lines


def _printable_form(row: UnitStatusRow, code: str, campaign: Campaign) -> list[object]:
    st = row.forms.get(code)
    if st is None:
        return [None, None, NOT_RECEIVED if row.owes(code) else NOT_OWED]
    notes = []
    if st.late:
        notes.append(LATE)
    if not st.counts:
        label = FORM_STATE_LABELS.get(st.state, st.state)
        notes.append(label + (f" ({st.errors} lỗi)" if st.errors else ""))
    elif st.declared_empty or not st.entries:
        notes.append(NO_MODELS)
    return [fmt_time(st.received_at, campaign), st.entries, "; ".join(notes) or None]


def internal_cells(row: UnitStatusRow, forms: Sequence[str], campaign: Campaign) -> list[object]:
    """The internal sheet's row: code, name, state, per form time, late, count, problems, sender."""
    cells: list[object] = [row.unit_code, row.unit_name, state_label(row.state)]
    for code in forms:
        st = row.forms.get(code)
        if st is None:
            cells.extend([NOT_RECEIVED if row.owes(code) else NOT_OWED, None, None, None, None])
            continue
        problems = list(st.problems)
        if st.counts and (st.declared_empty or not st.entries):
            problems.insert(0, NO_MODELS)
        text = "\n".join(f"- {p}" for p in problems) or None
        if text is None and st.errors:
            text = f"{st.errors} lỗi"
        cells.extend(
            [
                local(st.received_at, campaign).strftime("%d/%m/%Y %H:%M"),
                LATE if st.late else None,
                st.entries,
                text,
                st.sender or None,
            ]
        )
    return cells


def status_summary(statuses: Sequence[UnitStatusRow]) -> str:
    """The count of units by state: "Tổng số 44 đơn vị — Đã gửi đủ: 12; …"."""
    parts = [
        f"{label}: {sum(1 for s in statuses if s.state == state)}"
        for state, label in UNIT_STATE_LABELS.items()
    ]
    return f"Tổng số {len(statuses)} đơn vị — " + "; ".join(parts) + "."


def deadline_line(campaign: Campaign) -> str:
    """'Hạn gửi: trước ngày 20/02/2022, hạn cuối: hết ngày 19/02/2022 (thứ Bảy)'."""
    return f"Hạn gửi: {campaign.deadline_text}, {campaign.deadline_words}"


def sheet_name(text: str) -> str:
    """A worksheet name: no []:*?/\\, at most 31 characters."""
    for bad in "[]:*?/\\":
        text = text.replace(bad, " ")
    return text[:31]


def level_sheet_name(form: str, campaign: Campaign) -> str:
    """The sheet of one form: "Mẫu số 01 - Cấp Quận"."""
    for spec in campaign.forms:
        if spec.code == form:
            level = spec.level[:1].upper() + spec.level[1:]
            return sheet_name(f"{spec.title or form} - {level}" if spec.level else spec.title)
    return sheet_name(form)
