"""deploy/mailbot.service: the keys operators rely on, and the memory rule against the defaults."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DAEMON_MB = 512


def _unit(name: str = "mailbot.service") -> dict[str, list[str]]:
    keys: dict[str, list[str]] = {}
    for line in (ROOT / "deploy" / name).read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";")):
            key, value = line.split("=", 1)
            keys.setdefault(key.strip(), []).append(value.strip())
    return keys


def _mb(value: str) -> int:
    m = re.fullmatch(r"(\d+)([KMGT]?)", value)
    assert m, value
    return int(m[1]) * {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024, "": 1 / 2**20}[m[2]]


def _seconds(value: str) -> float:
    m = re.fullmatch(r"(\d+)(s|min)?", value)
    assert m, value
    return int(m[1]) * (60 if m[2] == "min" else 1)


def test_service_unit_keys():
    unit = _unit()
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["UMask"] == ["0077"] and unit["KillMode"] == ["mixed"]
    assert unit["StateDirectory"] == ["mailbot"] and unit["ConfigurationDirectory"] == ["mailbot"]
    assert _seconds(unit["WatchdogSec"][0]) >= 30
    creds = {v.split(":", 1)[0] for v in unit["LoadCredential"]}
    assert creds == {"imap-password", "smtp-password", "staff-token-key"}
    assert unit["OOMPolicy"] == ["continue"]
    for key in ("NoNewPrivileges", "ProtectSystem", "PrivateTmp", "ProtectHome"):
        assert key in unit
    # A stop waits for the mail in hand, which may take the whole processing time limit.
    from mailbot.config import ProcessingConfig

    assert _seconds(unit["TimeoutStopSec"][0]) > ProcessingConfig().timeout_seconds


def test_documentation_points_at_a_file_the_install_puts_there():
    (doc,) = _unit()["Documentation"]
    assert doc.startswith("file:/") and not doc.startswith("man:")
    path = Path(doc.removeprefix("file:"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    install = re.search(r"install -D -m 0644 (.+) -t (\S+)/\n", readme)
    assert install, "README must install the documentation"
    assert path.name in install[1].split() and str(path.parent) == install[2]


def test_memory_max_fits_the_example_defaults():
    example = tomllib.loads((ROOT / "mailbot.example.toml").read_text(encoding="utf-8"))
    processing = example["processing"]
    need = processing["workers"] * processing["worker_memory_mb"] + DAEMON_MB
    assert _mb(_unit()["MemoryMax"][0]) >= need
    from mailbot.config import ProcessingConfig

    defaults = ProcessingConfig()
    assert defaults.workers == processing["workers"]
    assert defaults.worker_memory_mb == processing["worker_memory_mb"]


def test_the_template_unit_runs_one_mailbox_as_the_single_unit_runs_all():
    single, template = _unit(), _unit("mailbot@.service")
    differ = {"Description", "ExecStart", "LoadCredential"}
    assert {k: v for k, v in template.items() if k not in differ} == {
        k: v for k, v in single.items() if k not in differ
    }
    assert template["ExecStart"] == [single["ExecStart"][0] + " --mailbox %i"]
    assert template["LoadCredential"] == [
        f"{c.split(':', 1)[0]}:/etc/mailbot/credentials/%i/{c.split(':', 1)[0]}"
        for c in single["LoadCredential"]
    ]
