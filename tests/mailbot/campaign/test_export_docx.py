"""The consolidated Word document: same tables, page numbers, rows kept whole, letterhead."""

from __future__ import annotations

import io
from collections import Counter

import docx
import pytest
from docx.oxml.ns import qn

from mailbot.campaign.export_docx import write_consolidated_docx
from rules.campaign import newest_campaign
from tests.mailbot.campaign.test_export import (
    BOARD,
    DTN,
    FIELD_HEADERS,
    FIELDS,
    GENERATED,
    HPN,
    KT,
    MODELS,
    STATUSES,
    M,
)


@pytest.fixture(scope="module")
def data() -> bytes:
    return write_consolidated_docx(MODELS, STATUSES, newest_campaign(), GENERATED, board=BOARD)


@pytest.fixture(scope="module")
def document(data):
    return docx.Document(io.BytesIO(data))


def _rows(table) -> list[list[str]]:
    return [[c.text for c in r.cells] for r in table.rows]


def _tables(document, first: str):
    return [t for t in document.tables if t.cell(0, 0).text == "TT" and t.cell(0, 1).text == first]


def test_same_input_same_bytes(data):
    again = write_consolidated_docx(MODELS, STATUSES, newest_campaign(), GENERATED, board=BOARD)
    assert again == data


def test_page_numbers_in_the_footer(document):
    footer = document.sections[0].footer.paragraphs[0]
    xml = footer._p.xml
    assert footer.text.startswith("Trang ")
    instructions = [el.text.strip() for el in footer._p.iter(qn("w:instrText"))]
    assert instructions == ["PAGE", "NUMPAGES"]
    assert xml.count('w:fldCharType="begin"') == xml.count('w:fldCharType="end"') == 2


def test_rows_kept_whole_header_rows_repeated(document):
    tables = [t for t in document.tables if t.cell(0, 0).text == "TT"]
    assert len(tables) == 4  # two forms, the summary, where units stand
    for table in tables:
        for row in table.rows:
            assert row._tr.trPr.find(qn("w:cantSplit")) is not None
        for row in table.rows[:2]:
            assert row._tr.trPr.find(qn("w:tblHeader")) is not None
        assert table.rows[2]._tr.trPr.find(qn("w:tblHeader")) is None
        layout = table._tbl.tblPr.find(qn("w:tblLayout"))
        assert layout is not None and layout.get(qn("w:type")) == "fixed"


def test_no_hyphenation(document):
    auto = document.settings.element.find(qn("w:autoHyphenation"))
    assert auto is not None and auto.get(qn("w:val")) == "false"


def test_letterhead_is_a_borderless_table(document):
    head = document.tables[0]
    assert [c.text for c in head.columns[0].cells] == ["QUẬN ỦY THANH XUÂN", "BAN DÂN VẬN", "*"]
    assert head.cell(0, 1).text == "ĐẢNG CỘNG SẢN VIỆT NAM"
    assert head.cell(0, 1).paragraphs[0].runs[0].underline
    assert head.cell(0, 1).paragraphs[0].runs[0].bold
    assert head.cell(2, 1).text == "Thanh Xuân, ngày 22 tháng 02 năm 2022"
    assert head.cell(2, 1).paragraphs[0].runs[0].italic
    borders = head._tbl.tblPr.find(qn("w:tblBorders"))
    assert {el.get(qn("w:val")) for el in borders} == {"nil"}


def test_level_tables(document):
    pars = [p.text for p in document.paragraphs]
    assert "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN" in pars
    assert "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP CƠ SỞ" in pars
    tables = _tables(document, "Tên tập thể, cá nhân")
    assert len(tables) == 2
    for table, form, units in zip(tables, ("M1", "M2"), ([HPN, KT], [DTN, HPN, KT]), strict=True):
        rows = _rows(table)
        assert rows[1][2:6] == FIELD_HEADERS
        assert table.cell(0, 2)._tc is table.cell(0, 5)._tc
        headings = [r[1] for r in rows[2:] if r[0].isdigit()]
        assert headings == units
        mine = [m for m in MODELS if m.form == form]
        body = [r for r in rows[2:] if "." in r[0]]
        assert sorted(r[1] for r in body) == sorted(m.name for m in mine)
        counts = Counter(m.field for m in mine)
        assert rows[-1][1] == "TỔNG"
        assert rows[-1][2:7] == [*(str(counts[f]) for f in FIELDS), f"{len(mine)} mô hình"]
        subtotals = [r for r in rows if r[1] == "Cộng"]
        assert len(subtotals) == len(units)


def test_signature_and_recipients(document):
    signs = [t for t in document.tables if "T/M BAN DÂN VẬN" in t.cell(0, -1).text]
    assert len(signs) == 3  # under each form's table and under the summary
    right = [p.text for p in signs[0].cell(0, 1).paragraphs]
    assert right[:2] == ["T/M BAN DÂN VẬN", "TRƯỞNG BAN"] and right[-1] == "Nguyễn Văn Ba"
    left = [p.text for p in signs[0].cell(0, 0).paragraphs]
    assert left == ["Nơi nhận:", "- Ban Dân vận Thành ủy;", "- Lưu."]


def test_status_table_has_no_codes_or_addresses(document):
    [table] = _tables(document, "Đơn vị")[-1:]
    cells = {c.text for r in table.rows for c in r.cells}
    text = " ".join(cells)
    assert "@" not in text
    assert not {s.unit_code for s in STATUSES} & cells
    assert "Không đăng ký mô hình" in text and "Gửi muộn" in text


def test_hostile_characters(document):
    nasty = M("X\x00", "Đơn vị\x07 lạ", "M1", "collective", "economy", "Tên\x1b", "Mô\x0bhình")
    data = write_consolidated_docx([nasty], [], newest_campaign(), GENERATED)
    rows = _rows(_tables(docx.Document(io.BytesIO(data)), "Tên tập thể, cá nhân")[0])
    assert rows[3][:2] == ["1", "Đơn vị lạ"] and rows[5][1:3] == ["Tên", "Môhình"]
