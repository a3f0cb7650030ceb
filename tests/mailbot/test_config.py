"""Where the configuration is found, where data goes by default, and a Maildir that is not there."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.cli import main
from mailbot.config import (
    Config,
    ConfigError,
    InboxConfig,
    default_data_dir,
    load_config,
    since_instant,
)


def test_missing_config_lists_every_place_looked(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["status"]) == 2
    err = capsys.readouterr().err
    for place in ("--config", "$MAILBOT_CONFIG", str(tmp_path / "mailbot.toml"), "/etc/mailbot"):
        assert place in err
    assert "mailbot.example.toml" in err and "No such file" not in err


def test_explicit_config_is_never_swapped_for_another(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mailbot.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(tmp_path / "nope.toml")
    monkeypatch.setenv("MAILBOT_CONFIG", str(tmp_path / "gone.toml"))
    with pytest.raises(ConfigError, match=r"gone\.toml \(\$MAILBOT_CONFIG\): không có"):
        load_config()


def test_data_dir_defaults(tmp_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_data_dir(Path("/etc/mailbot")) == Path("/var/lib/mailbot")
    assert default_data_dir(tmp_path / "conf") == tmp_path / "var"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/mailbot:/var/lib/other")
    assert default_data_dir(tmp_path) == Path("/var/lib/mailbot")


def test_loaded_config_fixes_the_data_dir_in_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "mailbot.toml").write_text('timezone = "Asia/Ho_Chi_Minh"\n', encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    config = load_config(conf / "mailbot.toml")
    monkeypatch.chdir(tmp_path)
    assert config.data_dir == work / "var"


def test_maildir_inbox_must_exist(tmp_path):
    config = Config(base_dir=str(tmp_path), inbox=InboxConfig(url="maildir:inbox"))
    with pytest.raises(ConfigError, match="không tồn tại"):
        config.maildir_path()
    (tmp_path / "inbox").mkdir()
    assert config.maildir_path() == tmp_path / "inbox"
    assert Config(inbox=InboxConfig(url="imap://u@h/INBOX")).maildir_path() is None


def test_poll_on_a_missing_maildir_is_a_config_error(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{tmp_path / "nonexistent" / "inbox"}"\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    assert "Maildir" in capsys.readouterr().err
    assert not (tmp_path / "nonexistent").exists()


def test_password_file_from_the_credentials_directory(tmp_path, monkeypatch):
    from mailbot.config import Secret

    secret = Secret(file="${CREDENTIALS_DIRECTORY}/imap-password")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(ConfigError, match="CREDENTIALS_DIRECTORY"):
        secret.resolve()
    (tmp_path / "imap-password").write_text("Mật khẩu\n", encoding="utf-8")
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(tmp_path))
    assert secret.resolve() == "Mật khẩu"


@pytest.mark.parametrize(
    ("written", "expected_utc"),
    [
        ("2022-02-01", "2022-01-31T17:00:00+00:00"),  # a date: midnight in Hanoi
        ('"2022-02-01"', "2022-01-31T17:00:00+00:00"),
        ("2022-02-01T08:00:00", "2022-02-01T01:00:00+00:00"),  # local time
        ("2022-02-01T08:00:00Z", "2022-02-01T08:00:00+00:00"),
    ],
)
def test_process_since_is_a_date_in_the_configured_timezone(tmp_path, written, expected_utc):
    path = tmp_path / "mailbot.toml"
    path.write_text(f"[inbox]\nprocess_since = {written}\n", encoding="utf-8")
    config = load_config(path)
    since = since_instant(config.inbox.process_since, config.timezone)
    assert since is not None and since.isoformat() == expected_utc
    assert config.inbox.max_reply_age_days == 14


def test_defaults_leave_old_mail_alone():
    inbox = InboxConfig()
    assert inbox.process_since is None
    assert since_instant(inbox.process_since, "Asia/Ho_Chi_Minh") is None


@pytest.mark.parametrize("written", ['"hôm qua"', "7", '"2022-13-01"'])
def test_process_since_that_is_no_date_is_refused_in_vietnamese(tmp_path, written):
    path = tmp_path / "mailbot.toml"
    path.write_text(f"[inbox]\nprocess_since = {written}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="phải là một ngày"):
        load_config(path)
