"""A pass's overlapping threads switch every millisecond, and the interpreter's own setting
comes back after it, even when the pass fails."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from mailbot.app import open_app
from mailbot.config import load_config
from mailbot.service import _SWITCH_SECONDS
from tests.mailbot.test_db_faults import _config
from tests.mailbot.test_scheduler import FORMS, drop, mail_with


def test_a_pass_switches_threads_every_millisecond_and_restores_the_setting(
    tmp_path: Path,
) -> None:
    name = sorted(p.name for p in FORMS.iterdir() if p.suffix == ".xlsx")[0]
    config = load_config(_config(tmp_path, tmp_path / "data"))
    seen: list[tuple[str, float]] = []
    before = sys.getswitchinterval()
    with open_app(config) as app:
        app.on_stage = lambda stage: seen.append((stage, sys.getswitchinterval()))
        robot = app.robot()
        drop(tmp_path / "inbox", mail_with("dangbo.khuongtrung@thanhxuan.example", name, n=1))
        assert robot.run_once().processed == 1
        # Deciding runs while the mailbox and delivery threads overlap it; the last
        # deliveries after them run at the interpreter's own setting.
        deciding = [interval for stage, interval in seen if stage == "after-process"]
        assert deciding == [_SWITCH_SECONDS]
        assert sys.getswitchinterval() == before

        failed: list[str] = []

        def fail(stage: str) -> None:
            failed.append(stage)
            raise RuntimeError("a stage failed")

        robot.on_stage = fail
        drop(tmp_path / "inbox", mail_with("hoiccb@thanhxuan.example", name, n=2))
        with contextlib.suppress(RuntimeError):
            robot.run_once()
        assert failed
        assert sys.getswitchinterval() == before
