"""parsers.excel_values answers exactly as the openpyxl functions it restates."""

from __future__ import annotations

import datetime
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl.styles import numbers as ox_numbers
from openpyxl.utils import cell as ox_cell
from openpyxl.utils import datetime as ox_datetime

from parsers import excel_values as ev


def _same(ours, theirs, *args, **kwargs) -> None:  # noqa: ANN001 - any function pair
    """Both return the same value, or both raise the same exception type."""
    try:
        expected = theirs(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the exception type is what is compared
        with pytest.raises(type(exc)):
            ours(*args, **kwargs)
        return
    got = ours(*args, **kwargs)
    assert got == expected
    assert type(got) is type(expected)


def test_builtin_formats_are_openpyxls() -> None:
    assert dict(ev.BUILTIN_FORMATS) == ox_numbers.BUILTIN_FORMATS


def test_epochs_are_openpyxls() -> None:
    assert ev.CALENDAR_WINDOWS_1900 == ox_datetime.CALENDAR_WINDOWS_1900
    assert ev.CALENDAR_MAC_1904 == ox_datetime.CALENDAR_MAC_1904


def test_every_column_letter_and_back() -> None:
    for idx in range(-2, 18282):
        _same(ev.get_column_letter, ox_cell.get_column_letter, idx)
        if 1 <= idx <= 18278:
            letters = ox_cell.get_column_letter(idx)
            _same(ev.column_index_from_string, ox_cell.column_index_from_string, letters)
            _same(ev.column_index_from_string, ox_cell.column_index_from_string, letters.lower())


@pytest.mark.parametrize("col", ["", "1", "A1", "AAAA", "ZZZZ", "Ä", "a$", " A", "XFE", "ZZZ"])
def test_odd_column_names(col: str) -> None:
    _same(ev.column_index_from_string, ox_cell.column_index_from_string, col)


_RANGES = [
    "A1",
    "B2:D5",
    "$A$1:$C$3",
    "a1:c3",
    "A:C",
    "2:5",
    "A1:C",
    "A:3",
    "",
    ":",
    "A1:",
    "ZZZ1048576",
    "AAAA1",
    "A0",
    "1A",
    "A1:B2:C3",
    "Sheet1!A1",
]


@pytest.mark.parametrize("ref", _RANGES)
def test_ranges_like_openpyxl(ref: str) -> None:
    _same(ev.range_boundaries, ox_cell.range_boundaries, ref)


@given(st.text(alphabet="AZaz$:0129", max_size=12))
def test_random_ranges_like_openpyxl(ref: str) -> None:
    _same(ev.range_boundaries, ox_cell.range_boundaries, ref)


_FORMATS = [
    *ox_numbers.BUILTIN_FORMATS.values(),
    None,
    "",
    "dd/mm/yyyy",
    "[$-42A]dd/mm/yyyy",
    '"ngày" dd "tháng" mm "năm" yyyy',
    "[Red]0.00",
    "[h]:mm:ss",
    "[mm]:ss",
    "[ss].00",
    "0_);[Red](0)",
    r"\d0",
    "_d0",
    "General;dd/mm",
    '#,##0 "đ"',
    "[$₫-42A]#,##0",
    "@;yyyy",
]


@pytest.mark.parametrize("fmt", _FORMATS)
def test_number_formats_like_openpyxl(fmt: str | None) -> None:
    _same(ev.is_date_format, ox_numbers.is_date_format, fmt)
    _same(ev.is_timedelta_format, ox_numbers.is_timedelta_format, fmt)


@given(st.text(alphabet='dmyhs0#.,;:[]"\\_$-@ HMSYDE', max_size=16))
def test_random_number_formats_like_openpyxl(fmt: str) -> None:
    _same(ev.is_date_format, ox_numbers.is_date_format, fmt)
    _same(ev.is_timedelta_format, ox_numbers.is_timedelta_format, fmt)


_SERIALS = [0, 0.5, 0.999999, 0.9999999999, 1, 1.25, 59, 59.5, 60, 60.75, 61, 45000.123456, 2958465]


@pytest.mark.parametrize("value", _SERIALS)
@pytest.mark.parametrize("epoch", [ev.CALENDAR_WINDOWS_1900, ev.CALENDAR_MAC_1904])
@pytest.mark.parametrize("timedelta", [False, True])
def test_serial_dates_like_openpyxl(
    value: float, epoch: datetime.datetime, timedelta: bool
) -> None:
    _same(ev.from_excel, ox_datetime.from_excel, value, epoch, timedelta=timedelta)


@given(
    st.floats(min_value=-1000, max_value=2958465, allow_nan=False),
    st.booleans(),
    st.booleans(),
)
def test_random_serial_dates_like_openpyxl(value: float, mac: bool, timedelta: bool) -> None:
    epoch = ev.CALENDAR_MAC_1904 if mac else ev.CALENDAR_WINDOWS_1900
    _same(ev.from_excel, ox_datetime.from_excel, value, epoch, timedelta=timedelta)


@pytest.mark.parametrize(
    "text",
    [
        "2024-02-20",
        "2024-02-20T08:30:00Z",
        "2024-02-20T08:30:00.125Z",
        "08:30",
        "08:30:15.5",
        "PT12H30M",
        "PT1.5S",
        "2024-13-40",
        "hôm qua",
        "",
        "T",
    ],
)
def test_iso_dates_like_openpyxl(text: str) -> None:
    _same(ev.from_ISO8601, ox_datetime.from_ISO8601, text)


def test_the_readers_do_not_import_openpyxl() -> None:
    """Importing openpyxl loads its whole workbook model (numpy, PIL): the workers' start."""
    code = (
        "import sys, parsers.xlsx, parsers.xls, parsers.dispatch;"
        "print(sorted(m for m in ('openpyxl', 'numpy', 'PIL') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
