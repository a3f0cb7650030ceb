"""`mailbot check` against good and broken setups: real Dovecot, real aiosmtpd, SQLite on disk."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime

import pytest

from mailbot.cli import main
from mailbot.db import DB_FILE_NAME, open_database
from tests.support.dovecot import Account, DovecotServer
from tests.support.smtpd import start_smtpd

PW_ENV = "MAILBOT_TEST_CHECK_PASSWORD"
SMTP_PW_ENV = "MAILBOT_TEST_CHECK_SMTP_PASSWORD"


@pytest.fixture
def smtp_auth():  # noqa: ANN201
    server = start_smtpd(users={"robot": "smtp-pass"})
    yield server
    server.stop()


def _config(tmp_path, dovecot: DovecotServer, account: Account, smtp, **over):  # noqa: ANN001, ANN003
    folder = over.get("folder", "INBOX")
    data_dir = over.get("data_dir", tmp_path / "data")
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'units_file = "{over.get("units_file", "")}"\n'
        * ("units_file" in over)
        + f'[inbox]\nurl = "{dovecot.url(account, folder)}"\npassword_env = "{PW_ENV}"\n'
        "timeout_seconds = 10\n"
        f'[outgoing]\nurl = "{smtp.url()}"\nusername = "robot"\n'
        f'password_env = "{SMTP_PW_ENV}"\ntimeout_seconds = 10\n'
        f'[storage]\ndata_dir = "{data_dir}"\n'
        '[security]\ntrusted_authserv_id = "mx.test"\n',
        encoding="utf-8",
    )
    return path


def _check(capsys, cfg) -> tuple[int, list[str]]:  # noqa: ANN001
    code = main(["--config", str(cfg), "check"])
    return code, capsys.readouterr().out.splitlines()


def _line(lines: list[str], level: str, *words: str) -> bool:
    return any(ln.startswith(f"[{level}]") and all(w in ln for w in words) for ln in lines)


@pytest.mark.dovecot
def test_good_setup_passes(tmp_path, dovecot, smtp_auth, monkeypatch, capsys):
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, account.password)
    monkeypatch.setenv(SMTP_PW_ENV, "smtp-pass")
    cfg = _config(tmp_path, dovecot, account, smtp_auth)
    code, lines = _check(capsys, cfg)
    assert code == 0, lines
    assert _line(lines, "OK", "Hộp thư đến", "đăng nhập")
    assert _line(lines, "OK", "thư mục 'INBOX'")
    assert _line(lines, "OK", "IDLE")
    assert _line(lines, "OK", "Máy chủ gửi thư", "không gửi thư nào")
    assert _line(lines, "OK", "Cơ sở dữ liệu", "sẽ được tạo")
    assert _line(lines, "CẢNH BÁO", "Danh sách đơn vị", "units import")
    assert _line(lines, "OK", "Xác thực người gửi", "mx.test")
    assert smtp_auth.messages == []
    assert not (tmp_path / "data").exists()  # check changes nothing


@pytest.mark.dovecot
def test_wrong_passwords_and_missing_folder(tmp_path, dovecot, smtp_auth, monkeypatch, capsys):
    account = dovecot.add_user()
    monkeypatch.setenv(PW_ENV, "not-the-password")
    monkeypatch.setenv(SMTP_PW_ENV, "wrong")
    code, lines = _check(capsys, _config(tmp_path, dovecot, account, smtp_auth))
    assert code == 1
    assert _line(lines, "LỖI", "Hộp thư đến", "bị từ chối", "mật khẩu")
    assert _line(lines, "LỖI", "Máy chủ gửi thư", "bị từ chối")
    assert lines[-1].startswith("Kết quả: 2 lỗi")
    monkeypatch.setenv(PW_ENV, account.password)
    monkeypatch.setenv(SMTP_PW_ENV, "smtp-pass")
    code, lines = _check(capsys, _config(tmp_path, dovecot, account, smtp_auth, folder="Nope"))
    assert code == 1 and _line(lines, "LỖI", "không có thư mục 'Nope'")


def test_unwritable_data_dir_and_missing_config(tmp_path, monkeypatch, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the data directory should be\n", encoding="utf-8")
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{inbox}"\n[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{blocker / "data"}"\n',
        encoding="utf-8",
    )
    code, lines = _check(capsys, cfg)
    assert code == 1 and _line(lines, "LỖI", "Thư mục dữ liệu", "không ghi được")
    assert _line(lines, "CẢNH BÁO", "trusted_authserv_id", "không kiểm chứng được")
    code, lines = _check(capsys, tmp_path / "none.toml")
    assert code == 1 and _line(lines, "LỖI", "Cấu hình", "none.toml", "mailbot.example.toml")


def test_missing_maildir_and_newer_schema(tmp_path, capsys):
    data = tmp_path / "data"
    open_database(data).dispose()
    with sqlite3.connect(data / DB_FILE_NAME) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    conn.close()
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{tmp_path / "nonexistent"}"\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n[storage]\ndata_dir = "{data}"\n',
        encoding="utf-8",
    )
    code, lines = _check(capsys, cfg)
    assert code == 1
    assert _line(lines, "LỖI", "Hộp thư đến", "không tồn tại")
    assert _line(lines, "LỖI", "Cơ sở dữ liệu", "9999_future", "mới hơn")
    # The daemon and every command refuse it too, with the same message and no traceback.
    assert main(["--config", str(cfg), "units", "list"]) == 1
    err = capsys.readouterr().err
    assert "9999_future" in err and "Traceback" not in err


def test_past_campaign_and_empty_register_warn(tmp_path, capsys):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = tmp_path / "mailbot.toml"
    body = (
        f'[inbox]\nurl = "maildir:{inbox}"\n[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
    )
    cfg.write_text(body, encoding="utf-8")
    code, lines = _check(capsys, cfg)
    assert code == 0  # usable, but the operator is told
    assert _line(lines, "CẢNH BÁO", "Đợt thi đua", "năm 2022", "đã qua từ lâu", "campaign new")
    assert _line(lines, "CẢNH BÁO", "Danh sách đơn vị", "trống", "units import")
    # This year's file, made and set as the command says: no warning about the campaign.
    year = datetime.now(UTC).year
    assert main(["--config", str(cfg), "campaign", "new", str(year + 1)]) == 0
    capsys.readouterr()
    cfg.write_text(f'campaign = "dan-van-kheo-{year + 1}.toml"\n' + body, encoding="utf-8")
    code, lines = _check(capsys, cfg)
    assert code == 0 and _line(lines, "OK", "Đợt thi đua", f"năm {year + 1}")
    assert not _line(lines, "CẢNH BÁO", "Đợt thi đua")
