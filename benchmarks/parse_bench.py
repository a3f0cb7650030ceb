"""Parse speed: median time per typical form against just loading it with the bare library.

Run by hand: `python benchmarks/parse_bench.py [--rounds N]`. Prints the machine, then per
format: typical files, median parse ms, median bare-load ms, their ratio, and files/s on one
core (1 / median) and with one process per core (measured). Last, what a worker spends
deciding each mail of the intake bench's backlog (`process_mail`: parse the mail, read and
judge its files, write the receipt), median ms per mail and their mean.
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
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import docx
import openpyxl
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from parsers import parse_file  # noqa: E402
from rules import judge  # noqa: E402
from rules.campaign import newest_campaign  # noqa: E402

FORMS = ROOT / "tests" / "fixtures" / "forms"


def _typical(ext: str) -> list[tuple[str, bytes]]:
    files = sorted(
        p for p in FORMS.glob(f"*.{ext}") if p.with_name(p.name + ".expected.json").exists()
    )
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


def _judge_all(files: list[tuple[str, bytes]]) -> int:
    campaign = newest_campaign()
    for name, data in files:
        judge(parse_file(data, name), campaign)
    return len(files)


def _throughput(files: list[tuple[str, bytes]], workers: int, repeat: int) -> float:
    """Files per second with `workers` processes each judging the whole set `repeat` times."""
    batch = files * repeat
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_judge_all, [files] * workers))  # warm up imports in every worker
        t0 = time.perf_counter()
        done = sum(pool.map(_judge_all, [batch] * workers))
        return done / (time.perf_counter() - t0)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15, help="timed runs per file (median kept)")
    args = ap.parse_args()
    campaign = newest_campaign()
    cores = os.cpu_count() or 1
    print(f"machine: {_cpu_name()}, {cores} cores, {platform.system()} {platform.release()}")
    print(
        f"python {platform.python_version()}, openpyxl {openpyxl.__version__}, "
        f"python-docx {getattr(docx, '__version__', '?')}, lxml {etree.__version__}"
    )
    print(
        "work timed: rules.judge(parsers.parse_file(data, name), campaign), median of "
        f"{args.rounds} runs per file, then the median over files"
    )
    print(
        f"{'format':<7}{'files':>6}{'parse ms':>10}{'bare ms':>9}{'ratio':>7}"
        f"{'files/s 1 core':>16}{f'files/s {cores} procs':>18}"
    )
    for ext, floor in (("xlsx", _floor_xlsx), ("docx", _floor_docx)):
        files = _typical(ext)
        if not files:
            print(f"{ext:<7}{0:>6}  (no typical fixture files under {FORMS})")
            continue
        ours, bare = [], []
        for name, data in files:
            ours.append(
                _median(lambda d=data, n=name: judge(parse_file(d, n), campaign), args.rounds)
            )
            bare.append(_median(lambda d=data, f=floor: f(d), args.rounds))
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        pool = _throughput(files, cores, max(1, args.rounds // 3))
        print(
            f"{ext:<7}{len(files):>6}{m_ours * 1000:>10.1f}{m_bare * 1000:>9.1f}"
            f"{m_ours / m_bare:>6.2f}x{1 / m_ours:>16.0f}{pool:>18.0f}"
        )
    print(
        "bare = openpyxl.load_workbook(BytesIO(data)) / docx.Document(BytesIO(data)); "
        "target: ratio <= 1.5x and >= 50 files/s"
    )
    _decide_per_mail(args.rounds)


def _decide_per_mail(rounds: int) -> None:
    """Median ms of process_mail for each backlog mail of benchmarks/intake_bench.py."""
    from mailbot.intake import process_mail
    from tests.mailbot.e2e_support import RECEIPT_FIXTURES
    from tests.mailbot.intake_support import INTAKE, context

    ctx = context()
    times = []
    for name in RECEIPT_FIXTURES:
        raw = (INTAKE / name).read_bytes()
        process_mail(raw, ctx)  # imports and template compilation are not the mail's cost
        times.append(_median(lambda r=raw: process_mail(r, ctx), rounds))
        print(f"decide {name:<32}{times[-1] * 1000:>8.1f} ms")
    print(f"decide mean over {len(times)} backlog mails: {statistics.mean(times) * 1000:.1f} ms")


if __name__ == "__main__":
    main()
