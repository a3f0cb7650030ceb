"""The .xls reader (xlrd): inputs are real BIFF8 files saved by LibreOffice."""

from __future__ import annotations

import datetime as dt
import io
import shutil

import openpyxl
import pytest
from openpyxl.styles import Font

from parsers.convert import convert_with_soffice
from parsers.xls import read_xls

pytestmark = [
    pytest.mark.soffice,
    pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice"),
]


@pytest.fixture(scope="module")
def xls_bytes() -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Mẫu 02"
    ws["B2"] = "Đảng ủy phường\nKhương Trung"
    ws.merge_cells("B2:C3")
    ws["A5"], ws["B5"], ws["C5"], ws["D5"] = 3, 2.5, "=A5+B5", dt.date(2022, 2, 14)
    ws["A6"] = "Hµ Néi"
    ws["A6"].font = Font(name=".VnTime")
    ws["D6"] = "Nguye\u0302\u0303n Va\u0306n A"
    hidden = wb.create_sheet("Ẩn")
    hidden["A1"] = "danh mục"
    hidden.sheet_state = "hidden"
    wb.create_sheet("Cuối")["A1"] = "x"
    buf = io.BytesIO()
    wb.save(buf)
    wb.close()
    return convert_with_soffice(buf.getvalue(), "xlsx", "xls")


def test_sheets_merges_numbers_dates(xls_bytes):
    grids = read_xls(xls_bytes).grids
    assert [g.name for g in grids] == ["Mẫu 02", "Cuối", "Ẩn"]
    rows = grids[0].rows
    origin = rows[1].cells[1]
    assert origin.location == "Mẫu 02!B2" and origin.lines == ("Đảng ủy phường", "Khương Trung")
    assert rows[2].cells[2].merged and rows[2].cells[2].location == "Mẫu 02!B2"
    a5, b5, c5, d5 = rows[4].cells
    assert (a5.text, a5.number) == ("3", 3.0)
    assert (b5.text, b5.number) == ("2.5", 2.5)
    assert (c5.text, c5.number) == ("5.5", 5.5)  # the formula's cached value
    assert d5.text == "14/02/2022" and d5.number is None


def test_legacy_cell_font_and_nfd(xls_bytes):
    rows = read_xls(xls_bytes).grids[0].rows
    a6, d6 = rows[5].cells[0], rows[5].cells[3]
    assert (a6.text, a6.legacy, a6.location) == ("Hà Nội", "tcvn3", "Mẫu 02!A6")
    assert d6.text == "Nguyễn Văn A" and d6.legacy is None


def test_garbage_raises_for_the_dispatcher_to_report():
    with pytest.raises(Exception):  # noqa: B017 - any xlrd failure; dispatch maps it
        read_xls(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600)
