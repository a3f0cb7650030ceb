"""The start of `mailbot poll --once`: the IMAP login overlaps the database's opening."""

from __future__ import annotations

from pathlib import Path

import pytest

import mailbot.commands.intake as intake_cmd
from mailbot.app import App
from mailbot.cli import main
from mailbot.lock import DataDirLock
from mailbot.sources.imap import ImapSource
from tests.mailbot.e2e_support import PW_ENV, append_all, simple_mail, write_config
from tests.support.dovecot import Account, DovecotServer

pytestmark = pytest.mark.dovecot


@pytest.fixture
def account(dovecot: DovecotServer) -> Account:
    return dovecot.add_user()


def _watch_early(monkeypatch: pytest.MonkeyPatch) -> list[intake_cmd.EarlyMailbox | None]:
    started: list[intake_cmd.EarlyMailbox | None] = []
    real = intake_cmd.EarlyMailbox.start

    def start(config):  # noqa: ANN001, ANN202
        early = real(config)
        started.append(early)
        return early

    monkeypatch.setattr(intake_cmd.EarlyMailbox, "start", start)
    return started


def test_the_pass_gets_a_mailbox_logged_in_while_the_database_opened(
    tmp_path: Path, dovecot, account, smtp_server, monkeypatch, capsys
) -> None:  # noqa: ANN001
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    append_all(dovecot, account, [simple_mail("early@example.org", "<early-1@example.org>")])
    started = _watch_early(monkeypatch)
    seen: list[bool] = []
    real_poll_once = intake_cmd.poll_once

    def poll_once(app: App) -> int:
        early = started[0]
        assert early is not None and app.source is early.source
        seen.append(app.source._conn is not None)  # type: ignore[attr-defined]
        return real_poll_once(app)

    monkeypatch.setattr(intake_cmd, "poll_once", poll_once)
    assert main(["--config", str(cfg), "poll", "--once"]) == 0
    assert seen == [True]
    assert "mailbot: nhận 1 thư, xử lý 1 (lỗi 0)" in capsys.readouterr().out


def test_a_missing_password_is_said_before_any_server_is_contacted(
    tmp_path: Path, dovecot, account, smtp_server, monkeypatch, capsys
) -> None:  # noqa: ANN001
    monkeypatch.delenv(PW_ENV, raising=False)
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    started = _watch_early(monkeypatch)
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    assert started == [None]
    assert f"biến môi trường {PW_ENV} (mật khẩu) chưa được đặt" in capsys.readouterr().err


def test_a_pass_that_cannot_start_logs_the_early_connection_out(
    tmp_path: Path, dovecot, account, smtp_server, monkeypatch, capsys
) -> None:  # noqa: ANN001
    monkeypatch.setenv(PW_ENV, account.password)
    cfg = write_config(tmp_path, dovecot, account, smtp_server)
    started = _watch_early(monkeypatch)
    closed: list[bool] = []  # whether it was logged in when closed
    real_close = ImapSource.close

    def close(self: ImapSource) -> None:
        closed.append(self._conn is not None)
        real_close(self)

    monkeypatch.setattr(ImapSource, "close", close)
    (tmp_path / "data").mkdir()
    lock = DataDirLock(tmp_path / "data")
    lock.acquire()  # another mailbot holds the data directory
    try:
        assert main(["--config", str(cfg), "poll", "--once"]) == 1
    finally:
        lock.release()
    early = started[0]
    assert early is not None
    assert closed == [True]  # it had logged in while the lock was tried
    assert early.source._conn is None  # type: ignore[attr-defined]  # logged out, closed
    assert "Traceback" not in capsys.readouterr().err


def test_a_maildir_inbox_is_opened_by_the_pass_as_before(tmp_path: Path) -> None:
    from mailbot.config import load_config

    (tmp_path / "inbox" / "new").mkdir(parents=True)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text('[inbox]\nurl = "maildir:inbox"\n', encoding="utf-8")
    assert intake_cmd.EarlyMailbox.start(load_config(str(cfg))) is None
