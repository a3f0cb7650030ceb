"""`mailbot campaign new YEAR`: beside the config, never into the package, not active by itself."""

from __future__ import annotations

from pathlib import Path

import rules
from mailbot import cli
from mailbot.app import campaign_of
from mailbot.config import load_config


def _mailbot(capsys, *argv: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _config(folder: Path, extra: str = "") -> Path:
    path = folder / "mailbot.toml"
    path.write_text(
        f'{extra}[inbox]\nurl = "maildir:{folder / "inbox"}"\n'
        f'[outgoing]\nurl = "dir:{folder / "out"}"\n[storage]\ndata_dir = "{folder / "var"}"\n',
        encoding="utf-8",
    )
    return path


def _package_files() -> set[str]:
    return {p.name for p in (Path(rules.__file__).parent / "campaigns").iterdir()}


def test_new_campaign_goes_beside_the_config_and_is_not_active(tmp_path, capsys) -> None:
    cfg = _config(tmp_path)
    shipped = _package_files()
    code, out, err = _mailbot(capsys, "--config", str(cfg), "campaign", "new", "2023")
    assert code == 0, err
    target = tmp_path / "dan-van-kheo-2023.toml"
    assert target.is_file() and _package_files() == shipped
    assert str(target) in out
    assert "CHƯA được dùng" in out and 'campaign = "dan-van-kheo-2023.toml"' in out
    assert str(cfg.absolute()) in out and "systemctl restart mailbot" in out
    # Nothing changed by itself: the daemon still runs the campaign it ran.
    assert campaign_of(load_config(cfg)).year == 2022
    # The printed line, put into the config, makes it the active campaign.
    _config(tmp_path, 'campaign = "dan-van-kheo-2023.toml"\n')
    active = campaign_of(load_config(cfg))
    assert active.year == 2023 and active.deadline.isoformat() == "2023-02-20T00:00:00+07:00"
    # The next year starts from the active one, again beside the config; no overwrite.
    code, out, _ = _mailbot(capsys, "--config", str(cfg), "campaign", "new", "2024")
    assert code == 0 and (tmp_path / "dan-van-kheo-2024.toml").is_file()
    assert "đợt năm 2023" in out
    before = target.read_bytes()
    code, _, err = _mailbot(
        capsys,
        "--config",
        str(cfg),
        "campaign",
        "new",
        "2023",
        "--from",
        str(tmp_path / "dan-van-kheo-2024.toml"),
    )
    assert code == 1 and "không ghi đè" in err and target.read_bytes() == before


def test_out_file_and_its_activation_line(tmp_path, capsys) -> None:
    cfg = _config(tmp_path)
    elsewhere = tmp_path / "campaigns" / "dvk-2023.toml"
    elsewhere.parent.mkdir()
    code, out, _ = _mailbot(
        capsys, "--config", str(cfg), "campaign", "new", "2023", "--out", str(elsewhere)
    )
    assert code == 0 and elsewhere.is_file()
    assert 'campaign = "campaigns/dvk-2023.toml"' in out
    assert not (tmp_path / "dan-van-kheo-2023.toml").exists()


def test_never_into_the_package_and_no_config_needs_out(tmp_path, capsys, monkeypatch) -> None:
    shipped = _package_files()
    inside = Path(rules.__file__).parent / "campaigns" / "dan-van-kheo-2031.toml"
    code, _, err = _mailbot(capsys, "campaign", "new", "2031", "--out", str(inside))
    assert code == 2 and "thư mục cài đặt" in err and "--out" in err
    assert _package_files() == shipped
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MAILBOT_CONFIG", raising=False)
    monkeypatch.setattr("mailbot.config.SYSTEM_CONFIG", tmp_path / "etc" / "mailbot.toml")
    code, _, err = _mailbot(capsys, "campaign", "new", "2023")
    assert code == 2 and "không tìm thấy tệp cấu hình" in err and "--out TỆP" in err
    assert list(tmp_path.iterdir()) == []


def test_new_campaign_prints_its_reminder_days_moved_off_the_weekend(tmp_path, capsys) -> None:
    cfg = _config(tmp_path)
    code, out, err = _mailbot(capsys, "--config", str(cfg), "campaign", "new", "2023")
    assert code == 0, err
    # 20/02/2023 is a Monday: D-1 (Sunday 19/02) joins D-3 on Friday 17/02
    assert "Lịch nhắc hạn (chỉ vào ngày làm việc" in out
    assert "  nhắc lần 1 (trước hạn 7 ngày): thứ Hai 13/02/2023 lúc 08:00\n" in out
    assert (
        "  nhắc lần 2 (trước hạn 3 và 1 ngày): thứ Sáu 17/02/2023 lúc 08:00 "
        "(dời từ Chủ nhật 19/02/2023, nghỉ cuối tuần)\n"
    ) in out
    assert "chưa có ngày nghỉ lễ, Tết của năm 2023" in out
    text = (tmp_path / "dan-van-kheo-2023.toml").read_text(encoding="utf-8")
    assert "a\n# reminder due on one goes out the working day before" in text
