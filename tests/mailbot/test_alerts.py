"""Operator alerts against real servers: Dovecot stopped and started again, aiosmtpd stopped
and started again on the same port; one alert, one recovery, none repeated, none after restart."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

import tests.support.dovecot as dovecot_support
import tests.support.smtpd as smtpd_support
from mailbot import db as dbm
from mailbot.alerts import IMAP, SMTP, AlertWatch
from mailbot.app import App, open_app
from mailbot.commands.intake import AlertHooks, daemon_pass
from mailbot.config import load_config
from mailbot.sources import SourceError
from tests.support.dovecot import Account, DovecotUnavailable, find_dovecot, start_dovecot
from tests.support.smtpd import SmtpServer, start_smtpd

T0 = datetime(2022, 2, 15, 2, 0, tzinfo=UTC)  # 09:00 in Hanoi
OPERATORS = ("vanhanh@thanhxuan.example", "it@thanhxuan.example")


@dataclass
class FakeClock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, minutes: float) -> None:
        self.now = T0 + timedelta(minutes=minutes)


def _config(tmp_path: Path, inbox: str, outgoing: str, recipients=OPERATORS) -> Path:  # noqa: ANN001
    path = tmp_path / "mailbot.toml"
    rcpts = ", ".join(f'"{r}"' for r in recipients)
    secret = 'password_env = "MAILBOT_TEST_ALERT_PW"\n' if inbox.startswith("imap") else ""
    path.write_text(
        f'[inbox]\nurl = "{inbox}"\n{secret}timeout_seconds = 5\n'
        f'[outgoing]\nurl = "{outgoing}"\ntimeout_seconds = 5\nmessage_id_domain = "mailbot.test"\n'
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n'
        f"[processing]\nworkers = 0\n"
        f"[alerts]\nrecipients = [{rcpts}]\nafter_minutes = 30\n",
        encoding="utf-8",
    )
    return path


class Daemon:
    """The daemon's pass with its alerts, on a fake clock; `restart()` is a new process."""

    def __init__(self, config_path: Path, clock: FakeClock) -> None:
        self.config = load_config(config_path)
        self.clock = clock
        self._cm: Iterator[App] | None = None
        self.start()

    def start(self) -> None:
        self._cm = open_app(self.config)
        self.app = self._cm.__enter__()  # type: ignore[attr-defined]
        self.robot = self.app.robot()
        self.robot.clock = self.clock
        self.alerts = AlertWatch(
            self.config,
            self.app.database,
            self.clock,
            campaign=self.app.campaign,
            where={IMAP: "imap", SMTP: "smtp"},
        )
        self.hooks = AlertHooks(self.alerts, self.robot)

    def stop(self) -> None:
        assert self._cm is not None
        self._cm.__exit__(None, None, None)  # type: ignore[attr-defined]

    def restart(self) -> None:
        self.stop()
        self.start()

    def pass_at(self, minutes: float) -> bool:
        """One pass at T0 + minutes; False when the mailbox did not answer."""
        self.clock.at(minutes)
        try:
            daemon_pass(self.robot, self.hooks)
        except SourceError:
            return False
        return True

    def alert_rows(self) -> list[dbm.Outbox]:
        with self.app.database.session(write=False) as s:
            query = select(dbm.Outbox).where(dbm.Outbox.kind == "alert").order_by(dbm.Outbox.id)
            return list(s.scalars(query))


def _subjects(server: SmtpServer) -> list[str]:
    import email
    import email.policy

    out = []
    for m in server.messages:
        msg = email.message_from_bytes(m.data, policy=email.policy.default)
        out.append(str(msg["Subject"]))
        assert sorted(m.rcpt_tos) == sorted(OPERATORS)
    return out


@pytest.fixture
def smtpd() -> Iterator[SmtpServer]:
    server = start_smtpd()
    yield server
    server.stop()


@pytest.mark.dovecot
def test_mailbox_down_one_alert_one_recovery_none_after_restart(
    tmp_path, smtpd, monkeypatch, caplog
) -> None:  # noqa: ANN001
    if find_dovecot() is None:
        pytest.skip("dovecot is not installed")
    account = Account("alerts.user", "alert-pass-1")
    monkeypatch.setenv("MAILBOT_TEST_ALERT_PW", account.password)
    try:
        server = start_dovecot(users=(account,))
    except DovecotUnavailable as exc:
        pytest.skip(str(exc))
    port = server.port
    cfg = _config(tmp_path, server.url(account), smtpd.url())
    daemon = Daemon(cfg, FakeClock())
    try:
        assert daemon.pass_at(0)
        server.stop()
        with caplog.at_level(logging.INFO, logger="mailbot.alerts"):
            assert not daemon.pass_at(1)
            assert not daemon.pass_at(29)
            assert smtpd.messages == []  # under 30 minutes: nothing
            assert not daemon.pass_at(31)
        assert any("ALERT: imap unreachable" in r.getMessage() for r in caplog.records)
        # Sent at once over the working SMTP server, although the mailbox is down.
        assert _subjects(smtpd) == ["[mailbot – CẢNH BÁO] Không kết nối được hộp thư đến (IMAP)"]
        assert not daemon.pass_at(45)
        assert not daemon.pass_at(120)
        daemon.restart()  # state in the database: no second alert after a restart
        assert not daemon.pass_at(130)
        assert len(smtpd.messages) == 1

        monkeypatch.setattr(dovecot_support, "free_port", lambda: port)
        server = start_dovecot(users=(account,))
        assert daemon.pass_at(140)
        assert _subjects(smtpd)[1:] == [
            "[mailbot – ĐÃ KHÔI PHỤC] Hộp thư đến (IMAP) đã hoạt động trở lại"
        ]
        assert "sau 139 phút gián đoạn" in _text(smtpd.messages[1].data)
        assert daemon.pass_at(150)
        daemon.restart()
        assert daemon.pass_at(160)
        assert len(smtpd.messages) == 2
        assert [r.status for r in daemon.alert_rows()] == ["sent", "sent"]
    finally:
        daemon.stop()
        server.stop()


def test_smtp_down_alert_waits_for_smtp_then_goes_with_the_recovery(
    tmp_path, monkeypatch, caplog
) -> None:  # noqa: ANN001
    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    smtpd = start_smtpd()
    port = smtpd.port
    cfg = _config(tmp_path, f"maildir:{inbox}", smtpd.url())
    daemon = Daemon(cfg, FakeClock())
    try:
        assert daemon.pass_at(0)
        smtpd.stop()
        with daemon.app.database.session() as s:  # a receipt waiting to go
            dbm.queue_outgoing(
                s,
                kind="notice",
                message_id="<n1@mailbot.test>",
                to_addrs=["donvi@thanhxuan.example"],
                subject="Thông báo",
                raw=b"Subject: x\r\n\r\nx\r\n",
                now=T0,
            )
        with caplog.at_level(logging.INFO, logger="mailbot.alerts"):
            assert daemon.pass_at(1)  # the notice fails: SMTP is down
            assert daemon.pass_at(10)  # nothing due: a probe finds it still down
            assert daemon.alert_rows() == []
            assert daemon.pass_at(31)
        # Logged at once, queued; it cannot go yet.
        logged = [r.getMessage() for r in caplog.records]
        assert any("ALERT: smtp unreachable" in m for m in logged)
        assert any("waits in the outbox" in m for m in logged)
        (row,) = daemon.alert_rows()
        assert row.status == "queued" and row.recipients == list(OPERATORS)
        for minute in (40, 60, 240, 600):  # a long outage: retried, never given up
            assert daemon.pass_at(minute)
        daemon.restart()
        assert daemon.pass_at(700)
        assert len(daemon.alert_rows()) == 1

        monkeypatch.setattr(smtpd_support, "free_port", lambda: port)
        smtpd = start_smtpd()
        assert daemon.pass_at(710)
        assert _subjects(smtpd) == [
            "[mailbot – CẢNH BÁO] Không kết nối được máy chủ gửi thư (SMTP)",
            "[mailbot – ĐÃ KHÔI PHỤC] Máy chủ gửi thư (SMTP) đã hoạt động trở lại",
        ]
        assert daemon.pass_at(720)
        daemon.restart()
        assert daemon.pass_at(730)
        assert len(smtpd.messages) == 2
    finally:
        daemon.stop()
        smtpd.stop()


def _text(raw: bytes) -> str:
    import email
    import email.policy

    msg = email.message_from_bytes(raw, policy=email.policy.default)
    return str(msg.get_body(("plain",)).get_content())  # type: ignore[union-attr]


def _quarantine_one(database: dbm.Database, n: int, now: datetime) -> int:
    with database.session() as s:
        mail, _ = dbm.record_received(
            s,
            source="maildir:test",
            uidvalidity=None,
            uid=None,
            message_id=f"<q{n}@unit.example>",
            sha256=f"{n:064x}",
            raw_path=f"raw/{n}",
            size=10,
            from_addr=f"donvi{n}@thanhxuan.example",
            subject=f"Biểu mẫu {n}",
            received_at=now,
        )
        dbm.quarantine(s, mail, "processing-failed", now)
        return mail.id


def test_quarantine_alert_once_per_new_mail_and_once_when_empty(tmp_path, caplog) -> None:
    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    cfg = _config(tmp_path, f"maildir:{inbox}", f"dir:{tmp_path / 'out'}")
    clock = FakeClock()
    daemon = Daemon(cfg, clock)
    try:
        db = daemon.app.database
        first = _quarantine_one(db, 1, T0)
        assert daemon.alerts.check_quarantine()
        assert not daemon.alerts.check_quarantine()
        daemon.restart()
        assert not daemon.alerts.check_quarantine()
        second = _quarantine_one(db, 2, T0)
        assert daemon.alerts.check_quarantine()
        rows = daemon.alert_rows()
        assert [r.subject for r in rows] == [
            "[mailbot – CẢNH BÁO] 1 thư mới bị giữ lại, chờ cán bộ xử lý"
        ] * 2
        text = _text(rows[1].raw)
        assert f"Thư số {second} từ donvi2@thanhxuan.example" in text
        assert f"Thư số {first} " not in text
        with db.session() as s:
            for mail_id in (first, second):
                mail = dbm.get_mail(s, mail_id)
                assert mail is not None
                dbm.reject(s, mail, T0)
        assert daemon.alerts.check_quarantine()
        assert not daemon.alerts.check_quarantine()
        assert daemon.alert_rows()[-1].subject == (
            "[mailbot – ĐÃ KHÔI PHỤC] Không còn thư nào bị giữ lại"
        )
        # The daemon's pass sends them through the one outbox.
        assert daemon.pass_at(1)
        assert [r.status for r in daemon.alert_rows()] == ["sent"] * 3
        assert len(list((tmp_path / "out").glob("*.eml"))) == 3
    finally:
        daemon.stop()


def test_without_recipients_alerts_are_logged_only(tmp_path, caplog) -> None:
    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    cfg = _config(tmp_path, f"maildir:{inbox}", f"dir:{tmp_path / 'out'}", recipients=())
    daemon = Daemon(cfg, FakeClock())
    try:
        with caplog.at_level(logging.INFO, logger="mailbot.alerts"):
            daemon.alerts.failed(IMAP, "refused")
            daemon.clock.at(31)
            assert daemon.alerts.failed(IMAP, "refused")
            assert not daemon.alerts.failed(IMAP, "refused")
            assert daemon.alerts.ok(IMAP)
        assert daemon.alert_rows() == []
        logged = [r.getMessage() for r in caplog.records]
        assert sum("ALERT: imap" in m for m in logged) == 1
        assert sum("RECOVERED: imap" in m for m in logged) == 1
        # A short outage, under the limit: no alert, no recovery mail.
        daemon.clock.at(40)
        assert not daemon.alerts.failed(SMTP, "refused")
        daemon.clock.at(50)
        assert not daemon.alerts.ok(SMTP)
    finally:
        daemon.stop()
