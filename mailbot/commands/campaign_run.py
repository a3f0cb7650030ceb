"""Campaign commands' work: reminders, digest, status, export, staff review, new campaign."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

from mailbot import glossary, review
from mailbot.app import App, campaign_of, open_app, terminal_progress
from mailbot.campaign.digest import build_digest, queue_digest
from mailbot.campaign.export import consolidated_docx, consolidated_xlsx, export_file_name
from mailbot.campaign.reminders import plan_reminders, queue_reminders, units_without_address
from mailbot.campaign.schedule import (
    ReminderPoints,
    day_words,
    days_left,
    local,
    reminder_schedule,
    schedule_lines,
)
from mailbot.campaign.status import (
    FORM_ERRORS,
    FORM_NONE,
    FORM_OK,
    QUARANTINE_REASONS,
    STATE_LABELS,
    STATES,
    FormState,
    UnitState,
    VersionRow,
    count_states,
    json_dumps,
    status_json,
    unit_history,
    unit_states,
)
from mailbot.campaign.views import percent
from mailbot.clock import utc_now
from mailbot.config import Config, ConfigError, find_config, load_config
from mailbot.fsutil import atomic_write
from mailbot.scheduler import send_queued
from mailbot.staff.links import digest_links
from outbox_templates import render
from rules.base import FORM_NAMES
from rules.campaign import (
    Campaign,
    CampaignError,
    load_campaign,
    new_campaign_text,
    newest_campaign,
    parse_campaign,
)

DRY_RUN_NOTE = "(Chạy thử: không gửi thư nào, không thay đổi dữ liệu.)"


class UsageError(Exception):
    """A bad argument value: exit status 2 with a Vietnamese message."""


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
    except (UsageError, review.ReviewError) as exc:
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
                queued = queue_reminders(s, campaign, config, now, manual=True)
            if schedule.due is None:
                _say_nothing_due(campaign, now, schedule)
                return 0
            sent, failed = send_queued(app, queued, clock, app.outgoing())
            print(
                f"mailbot: đợt nhắc {_when(schedule.due, campaign)}: đã lập {len(queued)} thư "
                f"nhắc; gửi được {sent}, lỗi {failed}."
            )
            return 0 if not failed else 1

    return _run(body)


def _say_nothing_due(campaign: Campaign, now: datetime, schedule: ReminderPoints) -> None:
    upcoming = schedule.upcoming
    if schedule.day_off and now < campaign.deadline:
        print(
            f"mailbot: hôm nay ({day_words(local(now, campaign).date())}) là ngày nghỉ: "
            "không gửi thư nhắc; đợt nhắc đang chờ sẽ gửi được vào ngày làm việc."
        )
    elif now >= campaign.deadline:
        print(
            f"mailbot: đã hết hạn nộp ({campaign.deadline_words}): không gửi thư nhắc; "
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
            _say_nothing_due(campaign, now, schedule)
            print(DRY_RUN_NOTE)
            return 0
        plans = plan_reminders(s, campaign, now, point=schedule.due, config=config)
        noaddr = [
            u for u in units_without_address(s, campaign, now) if u.state != "awaiting-confirmation"
        ]
    left = days_left(campaign, now)
    print(
        f"Đợt nhắc {_when(schedule.due, campaign)} ({campaign.deadline_words}, "
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
                plan = build_digest(s, campaign, config, now, link_for=digest_links(config, now, s))
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
                links = digest_links(config, now, s)
                digest_id = queue_digest(s, campaign, config, now, manual=True, link_for=links)
            queued = [digest_id] if digest_id is not None else []
            sent, failed = send_queued(app, queued, clock, app.outgoing())
        print(
            f"mailbot: đã gửi báo cáo đến {', '.join(recipients)}"
            if sent
            else f"mailbot: chưa gửi được báo cáo (lỗi {failed}); sẽ thử lại sau."
        )
        return 0 if sent else 1

    return _run(body)


# --------------------------------------------------------------------------- status


def _form_cell(f: FormState | None, campaign: Campaign, owed: bool = True) -> str:
    if not owed and (f is None or f.status == FORM_NONE):
        return glossary.NOT_OWED
    if f is None or f.status == FORM_NONE or f.received_at is None:
        return glossary.FORM_STATE_LABELS["none"]
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
        text = f"{when}, {glossary.FORM_STATE_LABELS['unconfirmed'].lower()}"
    return text + (f", {glossary.LATE.lower()}" if f.late else "")


def _print_history(unit: UnitState, rows: list[VersionRow], campaign: Campaign) -> None:
    """One unit's versions per form: when, from whom, how many models, what became of it."""
    print(f"{unit.name} ({unit.code}) – {unit.label}")
    for spec in campaign.forms:
        versions = [r for r in rows if r.form == spec.code]
        print(f"\n{FORM_NAMES.get(spec.code, spec.code)}: {len(versions)} bản đã nhận")
        if not versions:
            print("  (chưa gửi)")
        for r in versions:
            sender = r.sender_address or "(không rõ)"
            if r.sender_unit and r.sender_unit != unit.name:
                sender += f" – do {r.sender_unit} gửi"
            errors = f", {r.errors} lỗi" if r.errors else ""
            late = f", {glossary.LATE.lower()}" if r.late else ""
            print(
                f"  #{r.submission_id} (thư #{r.mail_id})  {_when(r.received_at, campaign)}  "
                f"{sender}  {r.entries} mô hình{errors}{late}  – {r.label}"
            )
            print(f"      tệp: {r.file_name}")


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def status(args: argparse.Namespace, config: Config) -> int:
    if len(config.mailboxes) > 1 and not (args.json or args.unit):
        from mailbot.commands.city import status_all

        return status_all(config)
    config = config.one_mailbox(None)

    def body() -> int:
        code = getattr(args, "unit", None)
        with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
            campaign = app.campaign
            states = unit_states(s, campaign, utc_now())
            history = unit_history(s, code) if code else []
        if code:
            states = [u for u in states if u.code == code]
            if not states:
                raise UsageError(f"không có đơn vị mã {code!r} (xem mailbot units list)")
        if args.json:
            print(json_dumps(status_json(campaign, states)))
            return 0
        if code:
            _print_history(states[0], history, campaign)
            return 0
        forms = [f.code for f in campaign.forms]
        print(f"{campaign.name} – hạn nộp {campaign.deadline_text}, {campaign.deadline_words}")
        rows = [
            [
                _fit(u.code, 18),
                _fit(u.name, 44),
                u.label,
                *(_form_cell(u.forms.get(c), campaign, u.owes(c)) for c in forms),
            ]
            for u in states
        ]
        # Each column as wide as its longest cell, two spaces apart: never run together.
        header = ["Mã", "Đơn vị", "Tình trạng", *forms]
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def line(cells: list[str]) -> str:
            return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths, strict=True)).rstrip()

        head = line(header)
        print(head)
        print("-" * len(head))
        for row in rows:
            print(line(row))
        counts = count_states(states)
        total = len(states)
        print("-" * len(head))
        print(
            f"Đã gửi đủ {counts['complete']}/{total} đơn vị "
            f"({percent(counts['complete'], total)}%); "
            + "; ".join(f"{STATE_LABELS[k]}: {counts[k]}" for k in STATES if k != "complete")
        )
        return 0

    return _run(body)


# --------------------------------------------------------------------------- export


def export(args: argparse.Namespace, config: Config) -> int:
    if args.all and getattr(args, "mailbox", None) is not None:
        print("mailbot: lỗi: --all là mọi hộp thư, không ghi kèm --mailbox", file=sys.stderr)
        return 2
    if not args.all:
        config = config.one_mailbox(None)

    def body() -> int:
        campaign = campaign_of(config.districts()[0])
        now = utc_now()
        default = export_file_name(campaign, now)
        if args.all:
            default = default.replace(" - ", " - toàn thành phố - ", 1)
        out = Path(args.out or default)
        if not out.parent.resolve().is_dir():
            raise UsageError(f"--out {out}: thư mục {out.parent} không tồn tại")
        if out.is_dir():
            raise UsageError(
                f"--out {out} là một thư mục; hãy ghi tên tệp, ví dụ {out / 'tong-hop.xlsx'}"
            )
        if out.suffix.lower() not in (".xlsx", ".docx"):
            raise UsageError(f"--out {out}: tên tệp phải có đuôi .xlsx (hoặc .docx)")
        if args.all:
            from mailbot.commands.city import export_all

            for path in export_all(args, config, out):
                print(f"mailbot: đã ghi {path}")
            return 0
        word_only = out.suffix.lower() == ".docx"
        progress = terminal_progress()
        written: list[Path] = []
        with _app(config, exclusive=False) as app, app.database.session(write=False) as s:
            campaign, board = app.campaign, config.board
            if not word_only:
                if progress:
                    progress("đang lập bảng tổng hợp .xlsx…")
                atomic_write(out, consolidated_xlsx(s, campaign, now, board=board))
                written.append(out)
            if word_only or args.docx:
                target = out if word_only else out.with_suffix(".docx")
                if progress:
                    progress("đang lập bản Word .docx…")
                atomic_write(target, consolidated_docx(s, campaign, now, board=board))
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
            todo = review.pending(s)
        if (
            not todo.quarantined
            and not todo.awaiting
            and not todo.to_read
            and not todo.unanswered_old
        ):
            print("Không có việc nào chờ xử lý.")
            return 0
        if todo.quarantined:
            print(f"THƯ BỊ GIỮ LẠI ({len(todo.quarantined)}):")
            for m in todo.quarantined:
                reason = QUARANTINE_REASONS.get(m.quarantine_reason or "", m.quarantine_reason)
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr or '(không rõ)'}"
                    f"  “{m.subject or ''}”  – {reason}"
                )
            print(
                "  Gán cho đơn vị: mailbot review assign --mail ID --unit MÃ; "
                "loại bỏ: mailbot review reject --mail ID"
            )
        if todo.awaiting:
            print(f"NGƯỜI GỬI CHỜ XÁC NHẬN ({len(todo.awaiting)}):")
            for m in todo.awaiting:
                unit = todo.unit_names.get(m.unit_code or "", m.unit_code or "?")
                forms = ", ".join(todo.forms[m.id]) or "không có"
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr} → {unit} "
                    f"({m.unit_code}); biểu mẫu: {forms}"
                )
            print(
                "  Xác nhận: mailbot review confirm --mail ID; "
                "loại bỏ: mailbot review reject --mail ID"
            )
        if todo.to_read:
            print(f"THƯ CỦA ĐƠN VỊ KHÔNG KÈM BIỂU MẪU, CẦN ĐỌC ({len(todo.to_read)}):")
            for m in todo.to_read:
                unit = todo.unit_names.get(m.unit_code or "", m.unit_code or "?")
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr or '(không rõ)'}"
                    f" → {unit}  “{m.subject or ''}”"
                )
                for line in (m.excerpt or "(thư không có nội dung)").splitlines():
                    print(f"      {line}")
            print("  Sau khi đọc và trả lời: mailbot review handled --mail ID")
        if todo.unanswered_old:
            print(f"THƯ CŨ, CHƯA TRẢ LỜI TỰ ĐỘNG ({len(todo.unanswered_old)}):")
            for m in todo.unanswered_old:
                print(
                    f"  #{m.id}  {_when(m.received_at, campaign)}  {m.from_addr or '(không rõ)'}"
                    f"  “{m.subject or ''}”"
                )
            print(
                f"  Thư đến máy chủ đã quá {config.inbox.max_reply_age_days} ngày nên hệ thống "
                "chỉ ghi nhận. Trả lời: mailbot reprocess ID; loại bỏ: mailbot review reject "
                "--mail ID"
            )
        return 0

    return _run(body)


def _operator() -> str:
    """Who runs the command: the person behind sudo, else the login name."""
    who = os.environ.get("SUDO_USER")
    if who:
        return who
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "không rõ"


def review_handled(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        by = args.by or _operator()
        with _app(config, exclusive=True) as app, app.database.session() as s:
            done = review.handled(s, args.mail, utc_now(), by)
        print(
            f"mailbot: đã đánh dấu thư số {done.mail_id} từ {done.from_addr or '(không rõ)'} "
            f"là đã xử lý (người xử lý: {done.by})."
        )
        return 0

    return _run(body)


def review_confirm(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        if args.mail is None and not (args.email and args.unit):
            raise UsageError("cần --mail ID, hoặc --email ADDR cùng --unit CODE")
        with _app(config, exclusive=True) as app, app.database.session() as s:
            done = review.confirm(
                s, utc_now(), mail_id=args.mail, email=args.email, unit_code=args.unit
            )
        print(
            f"mailbot: đã xác nhận {done.address} là địa chỉ của {done.unit_name} "
            f"({done.unit_code}); {done.forms_counted} biểu mẫu chờ xác nhận nay được tính."
        )
        return 0

    return _run(body)


def review_assign(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        with _app(config, exclusive=True) as app:
            with app.database.session() as s:
                done = review.assign(s, args.mail, args.unit, utc_now())
            robot = app.robot(progress=terminal_progress())
            robot.process_due()
            robot.deliver()
            with app.database.session(write=False) as s:
                outcome = review.mail_outcome(s, args.mail)
        if outcome.status == "quarantined":
            reason = outcome.quarantine_reason
            why = QUARANTINE_REASONS.get(reason or "", reason)
            print(f"mailbot: thư số {args.mail} vẫn bị giữ lại sau khi xử lý lại: {why}.")
            return 1
        print(
            f"mailbot: đã gán thư số {args.mail} cho {done.unit_name} và xử lý lại: "
            f"{len(outcome.forms)} biểu mẫu ({', '.join(outcome.forms) or 'không có'})."
        )
        return 0

    return _run(body)


def review_reject(args: argparse.Namespace, config: Config) -> int:
    def body() -> int:
        with _app(config, exclusive=True) as app, app.database.session() as s:
            done = review.reject(s, args.mail, utc_now(), args.reason)
        print(
            f"mailbot: đã loại thư số {done.mail_id} từ {done.from_addr or '(không rõ)'}"
            + (f" (lý do: {done.reason})" if done.reason else "")
            + "."
        )
        return 0

    return _run(body)


# --------------------------------------------------------------------------- campaign new


def _campaign_new_place(config_arg: str | None) -> tuple[Path | None, Campaign | None]:
    """The configuration file (None when there is none) and its active campaign, if loadable."""
    try:
        path = find_config(config_arg)
    except ConfigError:
        return None, None
    try:
        return path, campaign_of(load_config(path))
    except (ConfigError, CampaignError, OSError):
        return path, None


def _inside(path: Path, folder: Path) -> bool:
    return path.resolve().is_relative_to(folder.resolve())


def campaign_new(args: argparse.Namespace, config: Config | None) -> int:
    def body() -> int:
        import rules

        config_path, active = _campaign_new_place(getattr(args, "config", None))
        source = load_campaign(args.source) if args.source else active or newest_campaign()
        if args.year == source.year:
            raise UsageError(f"đợt thi đua năm {args.year} chính là tệp gốc")
        if not 2000 <= args.year <= 2100:
            raise UsageError(f"năm {args.year} không hợp lý")
        text = new_campaign_text(source, args.year)
        made = parse_campaign(text)
        package = Path(rules.__file__).resolve().parent
        if args.out:
            target = Path(args.out)
        elif config_path is not None:
            target = config_path.resolve().parent / f"{made.id}.toml"
        else:
            raise UsageError(
                "không tìm thấy tệp cấu hình để ghi tệp đợt thi đua bên cạnh; hãy chỉ định "
                "--config TỆP hoặc --out TỆP"
            )
        if _inside(target.absolute(), package):
            raise UsageError(
                f"không ghi vào thư mục cài đặt của mailbot ({package}): tệp sẽ mất khi nâng "
                "cấp; hãy ghi bên cạnh tệp cấu hình hoặc chỉ định --out TỆP ở nơi khác"
            )
        try:
            with target.open("x", encoding="utf-8") as fh:
                fh.write(text)
        except FileExistsError:
            print(f"mailbot: {target} đã có; không ghi đè.", file=sys.stderr)
            return 1
        print(
            f"mailbot: đã tạo {target} (năm {made.year}, hạn nộp {made.deadline_text}, "
            f"{made.deadline_words}). "
            "Đề nghị kiểm tra lại các ngày và số công văn."
        )
        print("Lịch nhắc hạn (chỉ vào ngày làm việc; ngày nghỉ lễ lấy từ khóa holidays của tệp):")
        for line in schedule_lines(made):
            print(f"  {line}")
        if not made.holidays:
            print(
                "  Tệp mới chưa có ngày nghỉ lễ, Tết của năm "
                f"{made.year}: đề nghị ghi vào khóa holidays rồi chạy lại `mailbot check`."
            )
        print(_activation_hint(target, config_path, source))
        return 0

    return _run(body)


def _activation_hint(target: Path, config_path: Path | None, current: Campaign) -> str:
    """How to make the new file the active campaign: it never becomes active by itself."""
    value = str(target.absolute())
    if config_path is not None and _inside(target.absolute(), config_path.resolve().parent):
        value = str(target.resolve().relative_to(config_path.resolve().parent))
    where = f"tệp cấu hình {config_path.absolute()}" if config_path else "tệp cấu hình"
    return (
        f"Tệp này CHƯA được dùng: mailbot vẫn theo đợt năm {current.year}. Để dùng đợt mới, "
        f"ghi vào {where} (ở mục chính, trước mọi dòng [mục]) dòng:\n"
        f"  campaign = {json.dumps(value, ensure_ascii=False)}\n"
        "rồi chạy `mailbot check` và khởi động lại dịch vụ: systemctl restart mailbot"
    )


__all__ = ["parse_now"]
