"""`mailbot demo`: the whole robot on a local Maildir with sample mail, no mail server needed."""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING

from mailbot import glossary
from mailbot.config import Config, InboxConfig, OutgoingConfig, StorageConfig

if TYPE_CHECKING:
    from rules.campaign import Campaign

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MARKER = ".mailbot-demo"
REPO_UNITS = Path(__file__).resolve().parents[2] / "data" / "units.csv"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "demo", help="chạy thử trọn vòng trên hộp thư cục bộ (không cần máy chủ thư)"
    )
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("mailbot-demo"),
        help="thư mục chứa hộp thư, CSDL và thư trả lời (mặc định ./mailbot-demo)",
    )
    p.add_argument("--units", type=Path, default=REPO_UNITS, help="danh sách đơn vị (CSV/XLSX)")
    p.set_defaults(func=run, needs_config=False)


def _mail(
    sender: str,
    subject: str,
    when: datetime,
    body: str,
    files: Sequence[tuple[str, bytes]] = (),
    headers: dict[str, str] | None = None,
    to: str = "bdv_quthanhxuan@hanoi.gov.vn",
) -> bytes:
    msg = EmailMessage()
    # What the district's server adds on delivery: the robot takes the mail's time from it.
    msg["Received"] = f"from unit.example by mail.thanhxuan.example; {format_datetime(when)}"
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = format_datetime(when)
    msg["Message-ID"] = make_msgid(domain="demo.thanhxuan.example")
    for k, v in (headers or {}).items():
        msg[k] = v
    msg.set_content(body)
    for name, data in files:
        msg.add_attachment(
            data, maintype=XLSX.split("/")[0], subtype=XLSX.split("/")[1], filename=name
        )
    return bytes(msg)


def sample_mails(campaign: Campaign) -> tuple[list[bytes], list[bytes]]:
    """Mails before the deadline, and one after it: good, faulty, unknown, automatic."""
    from mailbot.campaign.samples import filled_form_xlsx  # openpyxl: only when used

    day = datetime(campaign.year, 2, 14, 9, 30, tzinfo=campaign.tz)
    good_m1 = filled_form_xlsx(
        "M1",
        campaign,
        "Đảng ủy phường Khương Trung",
        date(campaign.year, 2, 14),
        collectives=[
            ("Chi bộ Tổ dân phố số 5", "culture_society", "Tổ dân phố xanh - sạch - đẹp"),
            ("Chi hội Cựu chiến binh TDP 3", "security_defense", "Camera an ninh khu dân cư"),
        ],
        individuals=[
            (
                "Đồng chí Nguyễn Thị Hoa, Tổ trưởng TDP 7",
                "economy",
                "Bữa cơm nghĩa tình cho người khó khăn",
            )
        ],
        totals={"economy": 1, "culture_society": 1, "security_defense": 1},
    )
    good_m2 = filled_form_xlsx(
        "M2",
        campaign,
        "Đảng ủy phường Khương Trung",
        date(campaign.year, 2, 14),
        collectives=[
            (
                "Chi bộ Tổ dân phố số 12",
                "political_system",
                "Tiếp dân, đối thoại với Nhân dân tại tổ dân phố",
            )
        ],
    )
    faulty = filled_form_xlsx(
        "M1",
        campaign,
        "Hội Liên hiệp Phụ nữ quận",
        date(campaign.year, 2, 15),
        collectives=[
            (None, "economy", "Chi hội phụ nữ tiết kiệm"),
            ("Chi hội Phụ nữ phường Hạ Đình", "culture_society", "Ngày thứ Bảy văn minh"),
        ],
        totals={"economy": 3},
    )
    from_personal = filled_form_xlsx(
        "M2",
        campaign,
        "Hội Cựu chiến binh quận",
        date(campaign.year, 2, 16),
        collectives=[
            ("Chi hội CCB phường Kim Giang", "security_defense", "Tổ tự quản an ninh trật tự")
        ],
    )
    late = filled_form_xlsx(
        "M1",
        campaign,
        "Đảng ủy phường Hạ Đình",
        date(campaign.year, 2, 21),
        collectives=[("Chi bộ TDP 2", "economy", "Mô hình kinh tế hộ gia đình")],
    )
    on_time = [
        _mail(
            "Đảng ủy phường Khương Trung <dangbo.khuongtrung@thanhxuan.example>",
            "Đăng ký mô hình Dân vận khéo năm 2022",
            day,
            "Kính gửi Ban Dân vận Quận ủy,\nĐảng ủy phường gửi Mẫu 01 và Mẫu 02.",
            [("Mẫu 01 - Khương Trung.xlsx", good_m1), ("Mẫu 02 - Khương Trung.xlsx", good_m2)],
        ),
        _mail(
            "Văn phòng Hội LHPN quận <hoiphunu@thanhxuan.example>",
            "Fwd: biểu đăng ký DVK",
            day.replace(day=15),
            "Gửi Ban biểu cấp Quận.",
            [("Bieu mau 01 HLHPN.xlsx", faulty)],
        ),
        _mail(
            "Trần Văn Bình <tranvanbinh1962@gmail.example>",
            "Biểu đăng ký của Hội CCB quận",
            day.replace(day=16),
            "Tôi gửi hộ Hội Cựu chiến binh quận biểu mẫu 02.",
            [("Mau 02 CCB.xlsx", from_personal)],
        ),
        _mail(
            "Người lạ <someone@unknown.example>",
            "Xin chào",
            day.replace(day=16),
            "Thư không liên quan.",
            [("tai-lieu.pdf", b"%PDF-1.4\n%%EOF\n")],
        ),
        _mail(
            "Đảng ủy phường Nhân Chính <dangbo.nhanchinh@thanhxuan.example>",
            "Trả lời tự động: Đăng ký mô hình",
            day.replace(day=17),
            "Tôi đang đi công tác đến hết ngày 20/02.",
            headers={"Auto-Submitted": "auto-replied"},
        ),
    ]
    after = [
        _mail(
            "Đảng ủy phường Hạ Đình <dangbo.hadinh@thanhxuan.example>",
            "Gửi bổ sung biểu mẫu 01",
            datetime(campaign.year, 2, 21, 10, 0, tzinfo=campaign.tz),
            "Đảng ủy phường gửi muộn, mong Ban thông cảm.",
            [("Mẫu 01 Hạ Đình.xlsx", late)],
        ),
    ]
    return on_time, after


def _deliver(maildir: Path, mails: Sequence[bytes]) -> None:
    import mailbox

    maildir.parent.mkdir(parents=True, exist_ok=True)
    box = mailbox.Maildir(maildir, create=True)
    try:
        for raw in mails:
            box.add(raw)
    finally:
        box.close()


def run(args: argparse.Namespace, config: object = None) -> int:
    from mailbot import db as dbm  # the database only when the demo runs
    from mailbot.app import import_units, open_app
    from mailbot.campaign.status import QUARANTINE_REASONS

    base = args.dir.resolve()
    if base.exists() and any(base.iterdir()):
        if not (base / MARKER).is_file():
            print(f"mailbot demo: {base} đã có dữ liệu khác; hãy chọn --dir khác.", file=sys.stderr)
            return 2
        shutil.rmtree(base)  # a previous demo run: start afresh
    base.mkdir(parents=True, exist_ok=True)
    (base / MARKER).write_text("created by `mailbot demo`; safe to delete\n", encoding="utf-8")
    from rules.campaign import newest_campaign

    campaign = newest_campaign()
    cfg = Config(
        base_dir=str(base),
        # The sample mail is in the inbox before the first start: process it (the season's).
        inbox=InboxConfig(
            url="maildir:inbox",
            processed_folder="mailbot-processed",
            process_since=date(campaign.year, 1, 1),
        ),
        outgoing=OutgoingConfig(url="dir:outbox"),
        storage=StorageConfig(data_dir="data"),
    )
    on_time, after = sample_mails(campaign)
    _deliver(base / "inbox", on_time)
    if not args.units.is_file():
        print(
            f"mailbot demo: không tìm thấy danh sách đơn vị {args.units}; hãy chạy trong thư "
            "mục mã nguồn mailbot hoặc chỉ định --units TỆP.",
            file=sys.stderr,
        )
        return 2
    units_file = args.units
    with open_app(cfg) as app:
        if units_file is not None:
            n = import_units(app.database, units_file)
            print(f"Đã nạp {n} đơn vị từ {units_file}")
        # The demo replays the 2022 season: first mails before the deadline, then a late one.
        robot = app.robot()
        robot.clock = lambda: datetime(campaign.year, 2, 17, 2, 0, tzinfo=UTC)
        first = robot.run_once()
        _deliver(base / "inbox", after)
        robot.clock = lambda: datetime(campaign.year, 2, 21, 3, 0, tzinfo=UTC)
        second = robot.run_once()
        with app.database.session(write=False) as s:
            from outbox_templates.labels import form_title  # Jinja2 stays out of --help

            subs = dbm.all_submissions(s)
            names = {u.code: u.name for u in dbm.unit_register(s)}
            quarantined = dbm.mails_with_status(s, "quarantined")
            lines = [
                f"  - {names.get(sub.unit_code or '', sub.unit_code)}: {form_title(sub.form)} "
                f"từ tệp “{sub.file_name}”, {sub.entries_count} mô hình, {sub.errors_count} lỗi"
                f"{', ' + glossary.LATE.lower() if sub.late else ''}"
                f"{', chờ xác nhận người gửi' if sub.awaiting_confirmation else ''}"
                for sub in subs
            ]
            q_lines = [
                f"  - thư số {m.id} từ {m.from_addr}: "
                f"{QUARANTINE_REASONS.get(m.quarantine_reason or '', m.quarantine_reason)}"
                for m in quarantined
            ]
            other_lines = [
                f"  - thư số {ev.mail_id} từ {ev.detail}"
                for ev in dbm.events_since(
                    s, datetime(campaign.year, 1, 1, tzinfo=UTC), kinds=("other-mail",)
                )
            ]
    print(
        f"Đã xử lý {first.processed + second.processed} thư, gửi {first.sent + second.sent} "
        "thư trả lời."
    )
    print("Biểu đã ghi nhận:")
    print("\n".join(lines) or "  (không có)")
    if q_lines:
        print("Thư chờ cán bộ xem xét:")
        print("\n".join(q_lines))
    if other_lines:
        print("Thư khác (không phải của đơn vị, không kèm biểu mẫu; không trả lời tự động):")
        print("\n".join(other_lines))
    print(f"Thư trả lời (.eml): {base / 'outbox'}")
    print(f"Cơ sở dữ liệu:      {cfg.data_dir / 'mailbot.sqlite3'}")
    print(f"Hộp thư mẫu:        {base / 'inbox'}")
    example = replace(cfg, campaign=None)
    _write_config(base / "mailbot.toml", example)
    print(f"Xem tình hình:      mailbot --config {base / 'mailbot.toml'} status")
    return 0


def _write_config(path: Path, cfg: Config) -> None:
    path.write_text(
        "# Written by `mailbot demo`; see mailbot.example.toml for every key.\n"
        f'[inbox]\nurl = "{cfg.inbox.url}"\n\n[outgoing]\nurl = "{cfg.outgoing.url}"\n\n'
        f'[storage]\ndata_dir = "{cfg.storage.data_dir}"\n',
        encoding="utf-8",
    )
