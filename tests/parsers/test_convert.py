"""LibreOffice conversion: isolated, time-limited, clear failures."""

from __future__ import annotations

import shutil

import pytest

from parsers.convert import ConversionFailed, ConversionUnavailable, convert_with_soffice
from parsers.docx import read_docx
from parsers.sniff import detect_format
from tests.parsers.builders import document

no_soffice = pytest.mark.skipif(shutil.which("soffice") is None, reason="needs LibreOffice")


def _docx(text: str) -> bytes:
    return document(text, table=("Chi bộ 5", "Tổ dân phố xanh"))


@pytest.mark.soffice
@no_soffice
def test_doc_round_trip_keeps_text_and_tables():
    # Via .odt: LibreOffice drops python-docx tables on a direct docx -> doc export.
    odt = convert_with_soffice(_docx("Mẫu số 02"), "docx", "odt")
    doc = convert_with_soffice(odt, "odt", "doc")
    assert detect_format(doc, "x.doc") == "doc"
    back = convert_with_soffice(doc, "doc", "docx")
    rows = read_docx(back).grids[0].rows
    assert rows[0].cells[0].text == "Mẫu số 02"
    assert [c.text for c in rows[1].cells] == ["Chi bộ 5", "Tổ dân phố xanh"]


@pytest.mark.soffice
@no_soffice
def test_timeout_kills_and_reports():
    with pytest.raises(ConversionFailed, match="timed out"):
        convert_with_soffice(_docx("x"), "docx", "doc", timeout=0.05)


def test_unknown_conversion_is_refused():
    if shutil.which("soffice") is None:
        pytest.skip("needs LibreOffice")
    with pytest.raises(ConversionFailed):
        convert_with_soffice(b"x", "exe", "docx")
    with pytest.raises(ConversionFailed):
        convert_with_soffice(b"x", "doc", "pdf")


def test_missing_soffice_is_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConversionUnavailable):
        convert_with_soffice(b"x", "doc", "docx")
