"""Read an .xlsx/.xlsm/.xltx workbook into grids, straight from the package XML.

The sheet XML is read once with lxml (no entities, no DTD, no network: a small part parsed
whole, a large one streamed), stopping at Limits.max_rows; shared strings, number formats
and cell fonts come from their parts; the date and number-format rules are openpyxl's,
restated in parsers/excel_values.py. Macros are never read.

Hidden rows and columns are read like visible ones: Excel's SUM/COUNTA in the TỔNG row count
them too, and a row a unit hid is still what it sent (dropping it would lose data silently).
Hidden and very hidden sheets come after the visible ones, so the form is found there first.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import re
import time
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator
from typing import TypeAlias

from lxml import etree

from parsers.excel_values import (
    BUILTIN_FORMATS,
    CALENDAR_MAC_1904,
    CALENDAR_WINDOWS_1900,
    column_index_from_string,
    from_excel,
    from_ISO8601,
    get_column_letter,
    is_date_format,
    is_timedelta_format,
    range_boundaries,
)
from parsers.grid import Cell, Extracted, Grid, Row
from parsers.ooxml import SAFE_XML, main_part, open_package, parse_part, rels, xml_parser
from parsers.safety import DEFAULT_LIMITS, Limits, TimeLimitExceeded, cells_exceeded
from parsers.vntext import fold_ws, normalize
from parsers.vntext import smart_text as _smart_text

_LINE_BREAK = re.compile(r"\r\n|[\r\n\v\f\x85\u2028\u2029]")
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")
_MERGE = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?mergeCell\b[^>]*?\bref\s*=\s*[\"']([^\"']+)[\"']")
_MERGE_BUDGET = 2_000_000  # merged-cell copies made per sheet at most
# Sheet parts up to this size are parsed whole (a tree of at most a few MB), larger ones streamed.
_TREE_MAX_BYTES = 512 * 1024
_SHEET_TAGS = ("{*}c", "{*}row", "{*}mergeCell")


_Converted = tuple[str, tuple[str, ...], str | None]  # (text, lines, legacy encoding)
_MEMO_CHARS = 200  # runs up to this long are memoised: labels and names recur across forms


def convert_runs(runs: Iterable[tuple[str, str | None]]) -> tuple[str, tuple[str, ...], str | None]:
    """Convert text runs, each with its font, to (text, non-empty lines, legacy encoding)."""
    runs = tuple(runs)
    if not runs:
        return "", (), None
    if len(runs) == 1:
        if len(runs[0][0]) <= _MEMO_CHARS:
            return _convert_memo(runs)
    elif sum(len(text) for text, _font in runs) <= _MEMO_CHARS:
        return _convert_memo(runs)
    return _convert(runs)


@functools.lru_cache(maxsize=4096)
def _convert_memo(runs: tuple[tuple[str, str | None], ...]) -> _Converted:
    return _convert(runs)


def _convert(runs: tuple[tuple[str, str | None], ...]) -> _Converted:
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


_SML_NS = (
    "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "http://purl.oclc.org/ooxml/spreadsheetml/main",  # ISO "strict" OOXML
)
_REL_ATTRS = tuple(
    f"{{{ns}}}id"
    for ns in (
        "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
        "http://purl.oclc.org/ooxml/officeDocument/relationships",
    )
)
_CELL_REF = re.compile(r"\$?([A-Za-z]{1,3})\$?([0-9]{1,7})")
_MAX_COLUMN = 16_384
_Runs = tuple[tuple[str, str | None], ...]  # (text, font or None for "the cell's font")
# lxml ships no type information: elements are typed by name only.
_Element: TypeAlias = etree._Element


class _Styles:
    """Cell formats (xf index -> font name, date/percent number format) from styles.xml."""

    def __init__(self, root: _Element | None, ns: str) -> None:
        self._memo: dict[int, tuple[str | None, int]] = {}
        self._by_attr: dict[str | None, tuple[str | None, int]] = {}
        self.fonts: list[str | None] = []
        self.xfs: list[tuple[int, int]] = []
        self.formats: dict[int, str] = {}
        if root is None:
            return
        q = f"{{{ns}}}"
        # Plain loops over the children: several times cheaper than iterfind with a path.
        for fmt in _grandchildren(root, f"{q}numFmts", f"{q}numFmt"):
            with _ignored():
                self.formats[int(fmt.get("numFmtId"))] = fmt.get("formatCode") or ""
        name_tag = f"{q}name"
        for font in _grandchildren(root, f"{q}fonts", f"{q}font"):
            name = next((child for child in font if child.tag == name_tag), None)
            self.fonts.append(name.get("val") if name is not None else None)
        for xf in _grandchildren(root, f"{q}cellXfs", f"{q}xf"):
            self.xfs.append((_int(xf.get("fontId")), _int(xf.get("numFmtId"))))

    _NUMBER, _PERCENT, _DATE, _DURATION = range(4)

    def of(self, attr: str | None) -> tuple[str | None, int]:
        """(font name, number kind) of a cell's `s` attribute as written."""
        hit = self._by_attr.get(attr)
        if hit is None:
            hit = self.get(_int(attr))
            if len(self._by_attr) < 4096:
                self._by_attr[attr] = hit
        return hit

    def get(self, index: int) -> tuple[str | None, int]:
        """(font name, number kind) of one cell format."""
        hit = self._memo.get(index)
        if hit is not None:
            return hit
        font, kind = None, self._NUMBER
        if 0 <= index < len(self.xfs):
            font_id, fmt_id = self.xfs[index]
            if 0 <= font_id < len(self.fonts):
                font = self.fonts[font_id]
            code = self.formats.get(fmt_id)
            if code is None:
                code = BUILTIN_FORMATS.get(fmt_id, "General")
            if is_timedelta_format(code):
                kind = self._DURATION
            elif is_date_format(code):
                kind = self._DATE
            elif code.endswith("%"):
                kind = self._PERCENT
        self._memo[index] = hit = (font, kind)
        return hit


def _grandchildren(root: _Element, outer: str, inner: str) -> Iterator[_Element]:
    """What root.iterfind("outer/inner") finds, in the same order."""
    for parent in root:
        if parent.tag == outer:
            for child in parent:
                if child.tag == inner:
                    yield child


class _ignored:
    """Context manager: skip one malformed style entry."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        return exc_type is not None and issubclass(exc_type, (TypeError, ValueError))


def _int(value: str | None, default: int = 0) -> int:
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class _Book:
    """The workbook part: its sheets, date system, shared strings and styles."""

    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        names = set(zf.namelist())
        path = main_part(zf, names, "xl/workbook.xml")
        root = parse_part(zf, path)
        if root is None:
            raise ValueError("no workbook part")
        self.ns = etree.QName(root).namespace or _SML_NS[0]
        q = f"{{{self.ns}}}"
        pr = root.find(f"{q}workbookPr")
        date1904 = pr is not None and (pr.get("date1904") or "").lower() in ("1", "true")
        self.epoch = CALENDAR_MAC_1904 if date1904 else CALENDAR_WINDOWS_1900
        targets: dict[str, tuple[str, str]] = {}
        shared_path = styles_path = None
        for rid, rtype, target in rels(zf, path):
            targets[rid] = (rtype, target)
            if rtype.endswith("/sharedStrings") and target in names:
                shared_path = target
            elif rtype.endswith("/styles") and target in names:
                styles_path = target
        self.sheets: list[tuple[str, str, str]] = []  # (name, state, member)
        for sheet in root.iterfind(f"{q}sheets/{q}sheet"):
            sheet_rid = next((sheet.get(a) for a in _REL_ATTRS if sheet.get(a)), None)
            rtype, target = targets.get(sheet_rid or "", ("", ""))
            if not rtype.endswith("/worksheet"):
                continue  # chart sheets, dialog and macro sheets hold no form
            name = normalize(sheet.get("name") or "") or f"Sheet{len(self.sheets) + 1}"
            self.sheets.append((name, sheet.get("state") or "visible", target))
        self._shared_path = shared_path
        self._shared: list[_Runs] | None = None
        self.styles = _Styles(parse_part(zf, styles_path) if styles_path else None, self.ns)

    @property
    def shared(self) -> list[_Runs]:
        """The shared string table, read on first use."""
        if self._shared is None:
            self._shared = []
            root = parse_part(self.zf, self._shared_path) if self._shared_path else None
            if root is not None:
                ns = etree.QName(root).namespace or self.ns
                self._shared = [_string_runs(si, ns) for si in root.iterchildren(f"{{{ns}}}si")]
        return self._shared


@functools.lru_cache(maxsize=8)
def _string_tags(ns: str) -> tuple[str, str, str, str]:
    """The qualified <t>, <r>, <rPr> and <rFont> tags of one SpreadsheetML namespace."""
    return f"{{{ns}}}t", f"{{{ns}}}r", f"{{{ns}}}rPr", f"{{{ns}}}rFont"


def _string_runs(el: _Element, ns: str) -> _Runs:
    """The text runs of a shared or inline string (<t>, or <r> runs with their rFont).

    Plain loops over the children, several times cheaper than el.find with a path.
    """
    t_tag, r_tag, rpr_tag, font_tag = _string_tags(ns)
    for child in el:
        if child.tag == t_tag:
            return ((child.text or "", None),)
    runs = []
    for r in el:
        if r.tag != r_tag:
            continue
        text: str | None = None  # the first <t>'s text
        font: _Element | None = None  # the first <rFont> of the <rPr> children
        for part in r:
            tag = part.tag
            if tag == t_tag:
                if text is None:
                    text = part.text or ""
            elif tag == rpr_tag and font is None:
                for prop in part:
                    if prop.tag == font_tag:
                        font = prop
                        break
        runs.append((text or "", font.get("val") if font is not None else None))
    return tuple(runs)


class _TextCache:
    """Memoises run conversion: workbooks repeat the same labels and fonts many times."""

    def __init__(self) -> None:
        self._memo: dict[tuple[_Runs, str | None], _Converted] = {}

    def __call__(self, runs: _Runs, font: str | None) -> _Converted:
        key = (runs, font)
        hit = self._memo.get(key)
        if hit is None:
            if len(runs) == 1:  # nearly every cell: one run, no genexpr
                text, own = runs[0]
                hit = convert_runs(((unescape_ooxml(text), own or font),))
            else:
                hit = convert_runs(tuple((unescape_ooxml(text), f or font) for text, f in runs))
            if len(self._memo) < 50_000:
                self._memo[key] = hit
        return hit


def read_xlsx(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, package: zipfile.ZipFile | None = None
) -> Extracted:
    """One Grid per worksheet: visible sheets in workbook order, then hidden ones.

    `package`: the zip of `data` when the caller has opened it already.
    """
    deadline = time.monotonic() + limits.time_limit
    visible: list[Grid] = []
    hidden: list[Grid] = []
    convert = _TextCache()
    with open_package(data, package) as zf:
        book = _Book(zf)
        for name, state, path in book.sheets:
            grid = _read_sheet(book, name, path, limits, deadline, convert)
            (visible if state == "visible" else hidden).append(grid)
    return Extracted(grids=visible + hidden)


def _read_sheet(
    book: _Book, title: str, path: str, limits: Limits, deadline: float, convert: _TextCache
) -> Grid:
    try:
        raw = book.zf.read(path)
    except KeyError:
        return Grid(name=title, rows=[], kind="sheet")
    cells: dict[tuple[int, int], Cell] = {}
    merges: list[str] = []
    max_rows, max_cols = limits.max_rows, limits.max_cols
    row_no = seen = 0
    stopped = False
    tags = ("", "", "", "", "")  # c, v, f, is and the namespace, set at the first element
    events, streaming = _sheet_events(raw)
    current: _Element | None = None  # the row whose cells are being read
    col = row_cells = 0
    c_tag = ""
    for _event, el in events:
        tag = el.tag
        if tag == c_tag:
            pass  # a cell, by far the most frequent: no other test first
        elif tag.endswith("}mergeCell") or tag == "mergeCell":
            ref = el.get("ref")
            if ref:
                merges.append(ref)
            continue
        elif not c_tag:
            q = tag[: tag.index("}") + 1] if tag.startswith("{") else ""
            tags = (f"{q}c", f"{q}v", f"{q}f", f"{q}is", q[1:-1])
            c_tag = tags[0]
        if tag == c_tag:
            parent = el.getparent()
            if parent is not current or parent is None:  # the current row was checked
                if parent is None or not (parent.tag.endswith("}row") or parent.tag == "row"):
                    continue
                current, col, row_cells = parent, 0, 0
                row_no = _int(parent.get("r"), row_no + 1)
                if row_no > max_rows:
                    stopped = True
                    break
            row_cells += 1
            seen += 1
            if seen % 256 == 0:  # the clock and the limits, often enough to stop a runaway sheet
                if time.monotonic() > deadline:
                    raise TimeLimitExceeded(title)
                cells_exceeded(row_cells, seen, limits, f"{title}!{row_no}:{row_no}")
            ref = el.get("r")
            at = _ref_position(ref) if ref else None
            if at is None:
                r, col = row_no, col + 1
            else:
                r, col = at
            # A cell without children (only a style) holds nothing to read.
            if r <= max_rows and col <= max_cols and len(el):
                cell = _make_cell(el, tags, book, title, r, col, convert)
                if cell is not None:
                    cells[r, col] = cell
            if streaming and row_cells % 512 == 0:  # a long row: keep memory flat within it
                el.clear()
                while el.getprevious() is not None:
                    del parent[0]
            continue
        # The end of a row: one without cells still counts for the row numbers.
        if el is current:
            cells_exceeded(row_cells, seen, limits, f"{title}!{row_no}:{row_no}")
        else:
            row_no = _int(el.get("r"), row_no + 1)
            if row_no > max_rows:
                stopped = True
                break
        current = None
        if streaming:
            el.clear()
            while el.getprevious() is not None:  # keep memory flat on long sheets
                del el.getparent()[0]
    del events
    if not cells:
        return Grid(name=title, rows=[], kind="sheet")
    if stopped:  # the merged ranges follow the rows we did not read
        merges = [m.group(1).decode("ascii", "replace") for m in _MERGE.finditer(raw)]
    max_r = max(r for r, _ in cells)
    max_c = max(c for _, c in cells)
    # copies stay inside the bounds of real content: no empty merged margins
    _spread_merges(cells, _merged_ranges(merges), max_r, max_c)
    table: list[list[Cell | None]] = [[None] * max_c for _ in range(max_r)]
    for (r, c), cell in cells.items():
        if r >= 1 and c >= 1:  # a row numbered 0 or below has no place in the grid
            table[r - 1][c - 1] = cell
    return Grid(name=title, rows=[Row(cells=line, block=title) for line in table], kind="sheet")


def _sheet_events(raw: bytes) -> tuple[Iterator[tuple[str, _Element]], bool]:
    """The end events of the sheet's cells, rows and merged ranges, and whether streamed.

    A sheet part of a form is small: parsed whole and walked, it costs a third less than
    a stream. A large one is streamed, cells one by one and not whole rows, so a row of
    millions of cells never sits in memory. A small part that is not well-formed XML is
    streamed too: the rows read before the damage (up to Limits.max_rows) are then read
    exactly as before.
    """
    if len(raw) <= _TREE_MAX_BYTES:
        try:
            root = etree.fromstring(raw, xml_parser())
        except etree.XMLSyntaxError:
            pass
        else:
            return etree.iterwalk(root, events=("end",), tag=_SHEET_TAGS), False
    events = etree.iterparse(io.BytesIO(raw), events=("end",), tag=_SHEET_TAGS, **SAFE_XML)
    return events, True


@functools.lru_cache(maxsize=8192)
def _ref_position(ref: str) -> tuple[int, int] | None:
    """(row, column) of a cell reference such as "B7" or "$B$7"; None when it is not one."""
    m = _CELL_REF.fullmatch(ref)
    if m is None:
        return None
    letters = m.group(1).upper()
    col = column_index_from_string(letters) if len(letters) <= 3 else _MAX_COLUMN + 1
    return int(m.group(2)), col


def _make_cell(
    xc: _Element,
    tags: tuple[str, str, str, str, str],
    book: _Book,
    title: str,
    r: int,
    col: int,
    convert: _TextCache,
) -> Cell | None:
    _c, v_tag, f_tag, is_tag, ns = tags
    kind = xc.get("t") or "n"
    value = formula = inline = None
    for child in xc:
        tag = child.tag
        if tag == v_tag:
            value = child.text or None
        elif tag == f_tag:
            formula = child
        elif tag == is_tag:
            inline = child
    if kind == "inlineStr":
        if inline is None:
            return None
        runs = _string_runs(inline, ns)
    elif value is None:
        if formula is None:
            return None
        # A formula with no cached value (written by a script, not by Excel): show it as is.
        text = "=" + normalize(formula.text or "")
        return Cell(text, _location(title, r, col), (text,))
    elif kind == "n":
        return _number_cell(value, book.styles.of(xc.get("s")), book, title, r, col)
    elif kind == "s":
        try:
            runs = book.shared[int(value)]
        except (ValueError, IndexError):
            return None
    elif kind == "b":
        text = "TRUE" if value.strip() not in ("0", "false", "") else "FALSE"
        return Cell(text, _location(title, r, col), (text,))
    elif kind == "d":
        try:
            moment = from_ISO8601(value.strip())
            text = date_text(moment) if moment is not None else normalize(value)
        except (ValueError, TypeError, AttributeError):
            text = normalize(value)
        return Cell(text, _location(title, r, col), (text,)) if text else None
    else:  # str, e
        runs = ((value, None),)
    text, lines, legacy = convert(runs, book.styles.of(xc.get("s"))[0])
    if not text:
        return None
    return Cell(text, _location(title, r, col), lines, None, False, legacy)


def _location(title: str, r: int, col: int) -> str:
    return f"{title}!{get_column_letter(col)}{r}"


def _number_cell(
    value: str, style: tuple[str | None, int], book: _Book, title: str, r: int, col: int
) -> Cell | None:
    raw = value.strip()
    try:
        number: int | float = float(raw) if "." in raw or "e" in raw or "E" in raw else int(raw)
    except ValueError:
        try:
            number = float(raw)
        except ValueError:
            text = normalize(value)
            return Cell(text, _location(title, r, col), (text,)) if text else None
    kind = style[1]
    if kind == _Styles._DATE or kind == _Styles._DURATION:
        try:
            moment = from_excel(number, book.epoch, timedelta=kind == _Styles._DURATION)
        except (OverflowError, ValueError, TypeError):
            moment = None
        if moment is not None:
            text = date_text(moment)
            return Cell(text, _location(title, r, col), (text,))
    text = number_text(number, percent=kind == _Styles._PERCENT)
    return Cell(text, _location(title, r, col), (text,), float(number))


def _merged_ranges(refs: list[str]) -> list[tuple[int, int, int, int]]:
    out = []
    for ref in refs:
        try:
            min_col, min_row, max_col, max_row = range_boundaries(ref.replace("$", ""))
        except (ValueError, TypeError):
            continue
        if (
            min_col is not None
            and min_row is not None
            and max_col is not None
            and max_row is not None
        ):
            out.append((min_row, min_col, max_row, max_col))
    return out


def _spread_merges(
    cells: dict[tuple[int, int], Cell],
    ranges: list[tuple[int, int, int, int]],
    max_r: int,
    max_c: int,
) -> None:
    """Give every other cell of a merged range a merged=True copy of its origin."""
    budget = _MERGE_BUDGET
    for r0, c0, r1, c1 in ranges:
        origin = cells.get((r0, c0))
        if origin is None or origin.merged:
            continue
        copy = origin.merged_copy()
        for r in range(r0, min(r1, max_r) + 1):
            for c in range(c0, min(c1, max_c) + 1):
                if (r, c) != (r0, c0):
                    cells[r, c] = copy
                    budget -= 1
            if budget <= 0:
                return
