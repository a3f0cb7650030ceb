"""README.md opens with the two commands; .ci/run runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.+?)\n```", text, flags=re.S)[:2]


def test_readme_opens_with_demo_and_test_commands():
    demo, tests = _readme_commands()
    assert "mailbot demo" in demo and "pip install" in demo
    assert "pytest" in tests and "dovecot-imapd" in tests


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci.splitlines()


def test_example_config_documents_every_key():
    import tomllib
    from dataclasses import fields, is_dataclass

    from mailbot.config import Config, load_config

    example = ROOT / "mailbot.example.toml"
    load_config(example)  # it must load as it is
    text = example.read_text(encoding="utf-8")
    data = tomllib.loads(text)

    def walk(cls: type, section: str) -> None:
        for f in fields(cls):
            if f.name in ("base_dir", "mailbox_name", "secret_env_names"):
                continue
            if f.name == "mailboxes":
                assert "# [[mailbox]]" in text, "[[mailbox]] undocumented"
                continue
            default = f.default_factory() if callable(f.default_factory) else f.default
            if f.name == "password":
                assert "password_env" in text and "password_file" in text
            elif is_dataclass(default):
                assert f"[{f.name}]" in text, f"section [{f.name}] undocumented"
                walk(type(default), f.name)
            else:
                assert re.search(rf"^#?\s*{f.name}\s*=", text, flags=re.M), (
                    f"{section}.{f.name} undocumented"
                )

    walk(Config, "top level")
    assert isinstance(data, dict)
    from mailbot.config import MAILBOX_KEYS, MAILBOX_SECTIONS, MAILBOX_SHORTCUTS

    example_section = text[text.index("# [[mailbox]]") :]
    for key in ("name", *MAILBOX_KEYS, *MAILBOX_SHORTCUTS):
        assert re.search(rf"^# {key} =", example_section, flags=re.M), f"mailbox.{key}"
    for section in MAILBOX_SECTIONS:
        assert f"[mailbox.{section}]" in text, f"[mailbox.{section}] undocumented"
