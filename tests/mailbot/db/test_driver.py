"""Statements on the SQLite driver write and read what SQLAlchemy writes and reads."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.exc import IntegrityError

from mailbot import db as dbm
from mailbot.db import Database, Event
from mailbot.db.decided import _MAILS_WITH_ROUNDS
from mailbot.db.driver import PLANS_KEY, Plans, compile_plan
from tests.mailbot.db.support import T0, receive

_EVENTS = cast(Table, Event.__table__)


def _dump(database: Database, table: str) -> list[tuple[Any, ...]]:
    """Every row with each value's SQLite type: the bytes on file, not what Python reads."""
    assert database.path is not None
    con = sqlite3.connect(database.path)
    try:
        cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
        sel = ", ".join(f"typeof({c}), {c}" for c in cols if c != "id")
        return con.execute(f"SELECT {sel} FROM {table} ORDER BY id").fetchall()
    finally:
        con.close()


def _events(mail_id: int) -> list[dict[str, Any]]:
    # Whole seconds (no fraction written by a naive adapter), an aware time, None, Unicode.
    return [
        {"at": T0, "kind": "note", "mail_id": mail_id, "unit_code": None, "detail": "Lưu ý"},
        {
            "at": T0 + timedelta(microseconds=7),
            "kind": "note",
            "mail_id": None,
            "unit_code": "p-kim-giang",
            "detail": None,
        },
    ]


def test_rows_written_by_the_driver_are_those_sqlalchemy_writes(database: Database) -> None:
    if not database.is_sqlite:
        pytest.skip("the driver is SQLite's")
    with database.session() as s:
        mail_id = receive(s).id
    rows = _events(mail_id) * 125  # over two INSERTs of many rows and one of a few
    with database.session() as s:
        assert PLANS_KEY in s.info
        s.connection().execute(insert(_EVENTS), rows)
    by_sqlalchemy = _dump(database, "events")
    with database.session() as s:
        dbm.run_many(s, insert(_EVENTS), rows)
    assert _dump(database, "events")[len(rows) :] == by_sqlalchemy
    assert by_sqlalchemy[0][1] == "2022-02-10 01:00:00.000000"
    # An UPDATE runs once per row.
    mark = update(_EVENTS).where(_EVENTS.c.id == bindparam("b_id")).values(kind="seen")
    with database.session() as s:
        dbm.run_many(s, mark, [{"b_id": 1}, {"b_id": 3}])
        kinds = s.scalars(select(Event.kind).where(Event.id < 5).order_by(Event.id)).all()
    assert kinds == ["seen", "note", "seen", "note"]


def test_queries_read_what_sqlalchemy_reads_for_any_length_of_in(database: Database) -> None:
    with database.session() as s:
        ids = [receive(s, uid=n, sha=f"{n:064x}").id for n in range(1, 4)]
        dbm.add_events(s, [{"kind": "reprocess", "at": T0, "mail_id": ids[1]}])
    for wanted in ([], ids[:1], ids, [*ids, 999]):
        with database.session(write=False) as s:
            expected = list(s.connection().execute(_MAILS_WITH_ROUNDS, {"b_ids": wanted}).all())
            found = dbm.fetch_all(s, _MAILS_WITH_ROUNDS, {"b_ids": wanted})
        assert [tuple(r) for r in found] == [tuple(r) for r in expected]
        assert all(r[4].tzinfo is UTC and isinstance(r[9], bool) for r in found)
    assert [r[-1] for r in expected] == [0, 1, 0]


def test_the_ids_of_rows_inserted_one_by_one_follow_their_order(database: Database) -> None:
    with database.session() as s:
        ids = dbm.insert_ids(s, insert(_EVENTS), _events(None) * 150)  # type: ignore[arg-type]
        if ids is None:  # a server: the caller inserts through SQLAlchemy
            assert not database.is_sqlite
            return
        rows = s.execute(select(Event.id, Event.at).order_by(Event.id)).all()
    assert ids == [r.id for r in rows] and len(ids) == 300 and rows[0].at == T0


def test_a_driver_error_is_raised_as_sqlalchemys(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as s:  # no such mail
        dbm.run_many(s, insert(_EVENTS), _events(12345))
    with database.session() as s:
        assert s.scalars(select(Event)).all() == []  # rolled back


def test_what_the_driver_cannot_run_as_sqlalchemy_would_is_refused(database: Database) -> None:
    if not database.is_sqlite:
        pytest.skip("the driver is SQLite's")
    dialect = database.engine.dialect
    with pytest.raises(ValueError, match="RETURNING"):
        compile_plan(dialect, insert(_EVENTS).returning(_EVENTS.c.id), _events(1)[0])
    stamped = Table(
        "stamped",
        MetaData(),
        Column("id", Integer, primary_key=True),
        Column("at", DateTime, default=lambda: datetime.now(UTC)),  # computed per row
        Column("kind", Text, default="note"),  # the same for every row
    )
    with pytest.raises(ValueError, match="per row"):
        compile_plan(dialect, insert(stamped), {"kind": "x"})
    plan = compile_plan(dialect, insert(stamped), {"at": T0})
    assert [(key, value) for key, _, value, _ in plan.order] == [("at", None), ("", "note")]
    plans = Plans(dialect)
    statement = insert(_EVENTS)
    assert plans.get(statement, _events(1)[0]) is plans.get(statement, _events(2)[0])
    # An IN of another length is another SQL.
    one = plans.get(_MAILS_WITH_ROUNDS, {"b_ids": [1]})
    two = plans.get(_MAILS_WITH_ROUNDS, {"b_ids": [1, 2]})
    # The event kind the subquery counts is fixed in the statement; then each id of the IN.
    assert [(key, index) for key, index, _, _ in one.order] == [("", None), ("b_ids", 0)]
    assert [(key, index) for key, index, _, _ in two.order][1:] == [("b_ids", 0), ("b_ids", 1)]
    # An IN of values fixed in the statement is part of the plan.
    fixed = select(Event.id).where(Event.kind.in_(["note", "seen"]), Event.id > bindparam("b"))
    plan = plans.get(fixed, {"b": 1})
    assert [(k, v) for k, _, v, _ in plan.order] == [("", "note"), ("", "seen"), ("b", None)]


def test_plans_stay_few_whatever_statements_come(monkeypatch: pytest.MonkeyPatch) -> None:
    from mailbot.db import driver

    monkeypatch.setattr(driver, "_MAX_PLANS", 3)
    plans = Plans(sqlite_dialect.dialect())
    for n in range(1, 8):  # an IN of each length is a plan of its own
        plan = plans.get(_MAILS_WITH_ROUNDS, {"b_ids": list(range(n))})
        assert plan.sql.count("?") == n + 1
        assert len(plans._plans) <= 3


def test_only_a_plain_one_group_insert_is_repeated_for_many_rows() -> None:
    plans = Plans(sqlite_dialect.dialect())
    row = {"at": T0, "kind": "note", "mail_id": 1, "unit_code": None, "detail": None}
    plain = plans.get(insert(_EVENTS), row)
    many = plans.insert_sql(plain, 3)
    assert many is not None and many.count("?") == 3 * plain.sql.count("?")
    assert many.startswith(plain.sql.split(" VALUES ")[0])
    # An INSERT from a SELECT has no VALUES to repeat; an UPDATE is no INSERT at all.
    chosen = select(_EVENTS.c.at, _EVENTS.c.kind).where(_EVENTS.c.id == bindparam("b_id"))
    from_select = insert(_EVENTS).from_select(["at", "kind"], chosen)
    assert plans.insert_sql(plans.get(from_select, {"b_id": 1}), 3) is None
    mark = update(_EVENTS).where(_EVENTS.c.id == bindparam("b_id")).values(kind="seen")
    assert plans.insert_sql(plans.get(mark, {"b_id": 1}), 3) is None
    # A parameter after the VALUES group (an upsert's SET) would not follow each row.
    upsert = sqlite_dialect.insert(_EVENTS).on_conflict_do_update(
        index_elements=["id"], set_={"detail": bindparam("b_detail")}
    )
    plan = plans.get(upsert, {**row, "b_detail": "x"})
    assert " VALUES (" in plan.sql and plans.insert_sql(plan, 3) is None
