"""`mailbot parse [--json] FILE...`: read attachments offline and report what they hold."""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

# The parsers and rules load when a file is read: `mailbot --help` stays fast.
if TYPE_CHECKING:
    from parsers.model import ParseResult
    from rules.campaign import Campaign

KIND_NAMES = {"collective": "I. Tập thể", "individual": "II. Cá nhân"}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("parse", help="đọc biểu đăng ký trong các tệp (không cần cấu hình)")
    p.add_argument("--json", action="store_true", help="in JSON Lines theo lược đồ hợp đồng")
    p.add_argument("--campaign", metavar="FILE", help="tệp đợt thi đua (TOML) để đối chiếu")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(func=run, needs_config=False)


def read_attachment(data: bytes, filename: str, campaign: Campaign | None) -> ParseResult:
    """Parse one attachment and judge it with every rule: what `parse` and the intake share."""
    from parsers import parse_file
    from parsers.convert import soffice_converter
    from rules import judge

    return judge(parse_file(data, filename, office=soffice_converter()), campaign)


def run(args: argparse.Namespace, config: object = None) -> int:
    from rules.campaign import CampaignError, load_campaign, newest_campaign

    paths = [Path(f) for f in args.files]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        print(f"mailbot parse: không tìm thấy tệp: {', '.join(missing)}", file=sys.stderr)
        return 2
    folders = [str(p) for p in paths if not p.is_file()]
    if folders:
        print(f"mailbot parse: không phải tệp: {', '.join(folders)}", file=sys.stderr)
        return 2
    try:
        campaign = load_campaign(args.campaign) if args.campaign else newest_campaign()
    except CampaignError as exc:
        print(f"mailbot parse: không đọc được tệp đợt thi đua: {exc}", file=sys.stderr)
        return 2
    status = 0
    for path in paths:
        name = unicodedata.normalize("NFC", path.name)
        result = read_attachment(path.read_bytes(), name, campaign)
        if result.has_errors:
            status = 1
        if args.json:
            sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False) + "\n")
        else:
            write_summary(result, sys.stdout)
        sys.stdout.flush()
    return status


def write_summary(result: ParseResult, out: TextIO) -> None:
    """A readable Vietnamese account of one file: forms, models by section and field, problems."""
    from rules.base import FIELD_NAMES, FORM_NAMES

    out.write(f"Tệp: {result.file} ({result.format})\n")
    if not result.forms:
        out.write("  Không có biểu đăng ký nào được ghi nhận.\n")
    for form in result.forms:
        out.write(f"  {FORM_NAMES[form.form]} – vị trí: {form.location}\n")
        out.write(f"    Đơn vị: {form.unit or '(chưa ghi)'}\n")
        out.write(f"    Năm: {form.year or '(không rõ)'}; ngày lập: {form.date or '(chưa ghi)'}\n")
        for kind, label in KIND_NAMES.items():
            rows = [e for e in form.entries if e.kind == kind]
            if not rows:
                continue
            out.write(f"    {label}: {len(rows)} mô hình\n")
            for e in rows:
                who = e.name or "(chưa ghi tên)"
                no = f"{e.no}. " if e.no else ""
                out.write(f"      {no}{who} – {FIELD_NAMES[e.field]}: {e.model}  [{e.location}]\n")
        if not form.entries:
            out.write("    (không có mô hình nào)\n")
    problems = result.all_problems()
    if problems:
        out.write("  Vấn đề cần xử lý:\n")
        for p in problems:
            level = "Lỗi" if p.severity == "error" else "Lưu ý"
            where = f" [{p.location}]" if p.location else ""
            out.write(f"    - {level}{where}: {p.message}\n")
    else:
        out.write("  Không phát hiện lỗi.\n")
    out.write("\n")
