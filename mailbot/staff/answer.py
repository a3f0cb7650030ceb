"""The answer to a staff member's command mail: what changed, or why nothing did."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from mailbot.config import Config
from mailbot.mail.compose import compose
from mailbot.mail.message import ParsedMail
from mailbot.staff.actions import ACTION_LABELS, ActionResult
from outbox_templates import render


@dataclass(frozen=True)
class ActionView:
    """What the `action` templates show."""

    office_name: str
    recipient: str | None
    received_at: datetime  # local time of the command mail's arrival
    done: bool
    action_label: str | None
    mail_id: int | None
    changes: tuple[str, ...]
    refusal: str | None


@dataclass(frozen=True)
class Answer:
    """A composed answer, ready for the outbox."""

    message_id: str
    to: str
    subject: str
    raw: bytes


def compose_answer(
    config: Config,
    mail: ParsedMail,
    result: ActionResult,
    received_at: datetime,
    now: datetime,
) -> Answer:
    """The answer to the staff member's From address (never to a Reply-To).

    Neither subject nor text repeats the code: an auto-responder quoting our answer must not
    carry a code back (it would be refused and answered again, a loop).
    """
    out = config.outgoing
    view = ActionView(
        office_name=out.from_name,
        recipient=mail.from_name or None,
        received_at=received_at.astimezone(ZoneInfo(config.timezone)),
        done=result.done,
        action_label=ACTION_LABELS.get(result.kind or ""),
        mail_id=result.mail_id,
        changes=result.changes,
        refusal=result.refusal,
    )
    rendered = render("action", view)
    to = mail.from_addr
    message_id, raw = compose(
        rendered=rendered,
        from_addr=out.from_address,
        from_name=out.from_name,
        to=[to],
        message_id_domain=out.message_id_domain,
        auto_submitted="auto-replied",
        in_reply_to=mail.message_id,
        references=mail.references,
        date=now,
    )
    return Answer(message_id, to, rendered.subject, raw)
