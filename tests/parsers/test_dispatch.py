"""parse_file: every kind of bad input becomes a clear problem, good input reaches the finder."""

from __future__ import annotations

import io
import shutil
import unicodedata
import zipfile

import openpyxl
import pytest
from msoffcrypto.format.ooxml import OOXMLFile
from openpyxl.styles import Font

from parsers.convert import convert_with_soffice
from parsers.dispatch import parse_file
from parsers.model import ParseResult
from tests.parsers.builders import document

no_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")


def _xlsx(legacy: bool = False) -> bytes:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = "Mẫu số 01"
    ws["A3"] = "Hµ Néi" if legacy else "Hà Nội"
    if legacy:
        ws["A3"].font = Font(name=".VnTime")
    buf = io.BytesIO()
    wb.save(buf)
    wb.close()
    return buf.getvalue()


def _docx() -> bytes:
    return document("Kính gửi: Ban Dân vận Quận ủy", table=("Chi bộ 5", "Tổ dân phố xanh"))


def _codes(result: ParseResult) -> list[str]:
    return [p.code for p in result.problems]


def _check_messages(result: ParseResult) -> None:
    for p in result.problems:
        assert p.message and p.severity in ("error", "warning")
        assert any(ch in p.message for ch in "ăâêôơưđ"), p.message  # Vietnamese, with diacritics


def test_good_workbook_reaches_the_finder_with_a_nfc_label():
    name = unicodedata.normalize("NFD", "Mẫu 01 - Phường Khương Trung.xlsx")
    result = parse_file(_xlsx(), name)
    assert result.file == unicodedata.normalize("NFC", name)
    assert result.format == "xlsx"
    assert "unreadable-file" not in _codes(result)
    assert all(p.severity != "error" or p.code == "no-form-found" for p in result.problems)


def test_legacy_text_gives_one_warning_at_the_first_converted_cell():
    result = parse_file(_xlsx(legacy=True), "m.xlsx")
    warnings = [p for p in result.problems if p.code == "legacy-encoding-converted"]
    assert len(warnings) == 1
    assert warnings[0].severity == "warning" and warnings[0].location == "Sheet!A3"
    _check_messages(result)


@pytest.mark.parametrize("name", ["mau01.xls", "attachment.bin", "noname"])
def test_workbook_under_another_name_is_read_by_content(name):
    result = parse_file(_xlsx(), name)
    assert result.format == "xlsx" and "unreadable-file" not in _codes(result)


def test_docx_routes_to_the_docx_reader():
    result = parse_file(_docx(), "bao cao.doc")
    assert result.format == "docx" and "unreadable-file" not in _codes(result)


@pytest.mark.parametrize(
    ("data", "name", "fmt", "code"),
    [
        (b"%PDF-1.4\n1 0 obj\n", "mau01.pdf", "pdf", "unsupported-format"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 50, "scan.jpg", "other", "unsupported-format"),
        (b"<html><body><table><tr><td>x</td></tr></table>", "m.xls", "other", "unsupported-format"),
        # Named like a workbook but unrecognisable: a damaged file, not a foreign format.
        (bytes(range(256)) * 8, "m.xlsx", "xlsx", "unreadable-file"),
        (bytes(range(256)) * 8, "m.bin", "other", "unsupported-format"),
        (b"", "m.xlsx", "other", "unreadable-file"),
    ],
)
def test_unsupported_and_empty(data, name, fmt, code):
    result = parse_file(data, name)
    assert (result.format, _codes(result), result.forms) == (fmt, [code], [])
    _check_messages(result)


def test_truncated_and_corrupt_files_are_unreadable():
    truncated = parse_file(_xlsx()[:-200], "m.xlsx")
    assert truncated.format == "xlsx" and _codes(truncated) == ["unreadable-file"]
    damaged = bytearray(_docx())
    with zipfile.ZipFile(io.BytesIO(bytes(damaged))) as zf:
        info = zf.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename) + 10
    damaged[start : start + 40] = b"\xff" * 40  # garbage inside the deflated document part
    assert _codes(parse_file(bytes(damaged), "m.docx")) == ["unreadable-file"]
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 2000
    result = parse_file(ole, "m.xls")
    assert _codes(result) == ["unreadable-file"]
    _check_messages(result)


def test_password_protected():
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(_xlsx())).encrypt("mat-khau", out)
    result = parse_file(out.getvalue(), "Mau 01.xlsx")
    assert _codes(result) == ["password-protected"]
    assert "mật khẩu" in result.problems[0].message


def test_too_large_before_anything_else():
    result = parse_file(b"PK\x03\x04" + b"\0" * (21 * 1024 * 1024), "big.xlsx")
    assert _codes(result) == ["file-too-large"]
    _check_messages(result)


def test_finder_problems_are_kept():
    result = parse_file(_docx(), "thu.docx")  # a cover letter: no form in it
    assert result.forms == [] and result.problems
    assert all(p.location is None or isinstance(p.location, str) for p in result.problems)


@pytest.mark.soffice
@no_soffice
def test_doc_odt_ods_xls_through_libreoffice():
    odt = convert_with_soffice(_docx(), "docx", "odt")
    doc = convert_with_soffice(odt, "odt", "doc")
    for data, name, fmt in [
        (doc, "m.doc", "doc"),
        (odt, "m.odt", "odt"),
        (convert_with_soffice(_xlsx(), "xlsx", "ods"), "m.ods", "ods"),
        (convert_with_soffice(_xlsx(), "xlsx", "xls"), "m.xlsx", "xls"),
    ]:
        result = parse_file(data, name, office=convert_with_soffice)
        assert result.format == fmt
        assert "unreadable-file" not in _codes(result), result.problems
        assert "unsupported-format" not in _codes(result)


def test_doc_without_libreoffice_asks_for_docx(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    rtf = b"{\\rtf1\\ansi M\\u7851?u s\\u7889? 01}"
    result = parse_file(rtf, "mau01.doc")
    assert result.format == "doc" and _codes(result) == ["unsupported-format"]
    assert ".docx" in result.problems[0].message
