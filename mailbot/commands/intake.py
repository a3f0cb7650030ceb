"""`mailbot run`, `mailbot poll --once` and `mailbot reprocess`: the intake commands."""

from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from mailbot.backoff import Backoff
from mailbot.clock import utc_now
from mailbot.config import Config, ConfigError
from mailbot.notify import (
    Notifier,
    StopRequested,
    daemon_status,
    sliced_wait,
    stop_between_mails,
)

# The database and the app are imported inside the commands: `mailbot --help` stays fast.
if TYPE_CHECKING:
    from mailbot.alerts import AlertWatch
    from mailbot.app import App
    from mailbot.service import PassStats, Robot
    from mailbot.sources import Source
    from mailbot.workers import Decider

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="chạy thường trực: nhận thư, trả lời, nhắc hạn, gửi tổng hợp")
    p.set_defaults(func=run)
    p = sub.add_parser("poll", help="xử lý hộp thư một lượt")
    p.add_argument("--once", action="store_true", required=True, help="một lượt rồi thoát")
    p.set_defaults(func=poll)
    p = sub.add_parser("reprocess", help="xử lý lại thư bị cách ly hoặc lỗi (sau khi đã sửa)")
    p.add_argument(
        "mail_ids",
        nargs="*",
        type=int,
        metavar="ID",
        help="mã thư (mặc định: mọi thư bị cách ly vì lỗi xử lý)",
    )
    p.set_defaults(func=reprocess)


def _locked(
    config: Config, decider: Decider | None = None
) -> contextlib.AbstractContextManager[App]:
    from mailbot.app import open_app

    return open_app(config, exclusive=True, decider=decider)


@contextlib.contextmanager
def _few_collections() -> Iterator[None]:
    """Collect garbage less often for one pass: its imports and its mails allocate many
    containers but leave few reference cycles (most of the default's collections were for
    nothing: about 0.2 CPU-s of a short pass)."""
    from mailbot.workers_zygote import GC_THRESHOLDS

    before = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)
    try:
        yield
    finally:
        # What the pass built is old by now: moved to the oldest generation as it is, not by
        # the scan of it all (~50 ms) that the default thresholds would start at once.
        gc.freeze()
        gc.unfreeze()
        gc.set_threshold(*before)


def poll(args: argparse.Namespace, config: Config) -> int:
    with _few_collections():
        from mailbot.workers import configured_decider

        # The workers start first: they import the parsers while this process imports the
        # database layer and opens the mailbox (a second on a small machine).
        decider = configured_decider(config)
        decider.start()
        early = EarlyMailbox.start(config)
        try:
            with _locked(config, decider) as app:
                if early is not None:
                    app.source = early.take()  # the app closes it from now on
                    early = None
                return poll_once(app)
        finally:
            if early is not None:
                early.take().close()
            decider.close()


class EarlyMailbox:
    """The IMAP inbox, logged in by a thread while this process imports the database layer
    and opens the record: the server's answers (connection, login, SELECT) are waited for
    meanwhile rather than after. Nothing is read or changed in the mailbox before the pass."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self._thread = threading.Thread(target=self._connect, name="imap-connect", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, config: Config) -> EarlyMailbox | None:
        """Start connecting to an IMAP inbox; None when the pass should open it as before
        (a Maildir, or a configuration error the pass reports before contacting a server)."""
        if config.inbox.url.split(":", 1)[0].lower() not in ("imap", "imaps"):
            return None
        try:
            config.inbox.password.resolve()
            config.outgoing.password.resolve()
            from mailbot.sources import open_source

            return cls(open_source(config.inbox, base_dir=config.base_dir))
        except ConfigError:
            return None

    def _connect(self) -> None:
        try:
            self.source.uidvalidity()
        except Exception as exc:  # noqa: BLE001 - the pass connects again and says why not
            log.debug("early IMAP connection failed: %s", exc)

    def take(self) -> Source:
        """The source, once the thread is done with it (connected or not)."""
        self._thread.join()
        return self.source


def poll_once(app: App) -> int:
    """One pass over the inbox and the outbox, its figures printed."""
    from mailbot.app import terminal_progress

    progress = terminal_progress()
    stats = app.robot(progress=progress).run_once()
    if progress:
        sys.stderr.write("\r\033[K")
    print(f"mailbot: {stats.said()}")
    return 0


def run_daemon(
    app: App,
    stop: threading.Event,
    on_pass: Callable[..., object] | None = None,
    *,
    heartbeat: Callable[[], None] | None = None,
    max_wait: float | None = None,
    alerts: AlertWatch | None = None,
) -> None:
    """Loop until `stop`: a full pass, then wait for IDLE news or the poll interval.

    Nothing but `stop` ends the loop: an unreachable mailbox, a busy database or a bug in one
    stage is logged and retried with back-off, as the next pass may well succeed. `stop`
    ends it after the mail in hand; `heartbeat` is called at least every `max_wait` seconds.
    `alerts` hears whether the mailbox and the SMTP server answer, and looks at the quarantine.
    """
    from mailbot.sources import SourceError

    robot = app.robot()
    robot.decider.start()  # its imports and templates now, not with the first mail
    robot.progress = robot.progress or stop_between_mails(stop, heartbeat)
    watch = AlertHooks(alerts, robot)

    def pause(seconds: float, wait: Callable[[float, threading.Event], bool] | None = None) -> bool:
        return sliced_wait(wait or (lambda t, ev: ev.wait(t)), seconds, stop, heartbeat, max_wait)

    backoff = Backoff(base=1.0, cap=300.0)
    interval = max(1, app.config.inbox.poll_interval_seconds)
    while not stop.is_set():
        try:
            stats = daemon_pass(robot, watch)
            if stats.fetched or stats.sent or stats.failed:
                log.info("pass: %s", stats)
            if on_pass is not None:
                on_pass(robot)
            backoff.reset()
        except StopRequested:
            break
        except SourceError as exc:
            wait = backoff.failed()
            log.warning("mailbox unavailable (%s); retrying in %.0fs", exc, wait)
            pause(wait)
            continue
        except ConfigError:
            raise  # a missing secret does not come back by waiting: stop with the message
        except Exception:  # noqa: BLE001 - the daemon must outlive one failed pass
            wait = backoff.failed()
            log.exception("pass failed; retrying in %.0fs", wait)
            pause(wait)
            continue
        if stats.fetched:
            # Mail that arrived during this pass may have been announced in the answer to
            # one of its commands (FETCH, MOVE), not to the IDLE that follows: look again
            # at once rather than wait for the next wake-up or the poll interval.
            continue
        try:
            pause(interval, robot.source.wait)
        except SourceError as exc:
            log.warning("waiting on the mailbox failed: %s", exc)
            watch.mailbox_failed(exc)
            pause(min(backoff.next_delay(), interval))


def daemon_pass(robot: Robot, watch: AlertHooks) -> PassStats:
    """One pass of the daemon: the robot's pass, then what the operator alerts hear of it.

    A SourceError (the mailbox did not answer) is noted, the outbox still delivered (an alert
    among it), and raised again for the loop's back-off.
    """
    from mailbot.sources import SourceError

    watch.attempted = False
    try:
        stats = robot.run_once()
    except SourceError as exc:
        watch.mailbox_failed(exc)
        raise
    watch.after_pass(mailbox_ok=True)
    return stats


class AlertHooks:
    """What the daemon loop tells the operator alerts; nothing at all without them."""

    def __init__(self, alerts: AlertWatch | None, robot: Robot) -> None:
        self.alerts = alerts
        self.robot = robot
        self.attempted = False
        robot.on_delivery = self.delivery if alerts is not None else None

    def delivery(self, error: Exception | None) -> None:
        """One delivery attempt: the server took it, or a temporary failure (its fault)."""
        from mailbot.alerts import SMTP
        from mailbot.transport import TemporaryFailure

        if self.alerts is None:
            return
        self.attempted = True
        if error is None:
            self.alerts.ok(SMTP)
        elif isinstance(error, TemporaryFailure):
            self.alerts.failed(SMTP, str(error))

    def _guarded(self, what: str, job: Callable[[], object]) -> None:
        try:
            job()
        except StopRequested:
            raise
        except Exception:  # noqa: BLE001 - alerts must never stop the daemon
            log.exception("operator alerts: %s failed", what)

    def after_pass(self, *, mailbox_ok: bool) -> None:
        """After a pass: the mailbox answered (or not), the quarantine, an SMTP probe."""
        from mailbot.alerts import IMAP, SMTP

        alerts = self.alerts
        if alerts is None:
            return
        queued: list[object] = []
        if mailbox_ok:
            self._guarded("mailbox", lambda: queued.append(alerts.ok(IMAP)))
        self._guarded("quarantine", lambda: queued.append(alerts.check_quarantine()))
        if any(queued):
            self._guarded("outbox", self.robot.deliver)  # the alert goes now, not next pass
        if not self.attempted and alerts.failing(SMTP):
            self._guarded("SMTP probe", self._probe_smtp)
        self.attempted = False

    def _probe_smtp(self) -> None:
        """Nothing was due to send, but SMTP was failing: ask it whether it is back."""
        from mailbot.alerts import SMTP
        from mailbot.transport import TemporaryFailure

        assert self.alerts is not None
        probe = getattr(self.robot.sender, "probe", None)
        if probe is None:
            return
        try:
            probe()
        except TemporaryFailure as exc:
            self.alerts.failed(SMTP, str(exc))
            return
        self.alerts.ok(SMTP)
        self.robot.deliver()  # the alerts (and receipts) that waited for it

    def mailbox_failed(self, exc: Exception) -> None:
        """The mailbox did not answer: note it, and still send what waits (the alert too)."""
        from mailbot.alerts import IMAP

        alerts = self.alerts
        if alerts is None:
            return
        self._guarded("mailbox", lambda: alerts.failed(IMAP, str(exc)))
        self._guarded("outbox", self.robot.deliver)
        self.after_pass(mailbox_ok=False)


def run(args: argparse.Namespace, config: Config) -> int:
    stop = threading.Event()
    notifier = Notifier()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping", signum)
        notifier.stopping()
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    lost = threading.Event()
    with _daemon_app(config, stop, notifier, lost) as app:
        if app is None:
            log.info("stopped while on standby")
            notifier.close()
            return 0
        log.info(
            "mailbot started: mailbox %s, inbox %s, data %s",
            config.mailbox_name or "(single)",
            _safe_url(config.inbox.url),
            config.data_dir,
        )
        from parsers.convert import clean_stale_temp
        from parsers.safety import DEFAULT_LIMITS

        # Conversions of a daemon or worker killed before their `finally` ran.
        stale = clean_stale_temp(
            max(float(config.processing.timeout_seconds), DEFAULT_LIMITS.convert_timeout)
        )
        if stale:
            log.info("removed %d stale conversion directories", stale)
        from mailbot.alerts import IMAP, SMTP, AlertWatch
        from mailbot.campaign.health import DailyHealthLog
        from mailbot.scheduler import CampaignScheduler

        alerts = AlertWatch(
            config,
            app.database,
            utc_now,
            campaign=app.campaign,
            where={IMAP: _safe_url(config.inbox.url), SMTP: _safe_url(config.outgoing.url)},
        )

        health = DailyHealthLog(app.database, app.campaign)
        health.check(utc_now())
        scheduler = CampaignScheduler(app, clock=utc_now)
        scheduler.start()
        try:

            def after_pass(_robot: object) -> None:
                health.check(utc_now())
                scheduler.catch_up()
                notifier.ready(status := daemon_status(app.database, utc_now()))
                notifier.status(status)

            run_daemon(
                app,
                stop,
                on_pass=after_pass,
                heartbeat=notifier.watchdog,
                max_wait=notifier.max_wait,
                alerts=alerts,
            )
        finally:
            scheduler.shutdown()
    log.info("mailbot stopped")
    notifier.close()
    return 1 if lost.is_set() else 0


@contextlib.contextmanager
def _daemon_app(
    config: Config, stop: threading.Event, notifier: Notifier, lost: threading.Event
) -> Iterator[App | None]:
    """The daemon's app, once it holds the mailbox; None when stopped while on standby.

    On PostgreSQL a second daemon for the mailbox waits here as a hot standby; the holder's
    lock is watched, and its loss (the connection dropped) stops the daemon: `lost` is set.
    """
    from mailbot.app import Stopped, open_app

    def standby_wait() -> None:
        notifier.ready("Dự phòng: chờ tiếp nhận hộp thư khi mailbot đang chạy dừng lại")
        notifier.watchdog()

    def lock_lost() -> None:
        lost.set()
        stop.set()

    try:
        with open_app(config, exclusive=True, standby=stop, on_wait=standby_wait) as app:
            if app.mailbox_lock is not None:
                # The lock gone may be another daemon's by now: this one must stop.
                app.mailbox_lock.watch(lock_lost)
            yield app
    except Stopped:
        yield None


def _safe_url(url: str) -> str:
    """The URL without any password someone put into it."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}@{host}"
    return url


def reprocess(args: argparse.Namespace, config: Config) -> int:
    from mailbot import review
    from mailbot.app import terminal_progress

    with _locked(config) as app:
        now = utc_now()
        with app.database.session() as s:
            try:
                count = len(review.reprocess(s, now, args.mail_ids))
            except review.ReviewError as exc:
                print(f"mailbot: {exc}", file=sys.stderr)
                return 2
        robot = app.robot(progress=terminal_progress())
        done, failed = robot.process_due()
        robot.move_done()
        robot.deliver()
        print(f"mailbot: đưa {count} thư vào xử lý lại; thành công {done}, lỗi {failed}")
        return 0 if not failed else 1
