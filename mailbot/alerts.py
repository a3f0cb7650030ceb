"""Operator alerts: the mailbox or SMTP unreachable too long, new mail in quarantine.

Each channel has one row in `alert_state`: since when it fails and whether the alert for
this failure went out. So one alert per failure and one on recovery, never repeated while the
state lasts, also across restarts. Alerts are queued in the one outbox (kind "alert"); an
SMTP outage is logged at once and its mail waits in the queue until SMTP works again.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from mailbot import db as dbm
from mailbot.clock import Clock
from mailbot.config import Config
from mailbot.contact import Contact, contact_of
from mailbot.mail.compose import compose, new_message_id
from outbox_templates import render
from rules.campaign import Campaign

log = logging.getLogger(__name__)

IMAP: Final = "imap"
SMTP: Final = "smtp"
QUARANTINE: Final = "quarantine"
CHANNEL_LABELS: Final = {
    IMAP: "hộp thư đến (IMAP)",
    SMTP: "máy chủ gửi thư (SMTP)",
    QUARANTINE: "thư bị giữ lại",
}
HINTS: Final = {
    IMAP: (
        "Đề nghị kiểm tra máy chủ thư, mạng và mật khẩu hộp thư ([inbox] trong tệp cấu hình; "
        "lệnh `mailbot check` cho biết lỗi cụ thể)."
    ),
    SMTP: (
        "Đề nghị kiểm tra máy chủ gửi thư, mạng và mật khẩu ([outgoing] trong tệp cấu hình; "
        "lệnh `mailbot check` cho biết lỗi cụ thể). Thư xác nhận, thư nhắc và thư này nằm "
        "trong hàng đợi và được gửi ngay khi máy chủ gửi thư hoạt động trở lại."
    ),
}
MAX_ERROR_CHARS: Final = 300
MAX_ITEMS: Final = 20


@dataclass(frozen=True)
class AlertView:
    """What one alert mail says."""

    event: str  # "down" | "up" | "quarantine" | "quarantine-clear"
    channel_label: str
    where: str
    since: datetime | None
    at: datetime
    minutes: int
    contact: Contact
    error: str | None = None
    hint: str = ""
    items: tuple[str, ...] = ()
    office_name: str = "Ban Dân vận Quận ủy Thanh Xuân"


def _minutes(delta: timedelta) -> int:
    return max(0, int(delta.total_seconds() // 60))


class AlertWatch:
    """Turns observations (a channel failed, worked; the quarantine) into at most one alert."""

    def __init__(
        self,
        config: Config,
        database: dbm.Database,
        clock: Clock,
        *,
        campaign: Campaign,
        where: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.contact = contact_of(config, campaign)
        self.database = database
        self.clock = clock
        self.after = timedelta(minutes=config.alerts.after_minutes)
        self.where = where or {}
        self._tz = ZoneInfo(config.timezone)

    def _local(self, when: datetime | None) -> datetime | None:
        return None if when is None else when.astimezone(self._tz)

    # -- the mailbox and the SMTP server ----------------------------------------------------

    def failed(self, channel: str, error: str) -> bool:
        """One failed attempt on `channel`; True when this raised the alert."""
        now = self.clock()
        error = " ".join(error.split())[:MAX_ERROR_CHARS]
        with self.database.session() as s:
            st = dbm.alert_state(s, channel, now)
            if st.failing_since is None:
                st.failing_since = now
            st.last_error = error
            st.updated_at = now
            if st.alerted_at is not None or now - st.failing_since < self.after:
                return False
            st.alerted_at = now
            since = st.failing_since
            log.error(
                "ALERT: %s unreachable since %s (%d min): %s",
                channel,
                since.isoformat(),
                _minutes(now - since),
                error,
            )
            view = AlertView(
                event="down",
                channel_label=CHANNEL_LABELS[channel],
                where=self.where.get(channel, ""),
                since=self._local(since),
                at=self._local(now) or now,
                minutes=_minutes(now - since),
                error=error,
                hint=HINTS.get(channel, ""),
                office_name=self.config.outgoing.from_name,
                contact=self.contact,
            )
            self._queue(s, view, f"alert:{channel}:down:{since.isoformat()}", now)
        if channel == SMTP:
            log.error("the SMTP alert waits in the outbox until the SMTP server works again")
        return True

    def ok(self, channel: str) -> bool:
        """One successful attempt on `channel`; True when this sent a recovery alert."""
        now = self.clock()
        with self.database.session() as s:
            st = dbm.alert_state(s, channel, now)
            since, alerted = st.failing_since, st.alerted_at
            if since is None:
                return False
            st.failing_since = None
            st.alerted_at = None
            st.last_error = None
            st.updated_at = now
            if alerted is None:
                log.info("%s works again after %d min", channel, _minutes(now - since))
                return False
            log.warning("RECOVERED: %s works again after %d min", channel, _minutes(now - since))
            view = AlertView(
                event="up",
                channel_label=CHANNEL_LABELS[channel],
                where=self.where.get(channel, ""),
                since=self._local(since),
                at=self._local(now) or now,
                minutes=_minutes(now - since),
                office_name=self.config.outgoing.from_name,
                contact=self.contact,
            )
            self._queue(s, view, f"alert:{channel}:up:{since.isoformat()}", now)
            if channel == SMTP:
                # Alerts queued during the outage may sit in a long back-off: send them now.
                dbm.hurry_queued(s, "alert", now)
        return True

    def failing(self, channel: str) -> bool:
        """Whether the channel's last observation was a failure."""
        with self.database.session(write=False) as s:
            st = s.get(dbm.AlertState, channel)
            return st is not None and st.failing_since is not None

    # -- the quarantine -----------------------------------------------------------------------

    def check_quarantine(self) -> bool:
        """Alert on mail newly quarantined since the last alert, and once when it is empty."""
        now = self.clock()
        with self.database.session() as s:
            st = dbm.alert_state(s, QUARANTINE, now)
            ids = dbm.quarantined_ids(s)
            new = [i for i in ids if i > st.last_seen_id]
            if not ids:
                if st.alerted_at is None:
                    return False
                since = st.failing_since
                st.failing_since = st.alerted_at = None
                st.updated_at = now
                log.warning("RECOVERED: no mail waits in quarantine any more")
                view = AlertView(
                    event="quarantine-clear",
                    channel_label=CHANNEL_LABELS[QUARANTINE],
                    where="",
                    since=self._local(since),
                    at=self._local(now) or now,
                    minutes=_minutes(now - since) if since else 0,
                    office_name=self.config.outgoing.from_name,
                    contact=self.contact,
                )
                self._queue(s, view, f"alert:quarantine:clear:{now.isoformat()}", now)
                return True
            if not new:
                return False
            mails = [m for m in dbm.mails_with_status(s, "quarantined") if m.id in set(new)]
            st.last_seen_id = max(ids)
            if st.failing_since is None:
                st.failing_since = now
            st.alerted_at = now
            st.updated_at = now
            log.warning("ALERT: %d new mail(s) in quarantine: ids %s", len(new), new)
            view = AlertView(
                event="quarantine",
                channel_label=CHANNEL_LABELS[QUARANTINE],
                where="",
                since=self._local(min(m.received_at for m in mails)) if mails else None,
                at=self._local(now) or now,
                minutes=0,
                items=_quarantine_items(mails),
                office_name=self.config.outgoing.from_name,
                contact=self.contact,
            )
            self._queue(s, view, f"alert:quarantine:{max(new)}", now)
        return True

    # -- the mail ----------------------------------------------------------------------------

    def _queue(self, s: dbm.Session, view: AlertView, dedupe_key: str, now: datetime) -> None:
        recipients = list(self.config.alerts.recipients)
        if not recipients:
            log.info("no [alerts] recipients: alert %s logged only", dedupe_key)
            return
        rendered = render("alert", view)
        out = self.config.outgoing
        mid, raw = compose(
            rendered=rendered,
            from_addr=out.from_address,
            from_name=out.from_name,
            to=recipients,
            message_id_domain=out.message_id_domain,
            auto_submitted="auto-generated",
            date=now,
            message_id=new_message_id(out.message_id_domain),
        )
        dbm.queue_outgoing(
            s,
            kind="alert",
            message_id=mid,
            to_addrs=recipients,
            subject=rendered.subject,
            raw=raw,
            dedupe_key=dedupe_key,
            now=now,
        )


def _quarantine_items(mails: Sequence[dbm.Mail]) -> tuple[str, ...]:
    from mailbot.campaign.status import QUARANTINE_REASONS

    items = []
    for mail in mails[:MAX_ITEMS]:
        reason = QUARANTINE_REASONS.get(mail.quarantine_reason or "", mail.quarantine_reason or "")
        subject = f" – “{mail.subject}”" if mail.subject else ""
        items.append(f"Thư số {mail.id} từ {mail.from_addr or '(không rõ)'}{subject}: {reason}")
    if len(mails) > MAX_ITEMS:
        items.append(f"… và {len(mails) - MAX_ITEMS} thư khác")
    return tuple(items)


__all__ = ["IMAP", "QUARANTINE", "SMTP", "AlertView", "AlertWatch"]
