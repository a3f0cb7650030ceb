"""The model titles in a body row: which cells hold them, and several titles in one cell."""

from __future__ import annotations

import re

from parsers.finder.labels import field_of, is_placeholder
from parsers.finder.layout import Layout, cell_at, text_at
from parsers.grid import Cell, Row

# A tick instead of a model: "x" in a field cell (statistics forms mark "not applicable" so).
_TICK = re.compile(r"^[xX✓✔☑]$")


# A line that opens an item of a list inside one cell: "- ", "+ ", "• ", "1. ", "a) ".
_BULLET = re.compile(r"^\s*(?:[-–—+•*·▪◦●]|\d{1,2}\s*[.)]|[a-zđ]\))\s*(?=\S)")


def split_models(cell: Cell) -> list[str]:
    """The model titles one field cell holds: one per bulleted line, else the whole cell.

    "- A" / "- B" on two lines are two models (bullets dropped); a title wrapped over two
    lines without bullets is one. Text on a line without a bullet continues the item above.
    Items numbered inline in sequence ("1. A 2. B", "a) A; b) B") are several models too.
    """
    lines = cell.lines or (cell.text,)
    if len(lines) < 2 or sum(1 for ln in lines if _BULLET.match(ln)) < 2:
        return _split_inline(cell.text)  # one model, as written (a lone "- " included)
    items: list[list[str]] = []
    for ln in lines:
        m = _BULLET.match(ln)
        if m or not items:
            items.append([ln[m.end() :] if m else ln])
        else:
            items[-1].append(ln)
    return [t for t in (_item_text(" ".join(parts)) for parts in items) if t]


# An inline enumerator: "1." / "1)" / "a)" at the start or after a space, ";" or ",".
_INLINE_ENUM = re.compile(r"(?:^|(?<=[\s;,]))(\d{1,2}[.)]|[a-h]\))\s+(?=\S)")


def _split_inline(text: str) -> list[str]:
    """Split "1. A 2. B" / "a) A; b) B" at enumerators counting up from 1 or a, else [text].

    Only a run that starts the cell and counts without a gap splits: "Tổ 5. Phố 2." or a
    title mentioning "3)" stays whole.
    """
    marks = list(_INLINE_ENUM.finditer(text))
    if len(marks) < 2 or marks[0].start() != 0:
        return [text]
    first = marks[0].group(1)
    letters = first[0].isalpha()
    if first[:-1] not in ("1", "a"):
        return [text]
    cuts = [marks[0]]
    for m in marks[1:]:
        label, prev = m.group(1), cuts[-1].group(1)
        expected = chr(ord(prev[0]) + 1) if letters else str(int(prev[:-1]) + 1)
        if label[:-1] == expected and label[-1] == first[-1]:
            cuts.append(m)
    if len(cuts) < 2:
        return [text]
    bounds = [m.start() for m in cuts[1:]] + [len(text)]
    items = [_item_text(text[m.end() : end]) for m, end in zip(cuts, bounds, strict=True)]
    return [t for t in items if t] or [text]


def _item_text(text: str) -> str:
    """One listed model without the separator that ended it ("A;" -> "A")."""
    return text.strip().rstrip(";,").strip()


def _is_model_text(cell: Cell | None) -> bool:
    return (
        cell is not None
        and not cell.merged
        and bool(cell.text)
        and not is_placeholder(cell.text)
        and not _TICK.match(cell.text)
    )


def spans_fields(row: Row, col: int, lay: Layout) -> bool:
    """Is the cell at `col` merged across another field column (so its field is unknown)?"""
    origin = cell_at(row, col)
    return origin is not None and any(
        other is not None and other.merged and other.location == origin.location
        for other in (cell_at(row, c) for c in lay.field_cols if c != col)
    )


def row_models(row: Row, lay: Layout) -> tuple[list[tuple[str, Cell]], list[Cell]]:
    """(field, cell) for every model in the row, and the cells whose field is ambiguous."""
    models: list[tuple[str, Cell]] = []
    ambiguous: list[Cell] = []
    if lay.field_cols:
        for col in sorted(lay.field_cols):
            cell = cell_at(row, col)
            if not _is_model_text(cell):
                continue
            if spans_fields(row, col, lay):
                ambiguous.append(cell)  # type: ignore[arg-type]
            else:
                models.append((lay.field_cols[col], cell))  # type: ignore[arg-type]
    else:
        cell = cell_at(row, lay.model_col)
        label = text_at(row, lay.field_label_col)
        if _is_model_text(cell):
            fld = field_of(label) if label else None
            models.append((fld or "", cell))  # type: ignore[arg-type]
    return models, ambiguous
