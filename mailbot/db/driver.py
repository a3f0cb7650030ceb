"""Hot statements run on the SQLite driver's connection, compiled once per database.

A recorded group runs a dozen statements many times a second; through SQLAlchemy's
Connection each costs far more Python (compiled-cache look-up, parameter construction,
the result's set-up) than SQLite spends running it. Here a statement is compiled once per
set of parameter names into its SQL, the positional order of its parameters and the bind
processors of their types, and then run on the driver's connection of the session's own
transaction: the rows written are those SQLAlchemy would write. Elsewhere (PostgreSQL, a
session not opened by `Database.session`) the same calls go through SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ClauseElement

from mailbot.db.common import core

# The key of a session's `info` under which `Database.session` leaves its plans (SQLite).
PLANS_KEY = "mailbot.plans"

_CONSTANT = ""  # a positional parameter's source: a value fixed in the statement


@dataclass(frozen=True)
class Plan:
    """A statement compiled for the driver: its SQL and, per positional parameter, the key
    of the row it is read from ("" for a value fixed in the statement, then `constant`) and
    the bind processor of its type (None: passed as it is)."""

    sql: str
    order: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]

    def args(self, row: Mapping[str, Any]) -> list[Any]:
        """The positional parameters for one row of values."""
        return [
            constant if key == _CONSTANT else row[key] if proc is None else proc(row[key])
            for key, constant, proc in self.order
        ]


class Plans:
    """The plans of one database (its dialect), by statement and parameter names."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[tuple[Executable, tuple[str, ...]], Plan] = {}

    def get(self, statement: Executable, keys: Sequence[str]) -> Plan:
        """The plan of `statement` run with parameters of these names (compiled once)."""
        names = tuple(sorted(keys))
        plan = self._plans.get((statement, names))
        if plan is None:
            plan = self._plans[(statement, names)] = compile_plan(self._dialect, statement, names)
        return plan


def compile_plan(dialect: Dialect, statement: Executable, keys: Sequence[str]) -> Plan:
    """Compile a plain DML statement (no expanding IN, no RETURNING) for rows with `keys`.

    An INSERT gets the columns of `keys`, as SQLAlchemy compiles it for such rows; a column
    left out gets its scalar default. Anything else (a default computed per row, a value
    the statement computes in Python) is refused: run it through SQLAlchemy.
    """
    assert isinstance(statement, ClauseElement)
    compiled: Any = statement.compile(dialect=dialect, column_keys=list(keys))
    if compiled.positiontup is None or compiled.post_compile_params or compiled.effective_returning:
        raise ValueError("the driver runs plain positional statements only")
    defaults: dict[str, Any] = {}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            raise ValueError(f"column {column.key} has a default computed per row")
        defaults[column.key] = default.arg
    wanted = set(keys)
    order: list[tuple[str, Any, Callable[[Any], Any] | None]] = []
    for name in compiled.positiontup:
        bind = compiled.binds[name]
        proc = bind.type.bind_processor(dialect)
        if bind.key in wanted:
            order.append((bind.key, None, proc))
        elif name in wanted:
            order.append((name, None, proc))
        elif name in defaults or (not bind.required and not bind.callable):
            value = defaults.get(name, bind.value)
            order.append((_CONSTANT, value if proc is None else proc(value), None))
        else:
            raise ValueError(f"no value for parameter {bind.key!r}")
    return Plan(str(compiled), tuple(order))


def _driver(session: Session) -> tuple[Plans, sqlite3.Connection] | None:
    """The session's plans and its driver connection (ORM changes flushed first); None
    when the session has no plans (not SQLite, or not opened by `Database.session`)."""
    plans = session.info.get(PLANS_KEY)
    if plans is None:
        return None
    raw = core(session).connection.driver_connection
    assert isinstance(raw, sqlite3.Connection)
    return plans, raw


def run_many(session: Session, statement: Executable, rows: Sequence[Mapping[str, Any]]) -> None:
    """Run a plain INSERT or UPDATE once per row, in the session's transaction (as
    `session.connection().execute(statement, rows)` would; on SQLite by the driver)."""
    if not rows:
        return
    found = _driver(session)
    if found is None:
        core(session).execute(statement, [dict(r) for r in rows])
        return
    plans, raw = found
    plan = plans.get(statement, list(rows[0]))
    args = [plan.args(row) for row in rows]
    try:
        raw.executemany(plan.sql, args)
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc


def insert_each(
    session: Session, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> list[int] | None:
    """Insert the rows one by one on SQLite's driver, in order: their new ids, in order.

    None when the session has no driver plans (the caller inserts through SQLAlchemy)."""
    found = _driver(session)
    if found is None:
        return None
    if not rows:
        return []
    plans, raw = found
    plan = plans.get(statement, list(rows[0]))
    ids: list[int] = []
    cursor = raw.cursor()
    try:
        for row in rows:
            args = plan.args(row)
            try:
                cursor.execute(plan.sql, args)
            except sqlite3.Error as exc:
                raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc
            assert cursor.lastrowid is not None
            ids.append(cursor.lastrowid)
    finally:
        cursor.close()
    return ids
