"""The table body: entries by section, unfilled rows, the TỔNG row, where the table ends."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from parsers.finder.labels import (
    MARKER,
    NAME_LABEL,
    PLACEHOLDER_UNIT,
    STOP,
    clean_no,
    is_placeholder,
    is_total_label,
    is_tt_label,
    section_label,
    to_int,
)
from parsers.finder.layout import ROW_NUMBER, Layout, cell_at, detect_layout, location_at, text_at
from parsers.finder.splits import Listed, apply, decide
from parsers.finder.titles import row_models, spans_fields, split_models
from parsers.grid import Cell, Row
from parsers.model import FIELDS, Entry, Totals, UnfilledRow
from parsers.vntext import fold_accents

_DECLARED_EMPTY = re.compile(r"khong\s*dang\s*ky|khong\s*co\s*mo\s*hinh")


# A document table's block: "table 2", or "table 1, row 1, column 1, table 2" when nested.
_TABLE_BLOCK = re.compile(r"(?:^|, )table \d+$")


_ROMAN = re.compile(r"^(i{1,3}|iv|v|a|b|c)[.)]?$")


# Titles before a name that make the row an individual's ("Đồng chí", "Đ/c", "Ông", "Bà").
_PERSON = re.compile(r"^(?:dong\s*chi|d\s*/\s*c|ong|ba|anh|thay\s*giao|co\s*giao|bac\s*si)\b")


def _is_header_like(row: Row) -> bool:
    texts = [fold_accents(c.text) for _, c in row.nonempty() if len(c.text) < 80]
    return any(is_tt_label(t) for t in texts) and any(NAME_LABEL.search(t) for t in texts)


def _same_columns(a: Layout, b: Layout) -> bool:
    return (a.field_cols, a.model_col, a.field_label_col) == (
        b.field_cols,
        b.model_col,
        b.field_label_col,
    )


@dataclass
class Body:
    entries: list[Entry] = field(default_factory=list)
    unfilled: list[UnfilledRow] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    totals_location: dict[str, str] = field(default_factory=dict)
    declared_empty: bool = False
    unknown_fields: list[Cell] = field(default_factory=list)
    ambiguous_fields: list[Cell] = field(default_factory=list)
    saw_section: bool = False
    end: int = 0
    listed: list[Listed] = field(default_factory=list)  # cells read as several models
    unsettled_splits: list[tuple[Listed, str]] = field(default_factory=list)


def _next_table_row(rows: list[Row], i: int, block: str, lay: Layout) -> tuple[int, str] | None:
    """Row i left the table's block: where does the table go on, if it does?

    Documents only. A nested table (its rows come right after the row holding it) is skipped
    back to our block. A table split by a page break continues in the very next table when
    it has the same width: after its repeated header, or at once if it has none.
    """
    if not _TABLE_BLOCK.search(block):
        return None
    j = i
    if rows[i].block.startswith(block + ", "):
        # A table (or the text after it) nested in one of our cells: its block names our cell.
        while j < len(rows) and rows[j].block.startswith(block + ", "):
            j += 1
        return (j, block) if j < len(rows) and rows[j].block == block else None
    if not _TABLE_BLOCK.search(rows[i].block):
        return None
    while j < len(rows) and rows[j].block == rows[i].block:
        j += 1
    if j < len(rows) and rows[j].block == block:
        return j, block  # a nested table: our rows go on after it
    nxt = rows[i]
    if len(nxt.cells) != len(rows[i - 1].cells):
        return None
    if _is_header_like(nxt):
        again = detect_layout(rows, i)
        if again is None or not _same_columns(again, lay):
            return None
        return again.body_start, nxt.block
    return i, nxt.block


def read_body(rows: list[Row], lay: Layout) -> Body:
    body = Body(end=lay.body_start)
    reader = _BodyReader(lay, body)
    block = lay.block
    i = lay.body_start
    while i < len(rows):
        row = rows[i]
        if row.block != block:
            goes_on = _next_table_row(rows, i, block, lay)
            if goes_on is None:
                break
            i, block = goes_on
            continue
        if i > lay.body_start and _is_header_like(row):
            # The header pasted again further down (a printed page's top): skip it.
            again = detect_layout(rows, i)
            if again is None or not _same_columns(again, lay):
                break
            i = body.end = again.body_start
            continue
        outcome = reader.read(row)
        if outcome == "stop":
            break
        if outcome != "skip":
            body.end = i + 1
        if outcome == "total" and not _total_above_entries(rows, i, lay, body):
            break
        i += 1
    _settle_splits(body)
    if not body.saw_section:
        _kinds_from_names(body)
    return body


def _settle_splits(body: Body) -> None:
    """Numbered lines in one cell: several models, or one described at length? The TỔNG says."""
    if not body.listed:
        return
    counts = {f: 0 for f in FIELDS}
    for e in body.entries:
        counts[e.field] = counts.get(e.field, 0) + 1
    decision = decide([(item.field, item.count) for item in body.listed], counts, body.totals)
    body.entries = apply(body.entries, body.listed, decision)
    body.unsettled_splits = [(body.listed[i], why) for i, why in decision.unsettled]


def _total_above_entries(rows: list[Row], i: int, lay: Layout, body: Body) -> bool:
    """Row i is a TỔNG row above everything else: does the table go on below it?

    It does when the next row is numbered, opens a section or names someone with a model.
    """
    if body.entries or body.unfilled or body.saw_section or body.declared_empty:
        return False
    for row in rows[i + 1 :]:
        if row.block != lay.block:
            return False
        if not row.nonempty():
            continue
        tt, name = text_at(row, lay.tt_col), text_at(row, lay.name_col)
        lead = fold_accents(f"{tt} {name}".strip())
        return bool(
            ROW_NUMBER.match(fold_accents(tt))
            or section_label(lead)
            or section_label(fold_accents(tt))
            or (name and row_models(row, lay)[0])
        )
    return False


def _is_signature_row(row: Row) -> bool:
    """A row holding only signature-block text ("T/M ĐẢNG ỦY", "THỦ TRƯỞNG ĐƠN VỊ"...)."""
    cells = [c for _, c in row.nonempty() if not c.merged]
    return bool(cells) and all(STOP.search(fold_accents(c.text)) for c in cells)


class _BodyReader:
    """Reads one body row at a time, carrying the section kind and the last name down."""

    def __init__(self, lay: Layout, body: Body) -> None:
        self.lay = lay
        self.body = body
        self.kind = "collective"
        self.prev: tuple[str | None, str | None] | None = None  # (no, name) of the row above
        self.section_tt: str | None = None  # location of the TT cell of the last section row

    def _tt_text(self, tt_cell: Cell | None) -> str:
        """The TT cell as this row's number; "" where the cell numbers a section instead.

        A section's numeral ("I") or label ("I. Tập thể") may be merged down the TT column
        over the section's rows: it switches the kind, and numbers none of the entries.
        """
        if tt_cell is None:
            return ""
        if tt_cell.merged and tt_cell.location == self.section_tt:
            return ""
        kind = section_label(fold_accents(tt_cell.text))
        if kind is None:
            return tt_cell.text
        self.kind, self.body.saw_section = kind, True
        if tt_cell.location != self.section_tt:
            self.prev, self.section_tt = None, tt_cell.location
        return ""

    def read(self, row: Row) -> str:
        """Take one row; "stop" (the table ended before it), "total", "skip" or "row"."""
        lay, body = self.lay, self.body
        if not row.nonempty():
            return "skip"
        tt_cell, name_cell = cell_at(row, lay.tt_col), cell_at(row, lay.name_col)
        tt = self._tt_text(tt_cell)
        name = name_cell.text if name_cell else ""
        if tt_cell is not None and name_cell is not None and tt_cell.location == name_cell.location:
            name = ""  # one label merged over TT and name: read it once
        lead = fold_accents(f"{tt} {name}" if tt and name else tt or name)
        first = fold_accents(row.nonempty()[0][1].text)
        models, ambiguous = row_models(row, lay)
        if not models and not ambiguous and _ends_table(first):
            return "stop"
        if not tt and not name and _is_signature_row(row):
            return "stop"  # "T/M ĐẢNG ỦY" typed in a field column below the table
        if is_total_label(lead) or (not tt and is_total_label(first)):
            _read_totals(row, lay, body)
            return "total"
        all_text = fold_accents(" ".join(c.text for _, c in row.nonempty() if not c.merged))
        if _DECLARED_EMPTY.search(all_text):
            body.declared_empty = True
            return "row"
        if not models and not ambiguous and self._section(lead or first, tt, name):
            self.section_tt = tt_cell.location if tt_cell else None
            return "row"
        body.ambiguous_fields.extend(ambiguous)
        no, nm = clean_no(tt), name or None
        if nm and is_placeholder(nm):
            nm = None
        if not models:
            return self._unfilled(row, no, nm, tt_cell, name_cell, bool(ambiguous))
        if no is None and nm is None and self.prev is not None:
            no, nm = self.prev  # a second model row under an unmerged name
        note_cell = cell_at(row, lay.note_col)
        note = (
            note_cell.text
            if note_cell
            and note_cell.text
            and not note_cell.merged
            and not is_placeholder(note_cell.text)
            else None
        )
        for fld, cell in models:
            if not fld:
                body.unknown_fields.append(cell)
                continue
            models_here = split_models(cell)
            if len(models_here) > 1:
                body.listed.append(Listed(fld, cell, len(body.entries), len(models_here)))
            for model in models_here:
                body.entries.append(
                    Entry(
                        kind=self.kind,  # type: ignore[arg-type]
                        no=no,
                        name=nm,
                        field=fld,
                        model=model,
                        note=note,
                        location=cell.location,
                        name_location=location_at(row, lay.name_col),
                    )
                )
        self.prev = (no, nm)
        return "row"

    def _section(self, lead: str, tt: str, name: str) -> bool:
        """A section row ("I. Tập thể", "Phần II: Cá nhân", a bare "II"): switch the kind."""
        kind = section_label(lead)
        numeral = fold_accents(tt).strip().rstrip(".)")
        if kind is None and _ROMAN.match(numeral) and not name_cell_is_value(name):
            kind = {
                "i": "collective",
                "a": "collective",
                "ii": "individual",
                "b": "individual",
            }.get(numeral, self.kind)
        if kind is None:
            return False
        self.kind = kind
        self.body.saw_section = True
        self.prev = None
        return True

    def _unfilled(
        self,
        row: Row,
        no: str | None,
        nm: str | None,
        tt_cell: Cell | None,
        name_cell: Cell | None,
        ambiguous: bool,
    ) -> str:
        if no is None and nm is None:
            return "skip"
        if nm is None and not ambiguous and re.fullmatch(r"\d{1,3}", no or ""):
            return "skip"  # a numbered template row left empty
        self.prev = (no, nm)
        if ambiguous:
            return "row"  # its model is reported as ambiguous, not as missing
        location = location_at(row, self.lay.name_col if nm else self.lay.tt_col)
        self.body.unfilled.append(
            UnfilledRow(
                kind=self.kind,  # type: ignore[arg-type]
                no=no,
                name=nm,
                location=location or (name_cell or tt_cell).location,  # type: ignore[union-attr]
            )
        )
        return "row"


def _ends_table(first: str) -> bool:
    """A row that is not part of the table: the note, the signature, the next form's heading."""
    return bool(
        STOP.search(first)
        or "bieu tong hop" in first
        or (MARKER.match(first) and len(first) < 20)
        or PLACEHOLDER_UNIT.match(first)
    )


def _kinds_from_names(body: Body) -> None:
    """No section rows at all: an entry is an individual's when its name says "Đồng chí"..."""

    def kind_of(name: str | None) -> str:
        return "individual" if name and _PERSON.match(fold_accents(name)) else "collective"

    body.entries = [
        e if e.kind == kind_of(e.name) else replace(e, kind=kind_of(e.name))  # type: ignore[arg-type]
        for e in body.entries
    ]
    body.unfilled = [
        u if u.kind == kind_of(u.name) else replace(u, kind=kind_of(u.name))  # type: ignore[arg-type]
        for u in body.unfilled
    ]


def name_cell_is_value(name: str) -> bool:
    """A name cell that holds a real name (not a section label)."""
    folded = fold_accents(name)
    return bool(folded) and not re.match(r"^(tap\s*the|ca\s*nhan)\b", folded)


def _read_totals(row: Row, lay: Layout, body: Body) -> None:
    """The TỔNG row: a figure per field column, and the grand total where one is written.

    The grand total sits in the TT/name cell ("Tổng số: 05 mô hình") or in one figure
    merged across the field columns; a figure spanning fields counts for none of them.
    """
    values: dict[str, int | None] = {}
    spanning: Cell | None = None
    for col, fld in lay.field_cols.items():
        cell = cell_at(row, col)
        values[fld] = None
        if cell is None or cell.merged:
            continue
        body.totals_location[fld] = cell.location
        if spans_fields(row, col, lay):
            spanning = spanning or cell
        else:
            values[fld] = to_int(cell)
    overall = None
    for cell in (cell_at(row, lay.tt_col), cell_at(row, lay.name_col), spanning):
        if cell is None:
            continue
        if cell.number is not None and not cell.merged:
            overall = int(round(cell.number))
        else:
            m = re.search(r"(\d{1,4})", cell.text)
            overall = int(m.group(1)) if m else None
        if overall is not None:
            body.totals_location["all"] = cell.location
            break
    body.totals = Totals(all=overall, **values)
