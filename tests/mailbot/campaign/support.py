"""Campaign test data: a seeded register, moments of February 2022, forms recorded by hand."""

from __future__ import annotations

import email
import email.policy
import hashlib
import itertools
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import select

from mailbot import db as dbm
from mailbot.app import import_units
from mailbot.config import Config, DigestConfig
from parsers.model import Entry, Form, Problem
from rules.campaign import newest_campaign

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
UNITS_CSV = Path(__file__).resolve().parents[3] / "data" / "units.csv"
_counter = itertools.count(1)
CAMPAIGN = newest_campaign()
CONFIG = Config(
    digest=DigestConfig(recipients=("lanhdao@thanhxuan.example", "vanthu@thanhxuan.example"))
)

# The contract's shape of `mailbot status --json`.
STATUS_SCHEMA = {
    "type": "object",
    "required": ["campaign", "deadline", "units"],
    "properties": {
        "campaign": {"type": "string"},
        "deadline": {"type": "string"},
        "units": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["code", "name", "state", "forms"],
                "properties": {
                    "code": {"type": "string"},
                    "name": {"type": "string"},
                    "state": {
                        "enum": [
                            "complete",
                            "partial",
                            "missing",
                            "errors",
                            "awaiting-confirmation",
                        ]
                    },
                    "forms": {
                        "type": "object",
                        "required": ["M1", "M2"],
                        "additionalProperties": {
                            "oneOf": [
                                {"type": "null"},
                                {
                                    "type": "object",
                                    "required": ["received_at", "late", "entries", "errors"],
                                    "properties": {
                                        "received_at": {"type": "string"},
                                        "late": {"type": "boolean"},
                                        "entries": {"type": "integer", "minimum": 0},
                                        "errors": {"type": "integer", "minimum": 0},
                                    },
                                },
                            ]
                        },
                    },
                },
            },
        },
    },
}


def at(day: int, hour: int = 9, minute: int = 0, month: int = 2) -> datetime:
    """A moment of February 2022, Hanoi time."""
    return datetime(2022, month, day, hour, minute, tzinfo=TZ)


def open_seeded(path: Path) -> dbm.Database:
    database = dbm.open_database(path)
    import_units(database, UNITS_CSV)
    return database


def add_form(
    database: dbm.Database,
    unit: str,
    form: str,
    when: datetime,
    *,
    entries: int = 2,
    errors: int = 0,
    awaiting: bool = False,
    sender: str | None = None,
    fields: tuple[str, ...] = ("economy", "culture_society"),
) -> int:
    """Record one mail carrying one form for a unit; returns the mail id."""
    n = next(_counter)
    with database.session() as s:
        mail, _ = dbm.record_received(
            s,
            source="test",
            uidvalidity=None,
            uid=None,
            message_id=f"<t{n}@unit.example>",
            sha256=hashlib.sha256(f"mail {n}".encode()).hexdigest(),
            raw_path=f"raw/{n}",
            size=100,
            from_addr=sender or f"{unit}@thanhxuan.example",
            subject=f"Biểu {form}",
            received_at=when,
        )
        f = Form(
            form=form,  # type: ignore[arg-type]
            unit=unit,
            year=2022,
            date=None,
            location="Sheet1",
            entries=[
                Entry(
                    "collective" if i % 2 == 0 else "individual",
                    str(i + 1),
                    f"Tập thể {i + 1} của {unit}",
                    fields[i % len(fields)],
                    f"Mô hình {form} số {i + 1} của {unit}",
                    None,
                    f"Sheet1!C{10 + i}",
                )
                for i in range(entries)
            ],
            problems=[
                Problem(
                    "error",
                    "missing-name",
                    f"Sheet1!B{10 + i}",
                    "Dòng này chưa ghi tên tập thể, cá nhân.",
                )
                for i in range(errors)
            ],
            declared_empty=entries == 0 and errors == 0,
        )
        dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code=unit,
            form=f,
            file_name=f"{form}.xlsx",
            file_sha256=mail.sha256,
            received_at=when,
            late=when >= newest_campaign().deadline,
            awaiting_confirmation=awaiting,
        )
        dbm.mark_processed(s, mail, when, unit_code=unit, awaiting_confirmation=awaiting)
        return mail.id


def outbox(database: dbm.Database, kind: str) -> list[dbm.Outbox]:
    with database.session(write=False) as s:
        return list(
            s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == kind).order_by(dbm.Outbox.id))
        )


def parse(raw: bytes) -> EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def unit_of(row: dbm.Outbox) -> str:
    return row.dedupe_key.rsplit(":", 1)[1] if row.dedupe_key else ""
