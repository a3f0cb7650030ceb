"""What every rule receives and returns: the form under judgement, its campaign, problems."""

from __future__ import annotations

from dataclasses import dataclass

from parsers.model import Form, Problem
from rules.campaign import Campaign

FORM_NAMES = {"M1": "Mẫu số 01 (cấp Quận)", "M2": "Mẫu số 02 (cấp cơ sở)"}
FIELD_NAMES = {
    "economy": "Lĩnh vực kinh tế",
    "culture_society": "Lĩnh vực văn hóa - xã hội",
    "security_defense": "Lĩnh vực an ninh - quốc phòng",
    "political_system": "Lĩnh vực xây dựng hệ thống chính trị",
    "all": "Tổng số",
}


@dataclass(frozen=True)
class FormRecord:
    """A form as extracted, with the campaign it is judged against (None when unknown)."""

    form: Form
    campaign: Campaign | None = None


__all__ = ["FIELD_NAMES", "FORM_NAMES", "FormRecord", "Problem"]
