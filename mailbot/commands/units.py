"""`mailbot units import FILE` and `mailbot units list`: the register of units."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailbot.config import Config


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("units", help="danh sách đơn vị: nhập từ CSV/XLSX, xem")
    units_sub = p.add_subparsers(dest="units_command", metavar="<lệnh>")
    units_sub.required = True
    imp = units_sub.add_parser("import", help="nhập (cập nhật theo mã) từ tệp CSV hoặc XLSX")
    imp.add_argument("file", type=Path)
    imp.add_argument(
        "--move-addresses",
        action="store_true",
        help=(
            "cho phép chuyển một địa chỉ thư đang thuộc đơn vị khác sang đơn vị mà tệp ghi "
            "(mặc định: báo lỗi và không nhập gì)"
        ),
    )
    imp.set_defaults(func=import_command)
    ls = units_sub.add_parser("list", help="in danh sách đơn vị và địa chỉ thư")
    ls.set_defaults(func=list_command)


def import_command(args: argparse.Namespace, config: Config) -> int:
    from mailbot.app import import_register, open_app  # the database only when run

    if not args.file.is_file():
        print(f"mailbot: không tìm thấy tệp {args.file}", file=sys.stderr)
        return 2
    with open_app(config, exclusive=True) as app:
        report = import_register(app.database, args.file, move_addresses=args.move_addresses)
    for move in report.moved:
        print(f"mailbot: {move.moved_text()}")
    print(f"mailbot: đã nhập {report.count} đơn vị từ {args.file.name}")
    return 0


def list_command(args: argparse.Namespace, config: Config) -> int:
    from mailbot import db as dbm
    from mailbot.app import open_app

    with open_app(config, exclusive=False) as app, app.database.session(write=False) as s:
        rows = dbm.unit_register(s)
    for r in rows:
        forms = ";".join(r.forms) or "theo đợt thi đua"
        print(f"{r.code}\t{r.name}\t{'; '.join(r.emails)}\tbiểu mẫu: {forms}")
    print(f"({len(rows)} đơn vị)")
    return 0
