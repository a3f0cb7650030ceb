"""Repository of campaign job runs and the event log."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mailbot.db.driver import run_many
from mailbot.db.models import Event, JobRun, Mail, Outbox, utcnow


def add_event(
    session: Session,
    kind: str,
    *,
    at: datetime | None = None,
    mail_id: int | None = None,
    unit_code: str | None = None,
    detail: str | None = None,
) -> Event:
    """Note something for the staff digest."""
    ev = Event(at=at or utcnow(), kind=kind, mail_id=mail_id, unit_code=unit_code, detail=detail)
    session.add(ev)
    session.flush()
    return ev


def add_events(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """`add_event` for many at once (one executemany, no ORM objects); each row has the
    Event columns `kind`, `at`, `mail_id`, `unit_code`, `detail`."""
    values = [
        {
            "at": r.get("at") or utcnow(),
            "kind": r["kind"],
            "mail_id": r.get("mail_id"),
            "unit_code": r.get("unit_code"),
            "detail": r.get("detail"),
        }
        for r in rows
    ]
    if values:
        run_many(session, _INSERT_EVENT, values)


_INSERT_EVENT = insert(cast(Table, Event.__table__))


def events_since(
    session: Session, since: datetime, kinds: Iterable[str] | None = None
) -> list[Event]:
    """Events at or after a moment, oldest first."""
    query = select(Event).where(Event.at >= since)
    if kinds is not None:
        query = query.where(Event.kind.in_(list(kinds)))
    return list(session.scalars(query.order_by(Event.at, Event.id)))


# --------------------------------------------------------------------------- scheduled jobs


def job_done(session: Session, job: str, point: str) -> bool:
    """Whether this scheduled point (e.g. job "reminder", point "2022-02-13") was handled."""
    return (
        session.scalars(
            select(func.count()).select_from(JobRun).where(JobRun.job == job, JobRun.point == point)
        ).one()
        > 0
    )


def claim_job_run(
    session: Session, job: str, point: str, now: datetime, detail: str | None = None
) -> bool:
    """Mark a point handled; False if it already was. Queue its mails in the same transaction."""
    if job_done(session, job, point):
        return False
    try:
        # On PostgreSQL two daemons may get here at once: the unique (job, point) lets one win,
        # and the other's savepoint is rolled back without spoiling its transaction.
        with session.begin_nested():
            session.add(JobRun(job=job, point=point, done_at=now, detail=detail))
    except IntegrityError:
        return False
    return True


def last_job_run(session: Session, job: str) -> JobRun | None:
    """The most recent handled point of a job (e.g. when the last digest went out)."""
    return session.scalars(
        select(JobRun).where(JobRun.job == job).order_by(JobRun.done_at.desc(), JobRun.id.desc())
    ).first()


def job_runs(session: Session, jobs: Iterable[str]) -> list[JobRun]:
    """The handled points of these jobs, newest first."""
    return list(
        session.scalars(
            select(JobRun)
            .where(JobRun.job.in_(list(jobs)))
            .order_by(JobRun.done_at.desc(), JobRun.id.desc())
        )
    )


def queue_lengths(session: Session) -> tuple[int, int]:
    """How many mails wait to be processed and how many outgoing mails wait to be sent."""
    waiting = session.scalar(
        select(func.count())
        .select_from(Mail)
        .where(Mail.status.in_(("received", "retry", "processing")))
    )
    queued = session.scalar(
        select(func.count()).select_from(Outbox).where(Outbox.status == "queued")
    )
    return int(waiting or 0), int(queued or 0)
