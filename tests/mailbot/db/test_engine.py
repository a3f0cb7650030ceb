"""The engine: pragmas on every connection, UTC datetimes, transactions, write locking."""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Mail,
    Outbox,
    open_database,
)
from tests.mailbot.db.support import receive


def test_every_connection_has_wal_full_sync_busy_timeout_and_foreign_keys(tmp_path: Path) -> None:
    db = open_database(tmp_path, busy_timeout_ms=4321)
    try:
        # Two sessions at once use two pooled connections: both must be configured.
        with db.session(write=False) as a, db.session(write=False) as b:
            conns = {
                id(a.connection().connection.dbapi_connection),
                id(b.connection().connection.dbapi_connection),
            }
            assert len(conns) == 2
            for s in (a, b):
                assert s.execute(text("PRAGMA journal_mode")).scalar() == "wal"
                assert s.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
                assert s.execute(text("PRAGMA busy_timeout")).scalar() == 4321
                assert s.execute(text("PRAGMA foreign_keys")).scalar() == 1
                # Readers get a real (deferred) transaction too: one consistent snapshot.
                assert s.connection().connection.dbapi_connection.in_transaction
    finally:
        db.dispose()
    # WAL is recorded in the file itself, as any other SQLite client sees it.
    raw = sqlite3.connect(tmp_path / "mailbot.sqlite3")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        raw.close()


def test_foreign_keys_are_enforced(database: Database) -> None:
    with pytest.raises(IntegrityError), database.session() as s:
        dbm.add_file_result(s, mail_id=999, file_name="x.xlsx", format="xlsx")


def test_naive_datetimes_are_refused_and_aware_ones_come_back_in_utc(database: Database) -> None:
    with pytest.raises(Exception, match="naive datetime"), database.session() as s:
        receive(s, received_at=datetime(2022, 2, 10, 8, 0))
    hanoi = timezone(timedelta(hours=7))
    with database.session() as s:
        mail = receive(s, received_at=datetime(2022, 2, 10, 8, 0, tzinfo=hanoi))
        mail_id = mail.id
    with database.session(write=False) as s:
        got = s.get(Mail, mail_id)
        assert got is not None
        assert got.received_at == datetime(2022, 2, 10, 1, 0, tzinfo=UTC)
        assert got.received_at.tzinfo is UTC


def test_session_rolls_back_everything_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        mail = receive(s)
        dbm.queue_outgoing(
            s,
            kind="receipt",
            message_id="<r1@mailbot.invalid>",
            to_addrs=["unit@example.org"],
            subject="Re: x",
            raw=b"x",
            mail_id=mail.id,
            dedupe_key="receipt:1",
        )
        raise RuntimeError("crash between queueing and commit")
    with database.session(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Mail)) == 0
        assert s.scalar(select(func.count()).select_from(Outbox)) == 0


# --------------------------------------------------------------------------- BEGIN IMMEDIATE


def test_a_write_session_holds_the_write_lock_from_begin(tmp_path: Path) -> None:
    first = open_database(tmp_path)
    second = open_database(tmp_path, busy_timeout_ms=200)
    try:
        with first.session() as s1:
            s1.execute(text("SELECT 1"))  # no write yet: BEGIN IMMEDIATE already took the lock
            started = time.monotonic()
            with (
                pytest.raises(OperationalError, match="database is locked"),
                second.session() as s2,
            ):
                s2.execute(text("SELECT 1"))
            assert time.monotonic() - started >= 0.15  # it waited for the busy timeout
            # Readers are never blocked by the writer (WAL).
            with second.session(write=False) as r:
                assert r.scalar(select(func.count()).select_from(Mail)) == 0
    finally:
        first.dispose()
        second.dispose()


def test_two_writers_serialise_instead_of_failing_on_lock_upgrade(tmp_path: Path) -> None:
    first = open_database(tmp_path)
    second = open_database(tmp_path, busy_timeout_ms=5000)
    inside = threading.Event()
    errors: list[BaseException] = []

    def slow_writer() -> None:
        try:
            with first.session() as s:
                s.scalar(select(func.count()).select_from(Mail))
                receive(s, uid=1)
                inside.set()
                time.sleep(0.4)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
            inside.set()

    thread = threading.Thread(target=slow_writer)
    thread.start()
    try:
        assert inside.wait(5)
        # Read-then-write, the pattern that deadlocks with deferred transactions.
        with second.session() as s:
            seen = s.scalar(select(func.count()).select_from(Mail))
            receive(s, uid=2, sha="b" * 64)
        thread.join()
        assert errors == []
        assert seen == 1  # it waited for the first writer's commit, then saw its row
        with second.session(write=False) as s:
            assert sorted(s.scalars(select(Mail.uid))) == [1, 2]
    finally:
        thread.join()
        first.dispose()
        second.dispose()


SQLITE_ONLY = """
import sys
from pathlib import Path
from mailbot import db as dbm
from mailbot.db.models import utcnow
database = dbm.open_database(Path(sys.argv[1]))
with database.session() as s:
    dbm.queue_outgoing_many(s, [dict(kind="receipt", message_id="<k@example.org>",
                                     to_addrs=["a@example.org"], subject="x",
                                     raw=b"x", mail_id=None, dedupe_key="k", now=utcnow())])
database.dispose()
print(sorted(m for m in sys.modules if m.startswith("sqlalchemy.dialects.postgresql")))
"""


def test_a_sqlite_process_never_imports_the_postgresql_dialect(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    # Created and migrated here (the migration scripts name both dialects); a start opens it.
    dbm.open_database(tmp_path).dispose()
    root = Path(__file__).resolve().parents[3]
    env = dict(os.environ, PYTHONPATH=str(root))
    done = subprocess.run(
        [sys.executable, "-c", SQLITE_ONLY, str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_postgresql_gets_the_same_partial_index_as_sqlite() -> None:
    from sqlalchemy.dialects import postgresql, sqlite
    from sqlalchemy.schema import CreateIndex, Table

    dbm.postgresql_forms()
    dbm.postgresql_forms()  # idempotent
    table = dbm.Mail.__table__
    assert isinstance(table, Table)
    (index,) = (i for i in table.indexes if i.name == "ux_mails_source_sha256_nouid")
    expected = (
        "CREATE UNIQUE INDEX ux_mails_source_sha256_nouid ON mails (source, sha256) "
        "WHERE uid IS NULL"
    )
    assert str(CreateIndex(index).compile(dialect=postgresql.dialect())) == expected
    assert str(CreateIndex(index).compile(dialect=sqlite.dialect())) == expected
