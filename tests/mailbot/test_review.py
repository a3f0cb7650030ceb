"""Staff actions over a real SQLite database: confirm, assign, reject, reprocess."""

from __future__ import annotations

import pytest

from mailbot import db as dbm
from mailbot import review
from mailbot.campaign.status import unit_states
from tests.mailbot.campaign.support import CAMPAIGN, add_form, at, open_seeded

NOW = at(15, 10)


@pytest.fixture
def database(tmp_path):
    database = open_seeded(tmp_path / "data")
    yield database
    database.dispose()


def waiting_mail(database: dbm.Database, unit: str = "quan-doan") -> int:
    """A mail from an address the register does not know yet, its form awaiting staff."""
    mail_id = add_form(database, unit, "M1", at(12), awaiting=True, sender="bt@gmail.example")
    with database.session() as s:
        dbm.add_unit_email(s, "bt@gmail.example", unit, confirmed=False, source="form-name")
    return mail_id


def quarantined_mail(database: dbm.Database, reason: str = "unknown-unit") -> int:
    mail_id = add_form(database, "quan-doan", "M2", at(12), sender="la@nowhere.example")
    with database.session() as s:
        mail = dbm.get_mail(s, mail_id)
        assert mail is not None
        dbm.clear_mail_results(s, mail_id)
        dbm.quarantine(s, mail, reason, at(12))
    return mail_id


def state_of(database: dbm.Database, unit: str) -> str:
    with database.session(write=False) as s:
        return next(u.state for u in unit_states(s, CAMPAIGN, NOW) if u.code == unit)


def test_pending_lists_the_quarantine_and_the_senders_to_confirm(database) -> None:
    held = quarantined_mail(database)
    waiting = waiting_mail(database)
    with database.session(write=False) as s:
        todo = review.pending(s)
    assert [m.id for m in todo.quarantined] == [held]
    assert [m.id for m in todo.awaiting] == [waiting]
    assert todo.forms == {waiting: ["M1"]}
    assert todo.unit_names["quan-doan"]


def test_confirm_by_mail_counts_the_waiting_forms(database) -> None:
    mail_id = waiting_mail(database)
    assert state_of(database, "quan-doan") == "awaiting-confirmation"
    with database.session() as s:
        done = review.confirm(s, NOW, mail_id=mail_id)
    assert (done.address, done.unit_code, done.forms_counted) == (
        "bt@gmail.example",
        "quan-doan",
        1,
    )
    with database.session(write=False) as s:
        assert dbm.unit_for_address(s, "BT@gmail.example") == ("quan-doan", True)
        assert review.pending(s).awaiting == []
    assert state_of(database, "quan-doan") == "partial"


def test_confirm_refuses_what_it_cannot_do_and_changes_nothing(database) -> None:
    with database.session() as s, pytest.raises(review.ReviewError, match="cần --mail"):
        review.confirm(s, NOW, email="x@y.example")
    with database.session() as s, pytest.raises(review.ReviewError, match="không có thư mã 999"):
        review.confirm(s, NOW, mail_id=999)
    with database.session() as s, pytest.raises(review.ReviewError, match="không có đơn vị"):
        review.confirm(s, NOW, email="x@y.example", unit_code="khong-co")
    with database.session(write=False) as s:
        assert dbm.unit_for_address(s, "x@y.example") is None


def test_assign_gives_a_quarantined_mail_to_a_unit_and_queues_it_again(database) -> None:
    mail_id = quarantined_mail(database)
    with database.session() as s:
        done = review.assign(s, mail_id, "quan-doan", NOW)
    assert (done.mail_id, done.unit_code) == (mail_id, "quan-doan")
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, mail_id)
        assert mail is not None
        assert (mail.status, mail.quarantine_reason) == ("received", None)
        assert dbm.unit_for_address(s, "la@nowhere.example") == ("quan-doan", True)
        kinds = [e.kind for e in dbm.events_since(s, NOW) if e.mail_id == mail_id]
    assert kinds == ["assigned", "reprocess"]


def test_assign_refuses_a_mail_that_is_not_quarantined(database) -> None:
    mail_id = waiting_mail(database)
    with database.session() as s, pytest.raises(review.ReviewError, match="không bị giữ lại"):
        review.assign(s, mail_id, "quan-doan", NOW)


def test_reject_drops_the_forms_and_forgets_the_unconfirmed_sender(database) -> None:
    mail_id = waiting_mail(database)
    with database.session() as s:
        done = review.reject(s, mail_id, NOW, "thư rác")
    assert (done.mail_id, done.from_addr, done.reason) == (mail_id, "bt@gmail.example", "thư rác")
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, mail_id)
        assert mail is not None
        assert (mail.status, mail.quarantine_reason, mail.awaiting_confirmation) == (
            "ignored",
            "rejected",
            False,
        )
        assert dbm.submissions_for_mail(s, mail_id) == []
        assert dbm.unit_for_address(s, "bt@gmail.example") is None
    assert state_of(database, "quan-doan") == "missing"
    with database.session() as s, pytest.raises(review.ReviewError, match="không loại được"):
        review.reject(s, mail_id, NOW)


def test_reprocess_takes_the_failed_mails_or_the_ids_given(database) -> None:
    failed = quarantined_mail(database, reason="processing-failed")
    quarantined_mail(database, reason="unknown-unit")
    with database.session() as s, pytest.raises(review.ReviewError, match=r"\[998, 999\]"):
        review.reprocess(s, NOW, [failed, 998, 999])
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, failed)
        assert mail is not None and mail.status == "quarantined"
    with database.session() as s:
        assert review.reprocess(s, NOW) == [failed]
    with database.session(write=False) as s:
        assert review.mail_outcome(s, failed).status == "received"
