"""Small builders for rule tests: forms made directly as records, no files involved."""

from __future__ import annotations

import pytest

from parsers.model import Entry, Form, Totals, UnfilledRow
from rules.base import FormRecord
from rules.campaign import newest_campaign


def entry(
    field: str = "economy",
    name: str | None = "Chi bộ TDP 5",
    no: str | None = "1",
    kind: str = "collective",
    loc: str = "Sheet1!C10",
    model: str = "Mô hình",
) -> Entry:
    return Entry(kind=kind, no=no, name=name, field=field, model=model, note=None, location=loc)


def form(**kw: object) -> Form:
    base: dict[str, object] = dict(
        form="M1",
        unit="Đảng ủy phường Khương Trung",
        year=2022,
        date="2022-02-14",
        location="Sheet1",
        entries=[entry()],
    )
    base.update(kw)
    return Form(**base)  # type: ignore[arg-type]


@pytest.fixture
def record():
    campaign = newest_campaign()

    def make(**kw: object) -> FormRecord:
        return FormRecord(form(**kw), campaign)

    return make


__all__ = ["Totals", "UnfilledRow", "entry", "form"]
