"""The campaign clock inside `mailbot run`: APScheduler only wakes us; job_runs decide.

APScheduler 3.x keeps little state we could trust (a run missed while the daemon was down is
silently dropped, stored job options outlive code changes), so jobs live in a MemoryJobStore
with fixed ids and each one just calls `catch_up()`. catch_up looks at the database, queues
whatever is due and not yet handled (claiming the point in the same transaction), and sends
those rows through the outbox. The daemon also calls it after every inbox pass and at
start-up, so a reminder missed at 08:00 still goes out at 10:00 the same day, and never twice.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.memory import MemoryJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from mailbot import outbox
from mailbot.campaign.digest import queue_digest
from mailbot.campaign.reminders import queue_reminders
from mailbot.campaign.schedule import digest_time, parse_hhmm
from mailbot.clock import Clock, utc_now
from mailbot.staff.links import digest_links
from mailbot.transport import Sender, open_sender

if TYPE_CHECKING:
    from mailbot.app import App

log = logging.getLogger(__name__)

REMINDER_JOB_ID = "mailbot-campaign-reminders"
DIGEST_JOB_ID = "mailbot-campaign-digest"


@dataclass(frozen=True)
class CatchUp:
    """What one catch-up did."""

    reminders: int = 0
    digest: bool = False
    sent: int = 0
    failed: int = 0
    error: str | None = None


def send_queued(
    app: App, ids: list[int], clock: Clock, sender: Sender | None = None
) -> tuple[int, int]:
    """Send these just-queued outbox rows now; a private sender unless one is given.

    The intake's sender object is not shared: catch_up may run on the scheduler's thread while
    the daemon's loop is sending receipts on its own connection. Rows another sender claimed
    first are left to it.
    """
    if not ids:
        return 0, 0
    own = sender is None
    sender = sender or open_sender(app.config.outgoing, base_dir=app.config.base_dir)
    try:
        return outbox.deliver(
            app.database, sender, app.config.outgoing, clock, ids=ids, state=app.sender_state
        )
    finally:
        if own:
            with contextlib.suppress(Exception):
                sender.close()


class CampaignScheduler:
    """Wakes the campaign jobs at the reminder and digest times; catch_up does the work."""

    def __init__(
        self,
        app: App,
        clock: Clock = utc_now,
        *,
        sender_factory: Callable[[], Sender] | None = None,
    ) -> None:
        self.app = app
        self.clock = clock
        self._sender_factory = sender_factory
        self._lock = threading.Lock()
        self._scheduler: BackgroundScheduler | None = None

    def start(self, *, catch_up: bool = True) -> None:
        """Start the background scheduler and (by default) catch up once right away."""
        campaign, config = self.app.campaign, self.app.config
        tz = campaign.tz
        scheduler = BackgroundScheduler(
            jobstores={"default": MemoryJobStore()},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600},
            timezone=tz,
        )
        remind_at = parse_hhmm(campaign.reminder_time)
        digest_at = digest_time(config, campaign)
        scheduler.add_job(
            self._wake,
            CronTrigger(hour=remind_at.hour, minute=remind_at.minute, timezone=tz),
            id=REMINDER_JOB_ID,
            name="campaign reminders",
            replace_existing=True,
        )
        scheduler.add_job(
            self._wake,
            CronTrigger(hour=digest_at.hour, minute=digest_at.minute, timezone=tz),
            id=DIGEST_JOB_ID,
            name="staff digest",
            replace_existing=True,
        )
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "campaign scheduler started: reminders at %s, digest at %s (%s)",
            remind_at.strftime("%H:%M"),
            digest_at.strftime("%H:%M"),
            tz,
        )
        if catch_up:
            self.catch_up()

    def jobs(self) -> list[Any]:
        """The scheduler's jobs (for status and tests)."""
        return [] if self._scheduler is None else self._scheduler.get_jobs()

    def _wake(self) -> None:
        self.catch_up()

    def catch_up(self, now: datetime | None = None) -> CatchUp:
        """Queue and send whatever is due and not yet done; never raises (errors are logged)."""
        with self._lock:
            try:
                return self._catch_up(now or self.clock())
            except Exception as exc:  # noqa: BLE001 - the daemon must keep running
                log.exception("campaign catch-up failed")
                return CatchUp(error=f"{type(exc).__name__}: {exc}")

    def _catch_up(self, now: datetime) -> CatchUp:
        app = self.app
        with app.database.session() as s:
            queued = queue_reminders(s, app.campaign, app.config, now)
        reminders = len(queued)
        with app.database.session() as s:
            links = digest_links(app.config, now, s)
            digest_id = queue_digest(s, app.campaign, app.config, now, link_for=links)
        digest = digest_id is not None
        if digest_id is not None:
            queued.append(digest_id)
        sender = self._sender_factory() if self._sender_factory is not None else None
        try:
            sent, failed = send_queued(app, queued, self.clock, sender)
        finally:
            if sender is not None:
                with contextlib.suppress(Exception):
                    sender.close()
        if reminders or digest or sent or failed:
            log.info(
                "campaign catch-up: reminders=%d digest=%s sent=%d failed=%d",
                reminders,
                digest,
                sent,
                failed,
            )
        return CatchUp(reminders=reminders, digest=digest, sent=sent, failed=failed)

    def shutdown(self) -> None:
        """Stop the scheduler, waiting for a running job to finish."""
        if self._scheduler is not None:
            with contextlib.suppress(Exception):
                self._scheduler.shutdown(wait=True)
            self._scheduler = None
