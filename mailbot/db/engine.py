"""Engine set-up (SQLite with its pragmas and WAL, or PostgreSQL), sessions and migrations."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sqlalchemy import (
    URL,
    Connection,
    Engine,
    create_engine,
    event,
    make_url,
    text,
)
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.sql import Executable

from mailbot.config import Config
from mailbot.db.driver import PLANS_KEY, Plans
from mailbot.db.models import DB_FILE_NAME, DEFAULT_BUSY_TIMEOUT_MS, postgresql_forms
from mailbot.errors import OperatorError

log = logging.getLogger(__name__)

# After a checkpoint the WAL file is cut back to at most this many bytes.
WAL_SIZE_LIMIT = 4 * 1024 * 1024

# --------------------------------------------------------------------------- engine and sessions


def _enable_wal(cur: sqlite3.Cursor, busy_timeout_ms: int) -> None:
    """Switch to WAL (persistent, so only the first opener really does it).

    Changing the journal mode can answer "database is locked" at once, without the busy
    handler, while another process opens the same new file: wait and retry instead.
    """
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if cur.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cur.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _make_engine(path: Path, busy_timeout_ms: int) -> Engine:
    engine = create_engine(URL.create("sqlite", database=str(path)))

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module: SQLAlchemy emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _enable_wal(cur, busy_timeout_ms)
            cur.execute("PRAGMA synchronous = FULL")
            cur.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}")
            cur.execute("PRAGMA foreign_keys = ON")
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN, so the busy timeout applies; a deferred
        # transaction that upgrades from read to write gets SQLITE_BUSY with no waiting.
        mode = conn.get_execution_options().get("mailbot_begin", "IMMEDIATE")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if mode == "IMMEDIATE" else "BEGIN DEFERRED")

    return engine


def _make_server_engine(url: URL, schema: str | None = None) -> Engine:
    # pre_ping: a connection the server dropped (a restart) is replaced, not handed out.
    # A mailbox of a city-wide deployment lives in its own schema: every table, the Alembic
    # version and the migrations stay inside it, so districts cannot see each other's rows.
    connect_args = {"options": f"-csearch_path={schema}"} if schema else {}
    return create_engine(url, pool_pre_ping=True, connect_args=connect_args)


class Database:
    """An open mailbot database: hands out transactional sessions; `dispose()` closes it.

    `path` is the SQLite file; None on a database server (PostgreSQL).
    """

    def __init__(self, engine: Engine, path: Path | None) -> None:
        self.engine = engine
        self.path = path
        # SQLite has one writer at a time. Threads of this process queue for it here, woken
        # as soon as it is free, rather than in SQLite's busy handler, which polls with
        # sleeps of up to 100 ms (the overlapping stages of a pass all write).
        self._writer = threading.RLock() if engine.dialect.name == "sqlite" else None
        # Statements compiled once for the SQLite driver (see `write_one`, mailbot.db.driver).
        self._plans = Plans(engine.dialect) if engine.dialect.name == "sqlite" else None

    @property
    def is_sqlite(self) -> bool:
        """Whether this is the SQLite file (else a PostgreSQL server)."""
        return self.engine.dialect.name == "sqlite"

    def where(self) -> str:
        """The database for log lines and messages: the file, or the URL without password."""
        if self.path is not None:
            return str(self.path)
        return shown_url(self.engine.url)

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any exception.

        Write sessions BEGIN IMMEDIATE (they wait up to the busy timeout for the write lock);
        `write=False` gives a deferred transaction for readers, which never block on writers.
        """
        bind = self.engine if write else self.engine.execution_options(mailbot_begin="DEFERRED")
        queue = self._writer if write and self._writer is not None else contextlib.nullcontext()
        info = {} if self._plans is None else {PLANS_KEY: self._plans}
        with (
            queue,
            Session(bind=bind, expire_on_commit=False, info=info) as session,
            session.begin(),
        ):
            yield session

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A write transaction without an ORM session, for one or two Core statements run
        many times a pass (a sent mail's record): committed on success, else rolled back."""
        queue = self._writer if self._writer is not None else contextlib.nullcontext()
        with queue, self.engine.begin() as conn:
            yield conn

    def write_one(self, statement: Executable, params: Mapping[str, Any]) -> int:
        """Run one plain DML statement (no expanding IN) in a write transaction of its own,
        committed on success, else rolled back; the number of rows it matched.

        On SQLite the statement runs on the driver's connection, compiled once per
        Database: for a one-row UPDATE, SQLAlchemy's Connection (pool events, the BEGIN
        listener, the compiled cache, the result's set-up) costs many times the statement,
        and a sent mail's record runs once per mail sent. Driver errors are raised as
        SQLAlchemy's (DBAPIError), as through a Connection. Elsewhere: `connection()`.
        """
        if self._writer is None or self._plans is None:
            with self.connection() as conn:
                return int(conn.execute(statement, dict(params)).rowcount)
        plan = self._plans.get(statement, params)
        args = plan.args(params)
        with self._writer:
            pooled = self.engine.raw_connection()
            try:
                driver = pooled.driver_connection
                assert driver is not None
                try:
                    driver.execute("BEGIN IMMEDIATE")
                    try:
                        count = driver.execute(plan.sql, args).rowcount
                        driver.execute("COMMIT")
                    except BaseException:
                        with contextlib.suppress(sqlite3.Error):
                            driver.execute("ROLLBACK")
                        raise
                except sqlite3.Error as exc:
                    raise DBAPIError.instance(plan.sql, args, exc, sqlite3.Error) from exc
            finally:
                pooled.close()
        return int(count)

    def checkpoint(self) -> bool:
        """Copy the WAL into the database and truncate it to zero bytes; False when readers
        kept it from finishing (the next one will). Nothing to do on PostgreSQL."""
        if not self.is_sqlite:
            return True
        with self.engine.connect() as conn:
            # Outside any transaction (SQLAlchemy's BEGIN would hold the WAL open).
            raw = conn.connection.driver_connection
            assert raw is not None
            busy = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return not (busy and busy[0])

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()


_MIGRATION_LOCK = threading.Lock()
# PostgreSQL advisory lock keys are one bigint namespace shared by every application on the
# server: ours are fixed, arbitrary numbers ("mbot" and a small tag).
MIGRATION_LOCK_KEY = 0x6D626F74_0001


class SchemaTooNew(OperatorError):
    """The database was migrated by a newer mailbot than this one: never touched, refused."""

    def __init__(self, current: str, head: str | None) -> None:
        super().__init__(
            f"cơ sở dữ liệu có lược đồ phiên bản {current}, mới hơn bản mailbot này (mới nhất "
            f"{head}): hãy cài bản mailbot mới hơn, hoặc khôi phục bản sao lưu tạo trước khi "
            "nâng cấp"
        )
        self.current = current
        self.head = head


def schema_revisions(script_location: str) -> tuple[set[str], str | None]:
    """Every revision this code knows, and its head."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(_alembic_config(None, script_location))
    return {rev.revision for rev in script.walk_revisions()}, script.get_current_head()


def migrations_path() -> Any:
    """The package's Alembic script folder (a Traversable)."""
    return resources.files("mailbot.db") / "migrations"


def _alembic_config(connection: Any, script_location: str) -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", script_location)
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["connection"] = connection
    return cfg


# The newest migration's revision. A database already at it is opened without Alembic
# (importing it and loading every script cost about half a second at each start); the
# migration tests check this against Alembic's own head.
SCHEMA_HEAD = "0012"


def at_schema_head(engine: Engine) -> bool:
    """True when the database records exactly SCHEMA_HEAD (one cheap query, no Alembic)."""
    try:
        with engine.connect() as conn:
            revisions = conn.execute(text("SELECT version_num FROM alembic_version")).all()
            conn.rollback()
    except DatabaseError:  # no such table yet (a new database), or not a mailbot one
        return False
    return [r[0] for r in revisions] == [SCHEMA_HEAD]


def run_migrations(
    engine: Engine, revision: str = "head", *, script_location: Path | None = None
) -> None:
    """Bring the schema to `revision` (Alembic, all in one BEGIN IMMEDIATE transaction)."""
    if revision == "head" and script_location is None and at_schema_head(engine):
        return
    from alembic import command

    # Alembic's `context` and `op` are process-wide proxies: one migration at a time per
    # process (other processes are held off by BEGIN IMMEDIATE).
    with _MIGRATION_LOCK, contextlib.ExitStack() as stack:
        if script_location is None:
            script_location = stack.enter_context(resources.as_file(migrations_path()))
        current = current_revision(engine)
        known, head = schema_revisions(str(script_location))
        if current is not None and current not in known:
            raise SchemaTooNew(current, head)
        conn = stack.enter_context(engine.connect())
        if engine.dialect.name == "postgresql":
            # Other processes wait here, then find the schema already at head.
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        command.upgrade(_alembic_config(conn, str(script_location)), revision)
        conn.commit()


def new_revision(
    message: str, rev_id: str, *, script_location: Path, autogenerate: bool = True
) -> Path:
    """Write a new migration script (for developers) comparing the models with head.

    `script_location` is the source tree's mailbot/db/migrations; review the script it writes.
    """
    import tempfile

    from alembic import command

    postgresql_forms()  # the scripts create the schema on PostgreSQL too
    with tempfile.TemporaryDirectory() as scratch:
        engine = _make_engine(Path(scratch) / DB_FILE_NAME, DEFAULT_BUSY_TIMEOUT_MS)
        try:
            run_migrations(engine, script_location=script_location)
            with _MIGRATION_LOCK, engine.connect() as conn:
                script = command.revision(
                    _alembic_config(conn, str(script_location)),
                    message=message,
                    rev_id=rev_id,
                    autogenerate=autogenerate,
                )
                conn.rollback()
        finally:
            engine.dispose()
    if script is None or isinstance(script, list):
        raise RuntimeError("alembic did not write exactly one revision")
    return Path(script.path)


def current_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database, or None before any migration."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        rev = MigrationContext.configure(conn).get_current_revision()
        conn.rollback()
        return rev


class DatabaseUnusable(OperatorError):
    """The database file is there but is not a mailbot database: refused, never replaced."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(
            f"cơ sở dữ liệu {path} {why}: mailbot không mở và không tạo lại tệp này, để không "
            "mất hồ sơ đã ghi. Hãy khôi phục từ bản sao lưu (tạo bằng `mailbot backup`): "
            "dừng mailbot, xóa các tệp -wal và -shm bên cạnh, chép bản sao lưu vào "
            f"{path} (chủ sở hữu mailbot, quyền 0600), rồi khởi động lại (xem README, mục "
            "Backup/Restore)"
        )
        self.path = path


_SQLITE_HEADER = b"SQLite format 3\x00"


def _check_existing(path: Path) -> None:
    """Refuse an empty or foreign file before SQLite silently treats it as a new database."""
    try:
        with path.open("rb") as f:
            head = f.read(len(_SQLITE_HEADER))
    except FileNotFoundError:
        return
    if not head:
        raise DatabaseUnusable(path, "là tệp rỗng (0 byte)")
    if head != _SQLITE_HEADER:
        raise DatabaseUnusable(path, "không phải tệp SQLite (hỏng hoặc bị ghi đè)")


def _create_private(path: Path) -> None:
    """Create the database file 0600 (SQLite gives its -wal and -shm files the same mode).

    It appears whole or not at all: made aside with a valid header, then linked into place,
    so a process opening it meanwhile never sees the empty file that would be refused.
    """
    if path.exists():
        return
    aside = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.new")
    fd = os.open(aside, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        with contextlib.closing(sqlite3.connect(aside, isolation_level=None)) as con:
            con.execute("PRAGMA application_id = 1835167604")  # "mbot": writes the header
        with contextlib.suppress(FileExistsError):
            os.link(aside, path)  # another opener won the race: its file is as good
    finally:
        aside.unlink(missing_ok=True)


def _quick_check(engine: Engine, path: Path) -> None:
    try:
        with engine.connect() as conn:
            result = conn.exec_driver_sql("PRAGMA quick_check").scalar()
            conn.rollback()
    except DatabaseError as exc:
        if _is_locked(exc):
            raise
        raise DatabaseUnusable(path, f"bị hỏng ({exc.orig})") from None
    if result != "ok":
        raise DatabaseUnusable(path, f"bị hỏng (kiểm tra: {result})")


def _is_locked(exc: BaseException) -> bool:
    return "locked" in str(exc) or "busy" in str(exc)


class ServerUnusable(OperatorError):
    """The configured PostgreSQL server cannot be used (bad URL, unreachable, login refused)."""


def server_url(url: str, password: str | None = None) -> URL:
    """`[storage] database_url` as an SQLAlchemy URL for psycopg, the password put in.

    Only postgresql:// is accepted; a password written into the URL itself is refused (it
    comes from `password_env`/`password_file`, like every other secret).
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ServerUnusable(
            "[storage] database_url không đúng dạng; hãy ghi như "
            "postgresql://người_dùng@máy_chủ:5432/tên_cơ_sở_dữ_liệu"
        ) from None
    if parsed.get_backend_name() != "postgresql":
        raise ServerUnusable(
            f"[storage] database_url: mailbot chỉ dùng được PostgreSQL (postgresql://...), "
            f"không dùng được “{parsed.get_backend_name()}”; để trống khóa này thì dùng SQLite "
            "trong thư mục dữ liệu"
        )
    if parsed.password is not None:
        raise ServerUnusable(
            "[storage] database_url: không ghi mật khẩu trong địa chỉ; hãy dùng "
            "password_env hoặc password_file trong mục [storage]"
        )
    return parsed.set(drivername="postgresql+psycopg", password=password)


def shown_url(url: URL) -> str:
    """The server's URL as the operator wrote it: no driver name, no password."""
    return URL.create(
        url.get_backend_name(),
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    ).render_as_string()


# What the driver says (English) and how an operator hears it.
_SERVER_ERRORS = (
    ("password authentication failed", "sai tên người dùng hoặc mật khẩu"),
    ("no password supplied", "chưa có mật khẩu: hãy đặt password_env hoặc password_file"),
    ("does not exist", "không có cơ sở dữ liệu hoặc người dùng này trên máy chủ"),
    ("connection refused", "máy chủ không nhận kết nối (chưa chạy, hoặc sai cổng)"),
    ("timeout", "máy chủ không trả lời"),
    ("could not translate host name", "không tìm thấy máy chủ theo tên"),
    ("name or service not known", "không tìm thấy máy chủ theo tên"),
)


def _server_error_vi(text: str) -> str:
    low = text.lower()
    for needle, said in _SERVER_ERRORS:
        if needle in low:
            return said
    return "máy chủ từ chối hoặc không trả lời"


def _open_server(url: URL, *, migrate: bool, schema: str | None = None) -> Database:
    postgresql_forms()
    engine = _make_server_engine(url, schema)
    try:
        try:
            with engine.connect() as conn:
                if schema and migrate:
                    conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
                    conn.commit()
                conn.execute(text("SELECT 1"))
                conn.rollback()
        except OperationalError as exc:
            # The driver's text names host and user, never the password.
            log.info("cannot connect to %s: %s", shown_url(url), exc.orig)
            raise ServerUnusable(
                f"không kết nối được cơ sở dữ liệu PostgreSQL {shown_url(url)} "
                f"({_server_error_vi(str(exc.orig))}): hãy kiểm tra máy chủ PostgreSQL đang "
                "chạy, địa chỉ, tên người dùng và mật khẩu trong mục [storage]"
            ) from None
        if migrate:
            run_migrations(engine)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, None)


def open_database(
    data_dir: Path,
    *,
    url: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    migrate: bool = True,
    lock_wait_seconds: float = 120.0,
) -> Database:
    """Open (creating when missing) data_dir/mailbot.sqlite3 and migrate it to the newest schema.

    With `url` (`[storage] database_url`) the PostgreSQL database it names is opened and
    migrated instead, with `password` (in `schema` when given). An empty or damaged SQLite
    file is refused (DatabaseUnusable), never re-created; a database another process keeps locked is
    waited for, up to `lock_wait_seconds`, with a log line.
    """
    if url:
        return _open_server(server_url(url, password), migrate=migrate, schema=schema)
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / DB_FILE_NAME
    _check_existing(path)
    _create_private(path)
    engine = _make_engine(path, busy_timeout_ms)
    deadline = time.monotonic() + lock_wait_seconds
    try:
        while True:
            try:
                _quick_check(engine, path)
                if migrate:
                    run_migrations(engine)
                break
            except OperationalError as exc:
                if not _is_locked(exc) or time.monotonic() >= deadline:
                    raise
                log.warning("database %s is locked by another process; waiting", path)
                time.sleep(1.0)
    except BaseException:
        engine.dispose()
        raise
    return Database(engine, path)


def mailbox_schema(name: str | None) -> str | None:
    """The PostgreSQL schema of a `[[mailbox]]` ("ba-dinh" -> "ba_dinh"); None: the default.

    Mailbox names are [a-z][a-z0-9-]* (checked by the configuration), so the schema needs no
    quoting beyond the plain double quotes used when creating it.
    """
    return name.replace("-", "_") if name else None


def open_configured(config: Config, *, migrate: bool = True) -> Database:
    """The database the configuration names: `[storage] database_url`, else SQLite in the
    data directory."""
    url = config.storage.database_url
    if url:
        return open_database(
            config.data_dir,
            url=url,
            password=config.storage.password.resolve(),
            schema=mailbox_schema(config.mailbox_name),
            migrate=migrate,
        )
    return open_database(config.data_dir, migrate=migrate)
