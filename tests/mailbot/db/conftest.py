"""The database fixture shared by the repository tests: a fresh, migrated database, once on a
SQLite file and once on a PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mailbot.db import Database, open_database
from tests.support.postgres import PASSWORD


@pytest.fixture
def database(tmp_path: Path, backend: str, request: pytest.FixtureRequest) -> Iterator[Database]:
    if backend == "postgresql":
        url = request.getfixturevalue("pg_url")
        # The template it was copied from is migrated already.
        db = open_database(tmp_path, url=url, password=PASSWORD, migrate=False)
    else:
        db = open_database(tmp_path)
    try:
        yield db
    finally:
        db.dispose()
