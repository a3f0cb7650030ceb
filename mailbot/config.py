"""The one configuration object: loaded once from TOML, secrets from the environment or files."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from mailbot.cli_vi import os_error_vi


class ConfigError(Exception):
    """The configuration file is missing, malformed, or names a secret that is not there."""


@dataclass(frozen=True)
class Secret:
    """Where a password comes from: an environment variable or a file, never the config."""

    env: str | None = None
    file: str | None = None

    def resolve(self) -> str | None:
        if self.env:
            value = os.environ.get(self.env)
            if value is None:
                raise ConfigError(f"biến môi trường {self.env} (mật khẩu) chưa được đặt")
            return value
        if self.file:
            if "CREDENTIALS_DIRECTORY" in self.file and not os.environ.get("CREDENTIALS_DIRECTORY"):
                raise ConfigError(
                    f"tệp mật khẩu {self.file}: biến CREDENTIALS_DIRECTORY chưa đặt (systemd "
                    "đặt nó khi chạy với LoadCredential=, xem README)"
                )
            try:
                # "${CREDENTIALS_DIRECTORY}/imap-password": the same file under the service and
                # under `systemd-run -p LoadCredential=...` (whose directory is named differently).
                path = Path(os.path.expandvars(self.file))
                return path.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(
                    f"không đọc được tệp mật khẩu {self.file}: {os_error_vi(exc)}"
                ) from exc
        return None

    def __repr__(self) -> str:  # never print a secret's value
        return f"Secret(env={self.env!r}, file={self.file!r})"


@dataclass(frozen=True)
class InboxConfig:
    url: str = "maildir:./var/inbox"
    username: str | None = None
    password: Secret = field(default_factory=Secret)
    folder: str = "INBOX"
    processed_folder: str | None = "mailbot-processed"
    processed_keyword: str | None = None
    batch_size: int = 50
    max_message_bytes: int = 25 * 1024 * 1024
    poll_interval_seconds: int = 60
    idle: bool = True
    idle_timeout_seconds: int = 25 * 60
    timeout_seconds: int = 30
    # On the first meeting with a mailbox, mail that arrived since then is processed (a date
    # is midnight in `timezone`); None: mail already there is left alone.
    process_since: date | datetime | None = None
    # No automatic answer to a mail that arrived longer ago than this (0: no limit).
    max_reply_age_days: int = 14


@dataclass(frozen=True)
class OutgoingConfig:
    url: str = "dir:./var/outbox"
    username: str | None = None
    password: Secret = field(default_factory=Secret)
    from_address: str = "bdv_quthanhxuan@hanoi.gov.vn"
    from_name: str = "Ban Dân vận Quận ủy Thanh Xuân"
    message_id_domain: str = "mailbot.invalid"
    max_auto_replies_per_hour: int = 5
    timeout_seconds: int = 30
    max_attempts: int = 8
    retry_max_interval_minutes: int = 60
    give_up_after_days: int = 7


@dataclass(frozen=True)
class StorageConfig:
    # None: $STATE_DIRECTORY under systemd, /var/lib/mailbot for a config under /etc,
    # else ./var in the working directory (see `default_data_dir`).
    data_dir: str | None = None
    # Below this much free space in the data directory no new mail is taken in (it waits on
    # the server), so the records of mail already taken can still be written.
    reserve_mb: int = 200
    # None: SQLite (mailbot.sqlite3 in data_dir). "postgresql://user@host:5432/db": that
    # PostgreSQL database, the password from password_env/password_file.
    database_url: str | None = None
    password: Secret = field(default_factory=Secret)


@dataclass(frozen=True)
class DigestConfig:
    recipients: tuple[str, ...] = ()
    time: str | None = None  # None: the campaign file's digest time


@dataclass(frozen=True)
class SecurityConfig:
    trusted_authserv_id: str | None = None
    max_attachment_bytes: int = 20 * 1024 * 1024
    own_addresses: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProcessingConfig:
    max_attempts: int = 5
    retry_base_seconds: int = 60
    # Worker processes that decide mail (0: in the daemon's own process).
    workers: int = 2
    timeout_seconds: int = 120
    # Keep deploy/mailbot.service's MemoryMax >= workers * worker_memory_mb + 512 MB.
    worker_memory_mb: int = 1024


@dataclass(frozen=True)
class AlertsConfig:
    # Operators told by mail when the mailbox or the SMTP server is unreachable this long, or
    # when mail waits in quarantine; empty: the log only.
    recipients: tuple[str, ...] = ()
    after_minutes: int = 30


@dataclass(frozen=True)
class ContactConfig:
    # The staff member units call about the forms, named in every mail (receipts, reminders).
    name: str | None = None  # "đồng chí Nguyễn Thị Hà, chuyên viên Ban Dân vận Quận ủy"
    phone: str | None = None  # "024 3858 1234"
    email: str | None = None  # None: [outgoing] from_address


@dataclass(frozen=True)
class StaffConfig:
    # Who may act by mail (the digest's links); empty: the [digest] recipients.
    addresses: tuple[str, ...] = ()
    # The secret that signs the links (32 random bytes or more); missing: no links, no commands.
    token_key_file: str | None = "${CREDENTIALS_DIRECTORY}/staff-token-key"
    token_days: int = 14


@dataclass(frozen=True)
class BoardConfig:
    # The party letterhead and the signature block of the consolidated workbook.
    superior: str = "QUẬN ỦY THANH XUÂN"
    name: str = "BAN DÂN VẬN"
    party: str = "ĐẢNG CỘNG SẢN VIỆT NAM"
    place: str = "Thanh Xuân"  # "Thanh Xuân, ngày … tháng … năm …"
    # False: the export's own date ("ngày 28 tháng 11 năm 2026"); True: dots, dated by hand.
    date_by_hand: bool = False
    sign_on_behalf: str = "T/M BAN DÂN VẬN"
    sign_title: str = "TRƯỞNG BAN"
    sign_name: str | None = None  # None: the line is left for a hand-written name
    recipients_note: tuple[str, ...] = ("Ban Dân vận Thành ủy;", "Thường trực Quận ủy;", "Lưu.")


@dataclass(frozen=True)
class Config:
    """Everything mailbot needs to run; built by `load_config` and passed in, never global."""

    timezone: str = "Asia/Ho_Chi_Minh"
    # The district the units belong to: lets "phường Khương Trung" match "… quận Thanh Xuân".
    district: str | None = "Thanh Xuân"
    campaign: str | None = None
    units_file: str | None = None
    inbox: InboxConfig = field(default_factory=InboxConfig)
    outgoing: OutgoingConfig = field(default_factory=OutgoingConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    digest: DigestConfig = field(default_factory=DigestConfig)
    security: SecurityConfig = field(default_factory=SecurityConfig)
    processing: ProcessingConfig = field(default_factory=ProcessingConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    contact: ContactConfig = field(default_factory=ContactConfig)
    board: BoardConfig = field(default_factory=BoardConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    base_dir: str = "."
    # The [[mailbox]] sections, each already merged with the top level; empty: one mailbox,
    # this configuration itself (data directly in data_dir, as before mailboxes existed).
    mailboxes: tuple[MailboxConfig, ...] = ()
    # Set on the configuration `for_mailbox` returns: the mailbox it is for.
    mailbox_name: str | None = None
    # Environment variables holding any mailbox's passwords: kept out of worker processes.
    secret_env_names: tuple[str, ...] = ()

    def for_mailbox(self, name: str) -> Config:
        """The effective single-mailbox configuration of the [[mailbox]] section `name`."""
        for mailbox in self.mailboxes:
            if mailbox.name == name:
                return mailbox.config
        if not self.mailboxes:
            raise ConfigError(
                f"--mailbox {name}: tệp cấu hình không có mục [[mailbox]] nào "
                "(chỉ một hộp thư: bỏ --mailbox)"
            )
        raise ConfigError(f"--mailbox {name}: không có hộp thư này; {self.mailbox_names_text()}")

    def one_mailbox(self, name: str | None) -> Config:
        """The mailbox a command works on: `name` (--mailbox), else the only one there is."""
        if name is not None:
            return self.for_mailbox(name)
        if len(self.mailboxes) == 1:
            return self.mailboxes[0].config
        if self.mailboxes:
            raise ConfigError(
                f"tệp cấu hình có {len(self.mailboxes)} hộp thư, hãy chọn một bằng --mailbox "
                f"TÊN; {self.mailbox_names_text()}"
            )
        return self

    def districts(self) -> tuple[Config, ...]:
        """Every mailbox's effective configuration (this one when there is no [[mailbox]])."""
        return tuple(m.config for m in self.mailboxes) or (self,)

    def mailbox_names_text(self) -> str:
        """'các hộp thư đã cấu hình: ba-dinh, thanh-xuan' for error messages."""
        return "các hộp thư đã cấu hình: " + ", ".join(m.name for m in self.mailboxes)

    @property
    def data_dir(self) -> Path:
        if self.storage.data_dir is None:
            return default_data_dir(Path(self.base_dir))
        return self.resolve_path(self.storage.data_dir)

    def resolve_path(self, value: str) -> Path:
        """A path from the config, relative to the config file's folder."""
        p = Path(value).expanduser()
        return p if p.is_absolute() else Path(self.base_dir) / p

    def maildir_path(self) -> Path | None:
        """The inbox's local Maildir (None for IMAP); it must exist, we never invent one."""
        url = self.inbox.url
        if not url.lower().startswith("maildir:"):
            return None
        raw = url.split(":", 1)[1]
        if raw.startswith("//"):
            raw = unquote(urlsplit(url).path)
        path = self.resolve_path(raw)
        if not path.is_dir():
            raise ConfigError(
                f"[inbox] url = {url!r}: thư mục Maildir {path} không tồn tại. Hãy sửa "
                f"đường dẫn, hoặc tạo hộp thư: mkdir -p {path}/cur {path}/new {path}/tmp"
            )
        return path


@dataclass(frozen=True)
class MailboxConfig:
    """One [[mailbox]] section: a district's own mailbox, campaign, register and store."""

    name: str
    config: Config  # the section merged over the top level, data in data_dir/<name>


_T = TypeVar("_T")

_FORBIDDEN_KEYS = {"password", "secret", "token"}


def _build(cls: type[_T], data: dict[str, Any], where: str) -> _T:
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]  # a dataclass
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _FORBIDDEN_KEYS:
            raise ConfigError(
                f"[{where}] {key}: không ghi mật khẩu trong tệp cấu hình; "
                "hãy dùng password_env hoặc password_file"
            )
        if key in ("password_env", "password_file") and "password" in known:
            secret = kwargs.get("password", Secret())
            if key == "password_env":
                secret = Secret(env=value, file=secret.file)
            else:
                secret = Secret(env=secret.env, file=value)
            kwargs["password"] = secret
            continue
        if key not in known:
            raise ConfigError(f"[{where}] khóa không hợp lệ {key!r}")
        f = known[key]
        if key == "process_since":
            kwargs[key] = _since_value(where, key, value)
            continue
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            if not isinstance(value, dict):
                raise ConfigError(f"[{key}] phải là một mục (section) của tệp cấu hình")
            value = _build(type(default), value, key)
        elif isinstance(default, tuple):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f'[{where}] {key}: phải là danh sách chuỗi, ví dụ ["a"]')
            value = tuple(value)
        else:
            _check_type(where, key, value, default)
        kwargs[key] = value
    return cls(**kwargs)


def _since_value(where: str, key: str, value: object) -> date | datetime:
    """A TOML date or date-time, or the same written as an ISO string."""
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            value = None
    if isinstance(value, date):
        return value
    raise ConfigError(f"[{where}] {key} = {value!r}: phải là một ngày, ví dụ {key} = 2022-02-01")


def since_instant(value: date | datetime | None, timezone: str) -> datetime | None:
    """`process_since` as an aware instant: a date or naive time is local to `timezone`."""
    if value is None:
        return None
    tz = ZoneInfo(timezone)
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    if value.tzinfo is None:
        value = value.replace(tzinfo=tz)
    return value.astimezone(UTC)


def _check_type(where: str, key: str, value: object, default: object) -> None:
    """A wrong type is a clear config error now, not a crash later in the daemon."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
        kind = "true hoặc false"
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        kind = "một số nguyên không âm"
    else:  # str or None defaults
        ok = isinstance(value, str)
        kind = "một chuỗi"
    if not ok:
        raise ConfigError(f"[{where}] {key} = {value!r}: phải là {kind}")


SYSTEM_CONFIG = Path("/etc/mailbot/mailbot.toml")
SYSTEM_DATA_DIR = Path("/var/lib/mailbot")


def default_data_dir(config_dir: Path) -> Path:
    """Where data goes when the config names no data_dir: systemd's StateDirectory, else
    /var/lib/mailbot for a config under /etc, else ./var in the working directory."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        return Path(state.split(":", 1)[0])
    if Path(config_dir).resolve().is_relative_to("/etc"):
        return SYSTEM_DATA_DIR
    return Path.cwd() / "var"


def find_config(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file: `path` (--config), else $MAILBOT_CONFIG, else ./mailbot.toml, else
    /etc/mailbot/mailbot.toml. A place named explicitly is never swapped for another."""
    env = os.environ.get("MAILBOT_CONFIG")
    looked: list[str] = []
    if path:
        candidates = [(Path(path), "--config")]
    elif env:
        looked.append("--config: không chỉ định")
        candidates = [(Path(env), "$MAILBOT_CONFIG")]
    else:
        looked.append("--config: không chỉ định; $MAILBOT_CONFIG: chưa đặt")
        candidates = [(Path("mailbot.toml"), "thư mục hiện tại"), (SYSTEM_CONFIG, "mặc định")]
    for candidate, why in candidates:
        if candidate.is_file():
            return candidate
        looked.append(f"{candidate.absolute()} ({why}): {_missing_reason(candidate)}")
    raise ConfigError(
        "không tìm thấy tệp cấu hình. Đã tìm:\n  "
        + "\n  ".join(looked)
        + "\nHãy chép tệp mẫu mailbot.example.toml (trong mã nguồn mailbot; mỗi khóa có ghi "
        f"chú và giá trị mặc định) thành {SYSTEM_CONFIG} rồi sửa, hoặc chỉ định --config TỆP."
    )


def _missing_reason(path: Path) -> str:
    if path.is_dir():
        return "là một thư mục, không phải tệp"
    if path.exists() or path.is_symlink():
        return "không đọc được"
    return "không có"


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read the config found by `find_config` (--config, $MAILBOT_CONFIG, ./, /etc/mailbot)."""
    chosen = find_config(path)
    try:
        raw = chosen.read_bytes()
    except OSError as exc:
        raise ConfigError(f"không đọc được tệp cấu hình {chosen}: {os_error_vi(exc)}") from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{chosen}: {exc}") from exc
    return config_from_data(data, base_dir=chosen.resolve().parent)


def config_from_data(data: dict[str, Any], base_dir: Path) -> Config:
    """The Config of parsed TOML `data`, with its [[mailbox]] sections merged and checked."""
    data = dict(data)
    for internal in ("mailboxes", "mailbox_name", "secret_env_names"):
        if internal in data:
            raise ConfigError(f"[mục chính] khóa không hợp lệ {internal!r}")
    sections = data.pop("mailbox", [])
    data.setdefault("base_dir", str(base_dir))
    config = _finish(_build(Config, data, "mục chính"))
    if not isinstance(sections, list) or not all(isinstance(m, dict) for m in sections):
        raise ConfigError("mailbox phải là các mục [[mailbox]] (mỗi hộp thư một mục)")
    if not sections:
        return config
    mailboxes = tuple(_mailbox(data, section, config.data_dir) for section in sections)
    _check_mailboxes(mailboxes)
    secrets = tuple(
        sorted(
            {
                name
                for c in (config, *(m.config for m in mailboxes))
                for name in (c.inbox.password.env, c.outgoing.password.env)
                if name
            }
        )
    )
    mailboxes = tuple(
        MailboxConfig(m.name, replace(m.config, secret_env_names=secrets)) for m in mailboxes
    )
    return replace(config, mailboxes=mailboxes, secret_env_names=secrets)


def _finish(config: Config) -> Config:
    """Fix the data directory now and check the timezone."""
    if config.storage.data_dir is None:
        # Fixed now: the working directory of a later moment must not move the data.
        storage = replace(config.storage, data_dir=str(config.data_dir))
        config = replace(config, storage=storage)
    try:
        ZoneInfo(config.timezone)
    except (ValueError, ZoneInfoNotFoundError) as exc:
        raise ConfigError(f"timezone = {config.timezone!r}: không phải múi giờ hợp lệ") from exc
    return config


# A name is a folder under data_dir, a systemd instance (mailbot@NAME) and a database schema.
MAILBOX_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
# What a [[mailbox]] section may set; everything else comes from the top level.
MAILBOX_SECTIONS = ("inbox", "outgoing", "digest", "contact", "board", "alerts")
MAILBOX_KEYS = ("district", "campaign", "units_file")
# Shortcuts: digest_recipients is [digest] recipients, from_* are [outgoing] from_*.
MAILBOX_SHORTCUTS = {
    "digest_recipients": ("digest", "recipients"),
    "from_name": ("outgoing", "from_name"),
    "from_address": ("outgoing", "from_address"),
}


def _mailbox(top: dict[str, Any], section: dict[str, Any], data_dir: Path) -> MailboxConfig:
    """One [[mailbox]] section merged over the top-level keys and sections."""
    name = section.get("name")
    if not isinstance(name, str) or not MAILBOX_NAME.fullmatch(name):
        raise ConfigError(
            f"[[mailbox]] name = {name!r}: mỗi hộp thư cần một tên ngắn gồm chữ thường không "
            'dấu, chữ số và dấu gạch ngang, bắt đầu bằng chữ, ví dụ name = "ba-dinh"'
        )
    where = f"mailbox {name}"
    merged = {k: v for k, v in top.items() if k != "storage"}
    merged["storage"] = dict(top.get("storage", {}), data_dir=str(data_dir / name))
    for key, value in section.items():
        if key == "name":
            continue
        if key in MAILBOX_SHORTCUTS:
            part, inner = MAILBOX_SHORTCUTS[key]
            if isinstance(section.get(part), dict) and inner in section[part]:
                raise ConfigError(f"[{where}] {key} và [{part}] {inner}: chỉ ghi một nơi")
            merged[part] = dict(merged.get(part, {}), **{inner: value})
        elif key in MAILBOX_SECTIONS:
            if not isinstance(value, dict):
                raise ConfigError(f"[{where}] {key} phải là một mục, ví dụ [mailbox.{key}]")
            inherited = dict(merged.get(key, {}))
            if "password_env" in value or "password_file" in value:
                # The mailbox's own secret replaces the inherited one, whichever kind it was.
                inherited.pop("password_env", None)
                inherited.pop("password_file", None)
            merged[key] = inherited | value
        elif key in MAILBOX_KEYS:
            merged[key] = value
        else:
            raise ConfigError(
                f"[{where}] khóa không hợp lệ {key!r} (trong [[mailbox]] được ghi: name, "
                + ", ".join((*MAILBOX_KEYS, *MAILBOX_SHORTCUTS, *MAILBOX_SECTIONS))
                + "; các khóa khác lấy từ phần chung)"
            )
    config = _finish(_build(Config, merged, where))
    return MailboxConfig(name, replace(config, mailbox_name=name))


def _check_mailboxes(mailboxes: tuple[MailboxConfig, ...]) -> None:
    """Two sections with one name, or reading one mailbox, would mix two districts' data."""
    seen: set[str] = set()
    reads: dict[tuple[str, str | None, str], str] = {}
    for m in mailboxes:
        if m.name in seen:
            raise ConfigError(f"[[mailbox]] name = {m.name!r}: hai mục cùng một tên")
        seen.add(m.name)
        inbox = m.config.inbox
        key = (inbox.url, inbox.username, inbox.folder)
        if key in reads:
            raise ConfigError(
                f"[[mailbox]] {reads[key]} và {m.name} cùng đọc một hộp thư ({inbox.url}): "
                "mỗi hộp thư cần [mailbox.inbox] url (hoặc username) của riêng mình"
            )
        reads[key] = m.name
