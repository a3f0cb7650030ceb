"""Model titles in one field cell: bulleted lines and inline enumerations split, others kept."""

from __future__ import annotations

import pytest

from parsers.finder.titles import split_models
from parsers.grid import Cell


def _cell(*lines: str) -> Cell:
    return Cell(" ".join(lines), "Sheet1!D9", lines=lines)


@pytest.mark.parametrize(
    ("lines", "models"),
    [
        (("- Mô hình A", "- Mô hình B"), ["Mô hình A", "Mô hình B"]),
        (("Mô hình rất dài", "viết trên hai dòng"), ["Mô hình rất dài viết trên hai dòng"]),
        (("1. Mô hình A 2. Mô hình B",), ["Mô hình A", "Mô hình B"]),
        (("a) Mô hình A; b) Mô hình B",), ["Mô hình A", "Mô hình B"]),
        (("Tổ 5. Phố 2. Xanh sạch",), ["Tổ 5. Phố 2. Xanh sạch"]),
    ],
)
def test_split_models(lines, models):
    assert split_models(_cell(*lines)) == models
