"""Label recognition on folded text: field names, TT and TỔNG labels, sections, numbers."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from parsers.finder.labels import (
    _FIELD_PATTERNS,
    MODEL_COLUMN_LABEL,
    NAME_LABEL,
    STOP,
    Guarded,
    clean_no,
    field_of,
    is_placeholder,
    is_total_label,
    section_label,
    to_int,
)
from parsers.grid import Cell
from parsers.vntext import fold_accents


@pytest.mark.parametrize(
    ("label", "field"),
    [
        ("Lĩnh vực kinh tế", "economy"),
        ("VH-XH", "culture_society"),
        ("An ninh - Quốc phòng", "security_defense"),
        ("XDHTCT", "political_system"),
        ("chính trị - xã hội", None),  # names neither field precisely
        ("Ghi chú", None),
    ],
)
def test_field_of(label, field):
    assert field_of(label) == field


@pytest.mark.parametrize(
    ("text", "total"),
    [
        ("TỔNG", True),
        ("Tổng cộng", True),
        ("Tổng số: 05 mô hình", True),
        ("Cộng", True),
        ("Công an phường", False),
    ],
)
def test_is_total_label(text, total):
    assert is_total_label(fold_accents(text)) is total


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("I. Tập thể", "collective"),
        ("A- TẬP THỂ:", "collective"),
        ("Phần II: Cá nhân", "individual"),
        ("Các cá nhân tiêu biểu", "individual"),
        ("Chi bộ tập thể dục", None),
    ],
)
def test_section_label(text, kind):
    assert section_label(fold_accents(text)) == kind


def test_clean_no_and_to_int():
    assert [clean_no(t) for t in ("1.", "(2)", "3)", "-", "...")] == ["1", "2", "3", None, None]
    assert to_int(Cell("05 mô hình", "A1")) == 5
    assert to_int(Cell("", "A1", number=4.0)) == 4
    assert to_int(Cell("5", "A1", merged=True)) is None
    assert to_int(None) is None


@pytest.mark.parametrize(
    "text",
    [
        "Bấm hoặc gõ nhẹ vào đây để nhập văn bản.",
        "Nhấp vào đây để nhập văn bản.",
        "Click or tap here to enter text.",
        "Click here to enter text.",
        "Click or tap to enter a date.",
        "Bấm hoặc gõ nhẹ để nhập ngày.",
        "Choose an item.",
        "Chọn một mục.",
        "......",
    ],
)
def test_word_prompts_are_placeholders(text: str) -> None:
    assert is_placeholder(text)


@pytest.mark.parametrize(
    "text",
    ["Nhấp chuột gửi đơn trực tuyến: công dân nhập văn bản tại nhà", "Tổ dân phố số 5"],
)
def test_model_titles_are_not_placeholders(text: str) -> None:
    assert not is_placeholder(text)


# The label regexes as single alternations: the guarded branches must answer as they do.
_WHOLE = {
    "economy": r"kinh\s*te|\bkt\b",
    "culture_society": r"van\s*hoa|\bvh\s*[-–/,]?\s*xh\b|\bvhxh\b|xa\s*hoi",
    "security_defense": r"an\s*ninh|quoc\s*phong|\banqp\b|\bqpan\b|\b(an|qp)\s*[-–/,]\s*(qp|an)\b",
    "political_system": r"he\s*thong\s*chinh\s*tri|\b(xd\s*)?htct\b|\bxdhtct\b|chinh\s*tri|"
    r"xay\s*dung\s*dang|\bxd\s*dang\b",
    "name": r"ten\s*tap\s*the|tap\s*the\s*[,/;-]?\s*(va\s*|hoac\s*)?ca\s*nhan|ho\s*(va)?\s*ten|"
    r"ten\s*(don\s*vi|co\s*quan|to\s*chuc)|ten\s*ca\s*nhan",
    "model": r"ten\s*(cac\s*)?mo\s*hinh|mo\s*hinh\s*dang\s*ky",
    "stop": r"^ghi\s*chu\s*:|thu\s*truong\s*(don\s*vi|co\s*quan)|nguoi\s*lap\s*bieu|"
    r"^\(?ky\s*,?\s*(ten|dong)|^t/?m\.?\s|^xac\s*nhan|^noi\s*nhan",
}
_GUARDED: dict[str, Guarded] = {
    **dict(_FIELD_PATTERNS),
    "name": NAME_LABEL,
    "model": MODEL_COLUMN_LABEL,
    "stop": STOP,
}
_PIECES = (
    "kinh",
    "te",
    "kt",
    "van",
    "hoa",
    "vh",
    "xh",
    "vhxh",
    "xa",
    "hoi",
    "an",
    "ninh",
    "quoc",
    "phong",
    "anqp",
    "qpan",
    "qp",
    "he",
    "thong",
    "chinh",
    "tri",
    "xd",
    "htct",
    "xdhtct",
    "xay",
    "dung",
    "dang",
    "ten",
    "tap",
    "the",
    "va",
    "hoac",
    "ca",
    "nhan",
    "ho",
    "don",
    "vi",
    "co",
    "quan",
    "to",
    "chuc",
    "cac",
    "mo",
    "hinh",
    "ky",
    "ghi",
    "chu",
    "thu",
    "truong",
    "nguoi",
    "lap",
    "bieu",
    "dong",
    "t",
    "m",
    "xac",
    "noi",
    " ",
    "  ",
    "-",
    "–",
    "/",
    ",",
    ":",
    ".",
    "(",
    ";",
    "a",
    "x",
)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=9).map("".join))
def test_guarded_labels_answer_as_the_whole_alternation(text: str) -> None:
    for name, whole in _WHOLE.items():
        assert bool(_GUARDED[name].search(text)) == bool(re.search(whole, text)), (name, text)
