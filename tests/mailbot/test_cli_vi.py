"""Everything a person reads from the command line is Vietnamese, argparse's own words included."""

from __future__ import annotations

import errno
import re
import subprocess
import sys

from mailbot.cli_vi import os_error_vi, translate_argparse

ENGLISH = re.compile(
    r"usage:|positional arguments|options:|show this help|the following arguments|"
    r"unrecognized arguments|invalid choice|expected one argument|error:|argument "
)


def _mailbot(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_help_and_usage_errors_have_no_english_argparse_words():
    help_ = _mailbot("--help")
    assert help_.returncode == 0 and "Cách dùng:" in help_.stdout and "tùy chọn" in help_.stdout
    assert not ENGLISH.search(help_.stdout)
    sub_help = _mailbot("backup", "--help")
    assert sub_help.returncode == 0 and not ENGLISH.search(sub_help.stdout)
    missing = _mailbot("backup")
    assert missing.returncode == 2 and "thiếu tham số bắt buộc: --out" in missing.stderr
    unknown = _mailbot("status", "--bogus")
    assert unknown.returncode == 2 and "tham số không nhận ra: --bogus" in unknown.stderr
    wrong = _mailbot("nosuchcommand")
    assert wrong.returncode == 2 and "lựa chọn không hợp lệ" in wrong.stderr
    for proc in (missing, unknown, wrong):
        assert not ENGLISH.search(proc.stderr), proc.stderr


def test_argparse_messages_translated():
    assert translate_argparse("argument --out: expected one argument") == (
        "tham số --out: cần đúng một giá trị"
    )
    assert translate_argparse("argument ID: invalid int value: 'x'") == (
        "tham số ID: giá trị không hợp lệ (int): 'x'"
    )


def test_os_errors_in_vietnamese():
    assert os_error_vi(FileNotFoundError(errno.ENOENT, "No such file")) == (
        "không có tệp hoặc thư mục này"
    )
    assert "quyền" in os_error_vi(PermissionError(errno.EACCES, "Permission denied"))
    assert "từ chối" in os_error_vi(ConnectionRefusedError(errno.ECONNREFUSED, "refused"))
    assert os_error_vi(TimeoutError("timed out")) == "hết thời gian chờ"
