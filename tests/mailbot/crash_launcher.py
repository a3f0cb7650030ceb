"""`mailbot poll --once` that SIGKILLs itself at the Nth commit of one stage (crash tests).

Run as `python -m tests.mailbot.crash_launcher --config CFG --kill-at STAGE:N`; the stages
are the robot's `on_stage` names: after-record, after-process, after-send.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Sequence

from mailbot.app import open_app
from mailbot.commands.intake import poll_once
from mailbot.config import load_config


def kill_at(stage: str, nth: int) -> Callable[[str], None]:
    """A stage hook that kills the process (as kill -9 would) at the Nth call for `stage`."""
    seen = 0

    def hook(name: str) -> None:
        nonlocal seen
        if name != stage:
            return
        seen += 1
        if seen >= nth:
            os.kill(os.getpid(), signal.SIGKILL)

    return hook


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="crash_launcher")
    parser.add_argument("--config", required=True)
    parser.add_argument("--kill-at", required=True, metavar="STAGE:N")
    args = parser.parse_args(argv)
    stage, nth = args.kill_at.rsplit(":", 1)
    with open_app(load_config(args.config), exclusive=True) as app:
        app.on_stage = kill_at(stage, int(nth))
        return poll_once(app)


if __name__ == "__main__":
    sys.exit(main())
