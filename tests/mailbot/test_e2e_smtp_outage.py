"""A long SMTP outage end to end: a Maildir inbox, a real aiosmtpd stopped for 3 simulated hours.

The robot runs a pass every 5 simulated minutes (a fake clock) in one process, as the daemon
would; the SMTP server is down from the first pass until 3 hours later, then started again on
the same port.
"""

from __future__ import annotations

import mailbox
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiosmtpd.controller import Controller

from mailbot.app import open_app
from mailbot.campaign.attention import needs_attention
from mailbot.config import load_config
from mailbot.service import Robot
from mailbot.sources import open_source
from tests.mailbot.e2e_support import Db, fixture_bytes, replies, with_message_id
from tests.support import LOOPBACK
from tests.support.smtpd import start_smtpd

UNIT_MAIL = "gmail_khuong_trung.eml"  # a unit's M1, answered with a receipt
STEP = timedelta(minutes=5)
OUTAGE = timedelta(hours=3)


def _config(tmp_path: Path, smtp_url: str) -> Path:
    inbox = tmp_path / "inbox"
    mailbox.Maildir(str(inbox), create=True).close()
    units = Path(__file__).resolve().parents[2] / "data" / "units.csv"
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'units_file = "{units}"\n'
        f'[inbox]\nurl = "maildir:{inbox}"\n'
        f'[outgoing]\nurl = "{smtp_url}"\ntimeout_seconds = 5\n'
        # The defaults, spelled out: the figures below follow from them.
        "max_attempts = 8\nretry_max_interval_minutes = 60\ngive_up_after_days = 7\n"
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n',
        encoding="utf-8",
    )
    return path


def _deliver(tmp_path: Path, raw: bytes) -> None:
    """Put a mail into new/ as a delivery agent would."""
    name = f"{time.time_ns()}.P{os.getpid()}.outage"
    tmp = tmp_path / "inbox" / "tmp" / name
    tmp.write_bytes(raw)
    os.rename(tmp, tmp_path / "inbox" / "new" / name)


def test_a_three_hour_smtp_outage_loses_and_doubles_nothing(tmp_path: Path) -> None:
    started = time.monotonic()
    server = start_smtpd()
    handler, port = server.handler, server.port
    cfg = _config(tmp_path, server.url())
    server.stop()  # the outage begins before the mail arrives
    restarted: Controller | None = None

    now = datetime.now(UTC).replace(microsecond=0)
    config = load_config(cfg)
    db = Db(tmp_path / "var")
    with open_app(config) as app:
        source = open_source(config.inbox, base_dir=config.base_dir)
        robot = Robot(
            config,
            app.database,
            app.store,
            source,
            app.outgoing(),
            app.campaign,
            clock=lambda: now,
            sender_state=app.sender_state,
        )
        try:
            robot.run_once()  # first contact with the (empty) inbox
            _deliver(tmp_path, with_message_id(fixture_bytes(UNIT_MAIL), "<outage@unit.example>"))
            outage_ends = now + OUTAGE
            delays: list[float] = []  # each retry's wait, as the row records it
            attempts_seen = 0
            passes = 0
            while True:
                if restarted is None and now >= outage_ends:
                    # Server back, same port, same capture.
                    restarted = Controller(
                        handler, hostname=LOOPBACK, port=port, server_hostname="localhost"
                    )
                    restarted.start()
                robot.run_once()
                passes += 1
                [row] = db.rows("SELECT * FROM outbox")
                if row["status"] == "sent":
                    break
                # During the outage the receipt is waiting, never given up.
                assert row["status"] == "queued", dict(row)
                assert handler.messages == []
                if row["attempts"] != attempts_seen:
                    assert row["attempts"] == attempts_seen + 1  # one try per due time
                    attempts_seen = row["attempts"]
                    due = datetime.fromisoformat(row["next_attempt_at"]).replace(tzinfo=UTC)
                    delays.append((due - now).total_seconds())
                else:
                    # Not due yet: the pass did not try (the wait is honoured).
                    due = datetime.fromisoformat(row["next_attempt_at"]).replace(tzinfo=UTC)
                    assert due > now
                assert passes < 200, "never delivered"
                now += STEP

            # The waits grow (1, 2, 4... minutes) and stop at the hourly cap.
            assert delays == [60, 120, 240, 480, 960, 1920, 3600, 3600][: len(delays)]
            assert len(delays) == 8 and max(delays) == 3600
            assert now >= outage_ends

            # Delivered exactly once, with the Message-ID queued before the outage.
            [reply] = replies(handler.messages)
            assert len(handler.messages) == 1
            assert reply.in_reply_to == "<outage@unit.example>"
            [row] = db.rows("SELECT * FROM outbox")
            assert row["status"] == "sent" and row["kind"] == "receipt"
            assert reply.message_id == row["message_id"]
            assert row["attempts"] == 9
            assert row["sent_at"].startswith(now.strftime("%Y-%m-%d %H:%M:%S"))

            # Staff heard once, at the 8th failure; nothing failed for good.
            delayed = db.rows("SELECT * FROM events WHERE kind = 'send-delayed'")
            assert len(delayed) == 1
            assert row["message_id"] in delayed[0]["detail"]
            assert db.rows("SELECT id FROM events WHERE kind = 'send-failed'") == []
            with app.database.session(write=False) as s:
                items = needs_attention(s, None, now, app.campaign, {})
            assert [i.kind_label for i in items].count("Thư gửi đi bị chậm") == 1

            # More passes after delivery send nothing again.
            for _ in range(3):
                now += STEP
                robot.run_once()
            assert len(handler.messages) == 1
            [mail] = db.rows("SELECT * FROM mails")
            assert mail["status"] == "processed"
        finally:
            source.close()
            if restarted is not None:
                restarted.stop()
    # 41 passes: the 8 failed tries, the one that delivered, the rest found nothing due.
    assert passes == 41
    assert time.monotonic() - started < 20
