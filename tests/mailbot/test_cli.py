"""The CLI's one error boundary: known failures are a Vietnamese line and an exit status."""

from __future__ import annotations

import argparse
import json
import mailbox
import subprocess
import sys
from pathlib import Path

import pytest

from mailbot.cli import build_parser, main


def _run(*argv: str, cwd=None, env=None) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    return subprocess.run(
        [sys.executable, "-m", "mailbot.cli", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_missing_config_is_a_message_not_a_traceback(tmp_path):
    proc = _run("--config", str(tmp_path / "nope.toml"), "status", cwd=tmp_path)
    assert proc.returncode == 2 and "cấu hình lỗi" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_literal_password_in_config_is_refused(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        '[inbox]\nurl = "imap://u@127.0.0.1/INBOX"\npassword = "hunter22"\n', encoding="utf-8"
    )
    assert main(["--config", str(cfg), "status"]) == 2
    err = capsys.readouterr().err
    assert "password_env" in err and "hunter22" not in err


def test_config_found_through_environment_then_working_directory(tmp_path, monkeypatch, capsys):
    data = tmp_path / "data"
    text = f'[storage]\ndata_dir = "{data}"\n'
    (tmp_path / "env.toml").write_text(text, encoding="utf-8")
    monkeypatch.setenv("MAILBOT_CONFIG", str(tmp_path / "env.toml"))
    assert main(["units", "list"]) == 0
    assert data.is_dir()
    monkeypatch.delenv("MAILBOT_CONFIG")
    other = tmp_path / "cwd"
    other.mkdir()
    (other / "mailbot.toml").write_text(
        f'[storage]\ndata_dir = "{other / "d2"}"\n', encoding="utf-8"
    )
    monkeypatch.chdir(other)
    assert main(["units", "list"]) == 0
    assert (other / "d2").is_dir()


def test_missing_password_variable_is_a_config_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MAILBOT_TEST_NO_SUCH_VAR", raising=False)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        '[inbox]\nurl = "imap://u@127.0.0.1:1/INBOX"\npassword_env = "MAILBOT_TEST_NO_SUCH_VAR"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "poll", "--once"]) == 2
    assert "MAILBOT_TEST_NO_SUCH_VAR" in capsys.readouterr().err


def test_malformed_units_file_is_reported(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(f'[storage]\ndata_dir = "{tmp_path / "data"}"\n', encoding="utf-8")
    bad = tmp_path / "donvi.csv"
    bad.write_text("ten,dia chi\nx,y\n", encoding="utf-8")
    assert main(["--config", str(cfg), "units", "import", str(bad)]) == 1
    assert "danh sách đơn vị" in capsys.readouterr().err


def test_wrong_value_types_in_config_are_config_errors(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    for text in ('[inbox]\nbatch_size = "abc"\n', 'inbox = "x"\n', 'timezone = "Mars/Olympus"\n'):
        cfg.write_text(text, encoding="utf-8")
        assert main(["--config", str(cfg), "status"]) == 2
        assert "cấu hình lỗi" in capsys.readouterr().err


def test_broken_campaign_file_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "c.toml"
    bad.write_text('id = "x"\ndeadline = 5\n', encoding="utf-8")
    code = main(["parse", "--campaign", str(bad), __file__])
    assert code == 2 and "đợt thi đua" in capsys.readouterr().err


def test_missing_units_file_in_config_is_reported(tmp_path, capsys):
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'units_file = "nope.csv"\n[storage]\ndata_dir = "{tmp_path / "d"}"\n'
        f'[inbox]\nurl = "maildir:{tmp_path / "in"}"\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n',
        encoding="utf-8",
    )
    assert main(["--config", str(cfg), "poll", "--once"]) == 1
    assert "nope.csv" in capsys.readouterr().err


def test_timezone_from_config_places_the_deadline(tmp_path):
    from mailbot.app import campaign_of
    from mailbot.config import load_config

    cfg = tmp_path / "mailbot.toml"
    cfg.write_text('timezone = "Asia/Bangkok"\n', encoding="utf-8")
    campaign = campaign_of(load_config(cfg))
    assert str(campaign.deadline.tzinfo) == "Asia/Bangkok"
    assert campaign.deadline.hour == 0 and campaign.deadline.day == 20


# Loaded only by the commands that need them: a person typing `mailbot --help` should not
# wait for the database, migration, scheduler and template libraries to import.
_HEAVY = ("sqlalchemy", "alembic", "apscheduler", "jinja2")
_FORM = Path(__file__).resolve().parents[1] / "fixtures" / "forms" / "Bieu dang ky.xlsx"


@pytest.mark.parametrize(
    ("argv", "banned"),
    [
        (["--help"], (*_HEAVY, "openpyxl")),
        (["parse", "--help"], (*_HEAVY, "openpyxl")),
        (["parse", str(_FORM)], _HEAVY),
    ],
    ids=["help", "parse-help", "parse"],
)
def test_help_and_parse_import_no_database_scheduler_or_template_code(
    argv: list[str], banned: tuple[str, ...]
) -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from mailbot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        f"        main({argv!r})\n"
        "    except SystemExit:\n"
        "        pass\n"
        "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert "mailbot" in loaded
    assert loaded.isdisjoint(banned), sorted(loaded & set(banned))


def test_every_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    assert {"parse", "run", "poll", "units", "status", "demo", "campaign"} <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as exit_info:
            main([name, "--help"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.startswith(f"Cách dùng: mailbot {name}")


# Only the workers read forms and write answers: the daemon's pass never loads them.
_WORKERS_ONLY = ("mailbot.intake", "mailbot.mail.walk", "outbox_templates", "jinja2", "openpyxl")


def test_a_poll_decides_mail_without_importing_the_parsing_stack(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    mailbox.Maildir(str(inbox), create=True).close()
    raw = Path(__file__).resolve().parents[1] / "fixtures" / "intake" / "gmail_khuong_trung.eml"
    (inbox / "new" / "1.test").write_bytes(raw.read_bytes())
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'units_file = "{Path(__file__).resolve().parents[2] / "data" / "units.csv"}"\n'
        f'[inbox]\nurl = "maildir:{inbox}"\nprocess_since = "2000-01-01"\n'
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n'
        "[processing]\nworkers = 1\n",
        encoding="utf-8",
    )
    probe = (
        "import contextlib, io, json, sys\n"
        "from mailbot.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()) as out:\n"
        f"    code = main(['--config', {str(cfg)!r}, 'poll', '--once'])\n"
        "print(json.dumps([code, out.getvalue(), sorted(sys.modules)]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    code, said, loaded = json.loads(proc.stdout)
    assert code == 0 and "xử lý 1 (lỗi 0)" in said, said
    assert [p.name for p in (tmp_path / "out").iterdir()], "the receipt was written"
    assert not {m for m in loaded if m.split(".")[0] in _WORKERS_ONLY or m in _WORKERS_ONLY}
