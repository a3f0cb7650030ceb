"""Render every outgoing mail event and case to a folder as .txt, .html and .png, to read them.

Run by hand: `python scripts/render_mails.py [--out DIR] [--no-png] [CASE...]`. Receipts and
notices come from the pure `mailbot.intake.process_mail` on mails carrying the corpus forms
(tests/fixtures/forms), so what is rendered is what a unit gets; events without a mail to
answer (alerts, notices the intake cannot reach offline) render their view directly. The
.png is the HTML as headless Chromium draws it (skipped when Chromium is not installed).

A new event's cases are functions `case_<event>_<name>() -> Mail` listed in CASES.
"""

from __future__ import annotations

import argparse
import base64
import email
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.alerts import AlertView  # noqa: E402
from mailbot.config import Config, ContactConfig  # noqa: E402
from mailbot.contact import Contact, contact_of  # noqa: E402
from mailbot.decision import IntakeContext  # noqa: E402
from mailbot.intake import process_mail  # noqa: E402
from mailbot.mail.views import NoticeView  # noqa: E402
from mailbot.units import Register, read_units  # noqa: E402
from outbox_templates import render  # noqa: E402
from rules.campaign import Campaign, newest_campaign  # noqa: E402

FORMS = ROOT / "tests" / "fixtures" / "forms"
OUR_ADDRESS = "bdv_quthanhxuan@hanoi.gov.vn"
TZ = ZoneInfo("Asia/Ho_Chi_Minh")
BEFORE_DEADLINE = datetime(2022, 2, 14, 9, 41, tzinfo=TZ)
XLSX = ("application", "vnd.openxmlformats-officedocument.spreadsheetml.sheet")
DOCX = ("application", "vnd.openxmlformats-officedocument.wordprocessingml.document")
PDF = ("application", "pdf")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
)


@dataclass(frozen=True)
class Mail:
    """One rendered mail: its subject, plain text and HTML."""

    subject: str
    text: str
    html: str


# --------------------------------------------------------------------------- shared setup


def campaign() -> Campaign:
    return newest_campaign()


def contact() -> Contact:
    config = Config(
        contact=ContactConfig(
            name="đồng chí Nguyễn Thị Hà, chuyên viên Ban Dân vận Quận ủy",
            phone="024 3858 1234",
        )
    )
    return contact_of(config, campaign())


def register() -> Register:
    units = read_units((ROOT / "data" / "units.csv").read_bytes(), "units.csv")
    return Register(units, district="Thanh Xuân")


def context(**changes: object) -> IntakeContext:
    ctx = IntakeContext(
        campaign=campaign(),
        register=register(),
        received_at=BEFORE_DEADLINE,
        from_address=OUR_ADDRESS,
        from_name="Ban Dân vận Quận ủy Thanh Xuân",
        message_id_domain="mailbot.invalid",
        contact=contact(),
        own_addresses=(OUR_ADDRESS,),
    )
    return replace(ctx, **changes)  # type: ignore[arg-type]


def unit_mail(
    sender: str,
    subject: str,
    files: Iterable[tuple[str, bytes, tuple[str, str]]],
    display_name: str = "",
    headers: Iterable[tuple[str, str]] = (),
) -> bytes:
    """A unit's mail as a mail client sends it, with the given attachments."""
    msg = EmailMessage()
    msg["From"] = f"{display_name} <{sender}>" if display_name else sender
    msg["To"] = OUR_ADDRESS
    msg["Subject"] = subject
    msg["Message-ID"] = f"<{abs(hash((sender, subject)))}@thanhxuan.example>"
    msg["Date"] = "Mon, 14 Feb 2022 09:40:00 +0700"
    for name, value in headers:
        msg[name] = value
    msg.set_content("Kính gửi Ban Dân vận,\nĐơn vị gửi biểu đăng ký mô hình.\nTrân trọng.")
    for name, data, (main, sub) in files:
        msg.add_attachment(data, maintype=main, subtype=sub, filename=name)
    return msg.as_bytes()


def form(name: str, kind: tuple[str, str] = XLSX) -> tuple[str, bytes, tuple[str, str]]:
    return name, (FORMS / name).read_bytes(), kind


def answer(raw: bytes, ctx: IntakeContext | None = None) -> Mail:
    """The automatic answer `process_mail` composes for `raw`, read back from its MIME."""
    outcome = process_mail(raw, ctx or context())
    if outcome.reply is None:
        raise SystemExit(f"no answer for this mail ({outcome.action}, {outcome.reason})")
    msg = email.message_from_bytes(outcome.reply.raw, policy=policy.default)
    text = msg.get_body(("plain",))
    html = msg.get_body(("html",))
    assert text is not None and html is not None
    return Mail(str(msg["Subject"]), text.get_content(), html.get_content())


def rendered(event: str, view: object) -> Mail:
    out = render(event, view)
    return Mail(out.subject, out.text, out.html)


# --------------------------------------------------------------------------- receipts


def case_receipt_accepted() -> Mail:
    raw = unit_mail(
        "hoiccb@thanhxuan.example",
        "Hội CCB quận gửi Mẫu 01",
        [form("CCB quan.xlsx")],
        "Nguyen Van An",
    )
    return answer(raw)


def case_receipt_errors_in_both_sections() -> Mail:
    raw = unit_mail(
        "khuyenhoc@thanhxuan.example",
        "Biểu đăng ký DVK",
        [form("Hoi Khuyen hoc - thieu ten.xlsx")],
    )
    return answer(raw)


def case_receipt_word_with_errors() -> Mail:
    raw = unit_mail(
        "dangbo.nhanchinh@thanhxuan.example",
        "Mẫu 02 trường THCS Nhân Chính",
        [form("Truong THCS Nhan Chinh.docx", DOCX)],
    )
    return answer(raw)


def case_receipt_rejected_wrong_year() -> Mail:
    raw = unit_mail(
        "dangbo.khuongmai@thanhxuan.example",
        "Mẫu 02 phường Khương Mai",
        [form("Phuong Khuong Mai 2021.xlsx")],
        'VP Dang uy "Khuong Mai"',
    )
    return answer(raw)


def case_receipt_awaiting_confirmation() -> Mail:
    raw = unit_mail(
        "nguoilạ.vanphong@gmail.example",
        "Gửi biểu Mẫu 02",
        [form("Phuong Phuong Liet M2.xlsx")],
        "Người lạ",
    )
    return answer(raw)


def case_receipt_unverified_sender() -> Mail:
    raw = unit_mail(
        "hoiccb@thanhxuan.example",
        "Hội CCB quận gửi Mẫu 01",
        [form("CCB quan.xlsx")],
        headers=[("Authentication-Results", "mx.hanoi.gov.vn; spf=none; dkim=none; dmarc=none")],
    )
    return answer(raw, context(trusted_authserv_id="mx.hanoi.gov.vn"))


def case_receipt_late() -> Mail:
    raw = unit_mail("hoiccb@thanhxuan.example", "Mẫu 01 (gửi muộn)", [form("CCB quan.xlsx")])
    late = campaign().deadline + timedelta(days=1, hours=3)
    return answer(raw, context(received_at=late))


def case_receipt_empty_file() -> Mail:
    raw = unit_mail("hoiccb@thanhxuan.example", "Mẫu 02", [("Mẫu 02.xlsx", b"", XLSX)])
    return answer(raw)


def case_receipt_unreadable_files() -> Mail:
    raw = unit_mail(
        "hoiccb@thanhxuan.example",
        "Biểu mẫu",
        [
            form("Mau 01 - loi.xlsx"),
            form("Mau 01 co mat khau.xlsx"),
            form("Bieu mau scan.pdf", PDF),
        ],
    )
    return answer(raw)


# --------------------------------------------------------------------------- notices


def case_notice_unknown_unit() -> Mail:
    raw = unit_mail(
        "ai.do@gmail.example",
        "Gửi biểu",
        [form("Hoi Nguoi cao tuoi.xlsx")],
        "Quan doan Thanh Xuan",
    )
    return answer(raw, context(register=Register([], district="Thanh Xuân")))


def case_notice_no_attachment() -> Mail:
    raw = unit_mail("hoiccb@thanhxuan.example", "Hỏi về biểu mẫu", [])
    return answer(raw)


def _notice(reason: str, unit_name: str | None) -> Mail:
    c = campaign()
    view = NoticeView(
        unit_name=unit_name,
        reason_code=reason,
        received_at=BEFORE_DEADLINE,
        original_subject="Gửi biểu đăng ký",
        max_size_mb=20,
        submission_address=OUR_ADDRESS,
        campaign_name=c.name,
        contact=contact(),
        deadline_text=c.deadline_text,
        deadline_words=c.deadline_words,
    )
    return rendered("notice", view)


def case_notice_dmarc_fail() -> Mail:
    return _notice("dmarc-fail", None)


def case_notice_oversize() -> Mail:
    return _notice("oversize", "Hội Cựu chiến binh quận Thanh Xuân")


def case_notice_processing_failed() -> Mail:
    return _notice("processing-failed", "Hội Cựu chiến binh quận Thanh Xuân")


# --------------------------------------------------------------------------- alerts


def _alert(event: str, **over: object) -> Mail:
    values: dict[str, object] = {
        "event": event,
        "channel_label": "máy chủ gửi thư (SMTP)",
        "where": "smtps://mail.hanoi.gov.vn:465",
        "since": datetime(2022, 2, 15, 9, 0, tzinfo=TZ),
        "at": datetime(2022, 2, 15, 9, 45, tzinfo=TZ),
        "minutes": 45,
        "contact": contact(),
        "error": "ConnectionRefusedError: [Errno 111] Connection refused",
        "hint": "Đề nghị kiểm tra máy chủ gửi thư, mạng và mật khẩu.",
    }
    values.update(over)
    return rendered("alert", AlertView(**values))  # type: ignore[arg-type]


def case_alert_down() -> Mail:
    return _alert("down")


def case_alert_up() -> Mail:
    return _alert("up", error=None)


def case_alert_quarantine() -> Mail:
    items = ("Thư số 7 từ ai.do@gmail.example – “Gửi biểu”: chưa xác định được đơn vị",)
    return _alert("quarantine", channel_label="thư bị giữ lại", items=items)


# --------------------------------------------------------------------------- reminders


def _reminder(case: str) -> Mail:
    from tests.outbox_templates import reminder_samples

    return rendered("reminder", reminder_samples.reminder_view(case))


def case_reminder_nothing_sent() -> Mail:
    return _reminder("nothing-sent")


def case_reminder_forms_missing() -> Mail:
    return _reminder("forms-missing")


def case_reminder_forms_with_errors() -> Mail:
    return _reminder("forms-with-errors")


# --------------------------------------------------------------------------- digest


def _inline_images(msg: EmailMessage) -> str:
    """The HTML part with each cid: image made a data: URI, so a browser shows it."""
    html = msg.get_body(("related", "html"))
    assert html is not None
    body = html.get_body(("html",)) if html.get_content_type() == "multipart/related" else html
    assert body is not None
    text = str(body.get_content())
    for part in msg.walk():
        cid = part.get("Content-ID")
        if cid and part.get_content_maintype() == "image":
            data = base64.b64encode(part.get_payload(decode=True)).decode()
            uri = f"data:{part.get_content_type()};base64,{data}"
            text = text.replace(f"cid:{cid.strip('<>')}", uri)
    return text


def case_digest_midway() -> Mail:
    """The digest of 14/02/2022 as the scheduler queues it: real links, chart, workbook."""
    from mailbot import db as dbm
    from mailbot.campaign.digest import queue_digest
    from mailbot.config import DigestConfig, StaffConfig
    from mailbot.staff.links import digest_links
    from tests.mailbot.campaign.support import add_form, at, open_seeded, outbox

    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "staff-token-key"
        key_file.write_bytes(bytes(range(32)))
        config = Config(
            digest=DigestConfig(recipients=("lanhdao@thanhxuan.example",)),
            staff=StaffConfig(token_key_file=str(key_file)),
            contact=ContactConfig(name="đồng chí Nguyễn Thị Hà", phone="024 3858 1234"),
        )
        database = open_seeded(Path(tmp) / "data")
        try:
            add_form(database, "mttq", "M1", at(9))
            add_form(database, "mttq", "M2", at(10))
            add_form(database, "quan-doan", "M1", at(11), errors=2)
            add_form(database, "hoi-ccb", "M2", at(12), awaiting=True, sender="ccb@gmail.example")
            with database.session() as s:
                mail, _ = dbm.record_received(
                    s,
                    source="render",
                    uidvalidity=None,
                    uid=None,
                    message_id="<held@gmail.example>",
                    sha256="0" * 64,
                    raw_path="raw/held",
                    size=10,
                    from_addr="dangbo.khuongtrung@gmail.example",
                    subject="Gửi biểu đăng ký mô hình",
                    received_at=at(13, 10),
                )
                dbm.quarantine(s, mail, "unknown-unit", at(13, 10))
            now = at(14, 7, 30)
            with database.session() as s:
                queue_digest(s, campaign(), config, now, link_for=digest_links(config, now, s))
            [row] = outbox(database, "digest")
        finally:
            database.dispose()
    msg = email.message_from_bytes(row.raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(("plain",))
    assert text is not None
    return Mail(str(msg["Subject"]), str(text.get_content()), _inline_images(msg))


# --------------------------------------------------------------------------- staff answers


def _action(**over: object) -> Mail:
    from mailbot.staff.answer import ActionView

    values: dict[str, object] = {
        "office_name": "Ban Dân vận Quận ủy Thanh Xuân",
        "recipient": "Nguyễn Thị Hà",
        "received_at": BEFORE_DEADLINE,
        "done": True,
        "action_label": "Xác nhận người gửi",
        "mail_id": 43,
        "changes": (
            "Địa chỉ ccb@gmail.example được xác nhận là của Hội Cựu chiến binh quận Thanh Xuân.",
            "1 biểu mẫu chờ xác nhận nay được tính.",
        ),
        "refusal": None,
    }
    values.update(over)
    return rendered("action", ActionView(**values))  # type: ignore[arg-type]


def case_action_done() -> Mail:
    return _action()


def case_action_refused_expired() -> Mail:
    return _action(
        done=False,
        changes=(),
        refusal=(
            "Đường dẫn trong bản tin đã hết hạn; đề nghị dùng đường dẫn trong bản tin mới nhất."
        ),
    )


CASES: dict[str, Callable[[], Mail]] = {
    name.removeprefix("case_"): fn
    for name, fn in sorted(globals().items())
    if name.startswith("case_") and callable(fn)
}


# --------------------------------------------------------------------------- output


def screenshot(html_file: Path, png_file: Path, chromium: str) -> None:
    """Draw the HTML as a mail client's reading pane would (800 px wide) into a PNG."""
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--screenshot={png_file}",
                "--window-size=800,2400",
                html_file.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("rendered-mails"))
    parser.add_argument("--no-png", action="store_true", help="text and HTML only")
    parser.add_argument("cases", nargs="*", help=f"some of: {', '.join(CASES)}")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; known: {', '.join(CASES)}")
    chromium = None if args.no_png else shutil.which("chromium") or shutil.which("chromium-browser")
    if not args.no_png and chromium is None:
        print("Chromium not found: writing .txt and .html only", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in args.cases or list(CASES):
        mail = CASES[name]()
        (args.out / f"{name}.txt").write_text(
            f"Subject: {mail.subject}\n\n{mail.text}", encoding="utf-8"
        )
        html_file = args.out / f"{name}.html"
        html_file.write_text(mail.html, encoding="utf-8")
        if chromium:
            screenshot(html_file, args.out / f"{name}.png", chromium)
        print(f"{name}: {mail.subject}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
