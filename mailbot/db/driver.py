"""Hot statements run on the SQLite driver's connection, compiled once per database.

A recorded group runs a dozen statements many times a second; through SQLAlchemy's
Connection each costs far more Python (compiled-cache look-up, parameter construction,
the result's set-up) than SQLite spends running it. Here a statement is compiled once per
set of parameter names (and lengths of its expanding INs) into its SQL, where each
positional parameter comes from and the bind processor of its type, and the result
columns' processors; it then runs on the driver's connection of the session's own
transaction: the rows written and read are those SQLAlchemy would write and read.
Elsewhere (PostgreSQL, a session not opened by `Database.session`) the same calls go
through SQLAlchemy.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.selectable import SelectBase

from mailbot.db.common import core

# The key of a session's `info` under which `Database.session` leaves its plans (SQLite).
PLANS_KEY = "mailbot.plans"

_CONSTANT = ""  # a positional parameter's source: a value fixed in the statement

# A one-row INSERT's VALUES, to be repeated for several rows in one statement: SQLite then
# runs one statement for them instead of one per row (each lets the other threads in).
_VALUES = re.compile(r" VALUES (\((?:\?, )*\?\))")
# Rows per INSERT at most, and parameters (SQLite before 3.32 took 999 at most).
_MAX_ROWS, _MAX_PARAMS = 100, 999
# Plans kept at most: a statement built per call (not once, at import) would otherwise
# add one for ever; past this they are compiled again as they come.
_MAX_PLANS = 2048

Processor = Callable[[Any], Any]


@dataclass(frozen=True)
class Plan:
    """A statement compiled for the driver: its SQL, the processors of its result columns
    and, per positional parameter, where its value comes from (the key of the row, with
    the element's index for an expanding IN; "" for a value fixed in the statement, then
    `constant`) and the bind processor of its type (None: passed as it is)."""

    sql: str
    order: tuple[tuple[str, int | None, Any, Processor | None], ...]
    results: tuple[Processor | None, ...] = ()

    def args(self, row: Mapping[str, Any]) -> list[Any]:
        """The positional parameters for one row of values."""
        out: list[Any] = []
        for key, index, constant, proc in self.order:
            if key == _CONSTANT:
                out.append(constant)
                continue
            value = row[key] if index is None else row[key][index]
            out.append(value if proc is None else proc(value))
        return out

    def rows(self, found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Result rows as SQLAlchemy gives them: each column through its type's processor."""
        procs = self.results
        if not any(procs):
            return found
        return [
            tuple(v if p is None else p(v) for p, v in zip(procs, row, strict=True))
            for row in found
        ]


class Plans:
    """The plans of one database (its dialect), by statement, parameter names and the
    lengths of its expanding parameters (an IN of 3 ids is another SQL than one of 4)."""

    def __init__(self, dialect: Dialect) -> None:
        self._dialect = dialect
        self._plans: dict[tuple[Executable, tuple[str, ...], tuple[int, ...]], Plan] = {}
        self._inserts: dict[tuple[str, int], str | None] = {}  # see `insert_sql`

    def get(self, statement: Executable, params: Mapping[str, Any]) -> Plan:
        """The plan of `statement` run with parameters like these (compiled once)."""
        names = tuple(sorted(params))
        lengths = tuple(
            len(v) if isinstance(v, (list, tuple)) else -1 for v in (params[n] for n in names)
        )
        key = (statement, names, lengths)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= _MAX_PLANS:
                self._plans.clear()
            plan = self._plans[key] = compile_plan(self._dialect, statement, params)
        return plan

    def insert_sql(self, plan: Plan, rows: int) -> str | None:
        """The SQL inserting `rows` rows of `plan` (a one-row INSERT) in one statement, their
        parameters one row after the other; None when the plan is no such INSERT."""
        key = (plan.sql, rows)
        if key not in self._inserts:
            if len(self._inserts) >= _MAX_PLANS:
                self._inserts.clear()
            found = list(_VALUES.finditer(plan.sql))
            sql = None
            # Only a plain INSERT whose one VALUES group holds every parameter of the row:
            # anything else (a sub-select, a parameter outside the group) runs row by row.
            if (
                len(found) == 1
                and plan.sql.startswith("INSERT INTO ")
                and found[0].group(1).count("?") == plan.sql.count("?") == len(plan.order)
            ):
                start, end = found[0].span(1)
                many = ", ".join([plan.sql[start:end]] * rows)
                sql = plan.sql[:start] + many + plan.sql[end:]
            self._inserts[key] = sql
        return self._inserts[key]


def _chunks(plan: Plan, rows: Sequence[Mapping[str, Any]]) -> list[Sequence[Mapping[str, Any]]]:
    size = max(1, min(_MAX_ROWS, _MAX_PARAMS // max(1, len(plan.order))))
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def compile_plan(dialect: Dialect, statement: Executable, params: Mapping[str, Any]) -> Plan:
    """Compile a statement without RETURNING for parameters like `params` (their names,
    and the lengths of the lists given to expanding INs).

    An INSERT gets the columns of `params`, as SQLAlchemy compiles it for such rows; a
    column left out gets its scalar default. Anything else (a default computed per row, a
    value rendered into the SQL at execution) is refused: run it through SQLAlchemy.
    """
    assert isinstance(statement, ClauseElement)
    compiled: Any = statement.compile(dialect=dialect, column_keys=sorted(params))
    if compiled.positiontup is None or compiled.effective_returning:
        raise ValueError("the driver runs positional statements without RETURNING only")
    if compiled.literal_execute_params:
        raise ValueError("a value rendered in the SQL at execution: run it through SQLAlchemy")
    defaults: dict[str, Any] = {}
    for column in (*compiled.insert_prefetch, *compiled.update_prefetch):
        default = column.default if column in compiled.insert_prefetch else column.onupdate
        if default is None or not default.is_scalar:
            raise ValueError(f"column {column.key} has a default computed per row")
        defaults[column.key] = default.arg
    # The SQL with each expanding IN as long as the list given.
    state = compiled.construct_expanded_state(dict(params))
    element: dict[str, tuple[str, str, int]] = {}  # an expanded one: its bind, list, index
    for name, expanded in state.parameter_expansion.items():
        bind = compiled.binds[name]
        source = bind.key if bind.key in params else name
        element |= {e: (name, source, i) for i, e in enumerate(expanded)}
    order: list[tuple[str, int | None, Any, Processor | None]] = []
    for name in state.positiontup or ():
        bind = compiled.binds[element[name][0] if name in element else name]
        # The processor SQLAlchemy runs: its dialect's type's (SQLite's DATETIME writes
        # its own string), behind any TypeDecorator of ours.
        proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
        if name in element and element[name][1] in params:
            order.append((element[name][1], element[name][2], None, proc))
        elif name in element:  # an IN of values fixed in the statement
            value = bind.value[element[name][2]]
            order.append((_CONSTANT, None, value if proc is None else proc(value), None))
        elif bind.key in params:
            order.append((bind.key, None, None, proc))
        elif name in params:
            order.append((name, None, None, proc))
        elif name in defaults or (not bind.required and not bind.callable):
            value = defaults.get(name, bind.value)
            order.append((_CONSTANT, None, value if proc is None else proc(value), None))
        else:
            raise ValueError(f"no value for parameter {bind.key!r}")
    results: tuple[Processor | None, ...] = ()
    if isinstance(statement, SelectBase):
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in statement.selected_columns
        )
    return Plan(state.statement, tuple(order), results)


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
    plan = plans.get(statement, rows[0])
    if plans.insert_sql(plan, 1) is None:  # an UPDATE, say
        args = [plan.args(row) for row in rows]
        try:
            raw.executemany(plan.sql, args)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc
        return
    for chunk in _chunks(plan, rows):
        sql = plans.insert_sql(plan, len(chunk))
        assert sql is not None
        flat = [arg for row in chunk for arg in plan.args(row)]
        try:
            raw.execute(sql, flat)
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, flat, exc, sqlite3.Error) from exc


def insert_ids(
    session: Session, statement: Executable, rows: Sequence[Mapping[str, Any]]
) -> list[int] | None:
    """Insert the rows of a plain INSERT into a table with an integer `id` on SQLite's
    driver: their new ids, in the rows' order. None when the session has no driver plans
    (the caller inserts through SQLAlchemy).

    SQLite numbers the rows of a multi-row INSERT in the order of its VALUES, one writer at
    a time: the ids in ascending order are the rows' ids in order, whatever order
    RETURNING gives them in.
    """
    found = _driver(session)
    if found is None:
        return None
    if not rows:
        return []
    plans, raw = found
    plan = plans.get(statement, rows[0])
    ids: list[int] = []
    for chunk in _chunks(plan, rows):
        sql = plans.insert_sql(plan, len(chunk))
        if sql is None or not sql.endswith(")"):  # an ON CONFLICT clause would skip rows
            raise ValueError("insert_ids runs a plain INSERT only")
        sql += " RETURNING id"
        flat = [arg for row in chunk for arg in plan.args(row)]
        try:
            ids.extend(sorted(row[0] for row in raw.execute(sql, flat).fetchall()))
        except sqlite3.Error as exc:
            raise DBAPIError.instance(sql, flat, exc, sqlite3.Error) from exc
    return ids


def fetch_all(
    session: Session, statement: Executable, params: Mapping[str, Any]
) -> Sequence[Sequence[Any]]:
    """The rows of a query run in the session's transaction (as
    `session.connection().execute(statement, params).all()`; on SQLite by the driver)."""
    found = _driver(session)
    if found is None:
        return core(session).execute(statement, dict(params)).all()
    plans, raw = found
    plan = plans.get(statement, params)
    args = plan.args(params)
    try:
        return plan.rows(raw.execute(plan.sql, args).fetchall())
    except sqlite3.Error as exc:
        raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc
