"""Find the M1/M2 registration tables in format-neutral grids and read them into Form records."""

from __future__ import annotations

import re

from parsers.finder.body import Body, read_body
from parsers.finder.labels import LEVEL, MARKER_IN_NAME, MODEL_COLUMN_LABEL, field_of
from parsers.finder.layout import Layout, detect_layout, is_header_row
from parsers.finder.preamble import Preamble, read_preamble
from parsers.grid import Extracted, Grid, Row
from parsers.model import FORM_NAMES, Form, Problem
from parsers.problems import problem
from parsers.vntext import fold_accents

# A document table's block: "table 2", or the path of a nested one ("table 1, row 1, column 1,
# table 2"): the form's location either way.
_DOC_TABLE = re.compile(r"^table \d+(?:, row \d+, column \d+, table \d+)*$")


def _hint_from_name(text: str) -> str | None:
    folded = fold_accents(text)
    m = MARKER_IN_NAME.search(folded)
    if m:
        return f"M{m.group(1)}"
    lv = LEVEL.search(folded)
    if lv:
        return "M1" if lv.group(1) == "quan" else "M2"
    return None


def _form_location(grid: Grid, lay: Layout) -> str:
    if grid.kind == "document":
        return lay.block
    return grid.name


def _find_tables(grid: Grid) -> list[tuple[Layout, Body]]:
    """Every table header in the grid with its body, top to bottom, each row read once."""
    rows = grid.rows
    found: list[tuple[Layout, Body]] = []
    r = 0
    while r < len(rows):
        lay = None
        if is_header_row(rows[r]) or _starts_header(rows, r):
            lay = detect_layout(rows, r)
        if lay is None:
            r += 1
            continue
        body = read_body(rows, lay)
        found.append((lay, body))
        r = max(body.end, lay.body_start)  # the next header can only come after this table
    return found


def _starts_header(rows: list[Row], r: int) -> bool:
    """A header whose first row holds only "Tên mô hình"/field labels (TT/name below it)."""
    if not any(
        MODEL_COLUMN_LABEL.search(fold_accents(c.text)) or field_of(c.text)
        for _, c in rows[r].nonempty()
        if len(c.text) < 80
    ):
        return False
    return any(
        rows[i].block == rows[r].block and is_header_row(rows[i])
        for i in range(r + 1, min(r + 3, len(rows)))
    )


def _form_type(
    pre: Preamble, grid: Grid, lay: Layout, single: bool, filename: str, problems: list[Problem]
) -> str | None:
    """M1 or M2 from the marker, the title's level or the sheet name; None (and a problem)."""
    if pre.marker and pre.level and pre.marker != pre.level:
        problems.append(
            problem(
                "form-type-conflict",
                pre.level_location or pre.marker_location,
                marker=FORM_NAMES[pre.marker],
                level=FORM_NAMES[pre.level],
            )
        )
        return None
    # The sheet name is the weakest hint: a copied sheet keeps its old name ("Mẫu 2").
    form_type = pre.marker or pre.level or _hint_from_name(grid.name)
    if form_type is None and single:
        form_type = _hint_from_name(filename)
    if form_type is None:
        problems.append(problem("unknown-form-type", _form_location(grid, lay)))
    return form_type


def _table_problems(lay: Layout, body: Body, grid: Grid) -> list[Problem]:
    out = [problem("unknown-field", cell.location) for cell in body.unknown_fields]
    out += [
        problem("ambiguous-field", cell.location, text=cell.text) for cell in body.ambiguous_fields
    ]
    out += [
        problem("total-ambiguous-split", item.cell.location, variant=why, count=item.count)
        for item, why in body.unsettled_splits
    ]
    if lay.beside_col is not None:
        out.append(problem("forms-side-by-side", _form_location(grid, lay)))
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
                problem(
                    "blank-template-copy",
                    f.location,
                    place=_place_name(f.location),
                    form=FORM_NAMES[f.form],
                )
            )
        else:
            kept.append(f)
    return kept


def _place_name(location: str) -> str:
    """A form's location as the unit reads it: "Trang tính “M1 (2)”" or "Bảng số 3"."""
    if _DOC_TABLE.match(location):
        return f"Bảng số {location.rsplit(' ', 1)[1]}"
    return f"Trang tính “{location}”"


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
            pre = read_preamble(grid.rows, prev_end, lay.header_row, max(split, lay.name_col or 0))
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
        problems.append(problem("no-form-found"))
    return forms, problems


__all__ = ["find_forms"]
