"""Blank M1/M2 registration forms in the official layout of the seed letter, as xlsx/docx bytes."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT
from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_ROW_HEIGHT_RULE
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.table import CT_Row
from docx.shared import Cm, Pt
from docx.table import Table, _Cell
from docx.text.paragraph import Paragraph
from openpyxl import Workbook
from openpyxl.cell.cell import Cell, MergedCell
from openpyxl.styles import Alignment, Border, Font, Side
from openpyxl.worksheet.worksheet import Worksheet
from openpyxl.writer.excel import ExcelWriter

from parsers.model import FIELDS
from rules.campaign import Campaign

# --- The official wording (seed: Công văn 719-CV/QU, Mẫu số 01 and Mẫu số 02) -------------

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
UNIT_PLACEHOLDER = "TÊN ĐƠN VỊ"
DATE_LINE = "....., ngày..... tháng..... năm....."
TITLE_FIRST = "BIỂU TỔNG HỢP"
HEADER_TT = "TT"
HEADER_NAME = "Tên tập thể, cá nhân"
HEADER_MODEL = "Tên mô hình đăng ký “Dân vận khéo”"
HEADER_NOTE = "Ghi chú"
FIELD_LABELS: dict[str, str] = {
    "economy": "Lĩnh vực kinh tế",
    "culture_society": "Lĩnh vực văn hóa - xã hội",
    "security_defense": "Lĩnh vực an ninh quốc phòng",
    "political_system": "Lĩnh vực xây dựng hệ thống chính trị",
}
SECTIONS: tuple[tuple[str, str, str], ...] = (
    ("I", "Tập thể", "collective"),
    ("II", "Cá nhân", "individual"),
)
TOTAL_LABEL = "TỔNG"
NOTE_LINE = "Ghi chú: Đề nghị ghi rõ nội dung từng mô hình “Dân vận khéo” vào ô lĩnh vực tương ứng."
SIGNER = "THỦ TRƯỞNG ĐƠN VỊ"
SIGN_HINT = "(Ký, đóng dấu)"
# Used when a campaign file does not describe a form the seed defines.
DEFAULT_LEVELS: dict[str, str] = {"M1": "cấp Quận", "M2": "cấp cơ sở"}

FONT_NAME = "Times New Roman"
TEXT_SIZE = 13
TABLE_SIZE = 12

# XML 1.0 cannot carry these; openpyxl and lxml refuse them outright.
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# OWASP "CSV injection": a leading character that makes a spreadsheet read text as a formula.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
EXCEL_CELL_MAX = 32767
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def form_level(form: str, campaign: Campaign) -> str:
    """The level of a form as the campaign names it ("cấp Quận" for M1, "cấp cơ sở" for M2)."""
    for spec in campaign.forms:
        if spec.code == form and spec.level:
            return spec.level
    if form in DEFAULT_LEVELS:
        return DEFAULT_LEVELS[form]
    raise ValueError(f"unknown form {form!r}: expected one of {sorted(DEFAULT_LEVELS)}")


def title_lines(form: str, campaign: Campaign) -> tuple[str, str, str]:
    """The three title lines of the official table for `form` in the campaign's year."""
    level = form_level(form, campaign)
    return (
        TITLE_FIRST,
        f"ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH {level.upper()}",
        f"THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM {campaign.year}",
    )


def clean_text(value: object) -> str:
    """Text safe for an XML part: illegal control characters removed, None as ''."""
    if value is None:
        return ""
    return _XML_ILLEGAL.sub("", str(value))


# --- xlsx helpers (shared with mailbot.campaign.export_xlsx) -------------------------------

THIN = Side(style="thin", color="000000")
BORDER = Border(left=THIN, right=THIN, top=THIN, bottom=THIN)


def xfont(size: int = TABLE_SIZE, bold: bool = False, italic: bool = False) -> Font:
    """A Times New Roman font for a cell."""
    return Font(name=FONT_NAME, size=size, bold=bold, italic=italic)


def xalign(horizontal: str = "left", vertical: str = "center", wrap: bool = True) -> Alignment:
    """A cell alignment (wrapping by default)."""
    return Alignment(horizontal=horizontal, vertical=vertical, wrap_text=wrap)


def put_text(
    ws: Worksheet, row: int, col: int, value: object, **style: object
) -> Cell | MergedCell:
    """Write `value` as literal text (never a formula) with optional font/alignment/border.

    openpyxl turns any string starting with "=" into a formula; the data type is forced back
    to a string and, for every formula-like lead character, Excel's quotePrefix is set so an
    edit in Excel keeps it text too.
    """
    cell = ws.cell(row=row, column=col)
    text = clean_text(value)[:EXCEL_CELL_MAX]
    if text:
        cell.value = text
        cell.data_type = "s"
        if text.startswith(FORMULA_TRIGGERS):
            cell.quotePrefix = True
    for key, val in style.items():
        setattr(cell, key, val)
    return cell


def box(ws: Worksheet, first_row: int, last_row: int, first_col: int, last_col: int) -> None:
    """Thin borders on every cell of a rectangle (merged cells included)."""
    for r in range(first_row, last_row + 1):
        for c in range(first_col, last_col + 1):
            ws.cell(row=r, column=c).border = BORDER


def print_setup(ws: Worksheet, title_rows: str, last_col_letter: str, last_row: int) -> None:
    """A4 landscape, fit to the page width, header rows repeated, narrow margins."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.paperSize = ws.PAPERSIZE_A4
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.horizontalCentered = True
    ws.page_margins.left = ws.page_margins.right = 0.5
    ws.page_margins.top = ws.page_margins.bottom = 0.6
    ws.page_margins.header = ws.page_margins.footer = 0.3
    ws.print_title_rows = title_rows
    ws.print_area = f"A1:{last_col_letter}{last_row}"
    ws.oddFooter.center.text = "Trang &P/&N"
    ws.oddFooter.center.font = FONT_NAME


def normalise_zip(data: bytes) -> bytes:
    """Re-pack an OOXML package with fixed member timestamps, so equal input gives equal bytes."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst,
    ):
        for info in src.infolist():
            fixed = zipfile.ZipInfo(info.filename, date_time=_ZIP_EPOCH)
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = 0o600 << 16
            dst.writestr(fixed, src.read(info.filename))
    return out.getvalue()


def _naive_utc(when: datetime) -> datetime:
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.replace(microsecond=0)


def workbook_bytes(wb: Workbook, when: datetime, title: str) -> bytes:
    """Serialise a workbook with fixed core properties (created = modified = `when`)."""
    stamp = _naive_utc(when)
    wb.properties.creator = "mailbot"
    wb.properties.lastModifiedBy = "mailbot"
    wb.properties.title = clean_text(title)
    wb.properties.created = stamp
    wb.properties.modified = stamp
    buf = io.BytesIO()
    # ExcelWriter directly: openpyxl's save_workbook would stamp `modified` with the clock.
    ExcelWriter(wb, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, allowZip64=True)).save()
    return normalise_zip(buf.getvalue())


# --- docx helpers (shared with mailbot.campaign.export_docx) -------------------------------


def new_document(margin_cm: float = 1.5) -> DocxDocument:
    """An empty A4 landscape document in Times New Roman 13 with tight paragraph spacing."""
    doc = Document()
    section = doc.sections[0]
    section.orientation = WD_ORIENT.LANDSCAPE
    section.page_width = Cm(29.7)
    section.page_height = Cm(21.0)
    section.left_margin = section.right_margin = Cm(margin_cm)
    section.top_margin = section.bottom_margin = Cm(1.5)
    normal = doc.styles["Normal"]
    normal.font.name = FONT_NAME
    normal.font.size = Pt(TEXT_SIZE)
    fonts = normal.element.get_or_add_rPr().get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT_NAME)
    normal.paragraph_format.space_before = Pt(0)
    normal.paragraph_format.space_after = Pt(0)
    return doc


def usable_width_cm(doc: DocxDocument) -> float:
    """Width between the margins of the first section, in centimetres."""
    s = doc.sections[0]
    return (int(s.page_width or 0) - int(s.left_margin or 0) - int(s.right_margin or 0)) / 360000


def write_par(
    container: DocxDocument | _Cell,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: int | None = None,
    align: str = "left",
    first: bool = False,
) -> Paragraph:
    """Add (or, with first=True, fill the existing first) paragraph holding one run of text."""
    par = container.paragraphs[0] if first and container.paragraphs else container.add_paragraph()
    par.alignment = {
        "left": WD_ALIGN_PARAGRAPH.LEFT,
        "center": WD_ALIGN_PARAGRAPH.CENTER,
        "right": WD_ALIGN_PARAGRAPH.RIGHT,
        "justify": WD_ALIGN_PARAGRAPH.JUSTIFY,
    }[align]
    run = par.add_run(clean_text(text))
    run.bold = bold
    run.italic = italic
    if size:
        run.font.size = Pt(size)
    return par


def fill_cell(
    cell: _Cell,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: int = TABLE_SIZE,
    align: str = "left",
) -> None:
    """Put text in a table cell, one paragraph per line, vertically centred."""
    lines = clean_text(text).split("\n") or [""]
    for i, line in enumerate(lines):
        write_par(cell, line, bold=bold, italic=italic, size=size, align=align, first=i == 0)
    cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER


def fix_widths(table: Table, widths_cm: Sequence[float]) -> None:
    """Fixed column widths (grid and every cell), so Word does not re-flow the layout."""
    table.autofit = False
    tbl_pr = table._tbl.tblPr
    layout = OxmlElement("w:tblLayout")
    layout.set(qn("w:type"), "fixed")
    tbl_pr.append(layout)
    for col, width in zip(table.columns, widths_cm, strict=True):
        col.width = Cm(width)
    for row in table.rows:
        for tc, width in zip(row._tr.tc_lst, _span_widths(row._tr, widths_cm), strict=True):
            tc.get_or_add_tcPr().get_or_add_tcW().set(qn("w:w"), str(int(width * 567)))
            tc.get_or_add_tcPr().get_or_add_tcW().set(qn("w:type"), "dxa")


def _span_widths(tr: CT_Row, widths_cm: Sequence[float]) -> list[float]:
    out, col = [], 0
    for tc in tr.tc_lst:
        span = tc.grid_span
        out.append(sum(widths_cm[col : col + span]))
        col += span
    return out


def repeat_header(table: Table, count: int) -> None:
    """Mark the first `count` rows as header rows, repeated on every printed page."""
    for row in table.rows[:count]:
        tr_pr = row._tr.get_or_add_trPr()
        for tag in ("w:cantSplit", "w:tblHeader"):
            el = OxmlElement(tag)
            el.set(qn("w:val"), "true")
            tr_pr.append(el)


def min_height(table: Table, row_index: int, cm: float) -> None:
    """A minimum printed height for one row (room to write by hand)."""
    row = table.rows[row_index]
    row.height = Cm(cm)
    row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST


def no_borders(table: Table) -> None:
    """Remove every border of a layout table."""
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        el = OxmlElement(f"w:{edge}")
        el.set(qn("w:val"), "nil")
        borders.append(el)
    table._tbl.tblPr.append(borders)


def document_bytes(doc: DocxDocument, when: datetime, title: str) -> bytes:
    """Serialise a document with fixed core properties (created = modified = `when`)."""
    stamp = _naive_utc(when).replace(tzinfo=UTC)
    props = doc.core_properties
    props.author = "mailbot"
    props.last_modified_by = "mailbot"
    props.title = clean_text(title)
    props.created = stamp
    props.modified = stamp
    props.last_printed = stamp
    props.revision = 1
    buf = io.BytesIO()
    doc.save(buf)
    return normalise_zip(buf.getvalue())


# --- the blank forms ---------------------------------------------------------------------------

# xlsx layout: A TT | B name | C..F the four fields | G note
_XLSX_WIDTHS = {"A": 6, "B": 30, "C": 24, "D": 24, "E": 24, "F": 24, "G": 16}
_DOCX_WIDTHS_CM = (1.3, 5.4, 4.4, 4.4, 4.4, 4.4, 2.4)  # 26.7 cm between 1.5 cm margins
_PLACEHOLDER_NO = "..."


def _check_form(form: str, campaign: Campaign) -> None:
    form_level(form, campaign)  # raises ValueError for an unknown form


def _stamp(campaign: Campaign) -> datetime:
    return datetime(campaign.year, 1, 1, tzinfo=UTC)


def _blank_rows(rows_per_section: int) -> list[tuple[str, str, str]]:
    """(kind of row, TT text, name text) for the body between the header and TỔNG."""
    body: list[tuple[str, str, str]] = []
    for roman, label, _kind in SECTIONS:
        body.append(("section", roman, label))
        body.extend(("entry", str(n), "") for n in range(1, rows_per_section + 1))
        body.append(("entry", _PLACEHOLDER_NO, ""))
    return body


def blank_form_xlsx(form: str, campaign: Campaign, *, rows_per_section: int = 3) -> bytes:
    """The blank form `form` ("M1"/"M2") of the campaign as an .xlsx workbook (bytes)."""
    _check_form(form, campaign)
    wb = Workbook()
    ws = wb.active
    ws.title = form
    for letter, width in _XLSX_WIDTHS.items():
        ws.column_dimensions[letter].width = width

    big_bold = xfont(TEXT_SIZE, bold=True)
    put_text(ws, 1, 1, UNIT_PLACEHOLDER, font=big_bold, alignment=xalign("center"))
    ws.merge_cells("A1:C1")
    put_text(ws, 1, 7, form, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("right"))
    put_text(ws, 2, 4, DATE_LINE, font=xfont(TEXT_SIZE, italic=True), alignment=xalign("center"))
    ws.merge_cells("D2:G2")
    for offset, line in enumerate(title_lines(form, campaign)):
        row = 4 + offset
        put_text(ws, row, 1, line, font=xfont(TEXT_SIZE, bold=True), alignment=xalign("center"))
        ws.merge_cells(start_row=row, start_column=1, end_row=row, end_column=7)
        ws.row_dimensions[row].height = 19

    head = 8
    header_font = xfont(TABLE_SIZE, bold=True)
    centre = xalign("center")
    put_text(ws, head, 1, HEADER_TT, font=header_font, alignment=centre)
    put_text(ws, head, 2, HEADER_NAME, font=header_font, alignment=centre)
    put_text(ws, head, 3, HEADER_MODEL, font=header_font, alignment=centre)
    put_text(ws, head, 7, HEADER_NOTE, font=header_font, alignment=centre)
    for i, key in enumerate(FIELDS):
        put_text(ws, head + 1, 3 + i, FIELD_LABELS[key], font=header_font, alignment=centre)
    ws.merge_cells(start_row=head, start_column=1, end_row=head + 1, end_column=1)
    ws.merge_cells(start_row=head, start_column=2, end_row=head + 1, end_column=2)
    ws.merge_cells(start_row=head, start_column=3, end_row=head, end_column=6)
    ws.merge_cells(start_row=head, start_column=7, end_row=head + 1, end_column=7)
    ws.row_dimensions[head].height = 20
    ws.row_dimensions[head + 1].height = 36

    row = head + 2
    first_body = row
    for kind, number, label in _blank_rows(rows_per_section):
        bold = kind == "section"
        put_text(ws, row, 1, number, font=xfont(bold=bold), alignment=centre)
        put_text(ws, row, 2, label, font=xfont(bold=bold), alignment=xalign())
        for col in range(3, 8):
            ws.cell(row=row, column=col).font = xfont()
            ws.cell(row=row, column=col).alignment = xalign()
        ws.row_dimensions[row].height = 20 if bold else 30
        row += 1
    total_row = row
    put_text(ws, total_row, 2, TOTAL_LABEL, font=xfont(bold=True), alignment=xalign("center"))
    for col in range(3, 7):
        letter = ws.cell(row=first_body, column=col).column_letter
        cell = ws.cell(row=total_row, column=col)
        cell.value = f"=COUNTA({letter}{first_body}:{letter}{total_row - 1})"
        cell.font = xfont(bold=True)
        cell.alignment = centre
    ws.cell(row=total_row, column=1).font = xfont(bold=True)
    ws.row_dimensions[total_row].height = 20
    box(ws, head, total_row, 1, 7)

    note_row = total_row + 2
    put_text(ws, note_row, 1, NOTE_LINE, font=xfont(TEXT_SIZE, italic=True), alignment=xalign())
    ws.merge_cells(start_row=note_row, start_column=1, end_row=note_row, end_column=7)
    sign_row = note_row + 2
    put_text(ws, sign_row, 5, SIGNER, font=xfont(TEXT_SIZE, bold=True), alignment=centre)
    ws.merge_cells(start_row=sign_row, start_column=5, end_row=sign_row, end_column=7)
    put_text(ws, sign_row + 1, 5, SIGN_HINT, font=xfont(TEXT_SIZE, italic=True), alignment=centre)
    ws.merge_cells(start_row=sign_row + 1, start_column=5, end_row=sign_row + 1, end_column=7)

    print_setup(ws, f"{head}:{head + 1}", "G", sign_row + 1)
    return workbook_bytes(wb, _stamp(campaign), f"Biểu đăng ký mô hình “Dân vận khéo” ({form})")


def blank_form_docx(form: str, campaign: Campaign, *, rows_per_section: int = 3) -> bytes:
    """The blank form `form` ("M1"/"M2") of the campaign as a .docx document (bytes)."""
    _check_form(form, campaign)
    doc = new_document()
    width = usable_width_cm(doc)

    # Letterhead as Word forms usually have it: a borderless table, unit left, marker right.
    head = doc.add_table(rows=2, cols=2)
    no_borders(head)
    fill_cell(head.cell(0, 0), UNIT_PLACEHOLDER, bold=True, size=TEXT_SIZE, align="center")
    fill_cell(head.cell(0, 1), form, bold=True, size=TEXT_SIZE, align="right")
    fill_cell(head.cell(1, 1), DATE_LINE, italic=True, size=TEXT_SIZE, align="center")
    fix_widths(head, (width * 0.45, width * 0.55))

    write_par(doc, "")
    for line in title_lines(form, campaign):
        write_par(doc, line, bold=True, align="center")
    write_par(doc, "")

    body = _blank_rows(rows_per_section)
    table = doc.add_table(rows=2 + len(body) + 1, cols=7)
    table.style = doc.styles["Table Grid"]
    docx_form_header(table, (HEADER_TT, HEADER_NAME), (HEADER_NOTE,))
    for i, (kind, number, label) in enumerate(body, start=2):
        bold = kind == "section"
        fill_cell(table.cell(i, 0), number, bold=bold, align="center")
        fill_cell(table.cell(i, 1), label, bold=bold)
        min_height(table, i, 0.6 if bold else 0.8)
    total = len(table.rows) - 1
    fill_cell(table.cell(total, 1), TOTAL_LABEL, bold=True, align="center")
    min_height(table, total, 0.6)
    fix_widths(table, _DOCX_WIDTHS_CM)
    repeat_header(table, 2)

    write_par(doc, "")
    write_par(doc, NOTE_LINE, italic=True)
    write_par(doc, "")
    _signature(doc, width)
    return document_bytes(doc, _stamp(campaign), f"Biểu đăng ký mô hình “Dân vận khéo” ({form})")


def docx_form_header(table: Table, lead: Sequence[str], tail: Sequence[str]) -> None:
    """The two header rows: `lead` and `tail` columns merged down, the model title across."""
    for i, text in enumerate(lead):
        top = table.cell(0, i).merge(table.cell(1, i))
        fill_cell(top, text, bold=True, align="center")
    first_field = len(lead)
    across = table.cell(0, first_field).merge(table.cell(0, first_field + len(FIELDS) - 1))
    fill_cell(across, HEADER_MODEL, bold=True, align="center")
    for j, key in enumerate(FIELDS):
        fill_cell(table.cell(1, first_field + j), FIELD_LABELS[key], bold=True, align="center")
    for k, text in enumerate(tail):
        col = first_field + len(FIELDS) + k
        top = table.cell(0, col).merge(table.cell(1, col))
        fill_cell(top, text, bold=True, align="center")


def _signature(doc: DocxDocument, width_cm: float) -> None:
    """THỦ TRƯỞNG ĐƠN VỊ / (Ký, đóng dấu), centred over the right third of the page."""
    for text, bold, italic in ((SIGNER, True, False), (SIGN_HINT, False, True)):
        par = write_par(doc, text, bold=bold, italic=italic, align="center")
        par.paragraph_format.left_indent = Cm(width_cm * 0.6)
