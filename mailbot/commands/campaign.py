"""Campaign commands' arguments: remind, digest, status, export, review, campaign new.

The work itself lives in `campaign_run`, imported only when a command runs, so that
`mailbot --help` loads no database, scheduler or template code.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any


def _later(name: str) -> Any:
    """The command function `name` of `campaign_run`, imported on first call."""

    def run(args: argparse.Namespace, config: Any) -> int:
        module = importlib.import_module("mailbot.commands.campaign_run")
        return int(getattr(module, name)(args, config))

    run.__name__ = name
    return run


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
    p.set_defaults(func=_later("remind"))

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
    p.set_defaults(func=_later("digest"))

    p = sub.add_parser("status", help="tình hình gửi biểu mẫu của từng đơn vị")
    p.add_argument("--json", action="store_true", help="in JSON theo hợp đồng")
    p.add_argument(
        "--unit",
        metavar="MÃ",
        help="chỉ một đơn vị, với mọi bản đã nhận của từng biểu mẫu (giờ nhận, người gửi, "
        "số mô hình, bản nào đang được tính)",
    )
    # Without --mailbox on a configuration of several mailboxes: one line per mailbox.
    p.set_defaults(func=_later("status"), many_mailboxes=True)

    p = sub.add_parser("export", help="xuất bảng tổng hợp (xlsx, hoặc docx)")
    p.add_argument(
        "-o",
        "--out",
        metavar="FILE.xlsx",
        help="tệp kết quả (mặc định: “Tổng hợp Dân vận khéo NĂM - NGÀY.xlsx” ở thư mục hiện tại)",
    )
    p.add_argument(
        "--docx",
        action="store_true",
        help="ghi thêm bản Word (.docx) cùng tên bên cạnh; --out *.docx chỉ ghi Word",
    )
    p.add_argument(
        "--all",
        action="store_true",
        help="một bảng tổng hợp toàn thành phố: mọi hộp thư (mọi quận, huyện) trong tệp cấu hình",
    )
    p.set_defaults(func=_later("export"), many_mailboxes=True)

    p = sub.add_parser(
        "review",
        help="việc chờ cán bộ xử lý: thư bị giữ lại, người gửi chờ xác nhận, thư cần đọc",
        description="Không có lệnh con: liệt kê những việc đang chờ một người xử lý.",
    )
    p.set_defaults(func=_later("review_list"))
    rs = p.add_subparsers(dest="review_action", metavar="<việc>")
    c = rs.add_parser("confirm", help="xác nhận địa chỉ gửi là của một đơn vị")
    c.add_argument("--mail", type=int, metavar="ID", help="mã thư chờ xác nhận")
    c.add_argument("--email", metavar="ADDR", help="địa chỉ cần xác nhận")
    c.add_argument("--unit", metavar="CODE", help="mã đơn vị")
    c.set_defaults(func=_later("review_confirm"))
    a = rs.add_parser("assign", help="gán thư bị giữ lại cho một đơn vị và xử lý lại")
    a.add_argument("--mail", type=int, required=True, metavar="ID")
    a.add_argument("--unit", required=True, metavar="CODE")
    a.set_defaults(func=_later("review_assign"))
    r = rs.add_parser("reject", help="loại bỏ một thư (không tính biểu mẫu trong thư)")
    r.add_argument("--mail", type=int, required=True, metavar="ID")
    r.add_argument("--reason", metavar="TEXT", default=None)
    r.set_defaults(func=_later("review_reject"))
    h = rs.add_parser(
        "handled",
        help="đánh dấu đã xử lý một thư của đơn vị không kèm biểu mẫu (đã đọc, đã trả lời)",
    )
    h.add_argument("--mail", type=int, required=True, metavar="ID")
    h.add_argument(
        "--by",
        metavar="TÊN",
        default=None,
        help="người xử lý (mặc định: tên người dùng đang chạy lệnh)",
    )
    h.set_defaults(func=_later("review_handled"))

    p = sub.add_parser("campaign", help="tệp đợt thi đua")
    cs = p.add_subparsers(dest="campaign_action", metavar="<việc>")
    cs.required = True
    n = cs.add_parser(
        "new",
        help="tạo tệp đợt thi đua năm mới từ đợt đang dùng, dời mọi ngày theo năm",
        description=(
            "Tạo tệp đợt thi đua năm YEAR bên cạnh tệp cấu hình (hoặc --out TỆP), không bao "
            "giờ ghi vào thư mục cài đặt của mailbot, không ghi đè. Tệp mới chưa được dùng "
            "cho đến khi đặt khóa campaign trong tệp cấu hình."
        ),
    )
    n.add_argument("year", type=int, metavar="YEAR")
    n.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help=(
            "tệp gốc (mặc định: đợt đang dùng theo cấu hình, không có thì tệp mới nhất kèm mailbot)"
        ),
    )
    n.add_argument(
        "--out",
        metavar="FILE",
        help="tệp kết quả (mặc định <id>.toml bên cạnh tệp cấu hình); không ghi đè",
    )
    n.set_defaults(func=_later("campaign_new"), needs_config=False)
