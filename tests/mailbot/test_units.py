"""The unit register: reading CSV/XLSX and finding units by address and by written name."""

from __future__ import annotations

import io
from email.utils import parseaddr
from pathlib import Path

import pytest
from openpyxl import Workbook

from mailbot.units import (
    _PLAIN_ADDRESS,
    UNIT_GROUPS,
    Register,
    Unit,
    UnitsFileError,
    guess_group,
    name_key,
    parse_group,
    read_units,
    register_rank,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "units.csv"


@pytest.fixture(scope="module")
def register() -> Register:
    return Register(read_units(DATA.read_bytes(), "units.csv"), district="Thanh Xuân")


def test_shipped_register_is_complete_and_well_formed(register):
    units = register.units
    assert 30 <= len(units) <= 45
    codes = [u.code for u in units]
    assert len(set(codes)) == len(codes)
    assert {"mttq", "quan-doan", "hoi-lhpn", "hoi-ccb", "ldld", "p-khuong-trung"} <= set(codes)
    wards = [u for u in units if u.code.startswith("p-")]
    assert len(wards) == 11
    for unit in units:
        assert unit.emails and all(e.endswith("@thanhxuan.example") for e in unit.emails)
        assert all(e == e.lower() for e in unit.emails)


def test_by_email(register):
    assert register.by_email("DangBo.KhuongTrung@ThanhXuan.example").code == "p-khuong-trung"
    assert register.by_email("vanphong.khuongtrung@thanhxuan.example").code == "p-khuong-trung"
    assert register.by_email("Đảng ủy <dangbo.kimgiang@thanhxuan.example>").code == "p-kim-giang"
    assert register.by_email("stranger@gmail.example") is None
    assert register.by_email("") is None


@pytest.mark.parametrize(
    "addr",
    ["dangbo.kimgiang@thanhxuan.example", "a+b_c-d@x-y.example", "a.b.c@d", "x@y", "_@-"],
)
def test_a_plain_address_is_taken_as_parseaddr_takes_it(addr: str) -> None:
    assert _PLAIN_ADDRESS.fullmatch(addr)
    assert parseaddr(addr) == ("", addr)


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("Đảng ủy phường Khương Trung", "p-khuong-trung"),
        ("ĐẢNG ỦY PHƯỜNG KHƯƠNG TRUNG", "p-khuong-trung"),
        ("Đảng uỷ phường Khương Trung", "p-khuong-trung"),  # old tone placement
        ("Ban Thường vụ Đảng ủy phường Khương Trung", "p-khuong-trung"),
        ("BCH Đảng bộ phường Thượng Đình", "p-thuong-dinh"),
        ("Đảng ủy phường Khương Trung, quận Thanh Xuân, Hà Nội", "p-khuong-trung"),
        ("  Đảng   ủy\u00a0phường\nHạ Đình ", "p-ha-dinh"),
        ("Dang uy phuong Ha Dinh", "p-ha-dinh"),  # no accents at all
        ("UB MTTQ quận", "mttq"),
        ("UBMTTQ quận Thanh Xuân", "mttq"),
        ("Ủy ban Mặt trận Tổ quốc quận Thanh Xuân", "mttq"),
        ("Uỷ ban MTTQ Việt Nam quận Thanh Xuân", "mttq"),
        ("Ban Thường trực Ủy ban MTTQ quận", "mttq"),
        ("Hội LHPN quận Thanh Xuân", "hoi-lhpn"),
        ("Hội Liên hiệp Phụ nữ quận", "hoi-lhpn"),
        ("Hội CCB quận", "hoi-ccb"),
        ("LĐLĐ quận Thanh Xuân", "ldld"),
        ("Hội Người cao tuổi", "hoi-nct"),
        ("Hội nạn nhân chất độc da cam/dioxin quận", "hoi-da-cam"),
        ("Công an quận", "db-cong-an"),  # alias only
        ("Đảng bộ Khối Giáo dục", "db-giao-duc"),
        ("Quận Đoàn Thanh Xuân", "quan-doan"),
    ],
)
def test_by_name(register, written, code):
    unit = register.by_name(written)
    assert unit is not None, written
    assert unit.code == code


@pytest.mark.parametrize(
    "written",
    ["", "Đảng bộ", "Đảng ủy phường Thanh Xuân", "Chi bộ Tổ dân phố số 5", "Khương", "Hội"],
)
def test_unknown_or_ambiguous_names(register, written):
    assert register.by_name(written) is None


def test_tone_placement_keys_are_equal():
    for old, new in [("uỷ", "ủy"), ("hoà", "hòa"), ("thuỵ", "thụy"), ("khoẻ", "khỏe")]:
        assert name_key(old) == name_key(new)
    assert name_key("Đảng") != name_key("Đăng")


def test_exact_match_beats_accent_folding():
    units = [
        Unit("dang", "Đảng ủy phường A", ("a@x.example",)),
        Unit("dang2", "Đăng ủy phường A", ("b@x.example",)),
    ]
    reg = Register(units)
    assert reg.by_name("Đảng ủy phường A").code == "dang"
    assert reg.by_name("Đăng ủy phường A").code == "dang2"
    assert reg.by_name("Dang uy phuong A") is None  # folding alone cannot decide


def test_accent_fallback_only_when_unambiguous():
    reg = Register([Unit("a", "Hội Đông y quận"), Unit("b", "Hội Đồng y quận")])
    assert reg.by_name("Hoi Dong y quan") is None
    reg = Register([Unit("a", "Hội Đông y quận")])
    assert reg.by_name("Hoi Dong y quan").code == "a"


def test_register_is_immutable():
    reg = Register([Unit("a", "Hội A", ("a@x.example",))])
    with pytest.raises(TypeError):
        reg._by_email["b@x.example"] = Unit("b", "B")  # type: ignore[index]
    with pytest.raises(AttributeError):
        reg.units[0].code = "z"  # type: ignore[misc]


# -- reading files --


def test_csv_with_bom_semicolons_and_blank_lines():
    text = (
        "\ufeffCode;Name;Emails;Aliases;Ghi chú\n"
        "\n"
        "a;Hội A;A@X.example, b@x.example;Hội A quận;;\n"
        "b;Hội B;;;\n"
    )
    units = read_units(text.encode("utf-8"), "units.csv")
    assert units == [
        Unit("a", "Hội A", ("a@x.example", "b@x.example"), ("Hội A quận",)),
        Unit("b", "Hội B", (), ()),
    ]


def test_csv_in_windows_1258():
    text = "code,name,emails,aliases\r\np-kt,Đảng ủy phường Khương Trung,kt@x.example,\r\n"
    # Excel on Vietnamese Windows: cp1258 with tone marks as combining characters.
    import unicodedata

    tones = "\u0300\u0301\u0303\u0309\u0323"
    raw = b""
    for ch in text:
        try:
            raw += ch.encode("cp1258")
        except UnicodeEncodeError:
            d = unicodedata.normalize("NFD", ch)
            base = unicodedata.normalize("NFC", "".join(c for c in d if c not in tones))
            raw += (base + "".join(c for c in d if c in tones)).encode("cp1258")
    units = read_units(raw, "units.csv")
    assert units[0].name == "Đảng ủy phường Khương Trung"


def test_xlsx_register():
    wb = Workbook()
    ws = wb.active
    ws.append(["Danh sách đơn vị nhận Công văn 719"])  # a title row above the header
    ws.append([])
    ws.append(["STT", "CODE", "Name", "emails", "aliases"])
    ws.append([1, "mttq", "Ủy ban MTTQ quận", "mttq@x.example; vp@x.example", "MTTQ quận"])
    ws.append([None, None, None, None, None])
    ws.append([2, 17, "Hội Đông y quận", "dongy@x.example", None])
    buf = io.BytesIO()
    wb.save(buf)
    units = read_units(buf.getvalue(), "Don vi.xlsx")
    assert units == [
        Unit("mttq", "Ủy ban MTTQ quận", ("mttq@x.example", "vp@x.example"), ("MTTQ quận",)),
        Unit("17", "Hội Đông y quận", ("dongy@x.example",), ()),
    ]


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name,emails\nHội A,a@x.example\n", "thiếu cột code"),
        ("code,name,emails\na,,a@x.example\n", "Dòng 2"),
        ("code,name,emails\n,Hội A,a@x.example\n", "Dòng 2: thiếu mã"),
        ("code,name,emails\na,Hội A,a@x.example\na,Hội B,b@x.example\n", "Dòng 3"),
        ("code,name,emails\na,Hội A,not-an-address\n", "không hợp lệ"),
        ("code,name,emails\na,Hội A,s@x.example\nb,Hội B,s@x.example\n", "đã ghi cho đơn vị"),
        ("", "trống"),
        ("Danh sách\nx,y\n", "không tìm thấy dòng tiêu đề"),
    ],
)
def test_bad_files_name_the_line(text, needle):
    with pytest.raises(UnitsFileError) as err:
        read_units(text.encode(), "units.csv")
    assert needle in str(err.value)


def test_unreadable_xlsx_and_unknown_format():
    with pytest.raises(UnitsFileError, match="Excel"):
        read_units(b"PK\x03\x04garbage", "units.xlsx")
    with pytest.raises(UnitsFileError, match="CSV hoặc XLSX"):
        read_units(b"\xd0\xcf\x11\xe0", "units.xls")


# ---------------------------------------------------------------------------
# Names as offices really shorten them


@pytest.mark.parametrize(
    "written,code",
    [
        ("ĐU phường KT", "p-khuong-trung"),
        ("ĐU phường TXB", "p-thanh-xuan-bac"),
        ("Đảng ủy phường TX Bắc", "p-thanh-xuan-bac"),
        ("ĐU P.HĐ", "p-ha-dinh"),
        ("Phường NC", "p-nhan-chinh"),
        ("UBMTTQ quận", "mttq"),
        ("UB MTTQ VN quận Thanh Xuân", "mttq"),
        ("MTTQVN quận Thanh Xuân", "mttq"),
        ("Đoàn TNCS HCM quận", "quan-doan"),
        ("Hội CCB Q. Thanh Xuân", "hoi-ccb"),
        ("Hội NCT Q.TX", "hoi-nct"),
        ("Hội CTĐ quận TX", "hoi-ctd"),
        ("P. Khương Trung", "p-khuong-trung"),
        ("Đảng bộ CA quận", "db-cong-an"),
        ("Đảng bộ TTYT quận", "db-y-te"),
        ("Hội nạn nhân CĐDC quận", "hoi-da-cam"),
        ("Chi bộ VKSND quận", "cb-vien-kiem-sat"),
    ],
)
def test_abbreviated_and_initialled_names(register, written, code):
    unit = register.by_name(written)
    assert unit is not None and unit.code == code


@pytest.mark.parametrize(
    "written",
    [
        "Hội CCB phường Khương Trung",  # a ward association: not a registered unit
        "Hội PN phường KT",
        "Phường TX",  # three wards start so: ambiguous
        "ĐU phường XY",
        "Chi bộ tổ dân phố số 5",
    ],
)
def test_initials_never_guess_between_units_or_invent_one(register, written):
    assert register.by_name(written) is None


def test_initials_are_the_last_resort():
    units = [
        Unit("kt", "Đảng ủy phường Khương Trung"),
        Unit("kt2", "Đảng ủy phường KT"),  # a unit literally named with the letters
    ]
    reg = Register(units)
    assert reg.by_name("Đảng ủy phường KT").code == "kt2"
    assert reg.by_name("ĐU phường Khương Trung").code == "kt"


def test_district_initials_collapse_like_the_district_name():
    reg = Register([Unit("a", "Hội Cựu chiến binh quận Thanh Xuân")], district="Thanh Xuân")
    assert reg.by_name("Hội CCB Q.TX").code == "a"
    assert reg.by_name("HỘI CCB Q. TX").code == "a"
    assert "tx" in name_key("Hội CCB Q.TX").split()  # without a district: kept as written


def test_forms_column_says_what_a_unit_owes():
    text = (
        "code,name,emails,aliases,forms\n"
        "a,Hội A,a@x.example,,M1;M2\n"
        "b,Chi bộ B,b@x.example,,M2\n"
        "c,Chi bộ C,c@x.example,,Mẫu số 02\n"
        "d,Hội D,d@x.example,,\n"
    )
    units = {u.code: u.forms for u in read_units(text.encode("utf-8"), "units.csv")}
    assert units == {"a": ("M1", "M2"), "b": ("M2",), "c": ("M2",), "d": ()}


def test_forms_column_with_an_unknown_form_names_the_line():
    text = "code,name,emails,aliases,forms\na,Hội A,a@x.example,,M3\n"
    with pytest.raises(UnitsFileError, match=r"Dòng 2: cột forms “M3” không hợp lệ"):
        read_units(text.encode("utf-8"), "units.csv")


@pytest.mark.parametrize(
    ("name", "group"),
    [
        ("Ủy ban Mặt trận Tổ quốc Việt Nam quận Thanh Xuân", "mat-tran"),
        ("Quận đoàn Thanh Xuân", "chinh-tri-xa-hoi"),
        ("Hội Liên hiệp Phụ nữ quận", "chinh-tri-xa-hoi"),
        ("Hội Cựu chiến binh quận", "chinh-tri-xa-hoi"),
        ("Liên đoàn Lao động quận", "chinh-tri-xa-hoi"),
        ("Hội Chữ thập đỏ quận", "hoi"),
        ("Đảng ủy phường Khương Trung", "co-so-dang"),
        ("Chi bộ Tòa án nhân dân quận", "co-so-dang"),
        ("Ban Quản lý dự án", "khac"),
    ],
)
def test_group_guessed_from_the_name(name: str, group: str) -> None:
    assert guess_group(name) == group


def test_register_order_groups_then_place_then_name() -> None:
    units = [
        ("Đảng ủy phường Hạ Đình", None, None),
        ("Hội Chữ thập đỏ quận", None, None),
        ("Quận đoàn Thanh Xuân", None, 2),
        ("Hội Liên hiệp Phụ nữ quận", "chinh-tri-xa-hoi", 1),
        ("Ủy ban MTTQ quận", "mat-tran", None),
        ("Hội Bảo trợ người khuyết tật", "hoi", None),
    ]
    ordered = [u[0] for u in sorted(units, key=lambda u: register_rank(*u))]
    assert ordered == [
        "Ủy ban MTTQ quận",
        "Hội Liên hiệp Phụ nữ quận",
        "Quận đoàn Thanh Xuân",
        "Hội Bảo trợ người khuyết tật",
        "Hội Chữ thập đỏ quận",
        "Đảng ủy phường Hạ Đình",
    ]
    assert parse_group("Hội") == parse_group("hoi") == "hoi"
    assert parse_group("đoàn thể") == "chinh-tri-xa-hoi" and parse_group("CLB") is None


def test_shipped_register_is_in_the_boards_order() -> None:
    units = read_units(DATA.read_bytes(), "units.csv")
    ordered = sorted(units, key=lambda u: register_rank(u.name, u.group, u.order))
    assert ordered[0].code == "mttq"
    assert [u.group for u in ordered] == sorted(
        (u.group for u in units), key=lambda g: [k for k, _l, _w in UNIT_GROUPS].index(g)
    )
    assert all(u.group and u.order for u in units)
    # a ward's own party cells follow it
    codes = [u.code for u in ordered]
    assert codes.index("cb-kdc-khuong-dinh-3") == codes.index("p-khuong-dinh") + 3
