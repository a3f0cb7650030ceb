"""Vietnamese labels for the contract's machine words (fields, kinds, forms, severities)."""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

FIELD_LABELS: Final = MappingProxyType(
    {
        "economy": "Kinh tế",
        "culture_society": "Văn hóa - Xã hội",
        "security_defense": "An ninh - Quốc phòng",
        "political_system": "Xây dựng hệ thống chính trị",
    }
)
KIND_LABELS: Final = MappingProxyType({"collective": "Tập thể", "individual": "Cá nhân"})
KIND_SECTIONS: Final = MappingProxyType({"collective": "I", "individual": "II"})
SEVERITY_LABELS: Final = MappingProxyType({"error": "Lỗi", "warning": "Lưu ý"})
FORM_NUMBERS: Final = MappingProxyType({"M1": "Mẫu số 01", "M2": "Mẫu số 02"})
FORM_LEVELS: Final = MappingProxyType({"M1": "cấp Quận", "M2": "cấp cơ sở"})


def form_title(code: str, title: str | None = None, level: str | None = None) -> str:
    """'M1' -> 'Mẫu số 01 – cấp Quận'; other text is returned unchanged."""
    number = title or FORM_NUMBERS.get(code)
    if number is None:
        return code
    lvl = level or FORM_LEVELS.get(code)
    return f"{number} – {lvl}" if lvl else number


def form_required_label(code: str, title: str | None = None, level: str | None = None) -> str:
    """'M2' -> 'Mẫu số 02 (cấp cơ sở)': how a missing form is named in a list."""
    number = title or FORM_NUMBERS.get(code)
    if number is None:
        return code
    lvl = level or FORM_LEVELS.get(code)
    return f"{number} ({lvl})" if lvl else number


def form_short(code: str) -> str:
    """'M1' -> 'Mẫu 01' for narrow table cells; other text is returned unchanged."""
    number = FORM_NUMBERS.get(code)
    return number.replace("Mẫu số", "Mẫu") if number else code
