"""The same Alembic migrations on PostgreSQL: every step up and down, concurrent first opens."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from mailbot import db as dbm
from mailbot.db import open_database
from mailbot.db.engine import _alembic_config
from tests.mailbot.db.support import receive
from tests.mailbot.db.test_migrations import EXPECTED_TABLES
from tests.support.postgres import PASSWORD, PostgresServer


def test_each_revision_goes_up_and_down_on_postgresql(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    name = postgres.create_database(migrated=False)
    db = open_database(tmp_path, url=postgres.url(name), password=PASSWORD, migrate=False)
    try:
        with resources.as_file(dbm.migrations_path()) as scripts:
            revisions = [
                r.revision for r in reversed(list(ScriptDirectory(str(scripts)).walk_revisions()))
            ]
            for rev in revisions:
                dbm.run_migrations(db.engine, rev, script_location=scripts)
                assert dbm.current_revision(db.engine) == rev
            assert set(inspect(db.engine).get_table_names()) == EXPECTED_TABLES
            with db.session() as s:
                receive(s)
            # Down to nothing and up again: each downgrade runs on PostgreSQL too.
            with db.engine.connect() as conn:
                command.downgrade(_alembic_config(conn, str(scripts)), "base")
                conn.commit()
            assert dbm.current_revision(db.engine) is None
            dbm.run_migrations(db.engine, script_location=scripts)
        assert dbm.current_revision(db.engine) == revisions[-1]
    finally:
        db.dispose()
        postgres.drop_database(name)


OPENER = """
import sys
from pathlib import Path
from mailbot.db import open_database
from tests.support.postgres import PASSWORD
sys.stdin.readline()  # start together
open_database(Path("/nonexistent"), url=sys.argv[1], password=PASSWORD).dispose()
print("ok", flush=True)
"""


def test_concurrent_first_opens_migrate_once(postgres: PostgresServer, tmp_path: Path) -> None:
    name = postgres.create_database(migrated=False)
    url = postgres.url(name)
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[3]))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER, url],
            env=env,
            text=True,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    results = []
    try:
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            out, err = p.communicate(timeout=120)
            results.append((p.returncode, out.strip(), err.strip()[-300:]))
        assert results == [(0, "ok", "")] * 2
        db = open_database(tmp_path, url=url, password=PASSWORD)
        try:
            with db.session(write=False) as s:
                assert s.scalar(text("SELECT count(*) FROM alembic_version")) == 1
        finally:
            db.dispose()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
        postgres.drop_database(name)
