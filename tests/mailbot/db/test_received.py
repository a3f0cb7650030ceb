"""Mail as it arrives (mailbot/db/received.py): a page recorded at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select

from mailbot import db as dbm
from mailbot.db import Database, Mail
from tests.mailbot.db.support import T0, receive


def test_a_page_is_recorded_with_one_insert_known_and_repeated_mails_once(
    database: Database,
) -> None:
    src = "imap://mail.example/INBOX"
    with database.session() as s:
        known = receive(s, uid=1, sha="1" * 64, source_ref="1")

    def received(uid: int | None, sha: str, ref: str, mid: str | None = None) -> dbm.Received:
        return dbm.Received(
            uidvalidity=7 if uid is not None else None,
            uid=uid,
            message_id=mid,
            sha256=sha,
            raw_path=f"raw/{sha[:2]}/{sha[2:]}.eml",
            size=10,
            from_addr="Unit@Example.org",
            subject="Mẫu 02",
            received_at=T0,
            source_ref=ref,
        )

    page = [
        received(1, "1" * 64, "1b"),  # known: its handle is noted
        received(2, "2" * 64, "2"),
        received(3, "3" * 64, "3"),
        received(2, "2" * 64, "2"),  # listed twice
        received(None, "4" * 64, "md-4", "<m4@x>"),
        received(None, "4" * 64, "md-4", "m4@x"),  # the same bytes again
    ]
    statements: list[str] = []
    with database.session() as s:
        s.connection()  # begin first: count only the recording's statements
        with _counting(database, statements):
            rows = dbm.record_received_many(s, src, page)
    assert [created for _, created in rows] == [False, True, True, False, True, False]
    ids = [mail_id for mail_id, _ in rows]
    assert ids[0] == known.id
    assert ids[1] == ids[3] and ids[4] == ids[5]
    assert len(set(ids)) == 4
    assert sum(st.lstrip().upper().startswith("INSERT") for st in statements) == 1
    with database.session(write=False) as s:
        mails = {m.id: m for m in s.scalars(select(Mail))}
        assert mails[known.id].source_ref == "1b"
        assert (mails[ids[2]].uid, mails[ids[2]].from_addr, mails[ids[2]].fetched_at) == (
            3,
            "unit@example.org",
            T0,
        )
        assert (mails[ids[4]].uid, mails[ids[4]].message_id) == (None, "<m4@x>")
        assert all(m.status == "received" and not m.moved for m in mails.values())
    with database.session() as s, pytest.raises(ValueError, match="status"):
        dbm.record_received_many(s, src, [page[1]._replace(status="processed")])


@contextlib.contextmanager
def _counting(database: Database, statements: list[str]) -> Iterator[None]:
    def note(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", note)
    try:
        yield
    finally:
        event.remove(database.engine, "before_cursor_execute", note)


def test_the_read_position_advances_as_set_mailbox_state_moves_it(database: Database) -> None:
    src = "imap://mail.example/INBOX"
    with database.session() as s:
        dbm.advance_read_position(s, src, 7, 100, T0)  # the first position is written
    with database.session() as s:
        dbm.advance_read_position(s, src, 7, 90, T0)  # never back within a UIDVALIDITY
    with database.session() as s:
        state = dbm.get_mailbox_state(s, src)
        assert state is not None
        assert (state.uidvalidity, state.last_uid, state.updated_at) == (7, 100, T0)
    with database.session() as s:
        dbm.advance_read_position(s, src, 8, 3, T0)  # a new UIDVALIDITY starts over
    with database.session() as s:
        state = dbm.get_mailbox_state(s, src)
        assert state is not None
        assert (state.uidvalidity, state.last_uid) == (8, 3)
