"""Hostile archives and XML are refused quickly, before any parser inflates them."""

from __future__ import annotations

import dataclasses
import io
import random
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from parsers.dispatch import parse_file
from parsers.ooxml import Package
from parsers.safety import (
    Limits,
    _opened_head,
    _plain_head,
    check_zip,
    feed_member,
    plain_member,
    prolog_verdict,
)
from tests.parsers.builders import document, workbook

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)


def _xlsx() -> bytes:
    return workbook(("A1", "Mẫu số 01"), ("A2", "TỔNG"))


def _docx() -> bytes:
    return document("Mẫu số 02")


def _replace_member(data: bytes, name: str, writer) -> bytes:
    """Copy a zip, letting `writer(zf)` write the member `name` instead of the original."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
        writer(dst)
    return out.getvalue()


@pytest.fixture(scope="module")
def gigabyte_workbook() -> bytes:
    """A real .xlsx whose sheet truly inflates to 1 GiB of white space (about 4.5 MB packed)."""

    def write(zf: zipfile.ZipFile) -> None:
        with zf.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as fh:
            fh.write(
                b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                b'spreadsheetml/2006/main"><sheetData>'
            )
            chunk = b" " * (1 << 20)
            for _ in range(1024):
                fh.write(chunk)
            fh.write(b"</sheetData></worksheet>")

    src = _xlsx()
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(src)) as s,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst,
    ):
        for info in s.infolist():
            if info.filename != "xl/worksheets/sheet1.xml":
                dst.writestr(info.filename, s.read(info))
        write(dst)
    return out.getvalue()


def test_gigabyte_workbook_refused_fast_and_small(gigabyte_workbook):
    assert len(gigabyte_workbook) < 20 * 1024 * 1024
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = parse_file(gigabyte_workbook, "Mau01.xlsx")
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [p.code for p in result.problems] == ["file-too-large"]
    assert result.problems[0].severity == "error"
    assert elapsed < 3
    assert peak < 50 * 1024 * 1024


def test_high_ratio_member_refused_even_when_total_is_small():
    data = _replace_member(
        _xlsx(),
        "xl/worksheets/sheet1.xml",
        lambda zf: zf.writestr("xl/worksheets/sheet1.xml", b"\0" * (5 << 20)),
    )
    problem = check_zip(data, Limits())
    assert problem is not None and problem.code == "file-too-large"
    assert "nén" in problem.message


def test_declared_total_over_limit():
    data = _replace_member(
        _xlsx(), "xl/media/big.bin", lambda zf: zf.writestr("xl/media/big.bin", b"\0" * (3 << 20))
    )
    limits = Limits(max_total_uncompressed=2 << 20, max_member_ratio=10_000)
    problem = check_zip(data, limits)
    assert problem is not None and problem.code == "file-too-large"


def test_too_many_members():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for i in range(60):
            zf.writestr(f"x/{i}.txt", "")
    problem = check_zip(out.getvalue(), Limits(max_members=50))
    assert problem is not None and problem.code == "file-too-large"


@pytest.mark.parametrize(
    "name", ["../../etc/passwd", "/abs/path.xml", "a/" * 40 + "b.xml", "C:/Windows/x.xml"]
)
def test_absurd_member_paths(name):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("[Content_Types].xml", "<Types/>")
        info = zipfile.ZipInfo("placeholder")
        info.filename = name  # bypass ZipInfo's own clean-up of the name
        zf.writestr(info, "x")
    problem = check_zip(out.getvalue(), Limits())
    assert problem is not None and problem.code == "unreadable-file"


def test_ordinary_files_pass():
    assert check_zip(_xlsx(), Limits()) is None
    assert check_zip(_docx(), Limits()) is None


def test_truncated_zip_is_unreadable():
    problem = check_zip(_xlsx()[:-40], Limits())
    assert problem is not None and problem.code == "unreadable-file"


@pytest.mark.parametrize(
    ("fmt", "part"),
    [
        ("xlsx", "xl/sharedStrings.xml"),
        ("xlsx", "xl/worksheets/sheet1.xml"),
        ("docx", "word/document.xml"),
        ("docx", "word/styles.xml"),
    ],
)
def test_xml_bomb_refused_quickly(fmt, part):
    base = _xlsx() if fmt == "xlsx" else _docx()
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        original = zf.read(part) if part in zf.namelist() else b"<x/>"
    body = original.split(b"?>", 1)[-1]  # drop the original XML declaration
    bomb = BILLION_LAUGHS + body.replace(b">", b">&lol9;", 1)
    data = _replace_member(base, part, lambda z: z.writestr(part, bomb))
    start = time.perf_counter()
    result = parse_file(data, f"bomb.{fmt}")
    assert time.perf_counter() - start < 2
    assert [p.code for p in result.problems] == ["unreadable-file"]
    assert result.forms == []


def test_prolog_rules():
    assert prolog_verdict(b'<?xml version="1.0"?>\n<!-- c --><root/>') is None
    assert prolog_verdict(b"\xef\xbb\xbf<root>") is None
    assert prolog_verdict(b"<?xml version='1.0'?><!-- x --><!DOCTYPE r []><r/>") is not None
    assert prolog_verdict(b"<!-- --> <!ENTITY x 'y'><r/>") is not None
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE r><r/>'.encode("utf-16")
    assert prolog_verdict(utf16) is not None
    assert prolog_verdict('<?xml version="1.0"?><r/>'.encode("utf-16")) is None
    assert prolog_verdict(b"<?xml " + b" " * 70_000) is not None


def test_limits_are_frozen_with_documented_defaults():
    limits = Limits()
    assert limits.max_file_bytes == 20 * 1024 * 1024
    assert limits.max_total_uncompressed == 100 * 1024 * 1024
    assert limits.max_members == 10_000
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.max_rows = 1  # type: ignore[misc]


def _sheet_renamed(rows_xml: bytes, part: str = "xl/worksheets/sheet1.dat") -> bytes:
    """The test workbook with its sheet stored under `part` (the name XML checks keyed on)."""
    src = zipfile.ZipFile(io.BytesIO(_xlsx()))
    out = io.BytesIO()
    target = part.removeprefix("xl/").encode()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                continue
            data = data.replace(b"worksheets/sheet1.xml", target)
            dst.writestr(info.filename, data)
        dst.writestr(
            part,
            b'<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/'
            b'spreadsheetml/2006/main"><sheetData>' + rows_xml + b"</sheetData></worksheet>",
        )
    return out.getvalue()


def test_every_member_is_size_checked_whatever_its_name():
    padding = b" " * 50_000
    big = _sheet_renamed(b'<row r="1"><c r="A1"><v>1</v></c></row>' + padding)
    assert check_zip(big, Limits()) is None
    problem = check_zip(big, Limits(max_xml_part=40_000, max_member_ratio=1e9))
    assert problem is not None and problem.code == "file-too-large"
    assert "sheet1.dat" in problem.message
    # A DOCTYPE hides nowhere either.
    bomb = _replace_member(
        _xlsx(),
        "xl/media/x.dat",
        lambda zf: zf.writestr("xl/media/x.dat", BILLION_LAUGHS + b"<a/>"),
    )
    problem = check_zip(bomb, Limits())
    assert problem is not None and problem.code == "unreadable-file"


def test_a_row_of_a_million_cells_is_refused_in_flat_memory():
    # One row of a million cells in a sheet part named .dat; the ratio check relaxed so the
    # reader itself must stop it (it built the whole row in memory: 3 GB for 8 million).
    data = _sheet_renamed(b'<row r="1">' + b"<c><v>1</v></c>" * 1_000_000 + b"</row>")
    limits = Limits(max_member_ratio=1e9)
    assert check_zip(data, limits) is None
    start = time.perf_counter()
    result = parse_file(data, "Mau01.xlsx", limits=limits)
    assert time.perf_counter() - start < 5
    assert [p.code for p in result.problems] == ["file-too-large"]
    assert "hàng" in result.problems[0].message and result.problems[0].location == "Sheet!1:1"
    tracemalloc.start()
    try:
        parse_file(data, "Mau01.xlsx", limits=limits)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 80 * 1024 * 1024  # the packed file and its sheet, not the row
    # Many short rows hit the per-sheet cap instead.
    rows = b"".join(
        b'<row r="%d">' % i + b"<c><v>1</v></c>" * 300 + b"</row>" for i in range(1, 4000)
    )
    result = parse_file(
        _sheet_renamed(rows),
        "Mau01.xlsx",
        limits=Limits(max_sheet_cells=100_000, max_member_ratio=1e9),
    )
    assert [p.code for p in result.problems] == ["file-too-large"]


def test_a_docx_table_row_of_too_many_cells_is_refused():
    from tests.parsers.builders import edit_member

    cell = b"<w:tc><w:p><w:r><w:t>x</w:t></w:r></w:p></w:tc>"
    data = edit_member(
        document("Mẫu số 02", table=("a", "b")),
        "word/document.xml",
        lambda xml: xml.replace(b"<w:tc>", cell * 30 + b"<w:tc>", 1),
    )
    result = parse_file(data, "Mau02.docx", limits=Limits(max_row_cells=20))
    assert [p.code for p in result.problems] == ["file-too-large"]
    assert parse_file(data, "Mau02.docx").forms is not None  # under the default cap: read


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipFile, zipfile.ZipInfo]]:
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return []
    return [(zf, info) for info in zf.infolist() if info.file_size > 0]


def _stored(data: bytes) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info))
    return out.getvalue()


def _sound_and_damaged_packages(seed: int) -> list[bytes]:
    """Corpus packages, made ones, stored (uncompressed) copies, and each with 40 single-bit
    flips at random places."""
    fixtures = sorted(FIXTURES.rglob("*.xlsx")) + sorted(FIXTURES.rglob("*.docx"))
    packages = [p.read_bytes() for p in fixtures[:12]] + [_xlsx(), _docx()]
    packages += [_stored(p) for p in packages[:4]]
    rng = random.Random(seed)
    damaged = []
    for data in packages:
        for _ in range(40):
            pos = rng.randrange(len(data))
            damaged.append(
                data[:pos] + bytes([data[pos] ^ (1 << rng.randrange(8))]) + data[pos + 1 :]
            )
    return packages + damaged


def test_direct_prolog_reading_agrees_with_zipfile_on_sound_and_damaged_packages() -> None:
    """The shortcut reading a member's head never answers what ZipFile.open would not."""
    shortcut = fallback = 0
    for data in _sound_and_damaged_packages(seed=12):
        for zf, info in _zip_members(data):
            plain = _plain_head(zf, info, data)
            if plain is None:
                fallback += 1
                continue
            shortcut += 1
            opened = _opened_head(zf, info)
            assert opened is not None, info.filename
            assert opened[: len(plain)] == plain, info.filename
    assert shortcut > 100 and fallback > 0


def _read_outcome(read, info: zipfile.ZipInfo) -> bytes | str:
    """What reading one member gives: its bytes, or the name of the error raised."""
    try:
        return read(info)
    except Exception as exc:  # noqa: BLE001 - the error type is what is compared
        return type(exc).__name__


def test_direct_member_reading_agrees_with_zipfile_on_sound_and_damaged_packages() -> None:
    """A package reads every member exactly as ZipFile.read does: the bytes or the error."""
    direct = fallback = 0
    for data in _sound_and_damaged_packages(seed=7):
        members = _zip_members(data)
        if not members:
            continue
        package = Package(data)
        for zf, info in members:
            expected = _read_outcome(zf.read, info)
            content = plain_member(zf, info, data)
            if content is None:
                fallback += 1
            else:
                direct += 1
                assert content == expected, info.filename
            assert _read_outcome(package.read, package.getinfo(info.filename)) == expected
            assert _read_outcome(package.read, info.filename) == expected
    assert direct > 100 and fallback > 0


def test_member_fed_in_chunks_agrees_with_zipfile_on_sound_and_damaged_packages() -> None:
    """Chunks fed straight from the package are ZipFile.read's bytes, or the caller falls back.

    False (every chunk fed) only for a member ZipFile.read gives whole and unchanged; None
    whenever it raises or the direct path cannot vouch for the bytes; True when the
    consumer stops early.
    """
    fed = fallback = 0
    for data in _sound_and_damaged_packages(seed=5):
        for zf, info in _zip_members(data):
            expected = _read_outcome(zf.read, info)
            chunks: list[bytes] = []

            def take(chunk: bytes, chunks: list[bytes] = chunks) -> bool:
                chunks.append(chunk)
                return False

            outcome = feed_member(zf, info, data, take, chunk=1000)
            if outcome is None:
                fallback += 1
                continue
            fed += 1
            assert outcome is False
            assert b"".join(chunks) == expected, info.filename
            assert all(len(c) <= 1000 for c in chunks)
            assert feed_member(zf, info, data, lambda chunk: True) is (info.file_size > 0)
    assert fed > 100 and fallback > 0
