"""Read a legacy .xls workbook (xlrd, BIFF) into grids, with merged cells and cell fonts."""

from __future__ import annotations

import io
import time

import xlrd
from xlrd.book import Book
from xlrd.sheet import Cell as XlrdCell
from xlrd.sheet import Sheet

from parsers.excel_values import get_column_letter
from parsers.grid import Cell, Extracted, Grid, Row
from parsers.safety import DEFAULT_LIMITS, Limits, TimeLimitExceeded
from parsers.xlsx import convert_runs, date_text, number_text

# xlrd's rich text: (offset in the text, font index) pairs per (row, column).
_RunList = list[tuple[int, int]]
_RunMap = dict[tuple[int, int], _RunList]


def read_xls(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    """One Grid per worksheet: visible sheets in workbook order, then hidden ones."""
    deadline = time.monotonic() + limits.time_limit
    log = io.StringIO()  # xlrd prints warnings to stdout otherwise
    try:
        book = xlrd.open_workbook(
            file_contents=data,
            formatting_info=True,
            logfile=log,
            verbosity=0,
            ragged_rows=True,
        )
    except (xlrd.XLRDError, NotImplementedError, AssertionError, IndexError, KeyError):
        # Some writers produce formatting records xlrd cannot follow; the values may still be.
        book = xlrd.open_workbook(
            file_contents=data,
            formatting_info=False,
            logfile=log,
            verbosity=0,
            ragged_rows=True,
        )
    try:
        visible: list[Grid] = []
        hidden: list[Grid] = []
        for sheet in book.sheets():
            grid = _read_sheet(book, sheet, limits, deadline)
            (visible if sheet.visibility == 0 else hidden).append(grid)
    finally:
        book.release_resources()
    return Extracted(grids=visible + hidden)


def _font_of(book: Book, sheet: Sheet, r: int, c: int) -> str | None:
    if not book.formatting_info:
        return None
    try:
        xf = book.xf_list[sheet.cell_xf_index(r, c)]
        name = book.font_list[xf.font_index].name
        return str(name) if name is not None else None
    except (IndexError, AttributeError):
        return None


def _read_sheet(book: Book, sheet: Sheet, limits: Limits, deadline: float) -> Grid:
    title = sheet.name
    cells: dict[tuple[int, int], Cell] = {}
    runmap = getattr(sheet, "rich_text_runlist_map", None) or {}
    for r in range(min(sheet.nrows, limits.max_rows)):
        if r % 100 == 99 and time.monotonic() > deadline:
            raise TimeLimitExceeded(title)
        ncols = min(sheet.row_len(r), limits.max_cols)
        for c in range(ncols):
            xc = sheet.cell(r, c)
            loc = f"{title}!{get_column_letter(c + 1)}{r + 1}"
            cell = _make_cell(book, sheet, xc, r, c, loc, runmap)
            if cell is not None:
                cells[r + 1, c + 1] = cell
    if not cells:
        return Grid(name=title, rows=[], kind="sheet")
    max_r = max(r for r, _ in cells)
    max_c = max(c for _, c in cells)
    for rlo, rhi, clo, chi in getattr(sheet, "merged_cells", None) or ():
        origin = cells.get((rlo + 1, clo + 1))
        if origin is None:
            continue
        copy = origin.merged_copy()
        for r in range(rlo + 1, min(rhi, max_r) + 1):
            for c in range(clo + 1, min(chi, max_c) + 1):
                if (r, c) != (rlo + 1, clo + 1):
                    cells[r, c] = copy
    rows = [
        Row(cells=[cells.get((r, c)) for c in range(1, max_c + 1)], block=title)
        for r in range(1, max_r + 1)
    ]
    return Grid(name=title, rows=rows, kind="sheet")


def _make_cell(
    book: Book, sheet: Sheet, xc: XlrdCell, r: int, c: int, loc: str, runmap: _RunMap
) -> Cell | None:
    ctype, value = xc.ctype, xc.value
    if ctype in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK):
        return None
    if ctype == xlrd.XL_CELL_NUMBER:
        text = number_text(value)
        return Cell(text=text, location=loc, lines=(text,), number=float(value))
    if ctype == xlrd.XL_CELL_DATE:
        try:
            text = date_text(xlrd.xldate_as_datetime(value, book.datemode))
        except (xlrd.xldate.XLDateError, ValueError, OverflowError):
            text = number_text(value)
        return Cell(text=text, location=loc, lines=(text,))
    if ctype == xlrd.XL_CELL_BOOLEAN:
        text = "TRUE" if value else "FALSE"
        return Cell(text=text, location=loc, lines=(text,))
    if ctype == xlrd.XL_CELL_ERROR:
        text = xlrd.error_text_from_code.get(value, "#ERR")
        return Cell(text=text, location=loc, lines=(text,))
    raw = str(value)
    font = _font_of(book, sheet, r, c)
    runs = _runs(book, raw, font, runmap.get((r, c)))
    text, lines, legacy = convert_runs(runs)
    if not text:
        return None
    return Cell(text=text, location=loc, lines=lines, legacy=legacy)


def _runs(
    book: Book, raw: str, font: str | None, runlist: _RunList | None
) -> tuple[tuple[str, str | None], ...]:
    """Split a rich-text cell at its font changes: [(offset, font_index), ...]."""
    if not runlist:
        return ((raw, font),)
    runs: list[tuple[str, str | None]] = []
    bounds = [(0, None)] + [(off, idx) for off, idx in runlist if 0 < off <= len(raw)]
    if runlist and runlist[0][0] == 0:
        bounds[0] = (0, runlist[0][1])
    for i, (start, idx) in enumerate(bounds):
        end = bounds[i + 1][0] if i + 1 < len(bounds) else len(raw)
        name = font
        if idx is not None:
            try:
                name = book.font_list[idx].name or font
            except (IndexError, AttributeError):
                name = font
        runs.append((raw[start:end], name))
    return tuple(runs)
