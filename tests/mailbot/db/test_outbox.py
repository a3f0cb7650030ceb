"""The outbox repository: dedupe, retries, the hourly reply limit and bounces."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Outbox,
)
from tests.mailbot.db.support import T0, add_unit, receive


def _queue(s, key: str | None = "receipt:1", mid: str = "<r1@mailbot.invalid>", **kw) -> Outbox:
    args = dict(
        kind="receipt",
        message_id=mid,
        to_addrs=["Unit@Example.org"],
        subject="Re: Mẫu 01",
        raw=b"From: x\r\n\r\nbody",
        dedupe_key=key,
        now=T0,
    )
    args.update(kw)
    return dbm.queue_outgoing(s, **args)


def test_dedupe_key_prevents_a_double_receipt(database: Database) -> None:
    with database.session() as s:
        first = _queue(s)
        first_id = first.id
    # A crash after commit and a second pass: the same key returns the row already queued.
    with database.session() as s:
        again = _queue(s, mid="<r2@mailbot.invalid>")
        assert again.id == first_id
        assert again.message_id == "<r1@mailbot.invalid>"
        assert s.scalar(select(func.count()).select_from(Outbox)) == 1
    with pytest.raises(IntegrityError), database.session() as s:
        _queue(s, key=None)  # the same Message-ID twice is refused by the database


def test_outgoing_retries_temporary_failures_and_stops_on_permanent(database: Database) -> None:
    with database.session() as s:
        a = _queue(s, key="a", mid="a@mailbot.invalid")
        b = _queue(s, key="b", mid="b@mailbot.invalid")
        assert a.message_id == "<a@mailbot.invalid>"
        assert dbm.due_outgoing(s, T0) == [a, b]

        dbm.mark_send_failed(s, a, "421 try later", T0, temporary=True, base_seconds=30)
        assert a.status == "queued"
        assert a.next_attempt_at == T0 + timedelta(seconds=30)
        assert dbm.due_outgoing(s, T0) == [b]
        assert dbm.due_outgoing(s, T0 + timedelta(seconds=30)) == [a, b]

        dbm.mark_send_failed(s, b, "550 no such user", T0, temporary=False)
        assert b.status == "failed"
        assert [e.kind for e in dbm.events_since(s, T0)] == ["send-failed"]

        dbm.mark_sent(s, a, T0 + timedelta(seconds=31))
        assert a.status == "sent"
        assert a.attempts == 2
        assert dbm.due_outgoing(s, T0 + timedelta(days=1)) == []


def test_temporary_failures_retry_hourly_for_days_and_staff_hear_once(database: Database) -> None:
    with database.session() as s:
        row = _queue(s)
        at = T0
        for i in range(12):
            dbm.mark_send_failed(s, row, f"451 #{i}", at, temporary=True, max_attempts=3)
            assert row.status == "queued"
            assert row.next_attempt_at is not None
            assert row.next_attempt_at - at <= timedelta(hours=1)
            at = row.next_attempt_at
        # Staff hear it once, at the max_attempts-th failure, not at every retry.
        assert [e.kind for e in dbm.events_since(s, T0)] == ["send-delayed"]
        # Past the window (7 days by default) it fails for good and staff hear that too.
        dbm.mark_send_failed(s, row, "451 still", T0 + timedelta(days=7), temporary=True)
        assert row.status == "failed"
        assert [e.kind for e in dbm.events_since(s, T0)] == ["send-delayed", "send-failed"]
        assert dbm.failed_outgoing_ids(s) == [row.id]


def test_an_operator_requeues_a_failed_mail_for_a_new_window(database: Database) -> None:
    with database.session() as s:
        row = _queue(s)
        dbm.mark_send_failed(s, row, "550 mailbox full", T0, temporary=False)
        assert row.status == "failed"
        later = T0 + timedelta(days=30)
        assert dbm.requeue_outgoing(s, row, later)
        assert (row.status, row.attempts, row.next_attempt_at) == ("queued", 0, None)
        assert not dbm.requeue_outgoing(s, row, later)  # already queued: nothing to do
        # The 7 days count again from the operator's resend, not from the first queueing.
        dbm.mark_send_failed(s, row, "451 later", later + timedelta(days=1), temporary=True)
        assert row.status == "queued"
        assert row.message_id == "<r1@mailbot.invalid>"  # the same mail, not a new one


def test_count_auto_replies_per_address_in_a_window(database: Database) -> None:
    with database.session() as s:
        _queue(s, key="1", mid="<1@x>", to_addrs=["unit@example.org"], now=T0)
        _queue(
            s,
            key="2",
            mid="<2@x>",
            to_addrs=["UNIT@example.org", "b@example.org"],
            now=T0 + timedelta(minutes=30),
        )
        _queue(s, key="3", mid="<3@x>", to_addrs=["b@example.org"], now=T0 + timedelta(minutes=40))
        _queue(
            s,
            key="4",
            mid="<4@x>",
            to_addrs=["unit@example.org"],
            kind="digest",
            now=T0 + timedelta(minutes=50),
        )
        since = T0 + timedelta(minutes=10)
        assert dbm.count_auto_replies(s, "Unit@Example.org", T0) == 3
        assert dbm.count_auto_replies(s, "unit@example.org", since) == 2
        assert dbm.count_auto_replies(s, "unit@example.org", since, kinds=["receipt"]) == 1
        assert dbm.count_auto_replies(s, "nobody@example.org", T0) == 0
        for n in range(5, 9):  # several to one address: counted, not each row read
            _queue(s, key=str(n), mid=f"<{n}@x>", to_addrs=["b@example.org"], now=T0)
        assert dbm.count_auto_replies_many(
            s, ["b@example.org", "Unit@example.org", "c@example.org"], T0
        ) == {"b@example.org": 6, "unit@example.org": 3, "c@example.org": 0}


def test_bounce_is_matched_to_the_outgoing_mail(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        report = receive(s, uid=9, sha="d" * 64, from_addr="MAILER-DAEMON@example.org")
        sent = _queue(
            s,
            kind="reminder",
            key="remind:KT:D-7",
            mid="<rem1@mailbot.invalid>",
            to_addrs=["kt@example.org"],
        )
        bounce = dbm.record_bounce(
            s,
            original_message_id="rem1@mailbot.invalid",
            recipient="KT@example.org",
            status="5.1.1",
            action="failed",
            diagnostic="550 5.1.1 user unknown",
            received_at=T0,
            mail_id=report.id,
        )
        assert bounce.outbox_id == sent.id
        assert sent.status == "bounced"
        ev = dbm.events_since(s, T0, kinds=["bounce"])
        assert len(ev) == 1
        assert ev[0].unit_code == "KT"
        assert json.loads(ev[0].detail or "{}")["kind"] == "reminder"
        unknown = dbm.record_bounce(
            s,
            original_message_id="<elsewhere@x>",
            recipient=None,
            status="4.4.1",
            action="delayed",
            diagnostic=None,
            received_at=T0,
            mail_id=report.id,
        )
        assert unknown.outbox_id is None
        assert dbm.find_outbox_by_message_id(s, "<rem1@mailbot.invalid>") is sent
