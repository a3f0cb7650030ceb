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
from mailbot.fetching import FIRST_BATCH, _batches
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
        # Fetched in batches of 8, 16, then 20 (the page): 8 + 16 + 16.
        fetched = 3
        # One INSERT per batch; everything else a few look-ups per batch, nothing per mail.
        assert statements["INSERT INTO mails"] == fetched
        assert sum(statements.values()) <= 12 * fetched
        # Each file flushed once; each directory at most once per batch (not three per mail).
        assert flushed["file"] == MAILS
        assert flushed["dir"] <= MAILS + 2 * fetched
        pages = MAILS // PAGE

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


def test_a_pass_fetches_a_small_first_batch_doubling_up_to_the_page() -> None:
    sizes = [len(c) for c in _batches(iter(range(200)), 50, first=FIRST_BATCH)]
    assert FIRST_BATCH == 8
    assert sizes == [8, 16, 32, 50, 50, 44]
    assert [len(c) for c in _batches(range(5), 50, first=FIRST_BATCH)] == [5]
    assert [len(c) for c in _batches(range(7), 3, first=FIRST_BATCH)] == [3, 3, 1]
    assert [len(c) for c in _batches(range(7), 3)] == [3, 3, 1]
