"""Migrations: the schema on first open, concurrent first opens, failed and new revisions."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from importlib import resources
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Mail,
    open_database,
)
from mailbot.db.engine import SCHEMA_HEAD, at_schema_head
from tests.mailbot.db.support import receive

EXPECTED_TABLES = {
    "alembic_version",
    "mailbox_state",
    "mailbox_known",
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
    "alert_state",
    "staff_tokens",
}


# The newest shipped revision: a test revision is stacked on top of it.
_VERSIONS = Path(dbm.__file__).parent / "migrations" / "versions"
HEAD = sorted(p.stem.split("_")[0] for p in _VERSIONS.glob("0*.py"))[-1]


def test_migrations_create_the_schema_and_rerun_is_a_no_op(tmp_path: Path) -> None:
    db = open_database(tmp_path)
    try:
        assert (tmp_path / "mailbot.sqlite3").is_file()
        assert set(inspect(db.engine).get_table_names()) == EXPECTED_TABLES
        with db.session() as s:
            receive(s)
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


def test_schema_head_is_alembics_head() -> None:
    with resources.as_file(dbm.migrations_path()) as scripts:
        head = ScriptDirectory(str(scripts)).get_current_head()
    assert head == SCHEMA_HEAD


AT_HEAD_OPENER = """
import sys
from pathlib import Path
from mailbot.db import open_database
open_database(Path(sys.argv[1])).dispose()
print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
"""


def test_a_database_at_head_opens_without_alembic(tmp_path: Path) -> None:
    open_database(tmp_path).dispose()  # migrated here, by Alembic
    out = subprocess.run(
        [sys.executable, "-c", AT_HEAD_OPENER, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip() == "[]", out.stdout


def test_a_database_behind_head_is_still_migrated(tmp_path: Path) -> None:
    db = open_database(tmp_path, migrate=False)
    try:
        dbm.run_migrations(db.engine, "0011")
        assert not at_schema_head(db.engine)
    finally:
        db.dispose()
    again = open_database(tmp_path)
    try:
        assert at_schema_head(again.engine)
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
