"""Decided mail recorded a group at a time (real Dovecot, SQLite on disk): one commit for
the group, one bad outcome never takes the others down, a same-unit pair still replaces."""

from __future__ import annotations

import email
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from email import policy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.decision import Outcome
from mailbot.intake import process_mail
from tests.mailbot.e2e_support import (
    PW_ENV,
    Db,
    append_all,
    fixture_bytes,
    message_id_of,
    with_message_id,
    write_config,
)
from tests.support.dovecot import DovecotServer
from tests.support.smtpd import SmtpServer

pytestmark = pytest.mark.dovecot

Poison = Callable[[int, Outcome], Outcome]


def _pass_in_one_group(
    tmp_path: Path,
    dovecot: DovecotServer,
    smtp: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
    raws: list[bytes],
    poison: Poison | None = None,
    *,
    grouped: bool = True,
) -> tuple[list[int], tuple[int, int]]:
    """One pass over `raws` whose outcomes all come back together, as a pool's do when its
    workers finish at once; returns the commits made while recording each group (one
    entry per group) and the pass's (processed, failed). Not `grouped`: the ordinary
    inline pass, each mail decided and recorded before the next."""
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(tmp_path, dovecot, account, smtp, processing={"workers": 0})
    append_all(dovecot, account, raws)
    commits: list[int] = []
    with open_app(load_config(cfg)) as app:
        robot = app.robot()
        assert robot.fetch_new() == len(raws)

        def together(
            jobs: Iterable[tuple[int, bytes, Any]],
            on_wait: Any = None,
            most: int = 50,
            may_queue: Any = None,
        ) -> Iterator[list[tuple[int, Any]]]:
            # Every mail is drawn (handed the versions on file) before any is recorded.
            drawn = list(jobs)
            group = [(mail_id, process_mail(raw, ctx)) for mail_id, raw, ctx in drawn]
            if poison is not None:
                group = [(mail_id, poison(n, o)) for n, (mail_id, o) in enumerate(group)]
            yield group

        if grouped:
            monkeypatch.setattr(robot.decider, "decide_groups", together)
        record = robot._record_group
        recording = [False]

        @event.listens_for(app.database.engine, "commit")
        def on_commit(conn: Any) -> None:
            if recording[0]:
                commits[-1] += 1

        def counted(items: Any, *more: Any) -> Any:
            commits.append(0)
            recording[0] = True
            try:
                return record(items, *more)
            finally:
                recording[0] = False

        monkeypatch.setattr(robot, "_record_group", counted)
        done = robot.process_due()
    return commits, done


def _recorded(db: Db) -> list[tuple[Any, ...]]:
    """What was recorded of each mail, by Message-ID (ids and times left out)."""
    out = []
    for mid, mail in sorted(db.mails().items()):
        out.append((mid, mail["status"], mail["unit_code"], mail["awaiting_confirmation"]))
        for table, columns in (
            (
                "submissions",
                "unit_code, form, file_name, status, late, entries_count, "
                "errors_count, warnings_count, awaiting_confirmation, result_json, sent_by",
            ),
            ("file_results", "file_name, format, problems_json, forms_count"),
            ("events", "kind, unit_code, detail"),
            ("outbox", "kind, to_addrs, to_key, subject, status"),
        ):
            rows = db.rows(
                f"SELECT {columns} FROM {table} WHERE mail_id = ? ORDER BY id", mail["id"]
            )
            out.extend((mid, table, *tuple(r)) for r in rows)
        entries = db.rows(
            "SELECT e.kind, e.name, e.field, e.model FROM entries e "
            "JOIN submissions s ON s.id = e.submission_id WHERE s.mail_id = ? ORDER BY e.id",
            mail["id"],
        )
        out.extend((mid, "entries", *tuple(r)) for r in entries)
    return out


def _receipt(db: Db, mail_id: int) -> str:
    (row,) = db.rows("SELECT raw FROM outbox WHERE mail_id = ?", mail_id)
    msg = email.message_from_bytes(row["raw"], policy=policy.default)
    return " ".join(msg.get_body(("plain",)).get_content().split())


def test_a_group_of_outcomes_is_recorded_in_one_commit(tmp_path, dovecot, smtp_server, monkeypatch):
    names = ("gmail_khuong_trung.eml", "outlook_ccb_docx.eml", "outlook_winmail_lhpn.eml")
    raws = [with_message_id(fixture_bytes(n), f"<group-{n}@e2e.example>") for n in names]
    commits, done = _pass_in_one_group(tmp_path, dovecot, smtp_server, monkeypatch, raws)
    assert done == (3, 0)
    assert commits == [1]  # three mails, their forms and receipts: one transaction
    db = Db(tmp_path / "data")
    mails = db.mails()
    assert {mails[message_id_of(r)]["status"] for r in raws} == {"processed"}
    outbox = db.rows("SELECT mail_id, dedupe_key FROM outbox ORDER BY mail_id")
    assert [(o["mail_id"], o["dedupe_key"]) for o in outbox] == [
        (mails[message_id_of(r)]["id"], f"reply:{mails[message_id_of(r)]['id']}:0") for r in raws
    ]
    # The same rows as mail by mail.
    (tmp_path / "alone").mkdir()
    _pass_in_one_group(tmp_path / "alone", dovecot, smtp_server, monkeypatch, raws, grouped=False)
    assert _recorded(db) == _recorded(Db(tmp_path / "alone" / "data"))


def test_a_failing_outcome_leaves_the_others_of_its_group_recorded(
    tmp_path, dovecot, smtp_server, monkeypatch
):
    names = ("gmail_khuong_trung.eml", "outlook_ccb_docx.eml", "outlook_winmail_lhpn.eml")
    raws = [with_message_id(fixture_bytes(n), f"<poison-{n}@e2e.example>") for n in names]

    def poison(n: int, outcome: Outcome) -> Outcome:
        if n != 1:
            return outcome
        # A form type the database refuses: this outcome cannot be recorded.
        sub = outcome.submissions[0]
        bad = replace(sub, form=replace(sub.form, form="M9"))
        return replace(outcome, submissions=(bad, *outcome.submissions[1:]))

    commits, done = _pass_in_one_group(tmp_path, dovecot, smtp_server, monkeypatch, raws, poison)
    assert done == (2, 1)
    db = Db(tmp_path / "data")
    mails = db.mails()
    good, bad = [mails[message_id_of(raws[n])] for n in (0, 2)], mails[message_id_of(raws[1])]
    assert [m["status"] for m in good] == ["processed", "processed"]
    # The failed one goes the way of any failure: retried later, nothing of it recorded.
    assert bad["status"] == "retry" and "M9" in bad["last_error"]
    assert not db.rows("SELECT id FROM submissions WHERE mail_id = ?", bad["id"])
    assert not db.rows("SELECT id FROM outbox WHERE mail_id = ?", bad["id"])
    for mail in good:
        assert db.rows("SELECT id FROM outbox WHERE mail_id = ?", mail["id"])
        assert db.rows("SELECT id FROM submissions WHERE mail_id = ?", mail["id"])


def test_a_same_unit_pair_in_one_group_still_says_replaces(
    tmp_path, dovecot, smtp_server, monkeypatch
):
    # The ward's form, then its correction: decided side by side (neither knew the other),
    # recorded in one group. The correction's receipt must still name what it replaces.
    raws = [
        fixture_bytes("attribution_1_ward_own.eml"),
        fixture_bytes("attribution_5_correction.eml"),
    ]
    commits, done = _pass_in_one_group(tmp_path, dovecot, smtp_server, monkeypatch, raws)
    # Recorded first, the ward's form makes the correction stale: the correction goes back
    # to be decided again with it, and is recorded in a group of its own.
    assert done == (2, 0) and commits == [1, 1]
    db = Db(tmp_path / "data")
    first, second = (db.mails()[message_id_of(r)]["id"] for r in raws)
    subs = db.rows("SELECT mail_id, status FROM submissions WHERE unit_code = 'p-khuong-dinh'")
    assert sorted((s["mail_id"], s["status"]) for s in subs) == [
        (first, "superseded"),
        (second, "valid"),
    ]
    assert "Bản này thay thế bản" not in _receipt(db, first)
    text = _receipt(db, second)
    assert "ĐÃ TIẾP NHẬN, THAY THẾ BẢN GỬI TRƯỚC" in text
    assert "Bản này thay thế bản Mẫu số 02 của Đảng ủy phường Khương Đình nhận lúc" in text
    assert "(4 mô hình)" in text
