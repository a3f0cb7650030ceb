"""Repository of the unit register and its addresses."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from mailbot.db.common import _norm_addr
from mailbot.db.jobs import add_event
from mailbot.db.mails import confirm_awaiting
from mailbot.db.models import Unit, UnitEmail, utcnow
from mailbot.db.submissions import confirm_submission, submissions_for_mail


class UnitRecord(NamedTuple):
    """A unit as the register shows it."""

    code: str
    name: str
    emails: tuple[str, ...]
    aliases: tuple[str, ...]
    forms: tuple[str, ...] = ()  # the forms the unit must send; empty: the campaign decides
    parent: str | None = None
    group: str | None = None  # a key of mailbot.units.UNIT_GROUPS; None: guessed from the name
    order: int | None = None  # the unit's place in its group


def upsert_unit(
    session: Session,
    *,
    code: str,
    name: str,
    emails: Iterable[str] = (),
    aliases: Iterable[str] = (),
    now: datetime | None = None,
    source: str = "import",
    forms: Iterable[str] | None = None,
    parent: str | None = None,
    group: str | None = None,
    order: int | None = None,
    keep: Iterable[str] = (),
) -> Unit:
    """Insert or update a unit by code; its addresses become confirmed senders for it.

    Addresses this source gave the unit earlier but no longer lists are dropped; addresses
    added another way (e.g. confirmed by staff) are kept. `forms` (e.g. ("M2",)) are the
    forms the unit must send; empty or None leaves it to the campaign. `keep` names fields
    ("parent", "group", "order") an existing unit keeps: the register file had no such column.
    """
    kept = set(keep)
    now = now or utcnow()
    code = code.strip()
    if not code:
        raise ValueError("a unit needs a code")
    unit = session.get(Unit, code)
    alias_list = [a.strip() for a in aliases if a and a.strip()]
    owed = ";".join(f.strip().upper() for f in forms or () if f and f.strip()) or None
    if unit is None:
        unit = Unit(
            code=code,
            name=name.strip(),
            aliases=json.dumps(alias_list, ensure_ascii=False),
            forms=owed,
            parent=parent or None,
            group=group or None,
            order=order,
            created_at=now,
            updated_at=now,
        )
        session.add(unit)
        session.flush()
    else:
        unit.name = name.strip()
        unit.aliases = json.dumps(alias_list, ensure_ascii=False)
        unit.forms = owed
        if "parent" not in kept:
            unit.parent = parent or None
        if "group" not in kept:
            unit.group = group or None
        if "order" not in kept:
            unit.order = order
        unit.updated_at = now
    wanted = {_norm_addr(e) for e in emails if e and e.strip()}
    for ue in list(unit.emails):
        # unit_code: a row just moved to another unit may still sit in this collection.
        if ue.source == source and ue.email not in wanted and ue.unit_code == code:
            unit.emails.remove(ue)
    session.flush()
    for addr in sorted(wanted):
        add_unit_email(session, addr, code, confirmed=True, now=now, source=source)
    session.flush()
    return unit


def add_unit_email(
    session: Session,
    email: str,
    unit_code: str,
    *,
    confirmed: bool,
    now: datetime | None = None,
    source: str = "review",
) -> UnitEmail:
    """Attach an address to a unit.

    A confirmed address may move to another unit; an unconfirmed one never displaces or
    downgrades a confirmed mapping (the existing row is returned unchanged).
    """
    now = now or utcnow()
    addr = _norm_addr(email)
    row = session.get(UnitEmail, addr)
    if row is None:
        row = UnitEmail(
            email=addr, unit_code=unit_code, confirmed=confirmed, added_at=now, source=source
        )
        session.add(row)
    elif confirmed:
        if row.unit_code != unit_code:
            row.unit_code = unit_code
            row.added_at = now
        row.confirmed = True
        row.source = source
    elif not row.confirmed and row.unit_code != unit_code:
        row.unit_code = unit_code
        row.added_at = now
        row.source = source
    session.flush()
    return row


def unit_for_address(session: Session, email: str) -> tuple[str, bool] | None:
    """(unit code, confirmed) for a sender address, or None when the address is unknown."""
    row = session.get(UnitEmail, _norm_addr(email))
    return None if row is None else (row.unit_code, row.confirmed)


def confirm_sender(
    session: Session, email: str, unit_code: str, now: datetime | None = None
) -> int:
    """Staff confirm an address for a unit; its waiting mails and forms then count.

    Returns how many submissions were confirmed.
    """
    now = now or utcnow()
    addr = _norm_addr(email)
    add_unit_email(session, addr, unit_code, confirmed=True, now=now, source="review")
    count = 0
    for mail in confirm_awaiting(session, addr, unit_code):
        for sub in submissions_for_mail(session, mail.id):
            if sub.awaiting_confirmation and sub.unit_code == unit_code:
                confirm_submission(session, sub)
                count += 1
    add_event(session, "sender-confirmed", at=now, unit_code=unit_code, detail=addr)
    return count


def address_owners(session: Session, emails: Iterable[str]) -> dict[str, tuple[str, str]]:
    """The unit (code, name) each of these addresses is confirmed for, where it is."""
    addrs = sorted({_norm_addr(e) for e in emails if e and e.strip()})
    out: dict[str, tuple[str, str]] = {}
    for start in range(0, len(addrs), 500):  # stay under SQLite's bound-parameter limit
        rows = session.execute(
            select(UnitEmail.email, Unit.code, Unit.name)
            .join(Unit, Unit.code == UnitEmail.unit_code)
            .where(UnitEmail.email.in_(addrs[start : start + 500]), UnitEmail.confirmed)
        )
        out.update({email: (code, name) for email, code, name in rows})
    return out


def count_units(session: Session) -> int:
    """How many units the register holds."""
    return int(session.scalar(select(func.count()).select_from(Unit)) or 0)


def get_unit(session: Session, code: str) -> Unit | None:
    """One unit by code."""
    return session.get(Unit, code)


def unit_register(session: Session) -> list[UnitRecord]:
    """Every unit with its confirmed addresses and aliases, ordered by code."""
    out: list[UnitRecord] = []
    # The addresses of all units in one more SELECT, not one lazy load per unit (two thirds
    # of the register's loading, paid before a pass's first mail is handed out).
    query = select(Unit).options(selectinload(Unit.emails)).order_by(Unit.code)
    for unit in session.scalars(query):
        emails = tuple(sorted(e.email for e in unit.emails if e.confirmed))
        out.append(
            UnitRecord(
                unit.code,
                unit.name,
                emails,
                tuple(unit.alias_list),
                unit.form_list,
                unit.parent,
                unit.group,
                unit.order,
            )
        )
    return out


# --------------------------------------------------------------------------- the outbox


def forget_unconfirmed_address(session: Session, email: str) -> bool:
    """Drop an address staff never confirmed (a rejected sender); True when one was dropped."""
    row = session.get(UnitEmail, _norm_addr(email))
    if row is None or row.confirmed:
        return False
    session.delete(row)
    session.flush()
    return True
