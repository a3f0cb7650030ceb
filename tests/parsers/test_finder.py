"""The form finder on grids built in code: one test per behaviour a real filled form needs."""

from __future__ import annotations

import pytest

from parsers.finder import find_forms
from parsers.grid import Cell, Extracted, Grid, Row
from parsers.model import Form, Problem

LEFT, UP = "<", "^"  # a merged copy of the cell to the left / above
HEADER = [
    "TT",
    "Tên tập thể, cá nhân",
    "Lĩnh vực kinh tế",
    "Lĩnh vực văn hóa - xã hội",
    "Lĩnh vực an ninh quốc phòng",
    "Lĩnh vực xây dựng hệ thống chính trị",
    "Ghi chú",
]
HEADING = [
    ["ĐẢNG ỦY PHƯỜNG HẠ ĐÌNH", None, None, None, None, "M1"],
    ["BIỂU TỔNG HỢP ĐĂNG KÝ MÔ HÌNH, ĐIỂN HÌNH CẤP QUẬN NĂM 2022"],
]


def _col(n: int) -> str:
    return chr(65 + n)


def _rows(values: list[list], block: str, start: int = 1) -> list[Row]:
    """Rows of cells; "<" and "^" copy the cell to the left / above as a merged copy."""
    out: list[Row] = []
    for r, row in enumerate(values, start=start):
        cells: list[Cell | None] = []
        for c, value in enumerate(row):
            if value == LEFT:
                cells.append(
                    Cell(
                        cells[c - 1].text,
                        cells[c - 1].location,  # type: ignore[union-attr]
                        cells[c - 1].lines,
                        merged=True,
                    )
                )  # type: ignore[union-attr]
            elif value == UP:
                above = out[-1].cells[c]
                cells.append(Cell(above.text, above.location, above.lines, merged=True))  # type: ignore[union-attr]
            elif value is None or value == "":
                cells.append(None)
            else:
                text = str(value)
                if block.startswith("table"):
                    loc = f"{block}, row {r - start + 1}, column {c + 1}"
                else:
                    loc = f"{block}!{_col(c)}{r}"
                lines = tuple(x.strip() for x in text.split("\n") if x.strip())
                number = float(value) if isinstance(value, int | float) else None
                cells.append(Cell(" ".join(lines), loc, lines, number=number))
        out.append(Row(cells=cells, block=block))
    return out


def sheet(values: list[list], name: str = "S") -> Grid:
    return Grid(name=name, rows=_rows(values, name))


def find(*grids: Grid, filename: str = "bieu.xlsx") -> tuple[list[Form], list[Problem]]:
    return find_forms(Extracted(grids=list(grids)), filename)


def one_form(values: list[list], name: str = "S") -> Form:
    forms, problems = find(sheet(values, name))
    assert problems == [] and len(forms) == 1, problems
    return forms[0]


def models(form: Form) -> list[tuple[str, str | None, str | None, str, str]]:
    return [(e.kind, e.no, e.name, e.field, e.model) for e in form.entries]


# --- text folding ------------------------------------------------------------------------


# --- header labels ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "labels,fields",
    [
        (
            ["LV kinh tế", "VH - XH", "AN-QP", "XDHTCT"],
            ["economy", "culture_society", "security_defense", "political_system"],
        ),
        (
            ["Kinh tế", "Văn hoá, xã hội", "QP-AN", "Xây dựng Đảng và HTCT"],
            ["economy", "culture_society", "security_defense", "political_system"],
        ),
        (
            ["VH-XH", "XD Đảng", "KT", "Quốc phòng - An ninh"],
            ["culture_society", "political_system", "economy", "security_defense"],
        ),
    ],
)
def test_abbreviated_field_labels_in_any_order(labels, fields):
    form = one_form(
        [
            *HEADING,
            ["STT", "Tên tập thể, cá nhân", *labels],
            ["1", "Chi bộ TDP 1", "A", "B", "C", "D"],
        ]
    )
    assert [e.field for e in form.entries] == fields


@pytest.mark.parametrize("tt", ["TT", "STT", "Số TT", "S.TT", "T/T", "Số thứ tự"])
def test_number_column_labels(tt):
    form = one_form(
        [
            *HEADING,
            [tt, "Tập thể/Cá nhân", "Kinh tế", "Văn hóa - xã hội"],
            ["1", "Chi bộ TDP 1", "Chợ văn minh"],
        ]
    )
    assert models(form) == [("collective", "1", "Chi bộ TDP 1", "economy", "Chợ văn minh")]


def test_name_column_next_to_tt_in_column_a_when_its_label_is_unusual():
    # The name label "Đơn vị thực hiện" is unknown: the name is the column right of TT (A).
    form = one_form(
        [
            *HEADING,
            ["TT", "Đơn vị thực hiện", "Kinh tế", "Văn hóa - xã hội"],
            ["1", "Chi bộ TDP 9", None, "Phố văn minh"],
        ]
    )
    assert models(form) == [("collective", "1", "Chi bộ TDP 9", "culture_society", "Phố văn minh")]


def test_first_entry_whose_model_reads_like_a_label_is_not_header():
    form = one_form(
        [*HEADING, HEADER, ["1", "Chi bộ TDP 2", None, None, None, "Góp ý xây dựng Đảng"]]
    )
    assert models(form) == [
        ("collective", "1", "Chi bộ TDP 2", "political_system", "Góp ý xây dựng Đảng")
    ]


def test_three_row_header_with_letter_and_number_column_numbering():
    form = one_form(
        [
            *HEADING,
            ["STT", "Tên tập thể, cá nhân", "Tên mô hình", LEFT, LEFT, LEFT, "Thời gian thực hiện"],
            [UP, UP, "Lĩnh vực", LEFT, LEFT, LEFT, UP],
            [UP, UP, "LV kinh tế", "VH - XH", "QP-AN", "XDHTCT", UP],
            ["A", "B", 1, 2, 3, 4, 5],
            ["1", "Chi bộ TDP 3", None, None, "Camera an ninh", None, "Cả năm"],
        ]
    )
    assert models(form) == [
        ("collective", "1", "Chi bộ TDP 3", "security_defense", "Camera an ninh")
    ]


def test_field_label_row_above_the_model_title_row():
    form = one_form(
        [
            *HEADING,
            HEADER,
            [None, None, "Tên mô hình đăng ký", LEFT, LEFT, LEFT],
            ["1", "Chi bộ TDP 4", "Chợ sạch"],
        ]
    )
    assert models(form) == [("collective", "1", "Chi bộ TDP 4", "economy", "Chợ sạch")]


# --- sections and numbers -----------------------------------------------------------------


@pytest.mark.parametrize(
    "collective,individual",
    [
        (
            ["I. TẬP THỂ:", LEFT, LEFT, LEFT, LEFT, LEFT, LEFT],
            ["II. CÁ NHÂN:", LEFT, LEFT, LEFT, LEFT, LEFT, LEFT],
        ),
        (["Phần I: Tập thể"], ["Phần II: Cá nhân"]),
        (["A- Tập thể"], ["B- Cá nhân"]),
        (["1", "Tập thể"], ["2", "Cá nhân"]),
        ([None, "I. Tập thể"], [None, "II. Cá nhân"]),
        (["I", "Tập thể", "x", "x", "x", "x"], ["II", "Cá nhân", "x", "x", "x", "x"]),
    ],
)
def test_section_rows_as_units_write_them(collective, individual):
    form = one_form(
        [
            *HEADING,
            HEADER,
            collective,
            ["1.1", "Chi bộ TDP 5", "Chợ đêm"],
            individual,
            ["2.1", "Bà Lê Thị Hoa", None, "Tủ sách"],
        ]
    )
    assert models(form) == [
        ("collective", "1.1", "Chi bộ TDP 5", "economy", "Chợ đêm"),
        ("individual", "2.1", "Bà Lê Thị Hoa", "culture_society", "Tủ sách"),
    ]
    assert form.unfilled_rows == []


def test_a_collective_named_tap_the_without_model_is_a_row_not_a_section():
    form = one_form([*HEADING, HEADER, ["I", "Tập thể"], ["1", "Tập thể lớp 9A"]])
    assert [(u.no, u.name) for u in form.unfilled_rows] == [("1", "Tập thể lớp 9A")]


def test_without_section_rows_persons_are_individuals():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi bộ TDP 6", "Chợ an toàn"],
            ["2", "Đồng chí Phạm Văn Nam - Bí thư", "Đồng hành doanh nghiệp"],
            ["3", "Đ/c Lê Văn Hải", "Vườn rau sạch"],
            ["4", "Ông Trần Bảo", "Tổ tiết kiệm"],
            ["5", "Chi hội Phụ nữ", "Phụ nữ khởi nghiệp"],
        ]
    )
    assert [e.kind for e in form.entries] == [
        "collective",
        "individual",
        "individual",
        "individual",
        "collective",
    ]


@pytest.mark.parametrize(
    "tt,no",
    [("1)", "1"), ("01", "01"), ("(2)", "2"), ("3.", "3"), ("a", "a"), ("-", None), ("...", None)],
)
def test_entry_number_as_written_without_punctuation(tt, no):
    form = one_form([*HEADING, HEADER, ["I", "Tập thể"], [tt, "Chi bộ TDP 7", "Chợ"]])
    assert form.entries[0].no == no


def test_name_merged_over_three_rows_names_each_model():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["I", "Tập thể"],
            ["1", "Chi bộ TDP 12", "Chợ dân sinh"],
            [UP, UP, None, "Sân chơi"],
            [UP, UP, None, "Tủ sách"],
        ]
    )
    assert [(e.no, e.name, e.model) for e in form.entries] == [
        ("1", "Chi bộ TDP 12", "Chợ dân sinh"),
        ("1", "Chi bộ TDP 12", "Sân chơi"),
        ("1", "Chi bộ TDP 12", "Tủ sách"),
    ]


# --- model cells ----------------------------------------------------------------------------


def test_bulleted_lines_in_one_cell_are_several_models():
    # Decision: a secretary listing "- A" / "- B" in one cell registers two models.
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Hội CCB", None, None, "- Hòa giải ở cơ sở\n- Tổ tuần tra\ntự quản"],
        ]
    )
    assert [e.model for e in form.entries] == ["Hòa giải ở cơ sở", "Tổ tuần tra tự quản"]
    assert {e.location for e in form.entries} == {"S!E4"}


def test_wrapped_title_a_semicolon_and_a_lone_bullet_stay_one_model_as_written():
    # Decision: line breaks without bullets wrap one title; "; " may belong to a title, and a
    # wrong split would be silent, so it is one entry (a TỔNG of 2 then shows the mismatch).
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi bộ TDP 8", "Chợ văn minh\nthương nhân thân thiện"],
            ["2", "MTTQ", None, None, None, "Lấy ý kiến nhân dân; đối thoại"],
            ["3", "Đoàn", "- Khởi nghiệp xanh"],
        ]
    )
    assert [e.model for e in form.entries] == [
        "Chợ văn minh thương nhân thân thiện",
        "Lấy ý kiến nhân dân; đối thoại",
        "- Khởi nghiệp xanh",  # a single model is kept as written
    ]


def test_a_tick_is_not_a_model():
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ TDP 9", "x", "Phố xanh", "X"]])
    assert models(form) == [("collective", "1", "Chi bộ TDP 9", "culture_society", "Phố xanh")]


def test_model_merged_across_two_field_columns_is_ambiguous_not_guessed():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi hội Phụ nữ", "Khởi nghiệp và văn hóa", LEFT],
            ["2", "Đoàn", None, None, "Thanh niên xung kích"],
        ]
    )
    assert [e.model for e in form.entries] == ["Thanh niên xung kích"]
    assert [(p.code, p.location) for p in form.problems] == [("ambiguous-field", "S!C4")]
    assert form.unfilled_rows == []  # the row is not "missing a model" as well


def test_not_registering_merged_over_the_fields_is_declared_empty():
    form = one_form([*HEADING, HEADER, ["I", "Tập thể", "Không đăng ký", LEFT, LEFT, LEFT]])
    assert form.declared_empty and form.entries == [] and form.problems == []


# --- the TỔNG row ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "label", ["TỔNG", "Tổng cộng", "TỔNG SỐ", "Cộng", "Cộng:", "Tổng cộng (I + II)"]
)
def test_total_row_labels(label):
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "Chợ"], [None, label, 1, 0]])
    assert (form.declared_totals.economy, form.declared_totals.culture_society) == (1, 0)


def test_totals_written_as_counts_of_models():
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "Chợ"], ["Tổng", None, "01 mô hình"]])
    assert form.declared_totals.economy == 1


def test_grand_total_in_one_cell_across_the_row():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi bộ", "Chợ"],
            ["Tổng số: 05 mô hình", LEFT, LEFT, LEFT, LEFT, LEFT, LEFT],
        ]
    )
    assert form.declared_totals.all == 5 and form.declared_totals.economy is None


def test_grand_total_merged_across_the_field_columns_is_the_overall_total():
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "Chợ"], [None, "TỔNG", 7, LEFT, LEFT, LEFT]])
    assert form.declared_totals.all == 7 and form.declared_totals.economy is None
    assert form.totals_location["all"] == "S!C5"


@pytest.mark.parametrize(
    "name",
    [
        "Công an phường Hạ Đình",
        "Công đoàn cơ sở phường",
        "Cộng đồng doanh nghiệp",
        "Tổng đội Thanh niên xung phong",
    ],
)
def test_names_that_begin_like_tong_or_cong_are_rows_not_totals(name):
    form = one_form(
        [*HEADING, HEADER, ["I", "Tập thể"], [None, name, "Mô hình"], [None, "Chi bộ TDP 1", "Chợ"]]
    )
    assert [e.name for e in form.entries] == [name, "Chi bộ TDP 1"]


# --- preamble -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "marker_line,expected",
    [
        ("BIỂU MẪU 01: ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM 2022", "M1"),
        ("Mẫu số 02 - Đăng ký mô hình, điển hình năm 2022", "M2"),
    ],
)
def test_marker_opening_the_title_line(marker_line, expected):
    form = one_form([["ĐẢNG ỦY PHƯỜNG KIM GIANG"], [marker_line], HEADER, ["1", "Chi bộ", "Chợ"]])
    assert (form.form, form.year, form.unit) == (expected, 2022, "ĐẢNG ỦY PHƯỜNG KIM GIANG")


@pytest.mark.parametrize("marker", ["(Mẫu số 02)", "Mẫu số: 02", "M2", "Biểu mẫu 02"])
def test_marker_spellings(marker):
    form = one_form(
        [
            ["ĐẢNG ỦY PHƯỜNG KIM GIANG", None, None, None, marker],
            ["ĐĂNG KÝ MÔ HÌNH DÂN VẬN KHÉO NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert form.form == "M2"


def test_marker_only_in_the_sheet_name():
    form = one_form(
        [
            ["ĐẢNG ỦY PHƯỜNG KIM GIANG"],
            ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ],
        name="M2",
    )
    assert form.form == "M2"


def test_letter_head_numbers_and_subject_are_neither_unit_nor_title():
    form = one_form(
        [
            ["QUẬN ỦY THANH XUÂN", None, None, None, "ĐẢNG CỘNG SẢN VIỆT NAM"],
            [
                "ĐẢNG ỦY PHƯỜNG THANH XUÂN TRUNG",
                None,
                None,
                None,
                "Thanh Xuân, ngày 14 tháng 02 năm 2022",
            ],
            ["*"],
            ["Số: 05-BC/ĐU"],
            ["V/v đăng ký mô hình “Dân vận khéo” năm 2021"],
            ["M1"],
            ["BIỂU TỔNG HỢP ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert (form.unit, form.date, form.year) == (
        "ĐẢNG ỦY PHƯỜNG THANH XUÂN TRUNG",
        "2022-02-14",
        2022,
    )
    assert form.title == "BIỂU TỔNG HỢP ĐĂNG KÝ MÔ HÌNH NĂM 2022"


def test_unit_written_only_on_the_right_is_still_the_unit():
    form = one_form(
        [
            ["M2", None, None, None, "HỘI KHUYẾN HỌC PHƯỜNG KHƯƠNG TRUNG"],
            ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert form.unit == "HỘI KHUYẾN HỌC PHƯỜNG KHƯƠNG TRUNG"


def test_template_unit_placeholder_forgets_heading_lines_above_it():
    form = one_form(
        [
            ["ĐẢNG BỘ QUẬN THANH XUÂN"],
            ["TÊN ĐƠN VỊ"],
            ["M1"],
            ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert form.unit is None and form.unit_location == "S!A2"


@pytest.mark.parametrize(
    "line,iso",
    [
        ("Thanh Xuân, 14/02/2022", "2022-02-14"),
        ("Hạ Đình, ngày 14/2/2022", "2022-02-14"),
        ("14/02/2022", "2022-02-14"),
        ("....., ngày..... tháng năm", None),
    ],
)
def test_date_line_spellings(line, iso):
    form = one_form(
        [
            ["ĐẢNG ỦY PHƯỜNG HẠ ĐÌNH", None, None, None, line],
            ["M1"],
            ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert (form.date, form.unit) == (iso, "ĐẢNG ỦY PHƯỜNG HẠ ĐÌNH")


def test_year_only_from_the_title():
    # Contract: the year is the title's; a date line's year does not stand in for it.
    form = one_form(
        [
            ["ĐẢNG ỦY PHƯỜNG HẠ ĐÌNH", None, None, None, "ngày 14 tháng 02 năm 2022"],
            ["M1"],
            ["ĐĂNG KÝ MÔ HÌNH DÂN VẬN KHÉO"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert (form.year, form.date) == (None, "2022-02-14")


def test_cover_letter_prose_above_the_form_is_forgotten():
    prose = (
        "Thực hiện Công văn số 719-CV/QU ngày 07/01/2022, Đảng ủy phường đăng ký mô hình "
        "cấp Quận (theo Mẫu số 01) trong các lĩnh vực kinh tế, văn hóa - xã hội, an ninh - "
        "quốc phòng và xây dựng hệ thống chính trị năm 2021 như sau. "
    ) * 2
    rows = [
        ["ĐẢNG ỦY PHƯỜNG KIM GIANG"],
        [prose],
        ["Nơi nhận:"],
        ["- Lưu VP."],
        ["ĐOÀN THANH NIÊN PHƯỜNG KIM GIANG"],
        ["M2"],
        ["Kim Giang, ngày 16 tháng 02 năm 2022"],
        ["ĐĂNG KÝ MÔ HÌNH CẤP CƠ SỞ NĂM 2022"],
    ]
    doc = Grid(
        "document",
        _rows(rows, "body") + _rows([HEADER, ["1", "Chi đoàn", "Chợ"]], "table 1"),
        kind="document",
    )
    forms, problems = find(doc, filename="x.docx")
    assert problems == []
    form = forms[0]
    assert (form.form, form.unit, form.year, form.date, form.location) == (
        "M2",
        "ĐOÀN THANH NIÊN PHƯỜNG KIM GIANG",
        2022,
        "2022-02-16",
        "table 1",
    )


# --- tables that go on, or stop ---------------------------------------------------------


def test_header_pasted_again_mid_table_is_skipped():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["I", "Tập thể"],
            ["1", "Chi bộ A", "Chợ"],
            HEADER,
            ["2", "Chi bộ B", None, "Phố"],
            [None, "TỔNG", 1, 1],
        ]
    )
    assert [e.name for e in form.entries] == ["Chi bộ A", "Chi bộ B"]


def _document(*blocks: tuple[str, list[list]]) -> Grid:
    rows: list[Row] = []
    for block, values in blocks:
        rows += _rows(values, block)
    return Grid("document", rows, kind="document")


@pytest.mark.parametrize("repeat_header", [False, True])
def test_document_table_split_by_a_page_break_goes_on(repeat_header):
    second = [["2", "Chi đoàn B", None, "Phố", None, None, None], [None, "TỔNG", 1, 1]]
    doc = _document(
        ("body", [["ĐOÀN PHƯỜNG"], ["M2"], ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"]]),
        ("table 1", [HEADER, ["1", "Chi đoàn A", "Chợ", None, None, None, None]]),
        ("table 2", ([HEADER] if repeat_header else []) + second),
    )
    forms, problems = find(doc, filename="x.docx")
    assert problems == [] and len(forms) == 1
    assert [(e.name, e.location) for e in forms[0].entries] == [
        ("Chi đoàn A", "table 1, row 2, column 3"),
        ("Chi đoàn B", f"table 2, row {2 if repeat_header else 1}, column 4"),
    ]
    assert forms[0].declared_totals.culture_society == 1


def test_a_narrower_table_after_the_form_is_not_its_continuation():
    doc = _document(
        ("body", [["ĐOÀN PHƯỜNG"], ["M2"], ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"]]),
        ("table 1", [HEADER, ["1", "Chi đoàn A", "Chợ", None, None, None, None]]),
        ("table 2", [["Nơi nhận", "2"]]),
    )
    forms, _ = find(doc, filename="x.docx")
    assert [e.name for e in forms[0].entries] == ["Chi đoàn A"] and forms[0].unfilled_rows == []


def test_a_table_nested_in_a_row_does_not_end_the_form():
    doc = _document(
        ("body", [["ĐOÀN PHƯỜNG"], ["M2"], ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"]]),
        ("table 1", [HEADER, ["1", "Chi đoàn A", "Chợ", None, None, None, None]]),
        ("table 2", [["ảnh", "chú thích"]]),
        ("table 1", [["2", "Chi đoàn B", None, "Phố", None, None, None]]),
    )
    forms, _ = find(doc, filename="x.docx")
    assert [e.name for e in forms[0].entries] == ["Chi đoàn A", "Chi đoàn B"]


def test_two_forms_stacked_in_one_sheet():
    block = [HEADER, ["1", "Chi bộ", "Chợ"], ["Ghi chú: Đề nghị ghi rõ..."], ["THỦ TRƯỞNG ĐƠN VỊ"]]
    forms, problems = find(
        sheet(
            [
                ["ĐẢNG ỦY PHƯỜNG A", None, None, "M1"],
                ["ĐĂNG KÝ MÔ HÌNH CẤP QUẬN NĂM 2022"],
                *block,
                ["ĐẢNG ỦY PHƯỜNG A", None, None, "M2"],
                ["ĐĂNG KÝ MÔ HÌNH CẤP CƠ SỞ NĂM 2022"],
                *block,
            ]
        )
    )
    assert problems == []
    assert [(f.form, f.unit, len(f.entries)) for f in forms] == [
        ("M1", "ĐẢNG ỦY PHƯỜNG A", 1),
        ("M2", "ĐẢNG ỦY PHƯỜNG A", 1),
    ]


def test_two_forms_side_by_side_are_reported_not_half_read_silently():
    header = HEADER + HEADER
    form = find(
        sheet(
            [
                ["ĐẢNG ỦY PHƯỜNG A", None, None, "M1", None, None, None, None, "M2"],
                ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
                header,
                ["1", "Chi bộ", "Chợ", None, None, None, None, "1", "Chi bộ", "Phố"],
            ]
        )
    )[0][0]
    assert [p.code for p in form.problems] == ["forms-side-by-side"]


def test_a_5000_row_sheet_is_read_whole():
    # Speed is measured in benchmarks/parse_bench.py; here only that every row is read.
    rows = [*HEADING, HEADER] + [
        [str(i), f"Chi bộ tổ dân phố số {i}", None, f"Mô hình văn hóa số {i}"] for i in range(5000)
    ]
    forms, _ = find(sheet(rows))
    assert len(forms[0].entries) == 5000
    assert forms[0].entries[-1].model == "Mô hình văn hóa số 4999"


# --- round two: layouts and wordings met in the second outside-world pass -------------------


def test_first_rows_whose_models_read_like_field_labels_are_entries_not_header():
    # No TT numbers: nothing but the non-label name cell tells these rows from a header row.
    form = one_form(
        [
            *HEADING,
            HEADER,
            [None, "Chi hội Phụ nữ", None, "Văn hóa gia đình"],
            [None, "Chi bộ TDP 2", "Kinh tế tập thể"],
        ]
    )
    assert models(form) == [
        ("collective", None, "Chi hội Phụ nữ", "culture_society", "Văn hóa gia đình"),
        ("collective", None, "Chi bộ TDP 2", "economy", "Kinh tế tập thể"),
    ]
    assert form.problems == []  # not "forms-side-by-side"


@pytest.mark.parametrize(
    "model",
    [
        "Tập thể đoàn kết, cá nhân gương mẫu",
        "Cộng đồng chung tay",
        "Tổng vệ sinh ngõ xóm",
        "Ghi chú việc tốt mỗi ngày",
        "Kinh tế hộ gia đình",
        "Văn hóa đọc",
    ],
)
def test_model_titles_holding_label_words_stay_entries(model):
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["I", "Tập thể"],
            [None, "Chi bộ TDP 3", None, model],
            ["II", "Cá nhân"],
            [None, "Bà Lê Thị Hoa", None, model],
            [None, "TỔNG", 0, 2],
        ]
    )
    assert [(e.kind, e.model) for e in form.entries] == [
        ("collective", model),
        ("individual", model),
    ]
    assert form.declared_totals.culture_society == 2


def test_title_level_beats_a_sheet_name_saying_the_other_form():
    # A copied sheet keeps its name: "Mẫu 2" holding a CẤP QUẬN table is M1, not a conflict.
    forms, problems = find(
        sheet(
            [
                ["ĐẢNG ỦY PHƯỜNG A"],
                ["ĐĂNG KÝ MÔ HÌNH CẤP QUẬN NĂM 2022"],
                HEADER,
                ["1", "Chi bộ", "Chợ"],
            ],
            "Mẫu 2",
        )
    )
    assert problems == [] and [(f.form, f.problems) for f in forms] == [("M1", [])]


def test_a_written_marker_still_conflicts_with_the_title():
    forms, problems = find(
        sheet(
            [
                ["ĐẢNG ỦY PHƯỜNG A", None, None, "M2"],
                ["ĐĂNG KÝ MÔ HÌNH CẤP QUẬN NĂM 2022"],
                HEADER,
                ["1", "Chi bộ", "Chợ"],
            ],
            "Mẫu 1",
        )
    )
    assert forms == [] and [p.code for p in problems] == ["form-type-conflict"]


def test_total_row_above_the_entries_does_not_end_the_table():
    form = one_form(
        [
            *HEADING,
            HEADER,
            [None, "TỔNG", 1, 1],
            ["I", "Tập thể"],
            ["1", "Chi bộ TDP 1", "Chợ"],
            ["II", "Cá nhân"],
            ["1", "Ông Lê Văn A", None, "Phố"],
        ]
    )
    assert models(form) == [
        ("collective", "1", "Chi bộ TDP 1", "economy", "Chợ"),
        ("individual", "1", "Ông Lê Văn A", "culture_society", "Phố"),
    ]
    assert (form.declared_totals.economy, form.declared_totals.culture_society) == (1, 1)


def test_what_follows_a_total_row_at_the_end_is_not_read():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi bộ", "Chợ"],
            [None, "TỔNG", 1],
            ["ĐẢNG ỦY PHƯỜNG B", None, None, "Ghi nhận"],
        ]
    )
    assert [e.name for e in form.entries] == ["Chi bộ"] and form.unfilled_rows == []


def test_a_signature_typed_in_a_field_column_ends_a_table_without_total():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "Chi bộ", "Chợ"],
            [None, None, None, "T/M ĐẢNG ỦY"],
            [None, None, None, "Nguyễn Văn Bình"],
        ]
    )
    assert [e.model for e in form.entries] == ["Chợ"]


@pytest.mark.parametrize("label", ["Tổng số: 5 (năm) mô hình", "Tổng cộng: 05 (năm) mô hình"])
def test_grand_total_with_the_figure_spelled_out(label):
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "Chợ"], [label, LEFT, LEFT, LEFT, LEFT]])
    assert form.declared_totals.all == 5 and form.unfilled_rows == []


def test_field_total_with_the_figure_spelled_out():
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "Chợ"], [None, "TỔNG", "1 (một) mô hình"]])
    assert form.declared_totals.economy == 1


def test_section_numeral_merged_down_the_tt_column_numbers_no_entry():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["I", "Tập thể"],
            [UP, "Chi bộ A", "Chợ"],
            [UP, "Chi bộ B", None, "Phố"],
            ["II", "Cá nhân"],
            [UP, "Ông Lê Văn A", "Vườn"],
        ]
    )
    assert [(e.kind, e.no, e.name) for e in form.entries] == [
        ("collective", None, "Chi bộ A"),
        ("collective", None, "Chi bộ B"),
        ("individual", None, "Ông Lê Văn A"),
    ]


def test_section_label_merged_down_the_tt_column_beside_the_names():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["I. Tập thể", "Chi bộ A", "Chợ"],
            [UP, "Chi bộ B"],
            ["II. Cá nhân", "Bà Lê Thị Hoa", None, "Phố"],
            [UP, "Chi hội trưởng X", "Vườn"],
        ]
    )
    assert [(e.kind, e.no, e.name) for e in form.entries] == [
        ("collective", None, "Chi bộ A"),
        ("individual", None, "Bà Lê Thị Hoa"),
        ("individual", None, "Chi hội trưởng X"),  # the section says so, not the name
    ]
    assert [(u.kind, u.no, u.name) for u in form.unfilled_rows] == [
        ("collective", None, "Chi bộ B")
    ]


def test_an_entry_number_merged_down_several_rows_is_still_its_number():
    form = one_form(
        [*HEADING, HEADER, ["I", "Tập thể"], ["1", "Chi bộ A", "Chợ"], [UP, UP, None, "Phố"]]
    )
    assert [e.no for e in form.entries] == ["1", "1"]


@pytest.mark.parametrize(
    "title,year",
    [
        ("ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM 2022", 2022),
        ("Đăng ký mô hình “Dân vận khéo” năm 2022", 2022),
        ("ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” 2022", 2022),
        ("ĐĂNG KÝ MÔ HÌNH “DÂN VẬN KHÉO” NĂM 2.022", 2022),
        ("ĐĂNG KÝ MÔ HÌNH GIAI ĐOẠN 2021-2025", None),
    ],
)
def test_year_spellings_in_the_title(title, year):
    form = one_form(
        [["ĐẢNG ỦY PHƯỜNG A", None, None, None, "M1"], [title], HEADER, ["1", "Chi bộ", "Chợ"]]
    )
    assert form.year == year


@pytest.mark.parametrize(
    "line,iso",
    [
        ("Hà Nội, ngày 15 tháng 2 năm 2022", "2022-02-15"),
        ("Thanh Xuân, ngày     tháng 02 năm 2022", None),
        ("Thượng Đình, ngày 15-02-2022", "2022-02-15"),
    ],
)
def test_more_date_line_spellings(line, iso):
    form = one_form(
        [
            ["ĐẢNG ỦY PHƯỜNG HẠ ĐÌNH", None, None, None, line],
            ["M1"],
            ["ĐĂNG KÝ MÔ HÌNH NĂM 2022"],
            HEADER,
            ["1", "Chi bộ", "Chợ"],
        ]
    )
    assert (form.date, form.year) == (iso, 2022)


@pytest.mark.parametrize(
    "text,expected",
    [
        ("1. Chợ văn minh 2. Phố đi bộ", ["Chợ văn minh", "Phố đi bộ"]),
        ("a) Tủ sách; b) Sân chơi; c) Vườn rau", ["Tủ sách", "Sân chơi", "Vườn rau"]),
        ("1) Hòa giải, 2) Tuần tra", ["Hòa giải", "Tuần tra"]),
        ("1. Chợ văn minh", ["1. Chợ văn minh"]),  # one item: kept as written
        ("Tổ 5. Phố 2. Ngõ 3", ["Tổ 5. Phố 2. Ngõ 3"]),  # not a list from 1
        ("1. Chợ 3. Phố", ["1. Chợ 3. Phố"]),  # no run 1, 2: not split
    ],
)
def test_models_numbered_inline_in_one_cell(text, expected):
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", text]])
    assert [e.model for e in form.entries] == expected


def test_bulleted_items_lose_the_separator_that_ended_them():
    form = one_form([*HEADING, HEADER, ["1", "Chi bộ", "1. Chợ văn minh;\n2. Phố đi bộ."]])
    assert [e.model for e in form.entries] == ["Chợ văn minh", "Phố đi bộ."]


def test_name_with_position_on_a_second_line_is_one_name():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["II", "Cá nhân"],
            ["1", "Đ/c Nguyễn Văn An\n- Bí thư chi bộ", None, "Tủ sách"],
        ]
    )
    assert form.entries[0].name == "Đ/c Nguyễn Văn An - Bí thư chi bộ"


BLANK = [
    ["TÊN ĐƠN VỊ", None, None, None, "M1"],
    ["....., ngày..... tháng năm"],
    ["ĐĂNG KÝ MÔ HÌNH CẤP QUẬN NĂM 2022"],
    HEADER,
    ["I", "Tập thể"],
    ["1"],
    ["2"],
    ["..."],
    ["II", "Cá nhân"],
    ["1"],
    [None, "TỔNG"],
]
FILLED = [
    ["ĐẢNG ỦY PHƯỜNG A", None, None, None, "M1"],
    ["ĐĂNG KÝ MÔ HÌNH CẤP QUẬN NĂM 2022"],
    HEADER,
    ["1", "Chi bộ", "Chợ"],
]


def test_blank_template_copy_beside_a_filled_form_is_a_warning_not_a_form():
    forms, problems = find(sheet(FILLED, "M1"), sheet(BLANK, "M1 (2)"))
    assert [(f.form, f.location) for f in forms] == [("M1", "M1")]
    assert [(p.severity, p.code, p.location) for p in problems] == [
        ("warning", "blank-template-copy", "M1 (2)")
    ]
    assert "“M1 (2)”" in problems[0].message


def test_a_blank_form_without_a_filled_twin_stays_a_form():
    m2 = [
        [
            c.replace("CẤP QUẬN", "CẤP CƠ SỞ").replace("M1", "M2") if isinstance(c, str) else c
            for c in row
        ]
        for row in BLANK
    ]
    forms, problems = find(sheet(FILLED, "Mẫu 01"), sheet(m2, "Mẫu 02"))
    assert problems == [] and [(f.form, len(f.entries)) for f in forms] == [("M1", 1), ("M2", 0)]
    alone, problems = find(sheet(BLANK, "M1 (2)"))
    assert problems == [] and [f.form for f in alone] == ["M1"]


def test_a_named_row_without_model_is_not_a_blank_copy():
    started = [*BLANK[:5], ["1", "Chi bộ TDP 9"]]
    forms, problems = find(sheet(FILLED, "M1"), sheet(started, "M1 (2)"))
    assert problems == [] and [f.location for f in forms] == ["M1", "M1 (2)"]


def test_a_note_column_with_a_long_label_keeps_its_notes():
    header = [*HEADER[:6], "Ghi chú (nêu rõ mô hình mới hay duy trì)"]
    form = one_form([*HEADING, header, ["1", "Chi bộ", "Chợ", None, None, None, "Duy trì"]])
    assert form.entries[0].note == "Duy trì"


def test_names_in_capitals_without_sections_still_tell_persons():
    form = one_form(
        [
            *HEADING,
            HEADER,
            ["1", "CHI BỘ TDP 1", "Chợ"],
            ["2", "ĐỒNG CHÍ LÊ VĂN AN", "Phố"],
            ["3", "Đ/C TRẦN BÌNH", "Vườn"],
        ]
    )
    assert [e.kind for e in form.entries] == ["collective", "individual", "individual"]
