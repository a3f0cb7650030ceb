"""Who may act by mail and with which key: read once from the config and the credential file."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from mailbot.cli_vi import os_error_vi
from mailbot.config import Config
from mailbot.staff.tokens import MIN_KEY_BYTES


class KeyProblem(Exception):
    """The token key cannot be used; the message (Vietnamese) says why and how to fix it."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing  # no key at all (the feature is off), not a broken one


@dataclass(frozen=True)
class StaffAccess:
    """What the pure intake needs to tell a staff command: the addresses and the key."""

    addresses: frozenset[str]
    key: bytes | None = field(default=None, repr=False)  # None: commands cannot be verified
    token_days: int = 14

    def is_staff(self, address: str | None) -> bool:
        """Whether this sender address may act by mail."""
        return bool(address) and (address or "").strip().lower() in self.addresses


def staff_addresses(config: Config) -> frozenset[str]:
    """`[staff] addresses`, else the `[digest] recipients` (who receive the links)."""
    chosen = config.staff.addresses or config.digest.recipients
    return frozenset(a.strip().lower() for a in chosen if a.strip())


def key_path(config: Config) -> Path | None:
    """The key file, with ${CREDENTIALS_DIRECTORY} filled in; None when it cannot be named."""
    name = config.staff.token_key_file
    if not name:
        return None
    if "CREDENTIALS_DIRECTORY" in name and not os.environ.get("CREDENTIALS_DIRECTORY"):
        return None
    return config.resolve_path(os.path.expandvars(name))


def read_key(config: Config) -> bytes:
    """The token key; raises KeyProblem when it is missing, unreadable or too short."""
    path = key_path(config)
    if path is None:
        raise KeyProblem(
            f"[staff] token_key_file = {config.staff.token_key_file!r}: chưa có tệp khóa "
            "(biến CREDENTIALS_DIRECTORY chưa đặt; systemd đặt nó khi chạy với LoadCredential=)",
            missing=True,
        )
    try:
        key = path.read_bytes()
    except FileNotFoundError as exc:
        raise KeyProblem(f"chưa có tệp khóa {path}", missing=True) from exc
    except OSError as exc:
        raise KeyProblem(f"không đọc được tệp khóa {path}: {os_error_vi(exc)}") from exc
    if len(key) < MIN_KEY_BYTES:
        raise KeyProblem(
            f"tệp khóa {path} chỉ có {len(key)} byte, cần ít nhất {MIN_KEY_BYTES} byte ngẫu "
            f"nhiên: head -c 32 /dev/urandom > {path}"
        )
    return key


def load_access(config: Config) -> tuple[StaffAccess | None, KeyProblem | None]:
    """The staff access for the intake (None when no staff address is configured), and why
    the key is not usable, if it is not (commands are then refused, links left out)."""
    addresses = staff_addresses(config)
    if not addresses:
        return None, None
    try:
        key: bytes | None = read_key(config)
        problem = None
    except KeyProblem as exc:
        key, problem = None, exc
    return StaffAccess(addresses, key, config.staff.token_days), problem
