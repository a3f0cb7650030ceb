"""Campaign commands: remind, digest, status, export, review and `campaign new YEAR`."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from mailbot import db as dbm
from mailbot.app import App, campaign_of, open_app, terminal_progress
from mailbot.campaign.ops import (
    QUARANTINE_REASONS,
    build_digest,
    consolidated_docx,
    consolidated_xlsx,
    days_left,
    issuer_of,
    local,
    plan_reminders,
    queue_digest,
    queue_reminders,
    reminder_schedule,
    units_without_address,
)
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    STATE_LABELS,
    STATES,
    FormState,
    count_states,
    json_dumps,
    status_json,
    unit_states,
)
from mailbot.clock import utc_now
from mailbot.config import Config
from mailbot.fsutil import atomic_write
from mailbot.mail.views import percent
from mailbot.scheduler import deliver_held
from outbox_templates import render
from rules.campaign import (
    Campaign,
    load_campaign,
    new_campaign_text,
    newest_campaign,
    parse_campaign,
)

DRY_RUN_NOTE = "(Chạy thử: không gửi thư nào, không thay đổi dữ liệu.)"


class UsageError(Exception):
    """A bad argument value: exit status 2 with a Vietnamese message."""


# --------------------------------------------------------------------------- wiring


def register(sub: argparse._SubParsersAction) -> None:
    now_help = (
        "thời điểm hành động, ISO-8601 (ví dụ 2022-02-17T08:00; không ghi múi giờ "
        "thì theo múi giờ của đợt thi đua)"
    )
    p = sub.add_parser(
        "remind",
        help="gửi thư nhắc hạn cho các đơn vị chưa gửi đủ",
        description=(
            "Gửi thư nhắc của đợt nhắc gần nhất (theo lịch: 7, 3 và 1 ngày trước hạn) chưa "
            "được gửi, cho các đơn vị chưa gửi đủ biểu mẫu, rồi gửi ngay. Không bao giờ gửi "
            "hai lần cho một đợt, không gửi sau hạn nộp; các đợt cũ hơn chưa gửi được ghi là "
            "bỏ qua. Nếu không có đợt nào đang chờ thì chỉ báo lại và không gửi gì."
        ),
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="chỉ in ra sẽ gửi gì cho ai, không gửi, không ghi dữ liệu",
    )
    p.add_argument("--now", metavar="ISO-8601", help=now_help)
    p.set_defaults(func=remind)

    p = sub.add_parser(
        "digest",
        help="gửi báo cáo tổng hợp cho cán bộ ngay bây giờ",
        description=(
            "Lập báo cáo tình hình (tiến độ, hồ sơ mới nhận từ lần báo cáo trước, việc cần "
            "xử lý, đơn vị quá hạn, kèm bảng tổng hợp .xlsx) và gửi ngay cho những người nhận "
            "trong cấu hình [digest]. Báo cáo lập bằng tay thay cho báo cáo theo lịch của "
            "ngày hôm đó nếu báo cáo ấy chưa gửi."
        ),
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="chỉ in ra báo cáo và người nhận, không gửi, không ghi dữ liệu",
    )
    p.add_argument("--now", metavar="ISO-8601", help=now_help)
    p.set_defaults(func=digest)

    p = sub.add_parser("status", help="tình hình gửi biểu mẫu của từng đơn vị")
    p.add_argument("--json", action="store_true", help="in JSON theo hợp đồng")
    p.set_defaults(func=status)

    p = sub.add_parser("export", help="xuất bảng tổng hợp (xlsx, hoặc docx)")
    p.add_argument("--out", required=True, metavar="FILE.xlsx", help="tệp kết quả")
    p.add_argument(
        "--docx",
        action="store_true",
        help="ghi thêm bản Word (.docx) cùng tên bên cạnh; --out *.docx chỉ ghi Word",
    )
    p.set_defaults(func=export)

    p = sub.add_parser(
        "review",
        help="việc chờ cán bộ xử lý: thư bị giữ lại, người gửi chờ xác nhận",
        description="Không có lệnh con: liệt kê những việc đang chờ một người xử lý.",
    )
    p.set_defaults(func=review_list)
    rs = p.add_subparsers(dest="review_action", metavar="<việc>")
    c = rs.add_parser("confirm", help="xác nhận địa chỉ gửi là của một đơn vị")
    c.add_argument("--mail", type=int, metavar="ID", help="mã thư chờ xác nhận")
    c.add_argument("--email", metavar="ADDR", help="địa chỉ cần xác nhận")
    c.add_argument("--unit", metavar="CODE", help="mã đơn vị")
    c.set_defaults(func=review_confirm)
    a = rs.add_parser("assign", help="gán thư bị giữ lại cho một đơn vị và xử lý lại")
    a.add_argument("--mail", type=int, required=True, metavar="ID")
    a.add_argument("--unit", required=True, metavar="CODE")
    a.set_defaults(func=review_assign)
    r = rs.add_parser("reject", help="loại bỏ một thư (không tính biểu mẫu trong thư)")
    r.add_argument("--mail", type=int, required=True, metavar="ID")
    r.add_argument("--reason", metavar="TEXT", default=None)
    r.set_defaults(func=review_reject)

    p = sub.add_parser("campaign", help="tệp đợt thi đua")
    cs = p.add_subparsers(dest="campaign_action", metavar="<việc>")
    cs.required = True
    n = cs.add_parser(
        "new",
        help="tạo tệp đợt thi đua năm mới từ tệp mới nhất, dời mọi ngày theo năm",
    )
    n.add_argument("year", type=int, metavar="YEAR")
    n.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="tệp gốc (mặc định: tệp mới nhất trong rules/campaigns/)",
    )
    n.add_argument(
        "--out",
        metavar="FILE",
        help="tệp kết quả (mặc định rules/campaigns/<id>.toml); không ghi đè",
    )
    n.set_defaults(func=campaign_new, needs_config=False)


def parse_now(text: str | None, campaign: Campaign) -> datetime | None:
    """--now as an aware datetime; a naive value is in the campaign's timezone."""
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise UsageError(f"--now {text!r}: không phải thời điểm ISO-8601") from exc
    if value.tzinfo is None:
        value = value.replace(tzinfo=campaign.tz)
    return value


@contextlib.contextmanager
def _app(config: Config, exclusive: bool) -> Iterator[App]:
    with open_app(config, exclusive=exclusive) as app:
        yield app


def _run(body: Callable[[], int]) -> int:
    """Run a command body; a bad argument is exit 2 here, the rest is the CLI's boundary."""
    try:
        return body()
    except UsageError as exc:
        print(f"mailbot: lỗi: {exc}", file=sys.stderr)
        return 2


def _when(value: datetime, campaign: Campaign) -> str:
    return local(value, campaign).strftime("%H:%M ngày %d/%m/%Y")


# --------------------------------------------------------------------------- remind


def remind(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        campaign = campaign_of(config)
        given = parse_now(args.now, campaign)
        now = given or utc_now()
        if args.dry_run:
            return _remind_preview(config, campaign, now)
        clock = (lambda: now) if given else utc_now
        with _app(config, exclusive=True) as app:
            with app.database.session() as s:
                schedule = reminder_schedule(s, campaign, now, manual=True)
                count = queue_reminders(s, campaign, config, now, manual=True)
            if schedule.due is None:
                _say_nothing_due(campaign, now, schedule.upcoming)
                return 0
            sent, failed = deliver_held(app, clock, app.outgoing())
            print(
                f"mailbot: đợt nhắc {_when(schedule.due, campaign)}: đã lập {count} thư "
                f"nhắc; gửi được {sent}, lỗi {failed}."
            )
            return 0 if not failed else 1

    return _run(body)


def _say_nothing_due(campaign: Campaign, now: datetime, upcoming: datetime | None) -> None:
    if now >= campaign.deadline:
        print(
            f"mailbot: đã hết hạn nộp ({campaign.deadline_text}): không gửi thư nhắc; "
            "các đơn vị quá hạn có trong báo cáo hằng ngày (mailbot digest)."
        )
    elif upcoming is not None:
        print(
            f"mailbot: không có đợt nhắc hạn nào đang chờ. Đợt tiếp theo: "
            f"{_when(upcoming, campaign)}."
        )
    else:
        print("mailbot: không có đợt nhắc hạn nào đang chờ.")


def _remind_preview(config: Config, campaign: Campaign, now: datetime) -> int:
    with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
        schedule = reminder_schedule(s, campaign, now, manual=True)
        for p in schedule.stale:
            if p != schedule.due:
                print(f"Đợt nhắc {_when(p, campaign)} đã lỡ: sẽ được ghi là bỏ qua.")
        if schedule.due is None:
            _say_nothing_due(campaign, now, schedule.upcoming)
            print(DRY_RUN_NOTE)
            return 0
        plans = plan_reminders(s, campaign, now, point=schedule.due, config=config)
        noaddr = [
            u for u in units_without_address(s, campaign, now) if u.state != "awaiting-confirmation"
        ]
    left = days_left(campaign, now)
    print(
        f"Đợt nhắc {_when(schedule.due, campaign)} (hạn nộp {campaign.deadline_text}, "
        f"còn {left} ngày): sẽ gửi {len(plans)} thư nhắc."
    )
    for plan in plans:
        gaps = []
        if plan.missing_forms:
            gaps.append("chưa gửi " + ", ".join(plan.missing_forms))
        if plan.error_forms:
            gaps.append("có lỗi ở " + ", ".join(plan.error_forms))
        if plan.unconfirmed_forms:
            gaps.append("chờ xác nhận " + ", ".join(plan.unconfirmed_forms))
        attach = ", ".join(f"{c} (.docx, .xlsx)" for c in plan.template_forms)
        print(
            f"- {plan.unit_name} <{', '.join(plan.to)}>: {'; '.join(gaps)}; "
            f"kèm biểu mẫu trống {attach}"
        )
    if noaddr:
        print("Không gửi được vì chưa có địa chỉ email trong danh sách đơn vị:")
        for u in noaddr:
            print(f"- {u.name} ({u.code})")
    print(DRY_RUN_NOTE)
    return 0


# --------------------------------------------------------------------------- digest


def digest(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        campaign = campaign_of(config)
        given = parse_now(args.now, campaign)
        now = given or utc_now()
        recipients = tuple(config.digest.recipients)
        if args.dry_run:
            with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
                plan = build_digest(s, campaign, config, now)
            rendered = render("digest", plan.view)
            if recipients:
                print(f"Báo cáo sẽ gửi đến: {', '.join(recipients)}")
            else:
                print(
                    "Chưa có người nhận báo cáo (khóa recipients trong mục [digest] của "
                    "cấu hình): sẽ không gửi."
                )
            print(f"Tiêu đề: {rendered.subject}")
            print(f"Tệp đính kèm: {plan.attachment_name} ({len(plan.workbook)} byte)")
            print()
            print(rendered.text.rstrip())
            print()
            print(DRY_RUN_NOTE)
            return 0
        if not recipients:
            print(
                "mailbot: chưa có người nhận báo cáo (khóa recipients trong mục [digest]).",
                file=sys.stderr,
            )
            return 1
        clock = (lambda: now) if given else utc_now
        with _app(config, exclusive=True) as app:
            with app.database.session() as s:
                queue_digest(s, campaign, config, now, manual=True)
            sent, failed = deliver_held(app, clock, app.outgoing())
        print(
            f"mailbot: đã gửi báo cáo đến {', '.join(recipients)}"
            if sent
            else f"mailbot: chưa gửi được báo cáo (lỗi {failed}); sẽ thử lại sau."
        )
        return 0 if sent else 1

    return _run(body)


# --------------------------------------------------------------------------- status


def _form_cell(f: FormState | None, campaign: Campaign) -> str:
    if f is None or f.status == FORM_NONE or f.received_at is None:
        return "chưa gửi"
    when = local(f.received_at, campaign).strftime("%d/%m %H:%M")
    if f.status == FORM_OK:
        text = (
            f"{when}, {f.entries} mô hình"
            if f.entries or not f.declared_empty
            else f"{when}, không đăng ký"
        )
    elif f.status == FORM_ERRORS:
        text = f"{when}, {f.errors} lỗi"
    else:
        text = f"{when}, chờ xác nhận"
    return text + (", muộn" if f.late else "")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def status(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
            campaign = app.campaign
            states = unit_states(s, campaign, utc_now())
        if args.json:
            print(json_dumps(status_json(campaign, states)))
            return 0
        forms = [f.code for f in campaign.forms]
        print(f"{campaign.name} – hạn nộp {campaign.deadline_text}")
        head = f"{'Mã':<18} {'Đơn vị':<44} {'Tình trạng':<23} " + " ".join(
            f"{c:<28}" for c in forms
        )
        print(head.rstrip())
        print("-" * len(head.rstrip()))
        for u in states:
            cells = " ".join(f"{_form_cell(u.forms.get(c), campaign):<28}" for c in forms)
            print(f"{_fit(u.code, 18):<18} {_fit(u.name, 44):<44} {u.label:<23} {cells}".rstrip())
        counts = count_states(states)
        total = len(states)
        print("-" * len(head.rstrip()))
        print(
            f"Đã gửi đủ {counts['complete']}/{total} đơn vị "
            f"({percent(counts['complete'], total)}%); "
            + "; ".join(f"{STATE_LABELS[k]}: {counts[k]}" for k in STATES if k != "complete")
        )
        return 0

    return _run(body)


# --------------------------------------------------------------------------- export


def export(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        out = Path(args.out)
        if not out.parent.resolve().is_dir():
            raise UsageError(f"--out {args.out}: thư mục {out.parent} không tồn tại")
        if out.is_dir():
            raise UsageError(
                f"--out {args.out} là một thư mục; hãy ghi tên tệp, ví dụ {out / 'tong-hop.xlsx'}"
            )
        if out.suffix.lower() not in (".xlsx", ".docx"):
            raise UsageError(f"--out {args.out}: tên tệp phải có đuôi .xlsx (hoặc .docx)")
        word_only = out.suffix.lower() == ".docx"
        progress = terminal_progress()
        now = utc_now()
        written: list[Path] = []
        with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
            campaign, issuer = app.campaign, issuer_of(config)
            if not word_only:
                if progress:
                    progress("đang lập bảng tổng hợp .xlsx…")
                atomic_write(out, consolidated_xlsx(s, campaign, now, issuer=issuer))
                written.append(out)
            if word_only or args.docx:
                target = out if word_only else out.with_suffix(".docx")
                if progress:
                    progress("đang lập bản Word .docx…")
                atomic_write(target, consolidated_docx(s, campaign, now, issuer=issuer))
                written.append(target)
        if progress:
            sys.stderr.write("\r\033[K")
        for path in written:
            print(f"mailbot: đã ghi {path}")
        return 0

    return _run(body)


# --------------------------------------------------------------------------- review


def review_list(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
            campaign = app.campaign
            names = {u.code: u.name for u in dbm.unit_register(s)}
            quarantined = dbm.mails_with_status(s, "quarantined")
            waiting = list(
                s.scalars(
                    dbm.select(dbm.Mail)
                    .where(dbm.Mail.awaiting_confirmation.is_(True), dbm.Mail.status == "processed")
                    .order_by(dbm.Mail.id)
                )
            )
            forms = {m.id: [sub.form for sub in dbm.submissions_for_mail(s, m.id)] for m in waiting}
        if not quarantined and not waiting:
            print("Không có việc nào chờ xử lý.")
            return 0
        if quarantined:
            print(f"THƯ BỊ GIỮ LẠI ({len(quarantined)}):")
            for m in quarantined:
                reason = QUARANTINE_REASONS.get(m.quarantine_reason or "", m.quarantine_reason)
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr or '(không rõ)'}"
                    f"  “{m.subject or ''}”  – {reason}"
                )
            print(
                "  Gán cho đơn vị: mailbot review assign --mail ID --unit MÃ; "
                "loại bỏ: mailbot review reject --mail ID"
            )
        if waiting:
            print(f"NGƯỜI GỬI CHỜ XÁC NHẬN ({len(waiting)}):")
            for m in waiting:
                unit = names.get(m.unit_code or "", m.unit_code or "?")
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr} → {unit} "
                    f"({m.unit_code}); biểu mẫu: {', '.join(forms[m.id]) or 'không có'}"
                )
            print(
                "  Xác nhận: mailbot review confirm --mail ID; "
                "loại bỏ: mailbot review reject --mail ID"
            )
        return 0

    return _run(body)


def _mail(s: dbm.Session, mail_id: int) -> dbm.Mail:
    mail = dbm.get_mail(s, mail_id)
    if mail is None:
        raise UsageError(f"không có thư mã {mail_id}")
    return mail


def _unit(s: dbm.Session, code: str) -> dbm.Unit:
    unit = dbm.get_unit(s, code)
    if unit is None:
        raise UsageError(f"không có đơn vị mã {code!r} (xem mailbot status)")
    return unit


def review_confirm(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        if args.mail is None and not (args.email and args.unit):
            raise UsageError("cần --mail ID, hoặc --email ADDR cùng --unit CODE")
        now = utc_now()
        with _app(config, exclusive=True) as app, app.database.session() as s:
            if args.mail is not None:
                mail = _mail(s, args.mail)
                addr = args.email or mail.from_addr
                code = args.unit or mail.unit_code
                if not addr:
                    raise UsageError(f"thư #{mail.id} không có địa chỉ người gửi")
                if not code:
                    raise UsageError(
                        f"thư #{mail.id} chưa gắn với đơn vị nào; thêm --unit CODE "
                        "hoặc dùng mailbot review assign"
                    )
            else:
                addr, code = args.email, args.unit
            unit = _unit(s, code)
            count = dbm.confirm_sender(s, addr, unit.code, now)
            print(
                f"mailbot: đã xác nhận {addr.strip().lower()} là địa chỉ của {unit.name} "
                f"({unit.code}); {count} biểu mẫu chờ xác nhận nay được tính."
            )
        return 0

    return _run(body)


def review_assign(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        now = utc_now()
        with _app(config, exclusive=True) as app:
            with app.database.session() as s:
                mail = _mail(s, args.mail)
                unit = _unit(s, args.unit)
                if mail.status != "quarantined":
                    raise UsageError(f"thư #{mail.id} không bị giữ lại (trạng thái {mail.status})")
                if mail.from_addr:
                    dbm.add_unit_email(
                        s, mail.from_addr, unit.code, confirmed=True, now=now, source="review"
                    )
                dbm.add_event(
                    s,
                    "assigned",
                    at=now,
                    mail_id=mail.id,
                    unit_code=unit.code,
                    detail=mail.from_addr,
                )
                dbm.reset_for_reprocess(s, mail, now)
                unit_name = unit.name
            robot = app.robot(progress=terminal_progress())
            robot.process_due()
            robot.deliver()
            with app.database.session(write=False) as s:
                mail = _mail(s, args.mail)
                subs = dbm.submissions_for_mail(s, mail.id)
                state, reason = mail.status, mail.quarantine_reason
        if state == "quarantined":
            why = QUARANTINE_REASONS.get(reason or "", reason)
            print(f"mailbot: thư #{args.mail} vẫn bị giữ lại sau khi xử lý lại: {why}.")
            return 1
        print(
            f"mailbot: đã gán thư #{args.mail} cho {unit_name} và xử lý lại: "
            f"{len(subs)} biểu mẫu ({', '.join(x.form for x in subs) or 'không có'})."
        )
        return 0

    return _run(body)


def review_reject(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        now = utc_now()
        with _app(config, exclusive=True) as app, app.database.session() as s:
            mail = _mail(s, args.mail)
            if mail.status not in ("quarantined", "processed", "oversize"):
                raise UsageError(f"thư #{mail.id} đang ở trạng thái {mail.status}, không loại được")
            addr = mail.from_addr
            if mail.awaiting_confirmation and addr:
                row = s.get(dbm.UnitEmail, addr)
                if row is not None and not row.confirmed:
                    s.delete(row)
            dbm.clear_mail_results(s, mail.id)
            mail.status = "ignored"
            mail.awaiting_confirmation = False
            mail.quarantine_reason = "rejected"
            mail.next_attempt_at = None
            dbm.add_event(
                s, "rejected", at=now, mail_id=mail.id, unit_code=mail.unit_code, detail=args.reason
            )
            print(
                f"mailbot: đã loại thư #{mail.id} từ {addr or '(không rõ)'}"
                + (f" (lý do: {args.reason})" if args.reason else "")
                + "."
            )
        return 0

    return _run(body)


# --------------------------------------------------------------------------- campaign new


def campaign_new(args: argparse.Namespace, config: Config | None) -> int:
    def body() -> int:
        source = load_campaign(args.source) if args.source else newest_campaign()
        if args.year == source.year:
            raise UsageError(f"đợt thi đua năm {args.year} chính là tệp gốc")
        if not 2000 <= args.year <= 2100:
            raise UsageError(f"năm {args.year} không hợp lý")
        text = new_campaign_text(source, args.year)
        if args.out:
            target = Path(args.out)
        else:
            import rules

            new_id = source.id.replace(str(source.year), str(args.year))
            if new_id == source.id:
                new_id = f"{source.id}-{args.year}"
            target = Path(rules.__file__).resolve().parent / "campaigns" / f"{new_id}.toml"
        try:
            with target.open("x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            print(f"mailbot: {target} đã có; không ghi đè.", file=sys.stderr)
            return 1
        made = parse_campaign(text)
        print(
            f"mailbot: đã tạo {target} (năm {made.year}, hạn nộp {made.deadline_text}). "
            "Đề nghị kiểm tra lại các ngày và số công văn."
        )
        return 0

    return _run(body)


__all__ = ["parse_now", "register"]
