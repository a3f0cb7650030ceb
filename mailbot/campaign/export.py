"""The consolidated workbook staff send up to the city: all models by level, who sent what."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from docx.document import Document as DocxDocument
from docx.enum.text import WD_BREAK
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.campaign.forms import (
    FIELD_LABELS,
    HEADER_MODEL,
    HEADER_NAME,
    HEADER_NOTE,
    HEADER_TT,
    SECTIONS,
    TABLE_SIZE,
    TEXT_SIZE,
    TOTAL_LABEL,
    box,
    clean_text,
    document_bytes,
    docx_form_header,
    fill_cell,
    fix_widths,
    form_level,
    new_document,
    no_borders,
    print_setup,
    put_text,
    repeat_header,
    title_lines,
    usable_width_cm,
    workbook_bytes,
    write_par,
    xalign,
    xfont,
)
from mailbot.campaign.status import FORM_OK, UnitState, unit_states
from mailbot.config import Config
from parsers.model import FIELDS
from rules.campaign import Campaign

log = logging.getLogger(__name__)

KINDS = ("collective", "individual")
STATE_LABELS: dict[str, str] = {
    "complete": "Đã đủ",
    "partial": "Còn thiếu",
    "missing": "Chưa nộp",
    "errors": "Có lỗi",
    "awaiting-confirmation": "Chờ xác nhận",
}
HEADER_UNIT = "Đơn vị"
STATUS_SHEET = "Tình hình nộp"
NOT_RECEIVED = "Chưa nộp"
NOT_OWED = "Không phải nộp"
LATE = "Muộn"
# Per form on the status sheet: (header, xlsx width, docx width in cm)
_STATUS_FORM_COLUMNS = (
    ("Nhận lúc", 17, 2.1),
    ("Nộp muộn", 8, 1.3),
    ("Số mô hình", 9, 1.3),
    ("Vấn đề", 32, 3.4),
    ("Người gửi", 24, 2.2),
)
_STATUS_LEAD_COLUMNS = (("Mã", 10, 1.3), (HEADER_UNIT, 32, 3.6), ("Tình trạng", 14, 1.9))


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


@dataclass(frozen=True)
class UnitStatusRow:
    """Where one unit stands: its state and, per form code, the latest form or None."""

    unit_code: str
    unit_name: str
    state: str  # complete / partial / missing / errors / awaiting-confirmation
    forms: dict[str, FormStatus | None] = field(default_factory=dict)
    owed: tuple[str, ...] = ()  # the forms the unit must send; empty: every form


# --- the tables, independent of the file format ------------------------------------------------


@dataclass(frozen=True)
class _Line:
    """One body row of a level table: a section heading, a model, or the TỔNG row."""

    role: str  # "section" / "model" / "total"
    cells: tuple[object, ...]


@dataclass(frozen=True)
class _LevelTable:
    form: str
    level: str
    titles: tuple[str, str, str]
    lines: tuple[_Line, ...]
    units: int


# Level table columns: TT | name | unit | four fields | note
_LEVEL_WIDTHS = (6, 30, 26, 26, 26, 26, 26, 14)
_LEVEL_DOCX_CM = (1.0, 4.2, 3.8, 3.9, 3.9, 3.9, 3.9, 2.1)  # 26.7 cm
_FIELD_COL0 = 3  # 0-based index of the first field column


def _forms_to_show(models: Iterable[ExportModel], campaign: Campaign) -> list[str]:
    order = [spec.code for spec in campaign.forms] or ["M1", "M2"]
    for m in models:
        if m.form not in order:
            order.append(m.form)
    return order


def _unit_order(models: Sequence[ExportModel], statuses: Sequence[UnitStatusRow]) -> dict[str, int]:
    """Units in register order (as the status rows come), then the rest by name."""
    rank: dict[str, int] = {}
    for s in statuses:
        rank.setdefault(s.unit_code, len(rank))
    extra = sorted({(m.unit_name, m.unit_code) for m in models if m.unit_code not in rank})
    for _name, code in extra:
        rank.setdefault(code, len(rank))
    return rank


def _level_table(
    form: str, models: Sequence[ExportModel], statuses: Sequence[UnitStatusRow], campaign: Campaign
) -> _LevelTable:
    mine = [m for m in models if m.form == form]
    rank = _unit_order(mine, statuses)
    register = {s.unit_code: s.unit_name for s in statuses}
    lines: list[_Line] = []
    for roman, label, kind in SECTIONS:
        lines.append(_Line("section", (roman, label)))
        section = [(rank[m.unit_code], i, m) for i, m in enumerate(mine) if m.kind == kind]
        for number, (_r, _i, m) in enumerate(sorted(section, key=lambda t: t[:2]), start=1):
            fields = [m.model if m.field == key else None for key in FIELDS]
            unit = m.unit_name or register.get(m.unit_code) or m.unit_code
            lines.append(_Line("model", (str(number), m.name, unit, *fields, m.note)))
    counts = {key: sum(1 for m in mine if m.field == key) for key in FIELDS}
    total_cells = (None, TOTAL_LABEL, None, *(counts[k] for k in FIELDS), len(mine))
    lines.append(_Line("total", total_cells))
    return _LevelTable(
        form=form,
        level=form_level(form, campaign) if _known(form, campaign) else form,
        titles=title_lines(form, campaign) if _known(form, campaign) else (form, "", ""),
        lines=tuple(lines),
        units=len({m.unit_code for m in mine}),
    )


def _known(form: str, campaign: Campaign) -> bool:
    try:
        form_level(form, campaign)
    except ValueError:
        return False
    return True


def _local(when: datetime, campaign: Campaign) -> datetime:
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(campaign.tz)


def _fmt(when: datetime, campaign: Campaign) -> str:
    return _local(when, campaign).strftime("%d/%m/%Y %H:%M")


def _status_cells(row: UnitStatusRow, forms: Sequence[str], campaign: Campaign) -> list[object]:
    cells: list[object] = [row.unit_code, row.unit_name, STATE_LABELS.get(row.state, row.state)]
    for code in forms:
        st = row.forms.get(code)
        if st is None:
            owed = not row.owed or code in row.owed
            cells.extend([NOT_RECEIVED if owed else NOT_OWED, None, None, None, None])
            continue
        problems = "\n".join(f"- {p}" for p in st.problems) or None
        if problems is None and st.errors:
            problems = f"{st.errors} lỗi"
        cells.extend(
            [
                _fmt(st.received_at, campaign),
                LATE if st.late else None,
                st.entries,
                problems,
                st.sender or None,
            ]
        )
    return cells


def _status_summary(statuses: Sequence[UnitStatusRow]) -> str:
    parts = []
    for state, label in STATE_LABELS.items():
        parts.append(f"{label}: {sum(1 for s in statuses if s.state == state)}")
    return f"Tổng số {len(statuses)} đơn vị — " + "; ".join(parts) + "."


def _deadline_line(campaign: Campaign) -> str:
    """'Hạn nộp: trước ngày 20/02/2022, hạn cuối: hết ngày 19/02/2022 (thứ Bảy)'."""
    return f"Hạn nộp: {campaign.deadline_text}, {campaign.deadline_words}"


def _generated_line(campaign: Campaign, generated_at: datetime) -> str:
    return f"Số liệu đến {_fmt(generated_at, campaign)}"


def _sheet_name(form: str, level: str) -> str:
    name = f"{form} - {level[:1].upper()}{level[1:]}" if level != form else form
    for bad in "[]:*?/\\":
        name = name.replace(bad, " ")
    return name[:31]


# --- xlsx ---------------------------------------------------------------------------------------


def _row_height(values: Sequence[object], widths: Sequence[float], size: int) -> float:
    """A printed row height (points) tall enough for the wrapped text of every cell."""
    lines = 1
    for value, width in zip(values, widths, strict=False):
        if value is None:
            continue
        per_line = max(1.0, width * 1.1 - 1)
        need = sum(max(1, math.ceil(len(part) / per_line)) for part in str(value).split("\n"))
        lines = max(lines, need)
    return round(lines * size * 1.3 + 4, 1)


def _write_level_sheet(
    ws: Worksheet, table: _LevelTable, campaign: Campaign, generated: str, issuer: str | None
) -> None:
    ncols = len(_LEVEL_WIDTHS)
    last = get_column_letter(ncols)
    for i, width in enumerate(_LEVEL_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    if issuer:
        put_text(ws, 1, 1, issuer, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("center"))
        ws.merge_cells("A1:C1")
    put_text(ws, 1, ncols, table.form, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("right"))
    put_text(ws, 2, 5, generated, font=xfont(TEXT_SIZE, italic=True), alignment=xalign("center"))
    ws.merge_cells(start_row=2, start_column=5, end_row=2, end_column=ncols)
    for offset, title in enumerate(table.titles):
        row = 4 + offset
        put_text(ws, row, 1, title, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("center"))
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=ncols)
        ws.row_dimensions[row].height = 19

    head = 8
    bold = xfont(bold=True)
    centre = xalign("center")
    lead = (HEADER_TT, HEADER_NAME, HEADER_UNIT)
    for col, text in enumerate(lead, start=1):
        put_text(ws, head, col, text, font=bold, alignment=centre)
        ws.merge_cells(start_row=head, start_column=col, end_row=head + 1, end_column=col)
    put_text(ws, head, _FIELD_COL0 + 1, HEADER_MODEL, font=bold, alignment=centre)
    ws.merge_cells(
        start_row=head,
        start_column=_FIELD_COL0 + 1,
        end_row=head,
        end_column=_FIELD_COL0 + len(FIELDS),
    )
    for j, key in enumerate(FIELDS):
        put_text(ws, head + 1, _FIELD_COL0 + 1 + j, FIELD_LABELS[key], font=bold, alignment=centre)
    put_text(ws, head, ncols, HEADER_NOTE, font=bold, alignment=centre)
    ws.merge_cells(start_row=head, start_column=ncols, end_row=head + 1, end_column=ncols)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = 36

    row = head + 2
    for line in table.lines:
        strong = line.role != "model"
        for col, value in enumerate(line.cells, start=1):
            cell = ws.cell(row=row, column=col)
            if isinstance(value, int):
                cell.value = value
            else:
                put_text(ws, row, col, value)
            cell.font = xfont(bold=strong)
            cell.alignment = centre if col == 1 or line.role == "total" else xalign(vertical="top")
        if line.role == "total":
            # The overall count sits in the note column, shown as "Cộng: N".
            ws.cell(row=row, column=ncols).number_format = '"Cộng: "0'
        ws.row_dimensions[row].height = _row_height(line.cells, _LEVEL_WIDTHS, TABLE_SIZE)
        row += 1
    total_row = row - 1
    box(ws, head, total_row, 1, ncols)

    foot = total_row + 2
    put_text(
        ws,
        foot,
        1,
        f"Tổng hợp từ {table.units} đơn vị có mô hình đăng ký {table.level}.",
        font=xfont(TEXT_SIZE, italic=True),
        alignment=xalign(wrap=False),
    )
    ws.freeze_panes = ws.cell(row=head + 2, column=3)
    print_setup(ws, f"{head}:{head + 1}", last, foot)


def _write_status_sheet(
    ws: Worksheet,
    statuses: Sequence[UnitStatusRow],
    forms: Sequence[str],
    campaign: Campaign,
    generated: str,
) -> None:
    widths = [w for _h, w, _c in _STATUS_LEAD_COLUMNS]
    for _code in forms:
        widths.extend(w for _h, w, _c in _STATUS_FORM_COLUMNS)
    ncols = len(widths)
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    title = f"TÌNH HÌNH NỘP BIỂU ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM {campaign.year}"
    put_text(ws, 1, 1, title, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("center"))
    ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=ncols)
    sub = f"{_deadline_line(campaign)} — {generated[:1].lower()}{generated[1:]}"
    put_text(ws, 2, 1, sub, font=xfont(TEXT_SIZE, italic=True), alignment=xalign("center"))
    ws.merge_cells(start_row=2, start_column=1, end_row=2, end_column=ncols)

    head = 4
    bold = xfont(bold=True)
    centre = xalign("center")
    for col, (text, _w, _c) in enumerate(_STATUS_LEAD_COLUMNS, start=1):
        put_text(ws, head, col, text, font=bold, alignment=centre)
        ws.merge_cells(start_row=head, start_column=col, end_row=head + 1, end_column=col)
    col = len(_STATUS_LEAD_COLUMNS) + 1
    for code in forms:
        put_text(ws, head, col, _form_heading(code, campaign), font=bold, alignment=centre)
        ws.merge_cells(
            start_row=head,
            start_column=col,
            end_row=head,
            end_column=col + len(_STATUS_FORM_COLUMNS) - 1,
        )
        for k, (text, _w, _c) in enumerate(_STATUS_FORM_COLUMNS):
            put_text(ws, head + 1, col + k, text, font=bold, alignment=centre)
        col += len(_STATUS_FORM_COLUMNS)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = 20

    row = head + 2
    for status in statuses:
        cells = _status_cells(status, forms, campaign)
        for c, value in enumerate(cells, start=1):
            cell = ws.cell(row=row, column=c)
            if isinstance(value, int):
                cell.value = value
            else:
                put_text(ws, row, c, value)
            cell.font = xfont()
            if widths[c - 1] >= 20:
                cell.alignment = xalign("left", vertical="top")
            else:
                cell.alignment = xalign("center")
        ws.row_dimensions[row].height = _row_height(cells, widths, TABLE_SIZE)
        row += 1
    last_row = max(row - 1, head + 1)
    box(ws, head, last_row, 1, ncols)
    foot = last_row + 2
    put_text(
        ws,
        foot,
        1,
        _status_summary(statuses),
        font=xfont(TEXT_SIZE, italic=True),
        alignment=xalign(wrap=False),
    )
    ws.freeze_panes = ws.cell(row=head + 2, column=3)
    print_setup(ws, f"{head}:{head + 1}", get_column_letter(ncols), foot)


def _form_heading(code: str, campaign: Campaign) -> str:
    for spec in campaign.forms:
        if spec.code == code:
            label = f"{spec.title}, {spec.level}" if spec.title else spec.level
            return f"{code} ({label})"
    return code


def write_consolidated_xlsx(
    models: list[ExportModel],
    statuses: list[UnitStatusRow],
    campaign: Campaign,
    generated_at: datetime,
    *,
    issuer: str | None = None,
) -> bytes:
    """The consolidated workbook: one sheet per level in the official layout, then the status sheet.

    `generated_at` (aware, or naive UTC) is printed on every sheet and used as the file's
    created/modified time, so the same input always gives the same bytes. `issuer` (for example
    "BAN DÂN VẬN QUẬN ỦY") goes top-left where the form has TÊN ĐƠN VỊ.
    """
    wb = Workbook()
    wb.remove(wb.active)
    generated = _generated_line(campaign, generated_at)
    forms = _forms_to_show(models, campaign)
    for form in forms:
        table = _level_table(form, models, statuses, campaign)
        ws = wb.create_sheet(_sheet_name(form, table.level))
        _write_level_sheet(ws, table, campaign, generated, issuer)
    status_forms = [f for f in forms if _known(f, campaign) or any(f in s.forms for s in statuses)]
    _write_status_sheet(wb.create_sheet(STATUS_SHEET), statuses, status_forms, campaign, generated)
    return workbook_bytes(wb, generated_at, f"Tổng hợp mô hình “Dân vận khéo” năm {campaign.year}")


# --- docx ---------------------------------------------------------------------------------------


def write_consolidated_docx(
    models: list[ExportModel],
    statuses: list[UnitStatusRow],
    campaign: Campaign,
    generated_at: datetime,
    *,
    issuer: str | None = None,
) -> bytes:
    """The same tables as write_consolidated_xlsx, as a Word document (A4 landscape)."""
    doc = new_document()
    width = usable_width_cm(doc)
    generated = _generated_line(campaign, generated_at)
    forms = _forms_to_show(models, campaign)
    first = True
    for form in forms:
        table = _level_table(form, models, statuses, campaign)
        if not first:
            doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        first = False
        _docx_letterhead(doc, issuer, table.form, generated, width)
        write_par(doc, "")
        for line in table.titles:
            write_par(doc, line, bold=True, align="center")
        write_par(doc, "")
        _docx_level_table(doc, table)
        write_par(doc, "")
        write_par(
            doc, f"Tổng hợp từ {table.units} đơn vị có mô hình đăng ký {table.level}.", italic=True
        )

    doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
    status_forms = [f for f in forms if _known(f, campaign) or any(f in s.forms for s in statuses)]
    write_par(
        doc,
        f"TÌNH HÌNH NỘP BIỂU ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM {campaign.year}",
        bold=True,
        align="center",
    )
    write_par(
        doc,
        f"{_deadline_line(campaign)} — {generated[:1].lower()}{generated[1:]}",
        italic=True,
        align="center",
    )
    write_par(doc, "")
    _docx_status_table(doc, statuses, status_forms, campaign)
    write_par(doc, "")
    write_par(doc, _status_summary(statuses), italic=True)
    return document_bytes(doc, generated_at, f"Tổng hợp mô hình “Dân vận khéo” năm {campaign.year}")


def _docx_letterhead(
    doc: DocxDocument, issuer: str | None, form: str, generated: str, width: float
) -> None:
    head = doc.add_table(rows=2, cols=2)
    no_borders(head)
    fill_cell(head.cell(0, 0), issuer or "", bold=True, size=TEXT_SIZE, align="center")
    fill_cell(head.cell(0, 1), form, bold=True, size=TEXT_SIZE, align="right")
    fill_cell(head.cell(1, 1), generated, italic=True, size=TEXT_SIZE, align="center")
    fix_widths(head, (width * 0.45, width * 0.55))


def _docx_level_table(doc: DocxDocument, table: _LevelTable) -> None:
    t = doc.add_table(rows=2 + len(table.lines), cols=len(_LEVEL_DOCX_CM))
    t.style = doc.styles["Table Grid"]
    docx_form_header(t, (HEADER_TT, HEADER_NAME, HEADER_UNIT), (HEADER_NOTE,))
    for i, line in enumerate(table.lines, start=2):
        strong = line.role != "model"
        cells = list(line.cells)
        if line.role == "total":
            cells[-1] = f"Cộng: {cells[-1]}"
        for j, value in enumerate(cells):
            align = "center" if j == 0 or line.role == "total" else "left"
            fill_cell(t.cell(i, j), "" if value is None else str(value), bold=strong, align=align)
    fix_widths(t, _LEVEL_DOCX_CM)
    repeat_header(t, 2)


def _docx_status_table(
    doc: DocxDocument, statuses: Sequence[UnitStatusRow], forms: Sequence[str], campaign: Campaign
) -> None:
    lead, per = len(_STATUS_LEAD_COLUMNS), len(_STATUS_FORM_COLUMNS)
    widths = [c for _h, _w, c in _STATUS_LEAD_COLUMNS]
    for _code in forms:
        widths.extend(c for _h, _w, c in _STATUS_FORM_COLUMNS)
    scale = min(1.0, usable_width_cm(doc) / sum(widths))
    widths = [w * scale for w in widths]
    size = 10
    t = doc.add_table(rows=2 + len(statuses), cols=len(widths))
    t.style = doc.styles["Table Grid"]
    for col, (text, _w, _c) in enumerate(_STATUS_LEAD_COLUMNS):
        fill_cell(t.cell(0, col).merge(t.cell(1, col)), text, bold=True, size=size, align="center")
    for n, code in enumerate(forms):
        start = lead + n * per
        top = t.cell(0, start).merge(t.cell(0, start + per - 1))
        fill_cell(top, _form_heading(code, campaign), bold=True, size=size, align="center")
        for k, (text, _w, _c) in enumerate(_STATUS_FORM_COLUMNS):
            fill_cell(t.cell(1, start + k), text, bold=True, size=size, align="center")
    for i, status in enumerate(statuses, start=2):
        for j, value in enumerate(_status_cells(status, forms, campaign)):
            text = "" if value is None else clean_text(value)
            fill_cell(t.cell(i, j), text, size=size, align="left" if widths[j] >= 2 else "center")
    fix_widths(t, widths)
    repeat_header(t, 2)


# --------------------------------------------------------------------------- from the database


def export_data(
    session: Session,
    campaign: Campaign,
    now: datetime | None = None,
    states: list[UnitState] | None = None,
) -> tuple[list[ExportModel], list[UnitStatusRow]]:
    """The consolidated workbook's rows: models of each unit's counting forms, status rows."""
    states = states if states is not None else unit_states(session, campaign, now)
    models: list[ExportModel] = []
    rows: list[UnitStatusRow] = []
    for unit in states:
        forms: dict[str, FormStatus | None] = {}
        for code, f in unit.forms.items():
            if not f.received or f.received_at is None:
                forms[code] = None
                continue
            problems = list(f.problems)
            if f.status == FORM_OK and f.declared_empty:
                problems.insert(0, "Không đăng ký mô hình")
            forms[code] = FormStatus(
                received_at=f.received_at,
                late=f.late,
                entries=f.entries,
                errors=f.errors,
                problems=problems,
                sender=f.sender or "",
            )
            if f.status != FORM_OK or f.submission_id is None:
                continue
            sub = dbm.get_submission(session, f.submission_id)
            if sub is None:
                continue
            for e in sub.entries:
                try:
                    models.append(
                        ExportModel(
                            unit_code=unit.code,
                            unit_name=unit.name,
                            form=code,
                            kind=e.kind,
                            field=e.field,
                            no=e.no,
                            name=e.name,
                            model=e.model,
                            note=e.note,
                        )
                    )
                except ValueError:
                    log.warning("entry %s of submission %s not exportable", e.id, sub.id)
        rows.append(UnitStatusRow(unit.code, unit.name, unit.state, forms, unit.owed))
    return models, rows


def consolidated_xlsx(
    session: Session,
    campaign: Campaign,
    now: datetime,
    *,
    issuer: str | None = None,
    states: list[UnitState] | None = None,
) -> bytes:
    """The consolidated workbook (xlsx bytes) as the database stands at `now`."""
    models, rows = export_data(session, campaign, now, states)
    return write_consolidated_xlsx(models, rows, campaign, now, issuer=issuer)


def consolidated_docx(
    session: Session, campaign: Campaign, now: datetime, *, issuer: str | None = None
) -> bytes:
    """The same tables as a Word document."""
    models, rows = export_data(session, campaign, now)
    return write_consolidated_docx(models, rows, campaign, now, issuer=issuer)


def issuer_of(config: Config) -> str:
    """The office named top-left on the consolidated sheets."""
    return config.outgoing.from_name.upper()


def export_file_name(campaign: Campaign, now: datetime, suffix: str = "xlsx") -> str:
    """'Tổng hợp Dân vận khéo 2022 - 14-02-2022.xlsx'."""
    day = _local(now, campaign).strftime("%d-%m-%Y")
    return f"Tổng hợp Dân vận khéo {campaign.year} - {day}.{suffix}"
