"""`mailbot outbox retry [--id N | --all-failed]`: an operator sends failed mail again."""

from __future__ import annotations

import argparse
import sys

from mailbot.clock import utc_now
from mailbot.config import Config


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("outbox", help="thư gửi đi: gửi lại thư đã thất bại")
    actions = p.add_subparsers(dest="action", metavar="<việc>")
    actions.required = True
    r = actions.add_parser(
        "retry", help="đưa thư gửi thất bại vào hàng đợi gửi lại (cùng nội dung, cùng Message-ID)"
    )
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--id", type=int, action="append", metavar="N", help="mã thư gửi đi")
    which.add_argument("--all-failed", action="store_true", help="mọi thư gửi thất bại")
    r.set_defaults(func=retry)


def retry(args: argparse.Namespace, config: Config) -> int:
    from mailbot import db as dbm

    # Not under the data directory lock: the running daemon sends the rows at its next pass.
    database = dbm.open_configured(config)
    try:
        now = utc_now()
        requeued: list[int] = []
        refused: list[str] = []
        with database.session() as s:
            ids = dbm.failed_outgoing_ids(s) if args.all_failed else list(args.id)
            for outbox_id in ids:
                row = dbm.get_outbox(s, outbox_id)
                if row is None:
                    refused.append(f"không có thư gửi đi mã {outbox_id}")
                elif dbm.requeue_outgoing(s, row, now):
                    requeued.append(outbox_id)
                else:
                    refused.append(
                        f"thư gửi đi mã {outbox_id} đang ở trạng thái “{_STATUS_VI[row.status]}”, "
                        "không phải “thất bại”"
                    )
    finally:
        database.dispose()
    for line in refused:
        print(f"mailbot: {line}", file=sys.stderr)
    if requeued:
        listed = ", ".join(str(i) for i in requeued)
        print(
            f"Đã đưa {len(requeued)} thư vào hàng đợi gửi lại (mã {listed}); mailbot đang chạy "
            "sẽ gửi ở lượt tới, hoặc chạy: mailbot poll --once"
        )
    elif not refused:
        print("Không có thư gửi thất bại nào.")
    return 1 if refused else 0


_STATUS_VI = {
    "queued": "đang chờ gửi",
    "sending": "đang gửi",
    "sent": "đã gửi",
    "failed": "thất bại",
    "bounced": "bị trả lại",
}
