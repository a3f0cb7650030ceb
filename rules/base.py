"""What every rule receives and returns: the form under judgement, its campaign, problems."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from parsers.model import FORM_NAMES, Form, Problem, Severity
from rules.campaign import Campaign

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


class Rule(Protocol):
    """What every rule module provides: its code and severity (from the catalogue), a check."""

    CODE: str
    SEVERITY: Severity

    def check(self, record: FormRecord) -> list[Problem]:
        """Every problem of this rule's code in the form (empty when it passes)."""
        ...


__all__ = ["FIELD_NAMES", "FORM_NAMES", "FormRecord", "Problem", "Rule"]
