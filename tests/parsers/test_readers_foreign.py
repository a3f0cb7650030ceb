"""Readers on packages written by other software: Google Sheets, WPS, scripts, Word features."""

from __future__ import annotations

import io
import socket
import time
import zipfile

import openpyxl
import pytest
from openpyxl.comments import Comment
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.datavalidation import DataValidation

from parsers.dispatch import parse_file
from parsers.docx import read_docx
from parsers.grid import Grid
from parsers.xlsx import read_xlsx

SML = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
SML_STRICT = "http://purl.oclc.org/ooxml/spreadsheetml/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
WML = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"


def _zip(parts: dict[str, str | bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in parts.items():
            zf.writestr(name, body.encode() if isinstance(body, str) else body)
    return out.getvalue()


def _rels(*rels: tuple[str, str, str], extra: str = "") -> str:
    items = "".join(
        f'<Relationship Id="{rid}" Type="{REL}/{kind}" Target="{target}"/>'
        for rid, kind, target in rels
    )
    return f'<?xml version="1.0"?><Relationships xmlns="{PKG}">{items}{extra}</Relationships>'


def _xlsx(
    sheet_data: str,
    *,
    shared: str | None = None,
    styles: str | None = None,
    ns: str = SML,
    sheet_extra: str = "",
    dimension: str = "A1",
    package_rels_extra: str = "",
) -> bytes:
    """A minimal workbook as Google Sheets / WPS / scripts write them (no styles by default)."""
    rels = [("rId1", "worksheet", "worksheets/sheet1.xml")]
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/xl/workbook.xml" ContentType="application/'
            'vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/></Types>'
        ),
        "_rels/.rels": _rels(
            ("rId1", "officeDocument", "xl/workbook.xml"), extra=package_rels_extra
        ),
        "xl/workbook.xml": (
            f'<?xml version="1.0"?><workbook xmlns="{ns}" xmlns:r="{REL}"><sheets>'
            '<sheet name="Trang tính1" sheetId="1" r:id="rId1"/></sheets></workbook>'
        ),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0"?><worksheet xmlns="{ns}" xmlns:r="{REL}">'
            f'<dimension ref="{dimension}"/><sheetData>{sheet_data}</sheetData>{sheet_extra}'
            "</worksheet>"
        ),
    }
    if shared is not None:
        rels.append(("rId2", "sharedStrings", "sharedStrings.xml"))
        parts["xl/sharedStrings.xml"] = f'<?xml version="1.0"?><sst xmlns="{ns}">{shared}</sst>'
    if styles is not None:
        rels.append(("rId3", "styles", "styles.xml"))
        parts["xl/styles.xml"] = (
            f'<?xml version="1.0"?><styleSheet xmlns="{ns}">{styles}</styleSheet>'
        )
    parts["xl/_rels/workbook.xml.rels"] = _rels(*rels)
    return _zip(parts)


def _texts(grid: Grid) -> list[list[str]]:
    return [row.texts() for row in grid.rows]


# --- xlsx -----------------------------------------------------------------------------------


def test_google_sheets_style_inline_strings_no_styles_and_a_lying_dimension():
    data = _xlsx(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Mẫu số 01</t></is></c></row>'
        '<row r="3"><c r="A3" t="inlineStr"><is><r><t xml:space="preserve">Đảng ủy </t></r>'
        '<r><rPr><b/></rPr><t>phường</t></r></is></c><c r="D3"><v>12</v></c>'
        '<c r="E3" t="b"><v>1</v></c><c r="F3" t="e"><v>#DIV/0!</v></c>'
        '<c r="G3" t="str"><f>A3</f><v>Đảng ủy phường</v></c></row>',
        dimension="A1",  # Google Sheets and some scripts never update it
    )
    grid = read_xlsx(data).grids[0]
    assert grid.name == "Trang tính1"
    assert _texts(grid) == [
        ["Mẫu số 01", "", "", "", "", "", ""],
        [""] * 7,
        ["Đảng ủy phường", "", "", "12", "TRUE", "#DIV/0!", "Đảng ủy phường"],
    ]
    assert grid.rows[2].cells[3].number == 12.0
    assert grid.rows[2].cells[0].location == "Trang tính1!A3"


def test_shared_formulas_cached_values_and_a_dependent_without_one():
    data = _xlsx(
        '<row r="1"><c r="A1"><v>2</v></c><c r="B1"><v>3</v></c></row>'
        '<row r="2"><c r="A2"><f t="shared" ref="A2:B2" si="0">COUNTA(A1)</f><v>1</v></c>'
        '<c r="B2"><f t="shared" si="0"/><v>1</v></c><c r="C2"><f t="shared" si="0"/></c></row>'
    )
    row = read_xlsx(data).grids[0].rows[1].cells
    assert (row[0].text, row[0].number) == ("1", 1.0)
    assert (row[1].text, row[1].number) == ("1", 1.0)
    assert row[2].text == "=" and row[2].number is None  # no cached value: shown, not guessed


def test_strict_ooxml_namespace_and_cells_without_references():
    data = _xlsx(
        '<row><c t="inlineStr"><is><t>TT</t></is></c><c t="inlineStr"><is><t>Tên</t></is></c>'
        "</row><row><c><v>1</v></c></row>",
        ns=SML_STRICT,
    )
    assert _texts(read_xlsx(data).grids[0]) == [["TT", "Tên"], ["1", ""]]


def test_rich_shared_string_with_a_vntime_run_and_cell_fonts_from_styles():
    styles = (
        '<fonts count="2"><font><name val="Arial"/></font><font><name val=".VnTime"/></font>'
        '</fonts><cellXfs count="3"><xf fontId="0" numFmtId="0"/><xf fontId="1" numFmtId="0"/>'
        '<xf fontId="0" numFmtId="14"/></cellXfs>'
    )
    shared = (
        '<si><r><t xml:space="preserve">Phường </t></r>'
        '<r><rPr><rFont val=".VnTime"/></rPr><t>Kh\u00adng Trung</t></r></si>'
        "<si><t>Hµ Néi</t></si>"
        '<si><t>Hà Nội</t><rPh sb="0" eb="1"><t>ハ</t></rPh></si>'
    )
    data = _xlsx(
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s" s="1"><v>1</v></c>'
        '<c r="C1" t="s" s="1"><v>2</v></c><c r="D1" s="2"><v>44606</v></c></row>',
        shared=shared,
        styles=styles,
    )
    a, b, c, d = read_xlsx(data).grids[0].rows[0].cells
    assert (a.text, a.legacy) == ("Phường Khưng Trung", "tcvn3")
    assert (b.text, b.legacy) == ("Hà Nội", "tcvn3")
    assert (c.text, c.legacy) == ("Hà Nội", None)  # genuine Unicode; phonetic run ignored
    assert (d.text, d.number) == ("14/02/2022", None)


def test_hidden_rows_and_columns_are_read_like_visible_ones():
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["A2"], ws["B3"] = "Hiện", "Dòng ẩn", "Cột ẩn"
    ws.row_dimensions[2].hidden = True
    ws.column_dimensions["B"].hidden = True
    grid = read_xlsx(_save(wb)).grids[0]
    assert _texts(grid) == [["Hiện", ""], ["Dòng ẩn", ""], ["", "Cột ẩn"]]


def _save(wb: openpyxl.Workbook) -> bytes:
    buf = io.BytesIO()
    wb.save(buf)
    wb.close()
    return buf.getvalue()


def test_comment_chart_validation_and_defined_names_do_not_disturb():
    from openpyxl.chart import BarChart, Reference

    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"], ws["A2"], ws["A3"] = "Lĩnh vực", 1, 2
    ws["A1"].comment = Comment("Ghi chú của cán bộ", "Ban Dân vận")
    dv = DataValidation(type="list", formula1='"Kinh tế,Văn hóa - xã hội"')
    ws.add_data_validation(dv)
    dv.add("B2")
    wb.defined_names["Vung_in"] = DefinedName("Vung_in", attr_text="Sheet!$A$1:$B$3")
    chart = BarChart()
    chart.add_data(Reference(ws, min_col=1, min_row=2, max_row=3))
    ws.add_chart(chart, "D2")
    grid = read_xlsx(_save(wb)).grids[0]
    assert _texts(grid) == [["Lĩnh vực"], ["1"], ["2"]]


def test_five_thousand_rows_and_a_million_row_format_are_cheap():
    rows = "".join(
        f'<row r="{r}"><c r="A{r}" t="inlineStr"><is><t>dòng {r}</t></is></c></row>'
        for r in range(1, 6001)
    )
    far = '<row r="1048576" s="1" customFormat="1"><c r="XFD1048576" s="1"/></row>'
    data = _xlsx(
        rows + far,
        dimension="A1:XFD1048576",
        sheet_extra='<mergeCells count="1"><mergeCell ref="A1:A2"/></mergeCells>',
    )
    start = time.perf_counter()
    grid = read_xlsx(data).grids[0]
    assert time.perf_counter() - start < 2
    assert len(grid.rows) == 5000 and grid.rows[-1].cells[0].text == "dòng 5000"
    # the merge list sits after the rows the reader stopped at, and is still applied
    assert grid.rows[1].cells[0].merged and grid.rows[1].cells[0].text == "dòng 1"


def test_xlsx_external_relationships_are_never_fetched(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the reader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    ext = (
        f'<Relationship Id="rIdX" Type="{REL}/hyperlink" '
        'Target="http://192.0.2.1/x.xml" TargetMode="External"/>'
    )
    data = _xlsx(
        '<row r="1"><c r="A1" t="inlineStr"><is><t>Mẫu</t></is></c></row>', package_rels_extra=ext
    )
    assert _texts(read_xlsx(data).grids[0]) == [["Mẫu"]]


# --- docx -----------------------------------------------------------------------------------


def _docx(
    body: str,
    *,
    extra_parts: dict[str, str] | None = None,
    doc_rels: str = "",
    content_type: str = "wordprocessingml.document.main",
) -> bytes:
    """A document package with no styles part, as WPS and exporters often write them."""
    parts: dict[str, str | bytes] = {
        "[Content_Types].xml": (
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Override PartName="/word/document.xml" ContentType="application/'
            f'vnd.openxmlformats-officedocument.{content_type}+xml"/></Types>'
        ),
        "_rels/.rels": _rels(("rId1", "officeDocument", "word/document.xml")),
        "word/document.xml": (
            f'<?xml version="1.0"?><w:document xmlns:w="{WML}" xmlns:r="{REL}" xmlns:mc="{MC}" '
            'xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape" '
            'xmlns:v="urn:schemas-microsoft-com:vml">'
            f"<w:body>{body}</w:body></w:document>"
        ),
        "word/_rels/document.xml.rels": (
            f'<?xml version="1.0"?><Relationships xmlns="{PKG}">{doc_rels}</Relationships>'
        ),
    }
    parts.update(extra_parts or {})
    return _zip(parts)


def _p(text: str) -> str:
    return f'<w:p><w:r><w:t xml:space="preserve">{text}</w:t></w:r></w:p>'


def _doc_rows(data: bytes) -> list[tuple[str, list[str]]]:
    grid = read_docx(data).grids[0]
    return [(row.block, row.texts()) for row in grid.rows]


def test_tracked_moves_and_complex_field_instructions_never_show():
    body = (
        "<w:p>"
        '<w:moveFrom w:id="1" w:author="a"><w:r><w:t>CŨ </w:t></w:r></w:moveFrom>'
        '<w:r><w:t xml:space="preserve">Phường </w:t></w:r>'
        '<w:moveTo w:id="2" w:author="a"><w:r><w:t xml:space="preserve">Hạ Đình </w:t></w:r>'
        "</w:moveTo>"
        '<w:r><w:fldChar w:fldCharType="begin"/><w:instrText xml:space="preserve"> DOCPROPERTY '
        "</w:instrText></w:r><w:r><w:instrText>Company \\* MERGEFORMAT</w:instrText></w:r>"
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r><w:r><w:t>Thanh Xuân</w:t></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
        '<w:r><w:footnoteReference w:id="1"/></w:r>'
        '<w:fldSimple w:instr=" NUMPAGES "><w:r><w:t xml:space="preserve"> (2 trang)</w:t>'
        "</w:r></w:fldSimple>"
        "</w:p>"
    )
    footnotes = (
        f'<?xml version="1.0"?><w:footnotes xmlns:w="{WML}"><w:footnote w:id="1"><w:p><w:r>'
        "<w:t>Chú thích không phải biểu mẫu</w:t></w:r></w:p></w:footnote></w:footnotes>"
    )
    data = _docx(body, extra_parts={"word/footnotes.xml": footnotes})
    assert _doc_rows(data) == [("body", ["Phường Hạ Đình Thanh Xuân (2 trang)"])]


def test_content_controls_around_rows_and_cells_and_grid_after():
    tc = "<w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc>"
    body = (
        "<w:tbl><w:tblGrid><w:gridCol/><w:gridCol/><w:gridCol/></w:tblGrid>"
        f"<w:tr>{tc.format('TT')}{tc.format('Tên')}{tc.format('Mô hình')}</w:tr>"
        "<w:sdt><w:sdtPr/><w:sdtContent>"
        f"<w:tr>{tc.format('1')}<w:sdt><w:sdtPr/><w:sdtContent>{tc.format('Chi bộ 5')}"
        f"</w:sdtContent></w:sdt>{tc.format('Nuôi cá')}</w:tr>"
        "</w:sdtContent></w:sdt>"
        '<w:tr><w:trPr><w:gridAfter w:val="1"/></w:trPr>'
        f"{tc.format('2')}{tc.format('Tổ 7')}</w:tr>"
        "</w:tbl>"
    )
    assert _doc_rows(_docx(body)) == [
        ("table 1", ["TT", "Tên", "Mô hình"]),
        ("table 1", ["1", "Chi bộ 5", "Nuôi cá"]),
        ("table 1", ["2", "Tổ 7", ""]),
    ]


def test_tabs_breaks_hyperlinks_and_smart_tags_inside_cells():
    body = (
        "<w:tbl><w:tr><w:tc><w:p>"
        '<w:hyperlink r:id="rId9"><w:r><w:t>Đảng ủy</w:t></w:r></w:hyperlink>'
        "<w:r><w:tab/><w:t>phường</w:t><w:br/></w:r>"
        '<w:smartTag w:uri="urn:x" w:element="place"><w:r><w:t>Khương Mai</w:t></w:r>'
        "</w:smartTag></w:p></w:tc></w:tr></w:tbl>"
    )
    ext = (
        f'<Relationship Id="rId9" Type="{REL}/hyperlink" Target="http://192.0.2.1/" '
        'TargetMode="External"/>'
    )
    grid = read_docx(_docx(body, doc_rels=ext)).grids[0]
    cell = grid.rows[0].cells[0]
    assert cell.lines == ("Đảng ủy phường", "Khương Mai")


def test_unit_name_in_a_shape_is_read_from_one_branch_only():
    box = (
        "<w:txbxContent><w:p><w:r><w:t>HỘI CỰU CHIẾN BINH PHƯỜNG</w:t></w:r></w:p></w:txbxContent>"
    )
    body = (
        "<w:p><mc:AlternateContent>"
        f'<mc:Choice Requires="wps"><w:r><w:drawing><wps:txbx>{box}</wps:txbx></w:drawing></w:r>'
        "</mc:Choice>"
        f"<mc:Fallback><w:r><w:pict><v:textbox>{box}</v:textbox></w:pict></w:r></mc:Fallback>"
        "</mc:AlternateContent></w:p>"
    )
    rows = _doc_rows(_docx(body))
    assert rows == [("text box 1", ["HỘI CỰU CHIẾN BINH PHƯỜNG"])]


def test_templates_and_macro_documents_read_like_documents():
    body = _p("Mẫu số 02")
    for ctype in ("wordprocessingml.template.main",):
        result = parse_file(_docx(body, content_type=ctype), "Mau.dotx")
        assert result.format == "docx"
        assert all(p.code != "unreadable-file" for p in result.problems)
    wb = openpyxl.Workbook()
    wb.active["A1"] = "Mẫu số 01"
    data = _save(wb).replace(b"spreadsheetml.sheet.main", b"spreadsheetml.template.main")
    assert parse_file(data, "Mau.xltx").format == "xlsx"


def test_docx_external_relationships_are_never_fetched(monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("the reader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    rels = (
        f'<Relationship Id="rId5" Type="{REL}/attachedTemplate" '
        'Target="http://192.0.2.1/evil.dotm" TargetMode="External"/>'
        f'<Relationship Id="rId6" Type="{REL}/image" Target="http://192.0.2.1/a.png" '
        'TargetMode="External"/>'
    )
    body = (
        "<w:p><w:r><w:t>Mẫu số 01</w:t></w:r><w:r><w:drawing><a:blip "
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" r:link="rId6"/>'
        "</w:drawing></w:r></w:p>"
    )
    result = parse_file(_docx(body, doc_rels=rels), "Mau 01.docx")
    assert all(p.code != "unreadable-file" for p in result.problems)


# --- hostile packages -----------------------------------------------------------------------

_BOMB = (
    '<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i else "&lol;" * 10}">'
        for i in range(10)
    )
    + ']><cp:coreProperties xmlns:cp="x">&lol9;</cp:coreProperties>'
)


@pytest.mark.parametrize("part", ["docProps/core.xml", "customXml/item1.xml"])
def test_xml_bomb_in_a_side_part_is_refused_quickly(part):
    data = _docx(_p("Mẫu số 01"), extra_parts={part: _BOMB})
    start = time.perf_counter()
    result = parse_file(data, "Mau 01.docx")
    assert time.perf_counter() - start < 2
    assert [p.code for p in result.problems] == ["unreadable-file"]
    assert part in result.problems[0].message


def test_member_named_with_dot_dot_is_refused():
    data = _docx(_p("Mẫu số 01"), extra_parts={"word/../../evil.xml": "<x/>"})
    result = parse_file(data, "Mau 01.docx")
    assert [p.code for p in result.problems] == ["unreadable-file"]
    assert not result.forms


def test_excel_binary_workbook_gets_advice_to_save_as_xlsx():
    data = _zip(
        {
            "[Content_Types].xml": (
                '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                'content-types"><Override PartName="/xl/workbook.bin" ContentType="application/'
                'vnd.ms-excel.sheet.binary.macroEnabled.main"/></Types>'
            ),
            "xl/workbook.bin": b"\x83\x01\x00",
        }
    )
    result = parse_file(data, "Mau 01.xlsb")
    assert result.format == "other"
    [problem] = result.problems
    assert problem.code == "unsupported-format"
    assert ".xlsb" in problem.message and ".xlsx" in problem.message


def test_xls_biff8_rich_text_runs_with_a_legacy_font():
    from openpyxl.cell.rich_text import CellRichText, TextBlock
    from openpyxl.cell.text import InlineFont
    from openpyxl.styles import Font

    from parsers.convert import convert_with_soffice, soffice_path
    from parsers.xls import read_xls

    if soffice_path() is None:
        pytest.skip("LibreOffice is needed to write a BIFF8 file")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws["A1"] = CellRichText(
        [
            TextBlock(InlineFont(rFont="Arial"), "Phường "),
            TextBlock(InlineFont(rFont=".VnTime"), "Kh\xadng Trung"),
        ]
    )
    ws["A2"] = "Tæ d©n phè"
    ws["A2"].font = Font(name=".VnTime")
    data = convert_with_soffice(_save(wb), "xlsx", "xls", 60)
    cells = [row.cells[0] for row in read_xls(data).grids[0].rows]
    assert [(c.text, c.legacy) for c in cells] == [
        ("Phường Khưng Trung", "tcvn3"),
        ("Tổ dân phố", "tcvn3"),
    ]
