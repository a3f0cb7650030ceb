"""The compiled-template cache: used only when whole and of the same source, never required."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from jinja2 import DictLoader, Environment

import outbox_templates
from outbox_templates import render, warm
from outbox_templates.compiled import CompiledCache, cache_key, compiled_cache


class CountingEnvironment(Environment):
    """Counts the templates it compiles from source."""

    compiled = 0

    def compile(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN201
        if not kwargs.get("raw") and not (len(args) > 3 and args[3]):
            type(self).compiled += 1
        return super().compile(*args, **kwargs)


def _env(templates: dict[str, str], cache: CompiledCache) -> CountingEnvironment:
    CountingEnvironment.compiled = 0
    return CountingEnvironment(loader=DictLoader(templates), bytecode_cache=cache)


def test_a_second_environment_loads_what_the_first_compiled(tmp_path: Path) -> None:
    cache = CompiledCache(tmp_path / "c")
    first = _env({"a.j2": "Xin chào {{ name }}"}, cache)
    assert first.get_template("a.j2").render(name="Phường") == "Xin chào Phường"
    assert CountingEnvironment.compiled == 1
    assert len(list((tmp_path / "c").glob("*.j2c"))) == 1
    assert stat.S_IMODE((tmp_path / "c").stat().st_mode) == 0o700

    second = _env({"a.j2": "Xin chào {{ name }}"}, CompiledCache(tmp_path / "c"))
    assert second.get_template("a.j2").render(name="Quận") == "Xin chào Quận"
    assert CountingEnvironment.compiled == 0


def test_a_changed_template_is_never_served_from_the_cache(tmp_path: Path) -> None:
    _env({"a.j2": "cũ {{ n }}"}, CompiledCache(tmp_path)).get_template("a.j2")
    changed = _env({"a.j2": "mới {{ n }}"}, CompiledCache(tmp_path))
    assert changed.get_template("a.j2").render(n=1) == "mới 1"
    assert CountingEnvironment.compiled == 1


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[:-7],  # torn write
        lambda data: data[:40] + bytes([data[40] ^ 0xFF]) + data[41:],  # a flipped byte
        lambda data: b"",
        lambda data: b"\x00" * 32 + b"not a pickle",
    ],
)
def test_a_damaged_entry_is_compiled_again_and_rewritten(tmp_path: Path, damage) -> None:  # noqa: ANN001
    _env({"a.j2": "{{ 1 + 2 }}"}, CompiledCache(tmp_path)).get_template("a.j2")
    (entry,) = tmp_path.glob("*.j2c")
    good = entry.read_bytes()
    entry.write_bytes(damage(good))
    again = _env({"a.j2": "{{ 1 + 2 }}"}, CompiledCache(tmp_path))
    assert again.get_template("a.j2").render() == "3"
    assert CountingEnvironment.compiled == 1
    assert entry.read_bytes() == good


def test_a_read_only_or_impossible_directory_only_means_compiling(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        where = blocker / "cache"  # under a regular file: cannot be made, even by root
    else:
        where = tmp_path / "ro"
        where.mkdir(mode=0o500)
    env = _env({"a.j2": "ok"}, CompiledCache(where))
    assert env.get_template("a.j2").render() == "ok"
    assert CountingEnvironment.compiled == 1


def test_the_key_changes_with_the_environment_definition(tmp_path: Path) -> None:
    one, two = tmp_path / "one.py", tmp_path / "two.py"
    one.write_text("trim_blocks=True")
    two.write_text("trim_blocks=False")
    assert cache_key(one) != cache_key(two)
    assert cache_key(one) == cache_key(one)
    assert cache_key(tmp_path / "missing.py") is None
    assert compiled_cache(tmp_path, tmp_path / "missing.py") is None


def test_warm_from_the_cache_compiles_nothing_and_renders_the_same_mails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.outbox_templates.test_render import NOTICE_REASONS, _notice, _receipt

    def mails() -> list[object]:
        return [render("receipt", _receipt())] + [
            render("notice", _notice(r)) for r in NOTICE_REASONS
        ]

    outbox_templates.environment.cache_clear()
    try:
        warm()
        expected = mails()
        outbox_templates.environment.cache_clear()
        warm(cache_dir=tmp_path)
        written = sorted(p.name for p in tmp_path.rglob("*.j2c"))
        assert len(written) >= 6  # the receipt and notice parts, and their partials
        assert outbox_templates.environment().bytecode_cache is None  # only while warming
        assert mails() == expected

        outbox_templates.environment.cache_clear()
        compiled: list[str | None] = []
        real = outbox_templates._Environment.compile

        def counting(self, source, name=None, filename=None, raw=False, defer_init=False):  # noqa: ANN001, ANN202
            compiled.append(name)
            return real(self, source, name, filename, raw, defer_init)

        monkeypatch.setattr(outbox_templates._Environment, "compile", counting)
        warm(cache_dir=tmp_path)
        assert compiled == []
        assert sorted(p.name for p in tmp_path.rglob("*.j2c")) == written
        assert mails() == expected
    finally:
        outbox_templates.environment.cache_clear()
