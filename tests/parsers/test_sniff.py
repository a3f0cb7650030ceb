"""Format detection by content, the file name only breaking ties."""

from __future__ import annotations

import io
import shutil
import zipfile

import pytest
from msoffcrypto.format.ooxml import OOXMLFile

from parsers.convert import convert_with_soffice
from parsers.sniff import describe_other, detect_format, is_encrypted
from tests.parsers.builders import document, edit_member, workbook

no_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")


def _xlsx() -> bytes:
    return workbook(("A1", "Mẫu số 01"))


def _docx() -> bytes:
    return document("Mẫu số 02")


_rewrite = edit_member


@pytest.mark.parametrize("name", ["a.xlsx", "a.xls", "attachment", "noname.bin", "a.docx"])
def test_xlsx_by_content_whatever_the_name(name):
    assert detect_format(_xlsx(), name) == "xlsx"


@pytest.mark.parametrize("name", ["b.docx", "b.doc", "application-octet-stream", "b.xlsx"])
def test_docx_by_content_whatever_the_name(name):
    assert detect_format(_docx(), name) == "docx"


def test_macro_enabled_workbook_is_xlsm():
    data = _rewrite(
        _xlsx(),
        "[Content_Types].xml",
        lambda b: b.replace(
            b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
            b"application/vnd.ms-excel.sheet.macroEnabled.main+xml",
        ),
    )
    assert detect_format(data, "file.xlsx") == "xlsm"


def test_opendocument_mimetype():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", "<x/>")
    assert detect_format(out.getvalue(), "x.xlsx") == "ods"


def test_pdf_image_html_random():
    assert detect_format(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj", "scan.docx") == "pdf"
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    assert detect_format(png, "mau01.xlsx") == "other"
    assert describe_other(png) == "image"
    html = b"<html xmlns:x='urn:schemas-microsoft-com:office:excel'><body><table></table>"
    assert detect_format(html, "mau01.xls") == "other"
    assert describe_other(html) == "html"
    assert detect_format(bytes(range(256)) * 4, "mau01.xls") == "other"
    assert describe_other(bytes(range(256))) is None


def test_rtf_saved_as_doc_goes_to_the_doc_path():
    assert detect_format(b"{\\rtf1\\ansi Mau 01}", "mau01.doc") == "doc"


def test_truncated_zip_falls_back_to_the_extension():
    data = _xlsx()[:300]
    assert detect_format(data, "x.xlsx") == "xlsx"
    assert detect_format(data, "x.txt") == "other"


def test_encrypted_ooxml_is_recognised():
    out = io.BytesIO()
    OOXMLFile(io.BytesIO(_xlsx())).encrypt("1234", out)
    data = out.getvalue()
    assert is_encrypted(data)
    assert detect_format(data, "bao cao.xlsx") == "xlsx"
    assert detect_format(data, "bao cao.doc") == "docx"
    assert not is_encrypted(_xlsx())
    assert not is_encrypted(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100)


@pytest.mark.soffice
@no_soffice
def test_legacy_binary_formats_by_content():
    xls = convert_with_soffice(_xlsx(), "xlsx", "xls")
    doc = convert_with_soffice(_docx(), "docx", "doc")
    assert detect_format(xls, "mau.xlsx") == "xls"
    assert detect_format(doc, "mau.docx") == "doc"
    assert detect_format(convert_with_soffice(_xlsx(), "xlsx", "ods"), "m.xlsx") == "ods"
    assert detect_format(convert_with_soffice(_docx(), "docx", "odt"), "m.doc") == "odt"
    assert not is_encrypted(xls)
    assert not is_encrypted(doc)
