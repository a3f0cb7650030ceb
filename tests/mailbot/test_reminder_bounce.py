"""A reminder that bounces: the real DSN comes back through the inbox and reaches staff."""

from __future__ import annotations

import email
import email.policy

from sqlalchemy import select

from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.campaign.digest import build_digest
from mailbot.config import load_config
from mailbot.scheduler import CampaignScheduler
from outbox_templates import render
from tests.mailbot.campaign.support import at
from tests.mailbot.test_scheduler import drop, run_intake, write_config


def _dsn(original: email.message.EmailMessage, recipient: str) -> bytes:
    return (
        "From: MAILER-DAEMON@mx.thanhxuan.example\r\n"
        "To: bdv_quthanhxuan@hanoi.gov.vn\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-reminder-1@mx.thanhxuan.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
        "--B\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        "--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.thanhxuan.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        "Diagnostic-Code: smtp; 550 5.1.1 User unknown\r\n"
        "--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Message-ID: {original['Message-ID']}\r\nSubject: reminder\r\n"
        "--B--\r\n"
    ).encode()


def test_bounced_reminder_is_matched_and_shown_in_the_digest(tmp_path, smtp_server):
    config = load_config(write_config(tmp_path, smtp_server.url(), ("canbo@hanoi.example",)))
    with open_app(config) as app:
        CampaignScheduler(app, clock=lambda: at(11, 8, 5)).catch_up()
        sent = [
            email.message_from_bytes(c.data, policy=email.policy.default)
            for c in smtp_server.messages
        ]
        reminders = [m for m in sent if str(m["Subject"]).startswith("[Nhắc hạn")]
        assert reminders and all(m["Auto-Submitted"] == "auto-generated" for m in reminders)
        victim = reminders[0]
        recipient = str(victim["To"]).split("<")[-1].rstrip(">").strip()

        drop(tmp_path / "inbox", _dsn(victim, recipient), when=at(11, 9, 0))
        run_intake(app, at(11, 9, 0))

        with app.database.session(write=False) as s:
            row = s.scalars(
                select(dbm.Outbox).where(dbm.Outbox.message_id == victim["Message-ID"])
            ).one()
            assert row.status == "bounced"
            bounce = s.scalars(select(dbm.Bounce)).one()
            assert bounce.recipient == recipient and bounce.outbox_id == row.id
            plan = build_digest(s, app.campaign, config, at(14, 7, 30))
        rendered = render("digest", plan.view)
        needs_person = rendered.text.split(recipient)[0]
        assert recipient in rendered.text and recipient in rendered.html
        assert "nhắc hạn" in needs_person.lower()
