"""CampaignScheduler in a real App: APScheduler jobs, catch-up across restarts, real SMTP."""

from __future__ import annotations

import email
import email.policy
import mailbox
import os
import re
import time
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import func, select

from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.scheduler import DIGEST_JOB_ID, REMINDER_JOB_ID, CampaignScheduler
from mailbot.service import Robot
from mailbot.sources import open_source
from tests.mailbot.campaign.support import at

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "tests" / "fixtures" / "forms"


def write_config(tmp_path: Path, outgoing: str, recipients: tuple[str, ...] = ()) -> Path:
    path = tmp_path / "mailbot.toml"
    rcpts = ", ".join(f'"{r}"' for r in recipients)
    path.write_text(
        f'units_file = "{ROOT / "data" / "units.csv"}"\n'
        f'[inbox]\nurl = "maildir:{tmp_path / "inbox"}"\nprocess_since = 2022-01-01\n'
        f'[outgoing]\nurl = "{outgoing}"\nmessage_id_domain = "mailbot.test"\n'
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n'
        f"[digest]\nrecipients = [{rcpts}]\n",
        encoding="utf-8",
    )
    return path


def mail_with(sender: str, *files: str, n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "bdv_quthanhxuan@hanoi.gov.vn"
    msg["Subject"] = "Gửi biểu đăng ký Dân vận khéo"
    msg["Message-ID"] = f"<unit-mail-{n}@unit.example>"
    msg["Date"] = "Mon, 14 Feb 2022 09:00:00 +0700"
    msg.set_content("Kính gửi Ban Dân vận, đơn vị gửi biểu mẫu đăng ký.")
    for name in files:
        msg.add_attachment(
            (FORMS / name).read_bytes(),
            maintype="application",
            subtype="octet-stream",
            filename=name,
        )
    return msg.as_bytes()


def drop(inbox: Path, raw: bytes, when: datetime | None = None) -> None:
    """Deliver into the Maildir; `when` is the simulated delivery time (the file's mtime)."""
    mailbox.Maildir(str(inbox), create=True).close()
    name = f"{time.time_ns()}.P{os.getpid()}.test"
    (inbox / "tmp" / name).write_bytes(raw)
    if when is not None:
        os.utime(inbox / "tmp" / name, (when.timestamp(), when.timestamp()))
    os.rename(inbox / "tmp" / name, inbox / "new" / name)


def run_intake(app, now: datetime) -> None:
    source = open_source(app.config.inbox, base_dir=app.config.base_dir)
    try:
        robot = Robot(
            app.config,
            app.database,
            app.store,
            source,
            app.outgoing(),
            app.campaign,
            clock=lambda: now,
        )
        robot.run_once()
    finally:
        source.close()


def captured_by_kind(smtp_server) -> dict[str, list[email.message.EmailMessage]]:
    out: dict[str, list] = {}
    for c in smtp_server.messages:
        msg = email.message_from_bytes(c.data, policy=email.policy.default)
        subject = str(msg["Subject"])
        kind = (
            "reminder"
            if subject.startswith("[Nhắc hạn")
            else "digest"
            if subject.startswith("[Báo cáo")
            else "other"
        )
        out.setdefault(kind, []).append(msg)
    return out


def test_jobs_have_fixed_ids_and_local_times(tmp_path) -> None:
    config = load_config(write_config(tmp_path, f"dir:{tmp_path / 'out'}", ("a@x.example",)))
    with open_app(config) as app:
        scheduler = CampaignScheduler(app, clock=lambda: at(1, 9))
        scheduler.start(catch_up=False)
        try:
            jobs = {j.id: j for j in scheduler.jobs()}
            assert set(jobs) == {REMINDER_JOB_ID, DIGEST_JOB_ID}
            tz = app.campaign.tz
            remind_next = jobs[REMINDER_JOB_ID].next_run_time.astimezone(tz)
            digest_next = jobs[DIGEST_JOB_ID].next_run_time.astimezone(tz)
            assert (remind_next.hour, remind_next.minute) == (8, 0)
            assert (digest_next.hour, digest_next.minute) == (7, 30)
        finally:
            scheduler.shutdown()
        assert scheduler.jobs() == []


def test_whole_campaign_with_restarts_over_smtp(tmp_path, smtp_server) -> None:
    """Hourly catch-ups, a daemon restart every day and twice on D-3, real mail in between."""
    config = load_config(write_config(tmp_path, smtp_server.url(), ("lanhdao@thanhxuan.example",)))
    inbox = tmp_path / "inbox"
    arrivals = {
        at(14, 10): mail_with("Hội LHPN <hoiphunu@thanhxuan.example>", "HoiLHPN_M1_M2.xlsx", n=1),
        at(15, 9): mail_with(
            "Liên đoàn Lao động <ldld@thanhxuan.example>", "LDLD quan M1.xlsx", n=2
        ),
        at(16, 9): mail_with(
            "Bí thư Đoàn <bithu.doan@gmail.example>", "Quan doan - dang ky DVK 2022.xlsx", n=3
        ),
        at(17, 10): mail_with(
            "Hội Khuyến học <khuyenhoc@thanhxuan.example>", "Hoi Khuyen hoc - thieu ten.xlsx", n=4
        ),
    }
    t = at(1, 0)
    clock = [t]  # the simulated time every catch-up reads
    restarts = {at(17, 8, 30), at(17, 9, 0)}
    app_cm = open_app(config)
    app = app_cm.__enter__()
    try:
        scheduler = CampaignScheduler(app, clock=lambda: clock[0])
        while t <= at(21, 0):
            clock[0] = t
            if t.hour == 0 or t in restarts:  # the daemon restarts on the same data directory
                app_cm.__exit__(None, None, None)
                app_cm = open_app(config)
                app = app_cm.__enter__()
                scheduler = CampaignScheduler(app, clock=lambda: clock[0])
            if t in arrivals:
                drop(inbox, arrivals[t], when=t)
                run_intake(app, t)
            result = scheduler.catch_up()
            assert result.error is None
            t += timedelta(minutes=30)
        with app.database.session(write=False) as s:
            rows = s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == "reminder")).all()
            assert {r.status for r in rows} == {"sent"}
            by_point: dict[datetime, set[str]] = {}
            for r in rows:
                by_point.setdefault(r.created_at.astimezone(app.campaign.tz), set()).add(
                    r.dedupe_key.rsplit(":", 1)[1]
                )
            mails = {m.id: m for m in s.scalars(select(dbm.Mail))}
            assert {m.status for m in mails.values()} == {"processed"}
    finally:
        app_cm.__exit__(None, None, None)

    # never on a weekend: D-7 (Sunday 13/02) and D-1 (Saturday 19/02) go out on the Fridays
    assert set(by_point) == {at(11, 8), at(17, 8), at(18, 8)}
    all_units = by_point[at(11, 8)]
    assert len(all_units) == 44
    # LHPN complete; LDLD partial; Quận đoàn (unconfirmed address) still lacks M2; Khuyến học
    # sent a faulty M2 after D-3
    assert by_point[at(17, 8)] == all_units - {"hoi-lhpn"}
    assert by_point[at(18, 8)] == all_units - {"hoi-lhpn"}
    captured = captured_by_kind(smtp_server)
    assert len(captured["reminder"]) == 44 + 43 + 43  # never twice despite restarts
    assert len(captured["digest"]) == 20  # 1..20 February at 07:30, one each
    ids = [str(m["Message-ID"]) for m in captured["reminder"]]
    assert len(set(ids)) == len(ids)
    last = captured["digest"][-1]
    text = last.get_body(("plain",)).get_content()
    overdue = re.findall(r", đã quá hạn \((\d+)\):", text)
    assert sum(int(n) for n in overdue) == 43
    assert "bithu.doan@gmail.example gửi biểu thay cho Quận đoàn Thanh Xuân" in text
    khuyen = [m for m in captured["reminder"] if m["To"] == "khuyenhoc@thanhxuan.example"]
    assert "chưa ghi tên" in khuyen[-1].get_body(("plain",)).get_content()


@pytest.mark.parametrize(
    ("first_start", "sent_point"),
    [(at(17, 10), at(17, 8)), (at(18, 7), None)],
    ids=["same-day", "next-day"],
)
def test_missed_point_on_start_up(tmp_path, first_start, sent_point) -> None:
    config = load_config(write_config(tmp_path, f"dir:{tmp_path / 'out'}"))
    with open_app(config) as app:
        scheduler = CampaignScheduler(app, clock=lambda: first_start)
        scheduler.start()  # catches up once at start-up
        try:
            with app.database.session(write=False) as s:
                count = s.scalar(select(func.count()).select_from(dbm.Outbox))
                runs = {r.point.split(":", 1)[1]: r.detail for r in s.scalars(select(dbm.JobRun))}
        finally:
            scheduler.shutdown()
    eml = list((tmp_path / "out").glob("*.eml")) if (tmp_path / "out").exists() else []
    if sent_point is None:
        assert count == 0 and eml == []
        assert all("skipped" in (d or "") for d in runs.values()) and len(runs) == 2
    else:
        assert count == 44 and len(eml) == 44
        assert "skipped" in runs[at(11, 8).isoformat()]
        assert "skipped" not in runs[sent_point.isoformat()]


def test_a_firing_job_wakes_the_catch_up_that_sends(tmp_path, smtp_server) -> None:
    """APScheduler itself fires the reminder job; the job only wakes catch_up, which sends."""
    config = load_config(write_config(tmp_path, smtp_server.url(), ("a@x.example",)))
    with open_app(config) as app:
        scheduler = CampaignScheduler(app, clock=lambda: at(11, 8, 1))
        scheduler.start(catch_up=False)
        try:
            assert smtp_server.messages == []
            job = next(j for j in scheduler.jobs() if j.id == REMINDER_JOB_ID)
            job.modify(next_run_time=datetime.now(job.next_run_time.tzinfo))
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not smtp_server.messages:
                time.sleep(0.1)
        finally:
            scheduler.shutdown()
        kinds = captured_by_kind(smtp_server)
        assert kinds.get("reminder"), "the fired job sent no reminder"
        with app.database.session(write=False) as s:
            runs = s.scalars(select(dbm.JobRun).where(dbm.JobRun.job == "reminder")).all()
        assert len(runs) == 1


def test_reminders_only_on_working_days_at_a_fixed_clock(tmp_path) -> None:
    """Catch-up every 30 minutes from 10 to 20 February 2022: reminders only on working days.

    The deadline "trước ngày 20/02/2022" ends with Saturday 19/02: D-7 (Sunday 13/02) goes out
    on Friday 11/02, D-3 on Thursday 17/02, D-1 (Saturday 19/02) on Friday 18/02.
    """
    config = load_config(write_config(tmp_path, f"dir:{tmp_path / 'out'}"))
    clock = [at(10, 0)]
    with open_app(config) as app:
        scheduler = CampaignScheduler(app, clock=lambda: clock[0])
        while clock[0] < at(20, 0):
            assert scheduler.catch_up().error is None
            clock[0] += timedelta(minutes=30)
        with app.database.session(write=False) as s:
            rows = s.scalars(select(dbm.Outbox).where(dbm.Outbox.kind == "reminder")).all()
            tz = app.campaign.tz
            days = {r.created_at.astimezone(tz).date().day for r in rows}
            subjects = {
                r.created_at.astimezone(tz).date().day: r.subject
                for r in rows
                if r.dedupe_key.endswith(":mttq")
            }
    assert days == {11, 17, 18}
    assert not days & {12, 13, 19}
    assert len(rows) == 3 * 44 and {r.status for r in rows} == {"sent"}
    assert subjects[11].startswith("[Nhắc hạn – còn 9 ngày]")
    assert subjects[17].startswith("[Nhắc hạn – còn 3 ngày]")
    assert subjects[18].startswith("[Nhắc hạn – còn 2 ngày]")
    assert all("hạn cuối: hết ngày 19/02/2022 (thứ Bảy)" in s for s in subjects.values())
