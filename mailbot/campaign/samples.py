"""Filled sample forms and mails for the demo: the official blank layout with rows written in."""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import date

import openpyxl

from mailbot.campaign.forms import blank_form_xlsx
from rules.campaign import Campaign

FIELD_COLUMNS = {"economy": 3, "culture_society": 4, "security_defense": 5, "political_system": 6}
# Rows of the blank layout: three numbered rows per section, then the TỔNG row.
_SECTION_ROWS = {"collective": (11, 12, 13), "individual": (16, 17, 18)}
_TOTAL_ROW = 20

Row = tuple[str | None, str, str]  # (name, field, model)


def filled_form_xlsx(
    form: str,
    campaign: Campaign,
    unit: str | None,
    when: date | None,
    collectives: Sequence[Row] = (),
    individuals: Sequence[Row] = (),
    totals: dict[str, int] | None = None,
) -> bytes:
    """The official blank form with the unit, the date and up to three rows per section."""
    wb = openpyxl.load_workbook(io.BytesIO(blank_form_xlsx(form, campaign)))
    ws = wb.worksheets[0]
    if unit is not None:
        ws["A1"] = f"QUẬN ỦY THANH XUÂN\n{unit.upper()}"
    if when is not None:
        ws["D2"] = f"Thanh Xuân, ngày {when.day:02d} tháng {when.month:02d} năm {when.year}"
    for kind, rows in (("collective", collectives), ("individual", individuals)):
        for row_no, (name, field, model) in zip(_SECTION_ROWS[kind], rows, strict=False):
            if name is not None:
                ws.cell(row_no, 2, name)
            ws.cell(row_no, FIELD_COLUMNS[field], model)
    for field, col in FIELD_COLUMNS.items():
        # Saved by a program that does not compute formulas: write the figures themselves.
        value = (totals or {}).get(field)
        ws.cell(_TOTAL_ROW, col, value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


_DOCX_ROWS = {"collective": (3, 4, 5), "individual": (8, 9, 10)}
_DOCX_FIELD_CELLS = {
    "economy": 2,
    "culture_society": 3,
    "security_defense": 4,
    "political_system": 5,
}


def filled_form_docx(
    form: str,
    campaign: Campaign,
    unit: str | None,
    when: date | None,
    collectives: Sequence[Row] = (),
    individuals: Sequence[Row] = (),
) -> bytes:
    """The official blank Word form with the unit, the date and up to three rows per section."""
    import docx  # python-docx; imported here so the xlsx path does not pay for it

    from mailbot.campaign.forms import blank_form_docx

    document = docx.Document(io.BytesIO(blank_form_docx(form, campaign)))
    head, table = document.tables[0], document.tables[1]
    if unit is not None:
        head.cell(0, 0).text = f"QUẬN ỦY THANH XUÂN\n{unit.upper()}"
    if when is not None:
        head.cell(
            1, 1
        ).text = f"Thanh Xuân, ngày {when.day:02d} tháng {when.month:02d} năm {when.year}"
    for kind, rows in (("collective", collectives), ("individual", individuals)):
        for row_no, (name, field, model) in zip(_DOCX_ROWS[kind], rows, strict=False):
            if name is not None:
                table.cell(row_no, 1).text = name
            table.cell(row_no, _DOCX_FIELD_CELLS[field]).text = model
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()
