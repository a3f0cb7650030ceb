"""Typed records produced by the parsers: problems, entries, forms and whole-file results."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning"]
Kind = Literal["collective", "individual"]
FormType = Literal["M1", "M2"]
FIELDS: tuple[str, ...] = ("economy", "culture_society", "security_defense", "political_system")
# The forms as units name them, in messages.
FORM_NAMES: dict[str, str] = {"M1": "Mẫu số 01 (cấp Quận)", "M2": "Mẫu số 02 (cấp cơ sở)"}
FORMATS: tuple[str, ...] = ("xlsx", "xlsm", "xls", "docx", "doc", "ods", "odt", "pdf", "other")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file or a form, explained to the unit in Vietnamese."""

    severity: Severity
    code: str
    location: str | None
    message: str

    def to_json(self) -> dict[str, Any]:
        # Spelled out: asdict's recursive copy costs the daemon more than the rest of a row.
        return {
            "severity": self.severity,
            "code": self.code,
            "location": self.location,
            "message": self.message,
        }


@dataclass(frozen=True)
class Entry:
    """One registered model: who, in which field, with which title."""

    kind: Kind
    no: str | None
    name: str | None
    field: str
    model: str
    note: str | None
    location: str
    # Where the name is (or should be) written; for the rules, not part of the JSON.
    name_location: str | None = dataclasses.field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "no": self.no,
            "name": self.name,
            "field": self.field,
            "model": self.model,
            "note": self.note,
            "location": self.location,
        }


@dataclass(frozen=True)
class UnfilledRow:
    """A numbered or named row of the table that holds no model (judged by rules)."""

    kind: Kind
    no: str | None
    name: str | None
    location: str


@dataclass(frozen=True)
class Totals:
    """The figures written on the form's TỔNG row (None where the cell is blank)."""

    economy: int | None = None
    culture_society: int | None = None
    security_defense: int | None = None
    political_system: int | None = None
    all: int | None = None

    def to_json(self) -> dict[str, int | None]:
        return {
            "economy": self.economy,
            "culture_society": self.culture_society,
            "security_defense": self.security_defense,
            "political_system": self.political_system,
            "all": self.all,
        }

    def get(self, key: str) -> int | None:
        value: int | None = getattr(self, key)
        return value


@dataclass
class Form:
    """One filled M1 or M2 table with its header facts, as found in the file."""

    form: FormType
    unit: str | None
    year: int | None
    date: str | None
    location: str
    entries: list[Entry] = field(default_factory=list)
    declared_totals: Totals = field(default_factory=Totals)
    problems: list[Problem] = field(default_factory=list)
    # Facts for the rules, not part of the JSON contract.
    unit_location: str | None = None
    year_location: str | None = None
    totals_location: dict[str, str] = field(default_factory=dict)
    unfilled_rows: list[UnfilledRow] = field(default_factory=list)
    declared_empty: bool = False
    title: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "form": self.form,
            "unit": self.unit,
            "year": self.year,
            "date": self.date,
            "location": self.location,
            "entries": [e.to_json() for e in self.entries],
            "declared_totals": self.declared_totals.to_json(),
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass
class ParseResult:
    """Everything read from one attachment."""

    file: str
    format: str
    forms: list[Form] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "forms": [f.to_json() for f in self.forms],
            "problems": [p.to_json() for p in self.problems],
        }

    def all_problems(self) -> list[Problem]:
        out = list(self.problems)
        for f in self.forms:
            out.extend(f.problems)
        return out

    @property
    def has_errors(self) -> bool:
        return any(p.severity == "error" for p in self.all_problems())
