"""Unit states from the database: precedence, versions, empty forms, confirmation, contract JSON."""

from __future__ import annotations

from datetime import datetime

import jsonschema
import pytest

from mailbot import db as dbm
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    FORM_UNCONFIRMED,
    FormState,
    count_states,
    status_json,
    unit_state_of,
    unit_states,
)
from rules.campaign import newest_campaign
from tests.mailbot.campaign.support import STATUS_SCHEMA, add_form, at


def states_by_code(database: dbm.Database, now: datetime | None = None) -> dict:
    with database.session(write=False) as s:
        return {u.code: u for u in unit_states(s, newest_campaign(), now)}


@pytest.mark.parametrize(
    ("m1", "m2", "expected"),
    [
        (FORM_OK, FORM_OK, "complete"),
        (FORM_NONE, FORM_NONE, "missing"),
        (FORM_OK, FORM_NONE, "partial"),
        (FORM_OK, FORM_ERRORS, "errors"),
        (FORM_ERRORS, FORM_NONE, "errors"),
        (FORM_UNCONFIRMED, FORM_NONE, "awaiting-confirmation"),
        (FORM_UNCONFIRMED, FORM_ERRORS, "awaiting-confirmation"),
        (FORM_OK, FORM_UNCONFIRMED, "awaiting-confirmation"),
    ],
)
def test_state_precedence(m1: str, m2: str, expected: str) -> None:
    forms = {"M1": FormState("M1", m1), "M2": FormState("M2", m2)}
    assert unit_state_of(forms, ("M1", "M2")) == expected


def test_every_unit_starts_missing(database) -> None:
    states = states_by_code(database)
    assert len(states) == 44
    assert {u.state for u in states.values()} == {"missing"}
    assert states["mttq"].emails == ("mttq@thanhxuan.example", "vanphong.mttq@thanhxuan.example")


def test_states_from_submissions(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    add_form(database, "mttq", "M2", at(11))
    add_form(database, "ldld", "M1", at(11))
    add_form(database, "hoi-ccb", "M1", at(11))
    add_form(database, "hoi-ccb", "M2", at(12), errors=2)
    add_form(database, "quan-doan", "M1", at(12), awaiting=True, sender="ca.nhan@gmail.example")
    states = states_by_code(database)
    assert states["mttq"].state == "complete"
    assert states["ldld"].state == "partial"
    assert states["ldld"].missing_forms == ("M2",)
    assert states["hoi-ccb"].state == "errors"
    # Each error with its place in the unit's terms, as the receipt said it.
    assert states["hoi-ccb"].open_problems == (
        "Mẫu số 02 (cấp cơ sở): Mục I. Tập thể, dòng TT 1 (ô B10): "
        "Dòng này chưa ghi tên tập thể, cá nhân.",
        "Mẫu số 02 (cấp cơ sở): Mục II. Cá nhân, dòng TT 2 (ô B11): "
        "Dòng này chưa ghi tên tập thể, cá nhân.",
    )
    assert states["quan-doan"].state == "awaiting-confirmation"
    assert states["quan-doan"].forms["M1"].sender == "ca.nhan@gmail.example"
    counts = count_states(list(states.values()))
    assert counts == {
        "complete": 1,
        "awaiting-confirmation": 1,
        "errors": 1,
        "partial": 1,
        "missing": 40,
    }


def test_declared_empty_form_counts_as_sent(database) -> None:
    add_form(database, "p-khuong-dinh", "M1", at(10), entries=0)
    add_form(database, "p-khuong-dinh", "M2", at(10), entries=3)
    unit = states_by_code(database)["p-khuong-dinh"]
    assert unit.state == "complete"
    assert unit.forms["M1"].declared_empty and unit.forms["M1"].entries == 0


def test_later_faulty_version_does_not_undo_a_valid_one(database) -> None:
    add_form(database, "ldld", "M1", at(10), entries=3)
    add_form(database, "ldld", "M2", at(10))
    add_form(database, "ldld", "M1", at(14), errors=1)
    unit = states_by_code(database)["ldld"]
    assert unit.state == "complete"
    m1 = unit.forms["M1"]
    assert (m1.status, m1.entries, m1.errors) == (FORM_OK, 3, 0)
    assert "chưa được tính vì có lỗi" in m1.problems[0]


def test_newer_valid_version_supersedes(database) -> None:
    add_form(database, "ldld", "M1", at(10), entries=3)
    add_form(database, "ldld", "M1", at(12), entries=5)
    m1 = states_by_code(database)["ldld"].forms["M1"]
    assert m1.entries == 5 and m1.received_at == at(12)


def test_confirmation_completes_the_unit(database) -> None:
    add_form(database, "quan-doan", "M1", at(10))
    add_form(database, "quan-doan", "M2", at(11), awaiting=True, sender="bt.doan@gmail.example")
    assert states_by_code(database)["quan-doan"].state == "awaiting-confirmation"
    with database.session() as s:
        dbm.add_unit_email(s, "bt.doan@gmail.example", "quan-doan", confirmed=False)
        assert dbm.confirm_sender(s, "bt.doan@gmail.example", "quan-doan") == 1
    assert states_by_code(database)["quan-doan"].state == "complete"


def test_now_ignores_forms_received_later(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    add_form(database, "mttq", "M2", at(15))
    assert states_by_code(database, at(12))["mttq"].state == "partial"
    assert states_by_code(database, at(16))["mttq"].state == "complete"


def test_status_json_matches_contract(database) -> None:
    add_form(database, "mttq", "M1", at(10))
    add_form(database, "hoi-ccb", "M2", at(21), errors=1)
    campaign = newest_campaign()
    with database.session(write=False) as s:
        data = status_json(campaign, unit_states(s, campaign))
    jsonschema.validate(data, STATUS_SCHEMA)
    assert data["campaign"] == "dan-van-kheo-2022"
    assert datetime.fromisoformat(data["deadline"]) == at(20, 0)
    by = {u["code"]: u for u in data["units"]}
    assert by["mttq"]["forms"]["M2"] is None
    assert by["mttq"]["forms"]["M1"]["entries"] == 2
    assert datetime.fromisoformat(by["mttq"]["forms"]["M1"]["received_at"]) == at(10)
    late = by["hoi-ccb"]["forms"]["M2"]
    assert late["late"] is True and late["errors"] == 1
