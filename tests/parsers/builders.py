"""Small in-memory office files for the format tests: saved by the real libraries."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import docx
import openpyxl


def save_workbook(wb: openpyxl.Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    wb.close()
    return buf.getvalue()


def workbook(*cells: tuple[str, str]) -> bytes:
    """An .xlsx whose first sheet holds the given (cell, text) pairs."""
    wb = openpyxl.Workbook()
    for ref, text in cells:
        wb.active[ref] = text
    return save_workbook(wb)


def document(*paragraphs: str, table: tuple[str, ...] = ()) -> bytes:
    """A .docx with the paragraphs and, when given, a one-row table of those cells."""
    d = docx.Document()
    for text in paragraphs:
        d.add_paragraph(text)
    if table:
        t = d.add_table(rows=1, cols=len(table))
        for i, text in enumerate(table):
            t.cell(0, i).text = text
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def edit_member(data: bytes, name: str, edit: Callable[[bytes], bytes]) -> bytes:
    """A copy of a zip package with member `name` passed through `edit`."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            body = src.read(info)
            dst.writestr(info.filename, edit(body) if info.filename == name else body)
    return out.getvalue()
