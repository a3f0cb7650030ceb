"""The consolidated document the board signs, as docx: the workbook's content, page by page."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from docx.document import Document as DocxDocument
from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_BREAK
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Pt
from docx.table import Table

from mailbot.campaign.export_model import (
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
    known_form,
    level_table,
    status_lines,
    status_summary,
    summary,
    summary_paragraphs,
)
from mailbot.campaign.forms import (
    FIELD_LABELS,
    HEADER_MODEL,
    HEADER_NAME,
    HEADER_NOTE,
    HEADER_TT,
    TEXT_SIZE,
    clean_text,
    document_bytes,
    fill_cell,
    fix_widths,
    new_document,
    no_borders,
    repeat_header,
    usable_width_cm,
    write_par,
)
from mailbot.config import BoardConfig
from parsers.model import FIELDS
from rules.campaign import Campaign

# The form's columns: TT | name | four fields | note; 26.7 cm between 1.5 cm margins.
LEVEL_DOCX_CM = (1.3, 5.0, 4.3, 4.3, 4.3, 4.3, 3.2)
# TT, unit | per form: four fields, collectives, individuals, all | all forms: 26.7 cm.
_SUMMARY_LEAD_CM = (0.9, 4.0)
_SUMMARY_FORM_CM = (1.5, 1.5, 1.5, 1.7, 1.3, 1.3, 1.3)
_SUMMARY_TOTAL_CM = 1.6
SMALL = 10


def _page_numbers(doc: DocxDocument) -> None:
    """Page numbers, "Trang N/M", centred in the footer (PAGE and NUMPAGES fields)."""
    par = doc.sections[0].footer.paragraphs[0]
    par.alignment = WD_ALIGN_PARAGRAPH.CENTER
    par.add_run("Trang ").font.size = Pt(11)
    for instr, tail in (("PAGE", "/"), ("NUMPAGES", "")):
        for kind in ("begin", "instr", "separate", "end"):
            run = par.add_run()
            run.font.size = Pt(11)
            if kind == "instr":
                el = OxmlElement("w:instrText")
                el.set(qn("xml:space"), "preserve")
                el.text = f" {instr} "
            else:
                el = OxmlElement("w:fldChar")
                el.set(qn("w:fldCharType"), kind)
            run._r.append(el)
            if kind == "separate":
                par.add_run("1").font.size = Pt(11)
        if tail:
            par.add_run(tail).font.size = Pt(11)


def _no_hyphenation(doc: DocxDocument) -> None:
    """Words are never broken at a line end: hyphenation off for the document."""
    settings = doc.settings.element
    auto = OxmlElement("w:autoHyphenation")
    auto.set(qn("w:val"), "false")
    settings.append(auto)
    ppr = doc.styles["Normal"].element.get_or_add_pPr()
    suppress = OxmlElement("w:suppressAutoHyphens")
    suppress.set(qn("w:val"), "true")
    ppr.append(suppress)


def keep_rows_whole(table: Table) -> None:
    """No row of the table is split across two pages."""
    for row in table.rows:
        tr_pr = row._tr.get_or_add_trPr()
        if tr_pr.find(qn("w:cantSplit")) is None:
            el = OxmlElement("w:cantSplit")
            el.set(qn("w:val"), "true")
            tr_pr.insert(0, el)


def _keep_with_next(table: Table, rows: int) -> None:
    """The last `rows` rows stay on the page of what follows (no signature alone on a page)."""
    for row in table.rows[-rows:]:
        for cell in row.cells:
            for par in cell.paragraphs:
                par.paragraph_format.keep_with_next = True


def _letterhead(doc: DocxDocument, board: BoardConfig, dated: str, width: float) -> None:
    """The party letterhead as a borderless table: the office left, the party and date right."""
    head = doc.add_table(rows=3, cols=2)
    no_borders(head)
    fill_cell(head.cell(0, 0), board.superior, size=TEXT_SIZE, align="center")
    fill_cell(head.cell(1, 0), board.name, bold=True, size=TEXT_SIZE, align="center")
    fill_cell(head.cell(2, 0), "*", size=TEXT_SIZE, align="center")
    fill_cell(head.cell(0, 1), board.party, bold=True, size=TEXT_SIZE, align="center")
    for run in head.cell(0, 1).paragraphs[0].runs:
        run.underline = True
    fill_cell(head.cell(2, 1), dated, italic=True, size=TEXT_SIZE + 1, align="center")
    fix_widths(head, (width * 0.4, width * 0.6))


def _titles(doc: DocxDocument, titles: Sequence[str], data: str) -> None:
    write_par(doc, "")
    for text in titles:
        write_par(doc, text, bold=True, size=TEXT_SIZE + 1, align="center")
    write_par(doc, data, italic=True, align="center")
    write_par(doc, "")


def _signature(doc: DocxDocument, board: BoardConfig, width: float) -> None:
    """Nơi nhận left, T/M … / TRƯỞNG BAN / space / name right, in a borderless table."""
    write_par(doc, "").paragraph_format.keep_with_next = True
    sign = doc.add_table(rows=1, cols=2)
    no_borders(sign)
    left, right = sign.cell(0, 0), sign.cell(0, 1)
    par = write_par(left, "Nơi nhận:", bold=True, italic=True, size=12, first=True)
    par.paragraph_format.keep_with_next = True
    for text in board.recipients_note:
        write_par(left, f"- {text}", size=11)
    write_par(
        right, board.sign_on_behalf, bold=True, size=TEXT_SIZE + 1, align="center", first=True
    )
    write_par(right, board.sign_title, bold=True, size=TEXT_SIZE + 1, align="center")
    for _ in range(4):
        write_par(right, "", align="center")
    write_par(right, board.sign_name or "", bold=True, size=TEXT_SIZE + 1, align="center")
    fix_widths(sign, (width * 0.45, width * 0.55))
    keep_rows_whole(sign)


def _body_row(table: Table, i: int, line: Line, ncols: int, counts_from: int) -> None:
    """One body row; headings span the row, counts of subtotal/TỔNG read "5 mô hình"."""
    if line.role in ("group", "unit", "kind"):
        bold, italic = line.role != "kind", line.role == "kind"
        heading = table.rows[i].cells  # one row at a time: table.cell() walks the whole table
        fill_cell(heading[0], clean_text(line.cells[0]), bold=bold, align="center")
        across = heading[1].merge(heading[ncols - 1])
        fill_cell(across, clean_text(line.cells[1]), bold=bold, italic=italic)
        return
    strong = line.role in ("subtotal", "total")
    cells = list(line.cells)
    if strong:
        cells[counts_from + len(FIELDS)] = f"{cells[counts_from + len(FIELDS)]} {MODELS_WORD}"
    row = table.rows[i].cells
    for j, value in enumerate(cells):
        align = "center" if j == 0 or strong or isinstance(value, int) else "left"
        fill_cell(row[j], clean_text(value), bold=strong, align=align)


def _level_table(doc: DocxDocument, table: LevelTable) -> None:
    ncols = len(LEVEL_DOCX_CM)
    t = doc.add_table(rows=2 + len(table.lines), cols=ncols)
    t.style = doc.styles["Table Grid"]
    for col, text in ((0, HEADER_TT), (1, HEADER_NAME), (ncols - 1, HEADER_NOTE)):
        fill_cell(t.cell(0, col).merge(t.cell(1, col)), text, bold=True, align="center")
    across = t.cell(0, 2).merge(t.cell(0, 1 + len(FIELDS)))
    fill_cell(across, HEADER_MODEL, bold=True, align="center")
    for j, key in enumerate(FIELDS):
        fill_cell(t.cell(1, 2 + j), FIELD_LABELS[key], bold=True, align="center")
    for i, line in enumerate(table.lines, start=2):
        _body_row(t, i, line, ncols, 2)
    fix_widths(t, LEVEL_DOCX_CM)
    repeat_header(t, 2)
    keep_rows_whole(t)
    _keep_with_next(t, 2)


def _summary_table(doc: DocxDocument, s: Summary) -> None:
    widths = [*_SUMMARY_LEAD_CM]
    for _f in s.forms:
        widths.extend(_SUMMARY_FORM_CM)
    widths.append(_SUMMARY_TOTAL_CM)
    ncols, per = len(widths), len(SUMMARY_PER_FORM)
    t = doc.add_table(rows=2 + len(s.lines), cols=ncols)
    t.style = doc.styles["Table Grid"]
    for col, text in ((0, HEADER_TT), (1, "Đơn vị"), (ncols - 1, "Tổng số mô hình")):
        fill_cell(t.cell(0, col).merge(t.cell(1, col)), text, bold=True, size=SMALL, align="center")
    for n, heading in enumerate(s.headings):
        first = 2 + n * per
        top = t.cell(0, first).merge(t.cell(0, first + per - 1))
        fill_cell(top, heading, bold=True, size=SMALL, align="center")
        for k, text in enumerate(SUMMARY_PER_FORM):
            fill_cell(t.cell(1, first + k), text, bold=True, size=SMALL, align="center")
    for i, line in enumerate(s.lines, start=2):
        if line.role == "group":
            _body_row(t, i, line, ncols, 2)
            continue
        strong = line.role == "total"
        row = t.rows[i].cells
        for j, value in enumerate(line.cells):
            align = "left" if j == 1 and not strong else "center"
            bold = strong or j == ncols - 1
            fill_cell(row[j], clean_text(value), bold=bold, size=SMALL, align=align)
    fix_widths(t, widths)
    repeat_header(t, 2)
    keep_rows_whole(t)


def _status_table(
    doc: DocxDocument, statuses: Sequence[UnitStatusRow], forms: Sequence[str], campaign: Campaign
) -> None:
    widths = [c for _h, _w, c in STATUS_LEAD_COLUMNS]
    for _code in forms:
        widths.extend(c for _h, _w, c in STATUS_FORM_COLUMNS)
    scale = min(1.0, usable_width_cm(doc) / sum(widths))
    widths = [w * scale for w in widths]
    lead, per = len(STATUS_LEAD_COLUMNS), len(STATUS_FORM_COLUMNS)
    lines = status_lines(statuses, forms, campaign)
    t = doc.add_table(rows=2 + len(lines), cols=len(widths))
    t.style = doc.styles["Table Grid"]
    for col, (text, _w, _c) in enumerate(STATUS_LEAD_COLUMNS):
        fill_cell(t.cell(0, col).merge(t.cell(1, col)), text, bold=True, size=SMALL, align="center")
    for n, code in enumerate(forms):
        start = lead + n * per
        top = t.cell(0, start).merge(t.cell(0, start + per - 1))
        fill_cell(top, form_title(code, campaign), bold=True, size=SMALL, align="center")
        for k, (text, _w, _c) in enumerate(STATUS_FORM_COLUMNS):
            fill_cell(t.cell(1, start + k), text, bold=True, size=SMALL, align="center")
    for i, line in enumerate(lines, start=2):
        if line.role == "group":
            _body_row(t, i, line, len(widths), lead)
            continue
        row = t.rows[i].cells
        for j, value in enumerate(line.cells):
            align = "left" if widths[j] >= 2.4 else "center"
            fill_cell(row[j], clean_text(value), size=SMALL, align=align)
    fix_widths(t, widths)
    repeat_header(t, 2)
    keep_rows_whole(t)


def write_consolidated_docx(
    models: list[ExportModel],
    statuses: list[UnitStatusRow],
    campaign: Campaign,
    generated_at: datetime,
    *,
    board: BoardConfig | None = None,
) -> bytes:
    """The workbook's printable sheets as one Word document (A4 landscape, numbered pages)."""
    board = board or BoardConfig()
    doc = new_document()
    _page_numbers(doc)
    _no_hyphenation(doc)
    width = usable_width_cm(doc)
    dated = date_line(board, campaign, generated_at)
    data = data_line(campaign, generated_at)
    forms = forms_to_show(models, campaign)

    def new_page() -> None:
        doc.add_paragraph().add_run().add_break(WD_BREAK.PAGE)

    for n, form in enumerate(forms):
        table = level_table(form, models, statuses, campaign)
        if n:
            new_page()
        _letterhead(doc, board, dated, width)
        _titles(doc, table.titles, data)
        _level_table(doc, table)
        write_par(doc, "").paragraph_format.keep_with_next = True
        write_par(doc, table.note, italic=True).paragraph_format.keep_with_next = True
        _signature(doc, board, width)

    shown = [f for f in forms if known_form(f, campaign) or any(f in s.forms for s in statuses)]
    new_page()
    _letterhead(doc, board, dated, width)
    s = summary(shown, models, statuses, campaign)
    _titles(
        doc,
        (
            "TỔNG HỢP MÔ HÌNH, ĐIỂN HÌNH ĐĂNG KÝ",
            f"THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM {campaign.year}",
        ),
        data,
    )
    _summary_table(doc, s)
    last = write_par(doc, "")
    for heading, items in summary_paragraphs(s):
        last = write_par(doc, heading, bold=True)
        last.paragraph_format.keep_with_next = bool(items)
        for item in items:
            last = write_par(doc, item, align="justify")
    last.paragraph_format.keep_with_next = True  # not the signature alone on a page
    _signature(doc, board, width)

    new_page()
    _letterhead(doc, board, dated, width)
    _titles(
        doc,
        (f"TÌNH HÌNH GỬI BIỂU ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM {campaign.year}",),
        f"{deadline_line(campaign)}. {data}",
    )
    _status_table(doc, statuses, shown, campaign)
    write_par(doc, "")
    write_par(doc, status_summary(statuses), italic=True)
    return document_bytes(doc, generated_at, f"Tổng hợp mô hình “Dân vận khéo” năm {campaign.year}")
