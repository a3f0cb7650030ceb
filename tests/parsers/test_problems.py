"""The problem catalogue: complete, well-formed, Vietnamese, and the same as README's tables."""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest

from parsers.problems import CATALOGUE, problem, spec

README = Path(__file__).resolve().parents[2] / "README.md"
_VIETNAMESE = re.compile("[ăâđêôơưĂÂĐÊÔƠƯ\u1ea0-\u1ef9]")


def _placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _readme_codes() -> dict[str, str]:
    text = README.read_text(encoding="utf-8")
    section = text.split("## Problem codes", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([a-z-]+)` \| (error|warning) \|", section, flags=re.M))


def test_readme_lists_every_code_with_its_severity_and_nothing_else():
    catalogue = {code: s.severity for code, s in CATALOGUE.items()}
    assert _readme_codes() == catalogue


@pytest.mark.parametrize("code", sorted(CATALOGUE))
def test_every_entry_is_vietnamese_with_a_fix(code):
    entry = spec(code)
    assert entry.code == code
    assert entry.severity in ("error", "warning")
    for text in (entry.message, *entry.variants.values(), entry.fix):
        assert _VIETNAMESE.search(text), text
        assert text == text.strip() and "  " not in text
    assert not _placeholders(entry.fix)


@pytest.mark.parametrize(
    ("code", "variant"),
    [(code, v) for code, s in sorted(CATALOGUE.items()) for v in (None, *s.variants)],
)
def test_problem_fills_every_placeholder(code, variant):
    names = _placeholders(spec(code).text(variant))
    made = problem(code, "Sheet1!A1", variant=variant, **{n: f"<{n}>" for n in names})
    assert (made.code, made.severity, made.location) == (code, spec(code).severity, "Sheet1!A1")
    assert all(f"<{n}>" in made.message for n in names)
    assert "{" not in made.message


def test_a_missing_placeholder_or_an_unknown_code_is_a_programming_error():
    with pytest.raises(KeyError):
        problem("wrong-year", found=2021)
    with pytest.raises(KeyError):
        problem("no-such-code")
    with pytest.raises(KeyError):
        problem("unsupported-format", variant="no-such-variant", name="x")


def test_messages_keep_their_wording():
    assert problem("empty-form", "M1", form="Mẫu số 01 (cấp Quận)").message.startswith(
        "Mẫu số 01 (cấp Quận) chưa có mô hình nào. Đề nghị ghi các mô hình đăng ký vào bảng"
    )
    assert problem("unsupported-format", variant="no-office", ext="doc").message == (
        "Hệ thống chưa đọc được tệp định dạng .doc của đơn vị. Đề nghị mở tệp bằng Word/Excel, "
        "lưu lại dưới dạng Word (.docx) hoặc Excel (.xlsx) rồi gửi lại."
    )
    assert problem("password-protected", variant="zip").message == (
        "Tệp được đặt mật khẩu nên hệ thống không mở được, đề nghị gỡ mật khẩu và gửi lại."
    )
