"""The `mailbot` command line: argument parsing and dispatch to the command modules."""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from mailbot.cli_vi import VietnameseArgumentParser, os_error_vi
from mailbot.config import Config, ConfigError, load_config
from mailbot.errors import OperatorError

# Each module defines register(subparsers) and sets `func` (and `needs_config`) on its parser.
COMMAND_MODULES: tuple[str, ...] = (
    "mailbot.commands.parse",
    "mailbot.commands.intake",
    "mailbot.commands.units",
    "mailbot.commands.demo",
    "mailbot.commands.campaign",
    "mailbot.commands.check",
    "mailbot.commands.backup",
    "mailbot.commands.outbox",
)


def build_parser() -> argparse.ArgumentParser:
    parser = VietnameseArgumentParser(
        prog="mailbot", description="Robot tiếp nhận biểu đăng ký qua email."
    )
    parser.add_argument(
        "--config",
        metavar="TỆP",
        help="tệp cấu hình (mặc định $MAILBOT_CONFIG, ./mailbot.toml, /etc/mailbot/mailbot.toml)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="ghi log chi tiết")
    sub = parser.add_subparsers(
        dest="command", metavar="<lệnh>", parser_class=VietnameseArgumentParser
    )
    sub.required = True
    # Commands that also work on every mailbox at once set many_mailboxes (status, export).
    parser.set_defaults(many_mailboxes=False)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    _add_mailbox_option(parser)
    return parser


def _add_mailbox_option(parser: argparse.ArgumentParser) -> None:
    """--mailbox NAME on every command that works on one mailbox's data or servers."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                _add_mailbox_option(child)
    takes = parser.get_default("takes_mailbox")
    if parser.get_default("func") is None or takes is False:
        return
    if takes is None and parser.get_default("needs_config") is False:
        return
    parser.add_argument(
        "--mailbox",
        metavar="TÊN",
        # SUPPRESS: a subcommand's parser must not reset a value given to its parent.
        default=argparse.SUPPRESS,
        help="hộp thư (mục [[mailbox]] của tệp cấu hình) mà lệnh làm việc; bắt buộc khi "
        "cấu hình có nhiều hộp thư",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # The daemon logs one line per event (journald adds the time); commands run by hand
    # stay quiet unless asked (-v) and show progress on the terminal instead.
    daemon = args.command == "run"
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO if daemon else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    config = None
    if getattr(args, "needs_config", True):
        try:
            config = load_config(args.config)
        except ConfigError as exc:
            print(f"mailbot: cấu hình lỗi: {exc}", file=sys.stderr)
            return 2
    return _guarded(args, config)


def _guarded(args: argparse.Namespace, config: object) -> int:
    """The one error boundary: known failures become a Vietnamese message and an exit status."""
    try:
        if isinstance(config, Config) and not (
            args.many_mailboxes and getattr(args, "mailbox", None) is None
        ):
            config = config.one_mailbox(getattr(args, "mailbox", None))
        return int(args.func(args, config) or 0)
    except BrokenPipeError:
        # The reader (`| head`) went away: nothing left to say, and no noise at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        said = _failure_said(exc)
        if said is None:
            raise
        message, code = said
        print(f"mailbot: {message}", file=sys.stderr)
        return code


def _failure_said(exc: Exception) -> tuple[str, int] | None:
    """A known failure's message and exit status; None for a bug (raised as it is).

    The exception classes are imported only here, once something failed: the daemon's
    workers start before the modules defining them are loaded.
    """
    from mailbot.lock import AlreadyRunning
    from mailbot.sources import SourceError
    from mailbot.units import UnitsFileError
    from rules.campaign import CampaignError

    if isinstance(exc, ConfigError):
        return f"cấu hình lỗi: {exc}", 2
    if isinstance(exc, (AlreadyRunning, OperatorError)):
        return str(exc), 1
    if isinstance(exc, SourceError):
        return f"không kết nối được hộp thư: {exc}", 1
    if isinstance(exc, UnitsFileError):
        return f"tệp danh sách đơn vị có lỗi: {exc}", 1
    if isinstance(exc, CampaignError):
        return f"tệp đợt thi đua có lỗi: {exc}", 2
    if isinstance(exc, OSError):
        logging.getLogger(__name__).debug("OS error: %s", exc)
        where = f" ({exc.filename})" if exc.filename else ""
        return f"lỗi đọc/ghi tệp{where}: {os_error_vi(exc)}", 1
    return None


def entry() -> None:
    """The `mailbot` program: run the command, then end the process without the collector's
    passes over every object it built."""
    code = main()
    # The command has closed and committed all it opened. What is left is the interpreter's
    # teardown, whose garbage collections over the pass's objects (SQLAlchemy, the mail of
    # a pass) took a quarter of a second; frozen objects are left to the OS instead. The
    # atexit handlers, thread joins and stream flushing still run as usual.
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    entry()
