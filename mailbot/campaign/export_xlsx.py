"""The consolidated workbook the board signs, as xlsx: letterhead, tables, signature, summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from mailbot.campaign.export_model import (
    INTERNAL_FORM_COLUMNS,
    INTERNAL_LEAD_COLUMNS,
    MODELS_WORD,
    STATUS_FORM_COLUMNS,
    STATUS_LEAD_COLUMNS,
    SUMMARY_PER_FORM,
    ExportModel,
    LevelTable,
    Line,
    Summary,
    UnitStatusRow,
    data_line,
    date_line,
    deadline_line,
    form_title,
    forms_to_show,
    internal_cells,
    known_form,
    level_sheet_name,
    level_table,
    ordered_units,
    status_lines,
    status_summary,
    summary,
    summary_paragraphs,
)
from mailbot.campaign.forms import (
    FIELD_LABELS,
    FONT_NAME,
    HEADER_MODEL,
    HEADER_NAME,
    HEADER_NOTE,
    HEADER_TT,
    TABLE_SIZE,
    TEXT_SIZE,
    box,
    print_setup,
    put_text,
    workbook_bytes,
    xalign,
    xfont,
)
from mailbot.config import BoardConfig
from parsers.model import FIELDS
from rules.campaign import Campaign

SUMMARY_SHEET = "Tổng hợp chung"
STATUS_SHEET = "Tình hình gửi biểu"
INTERNAL_SHEET = "Nội bộ - có mã và địa chỉ"
# Level sheet columns, the form's: TT | name | four fields | note
LEVEL_WIDTHS = (7, 30, 28, 28, 28, 28, 16)
# The count in the note column of subtotal and TỔNG rows: "5 mô hình".
_COUNT_FORMAT = f'0 "{MODELS_WORD}"'


def _row_height(values: Sequence[object], widths: Sequence[float], size: int) -> float:
    """A printed row height (points) tall enough for the wrapped text of every cell."""
    lines = 1
    for value, width in zip(values, widths, strict=False):
        if value is None:
            continue
        # Characters per line: about 1.2 per width unit at 11 pt, fewer as the font grows.
        per_line = max(1.0, width * 1.2 * 11 / size - 2)
        need = sum(max(1, math.ceil(len(part) / per_line)) for part in str(value).split("\n"))
        lines = max(lines, need)
    return round(lines * size * 1.3 + 4, 1)


def _split(ncols: int) -> int:
    """The last column of the left block (letterhead, Nơi nhận): about 40% of the page."""
    return max(1, round(ncols * 0.4))


def _across(ws: Worksheet, row: int, first: int, last: int, text: object, **style: object) -> None:
    put_text(ws, row, first, text, **style)
    if last > first:
        ws.merge_cells(start_row=row, start_column=first, end_row=row, end_column=last)


def _letterhead(ws: Worksheet, board: BoardConfig, dated: str, ncols: int) -> int:
    """QUẬN ỦY … / BAN … / * on the left, the party and the date on the right; next row."""
    left = _split(ncols)
    centre = xalign("center", wrap=False)
    _across(ws, 1, 1, left, board.superior, font=xfont(TEXT_SIZE), alignment=centre)
    _across(ws, 2, 1, left, board.name, font=xfont(TEXT_SIZE, bold=True), alignment=centre)
    _across(ws, 3, 1, left, "*", font=xfont(TEXT_SIZE), alignment=centre)
    party = Font(name=FONT_NAME, size=TEXT_SIZE, bold=True, underline="single")
    _across(ws, 1, left + 1, ncols, board.party, font=party, alignment=centre)
    italic = xfont(TEXT_SIZE, italic=True)
    _across(ws, 3, left + 1, ncols, dated, font=italic, alignment=centre)
    for row in (1, 2, 3):
        ws.row_dimensions[row].height = 18
    return 5


def _titles(ws: Worksheet, row: int, titles: Sequence[str], note: str, ncols: int) -> int:
    for text in titles:
        _across(
            ws,
            row,
            1,
            ncols,
            text,
            font=xfont(TEXT_SIZE + 1, bold=True),
            alignment=xalign("center"),
        )
        ws.row_dimensions[row].height = 20
        row += 1
    _across(ws, row, 1, ncols, note, font=xfont(TEXT_SIZE, italic=True), alignment=xalign("center"))
    return row + 2


def _signature(
    ws: Worksheet, row: int, board: BoardConfig, ncols: int, note_font: int = TEXT_SIZE - 1
) -> int:
    """Nơi nhận on the left, T/M … / TRƯỞNG BAN / (space) / name on the right; last row."""
    left = _split(ncols)
    bold_centre = xfont(TEXT_SIZE, bold=True)
    centre = xalign("center", wrap=False)
    put_text(
        ws,
        row,
        1,
        "Nơi nhận:",
        font=xfont(note_font, bold=True, italic=True),
        alignment=xalign(wrap=False),
    )
    for i, text in enumerate(board.recipients_note, start=1):
        put_text(
            ws, row + i, 1, f"- {text}", font=xfont(note_font - 1), alignment=xalign(wrap=False)
        )
    _across(ws, row, left + 1, ncols, board.sign_on_behalf, font=bold_centre, alignment=centre)
    _across(ws, row + 1, left + 1, ncols, board.sign_title, font=bold_centre, alignment=centre)
    name_row = row + 6
    if board.sign_name:
        _across(ws, name_row, left + 1, ncols, board.sign_name, font=bold_centre, alignment=centre)
    return max(name_row, row + len(board.recipients_note))


def _note(ws: Worksheet, row: int, text: str, widths: Sequence[float]) -> None:
    _across(
        ws,
        row,
        1,
        len(widths),
        text,
        font=xfont(TEXT_SIZE, italic=True),
        alignment=xalign(vertical="top"),
    )
    ws.row_dimensions[row].height = _row_height([text], [sum(widths)], TEXT_SIZE)


def _set_widths(ws: Worksheet, widths: Sequence[float]) -> None:
    for i, width in enumerate(widths, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width


def _write_line(
    ws: Worksheet, row: int, line: Line, widths: Sequence[float], counts_from: int
) -> None:
    """One body row; group and unit headings span the row, numbers from `counts_from` on."""
    ncols = len(widths)
    centre = xalign("center")
    if line.role in ("group", "unit", "kind"):
        number, text = line.cells[0], line.cells[1]
        put_text(ws, row, 1, number, font=xfont(bold=line.role != "kind"), alignment=centre)
        font = xfont(bold=line.role != "kind", italic=line.role == "kind")
        _across(ws, row, 2, ncols, text, font=font, alignment=xalign(vertical="center"))
        ws.row_dimensions[row].height = _row_height([text], [sum(widths[1:])], TABLE_SIZE)
        return
    strong = line.role in ("subtotal", "total")
    for col, value in enumerate(line.cells, start=1):
        cell = ws.cell(row=row, column=col)
        if isinstance(value, int):
            cell.value = value
            cell.alignment = centre
        else:
            put_text(ws, row, col, value)
            if strong:
                cell.alignment = centre
            else:
                cell.alignment = xalign("center" if col == 1 else "left", vertical="top")
        cell.font = xfont(bold=strong)
    if strong:
        ws.cell(row=row, column=counts_from + len(FIELDS)).number_format = _COUNT_FORMAT
    ws.row_dimensions[row].height = _row_height(line.cells, widths, TABLE_SIZE)


def _write_level_sheet(
    ws: Worksheet, table: LevelTable, board: BoardConfig, dated: str, data: str
) -> None:
    widths = LEVEL_WIDTHS
    ncols = len(widths)
    _set_widths(ws, widths)
    row = _letterhead(ws, board, dated, ncols)
    row = _titles(ws, row, table.titles, data, ncols)
    head = row
    bold, centre = xfont(bold=True), xalign("center")
    for col, text in ((1, HEADER_TT), (2, HEADER_NAME), (ncols, HEADER_NOTE)):
        put_text(ws, head, col, text, font=bold, alignment=centre)
        ws.merge_cells(start_row=head, start_column=col, end_row=head + 1, end_column=col)
    _across(ws, head, 3, 2 + len(FIELDS), HEADER_MODEL, font=bold, alignment=centre)
    for j, key in enumerate(FIELDS):
        put_text(ws, head + 1, 3 + j, FIELD_LABELS[key], font=bold, alignment=centre)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = 36
    row = head + 2
    for line in table.lines:
        _write_line(ws, row, line, widths, 3)
        row += 1
    box(ws, head, row - 1, 1, ncols)
    _note(ws, row + 1, table.note, widths)
    last = _signature(ws, row + 3, board, ncols)
    ws.freeze_panes = ws.cell(row=head + 2, column=1)
    print_setup(ws, f"{head}:{head + 1}", get_column_letter(ncols), last)


def _write_summary_sheet(
    ws: Worksheet, s: Summary, board: BoardConfig, dated: str, data: str, year: int
) -> None:
    per = len(SUMMARY_PER_FORM)
    widths: list[float] = [5, 34]
    for _f in s.forms:
        widths.extend([9, 9, 9, 10, 8, 8, 8])
    widths.append(9)
    ncols = len(widths)
    _set_widths(ws, widths)
    row = _letterhead(ws, board, dated, ncols)
    titles = (
        "TỔNG HỢP MÔ HÌNH, ĐIỂN HÌNH ĐĂNG KÝ",
        f"THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM {year}",
    )
    row = _titles(ws, row, titles, data, ncols)
    head = row
    bold, centre = xfont(bold=True), xalign("center")
    for col, text in ((1, HEADER_TT), (2, "Đơn vị"), (ncols, "Tổng số mô hình")):
        put_text(ws, head, col, text, font=bold, alignment=centre)
        ws.merge_cells(start_row=head, start_column=col, end_row=head + 1, end_column=col)
    for n, heading in enumerate(s.headings):
        first = 3 + n * per
        _across(ws, head, first, first + per - 1, heading, font=bold, alignment=centre)
        for k, text in enumerate(SUMMARY_PER_FORM):
            put_text(ws, head + 1, first + k, text, font=bold, alignment=centre)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = _row_height(SUMMARY_PER_FORM, widths[2:], TABLE_SIZE)
    row = head + 2
    for line in s.lines:
        if line.role == "group":
            _write_line(ws, row, line, widths, 3)
        else:
            strong = line.role == "total"
            for col, value in enumerate(line.cells, start=1):
                cell = ws.cell(row=row, column=col)
                if isinstance(value, int):
                    cell.value = value
                else:
                    put_text(ws, row, col, value)
                cell.font = xfont(bold=strong or col == ncols)
                cell.alignment = xalign("left" if col == 2 and not strong else "center")
            ws.row_dimensions[row].height = _row_height(line.cells[:2], widths[:2], TABLE_SIZE)
        row += 1
    box(ws, head, row - 1, 1, ncols)
    row += 1
    for heading, items in summary_paragraphs(s):
        bold = xfont(TEXT_SIZE, bold=True)
        put_text(ws, row, 1, heading, font=bold, alignment=xalign(wrap=False))
        row += 1
        for item in items:
            style = xalign(vertical="top")
            _across(ws, row, 1, ncols, item, font=xfont(TEXT_SIZE), alignment=style)
            ws.row_dimensions[row].height = _row_height([item], [sum(widths)], TEXT_SIZE)
            row += 1
    last = _signature(ws, row + 1, board, ncols)
    ws.freeze_panes = ws.cell(row=head + 2, column=1)
    print_setup(ws, f"{head}:{head + 1}", get_column_letter(ncols), last)


def _status_header(
    ws: Worksheet, head: int, lead: Sequence[str], per_form: Sequence[str], headings: Sequence[str]
) -> None:
    bold, centre = xfont(bold=True), xalign("center")
    for col, text in enumerate(lead, start=1):
        put_text(ws, head, col, text, font=bold, alignment=centre)
        ws.merge_cells(start_row=head, start_column=col, end_row=head + 1, end_column=col)
    col = len(lead) + 1
    for heading in headings:
        _across(ws, head, col, col + len(per_form) - 1, heading, font=bold, alignment=centre)
        for k, text in enumerate(per_form):
            put_text(ws, head + 1, col + k, text, font=bold, alignment=centre)
        col += len(per_form)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = 20


def _write_status_sheet(
    ws: Worksheet,
    statuses: Sequence[UnitStatusRow],
    forms: Sequence[str],
    campaign: Campaign,
    board: BoardConfig,
    dated: str,
    data: str,
) -> None:
    widths: list[float] = [w for _h, w, _c in STATUS_LEAD_COLUMNS]
    for _code in forms:
        widths.extend(w for _h, w, _c in STATUS_FORM_COLUMNS)
    ncols = len(widths)
    _set_widths(ws, widths)
    row = _letterhead(ws, board, dated, ncols)
    titles = (f"TÌNH HÌNH GỬI BIỂU ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM {campaign.year}",)
    row = _titles(ws, row, titles, f"{deadline_line(campaign)}. {data}", ncols)
    head = row
    _status_header(
        ws,
        head,
        [h for h, _w, _c in STATUS_LEAD_COLUMNS],
        [h for h, _w, _c in STATUS_FORM_COLUMNS],
        [form_title(f, campaign) for f in forms],
    )
    row = head + 2
    for line in status_lines(statuses, forms, campaign):
        if line.role == "group":
            _write_line(ws, row, line, widths, 4)
        else:
            for col, value in enumerate(line.cells, start=1):
                cell = ws.cell(row=row, column=col)
                if isinstance(value, int):
                    cell.value = value
                else:
                    put_text(ws, row, col, value)
                cell.font = xfont()
                wide = widths[col - 1] >= 20
                cell.alignment = xalign("left" if wide else "center", vertical="center")
            ws.row_dimensions[row].height = _row_height(line.cells, widths, TABLE_SIZE)
        row += 1
    last = max(row - 1, head + 1)
    box(ws, head, last, 1, ncols)
    _note(ws, last + 2, status_summary(statuses), widths)
    ws.freeze_panes = ws.cell(row=head + 2, column=1)
    print_setup(ws, f"{head}:{head + 1}", get_column_letter(ncols), last + 2)


def _write_internal_sheet(
    ws: Worksheet,
    statuses: Sequence[UnitStatusRow],
    forms: Sequence[str],
    campaign: Campaign,
    data: str,
) -> None:
    """Codes and addresses for staff: not for printing or sending."""
    widths: list[float] = [w for _h, w in INTERNAL_LEAD_COLUMNS]
    for _code in forms:
        widths.extend(w for _h, w in INTERNAL_FORM_COLUMNS)
    ncols = len(widths)
    _set_widths(ws, widths)
    title = (
        f"NỘI BỘ — TÌNH HÌNH GỬI BIỂU NĂM {campaign.year}, "
        "CÓ MÃ ĐƠN VỊ VÀ ĐỊA CHỈ THƯ (KHÔNG GỬI RA NGOÀI)"
    )
    _across(ws, 1, 1, ncols, title, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("center"))
    _across(ws, 2, 1, ncols, data, font=xfont(TEXT_SIZE, italic=True), alignment=xalign("center"))
    head = 4
    _status_header(
        ws,
        head,
        [h for h, _w in INTERNAL_LEAD_COLUMNS],
        [h for h, _w in INTERNAL_FORM_COLUMNS],
        [form_title(f, campaign) for f in forms],
    )
    by_code = {s.unit_code: s for s in statuses}
    row = head + 2
    for ref in ordered_units(statuses):
        cells = internal_cells(by_code[ref.code], forms, campaign)
        for col, value in enumerate(cells, start=1):
            cell = ws.cell(row=row, column=col)
            if isinstance(value, int):
                cell.value = value
            else:
                put_text(ws, row, col, value)
            cell.font = xfont()
            cell.alignment = xalign("left" if widths[col - 1] >= 20 else "center", vertical="top")
        ws.row_dimensions[row].height = _row_height(cells, widths, TABLE_SIZE)
        row += 1
    last = max(row - 1, head + 1)
    box(ws, head, last, 1, ncols)
    ws.freeze_panes = ws.cell(row=head + 2, column=3)
    print_setup(ws, f"{head}:{head + 1}", get_column_letter(ncols), last)


def write_consolidated_xlsx(
    models: list[ExportModel],
    statuses: list[UnitStatusRow],
    campaign: Campaign,
    generated_at: datetime,
    *,
    board: BoardConfig | None = None,
) -> bytes:
    """The workbook the board signs: one sheet per form, the summary, where units stand.

    `generated_at` (aware, or naive UTC) dates the letterhead ("Thanh Xuân, ngày …") and is the
    file's created/modified time, so the same input always gives the same bytes. The last
    sheet (codes and addresses) is for staff, not for printing.
    """
    board = board or BoardConfig()
    wb = Workbook()
    wb.remove(wb.active)
    dated = date_line(board, campaign, generated_at)
    data = data_line(campaign, generated_at)
    forms = forms_to_show(models, campaign)
    for form in forms:
        table = level_table(form, models, statuses, campaign)
        _write_level_sheet(
            wb.create_sheet(level_sheet_name(form, campaign)), table, board, dated, data
        )
    shown = [f for f in forms if known_form(f, campaign) or any(f in s.forms for s in statuses)]
    _write_summary_sheet(
        wb.create_sheet(SUMMARY_SHEET),
        summary(shown, models, statuses, campaign),
        board,
        dated,
        data,
        campaign.year,
    )
    _write_status_sheet(
        wb.create_sheet(STATUS_SHEET), statuses, shown, campaign, board, dated, data
    )
    _write_internal_sheet(wb.create_sheet(INTERNAL_SHEET), statuses, shown, campaign, data)
    return workbook_bytes(wb, generated_at, f"Tổng hợp mô hình “Dân vận khéo” năm {campaign.year}")
