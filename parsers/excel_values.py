"""Excel's cell arithmetic: column letters, ranges, number formats and serial dates.

These are openpyxl's own functions (openpyxl 3.1, MIT licence, `utils.cell`,
`utils.datetime`, `styles.numbers`), restated here because importing any part of openpyxl
runs its package `__init__`, which loads the whole workbook model with numpy and PIL: about
0.4 s of CPU at every start of the workers, for seven small functions. The readers only read;
`tests/parsers/test_excel_values.py` checks each function against openpyxl's on many inputs.
"""

from __future__ import annotations

import datetime
import functools
import re
from types import MappingProxyType

__all__ = [
    "BUILTIN_FORMATS",
    "CALENDAR_MAC_1904",
    "CALENDAR_WINDOWS_1900",
    "column_index_from_string",
    "from_ISO8601",
    "from_excel",
    "get_column_letter",
    "is_date_format",
    "is_timedelta_format",
    "range_boundaries",
]

# The number formats Excel knows by id without writing them into styles.xml.
BUILTIN_FORMATS = MappingProxyType(
    {
        0: "General",
        1: "0",
        2: "0.00",
        3: "#,##0",
        4: "#,##0.00",
        5: '"$"#,##0_);("$"#,##0)',
        6: '"$"#,##0_);[Red]("$"#,##0)',
        7: '"$"#,##0.00_);("$"#,##0.00)',
        8: '"$"#,##0.00_);[Red]("$"#,##0.00)',
        9: "0%",
        10: "0.00%",
        11: "0.00E+00",
        12: "# ?/?",
        13: "# ??/??",
        14: "mm-dd-yy",
        15: "d-mmm-yy",
        16: "d-mmm",
        17: "mmm-yy",
        18: "h:mm AM/PM",
        19: "h:mm:ss AM/PM",
        20: "h:mm",
        21: "h:mm:ss",
        22: "m/d/yy h:mm",
        37: "#,##0_);(#,##0)",
        38: "#,##0_);[Red](#,##0)",
        39: "#,##0.00_);(#,##0.00)",
        40: "#,##0.00_);[Red](#,##0.00)",
        41: r'_(* #,##0_);_(* \(#,##0\);_(* "-"_);_(@_)',
        42: r'_("$"* #,##0_);_("$"* \(#,##0\);_("$"* "-"_);_(@_)',
        43: r'_(* #,##0.00_);_(* \(#,##0.00\);_(* "-"??_);_(@_)',
        44: r'_("$"* #,##0.00_)_("$"* \(#,##0.00\)_("$"* "-"??_)_(@_)',
        45: "mm:ss",
        46: "[h]:mm:ss",
        47: "mmss.0",
        48: "##0.0E+0",
        49: "@",
    }
)

# Quoted literals and bracketed locale/colour codes say nothing about dates; [h], [mm], [ss]
# (elapsed time) do.
_STRIP = re.compile(r'".*?"|\[(?!hh?\]|mm?\]|ss?\])[^\]]*\]')
_DATE_PART = re.compile(r"(?<![_\\])[dmhysDMHYS]")
_TIMEDELTA = re.compile(r"\[hh?\](:mm(:ss(\.0*)?)?)?|\[mm?\](:ss(\.0*)?)?|\[ss?\](\.0*)?", re.I)


def is_date_format(fmt: str | None) -> bool:
    """Whether a number format shows a date or a time (its first section decides)."""
    if fmt is None:
        return False
    fmt = _STRIP.sub("", fmt.split(";")[0])
    return _DATE_PART.search(fmt) is not None


def is_timedelta_format(fmt: str | None) -> bool:
    """Whether a number format shows elapsed time ([h]:mm:ss and the like)."""
    if fmt is None:
        return False
    return _TIMEDELTA.search(fmt.split(";")[0]) is not None


_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_LETTER_VALUE = {letter: pos for pos, letter in enumerate(_LETTERS, 1)}
_MAX_COLUMN = 18278  # XFD is 16384; openpyxl allows up to ZZZ


@functools.lru_cache(maxsize=4096)
@functools.lru_cache(maxsize=_MAX_COLUMN)
def get_column_letter(col_idx: int) -> str:
    """1 -> "A", 27 -> "AA" (bijective base 26)."""
    if not 1 <= col_idx <= _MAX_COLUMN:
        raise ValueError(f"Invalid column index {col_idx}")
    letters = []
    while col_idx:
        col_idx, remainder = divmod(col_idx - 1, 26)
        letters.append(_LETTERS[remainder])
    return "".join(reversed(letters))


@functools.lru_cache(maxsize=4096)
def column_index_from_string(col: str) -> int:
    """ "A" -> 1, "aa" -> 27; ValueError beyond three letters or for anything else."""
    error = f"'{col}' is not a valid column name. Column names are from A to ZZZ"
    if len(col) > 3:
        raise ValueError(error)
    idx = 0
    for letter, power in zip(reversed(col.upper()), (1, 26, 676)):  # noqa: B905 - col may be ""
        pos = _LETTER_VALUE.get(letter)
        if pos is None:
            raise ValueError(error)
        idx += pos * power
    if not 0 < idx <= _MAX_COLUMN:
        raise ValueError(error)
    return idx


_RANGE = re.compile(
    r"^[$]?(?P<min_col>[A-Za-z]{1,3})?[$]?(?P<min_row>\d+)?"
    r"(:[$]?(?P<max_col>[A-Za-z]{1,3})?[$]?(?P<max_row>\d+)?)?$"
)


def range_boundaries(range_string: str) -> tuple[int | None, int | None, int | None, int | None]:
    """ "B2:D5" -> (2, 2, 4, 5); one cell is a range of one; whole columns or rows leave the
    other pair None."""
    m = _RANGE.match(range_string)
    if not m:
        raise ValueError(f"{range_string} is not a valid coordinate or range")
    min_col_s, min_row_s, sep, max_col_s, max_row_s = m.groups()
    if sep:
        cols = (min_col_s, max_col_s)
        rows = (min_row_s, max_row_s)
        if not (all(cols + rows) or (all(cols) and not any(rows)) or (all(rows) and not any(cols))):
            raise ValueError(f"{range_string} is not a valid coordinate or range")
    min_col = column_index_from_string(min_col_s) if min_col_s is not None else None
    min_row = int(min_row_s) if min_row_s is not None else None
    max_col = column_index_from_string(max_col_s) if max_col_s is not None else min_col
    max_row = int(max_row_s) if max_row_s is not None else min_row
    return min_col, min_row, max_col, max_row


CALENDAR_WINDOWS_1900 = datetime.datetime(1899, 12, 30)
CALENDAR_MAC_1904 = datetime.datetime(1904, 1, 1)
_SECS_PER_DAY = 86400


def from_excel(
    value: float | None,
    epoch: datetime.datetime = CALENDAR_WINDOWS_1900,
    timedelta: bool = False,
) -> datetime.datetime | datetime.time | datetime.timedelta | None:
    """An Excel serial number as a datetime (a time below 1, a timedelta when asked), with
    Lotus 1-2-3's 29 February 1900 kept as Excel keeps it."""
    if value is None:
        return None
    if timedelta:
        td = datetime.timedelta(days=value)
        if td.microseconds:  # to the millisecond
            td = datetime.timedelta(
                seconds=td.total_seconds() // 1, microseconds=round(td.microseconds, -3)
            )
        return td
    day, fraction = divmod(value, 1)
    diff = datetime.timedelta(milliseconds=round(fraction * _SECS_PER_DAY * 1000))
    if 0 <= value < 1 and diff.days == 0:
        mins, seconds = divmod(diff.seconds, 60)
        hours, mins = divmod(mins, 60)
        return datetime.time(hours, mins, seconds, diff.microseconds)
    if 0 < value < 60 and epoch == CALENDAR_WINDOWS_1900:
        day += 1
    return epoch + datetime.timedelta(days=day) + diff


_ISO = re.compile(
    r"""
(?P<date>(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2}))?T?
(?P<time>(?P<hour>\d{2}):(?P<minute>\d{2})(:(?P<second>\d{2})(?P<microsecond>\.\d{1,3})?)?)?Z?""",
    re.VERBOSE,
)
_ISO_DURATION = re.compile(
    r"PT((?P<hours>\d+)H)?((?P<minutes>\d+)M)?((?P<seconds>\d+(\.\d{1,3})?)S)?"
)


def from_ISO8601(  # noqa: N802 - openpyxl's name
    formatted_string: str,
) -> datetime.datetime | datetime.date | datetime.time | datetime.timedelta | None:
    """A date, time or datetime as OOXML writes them (ISO 8601), or an elapsed PT..H..M..S;
    ValueError for anything else."""
    if not formatted_string:
        return None
    match = _ISO.match(formatted_string)
    if match and any(match.groups()):
        parts = match.groupdict()
        year, month, day, hour, minute, second = (
            int(parts[key] or 0) for key in ("year", "month", "day", "hour", "minute", "second")
        )
        fraction = parts["microsecond"]
        micro = int(float(fraction) * 1_000_000) if fraction else 0
        if not parts["date"]:
            return datetime.time(hour, minute, second, micro)
        if not parts["time"]:
            return datetime.date(year, month, day)
        return datetime.datetime(year, month, day, hour, minute, second, micro)
    match = _ISO_DURATION.match(formatted_string)
    if match and any(match.groups()):
        durations = {key: float(val) for key, val in match.groupdict(0).items() if val}
        return datetime.timedelta(**durations)
    raise ValueError(f"Invalid datetime value {formatted_string}")
