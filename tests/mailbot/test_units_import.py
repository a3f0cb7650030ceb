"""`mailbot units import`: every error, in CSV and XLSX, all or nothing; moving an address."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook

from mailbot import cli
from mailbot import db as dbm
from mailbot.app import open_app
from mailbot.config import load_config

HEADER = ["code", "name", "emails", "aliases"]
GOOD = [
    ["mttq", "Ủy ban MTTQ quận", "mttq@x.example", "MTTQ quận"],
    ["ldld", "Liên đoàn Lao động quận", "ldld@x.example; vp.ldld@x.example", ""],
]


def _write(folder: Path, fmt: str, rows: list[list[str]], name: str = "donvi") -> Path:
    path = folder / f"{name}.{fmt}"
    if fmt == "csv":
        path.write_text("\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8-sig")
    else:
        wb = Workbook()
        ws = wb.active
        for row in rows:
            ws.append(row)
        wb.save(path)
    return path


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    (tmp_path / "inbox").mkdir()
    path = tmp_path / "mailbot.toml"
    path.write_text(
        f'[inbox]\nurl = "maildir:{tmp_path / "inbox"}"\n[outgoing]\nurl = "dir:{tmp_path / "o"}"\n'
        f'[storage]\ndata_dir = "{tmp_path / "var"}"\n',
        encoding="utf-8",
    )
    return path


def _import(capsys, cfg: Path, file: Path, *extra: str) -> tuple[int, str, str]:  # noqa: ANN001
    code = cli.main(["--config", str(cfg), "units", "import", str(file), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def _register(cfg: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    with open_app(load_config(cfg), exclusive=False) as app, app.database.session() as s:
        return {r.code: (r.name, r.emails) for r in dbm.unit_register(s)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    ("rows", "needles"),
    [
        pytest.param(
            [["code", "name", "aliases"], ["a", "Hội A", ""]],
            ["thiếu cột emails", "“code”, “name”, “aliases”", "code, name, emails"],
            id="no-emails-column",
        ),
        pytest.param(
            [["Mã", "emails"], ["a", "a@x.example"]],
            ["Dòng 1", "thiếu cột name", "“Mã”, “emails”"],
            id="no-name-column",
        ),
        pytest.param(
            [["Tên đơn vị", "Email", "Ghi chú"], ["Hội A", "a@x.example", ""]],
            ["thiếu cột code", "“Tên đơn vị”, “Email”, “Ghi chú”"],
            id="no-code-column",
        ),
        pytest.param(
            [HEADER, *GOOD, ["mttq", "Mặt trận", "mt@x.example", ""]],
            ["Dòng 4", "“mttq”", "trùng với dòng 2"],
            id="duplicate-code",
        ),
        pytest.param(
            [HEADER, GOOD[0], ["", "Hội B", "b@x.example", ""]],
            ["Dòng 3", "thiếu mã đơn vị (cột code)"],
            id="empty-code",
        ),
        pytest.param(
            [HEADER, GOOD[0], ["b", "", "b@x.example", ""]],
            ["Dòng 3", "thiếu tên đơn vị (cột name) cho mã “b”"],
            id="empty-name",
        ),
        pytest.param(
            [HEADER, GOOD[0], ["b", "Hội B", "b@x.example; khong-phai-dia-chi", ""]],
            ["Dòng 3", "“khong-phai-dia-chi” không hợp lệ"],
            id="invalid-address",
        ),
        pytest.param(
            [HEADER, GOOD[0], ["b", "Hội B", "MTTQ@x.example", ""]],
            ["Dòng 3", "“mttq@x.example”", "đơn vị “mttq” ở dòng 2"],
            id="address-twice-in-file",
        ),
        pytest.param([HEADER], ["không có đơn vị nào"], id="header-only"),
        pytest.param(
            [HEADER, ["", "Hội A", "a@x", ""], ["b", "", "", ""], ["b", "Hội B2", "", ""]],
            [
                "4 lỗi",
                "Dòng 2: thiếu mã",
                "Dòng 2: địa chỉ thư “a@x”",
                "Dòng 3: thiếu tên",
                "Dòng 4: mã đơn vị “b” bị trùng với dòng 3",
            ],
            id="every-problem-listed",
        ),
    ],
)
def test_bad_file_is_an_error_and_imports_nothing(
    tmp_path, cfg, capsys, fmt, rows, needles
) -> None:  # noqa: ANN001
    before = _write(tmp_path, "csv", [HEADER, ["old", "Đơn vị cũ", "old@x.example", ""]], "first")
    assert _import(capsys, cfg, before)[0] == 0
    code, out, err = _import(capsys, cfg, _write(tmp_path, fmt, rows))
    assert code == 1 and out == ""
    assert "Không nhập đơn vị nào" in err or "không nhập đơn vị nào" in err
    for needle in needles:
        assert needle in err, err
    assert "Traceback" not in err
    assert _register(cfg) == {"old": ("Đơn vị cũ", ("old@x.example",))}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_address_of_another_unit_is_refused_then_moved_on_request(
    tmp_path, cfg, capsys, fmt
) -> None:  # noqa: ANN001
    assert _import(capsys, cfg, _write(tmp_path, "csv", [HEADER, *GOOD], "first"))[0] == 0
    # The Front's office address written for the new Women's Union row; the Front renamed.
    rows = [
        HEADER,
        ["mttq", "Ủy ban Mặt trận Tổ quốc quận", "mttq@x.example", ""],
        ["hlhpn", "Hội Liên hiệp Phụ nữ quận", "hlhpn@x.example; VP.LDLD@x.example", ""],
    ]
    file = _write(tmp_path, fmt, rows)
    code, out, err = _import(capsys, cfg, file)
    assert code == 1 and out == ""
    for needle in (
        "“vp.ldld@x.example”",
        "“Liên đoàn Lao động quận” (mã ldld)",
        "“Hội Liên hiệp Phụ nữ quận” (mã hlhpn) (dòng 3)",
        "Không nhập đơn vị nào",
        "--move-addresses",
    ):
        assert needle in err, err
    before = {
        "ldld": ("Liên đoàn Lao động quận", ("ldld@x.example", "vp.ldld@x.example")),
        "mttq": ("Ủy ban MTTQ quận", ("mttq@x.example",)),
    }
    assert _register(cfg) == before  # all or nothing: not even the renamed Front

    code, out, err = _import(capsys, cfg, file, "--move-addresses")
    assert code == 0, err
    assert (
        "đã chuyển địa chỉ thư “vp.ldld@x.example” từ đơn vị “Liên đoàn Lao động quận” (mã "
        "ldld) sang đơn vị “Hội Liên hiệp Phụ nữ quận” (mã hlhpn)" in out
    )
    assert "đã nhập 2 đơn vị" in out
    assert _register(cfg) == {
        "hlhpn": ("Hội Liên hiệp Phụ nữ quận", ("hlhpn@x.example", "vp.ldld@x.example")),
        "ldld": ("Liên đoàn Lao động quận", ("ldld@x.example",)),
        "mttq": ("Ủy ban Mặt trận Tổ quốc quận", ("mttq@x.example",)),
    }
    with open_app(load_config(cfg), exclusive=False) as app, app.database.session() as s:
        events = dbm.events_since(s, datetime(2000, 1, 1, tzinfo=UTC))
    assert [(e.kind, e.detail) for e in events if e.kind == "address-moved"] == [
        ("address-moved", "vp.ldld@x.example: ldld -> hlhpn")
    ]


def test_moving_between_two_units_of_the_same_file_keeps_the_address(tmp_path, cfg, capsys) -> None:  # noqa: ANN001
    assert _import(capsys, cfg, _write(tmp_path, "csv", [HEADER, *GOOD], "first"))[0] == 0
    # The address goes from the Front (listed first, so upserted first) to the Union.
    rows = [
        HEADER,
        ["ldld", "Liên đoàn Lao động quận", "ldld@x.example; mttq@x.example", ""],
        ["mttq", "Ủy ban MTTQ quận", "", ""],
    ]
    code, out, err = _import(capsys, cfg, _write(tmp_path, "csv", rows), "--move-addresses")
    assert code == 0, err
    assert _register(cfg)["ldld"][1] == ("ldld@x.example", "mttq@x.example")
    assert _register(cfg)["mttq"][1] == ()


def _places(cfg: Path) -> dict[str, tuple[str | None, str | None, int | None]]:
    with open_app(load_config(cfg), exclusive=False) as app, app.database.session() as s:
        return {r.code: (r.parent, r.group, r.order) for r in dbm.unit_register(s)}


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_group_order_and_parent_survive_an_import_without_those_columns(
    tmp_path, cfg, capsys, fmt
) -> None:  # noqa: ANN001
    full = [
        [*HEADER, "parent", "nhóm", "thứ tự"],
        ["mttq", "Ủy ban MTTQ quận", "mttq@x.example", "", "", "Mặt trận", "1"],
        ["ldld", "Liên đoàn Lao động quận", "ldld@x.example", "", "", "Chính trị - xã hội", "4"],
        ["cd-ldld", "Công đoàn cơ sở", "cd@x.example", "", "ldld", "chinh-tri-xa-hoi", "5"],
    ]
    assert _import(capsys, cfg, _write(tmp_path, fmt, full, "full"))[0] == 0
    placed = {
        "mttq": (None, "mat-tran", 1),
        "ldld": (None, "chinh-tri-xa-hoi", 4),
        "cd-ldld": ("ldld", "chinh-tri-xa-hoi", 5),
    }
    assert _places(cfg) == placed
    # A register kept without these columns renames a unit: its place stays.
    short = [HEADER, ["cd-ldld", "Công đoàn cơ sở quận", "cd@x.example", ""]]
    assert _import(capsys, cfg, _write(tmp_path, fmt, short, "short"))[0] == 0
    assert _places(cfg) == placed
    assert _register(cfg)["cd-ldld"][0] == "Công đoàn cơ sở quận"
    # A column present and empty clears it.
    cleared = [[*HEADER, "group", "parent"], ["cd-ldld", "Công đoàn", "cd@x.example", "", "", ""]]
    assert _import(capsys, cfg, _write(tmp_path, fmt, cleared, "cleared"))[0] == 0
    assert _places(cfg)["cd-ldld"] == (None, None, 5)


def test_bad_group_or_order_is_refused(tmp_path, cfg, capsys) -> None:  # noqa: ANN001
    rows = [
        [*HEADER, "group", "order"],
        ["mttq", "Ủy ban MTTQ quận", "mttq@x.example", "", "Câu lạc bộ", "1"],
        ["ldld", "Liên đoàn Lao động quận", "ldld@x.example", "", "", "hai"],
    ]
    code, out, err = _import(capsys, cfg, _write(tmp_path, "csv", rows))
    assert code == 1 and out == ""
    assert "Dòng 2: cột group “Câu lạc bộ” không rõ" in err and "“Các hội quần chúng”" in err
    assert "Dòng 3: cột order “hai” phải là một số" in err
    assert _register(cfg) == {}
