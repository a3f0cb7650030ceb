"""The digest's action links: `mailto:` the robot with a signed code (RFC 6068)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Final
from urllib.parse import quote
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot.config import Config
from mailbot.staff.access import KeyProblem, read_key, staff_addresses
from mailbot.staff.commands import UNIT_LINE_LABEL
from mailbot.staff.tokens import KINDS, Kind, sign

LinkFor = Callable[[str, int, str | None], str | None]

# Gmail and Outlook open mailto: links of this length; longer ones some clients cut.
MAX_LINK_CHARS: Final = 2000

_SUBJECTS: Final[dict[str, str]] = {
    "confirm": "Xác nhận người gửi thư số {mail}",
    "assign": "Giao thư số {mail} cho {unit}",
    "reject": "Loại thư số {mail}",
    "handled": "Đánh dấu đã xử lý thư số {mail}",
    "reprocess": "Xử lý lại thư số {mail}",
}


def mailto(to: str, subject: str, body: str) -> str:
    """A `mailto:` URI with subject and body percent-encoded as UTF-8 (RFC 6068)."""
    body = "\r\n".join(body.splitlines())  # RFC 6068: line breaks are %0D%0A
    return (
        f"mailto:{quote(to, safe='@')}?subject={quote(subject, safe='')}"
        f"&body={quote(body, safe='')}"
    )


def _body(kind: str, unit_named: bool, until: str) -> str:
    how = (
        "Đồng chí chỉ cần bấm Gửi, không cần sửa gì; hệ thống thực hiện ngay và trả lời "
        "đồng chí những gì đã thay đổi."
    )
    lines = [how]
    if kind == "assign" and not unit_named:
        lines = [
            f"{UNIT_LINE_LABEL} ",
            "",
            f"Ghi tên (hoặc mã) đơn vị sau chữ “{UNIT_LINE_LABEL}” ở dòng đầu rồi bấm Gửi; hệ "
            "thống giao thư cho đơn vị đó và trả lời đồng chí những gì đã thay đổi.",
        ]
    lines += [
        "",
        f"Mã ở tiêu đề thư dùng được một lần, đến hết ngày {until}, và chỉ từ địa chỉ thư "
        "của cán bộ đã đăng ký với hệ thống.",
    ]
    return "\n".join(lines)


def link_factory(
    config: Config,
    key: bytes | None,
    now: datetime,
    unit_names: Mapping[str, str] | None = None,
) -> LinkFor | None:
    """`link_for(kind, mail_id, unit_code)` for the digest; None when no key or no staff."""
    if key is None or not staff_addresses(config):
        return None
    expires = now + timedelta(days=config.staff.token_days)
    until = expires.astimezone(ZoneInfo(config.timezone)).strftime("%d/%m/%Y")
    robot = config.outgoing.from_address
    names = dict(unit_names or {})

    def link_for(kind: str, mail_id: int, unit_code: str | None) -> str | None:
        if kind not in KINDS:
            raise ValueError(f"unknown staff action {kind!r}")
        action: Kind = KINDS[KINDS.index(kind)]
        token = sign(key, action, mail_id, unit_code, expires)
        unit = names.get(unit_code, unit_code) if unit_code else "đơn vị"
        subject = f"{_SUBJECTS[kind].format(mail=mail_id, unit=unit)} – {token}"
        link = mailto(robot, subject, _body(kind, unit_code is not None, until))
        return link if len(link) <= MAX_LINK_CHARS else None

    return link_for


def digest_links(config: Config, now: datetime, session: Session) -> LinkFor | None:
    """The digest's `link_for`, with the key from its credential file and the units' names;
    None when staff cannot act by mail (no staff address, or no usable key)."""
    if not staff_addresses(config):
        return None
    try:
        key = read_key(config)
    except KeyProblem:
        return None  # the daemon's log and `mailbot check` say why
    names = {u.code: u.name for u in dbm.unit_register(session)}
    return link_factory(config, key, now, names)
