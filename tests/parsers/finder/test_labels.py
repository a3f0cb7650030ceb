"""Label recognition on folded text: field names, TT and TỔNG labels, sections, numbers."""

from __future__ import annotations

import pytest

from parsers.finder.labels import (
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
