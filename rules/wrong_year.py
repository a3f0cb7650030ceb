"""Rule: the form is the one for the campaign's year (the year in its title)."""

from __future__ import annotations

from parsers.model import Severity
from parsers.problems import problem, spec
from rules.base import FormRecord, Problem

CODE = "wrong-year"
SEVERITY: Severity = spec(CODE).severity


def check(record: FormRecord) -> list[Problem]:
    form, campaign = record.form, record.campaign
    if campaign is None or form.year is None or form.year == campaign.year:
        return []
    return [
        problem(CODE, form.year_location or form.location, found=form.year, expected=campaign.year)
    ]
