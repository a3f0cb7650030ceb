"""Table headers: which row opens a form's table and which column holds what."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from parsers.finder.labels import (
    FIELD_COLUMN_LABEL,
    MODEL_COLUMN_LABEL,
    NAME_LABEL,
    NOTE_LABEL,
    field_of,
    is_tt_label,
)
from parsers.grid import Cell, Row
from parsers.vntext import fold_accents


@dataclass
class Layout:
    header_row: int  # index of the first header row
    body_start: int  # first row after the header block
    block: str
    tt_col: int | None
    name_col: int | None
    note_col: int | None
    field_cols: dict[int, str] = field(default_factory=dict)
    # "field column" layout: one column names the field, another holds the model.
    field_label_col: int | None = None
    model_col: int | None = None
    beside_col: int | None = None  # where a second table starts in the same header rows


def cell_at(row: Row, col: int | None) -> Cell | None:
    if col is None or col >= len(row.cells):
        return None
    return row.cells[col]


_SHEET_LOC = re.compile(r"^(?P<sheet>.*)!\$?(?P<col>[A-Z]{1,3})\$?(?P<row>\d+)$")


_TABLE_LOC = re.compile(r"^(?P<head>.*, row \d+, column )(?P<col>\d+)$")


def _col_number(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n


def _col_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out


def location_at(row: Row, col: int | None) -> str | None:
    """The location of column `col` in this row, even when that cell is empty."""
    if col is None:
        return None
    cell = cell_at(row, col)
    if cell is not None and not cell.merged:
        return cell.location
    for j, other in enumerate(row.cells):
        if other is None or other.merged:
            continue
        m = _SHEET_LOC.match(other.location)
        if m:
            letters = _col_letters(_col_number(m["col"]) + col - j)
            return f"{m['sheet']}!{letters}{m['row']}" if letters else None
        m = _TABLE_LOC.match(other.location)
        if m:
            return f"{m['head']}{int(m['col']) + col - j}"
    return None


def text_at(row: Row, col: int | None) -> str:
    c = cell_at(row, col)
    return c.text if c else ""


def _label_role(cell: Cell) -> tuple[str, str | None] | None:
    """The column role a header cell names, with the field for a field label; None if none."""
    folded = fold_accents(cell.text)
    if is_tt_label(folded):
        return "tt", None
    if NAME_LABEL.search(folded) and len(folded) < 80:
        return "name", None
    if NOTE_LABEL.match(folded) and len(folded) < 60:
        return "note", None
    if FIELD_COLUMN_LABEL.match(folded) and field_of(cell.text) is None:
        return "field_label", None
    fld = field_of(cell.text) if len(folded) < 80 else None
    if fld and not cell.merged:
        return "field", fld
    if MODEL_COLUMN_LABEL.search(folded) and len(folded) < 80:
        return "model", None
    return None


@dataclass
class _Labels:
    """Column roles collected from the rows of one header block."""

    tt_col: int | None = None
    name_col: int | None = None
    note_col: int | None = None
    field_cols: dict[int, str] = field(default_factory=dict)
    field_label_col: int | None = None
    model_col: int | None = None
    # A second TT/name column or a field label seen twice: another table beside this one.
    beside_col: int | None = None

    def take(self, col: int, cell: Cell) -> bool:
        """Record the role the label in this cell names; False if it names none."""
        role = _label_role(cell)
        if role is None:
            return False
        kind, fld = role
        if kind in ("tt", "name"):
            self._first_or_beside(f"{kind}_col", col, cell.merged)
        elif kind == "note":
            self.note_col = col if self.note_col is None else self.note_col
        elif kind == "field_label":
            self.field_label_col = col if self.field_label_col is None else self.field_label_col
        elif kind == "model":
            self.model_col = col if self.model_col is None else self.model_col
        elif fld not in self.field_cols.values():
            self.field_cols[col] = fld  # type: ignore[assignment]
        elif self.beside_col is None:
            self.beside_col = col
        return True

    def _first_or_beside(self, attr: str, col: int, merged: bool) -> None:
        current = getattr(self, attr)
        if current is None:
            setattr(self, attr, col)
        elif col > current and not merged and self.beside_col is None:
            self.beside_col = col


def is_header_row(row: Row) -> bool:
    """Cheap pre-check: does this row hold a TT or a name label at all?"""
    for _, cell in row.nonempty():
        if cell.merged or len(cell.text) > 80:
            continue
        folded = fold_accents(cell.text)
        if is_tt_label(folded) or NAME_LABEL.search(folded):
            return True
    return False


def _all_labels(cells: list[tuple[int, Cell]]) -> bool:
    """Do the row's own cells (merged copies aside) all name a column role?"""
    return all(cell.merged or _label_role(cell) is not None for _, cell in cells)


def detect_layout(rows: list[Row], r: int) -> Layout | None:
    """Is row r the first row of a form's table header? Return the column roles if so.

    The header may take up to three rows (labels / "Lĩnh vực" / field names) and the TT or
    name label may sit in any of them; a column-numbering row may follow it.
    """
    block = rows[r].block
    labels = _Labels()
    last_header = None
    for i in range(r, min(r + 3, len(rows))):
        if rows[i].block != block:
            break
        if i > r and _looks_like_body(rows[i]):
            break  # a numbered row: model titles such as "Văn hóa..." are not labels
        cells = rows[i].nonempty()
        if i > r and not _all_labels(cells):
            break  # the body starts: a cell that is no label ("Chi hội…" beside "Văn hóa…")
        found_here = False
        for col, cell in cells:
            found_here = labels.take(col, cell) or found_here
        if not found_here:
            if i == r:
                return None
            break
        last_header = i
    if last_header is None or (labels.tt_col is None and labels.name_col is None):
        return None
    field_cols, field_label_col, model_col = labels.field_cols, None, None
    if len(field_cols) < 2:
        if labels.field_label_col is None or labels.model_col is None:
            return None
        # "field column" layout: one column names the field, another holds the model.
        field_cols, field_label_col, model_col = {}, labels.field_label_col, labels.model_col
    tt_col, name_col = labels.tt_col, labels.name_col
    if name_col is None:
        left = min(field_cols) if field_cols else min(field_label_col or 0, model_col or 0)
        first = 0 if tt_col is None else tt_col + 1
        name_col = first if first < left else None
    if tt_col is None and name_col is not None and name_col > 0:
        tt_col = name_col - 1
    body = last_header + 1
    if body < len(rows) and rows[body].block == block and _is_column_numbering(rows[body]):
        body += 1
    return Layout(
        header_row=r,
        body_start=body,
        block=block,
        tt_col=tt_col,
        name_col=name_col,
        note_col=labels.note_col,
        field_cols=field_cols,
        field_label_col=field_label_col,
        model_col=model_col,
        beside_col=labels.beside_col,
    )


ROW_NUMBER = re.compile(r"^\(?(?:\d{1,3}(?:\.\d{1,2})?|[ivx]{1,4}|[a-c])[.):]?$")


def _looks_like_body(row: Row) -> bool:
    """A row numbered like a table row ("1", "1.", "II", "a)") or numbering the columns."""
    return any(
        ROW_NUMBER.match(fold_accents(cell.text)) for _, cell in row.nonempty() if not cell.merged
    )


def _is_column_numbering(row: Row) -> bool:
    """A row numbering the columns: "(1) (2) (3) ...", "1 2 3 ..." or "A B 1 2 3 ..."."""
    cells = [c for _, c in row.nonempty() if not c.merged]
    if len(cells) < 4:
        return False
    nums = []
    for c in cells:
        m = re.fullmatch(r"\(?\s*(?:(\d{1,2})|([A-Ea-e]))\s*\)?", c.text)
        if not m:
            return False
        if m.group(1):
            nums.append(int(m.group(1)))
    return len(nums) >= 3 and nums == sorted(set(nums))
