"""Shared fixtures: real Dovecot, aiosmtpd and PostgreSQL servers, loopback only."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dovecot import DovecotServer, DovecotUnavailable, find_dovecot, start_dovecot
from tests.support.postgres import (
    PASSWORD,
    PASSWORD_ENV,
    TEMPLATE_DB,
    PostgresServer,
    PostgresUnavailable,
    find_postgres_bin,
    start_postgres,
)
from tests.support.smtpd import SmtpServer, start_smtpd


def _start_dovecot(tls: bool) -> DovecotServer:
    if find_dovecot() is None and not os.environ.get("CI"):
        pytest.skip("dovecot is not installed (apt install dovecot-imapd)")
    try:
        return start_dovecot(tls=tls)
    except DovecotUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a working Dovecot: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def dovecot() -> Iterator[DovecotServer]:
    """A Dovecot on a free loopback port, plain IMAP; use `dovecot.add_user()` per test."""
    server = _start_dovecot(tls=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_tls() -> Iterator[DovecotServer]:
    """A Dovecot offering STARTTLS and imaps with a self-signed certificate."""
    server = _start_dovecot(tls=True)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL on a free loopback port with a migrated template database.

    Skipped only when no PostgreSQL binaries are installed (and never on CI).
    """
    if find_postgres_bin() is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL is not installed (apt install postgresql)")
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs a working PostgreSQL: {exc}")
        pytest.skip(str(exc))
    try:
        from mailbot.db import open_database

        with server.admin() as conn:
            conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
        open_database(
            Path("/nonexistent"), url=server.url(TEMPLATE_DB), password=PASSWORD
        ).dispose()
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh migrated PostgreSQL database's URL; its password in $MAILBOT_TEST_PG_PASSWORD."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    """The database backend a test runs against (the test runs once for each)."""
    return str(request.param)


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on a free loopback port that captures every message."""
    server = start_smtpd()
    yield server
    server.stop()


@pytest.fixture
def smtp_server_tls(tmp_path: Path) -> Iterator[SmtpServer]:
    """An aiosmtpd server with STARTTLS and AUTH (user `robot`, a non-ASCII password)."""
    server = start_smtpd(
        starttls=True,
        users={"robot": "Mật-khẩu Đ1"},
        require_auth=True,
        cert_dir=tmp_path / "smtp-tls",
    )
    yield server
    server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Soak tests (`@pytest.mark.soak`) run only on request: `-m soak` or MAILBOT_SOAK=1."""
    if os.environ.get("MAILBOT_SOAK") or "soak" in (config.getoption("-m") or ""):
        return
    skip = pytest.mark.skip(reason="soak test: run with -m soak or MAILBOT_SOAK=1")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
