"""The lines above a table: form marker, title, level, year, date and the unit's name."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from parsers.finder.labels import LEVEL, MARKER, PLACEHOLDER_UNIT, STOP, is_placeholder
from parsers.grid import Cell, Row
from parsers.vntext import fold_accents

# "BIỂU MẪU 01: ĐĂNG KÝ MÔ HÌNH..." - the marker opens a title line.
_MARKER_PREFIX = re.compile(
    r"^\(?\s*(?:bieu\s*)?mau\s*(?:so)?\s*[:.]?\s*0?([12])\s*\)?\s*[:.–-]\s*\S"
)


_TITLE = re.compile(
    r"bieu\s*tong\s*hop|dang\s*ky\s*mo\s*hinh|dien\s*hinh|phong\s*trao\s*thi\s*dua|"
    r"dan\s*van\s*kheo|^cap\s*(quan|co\s*so)"
)


# "năm 2022", and "NĂM 2.022" (a dot groups thousands in Vietnamese).
_YEAR = re.compile(r"\bnam\s*(\d)[.,]?(\d{3})\b")


# A year standing alone in a title ("DÂN VẬN KHÉO" 2022), not part of a date or a range.
_BARE_YEAR = re.compile(r"(?<![\d/.,-])((?:19|20)\d{2})(?![\d/.,-])")


_DATE = re.compile(
    r"ngay\s*(\d{1,2})\s*(?:thang\s*(\d{1,2})\s*nam\s*(\d{4})|[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}))"
)


# "Thanh Xuân, 14/02/2022" or a bare date cell: a date line without the word "ngày".
_BARE_DATE = re.compile(r"^(?:[^\d,]{2,40},\s*)?(\d{1,2})\s*/\s*(\d{1,2})\s*/\s*(\d{4})$")


# Letter-head lines that are never the unit name nor the title.
_EXCLUDED_PREAMBLE = re.compile(
    r"dang\s*cong\s*san\s*viet\s*nam|cong\s*hoa\s*xa\s*hoi|doc\s*lap\s*[-–]|tu\s*do\s*[-–]|"
    r"hanh\s*phuc|^so\s*[:\d]|^kinh\s*gui|^v/v|^ve\s*viec|^\(?ky,|"
    r"\bngay\b.*\bthang\b|\bngay\b\s*\d|,\s*ngay\b"
)


_UNIT_PREFIX = re.compile(
    r"^(?:ten\s*don\s*vi|don\s*vi|co\s*quan|to\s*chuc)\s*[:.-]\s*", re.IGNORECASE
)


# A preamble line this long is letter prose (a cover letter above the form), not a heading.
_PROSE_LENGTH = 200


@dataclass
class Preamble:
    marker: str | None = None
    marker_location: str | None = None
    level: str | None = None
    level_location: str | None = None
    year: int | None = None
    year_location: str | None = None
    date: str | None = None
    unit: str | None = None
    unit_location: str | None = None
    title: str | None = None
    placeholder_location: str | None = None
    first_location: str | None = None


def _parse_date(folded: str) -> str | None:
    m = _DATE.search(folded)
    if m:
        day, month, year = m.group(1), m.group(2) or m.group(4), m.group(3) or m.group(5)
    else:
        m = _BARE_DATE.match(folded.strip())
        if not m:
            return None
        day, month, year = m.groups()
    try:
        return date(int(year), int(month), int(day)).isoformat()
    except ValueError:
        return None


def _marker_of(folded: str) -> str | None:
    m = MARKER.match(folded.strip())
    return f"M{m.group(1)}" if m else None


class _PreambleReader:
    """Reads the lines above a table header: marker, level, title, year, date, unit.

    The unit is the last heading line of the left-hand block ("QUẬN ỦY THANH XUÂN" /
    "ĐẢNG ỦY PHƯỜNG X": the lower line names the unit), or a line with a "Đơn vị:" prefix.
    A signature block or a line of letter prose starts everything afresh: what was above
    belonged to another form or to a cover letter.
    """

    def __init__(self, split_col: int) -> None:
        self.split_col = split_col
        self.pre = Preamble()
        self._reset()

    def _reset(self) -> None:
        self.pre = Preamble(first_location=self.pre.first_location)
        self.title_started = False
        self.unit_lines: list[tuple[str, Cell]] = []
        self.other_lines: list[tuple[str, Cell]] = []  # heading lines right of the unit block
        self.prefixed_unit: tuple[str, Cell] | None = None
        self.title_parts: list[str] = []
        self.bare_year: tuple[int, str] | None = None  # used when no "năm ..." says the year

    def line(self, line: str, cell: Cell, col: int, leftmost: bool) -> None:
        pre = self.pre
        folded = fold_accents(line)
        if STOP.search(folded) or len(line) > _PROSE_LENGTH:
            self._reset()
            return
        if is_placeholder(line):
            return  # Word's prompt in a control nobody filled
        marker = _marker_of(folded)
        if marker:
            pre.marker = pre.marker or marker
            pre.marker_location = pre.marker_location or cell.location
            return
        if pre.date is None and ("ngay" in folded or "thang" in folded or "/" in folded):
            pre.date = _parse_date(folded)
        if _EXCLUDED_PREAMBLE.search(folded) and not _TITLE_LEAD.match(folded):
            return  # "Số: 05-BC/ĐU", "V/v ...", the date line, "ĐẢNG CỘNG SẢN VIỆT NAM"
        prefix_marker = _MARKER_PREFIX.match(folded)
        if prefix_marker:
            pre.marker = pre.marker or f"M{prefix_marker.group(1)}"
            pre.marker_location = pre.marker_location or cell.location
        # Every line from the first title line down to the table belongs to the title.
        if _TITLE.search(folded) or self.title_started:
            self._title_line(line, folded, cell)
            return
        prefix = _UNIT_PREFIX.match(folded)
        if prefix:
            value = line[prefix.end() :].strip() if len(line) == len(folded) else ""
            if value and not is_placeholder(value):
                self.prefixed_unit = self.prefixed_unit or (value, cell)
            else:
                self._placeholder(cell)
            return
        if PLACEHOLDER_UNIT.match(folded):
            self._placeholder(cell)
            return
        if not re.search(r"[a-z]{2}", folded):
            return  # "*", "-----", numbers
        if leftmost and col <= self.split_col:
            self.unit_lines.append((line, cell))
        else:
            self.other_lines.append((line, cell))

    def _placeholder(self, cell: Cell) -> None:
        # "TÊN ĐƠN VỊ" left from the template: this form's unit slot is empty, whatever
        # heading lines came before it.
        self.pre.placeholder_location = self.pre.placeholder_location or cell.location
        self.unit_lines.clear()
        self.other_lines.clear()

    def _title_line(self, line: str, folded: str, cell: Cell) -> None:
        pre = self.pre
        self.title_started = True
        self.title_parts.append(line)
        level = LEVEL.search(folded)
        if level and pre.level is None:
            pre.level = "M1" if level.group(1) == "quan" else "M2"
            pre.level_location = cell.location
        ym = _YEAR.search(folded)
        if ym and pre.year is None:
            pre.year = int(ym.group(1) + ym.group(2))
            pre.year_location = cell.location
        bare = _BARE_YEAR.search(folded)
        if bare and self.bare_year is None:
            self.bare_year = (int(bare.group(1)), cell.location)

    def finish(self) -> Preamble:
        pre = self.pre
        pre.title = " ".join(self.title_parts) or None
        if pre.year is None and self.bare_year is not None:
            pre.year, pre.year_location = self.bare_year
        # Left block first; a unit written only on the right-hand side is still the unit.
        chosen = self.prefixed_unit or (self.unit_lines[-1] if self.unit_lines else None)
        if chosen is None and self.other_lines and pre.placeholder_location is None:
            chosen = self.other_lines[0]
        if chosen:
            pre.unit = chosen[0].strip(" :-*")
            pre.unit_location = chosen[1].location
        return pre


# A title line that merely contains an excluded word ("... năm 2022", a date) is still a title.
_TITLE_LEAD = re.compile(r"^(?:bieu\s*(?:mau|tong\s*hop)|dang\s*ky\s*mo\s*hinh)")


def read_preamble(rows: list[Row], start: int, end: int, split_col: int) -> Preamble:
    """Read the lines above a table header (rows start..end-1)."""
    reader = _PreambleReader(split_col)
    for i in range(start, end):
        leftmost = True
        for col, cell in rows[i].nonempty():
            if cell.merged:
                continue
            if reader.pre.first_location is None:
                reader.pre.first_location = cell.location
            for line in cell.lines or (cell.text,):
                reader.line(line, cell, col, leftmost)
            leftmost = False
    return reader.finish()
