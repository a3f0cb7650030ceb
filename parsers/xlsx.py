"""Read an .xlsx/.xlsm workbook (openpyxl, streaming; macros never kept) into grids."""

from __future__ import annotations

import datetime as dt
import io
import re
import time
import unicodedata
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import replace
from xml.sax.saxutils import unescape as xml_unescape

import openpyxl
from openpyxl.cell.rich_text import CellRichText
from openpyxl.utils.cell import get_column_letter, range_boundaries

from parsers.grid import Cell, Extracted, Grid, Row
from parsers.safety import DEFAULT_LIMITS, Limits, TimeLimitExceeded
from parsers.vntext import fold_ws, normalize

try:
    from parsers.vntext import smart_text as _smart_text
except ImportError:  # the legacy-encoding converter has not landed yet

    def _smart_text(text: str, font_name: str | None = None) -> tuple[str, str | None]:
        return normalize(text), None


_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MERGE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref\s*=\s*[\"']([^\"']+)[\"']")
_HAS_FORMULA = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?f[\s/>]")
_PFX = rb"(?:[A-Za-z_][\w.-]*:)?"
# A cell whose formula is followed by no (or an empty) cached value: <c r=..><f>..</f></c>.
_UNCACHED = re.compile(
    rb"<" + _PFX + rb"c\b([^>/]*)>\s*<" + _PFX + rb"f\b[^>]*?(?:/>|>([^<]*)</" + _PFX + rb"f>)\s*"
    rb"(?:<" + _PFX + rb"v\s*/>|<" + _PFX + rb"v>\s*</" + _PFX + rb"v>)?\s*</" + _PFX + rb"c>"
)
_REF_ATTR = re.compile(rb"\br\s*=\s*[\"']([A-Za-z]{1,3}[0-9]{1,7})[\"']")
_MERGE_BUDGET = 2_000_000  # merged-cell copies made per sheet at most


def convert_runs(runs: Iterable[tuple[str, str | None]]) -> tuple[str, tuple[str, ...], str | None]:
    """Convert text runs, each with its font, to (text, non-empty lines, legacy encoding)."""
    runs = tuple(runs)
    if len(runs) == 1 and not _LINE_BREAK.search(runs[0][0]):
        text, legacy = _smart_text(runs[0][0], runs[0][1])  # the common case: one plain run
        return text, ((text,) if text else ()), legacy
    pieces: list[str] = []
    legacy = None
    for raw, font in runs:
        if not raw:
            continue
        for i, part in enumerate(_LINE_BREAK.split(raw)):
            if i:
                pieces.append("\n")
            if not part or part.isspace():
                if part:
                    pieces.append(" ")
                continue
            converted, enc = _smart_text(part, font)
            if enc and legacy is None:
                legacy = enc
            pieces.append(
                (" " if part[0].isspace() else "") + converted + (" " if part[-1].isspace() else "")
            )
    joined = "".join(pieces)
    if not unicodedata.is_normalized("NFC", joined):  # a mark split from its letter by a run
        joined = unicodedata.normalize("NFC", joined)
    lines = tuple(line for line in (fold_ws(x) for x in joined.split("\n")) if line)
    return " ".join(lines), lines, legacy


def unescape_ooxml(text: str) -> str:
    """Undo the `_xHHHH_` escapes Excel writes for control characters such as CR."""
    if "_x" not in text:
        return text
    return _OOXML_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)


def number_text(value: float | int, percent: bool = False) -> str:
    """A number as a person reads it: 3 not 3.0, 12.5, and 50% for percent formats."""
    if percent:
        return number_text(round(value * 100, 10)) + "%"
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


def date_text(value: dt.date | dt.time | dt.timedelta) -> str:
    """dd/mm/yyyy for dates (with HH:MM when a time is set), HH:MM for times."""
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0, 0):
            return value.strftime("%d/%m/%Y")
        return value.strftime("%d/%m/%Y %H:%M")
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, dt.time):
        return value.strftime("%H:%M")
    return str(value)


class _TextCache:
    """Memoises run conversion: workbooks repeat the same labels and fonts many times."""

    def __init__(self) -> None:
        self._memo: dict[tuple, tuple[str, tuple[str, ...], str | None]] = {}

    def __call__(self, runs: tuple[tuple[str, str | None], ...]):
        hit = self._memo.get(runs)
        if hit is None:
            hit = convert_runs(runs)
            if len(self._memo) < 50_000:
                self._memo[runs] = hit
        return hit


def read_xlsx(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Extracted:
    """One Grid per worksheet: visible sheets in workbook order, then hidden ones."""
    deadline = time.monotonic() + limits.time_limit
    visible: list[Grid] = []
    hidden: list[Grid] = []
    convert = _TextCache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about extensions it drops
        wb = openpyxl.load_workbook(
            io.BytesIO(data), read_only=True, data_only=True, keep_vba=False,
            keep_links=False, rich_text=True,
        )
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                for ws in wb.worksheets:
                    grid = _read_sheet(ws, zf, limits, deadline, convert)
                    (visible if ws.sheet_state == "visible" else hidden).append(grid)
        finally:
            wb.close()
    return Extracted(grids=visible + hidden)


def _sheet_xml(ws, zf: zipfile.ZipFile) -> bytes:
    path = getattr(ws, "_worksheet_path", None)
    if not path:
        return b""
    try:
        return zf.read(path.lstrip("/"))
    except KeyError:
        return b""


def _read_sheet(ws, zf: zipfile.ZipFile, limits: Limits, deadline: float, convert) -> Grid:
    title = ws.title
    raw = _sheet_xml(ws, zf)
    cells: dict[tuple[int, int], Cell] = {}
    for r, row in enumerate(
        ws.iter_rows(min_row=1, max_row=limits.max_rows, max_col=limits.max_cols), start=1
    ):
        if r % 100 == 0 and time.monotonic() > deadline:
            raise TimeLimitExceeded(title)
        for c, xc in enumerate(row, start=1):
            value = xc.value
            if value is None or value == "":
                continue
            cell = _make_cell(xc, value, f"{title}!{get_column_letter(c)}{r}", convert)
            if cell is not None:
                cells[r, c] = cell
    if raw and _HAS_FORMULA.search(raw):
        for (r, c), formula in _uncached_formulas(raw).items():
            if r <= limits.max_rows and c <= limits.max_cols and (r, c) not in cells:
                loc = f"{title}!{get_column_letter(c)}{r}"
                cells[r, c] = Cell(text="=" + formula, location=loc, lines=("=" + formula,))
    if not cells:
        return Grid(name=title, rows=[], kind="sheet")
    max_r = max(r for r, _ in cells)
    max_c = max(c for _, c in cells)
    if raw:  # copies stay inside the bounds of real content: no empty merged margins
        _spread_merges(cells, _merged_ranges(raw), max_r, max_c)
    rows = [
        Row(cells=[cells.get((r, c)) for c in range(1, max_c + 1)], block=title)
        for r in range(1, max_r + 1)
    ]
    return Grid(name=title, rows=rows, kind="sheet")


def _make_cell(xc, value, location: str, convert) -> Cell | None:
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
        return Cell(text=text, location=location, lines=(text,))
    if isinstance(value, int | float):
        fmt = xc.number_format or ""
        text = number_text(value, percent=fmt.endswith("%"))
        return Cell(text=text, location=location, lines=(text,), number=float(value))
    if isinstance(value, dt.date | dt.time | dt.timedelta):
        text = date_text(value)
        return Cell(text=text, location=location, lines=(text,))
    font = _font_name(xc)
    if isinstance(value, CellRichText):
        runs = tuple(
            (unescape_ooxml(part), font) if isinstance(part, str)
            else (unescape_ooxml(part.text or ""), (part.font.rFont if part.font else None) or font)
            for part in value
        )
    else:
        runs = ((unescape_ooxml(str(value)), font),)
    text, lines, legacy = convert(runs)
    if not text:
        return None
    return Cell(text=text, location=location, lines=lines, legacy=legacy)


def _font_name(xc) -> str | None:
    try:
        return xc.font.name
    except (AttributeError, IndexError, TypeError):
        return None


def _merged_ranges(raw: bytes) -> list[tuple[int, int, int, int]]:
    out = []
    for m in _MERGE.finditer(raw):
        try:
            min_col, min_row, max_col, max_row = range_boundaries(m.group(1).decode("ascii"))
        except (ValueError, TypeError, UnicodeDecodeError):
            continue
        if None not in (min_col, min_row, max_col, max_row):
            out.append((min_row, min_col, max_row, max_col))
    return out


def _spread_merges(
    cells: dict[tuple[int, int], Cell], ranges: list[tuple[int, int, int, int]],
    max_r: int, max_c: int,
) -> None:
    """Give every other cell of a merged range a merged=True copy of its origin."""
    budget = _MERGE_BUDGET
    for r0, c0, r1, c1 in ranges:
        origin = cells.get((r0, c0))
        if origin is None or origin.merged:
            continue
        copy = replace(origin, merged=True)
        for r in range(r0, min(r1, max_r) + 1):
            for c in range(c0, min(c1, max_c) + 1):
                if (r, c) != (r0, c0):
                    cells[r, c] = copy
                    budget -= 1
            if budget <= 0:
                return


def _uncached_formulas(raw: bytes) -> dict[tuple[int, int], str]:
    """Cells holding a formula but no cached value (files written by scripts, not Excel)."""
    out: dict[tuple[int, int], str] = {}
    for m in _UNCACHED.finditer(raw):
        ref = _REF_ATTR.search(m.group(1))
        if ref is None:
            continue
        try:
            col, row = range_boundaries(ref.group(1).decode("ascii"))[:2]
        except (ValueError, TypeError):
            continue
        formula = xml_unescape((m.group(2) or b"").decode("utf-8", "replace"), {"&quot;": '"'})
        out[row, col] = normalize(formula)
    return out
