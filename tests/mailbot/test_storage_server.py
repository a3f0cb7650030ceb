"""`[storage] database_url`: the configuration, the commands and the errors on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.cli import main
from mailbot.config import ConfigError, load_config
from mailbot.db import ServerUnusable, open_configured, unit_register
from mailbot.lock import MailboxLock, mailbox_key
from tests.support.postgres import PASSWORD, PASSWORD_ENV

UNITS = Path(__file__).resolve().parents[2] / "data" / "units.csv"


def _config(tmp_path: Path, url: str, extra: str = f'password_env = "{PASSWORD_ENV}"\n') -> Path:
    inbox = tmp_path / "inbox"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[inbox]\nurl = "maildir:{inbox}"\n[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\ndatabase_url = "{url}"\n{extra}',
        encoding="utf-8",
    )
    return cfg


def test_the_url_and_its_password_come_from_the_config(tmp_path, pg_url):
    config = load_config(_config(tmp_path, pg_url))
    assert config.storage.database_url == pg_url
    assert config.storage.password.env == PASSWORD_ENV
    database = open_configured(config)
    try:
        assert not database.is_sqlite and database.path is None
        assert database.where() == pg_url  # as written: no driver, no password
        with database.session(write=False) as s:
            assert unit_register(s) == []
    finally:
        database.dispose()
    assert not (tmp_path / "data" / "mailbot.sqlite3").exists()


def test_a_password_in_the_file_or_the_url_is_refused(tmp_path, pg_url):
    with pytest.raises(ConfigError, match="password_env"):
        load_config(_config(tmp_path, pg_url, 'password = "x"\n'))
    with_password = pg_url.replace("mailbot@", "mailbot:lo@")
    with pytest.raises(ServerUnusable, match="không ghi mật khẩu trong địa chỉ"):
        open_configured(load_config(_config(tmp_path, with_password)))
    with pytest.raises(ServerUnusable, match="chỉ dùng được PostgreSQL"):
        open_configured(load_config(_config(tmp_path, "mysql://u@127.0.0.1/db")))


def test_check_backup_and_a_wrong_password_on_postgresql(tmp_path, pg_url, monkeypatch, capsys):
    cfg = _config(tmp_path, pg_url)
    assert main(["--config", str(cfg), "check"]) == 0
    out = capsys.readouterr().out
    assert "[OK] Cơ sở dữ liệu: PostgreSQL" in out and "lược đồ mới nhất" in out
    assert PASSWORD not in out

    assert main(["--config", str(cfg), "backup", "--out", str(tmp_path / "b.sqlite3")]) == 2
    err = capsys.readouterr().err
    assert "pg_dump" in err and not (tmp_path / "b.sqlite3").exists()

    monkeypatch.setenv(PASSWORD_ENV, "sai mật khẩu")
    assert main(["--config", str(cfg), "check"]) == 1
    out = capsys.readouterr().out
    assert "[LỖI] Cơ sở dữ liệu: không kết nối được cơ sở dữ liệu PostgreSQL" in out
    assert f"{pg_url} (sai tên người dùng hoặc mật khẩu)" in out
    assert "sai mật khẩu" not in out and PASSWORD not in out
    assert main(["--config", str(cfg), "units", "list"]) == 1
    err = capsys.readouterr().err
    assert "không kết nối được" in err and "Traceback" not in err and "sai mật khẩu" not in err


def test_a_command_needing_the_mailbox_is_refused_while_a_daemon_holds_it(tmp_path, pg_url, capsys):
    cfg = _config(tmp_path, pg_url)
    config = load_config(cfg)
    database = open_configured(config)
    lock = MailboxLock(database.engine, mailbox_key(config))
    try:
        assert lock.acquire()
        assert main(["--config", str(cfg), "units", "import", str(UNITS)]) == 1
        err = capsys.readouterr().err
        assert "đang được một mailbot khác xử lý" in err
        lock.release()
        assert main(["--config", str(cfg), "units", "import", str(UNITS)]) == 0
        with database.session(write=False) as s:
            assert unit_register(s)
    finally:
        lock.release()
        database.dispose()


def test_each_mailbox_has_its_own_schema_in_one_database(tmp_path, pg_url, capsys):
    """A city on one PostgreSQL: each district's register, mail and outbox in its own schema."""
    cfg = _config(tmp_path, pg_url)
    text = cfg.read_text(encoding="utf-8")
    for name in ("thanh-xuan", "ba-dinh"):
        inbox = tmp_path / f"inbox-{name}"
        for sub in ("cur", "new", "tmp"):
            (inbox / sub).mkdir(parents=True)
        text += f'\n[[mailbox]]\nname = "{name}"\n[mailbox.inbox]\nurl = "maildir:{inbox}"\n'
    cfg.write_text(text, encoding="utf-8")
    args = ["--config", str(cfg), "units", "import", str(UNITS), "--mailbox", "thanh-xuan"]
    assert main(args) == 0
    config = load_config(cfg)
    tx = open_configured(config.for_mailbox("thanh-xuan"))
    bd = open_configured(config.for_mailbox("ba-dinh"))
    try:
        with tx.session(write=False) as s:
            assert len(unit_register(s)) > 10
        with bd.session(write=False) as s:
            assert unit_register(s) == []  # Ba Đình sees none of Thanh Xuân's units
        with tx.engine.connect() as conn:
            schemas = set(
                conn.exec_driver_sql(
                    "SELECT table_schema FROM information_schema.tables WHERE table_name = 'units'"
                ).scalars()
            )
        assert {"thanh_xuan", "ba_dinh"} <= schemas
    finally:
        tx.dispose()
        bd.dispose()
