"""Walk the form corpus: every file in tests/fixtures/forms/ parses to its `.expected.json`."""

from __future__ import annotations

import difflib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FORMS_DIR = Path(__file__).resolve().parent / "fixtures" / "forms"
EXPECTED_SUFFIX = ".expected.json"
# Formats the parser reads only through LibreOffice.
SOFFICE_FORMATS = {"doc", "ods", "odt"}
FORM_KEYS = ("form", "unit", "year", "date", "location", "declared_totals")


def corpus_files() -> list[Path]:
    """Every corpus file that has an expected result beside it, in a stable order."""
    return sorted(
        p
        for p in FORMS_DIR.iterdir()
        if p.is_file()
        and not p.name.endswith(EXPECTED_SUFFIX)
        and p.with_name(p.name + EXPECTED_SUFFIX).is_file()
    )


def load_expected(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name + EXPECTED_SUFFIX).read_text(encoding="utf-8"))


def skip_without_soffice(expected: dict[str, Any]) -> None:
    """Skip a LibreOffice-only file when soffice is absent; in CI its absence is a failure."""
    if expected["format"] not in SOFFICE_FORMATS or shutil.which("soffice"):
        return
    message = f"{expected['format']} needs LibreOffice (soffice) on the PATH"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI is set: install LibreOffice)")
    pytest.skip(message)


def parse_like_cli(path: Path) -> dict[str, Any]:
    """Exactly what `mailbot parse --json` runs for one file."""
    import parsers
    import rules
    from parsers.convert import soffice_converter
    from rules import campaign

    data = path.read_bytes()
    office = soffice_converter()
    result = rules.judge(
        parsers.parse_file(data, path.name, office=office), campaign.newest_campaign()
    )
    return result.to_json()


def _problem_key(p: dict[str, Any]) -> str:
    return f"{p['severity']} {p['code']}" + (f" @ {p['location']}" if p.get("location") else "")


def compare_problems(where: str, expected: list[dict], actual: list[dict]) -> Iterator[str]:
    """Multiset comparison by (severity, code); location too where the expectation gives one."""
    left = list(actual)
    missing: list[dict] = []
    # Located expectations first, so an unlocated one cannot take their match.
    for exp in sorted(expected, key=lambda p: p.get("location") is None):
        for i, act in enumerate(left):
            if (act["severity"], act["code"]) != (exp["severity"], exp["code"]):
                continue
            if exp.get("location") is not None and act.get("location") != exp["location"]:
                continue
            del left[i]
            break
        else:
            missing.append(exp)
    for p in missing:
        yield f"{where}: missing problem {_problem_key(p)}"
    for p in left:
        yield f"{where}: unexpected problem {_problem_key(p)} ({p.get('message')!r})"


def _dump(value: Any) -> list[str]:
    return json.dumps(value, ensure_ascii=False, indent=2).splitlines()


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Every difference that matters, as readable lines (empty when the result is right)."""
    out: list[str] = []
    for key in ("file", "format"):
        if actual.get(key) != expected[key]:
            out.append(f"{key}: expected {expected[key]!r}, got {actual.get(key)!r}")
    out += compare_problems("file", expected["problems"], actual.get("problems", []))
    exp_forms, act_forms = expected["forms"], actual.get("forms", [])
    if len(exp_forms) != len(act_forms):
        out.append(
            f"forms: expected {len(exp_forms)} "
            f"({[f['form'] + ' @ ' + f['location'] for f in exp_forms]}), got {len(act_forms)} "
            f"({[str(f.get('form')) + ' @ ' + str(f.get('location')) for f in act_forms]})"
        )
    for n, (exp, act) in enumerate(zip(exp_forms, act_forms, strict=False), 1):
        where = f"form {n} ({exp['form']} @ {exp['location']})"
        for key in FORM_KEYS:
            if act.get(key) != exp[key]:
                out.append(f"{where}: {key}: expected {exp[key]!r}, got {act.get(key)!r}")
        act_entries = act.get("entries", [])
        if act_entries != exp["entries"]:
            diff = difflib.unified_diff(
                _dump(exp["entries"]),
                _dump(act_entries),
                "expected entries",
                "actual entries",
                lineterm="",
                n=2,
            )
            out.append(f"{where}: entries differ:\n" + "\n".join(diff))
        out += compare_problems(where, exp["problems"], act.get("problems", []))
    return out


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_corpus_file(path: Path) -> None:
    expected = load_expected(path)
    skip_without_soffice(expected)
    actual = parse_like_cli(path)
    problems = compare(expected, actual)
    if problems:
        pytest.fail(
            f"{path.name}: {len(problems)} difference(s)\n" + "\n".join(problems), pytrace=False
        )


def test_every_corpus_file_has_an_expectation() -> None:
    """A file dropped into the corpus without its expected result would be silently skipped."""
    files = corpus_files()
    assert len(files) >= 40
    orphans = [
        p.name
        for p in FORMS_DIR.iterdir()
        if p.is_file()
        and p.name != "README.md"
        and not p.name.endswith(EXPECTED_SUFFIX)
        and p not in files
    ]
    stale = [
        p.name
        for p in FORMS_DIR.glob("*" + EXPECTED_SUFFIX)
        if not p.with_name(p.name[: -len(EXPECTED_SUFFIX)]).is_file()
    ]
    assert not orphans, f"corpus files without {EXPECTED_SUFFIX}: {orphans}"
    assert not stale, f"expectations without their file: {stale}"
