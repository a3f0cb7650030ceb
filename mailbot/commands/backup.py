"""`mailbot backup --out FILE`: a consistent copy of the SQLite database, daemon running or not."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from pathlib import Path

from mailbot.config import Config

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("backup", help="sao lưu cơ sở dữ liệu (an toàn khi mailbot đang chạy)")
    p.add_argument("--out", required=True, type=Path, metavar="TỆP", help="tệp sao lưu sẽ tạo")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    import sqlite3

    from mailbot.db import DB_FILE_NAME

    source = config.data_dir / DB_FILE_NAME
    if config.storage.database_url:
        print(
            "mailbot: cơ sở dữ liệu nằm trên máy chủ PostgreSQL ([storage] database_url); hãy "
            "sao lưu bằng công cụ của PostgreSQL, ví dụ: pg_dump -Fc -f mailbot.dump "
            "TÊN_CƠ_SỞ_DỮ_LIỆU (khôi phục bằng pg_restore). Giữ cùng bản sao thư mục raw/ "
            "trong thư mục dữ liệu (thư gốc).",
            file=sys.stderr,
        )
        return 2
    if not source.is_file():
        print(f"mailbot: chưa có cơ sở dữ liệu {source}: không có gì để sao lưu", file=sys.stderr)
        return 1
    if args.out.exists():
        print(f"mailbot: {args.out} đã có; hãy chọn tên tệp khác", file=sys.stderr)
        return 2
    try:
        pages = backup_database(source, args.out)
    except sqlite3.Error as exc:
        log.error("backup of %s failed: %s", source, exc)
        print(
            f"mailbot: sao lưu không thành công ({source} hỏng hoặc bị khóa quá lâu)",
            file=sys.stderr,
        )
        return 1
    print(f"Đã sao lưu {source} vào {args.out} ({pages} trang).")
    print("Giữ cùng bản sao thư mục raw/ trong thư mục dữ liệu (thư gốc) nếu muốn khôi phục đủ.")
    return 0


def backup_database(source: Path, out: Path) -> int:
    """SQLite's online backup of `source` into a new file `out` (mode 0600); its page count.

    One step copies every page under one read transaction: in WAL mode that is a consistent
    snapshot and never blocks the daemon's writes. (Copying in several steps would restart
    each time the daemon writes in between, possibly for ever.)
    """
    import sqlite3

    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others
    os.close(fd)
    try:
        src_uri = f"{source.absolute().as_uri()}?mode=ro"
        with (
            contextlib.closing(sqlite3.connect(src_uri, uri=True, timeout=30)) as src,
            contextlib.closing(sqlite3.connect(out)) as dst,
        ):
            src.execute("PRAGMA busy_timeout = 30000")
            src.backup(dst, pages=-1)
            # A self-contained file: no -wal beside it to forget when it is copied away.
            dst.execute("PRAGMA journal_mode = DELETE")
            pages = int(dst.execute("PRAGMA page_count").fetchone()[0])
            ok = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if ok != "ok":
            raise sqlite3.DatabaseError(f"integrity_check of the copy: {ok}")
    except BaseException:
        with contextlib.suppress(OSError):
            out.unlink()
        raise
    log.info("backup of %s written to %s (%d pages)", source, out, pages)
    return pages
