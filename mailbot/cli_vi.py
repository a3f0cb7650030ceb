"""Vietnamese for what a person reads from the command line: argparse's own words, OS errors."""

from __future__ import annotations

import argparse
import errno
import re
import sys
from collections.abc import Iterable
from typing import Any, NoReturn

# argparse's own messages (Python 3.11 wording) and what a person reads instead. The
# parser's messages arrive already formatted, so each template is matched as a pattern.
_MESSAGES: tuple[tuple[str, str], ...] = (
    (r"the following arguments are required: (?P<a>.+)", "thiếu tham số bắt buộc: {a}"),
    (r"unrecognized arguments: (?P<a>.+)", "tham số không nhận ra: {a}"),
    (
        r"invalid choice: (?P<a>.+) \(choose from (?P<b>.+)\)",
        "lựa chọn không hợp lệ: {a} (chọn một trong: {b})",
    ),
    (r"invalid (?P<a>\S+) value: (?P<b>.+)", "giá trị không hợp lệ ({a}): {b}"),
    (r"expected one argument", "cần đúng một giá trị"),
    (r"expected at most one argument", "cần nhiều nhất một giá trị"),
    (r"expected at least one argument", "cần ít nhất một giá trị"),
    (r"expected (?P<a>\d+) arguments?", "cần {a} giá trị"),
    (
        r"ambiguous option: (?P<a>\S+) could match (?P<b>.+)",
        "tùy chọn {a} chưa rõ, có thể là: {b}",
    ),
    (r"not allowed with argument (?P<a>.+)", "không dùng cùng với {a}"),
    (r"one of the arguments (?P<a>.+) is required", "cần một trong các tham số: {a}"),
    (r"ignored explicit argument (?P<a>.+)", "tham số không nhận giá trị: {a}"),
    (r"unexpected option string: (?P<a>.+)", "tùy chọn không mong đợi: {a}"),
    (r"can't open '(?P<a>.+)': (?P<b>.+)", "không mở được {a}: {b}"),
)
_ARGUMENT = re.compile(r"argument (?P<name>\S+): (?P<rest>.+)", re.S)


def translate_argparse(message: str) -> str:
    """One of argparse's English error messages in Vietnamese (unknown ones pass through)."""
    prefix = ""
    m = _ARGUMENT.fullmatch(message)
    if m:
        prefix, message = f"tham số {m['name']}: ", m["rest"]
    for pattern, vi in _MESSAGES:
        hit = re.fullmatch(pattern, message, flags=re.S)
        if hit:
            return prefix + vi.format(**hit.groupdict())
    return prefix + message


class VietnameseHelpFormatter(argparse.HelpFormatter):
    """argparse's help layout with Vietnamese headings."""

    def add_usage(
        self,
        usage: str | None,
        actions: Iterable[argparse.Action],
        groups: Iterable[argparse._MutuallyExclusiveGroup],
        prefix: str | None = None,
    ) -> None:
        super().add_usage(usage, actions, groups, "Cách dùng: " if prefix is None else prefix)


class VietnameseArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser that speaks Vietnamese; usage errors exit with status 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        add_help = kwargs.get("add_help", True)
        kwargs["add_help"] = False
        kwargs.setdefault("formatter_class", VietnameseHelpFormatter)
        super().__init__(*args, **kwargs)
        self._positionals.title = "tham số"
        self._optionals.title = "tùy chọn"
        if add_help:
            self.add_argument(
                "-h", "--help", action="help", default=argparse.SUPPRESS, help="xem hướng dẫn này"
            )

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: lỗi: {translate_argparse(message)}\n")


_ERRNO_VI: dict[int, str] = {
    errno.ENOENT: "không có tệp hoặc thư mục này",
    errno.EACCES: "không có quyền truy cập",
    errno.EPERM: "không được phép",
    errno.EROFS: "hệ thống tệp chỉ cho đọc",
    errno.ENOSPC: "hết chỗ trống trên đĩa",
    errno.EDQUOT: "vượt hạn mức dung lượng đĩa",
    errno.EISDIR: "đây là một thư mục, không phải tệp",
    errno.ENOTDIR: "một phần của đường dẫn không phải thư mục",
    errno.EEXIST: "đã tồn tại",
    errno.ENOTEMPTY: "thư mục không trống",
    errno.EIO: "lỗi đọc/ghi thiết bị",
    errno.EMFILE: "mở quá nhiều tệp",
    errno.ENAMETOOLONG: "tên tệp quá dài",
    errno.ECONNREFUSED: "máy chủ từ chối kết nối (sai cổng, hoặc dịch vụ chưa chạy)",
    errno.ECONNRESET: "máy chủ ngắt kết nối",
    errno.ETIMEDOUT: "hết thời gian chờ",
    errno.EHOSTUNREACH: "không tới được máy chủ",
    errno.ENETUNREACH: "không tới được mạng của máy chủ",
    errno.EPIPE: "kết nối đã đóng",
    errno.EADDRNOTAVAIL: "địa chỉ không dùng được",
}


def os_error_vi(exc: BaseException) -> str:
    """A Vietnamese sentence for an OS-level error (the English text belongs in logs only)."""
    import ssl

    if isinstance(exc, ssl.SSLCertVerificationError):
        return "chứng chỉ TLS của máy chủ không hợp lệ"
    if isinstance(exc, ssl.SSLError):
        return "lỗi TLS khi kết nối máy chủ"
    if isinstance(exc, TimeoutError) and exc.errno is None:
        return "hết thời gian chờ"
    if isinstance(exc, OSError) and exc.errno is None and "Name or service" in str(exc):
        return "không tìm thấy tên máy chủ"
    number = getattr(exc, "errno", None)
    if isinstance(number, int):
        if number in _ERRNO_VI:
            return _ERRNO_VI[number]
        if number < 0:  # socket.gaierror: name resolution failed
            return "không tìm thấy tên máy chủ"
        return f"lỗi hệ thống (mã {errno.errorcode.get(number, number)})"
    return "lỗi hệ thống"
