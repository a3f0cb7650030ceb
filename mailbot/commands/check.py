"""`mailbot check`: is this installation usable? One Vietnamese line per check, with the fix."""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mailbot.cli_vi import os_error_vi
from mailbot.clock import utc_now
from mailbot.config import Config, ConfigError, find_config, load_config
from mailbot.staff.access import KeyProblem, read_key, staff_addresses

if TYPE_CHECKING:
    import ssl


log = logging.getLogger(__name__)

OK, WARN, FAIL = "OK", "CẢNH BÁO", "LỖI"


@dataclass(frozen=True)
class Result:
    """One check's verdict: the level, what was checked, what was found (and the fix)."""

    level: str
    subject: str
    text: str

    def line(self) -> str:
        text = self.text.replace("\n  ", "; ").replace("\n", " ")  # one line per check
        return f"[{self.level}] {self.subject}: {text}"


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "check", help="kiểm tra cấu hình, hộp thư, máy chủ gửi thư, cơ sở dữ liệu, đợt thi đua"
    )
    p.set_defaults(func=run, needs_config=False, takes_mailbox=True)


def run(args: argparse.Namespace, _config: object = None) -> int:
    results = list(check_all(args.config, getattr(args, "mailbox", None)))
    for result in results:
        print(result.line())
    failed = sum(r.level == FAIL for r in results)
    warned = sum(r.level == WARN for r in results)
    if failed:
        print(f"Kết quả: {failed} lỗi, {warned} cảnh báo: chưa dùng được, hãy sửa các dòng [LỖI].")
        return 1
    print(f"Kết quả: dùng được ({warned} cảnh báo).")
    return 0


def check_all(config_path: str | None, mailbox: str | None = None) -> Iterator[Result]:
    """Every check in order; a configuration that does not load stops the rest.

    With several [[mailbox]] sections and no `mailbox`, every mailbox is checked in turn.
    """
    try:
        path = find_config(config_path)
        config = load_config(path)
        chosen = config.for_mailbox(mailbox) if mailbox is not None else None
    except ConfigError as exc:
        yield Result(FAIL, "Cấu hình", str(exc))
        return
    yield Result(OK, "Cấu hình", f"đọc được {path.absolute()}")
    if chosen is not None or len(config.mailboxes) < 2:
        yield from _check_mailbox(chosen or config.one_mailbox(None))
    else:
        for one in config.mailboxes:
            for result in _check_mailbox(one.config):
                yield Result(result.level, f"{one.name}: {result.subject}", result.text)
    yield from _guard("LibreOffice", check_soffice)


def _check_mailbox(config: Config) -> Iterator[Result]:
    """The checks of one mailbox: its servers, store, campaign and register."""
    yield from _guard("Hộp thư đến", lambda: check_inbox(config))
    yield from _guard("Máy chủ gửi thư", lambda: check_outgoing(config))
    yield from _guard("Thư mục dữ liệu", lambda: check_data_dir(config))
    yield from _guard("Cơ sở dữ liệu", lambda: check_database(config))
    yield from _guard("Đợt thi đua", lambda: check_campaign(config))
    yield from _guard("Danh sách đơn vị", lambda: check_units(config))
    yield check_authserv(config)
    yield check_staff(config)


def _guard(subject: str, check: Callable[[], Iterator[Result]]) -> Iterator[Result]:
    """A check that fails in an unforeseen way is one [LỖI] line, not a traceback."""
    try:
        yield from check()
    except ConfigError as exc:
        yield Result(FAIL, subject, f"{exc} (sửa tệp cấu hình)")
    except Exception as exc:  # noqa: BLE001 - reported, never raised, by a checker
        log.debug("check %s failed", subject, exc_info=True)
        yield Result(FAIL, subject, f"lỗi không lường trước: {type(exc).__name__}: {exc}")


# --------------------------------------------------------------------------- inbox


def check_inbox(config: Config) -> Iterator[Result]:
    subject = "Hộp thư đến"
    maildir = config.maildir_path()
    if maildir is not None:
        if not os.access(maildir, os.R_OK | os.W_OK | os.X_OK):
            yield Result(FAIL, subject, f"không đọc/ghi được Maildir {maildir}: hãy sửa quyền")
        else:
            yield Result(OK, subject, f"Maildir {maildir}")
        return
    yield from check_imap(config)


def check_imap(config: Config, ssl_context: ssl.SSLContext | None = None) -> Iterator[Result]:
    """Log in, look for the folder and IDLE; selects nothing, changes nothing."""
    import imaplib
    import ssl

    from imap_tools.utils import encode_folder

    from mailbot.sources import parse_imap_url

    subject = "Hộp thư đến"
    inbox = config.inbox
    target = parse_imap_url(inbox.url)
    user = target.username or inbox.username
    where = f"{target.host}:{target.port}"
    if not user:
        yield Result(FAIL, subject, "thiếu tên đăng nhập: ghi vào url hoặc [inbox] username")
        return
    password = inbox.password.resolve()
    if password is None:
        yield Result(FAIL, subject, "thiếu mật khẩu: đặt [inbox] password_env hoặc password_file")
        return
    context = ssl_context or ssl.create_default_context()
    try:
        client: imaplib.IMAP4
        if target.scheme == "imaps":
            client = imaplib.IMAP4_SSL(
                target.host, target.port, ssl_context=context, timeout=inbox.timeout_seconds
            )
        else:
            client = imaplib.IMAP4(target.host, target.port, timeout=inbox.timeout_seconds)
            if "STARTTLS" in client.capabilities:
                client.starttls(context)
    except (OSError, imaplib.IMAP4.error) as exc:
        log.info("IMAP connection to %s failed: %s", where, exc)
        yield Result(FAIL, subject, f"không kết nối được {where}: {_net_error(exc)}")
        return
    with contextlib.closing(client.socket()):
        try:
            payload = b"\0" + user.encode("utf-8") + b"\0" + password.encode("utf-8")
            if "AUTH=PLAIN" in client.capabilities:
                client.authenticate("PLAIN", lambda _challenge: payload)
            else:
                client.login(user, password)
        except (imaplib.IMAP4.error, UnicodeError) as exc:
            log.info("IMAP login to %s as %s refused: %s", where, user, exc)
            yield Result(
                FAIL,
                subject,
                f"đăng nhập {user} tại {where} bị từ chối: kiểm tra tên đăng nhập và mật khẩu "
                f"(biến {inbox.password.env or ''}/tệp {inbox.password.file or ''})",
            )
            return
        yield Result(OK, subject, f"đăng nhập {user} tại {where}")
        folder = target.folder or inbox.folder
        typ, data = client.status(encode_folder(folder).decode("ascii"), "(MESSAGES)")
        if typ != "OK":
            yield Result(
                FAIL,
                subject,
                f"không có thư mục {folder!r} trên máy chủ: sửa [inbox] folder (hoặc thư mục "
                "trong url) cho đúng tên thư mục thư mà các đơn vị gửi tới",
            )
        else:
            yield Result(OK, subject, f"thư mục {folder!r} có sẵn")
        typ, data = client.capability()
        caps = set(data[-1].decode("ascii", "replace").upper().split()) if data[-1] else set()
        if "IDLE" in caps:
            yield Result(OK, subject, "máy chủ hỗ trợ IDLE: thư mới được xử lý ngay")
        else:
            yield Result(
                WARN,
                subject,
                f"máy chủ không hỗ trợ IDLE: thư mới chỉ được xem mỗi "
                f"{inbox.poll_interval_seconds} giây ([inbox] poll_interval_seconds)",
            )
        with contextlib.suppress(imaplib.IMAP4.error, OSError):
            client.logout()


# --------------------------------------------------------------------------- outgoing


def check_outgoing(config: Config, ssl_context: ssl.SSLContext | None = None) -> Iterator[Result]:
    """EHLO, STARTTLS and AUTH, then QUIT: no mail is sent."""
    import smtplib

    from mailbot.transport import DeliveryError, DirSender, SmtpSender, open_sender

    subject = "Máy chủ gửi thư"
    sender = open_sender(config.outgoing, base_dir=config.base_dir, ssl_context=ssl_context)
    if isinstance(sender, DirSender):
        target = sender.path
        probe = target if target.exists() else _existing_parent(target)
        if os.access(probe, os.W_OK | os.X_OK):
            yield Result(OK, subject, f"thư gửi đi được ghi thành tệp .eml trong {target}")
        else:
            yield Result(FAIL, subject, f"không ghi được vào {target}: hãy sửa quyền hoặc url")
        return
    assert isinstance(sender, SmtpSender)
    where = f"{sender.host}:{sender.port}"
    try:
        smtp = sender._open()  # EHLO, STARTTLS, AUTH: exactly what a delivery starts with
    except DeliveryError as exc:
        log.info("SMTP login to %s refused: %s", where, exc)
        yield Result(
            FAIL,
            subject,
            f"đăng nhập {sender.username} tại {where} bị từ chối: kiểm tra tên đăng nhập và "
            "mật khẩu ([outgoing] password_env/password_file)",
        )
        return
    except smtplib.SMTPException as exc:
        log.info("SMTP session with %s failed: %s", where, exc)
        yield Result(FAIL, subject, f"máy chủ {where} từ chối phiên làm việc: {exc}")
        return
    except OSError as exc:
        log.info("SMTP connection to %s failed: %s", where, exc)
        yield Result(FAIL, subject, f"không kết nối được {where}: {_net_error(exc)}")
        return
    with contextlib.suppress(smtplib.SMTPException, OSError):
        smtp.quit()
    who = f"đăng nhập {sender.username}" if sender.username else "không cần đăng nhập"
    yield Result(OK, subject, f"{where}, {who} (không gửi thư nào)")


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _net_error(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return os_error_vi(exc)
    return "máy chủ trả lời không đúng giao thức"


# --------------------------------------------------------------------------- data


def check_data_dir(config: Config) -> Iterator[Result]:
    import tempfile

    subject = "Thư mục dữ liệu"
    data_dir = config.data_dir
    probe = data_dir if data_dir.exists() else _existing_parent(data_dir)
    try:
        if data_dir.exists():
            with tempfile.TemporaryFile(dir=data_dir):
                pass
        elif not probe.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(probe))
        elif not os.access(probe, os.W_OK | os.X_OK):
            raise PermissionError(errno.EACCES, "not writable", str(probe))
    except OSError as exc:
        log.info("data directory %s: %s", data_dir, exc)
        yield Result(
            FAIL,
            subject,
            f"không ghi được vào {data_dir} ({os_error_vi(exc)}): hãy cấp quyền ghi cho người "
            "dùng chạy mailbot, hoặc đặt [storage] data_dir",
        )
        return
    state = "" if data_dir.exists() else " (sẽ được tạo khi chạy lần đầu)"
    yield Result(OK, subject, f"{data_dir} ghi được{state}")


def check_database(config: Config) -> Iterator[Result]:
    """Read-only: the schema recorded in the file against the code's migrations."""
    import sqlite3
    from importlib import resources

    from mailbot.db import DB_FILE_NAME, migrations_path
    from mailbot.db.engine import schema_revisions

    subject = "Cơ sở dữ liệu"
    path = config.data_dir / DB_FILE_NAME
    with resources.as_file(migrations_path()) as scripts:
        known, head = schema_revisions(str(scripts))
    if config.storage.database_url:
        yield _server_schema(config, known, head)
        return
    if not path.exists():
        yield Result(OK, subject, f"{path} chưa có: sẽ được tạo khi chạy lần đầu")
        return
    try:
        current = _stored_revision(path)
    except sqlite3.Error as exc:
        log.info("database %s: %s", path, exc)
        yield Result(FAIL, subject, f"không đọc được {path}: tệp hỏng hoặc không phải SQLite")
        return
    if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
        yield Result(FAIL, subject, f"{path} chỉ đọc được: hãy cấp quyền ghi")
    elif current == head:
        yield Result(OK, subject, f"{path}, lược đồ mới nhất ({head})")
    elif current is None or current in known:
        yield Result(
            OK, subject, f"{path}, lược đồ {current or 'trống'}: sẽ nâng lên {head} khi khởi động"
        )
    else:
        yield Result(
            FAIL,
            subject,
            f"lược đồ {current} mới hơn bản mailbot này ({head}): hãy cài bản mailbot mới hơn "
            "hoặc khôi phục bản sao lưu",
        )


def _server_schema(config: Config, known: set[str], head: str | None) -> Result:
    """The PostgreSQL database's schema, read without migrating anything."""
    from mailbot.db import current_revision, open_configured
    from mailbot.errors import OperatorError

    subject = "Cơ sở dữ liệu"
    try:
        database = open_configured(config, migrate=False)
    except OperatorError as exc:
        return Result(FAIL, subject, str(exc))
    try:
        current = current_revision(database.engine)
        where = database.where()
    finally:
        database.dispose()
    if current == head:
        return Result(OK, subject, f"PostgreSQL {where}, lược đồ mới nhất ({head})")
    if current is None or current in known:
        return Result(
            OK,
            subject,
            f"PostgreSQL {where}, lược đồ {current or 'trống'}: sẽ nâng lên {head} khi khởi động",
        )
    return Result(
        FAIL,
        subject,
        f"lược đồ {current} mới hơn bản mailbot này ({head}): hãy cài bản mailbot mới hơn",
    )


def _stored_revision(path: Path) -> str | None:
    import sqlite3

    uri = f"{path.absolute().as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=5)) as conn:
        has = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if not has:
            return None
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None


# --------------------------------------------------------------------------- campaign, units


def check_campaign(config: Config, now: datetime | None = None) -> Iterator[Result]:
    from mailbot.app import campaign_of
    from mailbot.campaign.health import campaign_stale
    from rules.campaign import CampaignError

    subject = "Đợt thi đua"
    try:
        campaign = campaign_of(config)
    except (CampaignError, OSError) as exc:
        yield Result(FAIL, subject, f"tệp đợt thi đua có lỗi: {exc} (sửa khóa campaign)")
        return
    name = f"năm {campaign.year}, {campaign.deadline_words}"
    if campaign_stale(campaign, now or utc_now()):
        where = f"tệp {config.campaign}" if config.campaign else "tệp mặc định của mailbot"
        yield Result(
            WARN,
            subject,
            f"{name} ({where}): hạn nộp và mọi mốc thời gian đã qua từ lâu. Nếu là đợt mới, "
            'hãy tạo tệp bằng `mailbot campaign new NĂM` rồi đặt khóa campaign = "TỆP" '
            "trong tệp cấu hình",
        )
    else:
        yield Result(OK, subject, name)


def check_units(config: Config) -> Iterator[Result]:
    import sqlite3

    from mailbot.db import DB_FILE_NAME

    subject = "Danh sách đơn vị"
    path = config.data_dir / DB_FILE_NAME
    count = 0
    if config.storage.database_url:
        count = _server_unit_count(config)
    elif path.exists():
        with (
            contextlib.suppress(sqlite3.Error),
            contextlib.closing(
                sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
            ) as c,
        ):
            count = c.execute("SELECT count(*) FROM units").fetchone()[0]
    if count:
        yield Result(OK, subject, f"{count} đơn vị")
    elif config.units_file:
        units = config.resolve_path(config.units_file)
        if units.is_file():
            yield Result(OK, subject, f"sẽ nạp từ {units} khi khởi động")
        else:
            yield Result(FAIL, subject, f"không có tệp {units} (khóa units_file)")
    else:
        yield Result(
            WARN,
            subject,
            "trống: chưa nhận ra được đơn vị nào theo địa chỉ gửi; hãy chạy "
            "`mailbot units import TỆP` (CSV/XLSX: code, name, emails, aliases)",
        )


def _server_unit_count(config: Config) -> int:
    """How many units the PostgreSQL database holds (0 when it cannot be read yet)."""
    from sqlalchemy.exc import SQLAlchemyError

    from mailbot import db as dbm
    from mailbot.errors import OperatorError

    try:
        database = dbm.open_configured(config, migrate=False)
    except OperatorError:
        return 0  # said under "Cơ sở dữ liệu"
    try:
        with database.session(write=False) as s:
            return len(dbm.unit_register(s))
    except SQLAlchemyError:
        return 0  # no schema yet: created at the first start
    finally:
        database.dispose()


def check_soffice() -> Iterator[Result]:
    from parsers.convert import soffice_path

    exe = soffice_path()
    if exe:
        yield Result(OK, "LibreOffice", exe)
    else:
        yield Result(
            WARN,
            "LibreOffice",
            "chưa cài: tệp .doc/.odt/.ods sẽ được trả lời đề nghị gửi .docx/.xlsx; cài bằng "
            "apt-get install libreoffice-writer-nogui libreoffice-calc-nogui",
        )


def check_authserv(config: Config) -> Result:
    subject = "Xác thực người gửi"
    if config.security.trusted_authserv_id:
        return Result(
            OK,
            subject,
            f"chỉ tin kết quả SPF/DKIM/DMARC do {config.security.trusted_authserv_id} ghi",
        )
    return Result(
        WARN,
        subject,
        "chưa đặt [security] trusted_authserv_id: không kiểm chứng được địa chỉ người gửi; "
        "thư ghi địa chỉ của một đơn vị (kể cả thư giả mạo) được tính ngay cho đơn vị đó, "
        "thay biểu đã nộp, và biên nhận gửi theo Reply-To. Hãy đặt authserv-id của máy chủ "
        "nhận thư (phần đầu tiêu đề Authentication-Results)",
    )


def check_staff(config: Config) -> Result:
    """Staff acting by mail: who may, and whether the key that signs the links is usable."""
    subject = "Thao tác qua thư"
    addresses = staff_addresses(config)
    if not addresses:
        return Result(OK, subject, "không dùng (chưa có [staff] addresses hay [digest] recipients)")
    try:
        key = read_key(config)
    except KeyProblem as exc:
        fix = (
            "tạo khóa: head -c 32 /dev/urandom > /etc/mailbot/credentials/staff-token-key "
            "(và dòng LoadCredential=staff-token-key:... trong deploy/mailbot.service)"
        )
        if exc.missing:
            return Result(WARN, subject, f"tắt, báo cáo không có đường liên kết: {exc}; {fix}")
        return Result(FAIL, subject, f"{exc}; {fix}")
    return Result(
        OK,
        subject,
        f"{len(addresses)} địa chỉ cán bộ; khóa ký mã đọc được ({len(key)} byte); "
        f"mã dùng được {config.staff.token_days} ngày",
    )
