"""A real PostgreSQL server for tests: `initdb` in a temp dir, listening on a loopback port."""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import LOOPBACK, free_port, wait_for_port

if TYPE_CHECKING:
    import psycopg

SUPERUSER = "mailbot"
# The tests' password, handed to mailbot through password_env like an operator's would be.
PASSWORD = "Mật khẩu PG 1"
PASSWORD_ENV = "MAILBOT_TEST_PG_PASSWORD"
TEMPLATE_DB = "mailbot_template"
DEBIAN_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL is not installed or would not start."""


def find_postgres_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres: on the PATH, else Debian's versioned one."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).parent
    for candidate in DEBIAN_BIN_DIRS:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


def _run_as() -> str | None:
    """The unprivileged user postgres runs as when we are root (it refuses root)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable("running as root and neither user postgres nor nobody exists")


@dataclass
class PostgresServer:
    """A running PostgreSQL; `stop()` ends it and removes its files."""

    root: Path
    bindir: Path
    port: int
    user: str | None
    host: str = LOOPBACK
    _counter: itertools.count[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, dbname: str) -> str:
        """The `[storage] database_url` for a database (the password is not in it)."""
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{dbname}"

    def admin(self, dbname: str = "postgres") -> psycopg.Connection[Any]:
        """An autocommit psycopg connection as the superuser."""
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=SUPERUSER,
            password=PASSWORD,
            dbname=dbname,
            autocommit=True,
        )

    def create_database(self, *, migrated: bool = True) -> str:
        """A new empty database (a copy of the migrated template when `migrated`); its name."""
        with self._lock:
            name = f"t{os.getpid()}_{next(self._counter)}"
            template = TEMPLATE_DB if migrated else "template0"
            with self.admin() as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop a test database, ending any session still connected to it."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _pg_ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[bytes]:
        cmd = [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), *args]
        if self.user is not None:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)

    def restart(self) -> None:
        """Stop (fast: every session is cut) and start again on the same port."""
        self._pg_ctl("stop", "-m", "fast", "-w")
        self._start()

    def _start(self) -> None:
        opts = (
            f"-c listen_addresses={self.host} -p {self.port} -k {self.root / 'sock'} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        done = self._pg_ctl(
            "start", "-w", "-t", "60", "-l", str(self.root / "log"), "-o", opts, timeout=90
        )
        if done.returncode != 0 or not wait_for_port(self.port, 30):
            log = (self.root / "log").read_text(errors="replace")[-2000:]
            raise PostgresUnavailable(
                f"postgres did not start: {done.stderr.decode(errors='replace')} {log}"
            )

    def stop(self) -> None:
        """Stop the server and remove its directory."""
        with contextlib.suppress(Exception):
            self._pg_ctl("stop", "-m", "immediate", "-w")
        shutil.rmtree(self.root, ignore_errors=True)


def start_postgres() -> PostgresServer:
    """initdb a cluster in a temp dir and start it on a free loopback port."""
    bindir = find_postgres_bin()
    if bindir is None:
        raise PostgresUnavailable("PostgreSQL is not installed (apt install postgresql)")
    user = _run_as()
    root = Path(tempfile.mkdtemp(prefix="mailbot-pg-"))
    (root / "sock").mkdir()
    pwfile = root / "pw"
    pwfile.write_text(PASSWORD + "\n", encoding="utf-8")
    if user is not None:
        entry = pwd.getpwnam(user)
        for p in (root, root / "sock", pwfile):
            os.chown(p, entry.pw_uid, entry.pw_gid)
    initdb = [
        str(bindir / "initdb"),
        "-D",
        str(root / "data"),
        "-U",
        SUPERUSER,
        "--auth=scram-sha-256",
        f"--pwfile={pwfile}",
        "-E",
        "UTF8",
        "--locale=C",
        "--no-sync",
    ]
    if user is not None:
        initdb = ["runuser", "-u", user, "--", *initdb]
    done = subprocess.run(initdb, capture_output=True, timeout=120, check=False)
    pwfile.unlink()
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        raise PostgresUnavailable(f"initdb failed: {done.stderr.decode(errors='replace')}")
    server = PostgresServer(root=root, bindir=bindir, port=free_port(), user=user)
    try:
        server._start()
    except BaseException:
        server.stop()
        raise
    return server


def mailbox_lock_holders(url: str) -> list[str]:
    """The application names (`mailbot host:pid`) of the sessions holding a mailbox lock (an
    exclusive advisory lock; the claimants' liveness locks are shared ones)."""
    import psycopg

    with psycopg.connect(url, password=PASSWORD) as conn:
        rows = conn.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.mode = 'ExclusiveLock' "
            "AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchall()
    return [str(r[0]) for r in rows]
