"""The mails repository: recording, recognising, back-off, quarantine, read positions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Mail,
)
from tests.mailbot.db.support import T0, receive


def test_record_received_is_idempotent_by_uid_within_uidvalidity(database: Database) -> None:
    with database.session() as s:
        first = receive(s, uid=42)
        first_id = first.id
    with database.session() as s:
        again = receive(s, uid=42, sha="f" * 64)  # same place on the server: same mail
        assert again.id == first_id
        assert dbm.is_known(s, "imap://mail.example/INBOX", 7, 42)
        assert not dbm.is_known(s, "imap://mail.example/INBOX", 8, 42)
        renumbered = receive(s, uid=42, uidvalidity=8)  # UIDVALIDITY changed: a new key
        assert renumbered.id != first_id
        assert s.scalar(select(func.count()).select_from(Mail)) == 2
        assert first.from_addr == "unit@example.org"


def test_record_received_without_uid_uses_message_id_and_hash(database: Database) -> None:
    with database.session() as s:
        a = receive(s, uid=None, uidvalidity=None, source="maildir:/var/inbox")
        b = receive(
            s, uid=None, uidvalidity=None, source="maildir:/var/inbox", message_id="m1@example.org"
        )  # same id without brackets, same bytes
        c = receive(
            s, uid=None, uidvalidity=None, source="maildir:/var/inbox", sha="c" * 64
        )  # same Message-ID, different bytes: a different mail
        assert a.id == b.id
        assert c.id != a.id
        assert [m.id for m in dbm.find_mails_by_message_id(s, "m1@example.org")] == [a.id, c.id]
    with pytest.raises(IntegrityError), database.session() as s:
        # The database itself refuses a duplicate that bypasses the repository.
        s.add(
            Mail(
                source="maildir:/var/inbox",
                uidvalidity=None,
                uid=None,
                sha256="a" * 64,
                raw_path="raw/x",
                size=1,
                received_at=T0,
                status="received",
                attempts=0,
                awaiting_confirmation=False,
                moved=False,
            )
        )
        s.flush()


def test_mailbox_state_never_moves_back_within_a_uidvalidity(database: Database) -> None:
    src = "imap://mail.example/INBOX"
    with database.session() as s:
        assert dbm.get_mailbox_state(s, src) is None
        dbm.set_mailbox_state(s, src, 7, 100, now=T0)
        dbm.set_mailbox_state(s, src, 7, 90, now=T0)
        state = dbm.get_mailbox_state(s, src)
        assert state is not None
        assert (state.uidvalidity, state.last_uid) == (7, 100)
        dbm.set_mailbox_state(s, src, 8, 3, now=T0)
        assert (state.uidvalidity, state.last_uid) == (8, 3)


def test_failed_mail_backs_off_exponentially_then_is_quarantined(database: Database) -> None:
    with database.session() as s:
        mail = receive(s)
        assert [m.id for m in dbm.due_mails(s, T0)] == [mail.id]

        dbm.mark_failed(s, mail, "boom 1", T0, max_attempts=3, base_seconds=60)
        assert mail.status == "retry"
        assert mail.next_attempt_at == T0 + timedelta(seconds=60)
        assert dbm.due_mails(s, T0 + timedelta(seconds=59)) == []
        assert dbm.due_mails(s, T0 + timedelta(seconds=60)) == [mail]

        t1 = T0 + timedelta(seconds=60)
        dbm.mark_failed(s, mail, "boom 2", t1, max_attempts=3, base_seconds=60)
        assert mail.next_attempt_at == t1 + timedelta(seconds=120)
        assert dbm.due_mails(s, t1 + timedelta(seconds=119)) == []

        t2 = t1 + timedelta(seconds=120)
        dbm.mark_failed(s, mail, "boom 3", t2, max_attempts=3, base_seconds=60)
        assert mail.status == "quarantined"
        assert mail.quarantine_reason == "processing-failed"
        assert mail.attempts == 3
        assert dbm.due_mails(s, t2 + timedelta(days=30)) == []
        events = dbm.events_since(s, T0, kinds=["quarantined"])
        assert [(e.mail_id, e.kind) for e in events] == [(mail.id, "quarantined")]
        assert "boom 3" in (events[0].detail or "")
        assert dbm.mails_with_status(s, "quarantined") == [mail]


def test_one_failing_mail_does_not_block_the_others(database: Database) -> None:
    with database.session() as s:
        bad = receive(s, uid=1)
        good = receive(s, uid=2, sha="b" * 64)
        dbm.mark_failed(s, bad, "parser crashed", T0, max_attempts=5, base_seconds=60)
        assert dbm.due_mails(s, T0) == [good]
        dbm.mark_processed(s, good, T0, unit_code=None)
        assert dbm.due_mails(s, T0) == []
        assert good.processed_at == T0
