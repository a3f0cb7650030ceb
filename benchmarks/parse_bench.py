"""Parse speed: median time per typical form against just loading it with the bare library.

Run by hand: `python benchmarks/parse_bench.py [--rounds N]`. Prints one line per format.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import docx
import openpyxl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers import parse_file  # noqa: E402
from rules import judge  # noqa: E402
from rules.campaign import newest_campaign  # noqa: E402

FORMS = ROOT / "tests" / "fixtures" / "forms"


def _typical(ext: str) -> list[tuple[str, bytes]]:
    files = sorted(p for p in FORMS.glob(f"*.{ext}") if p.with_name(p.name + ".expected.json").exists())
    out = []
    for p in files:
        data = p.read_bytes()
        try:  # only well-formed forms count as "typical"
            if ext == "xlsx":
                openpyxl.load_workbook(io.BytesIO(data)).close()
            else:
                docx.Document(io.BytesIO(data))
        except Exception:  # noqa: BLE001 - error fixtures are not typical forms
            continue
        out.append((p.name, data))
    return out


def _median(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _floor_xlsx(data: bytes) -> None:
    openpyxl.load_workbook(io.BytesIO(data)).close()


def _floor_docx(data: bytes) -> None:
    docx.Document(io.BytesIO(data))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15)
    args = ap.parse_args()
    campaign = newest_campaign()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for ext, floor in (("xlsx", _floor_xlsx), ("docx", _floor_docx)):
        files = _typical(ext)
        if not files:
            print(f"{ext}: no typical fixture files found under {FORMS}")
            continue
        ours, bare = [], []
        for name, data in files:
            ours.append(_median(lambda d=data, n=name: judge(parse_file(d, n), campaign), args.rounds))
            bare.append(_median(lambda d=data: floor(d), args.rounds))
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        print(
            f"{ext}: {len(files)} files, median parse {m_ours * 1000:.1f} ms, "
            f"bare load {m_bare * 1000:.1f} ms, ratio {m_ours / m_bare:.2f}x, "
            f"{1 / m_ours:.0f} files/s (one core)"
        )


if __name__ == "__main__":
    main()
