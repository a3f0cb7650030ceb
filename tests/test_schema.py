"""Every expected corpus result, and every actual parse result, is valid against the schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from tests.test_corpus import corpus_files, load_expected, parse_like_cli, skip_without_soffice

HERE = Path(__file__).resolve().parent
SHARED_SCHEMA = HERE.parents[1] / "shared" / "parse-result.schema.json"
LOCAL_SCHEMA = HERE / "fixtures" / "parse-result.schema.json"


def schema_path() -> Path:
    """The agreed schema in ../shared/, or the copy kept in tests/fixtures/ when that is absent."""
    return SHARED_SCHEMA if SHARED_SCHEMA.is_file() else LOCAL_SCHEMA


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(schema_path().read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def errors(validator: Draft202012Validator, document: Any) -> list[str]:
    return [
        f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
        for e in sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    ]


def test_local_schema_copy_is_current() -> None:
    """The fallback copy must not drift from the agreed schema."""
    if not SHARED_SCHEMA.is_file():
        pytest.skip("../shared/ is not beside the repository")
    assert json.loads(LOCAL_SCHEMA.read_text(encoding="utf-8")) == json.loads(
        SHARED_SCHEMA.read_text(encoding="utf-8")
    )


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_expected_result_is_valid(validator: Draft202012Validator, path: Path) -> None:
    found = errors(validator, load_expected(path))
    assert not found, "\n".join(found)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda p: p.name)
def test_actual_result_is_valid(validator: Draft202012Validator, path: Path) -> None:
    skip_without_soffice(load_expected(path))
    found = errors(validator, parse_like_cli(path))
    assert not found, "\n".join(found)
