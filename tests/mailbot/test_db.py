"""The database on disk: migrations, pragmas, locking, and the repository functions."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError, OperationalError

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Event,
    Mail,
    Outbox,
    Submission,
    SubmissionEntry,
    open_database,
)
from parsers.model import Entry, Form, Problem

T0 = datetime(2022, 2, 10, 1, 0, tzinfo=UTC)

EXPECTED_TABLES = {
    "alembic_version",
    "mailbox_state",
    "mails",
    "units",
    "unit_emails",
    "submissions",
    "entries",
    "file_results",
    "outbox",
    "job_runs",
    "bounces",
    "events",
}

# The newest shipped revision: a test revision is stacked on top of it.
_VERSIONS = Path(dbm.__file__).parent / "migrations" / "versions"
HEAD = sorted(p.stem.split("_")[0] for p in _VERSIONS.glob("0*.py"))[-1]


@pytest.fixture
def database(tmp_path: Path) -> Iterator[Database]:
    db = open_database(tmp_path)
    try:
        yield db
    finally:
        db.dispose()


def _receive(session, uid: int | None = 1, sha: str = "a" * 64, **kw) -> Mail:
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
    return dbm.record_received(session, **args)


def _form(form: str = "M1", errors: int = 0, entries: int = 2) -> Form:
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


def _unit(session, code: str = "KT") -> None:
    dbm.upsert_unit(
        session, code=code, name=f"Đơn vị {code}", emails=[f"{code.lower()}@example.org"], now=T0
    )


# --------------------------------------------------------------------------- schema and engine


def test_migrations_create_the_schema_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        assert (tmp_path / "mailbot.sqlite3").is_file()
        assert set(inspect(db.engine).get_table_names()) == EXPECTED_TABLES
        with db.session() as s:
            _receive(s)
            schema_before = s.execute(text("SELECT type, name, sql FROM sqlite_master")).all()
    finally:
        db.dispose()
    with resources.as_file(dbm.migrations_path()) as scripts:
        head = ScriptDirectory(str(scripts)).get_current_head()

    again = open_database(tmp_path)
    try:
        assert dbm.current_revision(again.engine) == head
        with again.session(write=False) as s:
            assert (
                s.execute(text("SELECT type, name, sql FROM sqlite_master")).all() == schema_before
            )
            assert s.scalar(select(func.count()).select_from(Mail)) == 1
            assert s.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        again.dispose()


OPENER = """
import sys
from pathlib import Path
from mailbot.db import open_database
sys.stdin.readline()  # start together
open_database(Path(sys.argv[1])).dispose()
print("ok", flush=True)
"""


def test_concurrent_first_opens_by_several_processes_migrate_once(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, str(tmp_path)],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(4)
    ]
    results = []
    try:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=60)
            results.append((p.returncode, out.strip(), err.strip()[-300:]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert results == [(0, "ok", "")] * 4
    db = open_database(tmp_path)
    try:
        with db.session(write=False) as s:
            assert s.scalar(text("SELECT count(*) FROM alembic_version")) == 1
    finally:
        db.dispose()


def test_concurrent_first_opens_by_threads_of_one_process(tmp_path: Path) -> None:
    opened: list[Database] = []
    failures: list[BaseException] = []

    def opener() -> None:
        try:
            opened.append(open_database(tmp_path))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert failures == []
        assert len(opened) == 4
    finally:
        for db in opened:
            db.dispose()


def test_a_failing_migration_changes_nothing(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    with resources.as_file(dbm.migrations_path()) as shipped:
        shutil.copytree(shipped, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_broken.py").write_text(
        'revision = "9999"\n'
        f'down_revision = "{HEAD}"\n'
        "branch_labels = None\n"
        "depends_on = None\n"
        "from alembic import op\n"
        "import sqlalchemy as sa\n"
        "def upgrade():\n"
        '    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))\n'
        '    op.add_column("mails", sa.Column("extra", sa.Text))\n'
        '    raise RuntimeError("migration bug")\n'
        "def downgrade():\n"
        "    pass\n",
        encoding="utf-8",
    )
    db = open_database(tmp_path / "data")
    try:
        with pytest.raises(RuntimeError, match="migration bug"):
            dbm.run_migrations(db.engine, script_location=scripts)
        assert dbm.current_revision(db.engine) == HEAD
        insp = inspect(db.engine)
        assert "half_done" not in insp.get_table_names()
        assert "extra" not in {c["name"] for c in insp.get_columns("mails")}
    finally:
        db.dispose()


def test_new_revision_renders_a_frozen_script_alembic_can_run(tmp_path: Path) -> None:
    scripts = tmp_path / "scripts"
    with resources.as_file(dbm.migrations_path()) as shipped:
        shutil.copytree(shipped, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    for shipped_revision in (scripts / "versions").glob("0*.py"):
        shipped_revision.unlink()
    # With no revision at all, autogenerate writes the whole schema from the models.
    path = dbm.new_revision("from scratch", "0001", script_location=scripts)
    source = path.read_text(encoding="utf-8")
    assert "down_revision: str | None = None" in source
    assert "sa.DateTime()" in source
    assert "mailbot" not in source  # revisions are frozen: they never import the live models
    db = open_database(tmp_path / "data", migrate=False)
    try:
        dbm.run_migrations(db.engine, script_location=scripts)
        assert dbm.current_revision(db.engine) == "0001"
        with db.engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), dbm.Base.metadata) == []
            conn.rollback()
    finally:
        db.dispose()


def test_orm_models_match_the_migrated_schema(database: Database) -> None:
    with database.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), dbm.Base.metadata)
        conn.rollback()
    assert diff == []


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
        _receive(s, received_at=datetime(2022, 2, 10, 8, 0))
    hanoi = timezone(timedelta(hours=7))
    with database.session() as s:
        mail = _receive(s, received_at=datetime(2022, 2, 10, 8, 0, tzinfo=hanoi))
        mail_id = mail.id
    with database.session(write=False) as s:
        got = s.get(Mail, mail_id)
        assert got is not None
        assert got.received_at == datetime(2022, 2, 10, 1, 0, tzinfo=UTC)
        assert got.received_at.tzinfo is UTC


def test_session_rolls_back_everything_on_error(database: Database) -> None:
    with pytest.raises(RuntimeError), database.session() as s:
        mail = _receive(s)
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
                _receive(s, uid=1)
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
            _receive(s, uid=2, sha="b" * 64)
        thread.join()
        assert errors == []
        assert seen == 1  # it waited for the first writer's commit, then saw its row
        with second.session(write=False) as s:
            assert sorted(s.scalars(select(Mail.uid))) == [1, 2]
    finally:
        thread.join()
        first.dispose()
        second.dispose()


# --------------------------------------------------------------------------- incoming mail


def test_record_received_is_idempotent_by_uid_within_uidvalidity(database: Database) -> None:
    with database.session() as s:
        first = _receive(s, uid=42)
        first_id = first.id
    with database.session() as s:
        again = _receive(s, uid=42, sha="f" * 64)  # same place on the server: same mail
        assert again.id == first_id
        assert dbm.is_known(s, "imap://mail.example/INBOX", 7, 42)
        assert not dbm.is_known(s, "imap://mail.example/INBOX", 8, 42)
        renumbered = _receive(s, uid=42, uidvalidity=8)  # UIDVALIDITY changed: a new key
        assert renumbered.id != first_id
        assert s.scalar(select(func.count()).select_from(Mail)) == 2
        assert first.from_addr == "unit@example.org"


def test_record_received_without_uid_uses_message_id_and_hash(database: Database) -> None:
    with database.session() as s:
        a = _receive(s, uid=None, uidvalidity=None, source="maildir:/var/inbox")
        b = _receive(
            s, uid=None, uidvalidity=None, source="maildir:/var/inbox", message_id="m1@example.org"
        )  # same id without brackets, same bytes
        c = _receive(
            s, uid=None, uidvalidity=None, source="maildir:/var/inbox", sha="c" * 64
        )  # same Message-ID, different bytes: a different mail
        assert a.id == b.id
        assert c.id != a.id
        assert [m.id for m in dbm.find_mails_by_message_id(s, "m1@example.org")] == [a.id, c.id]
    with pytest.raises(IntegrityError), database.session() as s:
        # The database itself refuses a duplicate that bypasses the repository.
        s.add(
            Mail(
                source="maildir:/var/inbox",
                uidvalidity=None,
                uid=None,
                sha256="a" * 64,
                raw_path="raw/x",
                size=1,
                received_at=T0,
                status="received",
                attempts=0,
                awaiting_confirmation=False,
                moved=False,
            )
        )
        s.flush()


def test_mailbox_state_never_moves_back_within_a_uidvalidity(database: Database) -> None:
    src = "imap://mail.example/INBOX"
    with database.session() as s:
        assert dbm.get_mailbox_state(s, src) is None
        dbm.set_mailbox_state(s, src, 7, 100, now=T0)
        dbm.set_mailbox_state(s, src, 7, 90, now=T0)
        state = dbm.get_mailbox_state(s, src)
        assert state is not None
        assert (state.uidvalidity, state.last_uid) == (7, 100)
        dbm.set_mailbox_state(s, src, 8, 3, now=T0)
        assert (state.uidvalidity, state.last_uid) == (8, 3)


def test_failed_mail_backs_off_exponentially_then_is_quarantined(database: Database) -> None:
    with database.session() as s:
        mail = _receive(s)
        assert [m.id for m in dbm.due_mails(s, T0)] == [mail.id]

        dbm.mark_failed(s, mail, "boom 1", T0, max_attempts=3, base_seconds=60)
        assert mail.status == "retry"
        assert mail.next_attempt_at == T0 + timedelta(seconds=60)
        assert dbm.due_mails(s, T0 + timedelta(seconds=59)) == []
        assert dbm.due_mails(s, T0 + timedelta(seconds=60)) == [mail]

        t1 = T0 + timedelta(seconds=60)
        dbm.mark_failed(s, mail, "boom 2", t1, max_attempts=3, base_seconds=60)
        assert mail.next_attempt_at == t1 + timedelta(seconds=120)
        assert dbm.due_mails(s, t1 + timedelta(seconds=119)) == []

        t2 = t1 + timedelta(seconds=120)
        dbm.mark_failed(s, mail, "boom 3", t2, max_attempts=3, base_seconds=60)
        assert mail.status == "quarantined"
        assert mail.quarantine_reason == "processing-failed"
        assert mail.attempts == 3
        assert dbm.due_mails(s, t2 + timedelta(days=30)) == []
        events = dbm.events_since(s, T0, kinds=["quarantined"])
        assert [(e.mail_id, e.kind) for e in events] == [(mail.id, "quarantined")]
        assert "boom 3" in (events[0].detail or "")
        assert dbm.mails_with_status(s, "quarantined") == [mail]


def test_one_failing_mail_does_not_block_the_others(database: Database) -> None:
    with database.session() as s:
        bad = _receive(s, uid=1)
        good = _receive(s, uid=2, sha="b" * 64)
        dbm.mark_failed(s, bad, "parser crashed", T0, max_attempts=5, base_seconds=60)
        assert dbm.due_mails(s, T0) == [good]
        dbm.mark_processed(s, good, T0, unit_code=None)
        assert dbm.due_mails(s, T0) == []
        assert good.processed_at == T0


def test_backoff_is_capped() -> None:
    assert dbm.backoff_delay(1, 60) == timedelta(seconds=60)
    assert dbm.backoff_delay(4, 60) == timedelta(seconds=480)
    assert dbm.backoff_delay(100, 60) == timedelta(seconds=dbm.MAX_BACKOFF_SECONDS)


# --------------------------------------------------------------------------- the outbox


def _queue(s, key: str | None = "receipt:1", mid: str = "<r1@mailbot.invalid>", **kw) -> Outbox:
    args = dict(
        kind="receipt",
        message_id=mid,
        to_addrs=["Unit@Example.org"],
        subject="Re: Mẫu 01",
        raw=b"From: x\r\n\r\nbody",
        dedupe_key=key,
        now=T0,
    )
    args.update(kw)
    return dbm.queue_outgoing(s, **args)


def test_dedupe_key_prevents_a_double_receipt(database: Database) -> None:
    with database.session() as s:
        first = _queue(s)
        first_id = first.id
    # A crash after commit and a second pass: the same key returns the row already queued.
    with database.session() as s:
        again = _queue(s, mid="<r2@mailbot.invalid>")
        assert again.id == first_id
        assert again.message_id == "<r1@mailbot.invalid>"
        assert s.scalar(select(func.count()).select_from(Outbox)) == 1
    with pytest.raises(IntegrityError), database.session() as s:
        _queue(s, key=None)  # the same Message-ID twice is refused by the database


def test_outgoing_retries_temporary_failures_and_stops_on_permanent(database: Database) -> None:
    with database.session() as s:
        a = _queue(s, key="a", mid="a@mailbot.invalid")
        b = _queue(s, key="b", mid="b@mailbot.invalid")
        assert a.message_id == "<a@mailbot.invalid>"
        assert dbm.due_outgoing(s, T0) == [a, b]

        dbm.mark_send_failed(s, a, "421 try later", T0, temporary=True, base_seconds=30)
        assert a.status == "queued"
        assert a.next_attempt_at == T0 + timedelta(seconds=30)
        assert dbm.due_outgoing(s, T0) == [b]
        assert dbm.due_outgoing(s, T0 + timedelta(seconds=30)) == [a, b]

        dbm.mark_send_failed(s, b, "550 no such user", T0, temporary=False)
        assert b.status == "failed"
        assert [e.kind for e in dbm.events_since(s, T0)] == ["send-failed"]

        dbm.mark_sent(s, a, T0 + timedelta(seconds=31))
        assert a.status == "sent"
        assert a.attempts == 2
        assert dbm.due_outgoing(s, T0 + timedelta(days=1)) == []


def test_temporary_failures_give_up_after_max_attempts(database: Database) -> None:
    with database.session() as s:
        row = _queue(s)
        for i in range(3):
            dbm.mark_send_failed(s, row, f"451 #{i}", T0, temporary=True, max_attempts=3)
        assert row.status == "failed"
        assert row.attempts == 3


def test_count_auto_replies_per_address_in_a_window(database: Database) -> None:
    with database.session() as s:
        _queue(s, key="1", mid="<1@x>", to_addrs=["unit@example.org"], now=T0)
        _queue(
            s,
            key="2",
            mid="<2@x>",
            to_addrs=["UNIT@example.org", "b@example.org"],
            now=T0 + timedelta(minutes=30),
        )
        _queue(s, key="3", mid="<3@x>", to_addrs=["b@example.org"], now=T0 + timedelta(minutes=40))
        _queue(
            s,
            key="4",
            mid="<4@x>",
            to_addrs=["unit@example.org"],
            kind="digest",
            now=T0 + timedelta(minutes=50),
        )
        since = T0 + timedelta(minutes=10)
        assert dbm.count_auto_replies(s, "Unit@Example.org", T0) == 3
        assert dbm.count_auto_replies(s, "unit@example.org", since) == 2
        assert dbm.count_auto_replies(s, "unit@example.org", since, kinds=["receipt"]) == 1
        assert dbm.count_auto_replies(s, "nobody@example.org", T0) == 0


def test_bounce_is_matched_to_the_outgoing_mail(database: Database) -> None:
    with database.session() as s:
        _unit(s, "KT")
        report = _receive(s, uid=9, sha="d" * 64, from_addr="MAILER-DAEMON@example.org")
        sent = _queue(
            s,
            kind="reminder",
            key="remind:KT:D-7",
            mid="<rem1@mailbot.invalid>",
            to_addrs=["kt@example.org"],
        )
        bounce = dbm.record_bounce(
            s,
            original_message_id="rem1@mailbot.invalid",
            recipient="KT@example.org",
            status="5.1.1",
            action="failed",
            diagnostic="550 5.1.1 user unknown",
            received_at=T0,
            mail_id=report.id,
        )
        assert bounce.outbox_id == sent.id
        assert sent.status == "bounced"
        ev = dbm.events_since(s, T0, kinds=["bounce"])
        assert len(ev) == 1
        assert ev[0].unit_code == "KT"
        assert json.loads(ev[0].detail or "{}")["kind"] == "reminder"
        unknown = dbm.record_bounce(
            s,
            original_message_id="<elsewhere@x>",
            recipient=None,
            status="4.4.1",
            action="delayed",
            diagnostic=None,
            received_at=T0,
            mail_id=report.id,
        )
        assert unknown.outbox_id is None
        assert dbm.find_outbox_by_message_id(s, "<rem1@mailbot.invalid>") is sent


# --------------------------------------------------------------------------- submissions


def test_a_later_valid_form_supersedes_the_earlier_one(database: Database) -> None:
    with database.session() as s:
        _unit(s, "KT")
        mails = [_receive(s, uid=i, sha=f"{i:064x}") for i in range(1, 7)]

        def add(i: int, at_h: int, **kw) -> Submission:
            return dbm.add_submission(
                s,
                mail_id=mails[i].id,
                unit_code="KT",
                form=kw.pop("form", _form()),
                file_name=f"mau01-{i}.xlsx",
                file_sha256="0" * 64,
                received_at=T0 + timedelta(hours=at_h),
                **kw,
            )

        first = add(0, 1)
        assert first.status == "valid"
        assert first.entries_count == 2
        assert [e.model for e in first.entries] == ["Mô hình 1", "Mô hình 2"]

        second = add(1, 2)
        assert (first.status, second.status) == ("superseded", "valid")

        broken = add(2, 3, form=_form(errors=1))
        assert broken.status == "invalid"
        assert broken.errors_count == 1
        assert second.status == "valid"  # an invalid form never replaces a valid one

        older = add(3, 0)  # an older mail processed late (reprocess) must not win
        assert older.status == "superseded"
        assert dbm.latest_valid_submission(s, "KT", "M1") is second

        other_form = add(4, 4, form=_form("M2"))
        assert other_form.status == "valid"
        assert second.status == "valid"

        unconfirmed = add(5, 5, awaiting_confirmation=True)
        assert unconfirmed.status == "valid"
        assert second.status == "valid"
        assert dbm.latest_valid_submission(s, "KT", "M1") is second
        assert dbm.latest_valid_submission(s, "KT", "M1", include_unconfirmed=True) is unconfirmed
        assert dbm.latest_submission(s, "KT", "M1") is unconfirmed

        dbm.confirm_submission(s, unconfirmed)
        assert (second.status, unconfirmed.status) == ("superseded", "valid")

        # Reprocessing the newest mail removes its form and restores the one before it.
        dbm.reset_for_reprocess(s, mails[5], T0 + timedelta(hours=6))
        assert dbm.latest_valid_submission(s, "KT", "M1").id == second.id  # type: ignore[union-attr]
        assert s.get(Submission, second.id).status == "valid"  # type: ignore[union-attr]
        assert mails[5].status == "received"
        stored = json.loads(second.result_json)
        assert stored["form"] == "M1"
        assert stored["entries"][0]["location"] == "Sheet1!D9"


def test_file_level_problems_judge_the_form_and_results_are_kept(database: Database) -> None:
    with database.session() as s:
        _unit(s, "KT")
        mail = _receive(s)
        warn = Problem("warning", "legacy-encoding-converted", None, "Đã chuyển mã TCVN3.")
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=_form(),
            file_name="a.doc",
            file_sha256="1" * 64,
            received_at=T0,
            late=True,
            extra_problems=[warn],
        )
        assert (sub.status, sub.warnings_count, sub.late) == ("valid", 1, True)
        dbm.add_file_result(
            s, mail_id=mail.id, file_name="a.doc", format="doc", forms_count=1, problems=[warn]
        )
        dbm.add_file_result(
            s,
            mail_id=mail.id,
            file_name="x.pdf",
            format="pdf",
            problems=[
                {
                    "severity": "error",
                    "code": "unsupported-format",
                    "location": None,
                    "message": "Không đọc được.",
                }
            ],
        )
        results = dbm.file_results_for_mail(s, mail.id)
        assert [(r.file_name, r.forms_count) for r in results] == [("a.doc", 1), ("x.pdf", 0)]
        assert results[1].problems[0]["code"] == "unsupported-format"
        assert dbm.submissions_since(s, T0) == [sub]


def test_entries_are_deleted_with_their_submission(database: Database) -> None:
    with database.session() as s:
        _unit(s, "KT")
        mail = _receive(s)
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=_form(entries=3),
            file_name="a.xlsx",
            file_sha256="1" * 64,
            received_at=T0,
        )
        sub_id = sub.id
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(SubmissionEntry)) == 3
        s.execute(text("DELETE FROM submissions WHERE id = :id"), {"id": sub_id})
        assert s.scalar(select(func.count()).select_from(SubmissionEntry)) == 0


# --------------------------------------------------------------------------- units


def test_unit_register_upserts_by_code_and_keeps_staff_confirmed_addresses(
    database: Database,
) -> None:
    with database.session() as s:
        dbm.upsert_unit(
            s,
            code="KT",
            name="Đảng ủy phường Khương Trung",
            emails=["KT@Example.org", "old@example.org"],
            aliases=["P. Khương Trung"],
            now=T0,
        )
        dbm.upsert_unit(s, code="MT", name="Ủy ban MTTQ quận", emails=["mt@example.org"], now=T0)
        dbm.add_unit_email(s, "Personal@gmail.com", "KT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "personal@GMAIL.com") == ("KT", False)
        mail = _receive(s, from_addr="personal@gmail.com")
        dbm.mark_processed(s, mail, T0, unit_code="KT", awaiting_confirmation=True)
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=_form(),
            file_name="a.xlsx",
            file_sha256="1" * 64,
            received_at=T0,
            awaiting_confirmation=True,
        )
        assert dbm.latest_valid_submission(s, "KT", "M1") is None
        assert dbm.confirm_sender(s, "personal@gmail.com", "KT", now=T0) == 1
        assert not mail.awaiting_confirmation
        assert dbm.latest_valid_submission(s, "KT", "M1") is sub

    with database.session() as s:
        # Re-import: name changes, a dropped address goes, the staff-confirmed one stays,
        # and an address moving to another unit moves.
        dbm.upsert_unit(
            s, code="KT", name="Đảng ủy P. Khương Trung", emails=["kt@example.org"], now=T0
        )
        dbm.upsert_unit(
            s,
            code="MT",
            name="Ủy ban MTTQ quận",
            emails=["mt@example.org", "old@example.org"],
            now=T0,
        )
        reg = {u.code: u for u in dbm.unit_register(s)}
        assert reg["KT"].name == "Đảng ủy P. Khương Trung"
        assert reg["KT"].emails == ("kt@example.org", "personal@gmail.com")
        assert reg["KT"].aliases == ()
        assert reg["MT"].emails == ("mt@example.org", "old@example.org")
        code, name, emails, aliases = reg["MT"]
        assert (code, aliases) == ("MT", ())
        assert dbm.get_unit(s, "KT") is not None
    with pytest.raises(ValueError), database.session() as s:
        dbm.upsert_unit(s, code="  ", name="x")


def test_an_unconfirmed_address_never_displaces_a_confirmed_one(database: Database) -> None:
    with database.session() as s:
        _unit(s, "KT")
        _unit(s, "MT")
        dbm.add_unit_email(s, "kt@example.org", "MT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "kt@example.org") == ("KT", True)
        dbm.add_unit_email(s, "new@example.org", "KT", confirmed=False, now=T0)
        dbm.add_unit_email(s, "new@example.org", "MT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "new@example.org") == ("MT", False)
        dbm.add_unit_email(s, "new@example.org", "KT", confirmed=True, now=T0)
        assert dbm.unit_for_address(s, "new@example.org") == ("KT", True)
        assert dbm.unit_for_address(s, "stranger@example.org") is None


# --------------------------------------------------------------------------- jobs and events


def test_a_job_point_is_claimed_once_even_across_sessions(database: Database) -> None:
    with database.session() as s:
        assert dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0, detail="3 units")
        assert not dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0)
    with database.session() as s:
        assert dbm.job_done(s, "reminder", "2022-02-13T08:00+07:00")
        assert not dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0)
        assert dbm.claim_job_run(s, "digest", "2022-02-13", T0 + timedelta(hours=1))
        last = dbm.last_job_run(s, "digest")
        assert last is not None
        assert last.point == "2022-02-13"
    # A claim rolled back with its transaction is not a claim.
    with pytest.raises(RuntimeError), database.session() as s:
        dbm.claim_job_run(s, "reminder", "2022-02-17T08:00+07:00", T0)
        raise RuntimeError("crash before the reminders were queued")
    with database.session(write=False) as s:
        assert not dbm.job_done(s, "reminder", "2022-02-17T08:00+07:00")


def test_events_are_listed_from_a_moment(database: Database) -> None:
    with database.session() as s:
        dbm.add_event(s, "unknown-sender", at=T0, detail="x@example.org")
        dbm.add_event(s, "unreadable-file", at=T0 + timedelta(hours=2), unit_code="KT")
        assert [e.kind for e in dbm.events_since(s, T0 + timedelta(hours=1))] == ["unreadable-file"]
        assert s.scalar(select(func.count()).select_from(Event)) == 2


def test_message_ids_are_normalised() -> None:
    assert dbm.normalize_message_id(" abc@x ") == "<abc@x>"
    assert dbm.normalize_message_id("<abc@x>") == "<abc@x>"
    assert dbm.normalize_message_id("   ") is None
    assert dbm.normalize_message_id(None) is None
