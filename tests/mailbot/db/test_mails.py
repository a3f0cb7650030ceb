"""The mails repository: recording, recognising, back-off, quarantine, read positions."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
        assert [m.id for m in dbm.due_mails(s, T0 + timedelta(seconds=60))] == [mail.id]

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
        assert [m.id for m in dbm.due_mails(s, T0)] == [good.id]
        dbm.mark_processed(s, good, T0, unit_code=None)
        assert dbm.due_mails(s, T0) == []
        assert good.processed_at == T0


SRC = "imap://mail.example/INBOX"


def test_record_received_says_whether_it_created_the_row_and_keeps_the_source_ref(
    database: Database,
) -> None:
    args: dict[str, Any] = dict(
        source=SRC,
        uidvalidity=7,
        uid=5,
        message_id="<m5@example.org>",
        sha256="5" * 64,
        raw_path="raw/55/5.eml",
        size=10,
        from_addr=None,
        subject=None,
        received_at=T0,
    )
    with database.session() as s:
        mail, created = dbm.record_received(s, **args, source_ref="5")
        assert created and mail.source_ref == "5"
        again, created = dbm.record_received(s, **args, source_ref="5b")
        assert (again.id, created, again.source_ref) == (mail.id, False, "5b")


def test_known_mails_are_recognised_per_batch(database: Database) -> None:
    with database.session() as s:
        receive(s, uid=1, sha="1" * 64, message_id="<a@x>", size=100)
        receive(s, uid=2, sha="2" * 64, message_id="<b@x>", size=200)
        dropped, _ = dbm.record_received(
            s,
            source="maildir:/in",
            uidvalidity=None,
            uid=None,
            message_id=None,
            sha256="3" * 64,
            raw_path="raw/33/3.eml",
            size=1,
            from_addr=None,
            subject=None,
            received_at=T0,
            source_ref="1700000000.M1.host",
        )
    with database.session(write=False) as s:
        assert dbm.known_uids(s, SRC, 7, [1, 2, 3]) == {1, 2}
        assert dbm.known_uids(s, SRC, 8, [1, 2]) == set()  # another UIDVALIDITY
        assert dbm.known_uids(s, "imap://other/INBOX", 7, [1]) == set()
        assert dbm.known_uids(s, SRC, 7, []) == set()
        # Renumbered: recognised by Message-ID (as given, brackets or not) and size.
        assert dbm.known_by_message_id(s, SRC, [("a@x", 100), ("<b@x>", 201), ("<c@x>", 5)]) == {
            ("a@x", 100)
        }
        assert dbm.known_by_message_id(s, "maildir:/in", [("<a@x>", 100)]) == set()
        assert dbm.known_source_refs(s, "maildir:/in", [dropped.source_ref or "", "other"]) == {
            "1700000000.M1.host"
        }
        assert dbm.known_source_refs(s, SRC, []) == set()


def test_mails_to_move_are_the_decided_ones_not_yet_moved(database: Database) -> None:
    with database.session() as s:
        done = receive(s, uid=1, sha="1" * 64)
        held = receive(s, uid=2, sha="2" * 64)
        waiting = receive(s, uid=3, sha="3" * 64)
        moved = receive(s, uid=4, sha="4" * 64)
        dbm.mark_processed(s, done, T0)
        dbm.quarantine(s, held, "unknown-unit", T0)
        dbm.mark_processed(s, moved, T0)
        dbm.mark_moved(s, [moved.id])
        assert waiting.status == "received"
    with database.session(write=False) as s:
        assert [m.id for m in dbm.mails_to_move(s, SRC)] == [done.id, held.id]
        assert dbm.mails_to_move(s, "maildir:/elsewhere") == []


def test_headers_from_the_parsed_mail_fill_only_what_is_missing(database: Database) -> None:
    with database.session() as s:
        bare = receive(s, uid=1, sha="1" * 64, message_id=None, from_addr=None)
        full = receive(s, uid=2, sha="2" * 64)
        dbm.note_headers(s, bare, message_id="new@x", from_addr="sender@x.example")
        dbm.note_headers(s, full, message_id="new@x", from_addr="sender@x.example")
        assert (bare.message_id, bare.from_addr) == ("<new@x>", "sender@x.example")
        assert (full.message_id, full.from_addr) == ("<m1@example.org>", "unit@example.org")


def test_reprocess_generation_and_staff_assignments(database: Database) -> None:
    with database.session() as s:
        dbm.upsert_unit(s, code="KT", name="Khương Trung", now=T0)
        dbm.upsert_unit(s, code="HD", name="Hạ Đình", now=T0)
        a = receive(s, uid=1, sha="1" * 64)
        b = receive(s, uid=2, sha="2" * 64)
        assert dbm.reprocess_generation(s, a.id) == 0
        dbm.reset_for_reprocess(s, a, T0)
        dbm.reset_for_reprocess(s, a, T0 + timedelta(minutes=1))
        assert dbm.reprocess_generation(s, a.id) == 2
        assert dbm.reprocess_generation(s, b.id) == 0
        dbm.add_event(s, "assigned", at=T0, mail_id=a.id, unit_code="KT")
        dbm.add_event(s, "assigned", at=T0, mail_id=a.id, unit_code="HD")  # the last one wins
        assert dbm.assigned_units(s, [a.id, b.id]) == {a.id: "HD"}


def test_a_rejected_mail_loses_its_results_and_is_never_answered(database: Database) -> None:
    with database.session() as s:
        dbm.upsert_unit(s, code="KT", name="Khương Trung", now=T0)
        mail = receive(s)
        dbm.add_file_result(s, mail_id=mail.id, file_name="a.xlsx", format="xlsx")
        dbm.mark_processed(s, mail, T0, unit_code="KT", awaiting_confirmation=True)
        dbm.reject(s, mail, T0, detail="thư rác")
        assert (mail.status, mail.quarantine_reason, mail.awaiting_confirmation) == (
            "ignored",
            "rejected",
            False,
        )
        assert dbm.file_results_for_mail(s, mail.id) == []
        assert [(e.kind, e.detail) for e in dbm.events_since(s, T0)] == [("rejected", "thư rác")]
        assert dbm.due_mails(s, T0 + timedelta(days=1)) == []
