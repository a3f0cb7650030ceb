"""The one outbox: claims, outcomes and refusals the same for every kind of mail."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event

from mailbot import db as dbm
from mailbot import outbox
from mailbot.config import OutgoingConfig
from mailbot.mail.compose import new_message_id
from mailbot.transport import DirSender, Refused, SmtpSender
from tests.support.postgres import PASSWORD

T0 = datetime(2022, 2, 14, 1, 0, tzinfo=UTC)
FROM = "bdv_quthanhxuan@hanoi.gov.vn"


@pytest.fixture
def database(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> Iterator[dbm.Database]:
    """SQLite in the data directory, then a PostgreSQL database: claims hold on both."""
    url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    database = dbm.open_database(tmp_path / "data", url=url, password=PASSWORD, migrate=not url)
    yield database
    database.dispose()


def smtp_outgoing(url: str) -> OutgoingConfig:
    return OutgoingConfig(url=url, from_address=FROM, timeout_seconds=5, max_attempts=3)


def raw_mail(mid: str, to: list[str]) -> bytes:
    return (
        f"From: {FROM}\r\nTo: {', '.join(to)}\r\nSubject: t\r\nMessage-ID: {mid}\r\n\r\nbody\r\n"
    ).encode()


def queue(database: dbm.Database, kind: str, to: list[str], n: int = 1) -> list[int]:
    ids = []
    with database.session() as s:
        for _ in range(n):
            mid = new_message_id("mailbot.invalid")
            row = dbm.queue_outgoing(
                s,
                kind=kind,
                message_id=mid,
                to_addrs=to,
                subject="t",
                raw=raw_mail(mid, to),
                now=T0,
            )
            ids.append(row.id)
    return ids


def outbox_row(database: dbm.Database, outbox_id: int) -> dbm.Outbox:
    with database.session(write=False) as s:
        row = dbm.get_outbox(s, outbox_id)
        assert row is not None
        return row


def test_a_partial_refusal_is_recorded_the_same_for_a_receipt_and_a_reminder(
    database: dbm.Database, smtp_server
) -> None:
    smtp_server.handler.reject_recipient("gone@phuong.example")
    to = ["vanthu@phuong.example", "gone@phuong.example"]
    receipt = queue(database, "receipt", to)[0]
    reminder = queue(database, "reminder", to)[0]
    with SmtpSender(smtp_outgoing(smtp_server.url())) as sender:
        sent, failed = outbox.deliver(
            database, sender, smtp_outgoing(smtp_server.url()), lambda: T0
        )
    assert (sent, failed) == (2, 0)
    assert len(smtp_server.handler.wait_for(2)) == 2
    with database.session(write=False) as s:
        refused = dbm.events_since(s, T0, kinds=["recipient-refused"])
    assert [e.detail for e in refused] == ["gone@phuong.example: 550 5.1.1 No such user"] * 2
    for outbox_id in (receipt, reminder):
        row = outbox_row(database, outbox_id)
        # The mail went out to the others: never retried, so nobody gets it twice.
        assert (row.status, row.attempts, row.next_attempt_at, row.claimed_at) == (
            "sent",
            1,
            None,
            None,
        )


def test_two_claimers_send_each_row_once(database: dbm.Database, tmp_path: Path) -> None:
    ids = queue(database, "receipt", ["vanthu@phuong.example"], n=30)
    sink = tmp_path / "sent"
    config = OutgoingConfig(url=f"dir:{sink}", from_address=FROM)
    start = threading.Barrier(2)
    results: list[tuple[int, int]] = []

    def claimer() -> None:
        sender = DirSender(sink)
        start.wait()
        results.append(outbox.deliver(database, sender, config, lambda: T0))

    threads = [threading.Thread(target=claimer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(sent for sent, _ in results) == len(ids)
    assert sum(failed for _, failed in results) == 0
    files = sorted(p.name for p in sink.glob("*.eml"))
    assert len(files) == len(ids)
    assert {outbox_row(database, i).status for i in ids} == {"sent"}


def test_a_claimed_row_is_not_claimed_again(database: dbm.Database) -> None:
    [outbox_id] = queue(database, "digest", ["lanhdao@thanhxuan.example"])
    with database.session() as s:
        assert dbm.claim_outgoing(s, [outbox_id], T0) == [outbox_id]
    with database.session() as s:
        assert dbm.claim_outgoing(s, [outbox_id], T0) == []
        assert dbm.due_outgoing_ids(s, T0) == []
    row = outbox_row(database, outbox_id)
    assert (row.status, row.claimed_at) == ("sending", T0)


def test_a_stale_claim_is_released_and_sent_once(database: dbm.Database, tmp_path: Path) -> None:
    [outbox_id] = queue(database, "reminder", ["vanthu@phuong.example"])
    with database.session() as s:  # a sender claimed it, then died (kill -9)
        dbm.claim_outgoing(s, [outbox_id], T0)
    sink = tmp_path / "sent"
    config = OutgoingConfig(url=f"dir:{sink}", from_address=FROM)
    sender = DirSender(sink)
    soon = T0 + outbox.CLAIM_TIMEOUT / 2
    assert outbox.deliver(database, sender, config, lambda: soon) == (0, 0)
    assert outbox_row(database, outbox_id).status == "sending"
    later = T0 + outbox.CLAIM_TIMEOUT + timedelta(seconds=1)
    assert outbox.deliver(database, sender, config, lambda: later) == (1, 0)
    assert outbox.deliver(database, sender, config, lambda: later) == (0, 0)
    assert len(list(sink.glob("*.eml"))) == 1
    row = outbox_row(database, outbox_id)
    assert (row.status, row.sent_at, row.claimed_at) == ("sent", later, None)


def test_claims_older_than_the_lock_holder_are_released_at_once(database: dbm.Database) -> None:
    [old] = queue(database, "receipt", ["a@phuong.example"])
    [new] = queue(database, "receipt", ["b@phuong.example"])
    with database.session() as s:
        dbm.claim_outgoing(s, [old], T0)
        dbm.claim_outgoing(s, [new], T0 + timedelta(minutes=2))
    assert outbox.release_orphaned_claims(database, T0 + timedelta(minutes=1)) == [old]
    assert outbox_row(database, old).status == "queued"
    assert outbox_row(database, new).status == "sending"


def test_a_temporary_failure_goes_back_to_the_queue_with_back_off(
    database: dbm.Database, smtp_server
) -> None:
    [outbox_id] = queue(database, "digest", ["lanhdao@thanhxuan.example"])
    config = smtp_outgoing(smtp_server.url())
    smtp_server.handler.fail_next(1)
    with SmtpSender(config) as sender:
        assert outbox.deliver(database, sender, config, lambda: T0) == (0, 1)
        row = outbox_row(database, outbox_id)
        assert (row.status, row.attempts, row.claimed_at) == ("queued", 1, None)
        assert row.next_attempt_at is not None and row.next_attempt_at > T0
        # Not due yet: nothing is sent before the back-off ends.
        assert outbox.deliver(database, sender, config, lambda: T0) == (0, 0)
        assert outbox.deliver(database, sender, config, lambda: row.next_attempt_at) == (1, 0)
    assert outbox_row(database, outbox_id).status == "sent"


def test_a_permanent_refusal_is_final_and_shown_to_staff(
    database: dbm.Database, smtp_server
) -> None:
    smtp_server.handler.reject_recipient("gone@phuong.example")
    [outbox_id] = queue(database, "reminder", ["gone@phuong.example"])
    config = smtp_outgoing(smtp_server.url())
    with SmtpSender(config) as sender:
        assert outbox.deliver(database, sender, config, lambda: T0) == (0, 1)
    assert outbox_row(database, outbox_id).status == "failed"
    with database.session(write=False) as s:
        [event] = dbm.events_since(s, T0, kinds=["send-failed"])
    assert "reminder" in (event.detail or "")


def test_only_the_given_ids_are_sent_and_each_sent_row_calls_back(
    database: dbm.Database, tmp_path: Path
) -> None:
    first, second, third = queue(database, "reminder", ["vanthu@phuong.example"], n=3)
    sink = tmp_path / "sent"
    config = OutgoingConfig(url=f"dir:{sink}", from_address=FROM)
    calls: list[str] = []
    sent = outbox.deliver(
        database,
        DirSender(sink),
        config,
        lambda: T0,
        ids=[first, third],
        after_each=lambda: calls.append("after-send"),
    )
    assert sent == (2, 0)
    assert calls == ["after-send", "after-send"]
    assert [outbox_row(database, i).status for i in (first, second, third)] == [
        "sent",
        "queued",
        "sent",
    ]


@contextlib.contextmanager
def statements_run(database: dbm.Database) -> Iterator[list[str]]:
    """The first word of every statement the database runs meanwhile, transaction control
    left out: SQLite's own trace (statements run on the driver's connection included),
    SQLAlchemy's cursor events on a server."""
    statements: list[str] = []

    def note(statement: str) -> None:
        word = statement.split(None, 1)[0].upper()
        if word not in ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA"):
            statements.append(word)

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        note(statement)

    def traced(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(note)

    if database.is_sqlite:
        database.dispose()  # pooled connections are opened again, traced
        event.listen(database.engine, "connect", traced)
        try:
            yield statements
        finally:
            event.remove(database.engine, "connect", traced)
            database.dispose()
        return
    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def test_a_sent_row_costs_one_update_and_its_commit(database: dbm.Database, tmp_path: Path) -> None:
    # Per row, after the page's claim: BEGIN and the UPDATE that records "sent" (one commit).
    n = 2 * outbox.CLAIM_PAGE
    ids = queue(database, "receipt", ["vanthu@phuong.example"], n=n)
    sink = tmp_path / "sent"
    config = OutgoingConfig(url=f"dir:{sink}", from_address=FROM)
    with statements_run(database) as statements:
        assert outbox.deliver(database, DirSender(sink), config, lambda: T0) == (n, 0)
    # The pass's fixed queries (claims, due rows) and per page a claim and one read.
    assert len(statements) <= 2 * n + 10
    assert statements.count("UPDATE") == n + 2
    rows = [outbox_row(database, i) for i in ids]
    assert {(r.status, r.sent_at, r.attempts, r.claimed_at, r.claimed_by) for r in rows} == {
        ("sent", T0, 1, None, None)
    }


def test_a_row_whose_claim_was_released_while_sending_is_still_recorded_sent(
    database: dbm.Database, tmp_path: Path
) -> None:
    # The server has the mail: marking it sent keeps a second sender from sending it again.
    [outbox_id] = queue(database, "receipt", ["vanthu@phuong.example"])
    sink = tmp_path / "sent"

    class ReleasingSender(DirSender):
        def send(self, raw: bytes, from_addr: str, to_addrs: list[str]) -> Refused:
            with database.session() as s:  # judged orphaned meanwhile
                assert dbm.release_claims(s, ids=[outbox_id]) == [outbox_id]
            return super().send(raw, from_addr, to_addrs)

    config = OutgoingConfig(url=f"dir:{sink}", from_address=FROM)
    assert outbox.deliver(database, ReleasingSender(sink), config, lambda: T0) == (1, 0)
    row = outbox_row(database, outbox_id)
    assert (row.status, row.sent_at, row.attempts, row.claimed_by) == ("sent", T0, 1, None)
    assert outbox.deliver(database, DirSender(sink), config, lambda: T0) == (0, 0)
    assert len(list(sink.glob("*.eml"))) == 1


def test_the_alerts_hear_each_failure_and_only_the_first_success_of_a_run(
    database: dbm.Database, smtp_server
) -> None:
    # Each call is a write transaction of the operator alerts: not one per mail sent.
    queue(database, "receipt", ["vanthu@phuong.example"], n=5)
    config = smtp_outgoing(smtp_server.url())
    heard: list[str] = []

    def hear(error: Exception | None) -> None:
        heard.append("ok" if error is None else type(error).__name__)

    with SmtpSender(config) as sender:
        assert outbox.deliver(database, sender, config, lambda: T0, on_attempt=hear) == (5, 0)
        assert heard == ["ok"]
        queue(database, "receipt", ["vanthu@phuong.example"], n=4)
        later = T0 + timedelta(seconds=1)
        calls = [0]

        def fail_second() -> None:  # the second of these four is refused for now
            calls[0] += 1
            if calls[0] == 1:
                smtp_server.handler.fail_next(1)

        assert outbox.deliver(
            database, sender, config, lambda: later, on_attempt=hear, after_each=fail_second
        ) == (3, 1)
    assert heard == ["ok", "ok", "TemporaryFailure", "ok"]
