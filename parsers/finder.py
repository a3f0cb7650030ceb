"""Find the M1/M2 registration tables in format-neutral grids and read them into Form records."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date
from functools import lru_cache

from parsers.grid import Cell, Extracted, Grid, Row
from parsers.model import Entry, Form, Problem, Totals, UnfilledRow

# --- label recognition (on accent-folded, lower-case text) -------------------------------

_FIELD_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("economy", re.compile(r"kinh\s*te|\bkt\b")),
    ("culture_society", re.compile(r"van\s*hoa|\bvh\s*[-–/,]?\s*xh\b|\bvhxh\b|xa\s*hoi")),
    (
        "security_defense",
        re.compile(r"an\s*ninh|quoc\s*phong|\banqp\b|\bqpan\b|\b(an|qp)\s*[-–/,]\s*(qp|an)\b"),
    ),
    (
        "political_system",
        # "XDHTCT" is typed as one word as often as "XD HTCT"; "XD Đảng" is the party part.
        re.compile(
            r"he\s*thong\s*chinh\s*tri|\b(xd\s*)?htct\b|\bxdhtct\b|chinh\s*tri|xay\s*dung\s*dang|"
            r"\bxd\s*dang\b"
        ),
    ),
)
# "TT", "STT", "S.TT", "Số TT", "Số thứ tự", "T/T".
_TT_LABEL = re.compile(r"^(?:s\s*\.?\s*)?t\s*[./]?\s*t$|^so\s*(?:tt|thu\s*tu)$")
_NAME_LABEL = re.compile(
    r"ten\s*tap\s*the|tap\s*the\s*[,/;-]?\s*(va\s*|hoac\s*)?ca\s*nhan|ho\s*(va)?\s*ten|"
    r"ten\s*(don\s*vi|co\s*quan|to\s*chuc)|ten\s*ca\s*nhan"
)
_NOTE_LABEL = re.compile(r"^ghi\s*chu\b")
_FIELD_COLUMN_LABEL = re.compile(r"^linh\s*vuc\b")
_MODEL_COLUMN_LABEL = re.compile(r"ten\s*(cac\s*)?mo\s*hinh|mo\s*hinh\s*dang\s*ky")

_MARKER = re.compile(
    r"^\(?\s*(?:bieu\s*)?(?:mau|m)\s*(?:so)?\s*[:.]?\s*0?([12])\b(?:\s*[/-]\s*[a-z]+)?\s*[.)]?$"
)
# "BIỂU MẪU 01: ĐĂNG KÝ MÔ HÌNH..." - the marker opens a title line.
_MARKER_PREFIX = re.compile(
    r"^\(?\s*(?:bieu\s*)?mau\s*(?:so)?\s*[:.]?\s*0?([12])\s*\)?\s*[:.–-]\s*\S"
)
_MARKER_IN_NAME = re.compile(r"(?:\bmau\s*(?:so)?|\bm)[\s_.-]*0?([12])(?![0-9])")
_LEVEL = re.compile(r"cap\s*(quan|co\s*so)")
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
    r"\bngay\b.*\bthang\b|\bngay\b\s*\d"
)
_PLACEHOLDER_UNIT = re.compile(r"^ten\s*(don\s*vi|co\s*quan)\s*[:.]*$")
_UNIT_PREFIX = re.compile(
    r"^(?:ten\s*don\s*vi|don\s*vi|co\s*quan|to\s*chuc)\s*[:.-]\s*", re.IGNORECASE
)
# A preamble line this long is letter prose (a cover letter above the form), not a heading.
_PROSE_LENGTH = 200
_TOTAL_WORD = re.compile(r"^(?:tong\s*(?:cong|so)?|cong)\b")
# What may follow the TỔNG word: "(I + II)", "số mô hình đăng ký", ":", a count "05 mô hình"
# or "5 (năm) mô hình".
_TOTAL_REST = re.compile(
    r"^[\s:.\-–]*(?:\([^)]*\))?[\s:.\-–]*(?:so\b\s*)?(?:mo\s*hinh\s*)?(?:dang\s*ky\s*)?"
    r"[\s:.\-–]*(?:\d{1,4}\s*(?:\([^)\d]{1,20}\)\s*)?(?:mo\s*hinh|mh)?)?[\s.]*$"
)
_STOP = re.compile(
    r"^ghi\s*chu\s*:|thu\s*truong\s*(don\s*vi|co\s*quan)|nguoi\s*lap\s*bieu|^\(?ky\s*,?\s*(ten|dong)|"
    r"^t/?m\.?\s|^xac\s*nhan|^noi\s*nhan"
)
_DECLARED_EMPTY = re.compile(r"khong\s*dang\s*ky|khong\s*co\s*mo\s*hinh")
_ROMAN = re.compile(r"^(i{1,3}|iv|v|a|b|c)[.)]?$")
# A section row: "I. Tập thể", "A- TẬP THỂ:", "Phần II: Cá nhân", "1. Tập thể", "Các cá nhân",
# optionally with a parenthesis or a few words such as "tiêu biểu" after it, nothing else.
_SECTION = re.compile(
    r"^(?:(?:phan|muc)\s*)?(?:(?:[ivx]{1,4}|[a-c]|\d{1,2})\s*[.):\-–]?\s*)?[-:]?\s*"
    r"(?:cac\s*|danh\s*sach\s*)?(tap\s*the|ca\s*nhan)\s*(?:tieu\s*bieu|dien\s*hinh|dang\s*ky)?"
    r"\s*[:.]?\s*(?:\(.*\))?\s*[:.]?$"
)
_PLACEHOLDER_ROW = re.compile(r"^[.…\s_-]*$")
# A tick instead of a model: "x" in a field cell (statistics forms mark "not applicable" so).
_TICK = re.compile(r"^[xX✓✔☑]$")
_NUMBER = re.compile(r"^\(?\s*(\d{1,4})\s*\)?")
# A line that opens an item of a list inside one cell: "- ", "+ ", "• ", "1. ", "a) ".
_BULLET = re.compile(r"^\s*(?:[-–—+•*·▪◦●]|\d{1,2}\s*[.)]|[a-zđ]\))\s*(?=\S)")
# Titles before a name that make the row an individual's ("Đồng chí", "Đ/c", "Ông", "Bà").
_PERSON = re.compile(r"^(?:dong\s*chi|d\s*/\s*c|ong|ba|anh|thay\s*giao|co\s*giao|bac\s*si)\b")

_DOC_TABLE = re.compile(r"^(table \d+)")


def _fold_table() -> dict[int, str | None]:
    """Every precomposed Latin letter to its bare lower-case base; combining marks dropped."""
    table: dict[int, str | None] = {ord("đ"): "d", ord("Đ"): "d"}
    for code in range(0xC0, 0x2000):
        base = unicodedata.normalize("NFD", chr(code))
        if len(base) > 1 and base[0].isascii() and all(unicodedata.combining(c) for c in base[1:]):
            table[code] = base[0].lower()
    for code in range(0x300, 0x370):
        table[code] = None
    return table


_FOLD_TABLE = _fold_table()


@lru_cache(maxsize=8192)
def _fold(text: str) -> str:
    """fold_accents() for text the readers already normalised, by one str.translate.

    The finder folds every cell of every sheet: this keeps a 5000-row sheet well under a
    second. The result equals fold_accents() on NFC text (checked in the tests).
    """
    return " ".join(text.lower().translate(_FOLD_TABLE).split())


def _field_of(text: str) -> str | None:
    """The one field a header label names, or None if it names none or several."""
    folded = _fold(text)
    hits = [name for name, pat in _FIELD_PATTERNS if pat.search(folded)]
    if len(hits) == 2 and "culture_society" in hits and "political_system" in hits:
        # "chính trị - xã hội" names neither field precisely; never a field header alone.
        return None
    return hits[0] if len(hits) == 1 else None


def _is_tt_label(folded: str) -> bool:
    return bool(_TT_LABEL.match(folded.strip(" .:")))


def _is_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER_ROW.match(text))


def _is_total_label(folded: str) -> bool:
    """ "TỔNG", "Tổng cộng", "Cộng", "Tổng số: 05 mô hình" - but not "Công an phường"."""
    m = _TOTAL_WORD.match(folded)
    return bool(m) and bool(_TOTAL_REST.match(folded[m.end() :]))


def _section_label(folded: str) -> str | None:
    """The kind a section row opens ("collective"/"individual"), or None if it is no section."""
    m = _SECTION.match(folded)
    if not m:
        return None
    return "collective" if m.group(1).startswith("tap") else "individual"


def _to_int(cell: Cell | None) -> int | None:
    if cell is None:
        return None
    if cell.number is not None and not cell.merged:
        try:
            return int(round(cell.number))
        except (OverflowError, ValueError):
            return None
    m = _NUMBER.match(cell.text)
    return int(m.group(1)) if m and not cell.merged else None


def _clean_no(tt: str) -> str | None:
    """The TT cell as the entry's number: "1." / "1)" / "(1)" give "1"; "-" or "..." give None."""
    no = tt.strip().strip("()").rstrip(".):").strip()
    return None if not no or _is_placeholder(no) else no


# --- layout ---------------------------------------------------------------------------------


@dataclass
class _Layout:
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


def _cell(row: Row, col: int | None) -> Cell | None:
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


def _location_at(row: Row, col: int | None) -> str | None:
    """The location of column `col` in this row, even when that cell is empty."""
    if col is None:
        return None
    cell = _cell(row, col)
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


def _text(row: Row, col: int | None) -> str:
    c = _cell(row, col)
    return c.text if c else ""


def _label_role(cell: Cell) -> tuple[str, str | None] | None:
    """The column role a header cell names, with the field for a field label; None if none."""
    folded = _fold(cell.text)
    if _is_tt_label(folded):
        return "tt", None
    if _NAME_LABEL.search(folded) and len(folded) < 80:
        return "name", None
    if _NOTE_LABEL.match(folded) and len(folded) < 60:
        return "note", None
    if _FIELD_COLUMN_LABEL.match(folded) and _field_of(cell.text) is None:
        return "field_label", None
    fld = _field_of(cell.text) if len(folded) < 80 else None
    if fld and not cell.merged:
        return "field", fld
    if _MODEL_COLUMN_LABEL.search(folded) and len(folded) < 80:
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


def _is_header_row(row: Row) -> bool:
    """Cheap pre-check: does this row hold a TT or a name label at all?"""
    for _, cell in row.nonempty():
        if cell.merged or len(cell.text) > 80:
            continue
        folded = _fold(cell.text)
        if _is_tt_label(folded) or _NAME_LABEL.search(folded):
            return True
    return False


def _all_labels(cells: list[tuple[int, Cell]]) -> bool:
    """Do the row's own cells (merged copies aside) all name a column role?"""
    return all(cell.merged or _label_role(cell) is not None for _, cell in cells)


def _detect_layout(rows: list[Row], r: int) -> _Layout | None:
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
    return _Layout(
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


_ROW_NUMBER = re.compile(r"^\(?(?:\d{1,3}(?:\.\d{1,2})?|[ivx]{1,4}|[a-c])[.):]?$")


def _looks_like_body(row: Row) -> bool:
    """A row numbered like a table row ("1", "1.", "II", "a)") or numbering the columns."""
    return any(_ROW_NUMBER.match(_fold(cell.text)) for _, cell in row.nonempty() if not cell.merged)


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


# --- preamble: marker, title, unit, date, year ---------------------------------------------


@dataclass
class _Preamble:
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


def _marker_of(text: str) -> str | None:
    m = _MARKER.match(_fold(text).strip())
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
        self.pre = _Preamble()
        self._reset()

    def _reset(self) -> None:
        self.pre = _Preamble(first_location=self.pre.first_location)
        self.title_started = False
        self.unit_lines: list[tuple[str, Cell]] = []
        self.other_lines: list[tuple[str, Cell]] = []  # heading lines right of the unit block
        self.prefixed_unit: tuple[str, Cell] | None = None
        self.title_parts: list[str] = []
        self.bare_year: tuple[int, str] | None = None  # used when no "năm ..." says the year

    def line(self, line: str, cell: Cell, col: int, leftmost: bool) -> None:
        pre = self.pre
        folded = _fold(line)
        if _STOP.search(folded) or len(line) > _PROSE_LENGTH:
            self._reset()
            return
        marker = _marker_of(line)
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
            if value and not _is_placeholder(value):
                self.prefixed_unit = self.prefixed_unit or (value, cell)
            else:
                self._placeholder(cell)
            return
        if _PLACEHOLDER_UNIT.match(folded):
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
        level = _LEVEL.search(folded)
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

    def finish(self) -> _Preamble:
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


def _read_preamble(rows: list[Row], start: int, end: int, split_col: int) -> _Preamble:
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


# --- the table body -------------------------------------------------------------------------


def _split_models(cell: Cell) -> list[str]:
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
        and not _is_placeholder(cell.text)
        and not _TICK.match(cell.text)
    )


def _spans_fields(row: Row, col: int, lay: _Layout) -> bool:
    """Is the cell at `col` merged across another field column (so its field is unknown)?"""
    origin = _cell(row, col)
    return origin is not None and any(
        other is not None and other.merged and other.location == origin.location
        for other in (_cell(row, c) for c in lay.field_cols if c != col)
    )


def _row_models(row: Row, lay: _Layout) -> tuple[list[tuple[str, Cell]], list[Cell]]:
    """(field, cell) for every model in the row, and the cells whose field is ambiguous."""
    models: list[tuple[str, Cell]] = []
    ambiguous: list[Cell] = []
    if lay.field_cols:
        for col in sorted(lay.field_cols):
            cell = _cell(row, col)
            if not _is_model_text(cell):
                continue
            if _spans_fields(row, col, lay):
                ambiguous.append(cell)  # type: ignore[arg-type]
            else:
                models.append((lay.field_cols[col], cell))  # type: ignore[arg-type]
    else:
        cell = _cell(row, lay.model_col)
        label = _text(row, lay.field_label_col)
        if _is_model_text(cell):
            fld = _field_of(label) if label else None
            models.append((fld or "", cell))  # type: ignore[arg-type]
    return models, ambiguous


def _is_header_like(row: Row) -> bool:
    texts = [_fold(c.text) for _, c in row.nonempty() if len(c.text) < 80]
    return any(_is_tt_label(t) for t in texts) and any(_NAME_LABEL.search(t) for t in texts)


def _same_columns(a: _Layout, b: _Layout) -> bool:
    return (a.field_cols, a.model_col, a.field_label_col) == (
        b.field_cols,
        b.model_col,
        b.field_label_col,
    )


@dataclass
class _Body:
    entries: list[Entry] = field(default_factory=list)
    unfilled: list[UnfilledRow] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    totals_location: dict[str, str] = field(default_factory=dict)
    declared_empty: bool = False
    unknown_fields: list[Cell] = field(default_factory=list)
    ambiguous_fields: list[Cell] = field(default_factory=list)
    saw_section: bool = False
    end: int = 0


def _next_table_row(rows: list[Row], i: int, block: str, lay: _Layout) -> tuple[int, str] | None:
    """Row i left the table's block: where does the table go on, if it does?

    Documents only. A nested table (its rows come right after the row holding it) is skipped
    back to our block. A table split by a page break continues in the very next table when
    it has the same width: after its repeated header, or at once if it has none.
    """
    if not block.startswith("table") or not rows[i].block.startswith("table"):
        return None
    j = i
    while j < len(rows) and rows[j].block == rows[i].block:
        j += 1
    if j < len(rows) and rows[j].block == block:
        return j, block  # a nested table: our rows go on after it
    nxt = rows[i]
    if len(nxt.cells) != len(rows[i - 1].cells):
        return None
    if _is_header_like(nxt):
        again = _detect_layout(rows, i)
        if again is None or not _same_columns(again, lay):
            return None
        return again.body_start, nxt.block
    return i, nxt.block


def _read_body(rows: list[Row], lay: _Layout) -> _Body:
    body = _Body(end=lay.body_start)
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
            again = _detect_layout(rows, i)
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
    if not body.saw_section:
        _kinds_from_names(body)
    return body


def _total_above_entries(rows: list[Row], i: int, lay: _Layout, body: _Body) -> bool:
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
        tt, name = _text(row, lay.tt_col), _text(row, lay.name_col)
        lead = _fold(f"{tt} {name}".strip())
        return bool(
            _ROW_NUMBER.match(_fold(tt))
            or _section_label(lead)
            or _section_label(_fold(tt))
            or (name and _row_models(row, lay)[0])
        )
    return False


def _is_signature_row(row: Row) -> bool:
    """A row holding only signature-block text ("T/M ĐẢNG ỦY", "THỦ TRƯỞNG ĐƠN VỊ"...)."""
    cells = [c for _, c in row.nonempty() if not c.merged]
    return bool(cells) and all(_STOP.search(_fold(c.text)) for c in cells)


class _BodyReader:
    """Reads one body row at a time, carrying the section kind and the last name down."""

    def __init__(self, lay: _Layout, body: _Body) -> None:
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
        kind = _section_label(_fold(tt_cell.text))
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
        tt_cell, name_cell = _cell(row, lay.tt_col), _cell(row, lay.name_col)
        tt = self._tt_text(tt_cell)
        name = name_cell.text if name_cell else ""
        if tt_cell is not None and name_cell is not None and tt_cell.location == name_cell.location:
            name = ""  # one label merged over TT and name: read it once
        lead = _fold(" ".join(t for t in (tt, name) if t))
        first = _fold(next((c.text for _, c in row.nonempty()), ""))
        models, ambiguous = _row_models(row, lay)
        if not models and not ambiguous and _ends_table(first):
            return "stop"
        if not tt and not name and _is_signature_row(row):
            return "stop"  # "T/M ĐẢNG ỦY" typed in a field column below the table
        if _is_total_label(lead) or (not tt and _is_total_label(first)):
            _read_totals(row, lay, body)
            return "total"
        all_text = _fold(" ".join(c.text for _, c in row.nonempty() if not c.merged))
        if _DECLARED_EMPTY.search(all_text):
            body.declared_empty = True
            return "row"
        if not models and not ambiguous and self._section(lead or first, tt, name):
            self.section_tt = tt_cell.location if tt_cell else None
            return "row"
        body.ambiguous_fields.extend(ambiguous)
        no, nm = _clean_no(tt), name or None
        if nm and _is_placeholder(nm):
            nm = None
        if not models:
            return self._unfilled(row, no, nm, tt_cell, name_cell, bool(ambiguous))
        if no is None and nm is None and self.prev is not None:
            no, nm = self.prev  # a second model row under an unmerged name
        note_cell = _cell(row, lay.note_col)
        note = note_cell.text if note_cell and note_cell.text and not note_cell.merged else None
        for fld, cell in models:
            if not fld:
                body.unknown_fields.append(cell)
                continue
            for model in _split_models(cell):
                body.entries.append(
                    Entry(
                        kind=self.kind,  # type: ignore[arg-type]
                        no=no,
                        name=nm,
                        field=fld,
                        model=model,
                        note=note,
                        location=cell.location,
                        name_location=_location_at(row, lay.name_col),
                    )
                )
        self.prev = (no, nm)
        return "row"

    def _section(self, lead: str, tt: str, name: str) -> bool:
        """A section row ("I. Tập thể", "Phần II: Cá nhân", a bare "II"): switch the kind."""
        kind = _section_label(lead)
        numeral = _fold(tt).strip().rstrip(".)")
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
        location = _location_at(row, self.lay.name_col if nm else self.lay.tt_col)
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
        _STOP.search(first)
        or "bieu tong hop" in first
        or (_MARKER.match(first) and len(first) < 20)
        or _PLACEHOLDER_UNIT.match(first)
    )


def _kinds_from_names(body: _Body) -> None:
    """No section rows at all: an entry is an individual's when its name says "Đồng chí"..."""

    def kind_of(name: str | None) -> str:
        return "individual" if name and _PERSON.match(_fold(name)) else "collective"

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
    folded = _fold(name)
    return bool(folded) and not re.match(r"^(tap\s*the|ca\s*nhan)\b", folded)


def _read_totals(row: Row, lay: _Layout, body: _Body) -> None:
    """The TỔNG row: a figure per field column, and the grand total where one is written.

    The grand total sits in the TT/name cell ("Tổng số: 05 mô hình") or in one figure
    merged across the field columns; a figure spanning fields counts for none of them.
    """
    values: dict[str, int | None] = {}
    spanning: Cell | None = None
    for col, fld in lay.field_cols.items():
        cell = _cell(row, col)
        values[fld] = None
        if cell is None or cell.merged:
            continue
        body.totals_location[fld] = cell.location
        if _spans_fields(row, col, lay):
            spanning = spanning or cell
        else:
            values[fld] = _to_int(cell)
    overall = None
    for cell in (_cell(row, lay.tt_col), _cell(row, lay.name_col), spanning):
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


# --- forms ----------------------------------------------------------------------------------


def _hint_from_name(text: str) -> str | None:
    folded = _fold(text)
    m = _MARKER_IN_NAME.search(folded)
    if m:
        return f"M{m.group(1)}"
    lv = _LEVEL.search(folded)
    if lv:
        return "M1" if lv.group(1) == "quan" else "M2"
    return None


def _form_location(grid: Grid, lay: _Layout) -> str:
    if grid.kind == "document":
        m = _DOC_TABLE.match(lay.block)
        return m.group(1) if m else lay.block
    return grid.name


def _message_type_unknown() -> str:
    return (
        "Không xác định được đây là Mẫu số 01 (cấp Quận) hay Mẫu số 02 (cấp cơ sở): biểu không "
        "có ký hiệu mẫu (M1/M2) và tiêu đề không ghi “CẤP QUẬN” hay “CẤP CƠ SỞ”. Đề nghị dùng "
        "đúng biểu mẫu kèm Công văn và ghi rõ ký hiệu mẫu."
    )


def _message_type_conflict(marker: str, level: str) -> str:
    names = {"M1": "Mẫu số 01 (cấp Quận)", "M2": "Mẫu số 02 (cấp cơ sở)"}
    return (
        f"Ký hiệu mẫu ghi {names[marker]} nhưng tiêu đề biểu lại ghi {names[level]}. "
        "Đề nghị sửa cho thống nhất (ký hiệu M1 đi với “CẤP QUẬN”, M2 đi với “CẤP CƠ SỞ”) "
        "và gửi lại."
    )


def _find_tables(grid: Grid) -> list[tuple[_Layout, _Body]]:
    """Every table header in the grid with its body, top to bottom, each row read once."""
    rows = grid.rows
    found: list[tuple[_Layout, _Body]] = []
    r = 0
    while r < len(rows):
        lay = None
        if _is_header_row(rows[r]) or _starts_header(rows, r):
            lay = _detect_layout(rows, r)
        if lay is None:
            r += 1
            continue
        body = _read_body(rows, lay)
        found.append((lay, body))
        r = max(body.end, lay.body_start)  # the next header can only come after this table
    return found


def _starts_header(rows: list[Row], r: int) -> bool:
    """A header whose first row holds only "Tên mô hình"/field labels (TT/name below it)."""
    if not any(
        _MODEL_COLUMN_LABEL.search(_fold(c.text)) or _field_of(c.text)
        for _, c in rows[r].nonempty()
        if len(c.text) < 80
    ):
        return False
    return any(
        rows[i].block == rows[r].block and _is_header_row(rows[i])
        for i in range(r + 1, min(r + 3, len(rows)))
    )


def _form_type(
    pre: _Preamble, grid: Grid, lay: _Layout, single: bool, filename: str, problems: list[Problem]
) -> str | None:
    """M1 or M2 from the marker, the title's level or the sheet name; None (and a problem)."""
    if pre.marker and pre.level and pre.marker != pre.level:
        problems.append(
            Problem(
                "error",
                "form-type-conflict",
                pre.level_location or pre.marker_location,
                _message_type_conflict(pre.marker, pre.level),
            )
        )
        return None
    # The sheet name is the weakest hint: a copied sheet keeps its old name ("Mẫu 2").
    form_type = pre.marker or pre.level or _hint_from_name(grid.name)
    if form_type is None and single:
        form_type = _hint_from_name(filename)
    if form_type is None:
        problems.append(
            Problem(
                "error", "unknown-form-type", _form_location(grid, lay), _message_type_unknown()
            )
        )
    return form_type


def _table_problems(lay: _Layout, body: _Body, grid: Grid) -> list[Problem]:
    out = [
        Problem(
            "error",
            "unknown-field",
            cell.location,
            "Không xác định được lĩnh vực của mô hình này. Đề nghị ghi mô hình vào đúng cột "
            "lĩnh vực: kinh tế, văn hóa - xã hội, an ninh - quốc phòng hoặc xây dựng hệ thống "
            "chính trị.",
        )
        for cell in body.unknown_fields
    ]
    out += [
        Problem(
            "error",
            "ambiguous-field",
            cell.location,
            f"Mô hình “{cell.text}” được ghi trong ô gộp qua nhiều cột lĩnh vực nên không xác "
            "định được thuộc lĩnh vực nào. Đề nghị bỏ gộp ô và ghi mô hình vào đúng một cột "
            "lĩnh vực.",
        )
        for cell in body.ambiguous_fields
    ]
    if lay.beside_col is not None:
        out.append(
            Problem(
                "error",
                "forms-side-by-side",
                _form_location(grid, lay),
                "Trang tính có hai biểu đặt cạnh nhau; hệ thống chỉ đọc được biểu bên trái. "
                "Đề nghị để mỗi biểu (Mẫu số 01, Mẫu số 02) ở một trang tính (sheet) riêng "
                "rồi gửi lại.",
            )
        )
    return out


def _is_blank(form: Form) -> bool:
    """A form nobody filled in: no model, no named row, no "Không đăng ký", no figures."""
    figures = [v for v in form.declared_totals.to_json().values() if v]
    return not (
        form.entries or form.unfilled_rows or form.declared_empty or figures or form.problems
    )


def _drop_blank_copies(forms: list[Form], problems: list[Problem]) -> list[Form]:
    """Leave out blank template copies beside a filled form of the same type (a warning each).

    Units often keep the template on a second sheet ("M1 (2)"): that sheet is no second
    registration, and calling it an empty form would be noise. A blank form with no filled
    form of its type stays a form, so `empty-form` still tells the unit it is empty.
    """
    filled = {f.form for f in forms if not _is_blank(f)}
    kept = []
    for f in forms:
        if f.form in filled and _is_blank(f):
            problems.append(
                Problem(
                    "warning",
                    "blank-template-copy",
                    f.location,
                    f"{_place_name(f.location)} là bản mẫu {_FORM_NAMES[f.form]} còn để trống, "
                    f"nằm cạnh biểu {_FORM_NAMES[f.form]} đã điền nên hệ thống bỏ qua phần này. "
                    "Nếu đơn vị "
                    "còn mô hình muốn đăng ký, đề nghị ghi tiếp vào biểu đã điền rồi gửi lại.",
                )
            )
        else:
            kept.append(f)
    return kept


_FORM_NAMES = {"M1": "Mẫu số 01 (cấp Quận)", "M2": "Mẫu số 02 (cấp cơ sở)"}


def _place_name(location: str) -> str:
    """A form's location as the unit reads it: "Trang tính “M1 (2)”" or "Bảng số 3"."""
    m = re.fullmatch(r"table (\d+)", location)
    return f"Bảng số {m.group(1)}" if m else f"Trang tính “{location}”"


def find_forms(extracted: Extracted, filename: str) -> tuple[list[Form], list[Problem]]:
    """Find every M1/M2 table in the grids; problems here are about the file as a whole."""
    forms: list[Form] = []
    problems: list[Problem] = []
    tables = [(grid, _find_tables(grid)) for grid in extracted.grids]
    single = sum(len(found) for _, found in tables) == 1
    for grid, found in tables:
        prev_end = 0
        for lay, body in found:
            split = min(lay.field_cols) - 1 if lay.field_cols else (lay.name_col or 0)
            pre = _read_preamble(grid.rows, prev_end, lay.header_row, max(split, lay.name_col or 0))
            prev_end = max(body.end, lay.body_start)
            form_type = _form_type(pre, grid, lay, single, filename, problems)
            if form_type is None:
                continue
            forms.append(
                Form(
                    form=form_type,  # type: ignore[arg-type]
                    unit=pre.unit,
                    year=pre.year,
                    date=pre.date,
                    location=_form_location(grid, lay),
                    entries=body.entries,
                    declared_totals=body.totals,
                    problems=_table_problems(lay, body, grid),
                    unit_location=pre.unit_location
                    or pre.placeholder_location
                    or pre.first_location,
                    year_location=pre.year_location,
                    totals_location=body.totals_location,
                    unfilled_rows=body.unfilled,
                    declared_empty=body.declared_empty,
                    title=pre.title,
                )
            )
    forms = _drop_blank_copies(forms, problems)
    if not forms and not problems:
        problems.append(
            Problem(
                "error",
                "no-form-found",
                None,
                "Không tìm thấy biểu đăng ký (Mẫu số 01 hoặc Mẫu số 02) trong tệp này. Nếu đây là "
                "công văn hoặc tờ trình, đề nghị gửi kèm biểu đăng ký theo mẫu (tệp Excel hoặc "
                "Word) có bảng: TT, Tên tập thể, cá nhân, Tên mô hình theo 4 lĩnh vực, Ghi chú.",
            )
        )
    return forms, problems
