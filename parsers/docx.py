"""Read a .docx body (paragraphs, tables with merged and nested cells, text boxes) into a grid."""

from __future__ import annotations

import contextlib
import functools
import posixpath
import time
import zipfile
from collections.abc import Callable, Iterator
from typing import TypeAlias

from lxml import etree

from parsers.docx_fonts import LegacyFontScan
from parsers.grid import Cell, Extracted, Grid, Row
from parsers.ooxml import main_part, open_package, rels, scan_part, xml_parser
from parsers.safety import DEFAULT_LIMITS, Limits, TimeLimitExceeded, cells_exceeded
from parsers.xlsx import convert_runs

_RunList: TypeAlias = list[tuple[str, str | None]]
# lxml ships no type information: elements are typed by name only.
_Element: TypeAlias = etree._Element

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
W_STRICT_NS = "http://purl.oclc.org/ooxml/wordprocessingml/main"
MC_NS = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_MC_ALT = f"{{{MC_NS}}}AlternateContent"
_MC_CHOICE = f"{{{MC_NS}}}Choice"
_MC_FALLBACK = f"{{{MC_NS}}}Fallback"
_UNSET = object()  # no font at this level of the style hierarchy
_MAX_SPAN = 64
_MAX_STYLE_DEPTH = 20


_TAG_NAMES = (
    "body",
    "p",
    "r",
    "t",
    "tab",
    "ptab",
    "br",
    "cr",
    "noBreakHyphen",
    "tbl",
    "tr",
    "tc",
    "tcPr",
    "trPr",
    "gridSpan",
    "gridBefore",
    "vMerge",
    "hMerge",
    "pPr",
    "pStyle",
    "rPr",
    "rStyle",
    "rFonts",
    "sdt",
    "sdtContent",
    "sdtPr",
    "showingPlcHdr",
    "customXml",
    "moveFrom",
    "txbxContent",
    "tblGrid",
    "gridCol",
    "style",
    "basedOn",
    "docDefaults",
    "rPrDefault",
)


class _Tags:
    """Qualified tag names for one WordprocessingML namespace (transitional or strict)."""

    body: str
    p: str
    r: str
    t: str
    tab: str
    ptab: str
    br: str
    cr: str
    noBreakHyphen: str
    tbl: str
    tr: str
    tc: str
    tcPr: str
    trPr: str
    gridSpan: str
    gridBefore: str
    vMerge: str
    hMerge: str
    pPr: str
    pStyle: str
    rPr: str
    rStyle: str
    rFonts: str
    sdt: str
    sdtContent: str
    sdtPr: str
    showingPlcHdr: str
    customXml: str
    moveFrom: str
    txbxContent: str
    tblGrid: str
    gridCol: str
    style: str
    basedOn: str
    docDefaults: str
    rPrDefault: str

    tabs: tuple[str, ...]
    breaks: tuple[str, ...]
    skipped: tuple[str, ...]

    def __init__(self, ns: str) -> None:
        for name in _TAG_NAMES:
            setattr(self, name, f"{{{ns}}}{name}")
        self.del_ = f"{{{ns}}}del"
        self.val = f"{{{ns}}}val"
        self.ascii = f"{{{ns}}}ascii"
        self.hAnsi = f"{{{ns}}}hAnsi"
        self.asciiTheme = f"{{{ns}}}asciiTheme"
        self.hAnsiTheme = f"{{{ns}}}hAnsiTheme"
        self.styleId = f"{{{ns}}}styleId"
        self.type = f"{{{ns}}}type"
        self.default = f"{{{ns}}}default"
        self.tabs = (self.tab, self.ptab)
        self.breaks = (self.br, self.cr)
        # Inline content that never reads as text (deleted, moved away, properties).
        self.skipped = (self.pPr, self.rPr, self.del_, self.moveFrom, self.sdtPr, _MC_FALLBACK)
        # What can give a paragraph or a cell content: text, a text box, a nested table.
        self.content = (
            self.t,
            *self.tabs,
            *self.breaks,
            self.noBreakHyphen,
            self.txbxContent,
            self.tbl,
        )
        self.layout = (self.gridSpan, self.vMerge, self.hMerge)


@functools.lru_cache(maxsize=4)
def _tags(ns: str) -> _Tags:
    """The tag names of one namespace, built once (never changed after)."""
    return _Tags(ns)


def read_docx(
    data: bytes, limits: Limits = DEFAULT_LIMITS, *, package: zipfile.ZipFile | None = None
) -> Extracted:
    """The document body as one grid: paragraphs as one-cell rows, table rows at grid columns.

    `package`: the zip of `data` when the caller has opened it already.
    """
    with open_package(data, package) as zf:
        doc_path, styles_path = _main_parts(zf)
        root = etree.fromstring(zf.read(doc_path), xml_parser())
        styles_root = None
        if styles_path is not None:
            try:
                # Scanned in chunks straight from the package; read whole only when needed.
                if scan_part(zf, styles_path, LegacyFontScan):
                    styles_root = etree.fromstring(zf.read(styles_path), xml_parser())
            except (KeyError, etree.XMLSyntaxError):
                styles_root = None  # fonts then come from the runs only
    ns = etree.QName(root).namespace or W_NS
    w = _tags(ns)
    body = _find(root, w.body)
    walker = _Walker(w, _Styles(styles_root, w), limits)
    if body is not None:
        walker.live, walker.laid_out = _mark(body, w)
        with contextlib.suppress(_Full):
            walker.blocks(body, walker.body_label)
    return Extracted(grids=[Grid(name="document", rows=walker.rows, kind="document")])


def _main_parts(zf: zipfile.ZipFile) -> tuple[str, str | None]:
    """The document part and its styles part, through the package relationships."""
    names = set(zf.namelist())
    doc_path = main_part(zf, names, "word/document.xml")
    styles_path = next(
        (t for _id, rtype, t in rels(zf, doc_path) if rtype.endswith("/styles") and t in names),
        None,
    )
    fallback = posixpath.join(posixpath.dirname(doc_path), "styles.xml")
    if styles_path is None and fallback in names:
        styles_path = fallback
    return doc_path, styles_path


def _rfonts_font(rpr: _Element | None, w: _Tags) -> object:
    """The Latin font an rPr sets: a name, None for a theme font, or _UNSET."""
    if rpr is None:
        return _UNSET
    rfonts = _find(rpr, w.rFonts)
    if rfonts is None:
        return _UNSET
    for name_attr, theme_attr in ((w.hAnsi, w.hAnsiTheme), (w.ascii, w.asciiTheme)):
        if rfonts.get(theme_attr):
            return None
        name = rfonts.get(name_attr)
        if name:
            return name
    return _UNSET


class _Styles:
    """Run fonts through style inheritance: run style, paragraph style, document defaults."""

    def __init__(self, root: _Element | None, w: _Tags) -> None:
        self.w = w
        self.fonts: dict[str, object] = {}
        self.based_on: dict[str, str] = {}
        self.default_para: str | None = None
        self.doc_default: object = _UNSET
        self._memo: dict[tuple[str | None, str | None], str | None] = {}
        # No style names a font: font() is None whatever the run and paragraph styles are,
        # so the walker need not look them up (most documents: their styles part is skipped).
        self.fontless = True
        if root is None:
            return
        defaults = _find(root, w.docDefaults)
        if defaults is not None:
            rpr_default = _find(defaults, w.rPrDefault)
            if rpr_default is not None:
                self.doc_default = _rfonts_font(_find(rpr_default, w.rPr), w)
        for style in root.iter(w.style):
            sid = style.get(w.styleId)
            if not sid:
                continue
            self.fonts[sid] = _rfonts_font(_find(style, w.rPr), w)
            based = _find(style, w.basedOn)
            if based is not None and based.get(w.val):
                self.based_on[sid] = based.get(w.val)
            if style.get(w.type) == "paragraph" and style.get(w.default) in ("1", "true", "on"):
                self.default_para = sid
        self.fontless = not isinstance(self.doc_default, str) and not any(
            isinstance(font, str) for font in self.fonts.values()
        )

    def _chain(self, sid: str | None) -> object:
        seen = 0
        while sid is not None and seen < _MAX_STYLE_DEPTH:
            font = self.fonts.get(sid, _UNSET)
            if font is not _UNSET:
                return font
            sid = self.based_on.get(sid)
            seen += 1
        return _UNSET

    def font(self, run_style: str | None, para_style: str | None) -> str | None:
        key = (run_style, para_style)
        if key in self._memo:
            return self._memo[key]
        font = self._chain(run_style) if run_style else _UNSET
        if font is _UNSET:
            font = self._chain(para_style or self.default_para)
        if font is _UNSET:
            font = self.doc_default
        result = font if isinstance(font, str) else None  # None: a theme font, or unset
        self._memo[key] = result
        return result


class _Full(Exception):
    """The row limit is reached: keep what was read."""


class _Walker:
    def __init__(self, w: _Tags, styles: _Styles, limits: Limits) -> None:
        self.w = w
        self.styles = styles
        self.limits = limits
        self.deadline = time.monotonic() + limits.time_limit
        self.rows: list[Row] = []
        self.tables = 0
        self.body_paragraphs = 0
        self.boxes = 0
        self.steps = 0
        self.cells = 0  # table cells met in the whole document
        # Paragraphs and cells with content, cells with a span or a merge (see _mark).
        self.live: set[_Element] = set()
        self.laid_out: set[_Element] = set()

    def _emit(self, row: Row) -> None:
        if len(self.rows) >= self.limits.max_rows:
            raise _Full
        self.rows.append(row)

    def _tick(self) -> None:
        self.steps += 1
        if self.steps % 200 == 0 and time.monotonic() > self.deadline:
            raise TimeLimitExceeded("document")

    def body_label(self) -> tuple[str, str]:
        self.body_paragraphs += 1
        return f"paragraph {self.body_paragraphs}", "body"

    # Block level: paragraphs and tables in document order.
    def blocks(self, container: _Element, label: Callable[[], tuple[str, str]]) -> None:
        w = self.w
        for child in container:
            tag = child.tag
            if tag == w.p:
                self._tick()
                location, block = label()
                if child not in self.live:
                    continue
                runs, boxes = self.paragraph_runs(child)
                text, lines, legacy = convert_runs(runs)
                if text:
                    self._emit(Row(cells=[Cell(text, location, lines, legacy=legacy)], block=block))
                for box in boxes:
                    self.text_box(box)
            elif tag == w.tbl:
                self.table(child)
            elif tag == w.sdt:
                if not _showing_placeholder(child, w):
                    content = _find(child, w.sdtContent)
                    if content is not None:
                        self.blocks(content, label)
            elif tag == w.customXml:
                self.blocks(child, label)
            elif tag == _MC_ALT:
                choice = child.find(_MC_CHOICE)
                if choice is not None:
                    self.blocks(choice, label)

    def text_box(self, box: _Element) -> None:
        self.boxes += 1
        k = self.boxes
        count = 0

        def label() -> tuple[str, str]:
            nonlocal count
            count += 1
            return f"text box {k}, paragraph {count}", f"text box {k}"

        self.blocks(box, label)

    # Inline level: the text of one paragraph as (text, font) runs.
    def paragraph_runs(self, p: _Element) -> tuple[list[tuple[str, str | None]], list[_Element]]:
        w = self.w
        ppr = None if self.styles.fontless else _find(p, w.pPr)
        pstyle = None
        if ppr is not None:
            ps = _find(ppr, w.pStyle)
            if ps is not None:
                pstyle = ps.get(w.val)
        runs: _RunList = []
        boxes: list[_Element] = []
        self._inline(p, pstyle, runs, boxes)
        return runs, boxes

    def _inline(
        self,
        el: _Element,
        pstyle: str | None,
        runs: _RunList,
        boxes: list[_Element],
    ) -> None:
        w = self.w
        for child in el:
            tag = child.tag
            if tag == w.r:
                self._run(child, pstyle, runs, boxes)
            elif tag in w.skipped:
                continue
            elif tag == w.sdt:
                if not _showing_placeholder(child, w):
                    self._inline(child, pstyle, runs, boxes)
            elif tag == _MC_ALT:
                choice = child.find(_MC_CHOICE)
                if choice is not None:
                    self._inline(choice, pstyle, runs, boxes)
            elif isinstance(tag, str):
                # hyperlink, ins, smartTag, fldSimple, customXml, sdtContent, moveTo, dir, bdo...
                self._inline(child, pstyle, runs, boxes)

    def _run(
        self,
        r: _Element,
        pstyle: str | None,
        runs: _RunList,
        boxes: list[_Element],
    ) -> None:
        w = self.w
        rpr: _Element | None = None
        buf: list[str] = []
        for child in r:
            tag = child.tag
            if tag == w.t:
                text = child.text
                if text:
                    buf.append(text)
            elif tag == w.rPr:
                rpr = child if rpr is None else rpr
            elif tag in w.tabs:
                buf.append("\t")
            elif tag in w.breaks:
                buf.append("\n")
            elif tag == w.noBreakHyphen:
                buf.append("-")
            elif isinstance(tag, str) and len(child):
                boxes.extend(_text_boxes(child, w))
        if not buf:
            return
        font = _rfonts_font(rpr, w)
        if font is _UNSET and self.styles.fontless:
            font = None
        elif font is _UNSET:
            rstyle = None
            if rpr is not None:
                rs = _find(rpr, w.rStyle)
                if rs is not None:
                    rstyle = rs.get(w.val)
            font = self.styles.font(rstyle, pstyle)
        runs.append(("".join(buf), font if isinstance(font, str) else None))

    # Tables: one Row per w:tr, cells at grid columns; nested tables follow their row.
    def table(self, tbl: _Element) -> None:
        """Emit a table's rows, located as "table N, row R, column C" (the contract's form).

        Tables are numbered in document order, nested ones included, so "table N" alone is
        unique: a form placed inside a frame table is simply the next table number.
        """
        w = self.w
        self.tables += 1
        n = self.tables
        block = f"table {n}"
        grid = _find(tbl, w.tblGrid)
        width = len(grid.findall(w.gridCol)) if grid is not None else 0
        own: list[Row] = []
        above: dict[int, Cell | None] = {}  # origin per grid column, for vMerge continuations
        max_row_cells, max_cells = self.limits.max_row_cells, self.limits.max_sheet_cells
        live, laid_out = self.live, self.laid_out
        for r_no, (tr, row_prompt) in enumerate(_children(tbl, w.tr, w), start=1):
            self._tick()
            cells: dict[int, Cell | None] = {}
            col = _int_val(_find_pr(tr, w.trPr, w.gridBefore), w, 0)
            pending: list[Row] = []
            saved, self.rows = self.rows, pending
            try:
                for tc, prompt in _children(tr, w.tc, w, row_prompt):
                    self.cells += 1
                    if col >= max_row_cells or self.cells > max_cells:
                        cells_exceeded(col + 1, self.cells, self.limits, f"table {n}, row {r_no}")
                    if tc in laid_out:
                        span, vmerge, hmerge = _cell_layout(_find(tc, w.tcPr), w)
                    else:
                        span, vmerge, hmerge = 1, None, None
                    if vmerge == "continue" and col in above:
                        origin = above[col]
                        cell = origin.merged_copy() if origin else None
                    elif hmerge == "continue" and col - 1 in cells:
                        left = cells[col - 1]
                        cell = left.merged_copy() if left else None
                        origin = above.get(col - 1)
                    elif prompt or tc not in live:  # a prompt still shown, or nothing in it
                        origin = cell = None
                    else:
                        location = f"{block}, row {r_no}, column {col + 1}"
                        origin = cell = self._cell_text(tc, location)
                    for extra in range(span):
                        cells[col + extra] = (
                            cell if extra == 0 or cell is None else cell.merged_copy()
                        )
                        above[col + extra] = origin
                    col += span
            finally:
                self.rows = saved
            width = max(width, col)
            row = Row(cells=[cells.get(c) for c in range(max(cells, default=-1) + 1)], block=block)
            own.append(row)
            self._emit(row)
            for extra_row in pending:
                self._emit(extra_row)
        for row in own:
            if len(row.cells) < width:
                row.cells.extend([None] * (width - len(row.cells)))

    def _cell_text(self, tc: _Element, location: str) -> Cell | None:
        """The cell's paragraphs as lines; nested tables and text boxes go to the pending rows.

        Paragraphs after a nested table (the note and signature under a form placed in a
        frame table) follow that table as one-cell rows of their own, "table 1, row 1,
        column 1, paragraph 9", in document order: they are not part of the cell's text.
        """
        w = self.w
        live = self.live
        lines: list[str] = []
        legacy: str | None = None
        paragraphs = 0
        after_table = False

        def visit(container: _Element) -> None:
            nonlocal legacy, paragraphs, after_table
            for child in container:
                tag = child.tag
                if tag == w.p:
                    paragraphs += 1
                    if child not in live:
                        continue
                    runs, boxes = self.paragraph_runs(child)
                    text, plines, enc = convert_runs(runs)
                    if after_table:
                        if text:
                            where = f"{location}, paragraph {paragraphs}"
                            self._emit(
                                Row(cells=[Cell(text, where, plines, legacy=enc)], block=location)
                            )
                    else:
                        lines.extend(plines)
                        legacy = legacy or enc
                    for box in boxes:
                        self.text_box(box)
                elif tag == w.tbl:
                    self.table(child)
                    after_table = True
                elif tag == w.sdt:
                    if not _showing_placeholder(child, w):
                        content = _find(child, w.sdtContent)
                        if content is not None:
                            visit(content)
                elif tag == w.customXml:
                    visit(child)

        visit(tc)
        if not lines:
            return None
        return Cell(" ".join(lines), location, tuple(lines), legacy=legacy)


def _mark(body: _Element, w: _Tags) -> tuple[set[_Element], set[_Element]]:
    """(paragraphs and cells with content, cells with a span or a merge) of the body.

    Content is text, a text box or a nested table: any other paragraph reads as empty and
    any other cell as blank, whatever else is in them, so the walker skips them (in a form
    most are empty). A cell whose properties hold no span or merge spans one column
    unmerged, so its properties need not be read. The search runs in lxml's C code; a
    false positive only costs the ordinary walk.
    """
    live: set[_Element] = set()
    laid_out: set[_Element] = set()
    p_tag, tc_tag, tcpr_tag, layout = w.p, w.tc, w.tcPr, w.layout
    for el in body.iter(*w.content, *layout):
        if el.tag in layout:
            pr = el.getparent()
            if pr is not None and pr.tag == tcpr_tag:
                laid_out.add(pr.getparent())
        else:
            live.update(el.iterancestors(p_tag, tc_tag))
    return live, laid_out


def _children(
    el: _Element, tag: str, w: _Tags, prompt: bool = False
) -> Iterator[tuple[_Element, bool]]:
    """Rows of a table / cells of a row, also when wrapped in content controls or customXml.

    Each comes with whether a control around it still shows its prompt: such a row or cell
    keeps its place in the grid and reads as empty.
    """
    for child in el:
        if child.tag == tag:
            yield child, prompt
        elif child.tag == w.sdt:
            content = _find(child, w.sdtContent)
            if content is not None:
                yield from _children(content, tag, w, prompt or _showing_placeholder(child, w))
        elif child.tag == w.customXml:
            yield from _children(child, tag, w, prompt)


def _find(el: _Element | None, tag: str) -> _Element | None:
    """The first child with this tag (a plain loop: several times cheaper than el.find)."""
    if el is not None:
        for child in el:
            if child.tag == tag:
                return child
    return None


def _find_pr(el: _Element | None, pr_tag: str, tag: str) -> _Element | None:
    return _find(_find(el, pr_tag), tag)


def _int_val(el: _Element | None, w: _Tags, default: int) -> int:
    if el is None:
        return default
    try:
        return int(el.get(w.val, default))
    except (TypeError, ValueError):
        return default


def _cell_layout(tcpr: _Element | None, w: _Tags) -> tuple[int, str | None, str | None]:
    """(grid span, vertical merge, horizontal merge) of a cell, its properties read once.

    A merge is "restart", "continue" (the attribute's default) or None when the cell is not
    merged; the first of each property counts, as Word reads them.
    """
    if tcpr is None:
        return 1, None, None
    span_el = vmerge = hmerge = None
    for child in tcpr:
        tag = child.tag
        if tag == w.gridSpan:
            span_el = span_el if span_el is not None else child
        elif tag == w.vMerge:
            vmerge = vmerge if vmerge is not None else child
        elif tag == w.hMerge:
            hmerge = hmerge if hmerge is not None else child
    span = 1 if span_el is None else min(max(_int_val(span_el, w, 1), 1), _MAX_SPAN)
    return span, _merge_value(vmerge, w), _merge_value(hmerge, w)


def _merge_value(el: _Element | None, w: _Tags) -> str | None:
    return None if el is None else el.get(w.val) or "continue"


def _showing_placeholder(sdt: _Element, w: _Tags) -> bool:
    """A content control still showing its prompt ("Click here to enter text")."""
    pr = _find(sdt, w.sdtPr)
    return pr is not None and _find(pr, w.showingPlcHdr) is not None


def _text_boxes(el: _Element, w: _Tags) -> list[_Element]:
    """Text box contents inside a drawing/picture, skipping mc:Fallback duplicates."""
    out = []
    for box in el.iter(w.txbxContent):
        skip = False
        for anc in box.iterancestors():
            if anc is el:
                break
            if anc.tag == _MC_FALLBACK or anc.tag == w.txbxContent:
                skip = True
                break
        if not skip:
            out.append(box)
    return out
