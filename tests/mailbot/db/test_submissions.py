"""The submissions repository: versions superseding each other, results and entries."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select, text

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Submission,
    SubmissionEntry,
)
from parsers.model import Problem
from tests.mailbot.db.support import T0, add_unit, make_form, receive


def test_a_later_valid_form_supersedes_the_earlier_one(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        mails = [receive(s, uid=i, sha=f"{i:064x}") for i in range(1, 7)]

        def add(i: int, at_h: int, **kw) -> Submission:
            return dbm.add_submission(
                s,
                mail_id=mails[i].id,
                unit_code="KT",
                form=kw.pop("form", make_form()),
                file_name=f"mau01-{i}.xlsx",
                file_sha256="0" * 64,
                received_at=T0 + timedelta(hours=at_h),
                **kw,
            )

        first = add(0, 1)
        assert first.status == "valid"
        assert first.entries_count == 2
        assert [e.model for e in first.entries] == ["Mô hình 1", "Mô hình 2"]

        second = add(1, 2)
        assert (first.status, second.status) == ("superseded", "valid")

        broken = add(2, 3, form=make_form(errors=1))
        assert broken.status == "invalid"
        assert broken.errors_count == 1
        assert second.status == "valid"  # an invalid form never replaces a valid one

        older = add(3, 0)  # an older mail processed late (reprocess) must not win
        assert older.status == "superseded"
        assert dbm.latest_valid_submission(s, "KT", "M1") is second

        other_form = add(4, 4, form=make_form("M2"))
        assert other_form.status == "valid"
        assert second.status == "valid"

        unconfirmed = add(5, 5, awaiting_confirmation=True)
        assert unconfirmed.status == "valid"
        assert second.status == "valid"
        assert dbm.latest_valid_submission(s, "KT", "M1") is second
        assert dbm.latest_valid_submission(s, "KT", "M1", include_unconfirmed=True) is unconfirmed
        assert dbm.latest_submission(s, "KT", "M1") is unconfirmed

        dbm.confirm_submission(s, unconfirmed)
        assert (second.status, unconfirmed.status) == ("superseded", "valid")

        # Reprocessing the newest mail removes its form and restores the one before it.
        dbm.reset_for_reprocess(s, mails[5], T0 + timedelta(hours=6))
        assert dbm.latest_valid_submission(s, "KT", "M1").id == second.id  # type: ignore[union-attr]
        assert s.get(Submission, second.id).status == "valid"  # type: ignore[union-attr]
        assert mails[5].status == "received"
        stored = json.loads(second.result_json)
        assert stored["form"] == "M1"
        assert stored["entries"][0]["location"] == "Sheet1!D9"


def test_file_level_problems_judge_the_form_and_results_are_kept(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        mail = receive(s)
        warn = Problem("warning", "legacy-encoding-converted", None, "Đã chuyển mã TCVN3.")
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=make_form(),
            file_name="a.doc",
            file_sha256="1" * 64,
            received_at=T0,
            late=True,
            extra_problems=[warn],
        )
        assert (sub.status, sub.warnings_count, sub.late) == ("valid", 1, True)
        dbm.add_file_result(
            s, mail_id=mail.id, file_name="a.doc", format="doc", forms_count=1, problems=[warn]
        )
        dbm.add_file_result(
            s,
            mail_id=mail.id,
            file_name="x.pdf",
            format="pdf",
            problems=[
                {
                    "severity": "error",
                    "code": "unsupported-format",
                    "location": None,
                    "message": "Không đọc được.",
                }
            ],
        )
        results = dbm.file_results_for_mail(s, mail.id)
        assert [(r.file_name, r.forms_count) for r in results] == [("a.doc", 1), ("x.pdf", 0)]
        assert results[1].problems[0]["code"] == "unsupported-format"
        assert dbm.submissions_since(s, T0) == [sub]


def test_entries_are_deleted_with_their_submission(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        mail = receive(s)
        sub = dbm.add_submission(
            s,
            mail_id=mail.id,
            unit_code="KT",
            form=make_form(entries=3),
            file_name="a.xlsx",
            file_sha256="1" * 64,
            received_at=T0,
        )
        sub_id = sub.id
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(SubmissionEntry)) == 3
        s.execute(text("DELETE FROM submissions WHERE id = :id"), {"id": sub_id})
        assert s.scalar(select(func.count()).select_from(SubmissionEntry)) == 0


def test_forms_on_file_are_the_valid_confirmed_ones_per_unit(database: Database) -> None:
    with database.session() as s:
        add_unit(s, "KT")
        add_unit(s, "HD")
        mails = [receive(s, uid=i, sha=f"{i:064x}") for i in range(1, 5)]

        def add(i: int, unit: str, form: str, **kw: bool) -> Submission:
            return dbm.add_submission(
                s,
                mail_id=mails[i].id,
                unit_code=unit,
                form=make_form(form, errors=int(kw.pop("bad", False))),
                file_name=f"{form}.xlsx",
                file_sha256=mails[i].sha256,
                received_at=T0 + timedelta(hours=i),
                **kw,
            )

        add(0, "KT", "M1")
        add(1, "KT", "M2", bad=True)
        add(2, "HD", "M2", awaiting_confirmation=True)
        add(3, "HD", "M1")
        assert dbm.forms_on_file(s, ["M1", "M2"]) == {
            "KT": frozenset({"M1"}),
            "HD": frozenset({"M1"}),
        }
        assert dbm.forms_on_file(s, ["M2"]) == {}
        # received, not counting: named as such in receipts, never as missing
        assert dbm.forms_not_counted(s, ["M1", "M2"]) == {
            "KT": {"M2": "errors"},
            "HD": {"M2": "awaiting"},
        }
        assert [x.form for x in dbm.all_submissions(s)] == ["M1", "M2", "M2", "M1"]


def test_many_forms_at_once_keep_the_newest_valid_and_revive_it(database: Database) -> None:
    # `add_submissions` settles each (unit, form) in one UPDATE: the newest confirmed valid
    # or superseded version is the valid one, whatever order the versions arrive in.
    with database.session() as s:
        add_unit(s, "KT")
        mails = [receive(s, uid=i, sha=f"{i:064x}") for i in range(1, 6)]

        def row(i: int, at_h: int) -> dict[str, object]:
            return {
                "mail_id": mails[i].id,
                "unit_code": "KT",
                "form": make_form(),
                "file_name": f"mau01-{i}.xlsx",
                "file_sha256": "0" * 64,
                "received_at": T0 + timedelta(hours=at_h),
            }

        def statuses() -> list[str]:
            return list(
                s.scalars(
                    select(Submission.status)
                    .where(Submission.unit_code == "KT")
                    .order_by(Submission.received_at)
                )
            )

        dbm.add_submissions(s, [row(0, 1), row(1, 2)])
        assert statuses() == ["superseded", "valid"]
        dbm.add_submissions(s, [row(2, 0)])  # older, recorded late: it does not win
        assert statuses() == ["superseded", "superseded", "valid"]
        # The newest was superseded by hand (say): the next settlement makes it valid again.
        s.execute(text("UPDATE submissions SET status = 'superseded' WHERE unit_code = 'KT'"))
        s.execute(
            text("UPDATE submissions SET status = 'valid' WHERE id = :i"),
            {"i": s.scalars(select(func.min(Submission.id))).one()},
        )
        s.expire_all()
        dbm.add_submissions(s, [row(3, -1)])
        assert statuses() == ["superseded", "superseded", "superseded", "valid"]
        latest = dbm.latest_valid_submission(s, "KT", "M1")
        assert latest is not None
        assert latest.mail_id == mails[1].id
