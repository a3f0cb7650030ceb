"""What each unit owes (register or campaign), "Không đăng ký" as an answer, and units' mail
without a form listed for staff until handled."""

from __future__ import annotations

import hashlib
import io

import openpyxl
import pytest

from mailbot import db as dbm
from mailbot import review
from mailbot.campaign.digest import build_digest
from mailbot.campaign.export import consolidated_xlsx
from mailbot.campaign.reminders import plan_reminders
from mailbot.campaign.status import unit_states
from mailbot.glossary import NOT_OWED
from outbox_templates import render
from tests.mailbot.campaign.support import CAMPAIGN, CONFIG, add_form, at

WORDS = "hạn cuối: hết ngày 19/02/2022 (thứ Bảy)"


def _owes(database: dbm.Database, code: str, forms: tuple[str, ...]) -> None:
    with database.session() as s:
        unit = dbm.get_unit(s, code)
        assert unit is not None
        dbm.upsert_unit(
            s,
            code=code,
            name=unit.name,
            emails=[e.email for e in unit.emails],
            aliases=unit.alias_list,
            forms=forms,
        )


def _state(database: dbm.Database, code: str, now=None):
    with database.session(write=False) as s:
        return next(u for u in unit_states(s, CAMPAIGN, now or at(18)) if u.code == code)


def test_register_forms_decide_what_a_unit_owes(database) -> None:
    _owes(database, "hoi-ccb", ("M2",))
    with database.session(write=False) as s:
        reg = {u.code: u for u in dbm.unit_register(s)}
    assert reg["hoi-ccb"].forms == ("M2",) and reg["mttq"].forms == ()
    assert _state(database, "hoi-ccb").owed == ("M2",)
    assert _state(database, "mttq").owed == ("M1", "M2")  # the campaign's required forms

    add_form(database, "hoi-ccb", "M2", at(15))
    add_form(database, "mttq", "M2", at(15))
    assert _state(database, "hoi-ccb").state == "complete"
    assert _state(database, "mttq").state == "partial"


def test_declared_empty_form_is_a_complete_answer(database) -> None:
    add_form(database, "mttq", "M1", at(15))
    add_form(database, "mttq", "M2", at(15), entries=0)  # "Không đăng ký", TỔNG 0
    state = _state(database, "mttq")
    assert state.state == "complete" and state.forms["M2"].declared_empty


def test_reminders_name_only_the_forms_a_unit_owes(database) -> None:
    _owes(database, "hoi-ccb", ("M2",))
    _owes(database, "ldld", ("M2",))
    add_form(database, "ldld", "M2", at(10))
    add_form(database, "mttq", "M1", at(10))
    with database.session(write=False) as s:
        plans = {p.unit_code: p for p in plan_reminders(s, CAMPAIGN, at(11, 8), config=CONFIG)}
    assert "ldld" not in plans  # owes M2 only, and sent it
    assert plans["hoi-ccb"].missing_forms == ("M2",)
    assert plans["hoi-ccb"].template_forms == ("M2",)
    assert plans["hoi-ccb"].view.missing_forms == ("Mẫu số 02 (cấp cơ sở)",)
    assert plans["mttq"].missing_forms == ("M2",)
    assert plans["quan-doan"].missing_forms == ("M1", "M2")
    text = render("reminder", plans["hoi-ccb"].view).text
    assert "Mẫu số 01" not in text.split("Cách gửi")[0]
    assert WORDS in text and "“Không đăng ký”" in text


def test_export_marks_forms_a_unit_does_not_owe(database) -> None:
    _owes(database, "hoi-ccb", ("M2",))
    with database.session(write=False) as s:
        data = consolidated_xlsx(s, CAMPAIGN, at(18))
    wb = openpyxl.load_workbook(io.BytesIO(data))
    texts = [str(c.value) for ws in wb.worksheets for row in ws.iter_rows() for c in row if c.value]
    assert NOT_OWED in texts
    assert any(WORDS in t for t in texts)


def _question(database: dbm.Database, unit: str, when, subject: str, excerpt: str) -> int:
    with database.session() as s:
        mail, _ = dbm.record_received(
            s,
            source="test",
            uidvalidity=None,
            uid=None,
            message_id=f"<q-{subject}@unit.example>",
            sha256=hashlib.sha256(subject.encode()).hexdigest(),
            raw_path="raw/q",
            size=10,
            from_addr=f"{unit}@thanhxuan.example",
            subject=subject,
            received_at=when,
        )
        dbm.mark_processed(s, mail, when, unit_code=unit, for_staff=True, excerpt=excerpt)
        return mail.id


def test_mail_without_form_is_listed_until_handled(database) -> None:
    mail_id = _question(
        database, "mttq", at(16), "Hỏi về mẫu 02", "Cho hỏi chi bộ có phải nộp mẫu 02 không ạ?"
    )
    with database.session(write=False) as s:
        plan = build_digest(s, CAMPAIGN, CONFIG, at(17, 7, 30), export_bytes=b"x")
        todo = review.pending(s)
    [item] = plan.view.to_read
    assert (item.mail_id, item.sender, item.subject) == (
        mail_id,
        "mttq@thanhxuan.example",
        "Hỏi về mẫu 02",
    )
    assert plan.news
    text = render("digest", plan.view).text
    assert "Cho hỏi chi bộ có phải nộp mẫu 02 không ạ?" in text
    assert f"Đề nghị đồng chí quản trị hệ thống thực hiện với thư số {mail_id}: đã xử lý." in text
    assert WORDS in text
    html = render("digest", plan.view).html
    assert "Cho hỏi chi bộ có phải nộp mẫu 02 không ạ?" in html
    assert [m.id for m in todo.to_read] == [mail_id]

    with database.session() as s:
        done = review.handled(s, mail_id, at(17, 9), "Nguyễn Thị Lan")
    assert done.by == "Nguyễn Thị Lan"
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, mail_id)
        assert mail is not None and mail.handled_by == "Nguyễn Thị Lan"
        assert mail.handled_at == at(17, 9)
        events = [e for e in dbm.events_since(s, at(1)) if e.kind == "handled"]
        assert [(e.mail_id, e.detail) for e in events] == [(mail_id, "Nguyễn Thị Lan")]
        plan = build_digest(s, CAMPAIGN, CONFIG, at(18, 7, 30), export_bytes=b"x")
        assert plan.view.to_read == ()
        assert review.pending(s).to_read == []
    with (
        pytest.raises(review.ReviewError, match="đã được Nguyễn Thị Lan đánh dấu"),
        database.session() as s,
    ):
        review.handled(s, mail_id, at(17, 10), "ai đó")


def test_handled_refuses_mail_that_is_not_listed(database) -> None:
    mail_id = add_form(database, "mttq", "M1", at(15))
    with (
        pytest.raises(review.ReviewError, match="không nằm trong danh sách"),
        database.session() as s,
    ):
        review.handled(s, mail_id, at(16), "Lan")
    with pytest.raises(review.ReviewError, match="không có thư mã 999"), database.session() as s:
        review.handled(s, 999, at(16), "Lan")
