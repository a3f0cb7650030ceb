"""Repository of submissions: forms recorded for units, their versions and entries."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from mailbot.db.common import core
from mailbot.db.driver import fetch_all, insert_ids, run_many
from mailbot.db.models import FORM_TYPES, Mail, Submission, SubmissionEntry
from parsers.model import Form, Problem

_SUBMISSIONS = cast(Table, Submission.__table__)
_ENTRIES = cast(Table, SubmissionEntry.__table__)
_SUPERSEDE_SCOPE = (
    Submission.unit_code == bindparam("b_unit"),
    Submission.form == bindparam("b_form"),
    Submission.status.in_(("valid", "superseded")),
    Submission.awaiting_confirmation.is_(False),
)
_NEWEST_VERSION = (
    select(Submission.id)
    .where(*_SUPERSEDE_SCOPE)
    # Same arrival second: the later mail (ids follow the mailbox's order), not whichever
    # outcome a worker finished first.
    .order_by(Submission.received_at.desc(), Submission.mail_id.desc(), Submission.id.desc())
    .limit(1)
)
# Split in two so each reads only the rows it changes (the valid ones by index, the newest
# by id), not every version of the unit's form ever received.
_SUPERSEDE_OTHERS = (
    update(_SUBMISSIONS)
    .where(
        Submission.status == "valid",
        *_SUPERSEDE_SCOPE,
        Submission.id != bindparam("b_newest"),
    )
    .values(status="superseded")
)
# The same for many pairs at once (executemany: the newest found by a subquery, no IN).
_Other = aliased(Submission)  # the subquery's own rows, not correlated to the UPDATE's
_NEWEST_OF_PAIR = (
    select(_Other.id)
    .where(
        _Other.unit_code == bindparam("b_unit"),
        _Other.form == bindparam("b_form"),
        or_(_Other.status == "valid", _Other.status == "superseded"),
        _Other.awaiting_confirmation.is_(False),
    )
    .order_by(_Other.received_at.desc(), _Other.mail_id.desc(), _Other.id.desc())
    .limit(1)
    .scalar_subquery()
)
# Both halves of the rule in one UPDATE: every other valid version superseded (found by
# the status index), the newest valid again (found by id) if it was superseded.
_SUPERSEDE_AND_REVIVE = (
    update(_SUBMISSIONS)
    .where(
        or_(
            and_(
                Submission.status == "valid",
                Submission.unit_code == bindparam("b_unit"),
                Submission.form == bindparam("b_form"),
                Submission.awaiting_confirmation.is_(False),
                Submission.id != _NEWEST_OF_PAIR,
            ),
            and_(Submission.id == _NEWEST_OF_PAIR, Submission.status == "superseded"),
        )
    )
    .values(status=case((Submission.id == _NEWEST_OF_PAIR, "valid"), else_="superseded"))
)
_REVIVE_NEWEST = (
    update(_SUBMISSIONS)
    .where(Submission.id == bindparam("b_newest"), Submission.status == "superseded")
    .values(status="valid")
)


def resolve_supersede(session: Session, unit_code: str, form: str) -> None:
    """Among confirmed valid versions of unit+form, the newest is valid, the others superseded."""
    # UPDATEs of the rows that change, instead of loading every version (with its JSON)
    # for each new form; statements built once, so SQLAlchemy compiles them once.
    params = {"b_unit": unit_code, "b_form": form}
    newest = session.scalar(_NEWEST_VERSION, params)  # autoflushes pending changes first
    if newest is None:
        return
    conn = session.connection()
    conn.execute(_SUPERSEDE_OTHERS, {**params, "b_newest": newest})
    conn.execute(_REVIVE_NEWEST, {"b_newest": newest})
    _expire_status(session, {(unit_code, form)})


def resolve_supersede_many(session: Session, keys: Iterable[tuple[str, str]]) -> None:
    """`resolve_supersede` for many (unit, form) pairs: one executemany UPDATE, finding
    the newest version by a subquery."""
    wanted = sorted(set(keys))
    if not wanted:
        return
    params = [{"b_unit": u, "b_form": f} for u, f in wanted]
    # Superseding keeps a row among the versions looked at: the newest stays the newest.
    run_many(session, _SUPERSEDE_AND_REVIVE, params)
    _expire_status(session, set(wanted))


def _expire_status(session: Session, keys: set[tuple[str, str]]) -> None:
    """Loaded submissions of these (unit, form) pairs reload their status on next access."""
    for obj in list(session.identity_map.values()):
        # Only loaded state is looked at: an expired (or deleted) row must not be fetched.
        loaded = obj.__dict__
        if (
            isinstance(obj, Submission)
            and "status" in loaded
            and (loaded.get("unit_code"), loaded.get("form")) in keys
        ):
            session.expire(obj, ["status"])


def _submission_values(
    *,
    mail_id: int,
    unit_code: str,
    form: Form,
    file_name: str,
    file_sha256: str,
    received_at: datetime,
    late: bool = False,
    awaiting_confirmation: bool = False,
    extra_problems: Iterable[Problem] = (),
    sent_by: str | None = None,
) -> dict[str, Any]:
    """The submission row for one form (its column values), checked."""
    if form.form not in FORM_TYPES:
        raise ValueError(f"unknown form type {form.form!r}")
    problems = list(form.problems) + list(extra_problems)
    errors = sum(1 for p in problems if p.severity == "error")
    warnings = sum(1 for p in problems if p.severity == "warning")
    return {
        "mail_id": mail_id,
        "unit_code": unit_code,
        "form": form.form,
        "file_name": file_name,
        "file_sha256": file_sha256,
        "received_at": received_at,
        "late": late,
        "status": "invalid" if errors else "valid",
        "entries_count": len(form.entries),
        "errors_count": errors,
        "warnings_count": warnings,
        "awaiting_confirmation": awaiting_confirmation,
        # The contract's JSON plus what the progress needs: an explicit "không đăng ký".
        "result_json": json.dumps(
            {**form.to_json(), "declared_empty": form.declared_empty}, ensure_ascii=False
        ),
        "unit_name_on_form": form.unit,
        "sent_by": sent_by,
    }


def _entry_values(submission_id: int, form: Form) -> list[dict[str, Any]]:
    return [
        {
            "submission_id": submission_id,
            "kind": e.kind,
            "no": e.no,
            "name": e.name,
            "field": e.field,
            "model": e.model,
            "note": e.note,
            "location": e.location,
        }
        for e in form.entries
    ]


def add_submission(
    session: Session,
    *,
    mail_id: int,
    unit_code: str,
    form: Form,
    file_name: str,
    file_sha256: str,
    received_at: datetime,
    late: bool = False,
    awaiting_confirmation: bool = False,
    extra_problems: Iterable[Problem] = (),
    sent_by: str | None = None,
) -> Submission:
    """Record one form with its entries; valid when it has no error.

    A valid, confirmed form supersedes the earlier valid ones of the same unit and form type
    (earlier by reception time, so reprocessing an old mail never demotes a newer form).
    A form awaiting staff confirmation supersedes nothing until it is confirmed.
    `extra_problems` are file-level problems that also judge the form; `sent_by` is the
    registered unit whose address sent it (None when the sender is not registered).
    """
    sub = Submission(
        **_submission_values(
            mail_id=mail_id,
            unit_code=unit_code,
            form=form,
            file_name=file_name,
            file_sha256=file_sha256,
            received_at=received_at,
            late=late,
            awaiting_confirmation=awaiting_confirmation,
            extra_problems=extra_problems,
            sent_by=sent_by,
        )
    )
    session.add(sub)
    session.flush()
    if form.entries:
        # One executemany for the entries, not one ORM object each; `sub.entries` loads them.
        session.execute(insert(_ENTRIES), _entry_values(sub.id, form))
    if sub.status == "valid" and not awaiting_confirmation:
        resolve_supersede(session, unit_code, form.form)
        session.flush()
    return sub


def add_submissions(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """`add_submission` for many forms at once: one INSERT for the forms, one for their
    entries, then the supersede rule once per (unit, form) touched.

    Each row has the keyword arguments of `add_submission`; no ORM object is made.
    """
    if not rows:
        return
    values = [_submission_values(**row) for row in rows]
    ids = insert_ids(session, _INSERT_SUBMISSIONS, values)  # SQLite, by the driver
    if ids is None:
        conn = core(session)
        ids = list(conn.execute(_INSERT_SUBMISSIONS_IN_ORDER, values).scalars())
    entries = [
        e for sub_id, row in zip(ids, rows, strict=True) for e in _entry_values(sub_id, row["form"])
    ]
    run_many(session, _INSERT_ENTRIES, entries)
    resolve_supersede_many(
        session,
        {
            (v["unit_code"], v["form"])
            for v in values
            if v["status"] == "valid" and not v["awaiting_confirmation"]
        },
    )


_INSERT_SUBMISSIONS = insert(_SUBMISSIONS)
_INSERT_SUBMISSIONS_IN_ORDER = insert(_SUBMISSIONS).returning(
    _SUBMISSIONS.c.id, sort_by_parameter_order=True
)
_INSERT_ENTRIES = insert(_ENTRIES)


def confirm_submission(session: Session, submission: Submission) -> None:
    """Staff confirmed who sent it: the form now counts (and may supersede older ones)."""
    submission.awaiting_confirmation = False
    session.flush()
    resolve_supersede(session, submission.unit_code, submission.form)
    session.flush()


def latest_valid_submission(
    session: Session, unit_code: str, form: str, *, include_unconfirmed: bool = False
) -> Submission | None:
    """The form version that counts for a unit: the newest valid (confirmed) one."""
    query = select(Submission).where(
        Submission.unit_code == unit_code,
        Submission.form == form,
        Submission.status == "valid",
    )
    if not include_unconfirmed:
        query = query.where(Submission.awaiting_confirmation.is_(False))
    query = query.order_by(
        Submission.received_at.desc(), Submission.mail_id.desc(), Submission.id.desc()
    )
    return session.scalars(query).first()


def latest_submission(session: Session, unit_code: str, form: str) -> Submission | None:
    """The newest version of a unit's form whatever its state (valid, invalid, unconfirmed)."""
    return session.scalars(
        select(Submission)
        .where(Submission.unit_code == unit_code, Submission.form == form)
        .order_by(Submission.received_at.desc(), Submission.mail_id.desc(), Submission.id.desc())
    ).first()


def submissions_for_mail(session: Session, mail_id: int) -> list[Submission]:
    """The forms recorded from one mail."""
    return list(
        session.scalars(
            select(Submission).where(Submission.mail_id == mail_id).order_by(Submission.id)
        )
    )


def submissions_since(session: Session, since: datetime) -> list[Submission]:
    """Forms received since a moment (for the digest's "what arrived")."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.received_at >= since)
            .order_by(Submission.received_at, Submission.mail_id, Submission.id)
        )
    )


# --------------------------------------------------------------------------- the unit register


# --------------------------------------------------------------------------- campaign views


def get_submission(session: Session, submission_id: int) -> Submission | None:
    """One recorded form by id."""
    return session.get(Submission, submission_id)


def submission_versions(
    session: Session, until: datetime | None = None
) -> list[tuple[Submission, str | None]]:
    """Every recorded form with its mail's sender, newest first; only those received by `until`."""
    query = (
        select(Submission, Mail.from_addr)
        .join(Mail, Mail.id == Submission.mail_id)
        .order_by(Submission.received_at.desc(), Submission.mail_id.desc(), Submission.id.desc())
    )
    if until is not None:
        query = query.where(Submission.received_at <= until)
    return [(sub, addr) for sub, addr in session.execute(query)]


def submissions_received(
    session: Session, since: datetime | None, until: datetime
) -> list[Submission]:
    """Forms received from `since` (or the start) up to `until`, oldest first."""
    query = select(Submission).where(Submission.received_at <= until)
    if since is not None:
        query = query.where(Submission.received_at >= since)
    return list(
        session.scalars(query.order_by(Submission.received_at, Submission.mail_id, Submission.id))
    )


def entry_fields(session: Session, submission_ids: Iterable[int]) -> list[tuple[str, str]]:
    """(form, field) of every entry of these submissions, for counts per level and field."""
    ids = list(submission_ids)
    if not ids:
        return []
    rows = session.execute(
        select(Submission.form, SubmissionEntry.field)
        .join(SubmissionEntry, SubmissionEntry.submission_id == Submission.id)
        .where(Submission.id.in_(ids))
    )
    return [(form, fld) for form, fld in rows]


def mails_awaiting_confirmation(session: Session) -> list[Mail]:
    """Processed mails whose forms wait for staff to confirm the sender, oldest first."""
    return list(
        session.scalars(
            select(Mail)
            .where(Mail.awaiting_confirmation.is_(True), Mail.status == "processed")
            .order_by(Mail.id)
        )
    )


def all_submissions(session: Session) -> list[Submission]:
    """Every recorded form version, in the order they were recorded."""
    return list(session.scalars(select(Submission).order_by(Submission.id)))


def forms_on_file(session: Session, forms: Iterable[str]) -> dict[str, frozenset[str]]:
    """Per unit, which of these form types it has a valid, confirmed version of: one query."""
    on_file: dict[str, set[str]] = {}
    rows = session.execute(
        select(Submission.unit_code, Submission.form)
        .where(
            Submission.status == "valid",
            Submission.awaiting_confirmation.is_(False),
            Submission.form.in_(list(forms)),
        )
        .distinct()
    )
    for unit_code, form in rows:
        on_file.setdefault(unit_code, set()).add(form)
    return {code: frozenset(found) for code, found in on_file.items()}


def forms_not_counted(session: Session, forms: Iterable[str]) -> dict[str, dict[str, str]]:
    """Per unit, the forms received but not counting: {"M2": "errors" | "awaiting"}.

    A form with a valid, confirmed version is left out (it counts); one that only has versions
    with errors is "errors"; one with a version awaiting confirmation is "awaiting". Receipts
    name these instead of calling them missing ("Còn thiếu" is for forms never received).
    """
    held = forms_on_file(session, forms)
    out: dict[str, dict[str, str]] = {}
    rows = session.execute(
        select(Submission.unit_code, Submission.form, Submission.status)
        .where(Submission.form.in_(list(forms)))
        .add_columns(Submission.awaiting_confirmation)
        .distinct()
    )
    for unit_code, form, status, awaiting in rows:
        if form in held.get(unit_code, frozenset()) or status == "superseded":
            continue
        state = "errors" if status == "invalid" else "awaiting" if awaiting else None
        if state is None:
            continue
        # Awaiting confirmation says more than an older version with errors.
        if out.setdefault(unit_code, {}).get(form) != "awaiting":
            out[unit_code][form] = state
    return out


def _counting_versions_query(of_units: bool) -> Select[Any]:
    """The newest valid, confirmed version per (unit, form) (a window) with its entries;
    `of_units`: only the units of the expanding parameter `b_units`."""
    ranked = select(
        Submission.id,
        Submission.unit_code,
        Submission.form,
        Submission.received_at,
        func.row_number()
        .over(
            partition_by=(Submission.unit_code, Submission.form),
            order_by=(
                Submission.received_at.desc(),
                Submission.mail_id.desc(),
                Submission.id.desc(),
            ),
        )
        .label("rank"),
    ).where(Submission.status == "valid", Submission.awaiting_confirmation.is_(False))
    if of_units:
        ranked = ranked.where(Submission.unit_code.in_(bindparam("b_units", expanding=True)))
    newest = ranked.subquery()
    return (
        select(
            newest.c.unit_code,
            newest.c.form,
            newest.c.received_at,
            SubmissionEntry.name,
            SubmissionEntry.model,
            SubmissionEntry.id,
        )
        .select_from(
            newest.outerjoin(SubmissionEntry, SubmissionEntry.submission_id == newest.c.id)
        )
        .where(newest.c.rank == 1)
        .order_by(newest.c.id, SubmissionEntry.id)
    )


# Built once: recording a group asks twice, and building the window costs more than running it.
_COUNTING_VERSIONS = _counting_versions_query(of_units=False)
_COUNTING_VERSIONS_OF_UNITS = _counting_versions_query(of_units=True)


def counting_versions(
    session: Session, keys: Iterable[tuple[str, str]] | None = None
) -> dict[tuple[str, str], tuple[datetime, list[tuple[str | None, str]]]]:
    """The version that counts per (unit, form): its reception time and (name, model) rows.

    All units when `keys` is None, else only those (unit code, form) pairs. One query.
    """
    wanted = None if keys is None else set(keys)
    rows: Sequence[Sequence[Any]]
    if wanted is None:
        rows = session.execute(_COUNTING_VERSIONS).all()
    elif not wanted:
        return {}
    else:
        units = sorted({u for u, _ in wanted})
        rows = fetch_all(session, _COUNTING_VERSIONS_OF_UNITS, {"b_units": units})
    out: dict[tuple[str, str], tuple[datetime, list[tuple[str | None, str]]]] = {}
    for unit_code, form, received_at, name, model, entry_id in rows:
        key = (unit_code, form)
        if wanted is not None and key not in wanted:
            continue
        version = out.setdefault(key, (received_at, []))
        if entry_id is not None:
            version[1].append((name, model))
    return out


def replacements(
    session: Session, since: datetime | None, until: datetime
) -> list[tuple[Submission, Submission]]:
    """(new, earlier) for each counting version received in the window that replaced another."""
    out: list[tuple[Submission, Submission]] = []
    for sub in submissions_received(session, since, until):
        if sub.status not in ("valid", "superseded") or sub.awaiting_confirmation:
            continue
        earlier = session.scalars(
            select(Submission)
            .where(
                Submission.unit_code == sub.unit_code,
                Submission.form == sub.form,
                Submission.status.in_(("valid", "superseded")),
                Submission.awaiting_confirmation.is_(False),
                (Submission.received_at < sub.received_at)
                | ((Submission.received_at == sub.received_at) & (Submission.id < sub.id)),
            )
            .order_by(
                Submission.received_at.desc(), Submission.mail_id.desc(), Submission.id.desc()
            )
        ).first()
        if earlier is not None:
            out.append((sub, earlier))
    return out


def unit_versions(session: Session, unit_code: str) -> list[tuple[Submission, str | None]]:
    """Every version recorded for one unit with its mail's sender address, oldest first."""
    return [
        (sub, addr)
        for sub, addr in session.execute(
            select(Submission, Mail.from_addr)
            .join(Mail, Mail.id == Submission.mail_id)
            .where(Submission.unit_code == unit_code)
            .order_by(Submission.form, Submission.received_at, Submission.mail_id, Submission.id)
        )
    ]
