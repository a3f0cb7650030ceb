"""Helpers for the end-to-end tests: a config on disk, mail variants, the DB and SMTP views."""

from __future__ import annotations

import email
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from tests.mailbot.intake_support import INTAKE, ROOT, expected_for, intake_fixtures
from tests.support.dovecot import Account, DovecotServer
from tests.support.smtpd import Captured, SmtpServer

PW_ENV = "MAILBOT_E2E_IMAP_PASSWORD"
UNITS_FILE = ROOT / "data" / "units.csv"
PROCESSED = "mailbot-processed"

# Fixtures that get a receipt, with their sender: enough to build a varied backlog.
RECEIPT_FIXTURES = (
    "gmail_khuong_trung.eml",
    "forwarded_kim_giang.eml",
    "outlook_ccb_docx.eml",
    "outlook_winmail_lhpn.eml",
    "thunderbird_long_names.eml",
    "zip_of_forms.eml",
)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_config(
    tmp_path: Path,
    dovecot: DovecotServer,
    account: Account,
    smtp: SmtpServer,
    *,
    folder: str | None = None,
    inbox: dict[str, Any] | None = None,
    outgoing: dict[str, Any] | None = None,
    processing: dict[str, Any] | None = None,
    security: dict[str, Any] | None = None,
    storage: dict[str, Any] | None = None,
    name: str = "mailbot.toml",
) -> Path:
    """A mailbot.toml for this Dovecot account and SMTP server, data in tmp_path/data."""
    sections: dict[str, dict[str, Any]] = {
        "inbox": {
            "url": dovecot.url(account, folder or "INBOX"),
            "password_env": PW_ENV,
            "timeout_seconds": 10,
            "batch_size": 20,
            "processed_folder": PROCESSED,
            # The tests put mail in before the first pass and expect it processed.
            "process_since": "2000-01-01",
            **(inbox or {}),
        },
        "outgoing": {
            "url": smtp.url(),
            "timeout_seconds": 10,
            "max_auto_replies_per_hour": 1000,
            **(outgoing or {}),
        },
        "storage": {"data_dir": str(tmp_path / "data"), **(storage or {})},
        "processing": {**(processing or {})},
        "security": {**(security or {})},
    }
    lines = [f"units_file = {_toml_value(str(UNITS_FILE))}"]
    for section, values in sections.items():
        lines.append(f"\n[{section}]")
        lines.extend(
            f"{key} = {_toml_value(value)}" for key, value in values.items() if value is not None
        )
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def fixture_bytes(name: str) -> bytes:
    return (INTAKE / name).read_bytes()


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The same mail under another Message-ID (a resend, another unit's copy...)."""
    new, count = re.subn(
        rb"(?im)^Message-ID:[ \t]*<[^>\r\n]*>",
        b"Message-ID: " + message_id.encode(),
        raw,
        count=1,
    )
    if count != 1:
        raise ValueError("fixture without a Message-ID header")
    return new


def message_id_of(raw: bytes) -> str:
    msg = email.message_from_bytes(raw, policy=policy.compat32)
    return " ".join(str(msg["Message-ID"]).split())


def backlog(count: int, tag: str) -> list[bytes]:
    """`count` mails with forms, cycling through the receipt fixtures, each its own Message-ID."""
    out = []
    for n in range(count):
        name = RECEIPT_FIXTURES[n % len(RECEIPT_FIXTURES)]
        out.append(with_message_id(fixture_bytes(name), f"<{tag}-{n:04d}@e2e.thanhxuan.example>"))
    return out


def simple_mail(sender: str, message_id: str, subject: str = "Hỏi về biểu mẫu") -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "bdv_quthanhxuan@hanoi.gov.vn"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("Kính gửi Ban Dân vận, xin hỏi mẫu biểu năm nay.\n")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def append_all(
    dovecot: DovecotServer,
    account: Account,
    mails: Iterable[bytes],
    folder: str = "INBOX",
    flags: Iterable[str] = (),
) -> list[int]:
    """APPEND many mails over one connection; returns their UIDs."""
    import datetime as dt

    from tests.support.dovecot import _quote_folder

    client = dovecot.connect(account, folder=None)
    uids = []
    try:
        client.create(_quote_folder(folder))
        flag_text = "(" + " ".join(flags) + ")" if flags else None
        for raw in mails:
            typ, data = client.append(
                _quote_folder(folder), flag_text, dt.datetime.now(dt.UTC), raw
            )
            assert typ == "OK", data
            match = re.search(rb"APPENDUID \d+ (\d+)", data[0] or b"")
            assert match, data
            uids.append(int(match.group(1)))
    finally:
        client.logout()
    return uids


# --------------------------------------------------------------------------- what happened


@dataclass(frozen=True)
class Sent:
    """One mail as the SMTP server received it, with the headers the checks look at."""

    message_id: str
    in_reply_to: str | None
    auto_submitted: str | None
    to: tuple[str, ...]
    subject: str
    message: email.message.Message


def sent_mails(messages: Iterable[Captured]) -> list[Sent]:
    out = []
    for cap in messages:
        msg = email.message_from_bytes(cap.data, policy=policy.default)
        irt = msg["In-Reply-To"]
        out.append(
            Sent(
                message_id=str(msg["Message-ID"]).strip(),
                in_reply_to=str(irt).strip() if irt else None,
                auto_submitted=str(msg["Auto-Submitted"]) if msg["Auto-Submitted"] else None,
                to=cap.rcpt_tos,
                subject=str(msg["Subject"]),
                message=msg,
            )
        )
    return out


def replies(messages: Iterable[Captured]) -> list[Sent]:
    """Only our answers to incoming mail (reminders and digests have no In-Reply-To)."""
    return [m for m in sent_mails(messages) if m.in_reply_to]


def body_text(sent: Sent) -> str:
    return sent.message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


class Db:
    """Read-only look at mailbot's database, as an operator would take it: the SQLite file in
    the data directory, or the PostgreSQL database at `url` (`?` placeholders either way)."""

    def __init__(self, data_dir: Path, url: str | None = None) -> None:
        self.path = data_dir / "mailbot.sqlite3"
        self.url = url

    def rows(self, sql: str, *args: Any) -> list[Any]:
        if self.url:
            import psycopg
            from psycopg.rows import dict_row

            from tests.support.postgres import PASSWORD

            with psycopg.connect(self.url, password=PASSWORD, row_factory=dict_row) as pg:
                return list(pg.execute(sql.replace("?", "%s"), args))  # type: ignore[arg-type]
        con = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            con.row_factory = sqlite3.Row
            return list(con.execute(sql, args))
        finally:
            con.close()

    def mails(self) -> dict[str, sqlite3.Row]:
        """Mails by Message-ID (the first row if one came twice)."""
        out: dict[str, sqlite3.Row] = {}
        for row in self.rows("SELECT * FROM mails ORDER BY id"):
            out.setdefault(row["message_id"], row)
        return out

    def events(self, kind: str) -> list[sqlite3.Row]:
        return self.rows("SELECT * FROM events WHERE kind = ? ORDER BY id", kind)


def corpus() -> list[tuple[Path, dict[str, Any]]]:
    """The intake corpus decided with the default context (cases needing another are left out)."""
    return [(p, e) for p in intake_fixtures() if "context" not in (e := expected_for(p))]
