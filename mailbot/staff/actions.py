"""Carry out a staff command inside the caller's transaction, through mailbot.review."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Final

from sqlalchemy.orm import Session

from mailbot import db as dbm
from mailbot import review
from mailbot.staff.commands import StaffCommand
from mailbot.staff.tokens import Kind
from mailbot.units import Register, Unit
from parsers.vntext import fold_accents

log = logging.getLogger(__name__)

# Why a command was not carried out, as the staff member reads it.
REFUSAL_TEXTS: Final[dict[str, str]] = {
    "not-staff": "địa chỉ gửi không phải địa chỉ của cán bộ được phép thao tác qua thư",
    "unauthenticated": (
        "máy chủ thư không xác thực được thư này gửi từ địa chỉ của đồng chí (có thể địa chỉ "
        "người gửi đã bị giả mạo)"
    ),
    "no-key": "hệ thống chưa được cài khóa ký mã thao tác; đề nghị báo cán bộ vận hành",
    "malformed": "mã thao tác ở tiêu đề thư không đúng (có thể đã bị sửa hoặc thiếu ký tự)",
    "forged": "mã thao tác không hợp lệ (không do hệ thống cấp, hoặc đã bị sửa)",
    "expired": "mã thao tác đã hết hạn; đề nghị dùng đường liên kết trong báo cáo mới nhất",
}
ACTION_LABELS: Final[dict[str, str]] = {
    "confirm": "xác nhận người gửi",
    "assign": "giao thư cho đơn vị",
    "reject": "loại thư",
    "handled": "đánh dấu đã xử lý",
    "reprocess": "xử lý lại thư",
}
_LISTED: Final = 5


@dataclass(frozen=True)
class ActionResult:
    """What a command did: the lines saying what changed, or why nothing did."""

    kind: Kind | None
    mail_id: int | None
    changes: tuple[str, ...] = ()
    refusal: str | None = None  # Vietnamese, for the staff member
    refusal_code: str | None = None  # for the log and the event

    @property
    def done(self) -> bool:
        """Whether the action was carried out."""
        return self.refusal is None


def _refused(command: StaffCommand, code: str, text: str) -> ActionResult:
    token = command.token
    return ActionResult(
        token.kind if token else None,
        token.mail_id if token else None,
        refusal=text,
        refusal_code=code,
    )


def match_unit(register: Register, text: str) -> Unit | list[Unit]:
    """The unit a staff member wrote (code or name); else the candidates (none or several)."""
    by_code = {u.code.casefold(): u for u in register}
    found = by_code.get(text.strip().casefold()) or register.by_name(text)
    if found is not None:
        return found
    needle = " ".join(fold_accents(text).casefold().split())
    return [u for u in register if needle and needle in fold_accents(u.name).casefold()]


def _unit_for_assign(command: StaffCommand, register: Register) -> Unit | str:
    token = command.token
    assert token is not None
    if token.unit_code:
        unit = register.by_code(token.unit_code)
        return unit or f"đơn vị mã {token.unit_code} không còn trong danh sách đơn vị"
    if not command.unit_text:
        return (
            "thư chưa ghi đơn vị: đề nghị ghi tên hoặc mã đơn vị sau chữ “Đơn vị:” ở dòng đầu "
            "thư rồi gửi lại (dùng lại đường liên kết trong báo cáo)"
        )
    found = match_unit(register, command.unit_text)
    if isinstance(found, Unit):
        return found
    if not found:
        return f"không có đơn vị nào khớp với “{command.unit_text}” trong danh sách đơn vị"
    names = "; ".join(u.name for u in found[:_LISTED])
    more = f" và {len(found) - _LISTED} đơn vị khác" if len(found) > _LISTED else ""
    return (
        f"“{command.unit_text}” khớp với nhiều đơn vị ({names}{more}); đề nghị ghi đủ tên "
        "hoặc mã đơn vị"
    )


def _mail_ref(mail: dbm.Mail) -> str:
    sender = f" của {mail.from_addr}" if mail.from_addr else ""
    subject = f" (“{mail.subject[:80]}”)" if mail.subject else ""
    return f"thư số {mail.id}{sender}{subject}"


def _do(
    session: Session,
    command: StaffCommand,
    register: Register,
    now: datetime,
) -> tuple[str, ...] | str:
    """The action's changes, or a refusal text; raises ReviewError from mailbot.review."""
    token = command.token
    assert token is not None
    mail = dbm.get_mail(session, token.mail_id)
    if mail is None:
        return f"không có thư số {token.mail_id}"
    ref = _mail_ref(mail)
    if token.kind == "confirm":
        if not mail.awaiting_confirmation:
            return f"{ref} không còn chờ xác nhận (đã được xác nhận hoặc đã bị loại)"
        other = token.unit_code if token.unit_code != mail.unit_code else None
        done = review.confirm(session, now, mail_id=mail.id, unit_code=other)
        return (
            f"Địa chỉ {done.address} được xác nhận là địa chỉ của {done.unit_name} ({ref}).",
            f"Số biểu đang chờ xác nhận nay được tính: {done.forms_counted}.",
        )
    if token.kind == "assign":
        unit = _unit_for_assign(command, register)
        if isinstance(unit, str):
            return unit
        assigned = review.assign(session, mail.id, unit.code, now)
        return (
            f"{ref[0].upper()}{ref[1:]} được giao cho {assigned.unit_name}.",
            "Hệ thống đọc lại thư trong vài phút và gửi thư xác nhận cho đơn vị.",
        )
    if token.kind == "reject":
        review.reject(session, mail.id, now, reason=f"cán bộ {command.actor} loại qua thư")
        return (f"{ref[0].upper()}{ref[1:]} đã bị loại: các biểu trong thư không còn được tính.",)
    if token.kind == "handled":
        review.handled(session, mail.id, now, by=command.actor)
        return (
            f"{ref[0].upper()}{ref[1:]} được đánh dấu đã xử lý; thư không còn trong danh sách "
            "cần cán bộ đọc.",
        )
    review.reprocess(session, now, [mail.id])
    return (
        f"{ref[0].upper()}{ref[1:]} được xếp để hệ thống đọc lại trong vài phút; đơn vị "
        "nhận thư trả lời mới.",
    )


def carry_out(
    session: Session,
    command: StaffCommand,
    register: Register,
    command_mail_id: int,
    now: datetime,
    tz: tzinfo = UTC,
) -> ActionResult:
    """Do what a command asks, once, and record who did what (events and used codes).

    A refused command changes nothing (a savepoint undoes a half-done action) and is
    recorded as a `staff-command-refused` event; the caller answers the staff member.
    """
    if command.refused is not None or command.token is None:
        result = _refused(
            command, command.refused or "", REFUSAL_TEXTS.get(command.refused or "", "")
        )
    elif (used := dbm.token_used(session, command.digest)) is not None:
        result = _refused(
            command,
            "replayed",
            f"mã thao tác này đã được {used.actor} dùng lúc "
            f"{used.used_at.astimezone(tz):%H:%M ngày %d/%m/%Y}; mỗi mã chỉ dùng một lần",
        )
    else:
        result = _carry_out(session, command, register, command_mail_id, now)
    if not result.done:
        _record(session, "staff-command-refused", command, result, command_mail_id, now)
        log.warning(
            "staff command in mail id=%s from %s refused: %s",
            command_mail_id,
            command.actor,
            result.refusal_code,
        )
    return result


def _carry_out(
    session: Session,
    command: StaffCommand,
    register: Register,
    command_mail_id: int,
    now: datetime,
) -> ActionResult:
    token = command.token
    assert token is not None
    try:
        with session.begin_nested():
            done = _do(session, command, register, now)
            if isinstance(done, str):
                raise review.ReviewError(done)
    except review.ReviewError as exc:
        return ActionResult(token.kind, token.mail_id, refusal=str(exc), refusal_code="review")
    dbm.record_token_use(
        session,
        command.digest,
        at=now,
        actor=command.actor,
        kind=token.kind,
        target_mail_id=token.mail_id,
        command_mail_id=command_mail_id,
    )
    result = ActionResult(token.kind, token.mail_id, changes=done)
    _record(session, "staff-action", command, result, command_mail_id, now)
    log.info(
        "staff %s did %s on mail id=%s (command mail id=%s)",
        command.actor,
        token.kind,
        token.mail_id,
        command_mail_id,
    )
    return result


def _record(
    session: Session,
    kind: str,
    command: StaffCommand,
    result: ActionResult,
    command_mail_id: int,
    now: datetime,
) -> None:
    """Who did (or tried) what, as an event: actor, action, mail, unit."""
    token = command.token
    target = result.mail_id if result.mail_id and dbm.get_mail(session, result.mail_id) else None
    detail = {
        "actor": command.actor,
        "action": result.kind,
        "command_mail_id": command_mail_id,
        "changes": list(result.changes),
        "refused": result.refusal_code,
    }
    dbm.add_event(
        session,
        kind,
        at=now,
        mail_id=target,
        unit_code=token.unit_code if token else None,
        detail=json.dumps(detail, ensure_ascii=False),
    )
