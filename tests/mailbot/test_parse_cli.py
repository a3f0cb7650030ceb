"""`mailbot parse`: JSON Lines per the contract, a Vietnamese summary, the exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from mailbot.cli import main

ROOT = Path(__file__).resolve().parents[2]
FORMS = ROOT / "tests" / "fixtures" / "forms"
SCHEMA = ROOT / "tests" / "fixtures" / "parse-result.schema.json"
GOOD = FORMS / "M1_DangUy_KhuongTrung.xlsx"
BAD = FORMS / "Phuong Khuong Mai 2021.xlsx"
COVER = FORMS / "Cong van gui kem.docx"


def test_json_lines_one_per_file_valid_against_the_schema(capsys):
    code = main(["parse", "--json", str(GOOD), str(COVER)])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    results = [json.loads(line) for line in lines]
    for result in results:
        jsonschema.validate(result, schema)
    assert results[0]["file"] == GOOD.name and results[0]["forms"][0]["form"] == "M1"
    assert [p["code"] for p in results[1]["problems"]] == ["no-form-found"]
    assert code == 1  # the cover letter has an error


def test_exit_zero_when_no_file_has_an_error(capsys):
    assert main(["parse", "--json", str(GOOD)]) == 0


def test_wrong_year_judged_against_the_newest_campaign_or_the_given_one(tmp_path, capsys):
    assert main(["parse", "--json", str(BAD)]) == 1
    codes = [p["code"] for p in json.loads(capsys.readouterr().out)["forms"][0]["problems"]]
    assert "wrong-year" in codes
    campaign = (ROOT / "rules" / "campaigns" / "dan-van-kheo-2022.toml").read_text("utf-8")
    other = tmp_path / "c2021.toml"
    other.write_text(campaign.replace("year = 2022", "year = 2021"), encoding="utf-8")
    main(["parse", "--json", "--campaign", str(other), str(BAD)])
    codes = [p["code"] for p in json.loads(capsys.readouterr().out)["forms"][0]["problems"]]
    assert "wrong-year" not in codes


def test_summary_is_vietnamese_with_models_and_problems(capsys):
    main(["parse", str(GOOD), str(BAD)])
    out = capsys.readouterr().out
    assert "Mẫu số 01 (cấp Quận)" in out and "I. Tập thể" in out
    assert "Tiêu đề biểu ghi năm 2021" in out


@pytest.mark.parametrize("argv", [["parse", "/nonexistent.xlsx"], ["parse", "--bogus", "x"]])
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        code = main(argv)
        raise SystemExit(code)
    assert info.value.code == 2


def test_garbage_file_is_a_problem_not_a_traceback(tmp_path):
    junk = tmp_path / "Mẫu 01.xlsx"
    junk.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    proc = subprocess.run(
        [sys.executable, "-m", "mailbot.cli", "parse", "--json", str(junk)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["problems"][0]["code"] == "unreadable-file"
