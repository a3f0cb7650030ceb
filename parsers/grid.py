"""A format-neutral view of a sheet or a document: rows of text cells with their locations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from parsers.model import Problem


class Cell(NamedTuple):
    """One cell (or one document paragraph) as text already normalised to NFC.

    `lines` keeps the cell's non-empty lines (for multi-line unit names); `text` is them
    joined with single spaces. `number` is the numeric value where the cell holds one
    (a number, or a formula's cached value). `merged` marks a copy spread from the origin
    of a merged range, so the same text is not counted twice.

    A named tuple, immutable like a frozen dataclass and several times cheaper to build:
    the readers make one per cell of every sheet.
    """

    text: str
    location: str
    lines: tuple[str, ...] = ()
    number: float | None = None
    merged: bool = False
    legacy: str | None = None  # "tcvn3" / "vni" when the text was converted from it

    def merged_copy(self) -> Cell:
        """This cell as spread over the rest of its merged range."""
        return Cell(self.text, self.location, self.lines, self.number, True, self.legacy)


@dataclass
class Row:
    """One row: index in `cells` is the column. `block` names the table or sheet it is in."""

    cells: list[Cell | None]
    block: str
    # The form finder asks for a row's non-empty cells many times; readers are done with
    # the row by then (they only pad it with None, which changes nothing here).
    _nonempty: list[tuple[int, Cell]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def texts(self) -> list[str]:
        return [c.text if c else "" for c in self.cells]

    def nonempty(self) -> list[tuple[int, Cell]]:
        """(column, cell) of the cells holding text; callers only read the list."""
        found = self._nonempty
        if found is None:
            found = [(i, c) for i, c in enumerate(self.cells) if c is not None and c.text]
            self._nonempty = found
        return found


@dataclass
class Grid:
    """A sheet of a workbook, or a whole document body (paragraphs as one-cell rows)."""

    name: str
    rows: list[Row] = field(default_factory=list)
    kind: str = "sheet"  # "sheet" or "document"


@dataclass
class Extracted:
    """What a format reader hands to the form finder: the grids and file-level problems."""

    grids: list[Grid] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
