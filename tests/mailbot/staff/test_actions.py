"""Staff commands carried out on a real SQLite database: once, recorded, or refused whole."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from mailbot import db as dbm
from mailbot.commands.check import FAIL, OK, WARN, check_staff
from mailbot.config import Config, DigestConfig, StaffConfig
from mailbot.intake import process_mail
from mailbot.recording import load_register
from mailbot.staff.actions import carry_out, match_unit
from mailbot.staff.answer import compose_answer
from mailbot.staff.commands import StaffCommand
from mailbot.staff.tokens import Kind, Token, token_digest
from tests.mailbot.campaign.support import add_form, at, open_seeded
from tests.mailbot.intake_support import sample_register

NOW = at(15, 10)
STAFF = "lanhdao@thanhxuan.example"


@pytest.fixture
def database(tmp_path):
    database = open_seeded(tmp_path / "data")
    yield database
    database.dispose()


def _command(
    kind: Kind, mail_id: int, unit: str | None = None, code: str = "MBT-A", text: str | None = None
) -> StaffCommand:
    token = Token(kind, mail_id, unit, NOW + timedelta(days=14))
    return StaffCommand(STAFF, token_digest(code), token, None, text)


def _run(database: dbm.Database, command: StaffCommand, command_mail: int):
    with database.session() as s:
        return carry_out(s, command, load_register(s), command_mail, NOW)


def _waiting(database: dbm.Database) -> int:
    mail_id = add_form(
        database, "quan-doan", "M1", at(12), awaiting=True, sender="bt@gmail.example"
    )
    with database.session() as s:
        dbm.add_unit_email(s, "bt@gmail.example", "quan-doan", confirmed=False, source="form-name")
    return mail_id


def _quarantined(database: dbm.Database) -> int:
    mail_id = add_form(database, "quan-doan", "M2", at(12), sender="la@nowhere.example")
    with database.session() as s:
        mail = dbm.get_mail(s, mail_id)
        assert mail is not None
        dbm.clear_mail_results(s, mail_id)
        dbm.quarantine(s, mail, "unknown-unit", at(12))
    return mail_id


def _command_mail(database: dbm.Database) -> int:
    return add_form(database, "mttq", "M1", at(14), sender=STAFF)


def test_confirm_once_then_the_same_code_is_refused(database) -> None:
    waiting, cmd_mail = _waiting(database), _command_mail(database)
    done = _run(database, _command("confirm", waiting, "quan-doan"), cmd_mail)
    assert done.done and done.kind == "confirm" and done.mail_id == waiting
    assert "bt@gmail.example được xác nhận là địa chỉ của Quận đoàn Thanh Xuân" in done.changes[0]
    again = _run(database, _command("confirm", waiting, "quan-doan"), cmd_mail)
    assert not again.done and again.refusal_code == "replayed" and STAFF in (again.refusal or "")
    with database.session(write=False) as s:
        assert dbm.unit_for_address(s, "bt@gmail.example") == ("quan-doan", True)
        [action] = dbm.events_since(s, at(1), ["staff-action"])
        [refused] = dbm.events_since(s, at(1), ["staff-command-refused"])
        used = dbm.token_used(s, token_digest("MBT-A"))
    detail = json.loads(action.detail or "")
    assert (detail["actor"], detail["action"], action.mail_id, action.unit_code) == (
        STAFF,
        "confirm",
        waiting,
        "quan-doan",
    )
    assert json.loads(refused.detail or "")["refused"] == "replayed"
    assert used is not None and used.command_mail_id == cmd_mail


def test_a_refused_action_changes_nothing_and_spends_no_code(database) -> None:
    not_held, cmd_mail = _waiting(database), _command_mail(database)
    result = _run(database, _command("assign", not_held, "mttq"), cmd_mail)
    assert not result.done and "không bị giữ lại" in (result.refusal or "")
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, not_held)
        assert mail is not None and mail.status == "processed"
        assert dbm.token_used(s, token_digest("MBT-A")) is None
        assert dbm.events_since(s, at(1), ["staff-action", "assigned"]) == []


@pytest.mark.parametrize(
    ("text", "unit", "refusal"),
    [
        ("Quận đoàn", "quan-doan", None),
        ("QUAN-DOAN", "quan-doan", None),
        (None, None, "thư chưa ghi đơn vị"),
        ("Ban Chấp hành không có", None, "không có đơn vị nào khớp"),
        ("phường", None, "khớp với nhiều đơn vị"),
    ],
)
def test_assign_by_the_unit_staff_wrote(database, text, unit, refusal) -> None:
    held, cmd_mail = _quarantined(database), _command_mail(database)
    result = _run(database, _command("assign", held, None, text=text), cmd_mail)
    with database.session(write=False) as s:
        mail = dbm.get_mail(s, held)
        assigned = dbm.assigned_units(s, [held])
    assert mail is not None
    if refusal is None:
        assert result.done and "được giao cho Quận đoàn Thanh Xuân" in result.changes[0]
        assert mail.status == "received" and assigned == {held: unit}
    else:
        assert not result.done and refusal in (result.refusal or "")
        assert mail.status == "quarantined" and assigned == {}


def test_reject_handled_and_reprocess(database) -> None:
    cmd_mail = _command_mail(database)
    waiting = _waiting(database)
    rejected = _run(database, _command("reject", waiting, "quan-doan", "MBT-R"), cmd_mail)
    assert rejected.done and "đã bị loại" in rejected.changes[0]
    held = _quarantined(database)
    again = _run(database, _command("reprocess", held, None, "MBT-P"), cmd_mail)
    assert again.done and "đọc lại" in again.changes[0]
    not_for_staff = _run(database, _command("handled", held, None, "MBT-H"), cmd_mail)
    assert not not_for_staff.done and "không nằm trong danh sách" in (not_for_staff.refusal or "")
    missing = _run(database, _command("handled", 9999, None, "MBT-X"), cmd_mail)
    assert not missing.done and "không có thư số 9999" in (missing.refusal or "")
    with database.session(write=False) as s:
        statuses = [getattr(dbm.get_mail(s, i), "status", None) for i in (waiting, held)]
        events = dbm.events_since(s, at(1), ["staff-action"])
    assert statuses == ["ignored", "received"]
    assert [json.loads(e.detail or "")["action"] for e in events] == ["reject", "reprocess"]


def test_match_unit_by_code_name_or_candidates() -> None:
    register = sample_register()
    assert getattr(match_unit(register, "mttq"), "code", None) == "mttq"
    assert getattr(match_unit(register, "Hội Cựu chiến binh quận"), "code", None) == "hoi-ccb"
    several = match_unit(register, "phuong")
    assert isinstance(several, list) and len(several) > 1


def test_the_answer_says_what_changed_without_the_code(database) -> None:
    raw = (
        f"From: Lãnh đạo Ban <{STAFF}>\r\nTo: bdv_quthanhxuan@hanoi.gov.vn\r\n"
        "Subject: Xác nhận – MBT-SECRETCODEAAAAAAAAAAAAAA\r\nMessage-ID: <c@x>\r\n\r\nGửi.\r\n"
    ).encode()
    from tests.mailbot.intake_support import context

    mail = process_mail(raw, context()).mail
    waiting, cmd_mail = _waiting(database), _command_mail(database)
    result = _run(database, _command("confirm", waiting, "quan-doan"), cmd_mail)
    config = Config(digest=DigestConfig(recipients=(STAFF,)))
    answer = compose_answer(config, mail, result, at(15, 9, 30), NOW)
    assert answer.to == STAFF and answer.subject.startswith("[Đã thực hiện] Xác nhận người gửi")
    text = answer.raw.decode("utf-8", "replace")
    assert "MBT-" not in text and "In-Reply-To: <c@x>" in text
    refused = _run(database, _command("confirm", waiting, "quan-doan"), cmd_mail)
    refusal = compose_answer(config, mail, refused, at(15, 9, 30), NOW)
    assert refusal.subject == f"[Chưa thực hiện] Yêu cầu xác nhận người gửi – thư số {waiting}"


def test_check_reports_the_key(tmp_path) -> None:
    staff = Config(digest=DigestConfig(recipients=(STAFF,)), base_dir=str(tmp_path))
    assert check_staff(Config()).level == OK
    key = tmp_path / "k"
    with_key = lambda: Config(  # noqa: E731
        staff=StaffConfig(token_key_file=str(key)), digest=staff.digest, base_dir=str(tmp_path)
    )
    assert check_staff(with_key()).level == WARN
    key.write_bytes(b"short")
    weak = check_staff(with_key())
    assert weak.level == FAIL and "head -c 32 /dev/urandom" in weak.text
    key.write_bytes(bytes(32))
    assert check_staff(with_key()).level == OK
    assert "CREDENTIALS_DIRECTORY" in check_staff(staff).text
