"""The .xlsx reader: grids with locations, merged cells, numbers, dates, fonts and formulas."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import zipfile
from pathlib import Path

import openpyxl
import pytest
from lxml import etree
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Font

import parsers.xlsx as xlsx_module
from parsers.grid import Cell, Extracted, Grid
from parsers.safety import Limits, TimeLimitExceeded
from parsers.xlsx import read_xlsx
from tests.parsers.builders import edit_member, save_workbook

_save = save_workbook


_edit_member = edit_member


def _cell(grid: Grid, ref: str) -> Cell | None:
    col = openpyxl.utils.column_index_from_string(re.match(r"[A-Z]+", ref).group())
    row = int(re.search(r"\d+", ref).group())
    if row > len(grid.rows):
        return None
    cells = grid.rows[row - 1].cells
    return cells[col - 1] if col <= len(cells) else None


def test_locations_merged_ranges_and_lines():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Mẫu 01 (Quận)"
    ws["B2"] = "Đảng ủy phường\nKhương Trung"
    ws.merge_cells("B2:D3")
    ws["A5"], ws["D5"] = "TT", "Ghi chú"
    ws.merge_cells("A6:H6")  # empty origin: nothing to spread
    grid = read_xlsx(_save(wb)).grids[0]
    assert grid.name == "Mẫu 01 (Quận)" and grid.kind == "sheet"
    origin = _cell(grid, "B2")
    assert origin.text == "Đảng ủy phường Khương Trung"
    assert origin.lines == ("Đảng ủy phường", "Khương Trung")
    assert origin.location == "Mẫu 01 (Quận)!B2" and not origin.merged
    for ref in ("C2", "D2", "B3", "C3", "D3"):
        copy = _cell(grid, ref)
        assert copy.merged and copy.text == origin.text and copy.location == origin.location
    assert _cell(grid, "A2") is None
    assert all(row.block == "Mẫu 01 (Quận)" for row in grid.rows)
    assert len(grid.rows) == 5 and all(len(r.cells) == 4 for r in grid.rows)


def test_numbers_dates_and_percent():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["B1"], ws["C1"], ws["D1"] = 3, 2.5, 4.0, dt.date(2022, 2, 14)
    ws["E1"] = 0.25
    ws["E1"].number_format = "0%"
    ws["F1"] = True
    grid = read_xlsx(_save(wb)).grids[0]
    a, b, c, d, e, f = grid.rows[0].cells
    assert (a.text, a.number) == ("3", 3.0)
    assert (b.text, b.number) == ("2.5", 2.5)
    assert (c.text, c.number) == ("4", 4.0)
    assert (d.text, d.number) == ("14/02/2022", None)
    assert (e.text, e.number) == ("25%", 0.25)
    assert f.text == "TRUE"


def test_cached_formula_values_are_used_and_missing_ones_kept_as_formula():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["A2"] = 2, 3
    ws["A3"] = "=SUM(A1:A2)"
    ws["B3"] = "=COUNTA(A1:A2)"
    data = _save(wb)
    # Give A3 the cached value Excel would store; B3 stays as a script wrote it.
    cached = _edit_member(
        data,
        "xl/worksheets/sheet1.xml",
        lambda b: re.sub(rb"(<f>SUM\(A1:A2\)</f>)<v\s*/?>(?:</v>)?", rb"\1<v>5</v>", b),
    )
    grid = read_xlsx(cached).grids[0]
    total = _cell(grid, "A3")
    assert (total.text, total.number) == ("5", 5.0)
    uncached = _cell(grid, "B3")
    assert uncached.text == "=COUNTA(A1:A2)" and uncached.number is None


def _to_shared_string(data: bytes, ref: str) -> bytes:
    """Move an inline (rich) string into a sharedStrings part, where Excel keeps rich text."""
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml")
    m = re.search(rb'<c r="%s"[^>]*t="inlineStr"[^>]*><is>(.*?)</is></c>' % ref.encode(), sheet)
    sheet = sheet.replace(m.group(0), b'<c r="%s" t="s"><v>0</v></c>' % ref.encode())
    shared = (
        b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/'
        b'spreadsheetml/2006/main" count="1" uniqueCount="1"><si>' + m.group(1) + b"</si></sst>"
    )
    rel = (
        b'<Relationship Id="rIdSST" Target="sharedStrings.xml" Type="http://schemas.'
        b'openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/></Relationships>'
    )
    override = (
        b'<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats'
        b'-officedocument.spreadsheetml.sharedStrings+xml"/></Types>'
    )
    data = _edit_member(data, "xl/worksheets/sheet1.xml", lambda _: sheet)
    data = _edit_member(
        data, "xl/_rels/workbook.xml.rels", lambda b: b.replace(b"</Relationships>", rel)
    )
    data = _edit_member(data, "[Content_Types].xml", lambda b: b.replace(b"</Types>", override))
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
        dst.writestr("xl/sharedStrings.xml", shared)
    return out.getvalue()


def test_legacy_fonts_cell_and_rich_text_runs():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Hµ Néi"
    ws["A1"].font = Font(name=".VnTime")
    # Each run in its own legacy font, the cell itself in a Unicode font.
    ws["A2"] = CellRichText(
        [
            TextBlock(InlineFont(rFont=".VnTime"), "Ph\xadêng "),
            TextBlock(InlineFont(rFont="VNI-Times"), "Khöông Trung"),
        ]
    )
    ws["A2"].font = Font(name="Times New Roman")
    ws["A3"] = "Hà Nội"
    ws["A3"].font = Font(name=".VnTime")
    data = _to_shared_string(_save(wb), "A2")
    grid = read_xlsx(data).grids[0]
    a1, a2, a3 = (row.cells[0] for row in grid.rows)
    assert (a1.text, a1.legacy) == ("Hà Nội", "tcvn3")
    assert a2.text == "Phường Khương Trung" and a2.legacy == "tcvn3"
    assert (a3.text, a3.legacy) == ("Hà Nội", None)  # genuine Unicode is never converted


def test_nfd_and_white_space_are_normalised():
    wb = openpyxl.Workbook()
    wb.active["A1"] = "  Nguye\u0302\u0303n   Va\u0306n\u00a0A  "
    grid = read_xlsx(_save(wb)).grids[0]
    assert grid.rows[0].cells[0].text == "Nguyễn Văn A"


def test_escaped_carriage_returns_become_line_breaks():
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Dòng một_x000D_\nDòng hai"
    grid = read_xlsx(_save(wb)).grids[0]
    assert grid.rows[0].cells[0].lines == ("Dòng một", "Dòng hai")


def test_sheet_order_hidden_last_chartsheet_skipped():
    wb = openpyxl.Workbook()
    wb.active.title = "Hướng dẫn"
    wb.active["A1"] = "x"
    hidden = wb.create_sheet("Ẩn")
    hidden["A1"] = "y"
    hidden.sheet_state = "hidden"
    m2 = wb.create_sheet("M2")
    m2["A1"], m2["A2"] = 1, 2
    chart = BarChart()
    chart.add_data(Reference(m2, min_col=1, min_row=1, max_row=2))
    wb.create_chartsheet("Biểu đồ").add_chart(chart)
    names = [g.name for g in read_xlsx(_save(wb)).grids]
    assert names == ["Hướng dẫn", "M2", "Ẩn"]


def test_formatting_far_away_costs_nothing_and_caps_apply():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Mẫu"
    ws.cell(1_000_000, 1).font = Font(bold=True)  # styled, empty
    ws.cell(1, 16_000).font = Font(bold=True)
    ws.cell(40, 2).value = "far row"
    ws.cell(2, 30).value = "far col"
    data = _save(wb)
    start = time.perf_counter()
    grid = read_xlsx(data).grids[0]
    assert time.perf_counter() - start < 2
    assert len(grid.rows) == 40 and len(grid.rows[0].cells) == 30
    small = read_xlsx(data, Limits(max_rows=10, max_cols=5)).grids[0]
    assert len(small.rows) == 1 and len(small.rows[0].cells) == 1


def test_huge_merged_range_is_clipped():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Tiêu đề"
    ws["A3"] = "x"
    data = _save(wb)
    data = _edit_member(
        data,
        "xl/worksheets/sheet1.xml",
        lambda b: b.replace(
            b"</sheetData>",
            b'</sheetData><mergeCells count="1"><mergeCell ref="A1:XFD1048576"/></mergeCells>',
        ),
    )
    start = time.perf_counter()
    grid = read_xlsx(data).grids[0]
    assert time.perf_counter() - start < 2
    assert len(grid.rows) == 3 and grid.rows[2].cells[0].merged


def test_macro_enabled_workbook_reads_without_vba():
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Mẫu số 01"
    data = _edit_member(
        _save(wb),
        "[Content_Types].xml",
        lambda b: b.replace(
            b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        ),
    )
    assert read_xlsx(data).grids[0].rows[0].cells[0].text == "Mẫu số 01"


def test_time_limit_is_enforced_between_rows():
    wb = openpyxl.Workbook()
    for r in range(1, 302):
        wb.active.cell(r, 1).value = r
    with pytest.raises(TimeLimitExceeded):
        read_xlsx(_save(wb), Limits(time_limit=0))


def test_inline_runs_first_text_and_font_and_cells_without_references():
    """A run's first <t> and the first <rPr> naming a font count; styled empty cells hold
    nothing yet still take their column, so the cells after them land where Excel shows them."""
    sheet_data = (
        "<sheetData><row r='1'>"
        "<c r='A1' t='inlineStr'><is>"
        "<r><rPr><b/></rPr><rPr><rFont val='.VnTime'/></rPr><t>Hµ </t><t>ignored</t></r>"
        "<r><t>Néi</t></r></is></c>"
        "<c s='1'/><c t='inlineStr'><is><t>C</t></is></c>"
        "</row></sheetData>"
    )

    def edit(xml: bytes) -> bytes:
        return re.sub(rb"<sheetData\s*/>|<sheetData>.*</sheetData>", sheet_data.encode(), xml)

    wb = openpyxl.Workbook()
    wb.active["A1"] = "x"
    grid = read_xlsx(_edit_member(_save(wb), "xl/worksheets/sheet1.xml", edit)).grids[0]
    a1, b1, c1 = grid.rows[0].cells
    assert (a1.text, a1.legacy) == ("Hà Néi", "tcvn3")  # only the first run is in .VnTime
    assert b1 is None
    assert (c1.text, c1.location) == ("C", "Sheet!C1")
    assert c1.merged_copy() == Cell("C", "Sheet!C1", ("C",), None, True, None)


def _workbooks() -> list[bytes]:
    forms = Path(__file__).resolve().parents[1] / "fixtures" / "forms"
    return [p.read_bytes() for p in sorted(forms.glob("*.xlsx"))]


def test_a_sheet_parsed_whole_reads_as_the_stream_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """Small sheet parts are parsed whole: every corpus workbook reads exactly as streamed."""
    whole = [_outcome(data) for data in _workbooks()]
    monkeypatch.setattr(xlsx_module, "_TREE_MAX_BYTES", -1)  # every sheet streamed
    assert [_outcome(data) for data in _workbooks()] == whole
    assert any(not isinstance(o, str) and o.grids and o.grids[0].rows for o in whole)


def _outcome(data: bytes) -> Extracted | str:
    try:
        return read_xlsx(data)
    except Exception as exc:  # noqa: BLE001 - a refused workbook must be refused alike
        return type(exc).__name__


def test_a_small_sheet_damaged_after_the_rows_read_keeps_them() -> None:
    """A damaged part is streamed: the rows before the damage read as before (max_rows)."""
    rows = b"".join(b'<row r="%d"><c r="A%d"><v>%d</v></c></row>' % (i, i, i) for i in (1, 2, 3))
    data = edit_member(
        save_workbook(openpyxl.Workbook()),
        "xl/worksheets/sheet1.xml",
        lambda xml: re.sub(
            rb"<sheetData\s*/>|<sheetData>.*</sheetData>",
            b"<sheetData>" + rows + b"<row r='4'><c></sheetData>",
            xml,
            flags=re.S,
        ),
    )
    grid = read_xlsx(data, Limits(max_rows=2)).grids[0]
    assert [[c.text if c else "" for c in row.cells] for row in grid.rows] == [["1"], ["2"]]
    with pytest.raises(etree.XMLSyntaxError):
        read_xlsx(data, Limits(max_rows=10))
