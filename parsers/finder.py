"""Find the M1/M2 registration tables in format-neutral grids and read them into Form records."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date

from parsers.grid import Cell, Extracted, Grid, Row
from parsers.model import Entry, Form, Problem, Totals, UnfilledRow
from parsers.vntext import fold_accents

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
        re.compile(r"he\s*thong\s*chinh\s*tri|\bhtct\b|chinh\s*tri|xay\s*dung\s*dang"),
    ),
)
_TT_LABELS = {"tt", "stt", "so tt", "so thu tu", "t.t", "s.t.t", "t t", "s tt"}
_NAME_LABEL = re.compile(
    r"ten\s*tap\s*the|tap\s*the\s*,?\s*(va\s*)?ca\s*nhan|ho\s*(va)?\s*ten|"
    r"ten\s*(don\s*vi|co\s*quan|to\s*chuc)|ten\s*ca\s*nhan"
)
_NOTE_LABEL = re.compile(r"^ghi\s*chu\b")
_FIELD_COLUMN_LABEL = re.compile(r"^linh\s*vuc\b")
_MODEL_COLUMN_LABEL = re.compile(r"ten\s*(cac\s*)?mo\s*hinh|mo\s*hinh\s*dang\s*ky")

_MARKER = re.compile(
    r"^(?:bieu\s*)?(?:mau|m)\s*(?:so)?\s*[:.]?\s*0?([12])\b(?:\s*[/-]\s*[a-z]+)?\.?$"
)
_MARKER_IN_NAME = re.compile(r"(?:\bmau\s*(?:so)?|\bm)[\s_.-]*0?([12])(?![0-9])")
_LEVEL = re.compile(r"cap\s*(quan|co\s*so)")
_TITLE = re.compile(
    r"bieu\s*tong\s*hop|dang\s*ky\s*mo\s*hinh|dien\s*hinh|phong\s*trao\s*thi\s*dua|"
    r"dan\s*van\s*kheo|^cap\s*(quan|co\s*so)"
)
_YEAR = re.compile(r"\bnam\s*(\d{4})\b")
_DATE = re.compile(
    r"ngay\s*(\d{1,2})\s*(?:thang\s*(\d{1,2})\s*nam\s*(\d{4})|[/.-]\s*(\d{1,2})\s*[/.-]\s*(\d{4}))"
)
_EXCLUDED_PREAMBLE = re.compile(
    r"dang\s*cong\s*san\s*viet\s*nam|cong\s*hoa\s*xa\s*hoi|doc\s*lap\s*[-–]|tu\s*do\s*[-–]|"
    r"hanh\s*phuc|^so\s*[:\d]|^kinh\s*gui|^v/v|^\(?ky,|\bngay\b.*\bthang\b"
)
_PLACEHOLDER_UNIT = re.compile(r"^ten\s*(don\s*vi|co\s*quan)\s*[:.]*$")
_UNIT_PREFIX = re.compile(
    r"^(?:ten\s*don\s*vi|don\s*vi|co\s*quan|to\s*chuc)\s*[:.-]\s*", re.IGNORECASE
)
_TOTAL = re.compile(r"^(tong|cong)\b")
_STOP = re.compile(
    r"^ghi\s*chu\s*:|thu\s*truong\s*(don\s*vi|co\s*quan)|nguoi\s*lap\s*bieu|^\(?ky\s*,?\s*(ten|dong)|"
    r"^t/?m\.?\s|^xac\s*nhan"
)
_DECLARED_EMPTY = re.compile(r"khong\s*dang\s*ky|khong\s*co\s*mo\s*hinh")
_ROMAN = re.compile(r"^(i{1,3}|iv|v|a|b|c)[.)]?$")
_SECTION = re.compile(
    r"^(?:(?:i{1,3}|iv|v|a|b|c)\s*[.):-]?\s*)?[-:]?\s*(tap\s*the|ca\s*nhan)\b"
)
_PLACEHOLDER_ROW = re.compile(r"^[.…\s_-]*$")
_NUMBER = re.compile(r"^\(?\s*(\d{1,4})\s*\)?")

_DOC_TABLE = re.compile(r"^(table \d+)")


def _fold(text: str) -> str:
    return fold_accents(text)


def _field_of(text: str) -> str | None:
    """The one field a header label names, or None if it names none or several."""
    folded = _fold(text)
    hits = [name for name, pat in _FIELD_PATTERNS if pat.search(folded)]
    if len(hits) == 2 and "culture_society" in hits and "political_system" in hits:
        # "chính trị - xã hội" names neither field precisely; never a field header alone.
        return None
    return hits[0] if len(hits) == 1 else None


def _is_placeholder(text: str) -> bool:
    return bool(_PLACEHOLDER_ROW.match(text))


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


def _detect_layout(rows: list[Row], r: int) -> _Layout | None:
    """Is row r the first row of a form's table header? Return the column roles if so."""
    row = rows[r]
    block = row.block
    window = [i for i in range(r, min(r + 3, len(rows))) if rows[i].block == block]
    tt_col = name_col = note_col = None
    field_cols: dict[int, str] = {}
    field_label_col = model_col = None
    last_header = r
    for i in window:
        found_here = False
        for col, cell in rows[i].nonempty():
            folded = _fold(cell.text)
            if folded.strip(" .:") in _TT_LABELS:
                tt_col = col if tt_col is None else tt_col
                found_here = True
            elif _NAME_LABEL.search(folded) and len(folded) < 80:
                name_col = col if name_col is None else name_col
                found_here = True
            elif _NOTE_LABEL.match(folded) and len(folded) < 30:
                note_col = col if note_col is None else note_col
                found_here = True
            elif _FIELD_COLUMN_LABEL.match(folded) and _field_of(cell.text) is None:
                field_label_col = col if field_label_col is None else field_label_col
                found_here = True
            else:
                fld = _field_of(cell.text) if len(folded) < 80 else None
                if fld and not cell.merged and fld not in field_cols.values():
                    field_cols[col] = fld
                    found_here = True
                elif _MODEL_COLUMN_LABEL.search(folded) and model_col is None:
                    model_col = col
                    found_here = True
        if i == r and not found_here:
            return None
        if found_here:
            last_header = i
    if tt_col is None and name_col is None:
        return None
    if len(field_cols) >= 2:
        field_label_col = model_col = None
    elif field_label_col is not None and model_col is not None:
        field_cols = {}
    else:
        return None
    if name_col is None:
        left = min(field_cols) if field_cols else min(field_label_col or 0, model_col or 0)
        candidates = [c for c in range((tt_col or -1) + 1, left)]
        name_col = candidates[0] if candidates else None
    if tt_col is None and name_col is not None and name_col > 0:
        tt_col = name_col - 1
    body = last_header + 1
    # A row numbering the columns, "(1) (2) (3) ..." or "1 2 3 ...", sits under many headers.
    if body < len(rows) and rows[body].block == block and _is_column_numbering(rows[body]):
        body += 1
    return _Layout(
        header_row=r,
        body_start=body,
        block=block,
        tt_col=tt_col,
        name_col=name_col,
        note_col=note_col,
        field_cols=field_cols,
        field_label_col=field_label_col,
        model_col=model_col,
    )


def _is_column_numbering(row: Row) -> bool:
    cells = [c for _, c in row.nonempty() if not c.merged]
    if len(cells) < 4:
        return False
    nums = []
    for c in cells:
        m = re.fullmatch(r"\(?\s*(\d{1,2})\s*\)?", c.text)
        if not m:
            return False
        nums.append(int(m.group(1)))
    return nums == sorted(nums) and len(set(nums)) == len(nums)


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
    if not m:
        return None
    day = int(m.group(1))
    month = int(m.group(2) or m.group(4))
    year = int(m.group(3) or m.group(5))
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        return None


def _marker_of(text: str) -> str | None:
    m = _MARKER.match(_fold(text).strip())
    return f"M{m.group(1)}" if m else None


def _read_preamble(rows: list[Row], start: int, end: int, split_col: int) -> _Preamble:
    """Read the lines above a table header (rows start..end-1)."""
    pre = _Preamble()
    title_started = False
    unit_lines: list[tuple[str, Cell]] = []
    prefixed_unit: tuple[str, Cell] | None = None
    title_parts: list[str] = []
    for i in range(start, end):
        row = rows[i]
        leftmost = True
        for col, cell in row.nonempty():
            if cell.merged:
                continue
            if pre.first_location is None:
                pre.first_location = cell.location
            for line in cell.lines or (cell.text,):
                folded = _fold(line)
                if _STOP.search(folded):
                    # The note or signature block of a form above: a new heading follows.
                    unit_lines.clear()
                    prefixed_unit = None
                    pre.placeholder_location = None
                    title_started = False
                    continue
                marker = _marker_of(line)
                if marker:
                    pre.marker = pre.marker or marker
                    pre.marker_location = pre.marker_location or cell.location
                    continue
                if pre.date is None and ("ngay" in folded or "thang" in folded):
                    parsed = _parse_date(folded)
                    if parsed:
                        pre.date = parsed
                level = _LEVEL.search(folded)
                # Every line from the first title line down to the table belongs to the title.
                is_title = bool(_TITLE.search(folded)) or (
                    title_started and not _STOP.search(folded)
                )
                if is_title:
                    title_started = True
                    title_parts.append(line)
                    if level and pre.level is None:
                        pre.level = "M1" if level.group(1) == "quan" else "M2"
                        pre.level_location = cell.location
                    ym = _YEAR.search(folded)
                    if ym and pre.year is None:
                        pre.year = int(ym.group(1))
                        pre.year_location = cell.location
                    continue
                prefix = _UNIT_PREFIX.match(folded)
                if prefix:
                    value = line[prefix.end():].strip() if len(line) == len(folded) else ""
                    if value and not _is_placeholder(value) and prefixed_unit is None:
                        prefixed_unit = (value, cell)
                    elif not value or _is_placeholder(value):
                        pre.placeholder_location = pre.placeholder_location or cell.location
                    continue
                if _PLACEHOLDER_UNIT.match(folded):
                    pre.placeholder_location = pre.placeholder_location or cell.location
                    continue
                if _EXCLUDED_PREAMBLE.search(folded) or not re.search(r"[a-z]{2}", folded):
                    continue
                if leftmost and col <= split_col:
                    unit_lines.append((line, cell))
            leftmost = False
    pre.title = " ".join(title_parts) or None
    chosen = prefixed_unit or (unit_lines[-1] if unit_lines else None)
    if chosen:
        pre.unit = chosen[0].strip(" :-*")
        pre.unit_location = chosen[1].location
    return pre


# --- the table body -------------------------------------------------------------------------


def _kind_from_section(folded: str, numeral: str) -> str | None:
    if "tap the" in folded or re.search(r"tap\s*the", folded):
        return "collective"
    if re.search(r"ca\s*nhan", folded):
        return "individual"
    return {"i": "collective", "a": "collective", "ii": "individual", "b": "individual"}.get(
        numeral
    )


def _row_models(row: Row, lay: _Layout) -> list[tuple[str, Cell]]:
    models: list[tuple[str, Cell]] = []
    if lay.field_cols:
        for col in sorted(lay.field_cols):
            cell = _cell(row, col)
            if cell is None or cell.merged or not cell.text or _is_placeholder(cell.text):
                continue
            models.append((lay.field_cols[col], cell))
    else:
        cell = _cell(row, lay.model_col)
        label = _text(row, lay.field_label_col)
        if cell is not None and cell.text and not _is_placeholder(cell.text):
            fld = _field_of(label) if label else None
            models.append((fld or "", cell))
    return models


def _is_header_like(row: Row) -> bool:
    texts = [_fold(c.text) for _, c in row.nonempty()]
    return any(t.strip(" .:") in _TT_LABELS for t in texts) and any(
        _NAME_LABEL.search(t) for t in texts
    )


@dataclass
class _Body:
    entries: list[Entry] = field(default_factory=list)
    unfilled: list[UnfilledRow] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    totals_location: dict[str, str] = field(default_factory=dict)
    declared_empty: bool = False
    unknown_fields: list[Cell] = field(default_factory=list)
    end: int = 0
    last_location: str | None = None


def _read_body(rows: list[Row], lay: _Layout) -> _Body:
    body = _Body(end=lay.body_start)
    kind = "collective"
    prev: tuple[str | None, str | None] | None = None  # (no, name) of the previous entry row
    i = lay.body_start
    while i < len(rows):
        row = rows[i]
        if row.block != lay.block:
            break  # documents: the table ended
        if i > lay.body_start and _is_header_like(row):
            break
        tt_cell = _cell(row, lay.tt_col)
        name_cell = _cell(row, lay.name_col)
        tt = tt_cell.text if tt_cell else ""
        name = name_cell.text if name_cell else ""
        lead = " ".join(t for t in (tt, name) if t)
        folded_lead = _fold(lead)
        first_text = next((c.text for _, c in row.nonempty()), "")
        folded_first = _fold(first_text)
        models = _row_models(row, lay)
        all_text = " ".join(c.text for _, c in row.nonempty() if not c.merged)
        folded_all = _fold(all_text)

        if not row.nonempty():
            i += 1
            continue
        if _TITLE.search(folded_first) and not models and "bieu tong hop" in folded_first:
            break
        if _STOP.search(folded_first) and not models:
            break
        if _TOTAL.match(folded_lead) or (not tt and _TOTAL.match(folded_first)):
            _read_totals(row, lay, body)
            body.end = i + 1
            i += 1
            break
        if _DECLARED_EMPTY.search(folded_all):
            body.declared_empty = True
            body.end = i + 1
            i += 1
            continue
        numeral = _fold(tt).strip()
        section_text = folded_lead if lead else folded_first
        if not models and (
            _SECTION.match(section_text) or (_ROMAN.match(numeral) and not name_cell_is_value(name))
        ):
            kind = _kind_from_section(section_text, numeral.rstrip(".)")) or kind
            prev = None
            body.end = i + 1
            i += 1
            continue
        if models and _SECTION.match(section_text) and _ROMAN.match(numeral):
            kind = _kind_from_section(section_text, numeral.rstrip(".)")) or kind
        no = tt.rstrip(".").strip() or None
        if no and _is_placeholder(no):
            no = None
        nm = name or None
        if nm and _is_placeholder(nm):
            nm = None
        if not models:
            if no is None and nm is None:
                i += 1
                continue
            if nm is None and no is not None and re.fullmatch(r"\d{1,3}", no):
                i += 1  # a numbered template row left empty
                continue
            body.unfilled.append(
                UnfilledRow(
                    kind=kind,  # type: ignore[arg-type]
                    no=no,
                    name=nm,
                    location=_location_at(row, lay.name_col if nm else lay.tt_col)
                    or (name_cell or tt_cell).location,  # type: ignore[union-attr]
                )
            )
            prev = (no, nm)
            body.end = i + 1
            i += 1
            continue
        if no is None and nm is None and prev is not None:
            no, nm = prev
        note_cell = _cell(row, lay.note_col)
        note = note_cell.text if note_cell and note_cell.text and not note_cell.merged else None
        for fld, cell in models:
            if not fld:
                body.unknown_fields.append(cell)
                continue
            body.entries.append(
                Entry(
                    kind=kind,  # type: ignore[arg-type]
                    no=no,
                    name=nm,
                    field=fld,
                    model=cell.text,
                    note=note,
                    location=cell.location,
                    name_location=_location_at(row, lay.name_col),
                )
            )
        prev = (no, nm)
        body.end = i + 1
        i += 1
    return body


def name_cell_is_value(name: str) -> bool:
    """A name cell that holds a real name (not a section label)."""
    folded = _fold(name)
    return bool(folded) and not re.match(r"^(tap\s*the|ca\s*nhan)\b", folded)


def _read_totals(row: Row, lay: _Layout, body: _Body) -> None:
    values: dict[str, int | None] = {}
    for col, fld in lay.field_cols.items():
        cell = _cell(row, col)
        values[fld] = _to_int(cell)
        if cell is not None:
            body.totals_location[fld] = cell.location
    overall = None
    for col in (lay.tt_col, lay.name_col):
        cell = _cell(row, col)
        if cell is None:
            continue
        if cell.number is not None and not cell.merged:
            overall = int(round(cell.number))
        else:
            m = re.search(r"(\d{1,4})", cell.text)
            if m:
                overall = int(m.group(1))
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


def find_forms(extracted: Extracted, filename: str) -> tuple[list[Form], list[Problem]]:
    """Find every M1/M2 table in the grids; problems here are about the file as a whole."""
    forms: list[Form] = []
    problems: list[Problem] = []
    layouts: list[tuple[Grid, _Layout]] = []
    for grid in extracted.grids:
        rows = grid.rows
        r = 0
        while r < len(rows):
            lay = _detect_layout(rows, r)
            if lay is None:
                r += 1
                continue
            layouts.append((grid, lay))
            r = lay.body_start
            # Skip to the end of this table before looking for the next header.
            body = _read_body(rows, lay)
            r = max(body.end, lay.body_start)
    single = len(layouts) == 1
    by_grid: dict[int, list[_Layout]] = {}
    for grid, lay in layouts:
        by_grid.setdefault(id(grid), []).append(lay)
    for grid in extracted.grids:
        prev_end = 0
        for lay in by_grid.get(id(grid), []):
            rows = grid.rows
            body = _read_body(rows, lay)
            split = min(lay.field_cols) - 1 if lay.field_cols else (lay.name_col or 0)
            pre = _read_preamble(rows, prev_end, lay.header_row, max(split, lay.name_col or 0))
            prev_end = max(body.end, lay.body_start)
            form_type = pre.marker or _hint_from_name(grid.name)
            if pre.marker and pre.level and pre.marker != pre.level:
                problems.append(
                    Problem(
                        "error",
                        "form-type-conflict",
                        pre.level_location or pre.marker_location,
                        _message_type_conflict(pre.marker, pre.level),
                    )
                )
                continue
            form_type = form_type or pre.level
            if form_type is None and single:
                form_type = _hint_from_name(filename)
            if form_type is None:
                problems.append(
                    Problem(
                        "error",
                        "unknown-form-type",
                        _form_location(grid, lay),
                        _message_type_unknown(),
                    )
                )
                continue
            form = Form(
                form=form_type,  # type: ignore[arg-type]
                unit=pre.unit,
                year=pre.year,
                date=pre.date,
                location=_form_location(grid, lay),
                entries=body.entries,
                declared_totals=body.totals,
                unit_location=pre.unit_location or pre.placeholder_location or pre.first_location,
                year_location=pre.year_location,
                totals_location=body.totals_location,
                unfilled_rows=body.unfilled,
                declared_empty=body.declared_empty,
                title=pre.title,
            )
            for cell in body.unknown_fields:
                form.problems.append(
                    Problem(
                        "error",
                        "unknown-field",
                        cell.location,
                        "Không xác định được lĩnh vực của mô hình này. Đề nghị ghi mô hình vào "
                        "đúng cột lĩnh vực: kinh tế, văn hóa - xã hội, an ninh - quốc phòng "
                        "hoặc xây dựng hệ thống chính trị.",
                    )
                )
            forms.append(form)
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
