"""Fetching and moving cost per page, not per mail: statements, flushes and IMAP commands.

One pass over 40 new mails in pages of 20 (real Dovecot, SQLite on disk), counted without
timing: speed itself is measured in benchmarks/.
"""

from __future__ import annotations

import collections
import os
import stat

import pytest
from sqlalchemy import event

from mailbot.app import open_app
from mailbot.config import load_config
from tests.mailbot.e2e_support import PROCESSED, PW_ENV, append_all, backlog, write_config

pytestmark = pytest.mark.dovecot

MAILS = 40
PAGE = 20


def test_a_page_is_stored_recorded_and_moved_at_once(tmp_path, dovecot, smtp_server, monkeypatch):
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp_server,
        inbox={"process_since": None, "batch_size": PAGE},
        processing={"workers": 0},
    )
    with open_app(load_config(cfg)) as app:
        app.robot().run_once()  # the first meeting: the mailbox is empty
    append_all(dovecot, account, backlog(MAILS, "fetch-costs"))
    statements: collections.Counter[str] = collections.Counter()
    flushed: collections.Counter[str] = collections.Counter()
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        flushed["dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"] += 1
        real_fsync(fd)

    with open_app(load_config(cfg)) as app:

        @event.listens_for(app.database.engine, "before_cursor_execute")
        def counted(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
            words = statement.split(None, 3)
            statements[" ".join(words[:3] if words[0].upper() == "INSERT" else words[:1])] += 1

        robot = app.robot()
        monkeypatch.setattr(os, "fsync", counting_fsync)
        assert robot.fetch_new() == MAILS
        monkeypatch.setattr(os, "fsync", real_fsync)
        pages = MAILS // PAGE
        # One INSERT per page; everything else a few look-ups per page, nothing per mail.
        assert statements["INSERT INTO mails"] == pages
        assert sum(statements.values()) <= 12 * pages
        # Each file flushed once; each directory at most once per page (not three per mail).
        assert flushed["file"] == MAILS
        assert flushed["dir"] <= MAILS + 2 * pages

        robot.process_due()
        sent: list[str] = []
        client = robot.source._ensure().client  # type: ignore[attr-defined]
        real_uid = client.uid

        def uid(command: str, *args: str) -> tuple[str, list[object]]:
            sent.append(command.upper())
            return real_uid(command, *args)

        monkeypatch.setattr(client, "uid", uid)
        statements.clear()
        assert robot.move_done() == MAILS
    assert sent == ["MOVE"] * pages
    assert statements["UPDATE"] == pages
    assert dovecot.uids(account) == []
    assert len(dovecot.uids(account, PROCESSED)) == MAILS
