"""Rules that judge extracted forms, one per module, collected by the registry below."""

from __future__ import annotations

from dataclasses import replace

from parsers.model import ParseResult, Problem
from rules import (
    empty_form,
    missing_model,
    missing_name,
    missing_unit_name,
    total_mismatch,
    wrong_year,
)
from rules.base import FormRecord, Rule
from rules.campaign import Campaign

# The registry: every rule module, in the order their problems are listed.
RULES: tuple[Rule, ...] = (
    missing_unit_name,
    wrong_year,
    empty_form,
    missing_name,
    missing_model,
    total_mismatch,
)


def check_form(record: FormRecord) -> list[Problem]:
    """Every problem every rule finds in one form."""
    problems: list[Problem] = []
    for rule in RULES:
        problems.extend(rule.check(record))
    return problems


def judge(result: ParseResult, campaign: Campaign | None) -> ParseResult:
    """A copy of `result` whose forms carry the problems the rules find."""
    forms = [
        replace(form, problems=[*form.problems, *check_form(FormRecord(form, campaign))])
        for form in result.forms
    ]
    return replace(result, forms=forms)


__all__ = ["RULES", "FormRecord", "Rule", "check_form", "judge"]
