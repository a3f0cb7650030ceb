"""The units repository: the register upserted by code and the addresses of units."""

from __future__ import annotations

import pytest

from mailbot import db as dbm
from mailbot.db import (
    Database,
)
from tests.mailbot.db.support import T0, add_unit, make_form, receive


def test_unit_register_upserts_by_code_and_keeps_staff_confirmed_addresses(
    database: Database,
) -> None:
    with database.session() as s:
        dbm.upsert_unit(
            s,
            code="KT",
            name="Đảng ủy phường Khương Trung",
            emails=["KT@Example.org", "old@example.org"],
            aliases=["P. Khương Trung"],
            now=T0,
        )
        dbm.upsert_unit(s, code="MT", name="Ủy ban MTTQ quận", emails=["mt@example.org"], now=T0)
        dbm.add_unit_email(s, "Personal@gmail.com", "KT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "personal@GMAIL.com") == ("KT", False)
        mail = receive(s, from_addr="personal@gmail.com")
        dbm.mark_processed(s, mail, T0, unit_code="KT", awaiting_confirmation=True)
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=make_form(),
            file_name="a.xlsx",
            file_sha256="1" * 64,
            received_at=T0,
            awaiting_confirmation=True,
        )
        assert dbm.latest_valid_submission(s, "KT", "M1") is None
        assert dbm.confirm_sender(s, "personal@gmail.com", "KT", now=T0) == 1
        assert not mail.awaiting_confirmation
        assert dbm.latest_valid_submission(s, "KT", "M1") is sub

    with database.session() as s:
        # Re-import: name changes, a dropped address goes, the staff-confirmed one stays,
        # and an address moving to another unit moves.
        dbm.upsert_unit(
            s, code="KT", name="Đảng ủy P. Khương Trung", emails=["kt@example.org"], now=T0
        )
        dbm.upsert_unit(
            s,
            code="MT",
            name="Ủy ban MTTQ quận",
            emails=["mt@example.org", "old@example.org"],
            now=T0,
        )
        reg = {u.code: u for u in dbm.unit_register(s)}
        assert reg["KT"].name == "Đảng ủy P. Khương Trung"
        assert reg["KT"].emails == ("kt@example.org", "personal@gmail.com")
        assert reg["KT"].aliases == ()
        assert reg["MT"].emails == ("mt@example.org", "old@example.org")
        code, name, emails, aliases, forms, parent, group, order = reg["MT"]
        assert (code, aliases, forms, parent, group, order) == ("MT", (), (), None, None, None)
        assert dbm.get_unit(s, "KT") is not None
    with pytest.raises(ValueError), database.session() as s:
        dbm.upsert_unit(s, code="  ", name="x")


def test_an_unconfirmed_address_never_displaces_a_confirmed_one(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        add_unit(s, "MT")
        dbm.add_unit_email(s, "kt@example.org", "MT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "kt@example.org") == ("KT", True)
        dbm.add_unit_email(s, "new@example.org", "KT", confirmed=False, now=T0)
        dbm.add_unit_email(s, "new@example.org", "MT", confirmed=False, now=T0)
        assert dbm.unit_for_address(s, "new@example.org") == ("MT", False)
        dbm.add_unit_email(s, "new@example.org", "KT", confirmed=True, now=T0)
        assert dbm.unit_for_address(s, "new@example.org") == ("KT", True)
        assert dbm.unit_for_address(s, "stranger@example.org") is None


def test_the_register_is_read_in_two_statements_whatever_its_size(database: Database) -> None:
    from sqlalchemy import event

    with database.session() as s:
        for i in range(30):
            dbm.upsert_unit(
                s,
                code=f"U{i:02d}",
                name=f"Chi bộ {i}",
                emails=[f"u{i}@example.org", f"u{i}b@example.org"],
                now=T0,
            )
        dbm.add_unit_email(s, "moi@example.org", "U03", confirmed=False, now=T0)
    statements: list[str] = []

    def counted(conn, cursor, statement, *args: object) -> None:  # noqa: ANN001
        statements.append(statement)

    event.listen(database.engine, "before_cursor_execute", counted)
    try:
        with database.session(write=False) as s:
            register = dbm.unit_register(s)
    finally:
        event.remove(database.engine, "before_cursor_execute", counted)
    assert len([q for q in statements if q.lstrip().upper().startswith("SELECT")]) == 2
    assert [r.code for r in register] == [f"U{i:02d}" for i in range(30)]
    assert register[3].emails == ("u3@example.org", "u3b@example.org")  # confirmed ones only
