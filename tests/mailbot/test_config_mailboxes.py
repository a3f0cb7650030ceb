"""[[mailbox]] sections: what each mailbox inherits, what is refused, and choosing one."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailbot.cli import main
from mailbot.config import ConfigError, load_config

TOP = """
district = "Thanh Xuân"
[inbox]
url = "imaps://mail.hanoi.gov.vn:993/INBOX"
password_file = "/etc/mailbot/credentials/imap-password"
poll_interval_seconds = 120
[outgoing]
url = "dir:{out}"
from_name = "Ban Dân vận Quận ủy Thanh Xuân"
[storage]
data_dir = "{data}"
[digest]
recipients = ["chung@hanoi.gov.vn"]
time = "08:00"
[board]
superior = "QUẬN ỦY THANH XUÂN"
"""

TWO = """
[[mailbox]]
name = "thanh-xuan"
[mailbox.inbox]
username = "bdv_quthanhxuan@hanoi.gov.vn"

[[mailbox]]
name = "ba-dinh"
district = "Ba Đình"
from_address = "bdv_qbadinh@hanoi.gov.vn"
from_name = "Ban Dân vận Quận ủy Ba Đình"
digest_recipients = ["canbo.badinh@hanoi.gov.vn"]
units_file = "badinh.csv"
[mailbox.inbox]
username = "bdv_qbadinh@hanoi.gov.vn"
password_env = "BADINH_IMAP"
[mailbox.board]
superior = "QUẬN ỦY BA ĐÌNH"
place = "Ba Đình"
"""


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "mailbot.toml"
    top = TOP.format(out=tmp_path / "out", data=tmp_path / "data")
    path.write_text(top + body, encoding="utf-8")
    return path


def test_each_mailbox_inherits_the_top_level_and_overrides_its_own(tmp_path):
    config = load_config(_write(tmp_path, TWO))
    assert [m.name for m in config.mailboxes] == ["thanh-xuan", "ba-dinh"]
    tx, bd = config.for_mailbox("thanh-xuan"), config.for_mailbox("ba-dinh")
    # Isolated stores under the shared data directory.
    assert tx.data_dir == tmp_path / "data" / "thanh-xuan"
    assert bd.data_dir == tmp_path / "data" / "ba-dinh"
    assert (tx.mailbox_name, bd.mailbox_name) == ("thanh-xuan", "ba-dinh")
    # Inherited: server, polling, digest time, outgoing server.
    assert tx.inbox.url == bd.inbox.url == "imaps://mail.hanoi.gov.vn:993/INBOX"
    assert bd.inbox.poll_interval_seconds == 120 and bd.digest.time == "08:00"
    assert bd.outgoing.url == tx.outgoing.url
    assert tx.digest.recipients == ("chung@hanoi.gov.vn",)
    assert tx.district == "Thanh Xuân" and tx.board.superior == "QUẬN ỦY THANH XUÂN"
    # Overridden: the district's own.
    assert bd.district == "Ba Đình" and bd.units_file == "badinh.csv"
    assert bd.digest.recipients == ("canbo.badinh@hanoi.gov.vn",)
    assert bd.outgoing.from_address == "bdv_qbadinh@hanoi.gov.vn"
    assert bd.outgoing.from_name == "Ban Dân vận Quận ủy Ba Đình"
    assert bd.board.superior == "QUẬN ỦY BA ĐÌNH" and bd.board.name == "BAN DÂN VẬN"
    # A mailbox's own secret replaces the inherited one, of whichever kind.
    assert bd.inbox.password.env == "BADINH_IMAP" and bd.inbox.password.file is None
    assert tx.inbox.password.file == "/etc/mailbot/credentials/imap-password"
    # Workers of one mailbox never see another mailbox's password either.
    assert tx.secret_env_names == bd.secret_env_names == ("BADINH_IMAP",)
    assert config.districts() == (tx, bd)


def test_no_mailbox_section_keeps_the_single_layout(tmp_path):
    config = load_config(_write(tmp_path, ""))
    assert config.mailboxes == () and config.mailbox_name is None
    assert config.one_mailbox(None) is config and config.districts() == (config,)
    assert config.data_dir == tmp_path / "data"
    with pytest.raises(ConfigError, match="không có mục \\[\\[mailbox\\]\\]"):
        config.for_mailbox("ba-dinh")


def test_one_mailbox_section_needs_no_choice(tmp_path):
    config = load_config(_write(tmp_path, '[[mailbox]]\nname = "dong-da"\n'))
    assert config.one_mailbox(None).data_dir == tmp_path / "data" / "dong-da"


def test_choosing_among_several(tmp_path):
    config = load_config(_write(tmp_path, TWO))
    with pytest.raises(ConfigError, match="có 2 hộp thư.*--mailbox.*thanh-xuan, ba-dinh"):
        config.one_mailbox(None)
    with pytest.raises(ConfigError, match="--mailbox hoan-kiem: không có hộp thư này.*ba-dinh"):
        config.one_mailbox("hoan-kiem")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('[[mailbox]]\nname = "Ba Đình"\n', "chữ thường không dấu"),
        ("[[mailbox]]\ndistrict = 'Ba Đình'\n", "mỗi hộp thư cần một tên"),
        (
            '[[mailbox]]\nname = "a"\n[mailbox.inbox]\nusername="x"\n[[mailbox]]\nname = "a"\n'
            '[mailbox.inbox]\nusername="y"\n',
            "hai mục cùng một tên",
        ),
        ('[[mailbox]]\nname = "a"\n[[mailbox]]\nname = "b"\n', "cùng đọc một hộp thư"),
        ('[[mailbox]]\nname = "a"\ntimezone = "UTC"\n', "khóa không hợp lệ 'timezone'"),
        ('[[mailbox]]\nname = "a"\n[mailbox.storage]\nreserve_mb = 1\n', "khóa không hợp lệ"),
        (
            '[[mailbox]]\nname = "a"\n[mailbox.inbox]\nfolderz = "X"\n',
            "khóa không hợp lệ 'folderz'",
        ),
        ('[[mailbox]]\nname = "a"\n[mailbox.inbox]\npassword = "x"\n', "không ghi mật khẩu"),
        (
            '[[mailbox]]\nname = "a"\ndigest_recipients = ["x@y.vn"]\n'
            '[mailbox.digest]\nrecipients = ["z@y.vn"]\n',
            "chỉ ghi một nơi",
        ),
        ('mailboxes = ["a"]\n', "khóa không hợp lệ 'mailboxes'"),
    ],
)
def test_refused_sections(tmp_path, body, message):
    # Top-level keys must come before the first table: put them first when the case has one.
    path = tmp_path / "mailbot.toml"
    top = TOP.format(out=tmp_path / "out", data=tmp_path / "data")
    text = body + top if body.startswith("mailboxes") else top + body
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_cli_asks_which_mailbox_and_lists_them(tmp_path, capsys):
    cfg = _write(tmp_path, TWO)
    assert main(["--config", str(cfg), "units", "list"]) == 2
    err = capsys.readouterr().err
    assert "--mailbox" in err and "thanh-xuan, ba-dinh" in err
    assert main(["--config", str(cfg), "units", "list", "--mailbox", "nowhere"]) == 2
    assert "không có hộp thư này" in capsys.readouterr().err
    # The chosen mailbox's store is the one opened.
    assert main(["--config", str(cfg), "units", "list", "--mailbox", "ba-dinh"]) == 0
    capsys.readouterr()
    assert (tmp_path / "data" / "ba-dinh" / "mailbot.sqlite3").exists()
    assert not (tmp_path / "data" / "thanh-xuan").exists()
    assert not (tmp_path / "data" / "mailbot.sqlite3").exists()


def test_export_all_refuses_a_mailbox(tmp_path, capsys):
    cfg = _write(tmp_path, TWO)
    argv = ["--config", str(cfg), "export", "--all", "--mailbox", "ba-dinh", "-o", "x.xlsx"]
    assert main(argv) == 2
    assert "--all" in capsys.readouterr().err


def test_mailbox_option_on_a_config_without_sections(tmp_path, capsys):
    cfg = _write(tmp_path, "")
    assert main(["--config", str(cfg), "units", "list", "--mailbox", "ba-dinh"]) == 2
    assert "không có mục [[mailbox]]" in capsys.readouterr().err


def test_check_goes_through_every_mailbox(tmp_path, capsys):
    for name in ("tx", "bd"):
        for sub in ("cur", "new", "tmp"):
            (tmp_path / name / sub).mkdir(parents=True)
    cfg = tmp_path / "mailbot.toml"
    cfg.write_text(
        f'[outgoing]\nurl = "dir:{tmp_path / "out"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "data"}"\n'
        '[[mailbox]]\nname = "thanh-xuan"\n[mailbox.inbox]\nurl = "maildir:tx"\n'
        '[[mailbox]]\nname = "ba-dinh"\n[mailbox.inbox]\nurl = "maildir:bd"\n',
        encoding="utf-8",
    )
    main(["--config", str(cfg), "check"])
    out = capsys.readouterr().out
    assert "[OK] thanh-xuan: Hộp thư đến" in out and "[OK] ba-dinh: Hộp thư đến" in out
    assert out.count("LibreOffice") == 1
    main(["--config", str(cfg), "check", "--mailbox", "ba-dinh"])
    out = capsys.readouterr().out
    assert "thanh-xuan" not in out and "[OK] Hộp thư đến" in out


def test_export_all_without_out_names_the_city_file(tmp_path, monkeypatch, capsys):
    cfg = _write(tmp_path, TWO)
    monkeypatch.chdir(tmp_path)
    assert main(["--config", str(cfg), "export", "--all"]) == 0
    (written,) = tmp_path.glob("Tổng hợp Dân vận khéo * - toàn thành phố - *.xlsx")
    assert str(written.name) in capsys.readouterr().out
    from openpyxl import load_workbook

    summary = load_workbook(written).worksheets[0]
    districts = [r[1] for r in summary.iter_rows(values_only=True) if isinstance(r[0], int)]
    assert districts == ["Thanh Xuân", "Ba Đình"]
    # Each district read from its own store, never from the top-level data directory.
    assert not (tmp_path / "data" / "mailbot.sqlite3").exists()
    assert (tmp_path / "data" / "ba-dinh" / "mailbot.sqlite3").exists()


def test_mailbox_option_survives_subcommands():
    from mailbot.cli import build_parser

    parser = build_parser()
    for argv in (
        ["review", "--mailbox", "ba-dinh", "handled", "--mail", "1"],
        ["review", "handled", "--mail", "1", "--mailbox", "ba-dinh"],
        ["run", "--mailbox", "ba-dinh"],
        ["check", "--mailbox", "ba-dinh"],
    ):
        assert parser.parse_args(argv).mailbox == "ba-dinh"
    # Commands that use no mailbox do not take the option.
    with pytest.raises(SystemExit):
        parser.parse_args(["parse", "--mailbox", "ba-dinh", "form.xlsx"])
