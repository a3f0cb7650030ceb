"""Builders shared by the database tests: a received mail, a form, a unit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.db import Mail
from parsers.model import Entry, Form, Problem

T0 = datetime(2022, 2, 10, 1, 0, tzinfo=UTC)


def receive(session: Session, uid: int | None = 1, sha: str = "a" * 64, **kw: Any) -> Mail:
    """Record a mail as received (defaults: an IMAP mail of unit@example.org); returns it."""
    args = dict(
        source="imap://mail.example/INBOX",
        uidvalidity=7,
        uid=uid,
        message_id="<m1@example.org>",
        sha256=sha,
        raw_path=f"raw/{sha[:2]}/{sha[2:]}.eml",
        size=123,
        from_addr="Unit@Example.org",
        subject="Mẫu 01",
        received_at=T0,
    )
    args.update(kw)
    mail, _ = dbm.record_received(session, **args)
    return mail


def make_form(form: str = "M1", errors: int = 0, entries: int = 2) -> Form:
    """A parsed form with `entries` entries and `errors` errors."""
    probs = [Problem("error", "missing-model", "Sheet1!E9", "Thiếu tên mô hình.")] * errors
    ents = [
        Entry(
            "collective",
            str(i + 1),
            f"Chi bộ {i + 1}",
            "economy",
            f"Mô hình {i + 1}",
            None,
            f"Sheet1!D{9 + i}",
        )
        for i in range(entries)
    ]
    return Form(
        form=form,
        unit="Đảng ủy phường Khương Trung",
        year=2022,
        date=None,  # type: ignore[arg-type]
        location="Sheet1",
        entries=ents,
        problems=probs,
    )


def add_unit(session: Session, code: str = "KT") -> None:
    """A unit of the register with one confirmed address."""
    dbm.upsert_unit(
        session, code=code, name=f"Đơn vị {code}", emails=[f"{code.lower()}@example.org"], now=T0
    )
