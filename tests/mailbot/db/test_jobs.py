"""Job runs claimed once and the event log."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from mailbot import db as dbm
from mailbot.db import (
    Database,
    Event,
)
from tests.mailbot.db.support import T0


def test_a_job_point_is_claimed_once_even_across_sessions(database: Database) -> None:
    with database.session() as s:
        assert dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0, detail="3 units")
        assert not dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0)
    with database.session() as s:
        assert dbm.job_done(s, "reminder", "2022-02-13T08:00+07:00")
        assert not dbm.claim_job_run(s, "reminder", "2022-02-13T08:00+07:00", T0)
        assert dbm.claim_job_run(s, "digest", "2022-02-13", T0 + timedelta(hours=1))
        last = dbm.last_job_run(s, "digest")
        assert last is not None
        assert last.point == "2022-02-13"
    # A claim rolled back with its transaction is not a claim.
    with pytest.raises(RuntimeError), database.session() as s:
        dbm.claim_job_run(s, "reminder", "2022-02-17T08:00+07:00", T0)
        raise RuntimeError("crash before the reminders were queued")
    with database.session(write=False) as s:
        assert not dbm.job_done(s, "reminder", "2022-02-17T08:00+07:00")


def test_events_are_listed_from_a_moment(database: Database) -> None:
    with database.session() as s:
        dbm.add_event(s, "unknown-sender", at=T0, detail="x@example.org")
        dbm.add_event(s, "unreadable-file", at=T0 + timedelta(hours=2), unit_code="KT")
        assert [e.kind for e in dbm.events_since(s, T0 + timedelta(hours=1))] == ["unreadable-file"]
        assert s.scalar(select(func.count()).select_from(Event)) == 2
