"""Blank M1/M2 forms: the seed's layout, print settings, determinism, own-parser round trip."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import zipfile

import docx
import openpyxl
import pytest
from docx.oxml.ns import qn

from mailbot.campaign.forms import blank_form_docx, blank_form_xlsx
from rules.campaign import newest_campaign, parse_campaign

SEED_FIELDS = [
    "Lĩnh vực kinh tế",
    "Lĩnh vực văn hóa - xã hội",
    "Lĩnh vực an ninh quốc phòng",
    "Lĩnh vực xây dựng hệ thống chính trị",
]
LEVEL_TITLE = {
    "M1": "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN",
    "M2": "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP CƠ SỞ",
}
NOTE = "Ghi chú: Đề nghị ghi rõ nội dung từng mô hình “Dân vận khéo” vào ô lĩnh vực tương ứng."


@pytest.fixture(scope="module")
def campaign():
    return newest_campaign()


@pytest.fixture(scope="module")
def campaign_2025(campaign):
    # A year the code never saw: the title must follow the campaign file.
    return dataclasses.replace(campaign, year=2025, id="dan-van-kheo-2025")


def _sheet(data: bytes):
    wb = openpyxl.load_workbook(io.BytesIO(data))
    assert len(wb.sheetnames) == 1
    return wb.active


def _texts(ws) -> list[list[str]]:
    return [[("" if v is None else str(v)) for v in row] for row in ws.iter_rows(values_only=True)]


def _find_row(rows: list[list[str]], predicate) -> int:
    """1-based number of the first row for which predicate(row) holds."""
    for i, row in enumerate(rows, start=1):
        if predicate(row):
            return i
    raise AssertionError("row not found")


@pytest.mark.parametrize("form", ["M1", "M2"])
def test_xlsx_has_the_official_layout(form, campaign_2025):
    ws = _sheet(blank_form_xlsx(form, campaign_2025))
    rows = _texts(ws)
    flat = [t for row in rows for t in row if t]

    assert ws["A1"].value == "TÊN ĐƠN VỊ"
    assert ws.cell(row=1, column=ws.max_column).value == form
    assert "....., ngày..... tháng..... năm....." in flat
    title = _find_row(rows, lambda r: r[0] == "BIỂU TỔNG HỢP")
    assert rows[title][0] == LEVEL_TITLE[form]
    assert rows[title + 1][0] == "THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM 2025"
    assert "2022" not in " ".join(flat)

    head = _find_row(rows, lambda r: r[0] == "TT")
    assert rows[head - 1][:3] == [
        "TT",
        "Tên tập thể, cá nhân",
        "Tên mô hình đăng ký “Dân vận khéo”",
    ]
    assert rows[head - 1][6] == "Ghi chú"
    assert rows[head][2:6] == SEED_FIELDS
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {
        f"A{head}:A{head + 1}",
        f"B{head}:B{head + 1}",
        f"C{head}:F{head}",
        f"G{head}:G{head + 1}",
    } <= merged

    body = rows[head + 1 :]
    sec1 = _find_row(body, lambda r: r[:2] == ["I", "Tập thể"])
    sec2 = _find_row(body, lambda r: r[:2] == ["II", "Cá nhân"])
    total = _find_row(body, lambda r: r[1] == "TỔNG")
    assert [r[0] for r in body[sec1 : sec2 - 1]] == ["1", "2", "3", "..."]
    assert [r[0] for r in body[sec2 : total - 1]] == ["1", "2", "3", "..."]
    for r in body[sec1 : total - 1]:
        assert all(cell == "" for cell in r[1:]) or r[1] == "Cá nhân"

    # TỔNG: one COUNTA per field column, covering every body row of that column.
    total_row = head + 1 + total
    first_body, last_body = head + 1 + sec1, total_row - 1
    for col in "CDEF":
        formula = ws[f"{col}{total_row}"].value
        m = re.fullmatch(rf"=COUNTA\({col}(\d+):{col}(\d+)\)", formula)
        assert m, formula
        assert int(m.group(1)) <= first_body + 1 and int(m.group(2)) == last_body

    assert NOTE in flat
    sign = _find_row(rows, lambda r: "THỦ TRƯỞNG ĐƠN VỊ" in r)
    assert "(Ký, đóng dấu)" in rows[sign]
    assert sign > total_row


def test_xlsx_styles_and_print_settings(campaign):
    ws = _sheet(blank_form_xlsx("M1", campaign))
    assert ws.page_setup.orientation == "landscape"
    assert int(ws.page_setup.paperSize) == 9  # A4
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert int(ws.page_setup.fitToWidth) == 1
    assert ws.print_title_rows == "$8:$9"
    assert ws["A4"].font.name == "Times New Roman" and ws["A4"].font.sz == 13 and ws["A4"].font.b
    assert ws["B8"].font.name == "Times New Roman" and ws["B8"].font.sz == 12
    assert ws["C9"].alignment.wrap_text
    for coord in ("A8", "C9", "F9", "A10", "C11", "G19", "F20"):
        border = ws[coord].border
        sides = (border.left, border.right, border.top, border.bottom)
        assert all(s.style == "thin" for s in sides), coord
    assert ws["A1"].border.left.style is None  # the letterhead is not boxed
    assert ws.column_dimensions["B"].width >= 25
    assert all(ws.column_dimensions[c].width >= 20 for c in "CDEF")


def test_rows_per_section_and_unknown_form(campaign):
    ws = _sheet(blank_form_xlsx("M2", campaign, rows_per_section=6))
    numbers = [ws.cell(row=r, column=1).value for r in range(1, ws.max_row + 1)]
    assert numbers.count("6") == 2 and numbers.count("...") == 2
    with pytest.raises(ValueError):
        blank_form_xlsx("M3", campaign)
    with pytest.raises(ValueError):
        blank_form_docx("m1", campaign)


def test_levels_come_from_the_campaign_file():
    text = """
id = "x"
name = "x"
year = 2030
deadline = "2030-02-20T00:00:00"
[[forms]]
code = "M1"
title = "Mẫu số 01"
level = "cấp Huyện"
"""
    ws = _sheet(blank_form_xlsx("M1", parse_campaign(text)))
    assert ws["A5"].value == "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP HUYỆN"
    assert ws["A6"].value.endswith("NĂM 2030")


@pytest.mark.parametrize("make", [blank_form_xlsx, blank_form_docx])
def test_output_is_deterministic(make, campaign):
    first = make("M1", campaign)
    assert first == make("M1", campaign)
    with zipfile.ZipFile(io.BytesIO(first)) as z:
        assert {i.date_time for i in z.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = z.read("docProps/core.xml").decode()
    stamps = re.findall(r"<dcterms:(?:created|modified)[^>]*>([^<]+)<", core)
    assert len(stamps) == 2 and all(s.startswith(f"{campaign.year}-01-01T00:00:00") for s in stamps)


def _form_table(document):
    tables = [t for t in document.tables if t.cell(0, 0).text == "TT"]
    assert len(tables) == 1
    return tables[0]


@pytest.mark.parametrize("form", ["M1", "M2"])
def test_docx_has_the_official_layout(form, campaign_2025):
    document = docx.Document(io.BytesIO(blank_form_docx(form, campaign_2025)))
    everything = [p.text for p in document.paragraphs]
    for t in document.tables:
        everything += [c.text for row in t.rows for c in row.cells]
    assert "TÊN ĐƠN VỊ" in everything and form in everything
    assert "....., ngày..... tháng..... năm....." in everything
    pars = [p.text for p in document.paragraphs]
    i = pars.index("BIỂU TỔNG HỢP")
    assert pars[i + 1 : i + 3] == [
        LEVEL_TITLE[form],
        "THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM 2025",
    ]
    assert NOTE in pars and "THỦ TRƯỞNG ĐƠN VỊ" in pars and "(Ký, đóng dấu)" in pars
    assert pars.index("THỦ TRƯỞNG ĐƠN VỊ") > pars.index(NOTE)

    table = _form_table(document)
    rows = [[c.text for c in r.cells] for r in table.rows]
    assert rows[0][:3] == ["TT", "Tên tập thể, cá nhân", "Tên mô hình đăng ký “Dân vận khéo”"]
    assert rows[0][-1] == "Ghi chú"
    assert rows[1][2:6] == SEED_FIELDS
    # merged: the model title across the four fields, TT/name/note down two rows
    assert table.cell(0, 2)._tc is table.cell(0, 5)._tc
    assert table.cell(0, 2)._tc.grid_span == 4
    for col in (0, 1, 6):
        assert table.cell(0, col)._tc is table.cell(1, col)._tc
    assert [r[0] for r in rows[2:]] == ["I", "1", "2", "3", "...", "II", "1", "2", "3", "...", ""]
    assert rows[2][1] == "Tập thể" and rows[7][1] == "Cá nhân" and rows[-1][1] == "TỔNG"
    for r in table.rows[:2]:
        assert r._tr.trPr is not None and r._tr.trPr.find(qn("w:tblHeader")) is not None
    assert table.style.name == "Table Grid"

    section = document.sections[0]
    assert section.page_width > section.page_height
    assert abs(section.page_width.cm - 29.7) < 0.05 and abs(section.page_height.cm - 21.0) < 0.05
    assert document.styles["Normal"].font.name == "Times New Roman"


PARSE_CASES = [("M1", "xlsx"), ("M2", "xlsx"), ("M1", "docx"), ("M2", "docx")]


@pytest.mark.parametrize(("form", "ext"), PARSE_CASES)
def test_own_parser_reads_a_blank_form_as_an_empty_form(form, ext, campaign):
    # Runs as soon as the parsers package has its dispatcher; skipped only until then.
    pytest.importorskip("parsers.dispatch")
    from parsers import parse_file

    make = blank_form_xlsx if ext == "xlsx" else blank_form_docx
    result = parse_file(make(form, campaign), f"Mau {form} trong.{ext}")
    assert result.format == ext
    codes = {p.code for p in result.all_problems()}
    assert not codes & {"unreadable-file", "unsupported-format", "no-form-found"}, codes
    assert [f.form for f in result.forms] == [form]
    found = result.forms[0]
    assert found.entries == []
    assert found.year == campaign.year
    assert found.unit is None  # "TÊN ĐƠN VỊ" is the placeholder, not a unit


def _fill_xlsx(data: bytes) -> bytes:
    """What a unit does with the attachment: its name on top, models in the field cells."""
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb.active
    ws["A1"] = "ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG"
    ws["B11"], ws["D11"] = "Chi bộ Tổ dân phố số 5", "Tổ dân phố xanh - sạch - đẹp"
    ws["B12"], ws["E12"] = "Chi bộ Tổ dân phố số 9", "- Camera an ninh ngõ xóm"
    ws["B16"], ws["C16"] = "Nguyễn Văn An", "Nuôi heo đất giúp hộ nghèo"
    ws["F16"] = "Dân vận khéo trong sinh hoạt chi bộ"
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


EXPECTED_FILLED = [
    ("collective", "Chi bộ Tổ dân phố số 5", "culture_society", "Tổ dân phố xanh - sạch - đẹp"),
    ("collective", "Chi bộ Tổ dân phố số 9", "security_defense", "- Camera an ninh ngõ xóm"),
    ("individual", "Nguyễn Văn An", "economy", "Nuôi heo đất giúp hộ nghèo"),
    ("individual", "Nguyễn Văn An", "political_system", "Dân vận khéo trong sinh hoạt chi bộ"),
]


def test_own_parser_reads_a_filled_in_xlsx_form(campaign):
    pytest.importorskip("parsers.dispatch")
    from parsers import parse_file

    result = parse_file(_fill_xlsx(blank_form_xlsx("M1", campaign)), "Mau 01.xlsx")
    [found] = result.forms
    assert found.form == "M1" and found.unit == "ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG"
    assert [(e.kind, e.name, e.field, e.model) for e in found.entries] == EXPECTED_FILLED


def test_own_parser_reads_a_filled_in_docx_form(campaign):
    pytest.importorskip("parsers.dispatch")
    from parsers import parse_file

    document = docx.Document(io.BytesIO(blank_form_docx("M2", campaign)))
    document.tables[0].cell(0, 0).paragraphs[0].runs[0].text = "HỘI LIÊN HIỆP PHỤ NỮ QUẬN"
    table = _form_table(document)
    table.cell(3, 1).text, table.cell(3, 2).text = "Chi hội Phụ nữ số 3", "Nuôi heo đất"
    table.cell(8, 1).text, table.cell(8, 5).text = "Trần Thị Bình", "Câu lạc bộ dưỡng sinh"
    out = io.BytesIO()
    document.save(out)
    [found] = parse_file(out.getvalue(), "Mau 02.docx").forms
    assert found.form == "M2" and found.unit == "HỘI LIÊN HIỆP PHỤ NỮ QUẬN"
    assert [(e.kind, e.name, e.field, e.model) for e in found.entries] == [
        ("collective", "Chi hội Phụ nữ số 3", "economy", "Nuôi heo đất"),
        ("individual", "Trần Thị Bình", "political_system", "Câu lạc bộ dưỡng sinh"),
    ]


@pytest.mark.soffice
@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_totals_formulas_agree_after_an_office_suite_saves_the_form(campaign, tmp_path):
    # The TỔNG formulas have no cached value until an office suite computes them: once it
    # has, the declared totals must equal the filled models (no total-mismatch).
    pytest.importorskip("parsers.dispatch")
    from parsers import parse_file

    src = tmp_path / "in" / "Mau 01.xlsx"
    src.parent.mkdir()
    src.write_bytes(_fill_xlsx(blank_form_xlsx("M1", campaign)))
    out = tmp_path / "out"
    subprocess.run(
        [
            "soffice",
            f"-env:UserInstallation={(tmp_path / 'profile').as_uri()}",
            "--headless",
            "--convert-to",
            "xlsx",
            "--outdir",
            str(out),
            str(src),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    [found] = parse_file((out / "Mau 01.xlsx").read_bytes(), "Mau 01.xlsx").forms
    totals = found.declared_totals
    assert [
        totals.economy,
        totals.culture_society,
        totals.security_defense,
        totals.political_system,
    ] == [1, 1, 1, 1]
    assert len(found.entries) == 4
    assert "total-mismatch" not in {p.code for p in found.problems}
