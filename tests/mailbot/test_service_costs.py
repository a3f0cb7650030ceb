"""Cost that grows with the work, not faster: statements and sessions per mail stay flat.

A pass over 20 mails and one over 200 (real Dovecot, aiosmtpd, SQLite on disk) are counted
by SQLite's trace callback (each statement run, an executemany once per row); speed itself
is measured in benchmarks/.
"""

from __future__ import annotations

import collections
import sqlite3
import threading
from pathlib import Path

import pytest
from sqlalchemy import event

from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.outbox import CLAIM_PAGE
from tests.mailbot.e2e_support import PW_ENV, append_all, backlog, replies, write_config
from tests.support.dovecot import DovecotServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.dovecot


def _pass_over(
    tmp_path: Path,
    dovecot: DovecotServer,
    smtp: SmtpServer,
    count: int,
    monkeypatch,
    recording: collections.Counter[str] | None = None,
) -> tuple[collections.Counter[str], int]:
    """Statements by kind during one pass over `count` new mails; most rows `sending` at once.

    `recording` gets the statements made while decided mail was recorded, and under "groups"
    how many groups were recorded."""
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(
        tmp_path,
        dovecot,
        account,
        smtp,
        inbox={"process_since": None},
        processing={"workers": 0},
    )
    with open_app(load_config(cfg)) as app:
        app.robot().run_once()  # the first meeting: the mailbox is empty
    append_all(dovecot, account, backlog(count, f"costs-{count}"))
    before = len(smtp.messages)
    statements: collections.Counter[str] = collections.Counter()
    sending: list[int] = []
    db_path = tmp_path / "data" / "mailbot.sqlite3"
    with open_app(load_config(cfg)) as app:
        in_recording = [0]  # the thread recording a group (the mailbox thread works meanwhile)

        def counted(statement: str) -> None:
            word = statement.split(None, 1)[0].upper()
            statements[word] += 1
            if in_recording[0] == threading.get_ident() and recording is not None:
                recording[word] += 1

        def traced(dbapi_connection: sqlite3.Connection, _record: object) -> None:
            # What SQLite runs, whether through SQLAlchemy or on the driver's connection
            # (mailbot.db.driver): an executemany is one statement per row.
            dbapi_connection.set_trace_callback(counted)

        app.database.dispose()  # pooled connections are opened again, traced
        event.listen(app.database.engine, "connect", traced)
        robot = app.robot()
        record = robot._record_group

        def record_counted(items, *more):  # noqa: ANN001, ANN002, ANN202
            if recording is not None:
                recording["groups"] += 1
            in_recording[0] = threading.get_ident()
            try:
                return record(items, *more)
            finally:
                in_recording[0] = 0

        robot._record_group = record_counted  # type: ignore[method-assign]
        send = robot.sender.send

        def watched_send(raw, from_addr, recipients):  # noqa: ANN001
            con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
            try:
                sending.append(
                    con.execute("SELECT count(*) FROM outbox WHERE status = 'sending'").fetchone()[
                        0
                    ]
                )
            finally:
                con.close()
            return send(raw, from_addr, recipients)

        robot.sender.send = watched_send  # type: ignore[method-assign]
        stats = robot.run_once()
    assert (stats.fetched, stats.processed, stats.failed) == (count, count, 0)
    assert len(replies(smtp.messages[before:])) == count
    return statements, max(sending)


def test_statements_and_sessions_per_mail_do_not_grow_with_the_backlog(
    tmp_path, dovecot, smtp_server, monkeypatch
):
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small, small_sending = _pass_over(tmp_path / "small", dovecot, smtp_server, 20, monkeypatch)
    large, large_sending = _pass_over(tmp_path / "large", dovecot, smtp_server, 200, monkeypatch)
    per_mail_small = sum(small.values()) / 20
    per_mail_large = sum(large.values()) / 200
    # A pass has a fixed part (the register, the context, the queues looked at): per mail,
    # ten times the backlog costs no more statements, nor more transactions.
    assert per_mail_large <= per_mail_small * 1.1, (small, large)
    assert large["BEGIN"] / 200 <= small["BEGIN"] / 20 * 1.1, (small, large)
    # About three transactions per mail (recording the outcome, recording the delivery, and
    # a share of the per-batch ones): recording and claiming go by the batch.
    assert large["BEGIN"] / 200 < 3.5, large
    # The outbox is claimed a page at a time, never the whole queue.
    assert 1 <= small_sending <= CLAIM_PAGE and 1 <= large_sending <= CLAIM_PAGE


def test_recording_a_decided_mail_takes_a_few_statements_whatever_the_backlog(
    tmp_path, dovecot, smtp_server, monkeypatch
):
    per_mail = []
    for count in (20, 120):
        (tmp_path / str(count)).mkdir()
        recording: collections.Counter[str] = collections.Counter()
        _pass_over(tmp_path / str(count), dovecot, smtp_server, count, monkeypatch, recording)
        groups = recording.pop("groups")
        assert groups == count  # deciding inline: each outcome is a group of its own
        per_mail.append(sum(recording.values()) / count)
    # Mail by mail this was about twenty statements and a commit; a group reads the mails,
    # their versions and reply counts once, writes each table once and commits once. Inline,
    # each group is one mail: a group's fixed cost is the worst case per mail (a pool's
    # groups of two or more share it). Counted as SQLite runs them (each row of an
    # executemany is one): a table's rows go in one INSERT.
    assert max(per_mail) <= 13, per_mail
    assert per_mail[1] <= per_mail[0] * 1.1, per_mail
