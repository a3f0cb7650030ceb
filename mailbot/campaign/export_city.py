"""The city's workbook: every district's figures and models, each read from its own store."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from docx.enum.text import WD_BREAK
from openpyxl import Workbook
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet
from sqlalchemy.orm import Session

from mailbot.campaign.export import export_data
from mailbot.campaign.export_model import ExportModel, UnitStatusRow
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
    document_bytes,
    fill_cell,
    fix_widths,
    form_level,
    new_document,
    print_setup,
    put_text,
    repeat_header,
    usable_width_cm,
    workbook_bytes,
    write_par,
    xalign,
    xfont,
)
from mailbot.glossary import UNIT_STATE_LABELS
from parsers.model import FIELDS
from rules.campaign import Campaign

SUMMARY_SHEET = "Tổng hợp các quận, huyện"
HEADER_DISTRICT = "Quận, huyện"
HEADER_UNIT = "Đơn vị"
HEADER_FIELD = "Lĩnh vực"
HEADER_KIND = "Tập thể, cá nhân"
HEADER_UNITS = "Số đơn vị"
HEADER_MODELS = "Số mô hình"
SUM_LABEL = "Cộng"
KIND_LABELS = {kind: label for _roman, label, kind in SECTIONS}
STATES = tuple(UNIT_STATE_LABELS)


@dataclass(frozen=True)
class DistrictData:
    """One district's share of the city's workbook, read from its mailbox's store."""

    mailbox: str  # the [[mailbox]] name
    district: str  # as people write it: "Ba Đình"
    campaign: Campaign
    models: tuple[ExportModel, ...]
    statuses: tuple[UnitStatusRow, ...]

    def state_count(self, state: str) -> int:
        """How many of the district's units are in `state` (complete, partial, …)."""
        return sum(1 for s in self.statuses if s.state == state)

    def model_count(self, form: str, field: str | None = None) -> int:
        """The district's models on `form`, in one field or in all of them."""
        return sum(1 for m in self.models if m.form == form and field in (None, m.field))


def district_data(
    session: Session, mailbox: str, district: str, campaign: Campaign, now: datetime
) -> DistrictData:
    """A district's counting models and unit states as its store stands at `now`."""
    models, statuses = export_data(session, campaign, now)
    return DistrictData(mailbox, district, campaign, tuple(models), tuple(statuses))


def city_forms(districts: Sequence[DistrictData]) -> list[str]:
    """The forms of every district's campaign, in the first campaign's order."""
    order: list[str] = []
    for d in districts:
        for code in [spec.code for spec in d.campaign.forms] + [m.form for m in d.models]:
            if code not in order:
                order.append(code)
    return order


def _level(form: str, campaign: Campaign) -> str:
    try:
        return form_level(form, campaign)
    except ValueError:
        return form


def _form_heading(form: str, campaign: Campaign) -> str:
    level = _level(form, campaign)
    return f"{form} ({level})" if level != form else form


def summary_rows(districts: Sequence[DistrictData], forms: Sequence[str]) -> list[list[object]]:
    """One row per district then the TỔNG row: units by state, models by form and field."""
    rows: list[list[object]] = []
    sums: list[int] = []
    for number, d in enumerate(districts, start=1):
        figures = [len(d.statuses)] + [d.state_count(s) for s in STATES]
        for form in forms:
            figures += [d.model_count(form, f) for f in FIELDS] + [d.model_count(form)]
        sums = [a + b for a, b in zip(sums, figures, strict=True)] if sums else list(figures)
        rows.append([number, d.district, *figures])
    rows.append([None, TOTAL_LABEL, *sums])
    return rows


def model_rows(districts: Sequence[DistrictData], form: str) -> list[tuple[str, list[object]]]:
    """The models of `form`: a heading row per district, then its models numbered within it."""
    rows: list[tuple[str, list[object]]] = []
    for d in districts:
        mine = [m for m in d.models if m.form == form]
        kinds = {kind: i for i, kind in enumerate(KIND_LABELS)}
        mine.sort(key=lambda m: kinds.get(m.kind, len(kinds)))
        heading = f"{d.district} ({len(mine)} mô hình)"
        rows.append(("district", [None, heading]))
        for number, m in enumerate(mine, start=1):
            rows.append(
                (
                    "model",
                    [
                        number,
                        d.district,
                        m.unit_name or m.unit_code,
                        KIND_LABELS.get(m.kind, m.kind),
                        m.name,
                        FIELD_LABELS.get(m.field, m.field),
                        m.model,
                        m.note,
                    ],
                )
            )
    return rows


_MODEL_HEADERS = (
    HEADER_TT,
    HEADER_DISTRICT,
    HEADER_UNIT,
    HEADER_KIND,
    HEADER_NAME,
    HEADER_FIELD,
    HEADER_MODEL,
    HEADER_NOTE,
)
_MODEL_WIDTHS = (6, 16, 28, 10, 26, 22, 44, 14)
_MODEL_DOCX_CM = (1.0, 2.4, 4.2, 1.8, 3.8, 3.2, 8.4, 1.9)  # 26.7 cm


def _generated(campaign: Campaign, now: datetime) -> str:
    when = now if now.tzinfo else now.replace(tzinfo=UTC)
    return f"Số liệu đến {when.astimezone(campaign.tz).strftime('%d/%m/%Y %H:%M')}"


def _title(campaign: Campaign) -> str:
    return f"TỔNG HỢP MÔ HÌNH “DÂN VẬN KHÉO” NĂM {campaign.year} TOÀN THÀNH PHỐ"


def _doc_title(campaign: Campaign) -> str:
    return f"Tổng hợp mô hình “Dân vận khéo” năm {campaign.year} toàn thành phố"


def _summary_headers(forms: Sequence[str], campaign: Campaign) -> tuple[list[str], list[str]]:
    """The two header rows of the summary table (the first one spans the groups)."""
    lead = [HEADER_TT, HEADER_DISTRICT, HEADER_UNITS]
    top = lead + [UNIT_STATE_LABELS[s] for s in STATES]
    low = [""] * len(top)
    for form in forms:
        group = [f"{HEADER_MODELS} {_form_heading(form, campaign)}"] + [""] * len(FIELDS)
        top += group
        low += [FIELD_LABELS[f] for f in FIELDS] + [SUM_LABEL]
    return top, low


def city_xlsx(districts: Sequence[DistrictData], campaign: Campaign, now: datetime) -> bytes:
    """The city's workbook: the summary sheet, then one sheet of models per form."""
    wb = Workbook()
    wb.remove(wb.active)
    forms = city_forms(districts)
    generated = _generated(campaign, now)
    _write_summary(wb.create_sheet(SUMMARY_SHEET), districts, forms, campaign, generated)
    for form in forms:
        name = f"{form} - {_level(form, campaign)}"
        for bad in "[]:*?/\\":
            name = name.replace(bad, " ")
        _write_models(wb.create_sheet(name[:31]), districts, form, campaign, generated)
    return workbook_bytes(wb, now, _doc_title(campaign))


def _title_rows(ws: Worksheet, lines: Sequence[str], width: int) -> int:
    for row, text in enumerate(lines, start=1):
        put_text(ws, row, 1, text, font=xfont(TEXT_SIZE, bold=row == 1, italic=row > 1))
        ws.cell(row=row, column=1).alignment = xalign("center")
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
    return len(lines) + 2


def _write_summary(
    ws: Worksheet,
    districts: Sequence[DistrictData],
    forms: Sequence[str],
    campaign: Campaign,
    generated: str,
) -> None:
    top, low = _summary_headers(forms, campaign)
    width = len(top)
    lines = (_title(campaign), "Tình hình nộp biểu của các quận, huyện", generated)
    first = _title_rows(ws, lines, width)
    lead = width - len(forms) * (len(FIELDS) + 1)  # columns with one header over two rows
    for col, (upper, lower) in enumerate(zip(top, low, strict=True), start=1):
        for row, text in ((first, upper), (first + 1, lower)):
            if text:
                put_text(ws, row, col, text, font=xfont(bold=True), alignment=xalign("center"))
        if col <= lead:
            ws.merge_cells(start_row=first, start_column=col, end_row=first + 1, end_column=col)
    for c in range(lead + 1, width + 1, len(FIELDS) + 1):
        ws.merge_cells(start_row=first, start_column=c, end_row=first, end_column=c + len(FIELDS))
    row = first + 2
    for values in summary_rows(districts, forms):
        strong = values[1] == TOTAL_LABEL
        for col, value in enumerate(values, start=1):
            cell = ws.cell(row=row, column=col)
            if isinstance(value, int):
                cell.value = value
            else:
                put_text(ws, row, col, value)
            cell.font = xfont(bold=strong)
            cell.alignment = xalign("left" if col == 2 else "center")
        row += 1
    box(ws, first, row - 1, 1, width)
    ws.column_dimensions["A"].width = 6
    ws.column_dimensions["B"].width = 22
    for col in range(3, width + 1):
        ws.column_dimensions[get_column_letter(col)].width = 12
    ws.freeze_panes = ws.cell(row=first + 2, column=3)
    print_setup(ws, f"{first}:{first + 1}", get_column_letter(width), row - 1)


def _write_models(
    ws: Worksheet,
    districts: Sequence[DistrictData],
    form: str,
    campaign: Campaign,
    generated: str,
) -> None:
    width = len(_MODEL_HEADERS)
    level = _level(form, campaign)
    title = f"MÔ HÌNH “DÂN VẬN KHÉO” {level.upper()} NĂM {campaign.year} CỦA CÁC QUẬN, HUYỆN"
    first = _title_rows(ws, (title, _form_heading(form, campaign), generated), width)
    for col, text in enumerate(_MODEL_HEADERS, start=1):
        put_text(ws, first, col, text, font=xfont(bold=True), alignment=xalign("center"))
    row = first + 1
    for role, values in model_rows(districts, form):
        if role == "district":
            put_text(ws, row, 1, values[1], font=xfont(bold=True), alignment=xalign("left"))
            ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=width)
        else:
            for col, value in enumerate(values, start=1):
                if isinstance(value, int):
                    ws.cell(row=row, column=col, value=value)
                else:
                    put_text(ws, row, col, value)
                ws.cell(row=row, column=col).font = xfont()
                ws.cell(row=row, column=col).alignment = xalign("center" if col == 1 else "left")
        row += 1
    box(ws, first, row - 1, 1, width)
    for col, w in enumerate(_MODEL_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(col)].width = w
    ws.freeze_panes = ws.cell(row=first + 1, column=1)
    ws.auto_filter.ref = f"A{first}:{get_column_letter(width)}{row - 1}"
    print_setup(ws, f"{first}:{first}", get_column_letter(width), row - 1)


def city_docx(districts: Sequence[DistrictData], campaign: Campaign, now: datetime) -> bytes:
    """The same tables as a Word document: the summary, then the models of each form."""
    doc = new_document()
    forms = city_forms(districts)
    generated = _generated(campaign, now)
    write_par(doc, _title(campaign), bold=True, align="center")
    write_par(doc, generated, italic=True, align="center")
    write_par(doc, "")
    top, low = _summary_headers(forms, campaign)
    rows = summary_rows(districts, forms)
    t = doc.add_table(rows=2 + len(rows), cols=len(top))
    t.style = doc.styles["Table Grid"]
    for col, (upper, lower) in enumerate(zip(top, low, strict=True)):
        fill_cell(t.cell(0, col), upper, bold=True, size=TABLE_SIZE - 2, align="center")
        fill_cell(t.cell(1, col), lower, bold=True, size=TABLE_SIZE - 2, align="center")
    for i, values in enumerate(rows, start=2):
        for col, value in enumerate(values):
            text = "" if value is None else str(value)
            fill_cell(t.cell(i, col), text, bold=values[1] == TOTAL_LABEL, size=TABLE_SIZE - 2)
    width = usable_width_cm(doc)
    fix_widths(t, [1.0, 3.2] + [(width - 4.2) / (len(top) - 2)] * (len(top) - 2))
    repeat_header(t, 2)
    for form in forms:
        doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)
        level = _level(form, campaign)
        write_par(
            doc,
            f"MÔ HÌNH “DÂN VẬN KHÉO” {level.upper()} NĂM {campaign.year} CỦA CÁC QUẬN, HUYỆN",
            bold=True,
            align="center",
        )
        write_par(doc, _form_heading(form, campaign), italic=True, align="center")
        write_par(doc, "")
        lines = model_rows(districts, form)
        m = doc.add_table(rows=1 + len(lines), cols=len(_MODEL_HEADERS))
        m.style = doc.styles["Table Grid"]
        for col, text in enumerate(_MODEL_HEADERS):
            fill_cell(m.cell(0, col), text, bold=True, align="center")
        for i, (role, values) in enumerate(lines, start=1):
            if role == "district":
                merged = m.cell(i, 0).merge(m.cell(i, len(_MODEL_HEADERS) - 1))
                fill_cell(merged, str(values[1]), bold=True)
                continue
            for col, value in enumerate(values):
                fill_cell(m.cell(i, col), "" if value is None else str(value))
        fix_widths(m, _MODEL_DOCX_CM)
        repeat_header(m, 1)
    write_par(doc, "")
    write_par(doc, f"Tổng hợp từ {len(districts)} quận, huyện.", italic=True, size=TEXT_SIZE)
    return document_bytes(doc, now, _doc_title(campaign))
