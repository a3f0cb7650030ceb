"""The .docx reader: document order, grid columns, merges, nested tables, fonts by style."""

from __future__ import annotations

import io

import docx
from docx.oxml import parse_xml
from docx.oxml.ns import nsdecls, qn

from parsers.docx import read_docx
from parsers.grid import Cell, Grid

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'


def _save(d) -> bytes:
    buf = io.BytesIO()
    d.save(buf)
    return buf.getvalue()


def _grid(d) -> Grid:
    grids = read_docx(_save(d)).grids
    assert len(grids) == 1 and grids[0].kind == "document"
    return grids[0]


def _rows(grid: Grid, block: str) -> list[list[Cell | None]]:
    return [row.cells for row in grid.rows if row.block == block]


def _append_raw(d, xml: str) -> None:
    d.element.body.insert(len(d.element.body) - 1, parse_xml(xml))  # before sectPr


def test_paragraph_numbering_counts_empty_paragraphs():
    d = docx.Document()
    d.add_paragraph("ĐẢNG BỘ QUẬN THANH XUÂN")
    d.add_paragraph("")
    d.add_paragraph("   ")
    d.add_paragraph("Mẫu số 01")
    grid = _grid(d)
    assert [(r.cells[0].text, r.cells[0].location, r.block) for r in grid.rows] == [
        ("ĐẢNG BỘ QUẬN THANH XUÂN", "paragraph 1", "body"),
        ("Mẫu số 01", "paragraph 4", "body"),
    ]


def test_grid_span_vmerge_and_multi_paragraph_cells():
    d = docx.Document()
    t = d.add_table(rows=3, cols=3)
    t.cell(0, 0).merge(t.cell(0, 1)).text = "Tập thể"
    t.cell(0, 2).text = "Lĩnh vực"
    t.cell(1, 0).merge(t.cell(2, 0)).text = "Chi bộ 5"
    c = t.cell(1, 1)
    c.text = "Tổ dân phố"
    c.add_paragraph("")
    c.add_paragraph("xanh - sạch - đẹp")
    rows = _rows(_grid(d), "table 1")
    assert len(rows) == 3 and all(len(r) == 3 for r in rows)
    head, origin_span = rows[0][0], rows[0][1]
    assert head.location == "table 1, row 1, column 1" and not head.merged
    assert origin_span.merged and origin_span.text == "Tập thể"
    assert rows[0][2].location == "table 1, row 1, column 3"
    assert rows[1][1].text == "Tổ dân phố xanh - sạch - đẹp"
    assert rows[1][1].lines == ("Tổ dân phố", "xanh - sạch - đẹp")
    below = rows[2][0]
    assert below.merged and below.text == "Chi bộ 5"
    assert below.location == "table 1, row 2, column 1"
    assert rows[2][1] is None


def test_nested_tables_follow_their_row_and_are_numbered_as_met():
    d = docx.Document()
    outer = d.add_table(rows=2, cols=2)
    outer.cell(0, 0).text = "Ngoài"
    inner = outer.cell(0, 1).add_table(rows=1, cols=2)
    inner.cell(0, 0).text = "Trong 1"
    inner.cell(0, 1).text = "Trong 2"
    outer.cell(1, 0).text = "Dòng 2"
    d.add_table(rows=1, cols=1).cell(0, 0).text = "Bảng sau"
    grid = _grid(d)
    assert [r.block for r in grid.rows] == ["table 1", "table 2", "table 1", "table 3"]
    assert grid.rows[0].cells[1] is None  # the outer cell's text excludes the nested table
    # A nested table is numbered as met, so its cells keep the contract's plain form.
    assert grid.rows[1].cells[1].location == "table 2, row 1, column 2"
    assert grid.rows[2].cells[0].location == "table 1, row 2, column 1"
    assert grid.rows[3].cells[0].text == "Bảng sau"


def test_legacy_font_through_style_inheritance_and_doc_defaults():
    d = docx.Document()
    base = d.styles.add_style("VnBase", 1)
    base.font.name = ".VnTime"
    child = d.styles.add_style("VnChild", 1)
    child.base_style = base
    d.add_paragraph("Hµ Néi", style="VnChild")
    p = d.add_paragraph(style="VnChild")
    p.add_run("Ph\xadêng ")
    uni = p.add_run("Khương Trung")
    uni.font.name = "Times New Roman"  # direct run font beats the style
    grid = _grid(d)
    first, second = (r.cells[0] for r in grid.rows)
    assert (first.text, first.legacy) == ("Hà Nội", "tcvn3")
    assert second.text == "Phường Khương Trung"

    d2 = docx.Document()
    rfonts = (
        d2.styles.element.find(qn("w:docDefaults"))
        .find(qn("w:rPrDefault"))
        .find(qn("w:rPr"))
        .find(qn("w:rFonts"))
    )
    for attr in ("w:asciiTheme", "w:hAnsiTheme"):
        rfonts.attrib.pop(qn(attr), None)
    rfonts.set(qn("w:ascii"), "VNI-Times")
    rfonts.set(qn("w:hAnsi"), "VNI-Times")
    normal = d2.styles["Normal"].element.find(qn("w:rPr"))
    if normal is not None:
        normal.getparent().remove(normal)
    d2.add_paragraph("Khöông Trung")
    cell = _grid(d2).rows[0].cells[0]
    assert (cell.text, cell.legacy) == ("Khương Trung", "vni")


def test_inline_wrappers_keep_text_and_deletions_are_dropped():
    d = docx.Document()
    _append_raw(
        d,
        f"""
      <w:p {nsdecls("w", "r")}>
        <w:r><w:t xml:space="preserve">Đảng ủy </w:t></w:r>
        <w:hyperlink r:id="rId99"><w:r><w:t>phường</w:t></w:r></w:hyperlink>
        <w:ins w:id="1" w:author="a"><w:r><w:t xml:space="preserve"> Khương</w:t></w:r></w:ins>
        <w:del w:id="2" w:author="a"><w:r><w:delText> XÓA</w:delText></w:r></w:del>
        <w:smartTag w:uri="x" w:element="y"><w:r><w:t xml:space="preserve"> Trung</w:t></w:r>
        </w:smartTag>
        <w:fldSimple w:instr="DATE"><w:r><w:t xml:space="preserve"> năm 2022</w:t></w:r>
        </w:fldSimple>
        <w:r><w:fldChar w:fldCharType="begin"/></w:r>
        <w:r><w:instrText>PAGE</w:instrText></w:r>
        <w:r><w:fldChar w:fldCharType="separate"/></w:r>
        <w:r><w:t xml:space="preserve"> (1)</w:t></w:r>
        <w:r><w:fldChar w:fldCharType="end"/></w:r>
        <w:sdt><w:sdtPr/><w:sdtContent><w:r><w:t xml:space="preserve"> ký</w:t></w:r>
        </w:sdtContent></w:sdt>
        <w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>
          <w:r><w:t>Click here to enter text.</w:t></w:r></w:sdtContent></w:sdt>
        <w:r><w:br/><w:t>Dòng hai</w:t><w:tab/><w:t>tab</w:t></w:r>
      </w:p>""",
    )
    cell = _grid(d).rows[0].cells[0]
    assert cell.lines == ("Đảng ủy phường Khương Trung năm 2022 (1) ký", "Dòng hai tab")


def test_text_box_read_once_and_body_content_controls():
    d = docx.Document()
    d.add_paragraph("Trước")
    _append_raw(
        d,
        f"""
      <w:p {W} xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"
           xmlns:wps="http://schemas.microsoft.com/office/word/2010/wordprocessingShape"
           xmlns:v="urn:schemas-microsoft-com:vml">
        <w:r><w:t>Neo</w:t></w:r>
        <w:r><mc:AlternateContent>
          <mc:Choice Requires="wps"><w:drawing><wps:txbx><w:txbxContent>
            <w:p><w:r><w:t>ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG</w:t></w:r></w:p>
          </w:txbxContent></wps:txbx></w:drawing></mc:Choice>
          <mc:Fallback><w:pict><v:textbox><w:txbxContent>
            <w:p><w:r><w:t>ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG</w:t></w:r></w:p>
          </w:txbxContent></v:textbox></w:pict></mc:Fallback>
        </mc:AlternateContent></w:r>
      </w:p>""",
    )
    _append_raw(
        d,
        f"""
      <w:sdt {W}><w:sdtPr/><w:sdtContent>
        <w:p><w:r><w:t>Trong điều khiển</w:t></w:r></w:p>
      </w:sdtContent></w:sdt>""",
    )
    grid = _grid(d)
    texts = [(r.cells[0].text, r.cells[0].location) for r in grid.rows]
    assert texts == [
        ("Trước", "paragraph 1"),
        ("Neo", "paragraph 2"),
        ("ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG", "text box 1, paragraph 1"),
        ("Trong điều khiển", "paragraph 3"),
    ]


def test_grid_before_shifts_cells():
    d = docx.Document()
    t = d.add_table(rows=1, cols=2)
    t.cell(0, 1).text = "B"
    tr = t.rows[0]._tr
    trpr = tr.get_or_add_trPr()
    trpr.append(parse_xml(f'<w:gridBefore {nsdecls("w")} w:val="1"/>'))
    tr.remove(tr.tc_lst[0])
    row = _rows(_grid(d), "table 1")[0]
    assert row[0] is None and row[1].text == "B" and row[1].location.endswith("column 2")


def test_document_without_styles_part_still_reads():
    import zipfile

    src = zipfile.ZipFile(io.BytesIO(_save(_doc_with("Xin chào"))))
    out = io.BytesIO()
    with src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            if info.filename != "word/styles.xml":
                dst.writestr(info.filename, src.read(info))
    grid = read_docx(out.getvalue()).grids[0]
    assert grid.rows[0].cells[0].text == "Xin chào"


def _doc_with(text: str):
    d = docx.Document()
    d.add_paragraph(text)
    return d


def test_text_after_a_nested_table_follows_it_in_document_order():
    d = docx.Document()
    frame = d.add_table(rows=1, cols=1).cell(0, 0)
    frame.text = "ĐẢNG ỦY PHƯỜNG KIM GIANG"
    frame.add_paragraph("BIỂU TỔNG HỢP")
    frame.add_table(rows=1, cols=2).cell(0, 0).text = "TT"
    frame.add_paragraph("Ghi chú: ...")  # python-docx put an empty paragraph before it
    grid = _grid(d)
    cell = "table 1, row 1, column 1"
    assert [(r.block, r.cells[0].text if r.cells[0] else None) for r in grid.rows] == [
        ("table 1", "ĐẢNG ỦY PHƯỜNG KIM GIANG BIỂU TỔNG HỢP"),
        ("table 2", "TT"),
        (cell, "Ghi chú: ..."),
    ]
    assert grid.rows[2].cells[0].location == cell + ", paragraph 4"


def test_cells_and_rows_in_content_controls_showing_their_prompt_read_empty():
    prompt = (
        "<w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent><w:tc><w:p><w:r>"
        "<w:t>Bấm hoặc gõ nhẹ vào đây để nhập văn bản.</w:t></w:r></w:p></w:tc></w:sdtContent>"
    )
    filled = (
        "<w:sdtPr/><w:sdtContent><w:tc><w:p><w:r><w:t>{}</w:t></w:r></w:p></w:tc></w:sdtContent>"
    )
    _doc = docx.Document()
    _append_raw(
        _doc,
        f"""<w:tbl {W}><w:tblGrid><w:gridCol/><w:gridCol/><w:gridCol/></w:tblGrid>
          <w:tr><w:sdt>{prompt}</w:sdt><w:sdt>{filled.format("B")}</w:sdt>
            <w:tc><w:p><w:r><w:t>C</w:t></w:r></w:p></w:tc></w:tr>
          <w:sdt><w:sdtPr><w:showingPlcHdr/></w:sdtPr><w:sdtContent>
            <w:tr><w:tc><w:p><w:r><w:t>Click or tap here to enter text.</w:t></w:r></w:p></w:tc>
            </w:tr></w:sdtContent></w:sdt>
          <w:sdt><w:sdtPr/><w:sdtContent><w:sdt><w:sdtPr/><w:sdtContent>
            <w:tr><w:tc><w:p><w:r><w:t>D</w:t></w:r></w:p></w:tc></w:tr>
          </w:sdtContent></w:sdt></w:sdtContent></w:sdt>
        </w:tbl>""",
    )
    rows = _rows(_grid(_doc), "table 1")
    assert [[c.text if c else None for c in r] for r in rows] == [
        [None, "B", "C"],
        [None, None, None],
        ["D", None, None],
    ]
    assert rows[0][1].location == "table 1, row 1, column 2"
    assert rows[2][0].location == "table 1, row 3, column 1"
