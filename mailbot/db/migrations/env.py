"""Alembic environment: migrates the connection handed over by mailbot.db (or a URL offline)."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from mailbot.db import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render mailbot's column types as plain SQLAlchemy ones: scripts never import mailbot."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    return False


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
        render_as_batch=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        # Outside mailbot (e.g. `alembic upgrade` by hand): open one with mailbot's pragmas.
        from pathlib import Path

        from mailbot.db import open_database

        url = config.get_main_option("sqlalchemy.url") or ""
        prefix = "sqlite:///"
        if not url.startswith(prefix) or not url.endswith("/mailbot.sqlite3"):
            raise RuntimeError("set sqlalchemy.url to sqlite:///DATA_DIR/mailbot.sqlite3")
        db = open_database(Path(url[len(prefix) :]).parent, migrate=False)
        try:
            with db.engine.connect() as conn:
                _migrate(conn)
                conn.commit()
        finally:
            db.dispose()
        return
    _migrate(connection)


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite alters tables by copy-and-move
        render_item=render_item,
        # mailbot.db emits BEGIN itself, so SQLite's DDL is transactional: all or nothing.
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
