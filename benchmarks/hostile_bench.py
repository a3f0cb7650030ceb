"""Hostile input figures for README's "Reliability" table: bombs, forged senders, slow files.

Run by hand: `python benchmarks/hostile_bench.py`. Each bomb is parsed in a fresh subprocess
that reports the time to refuse, the peak Python heap (tracemalloc) and the growth of its peak
RSS over the baseline. The forged mails go through `process_mail`; the slow conversion runs a
real worker pool (one mail stuck, one normal) with a 6 s decision limit.
"""

from __future__ import annotations

import io
import json
import os
import platform
import subprocess
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + b"".join(
        b' <!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n"
)
SHEET = "xl/worksheets/sheet1.xml"


def _replace(data: bytes, name: str, write: object) -> bytes:
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as src,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as dst,
    ):
        for info in src.infolist():
            if info.filename != name:
                dst.writestr(info.filename, src.read(info))
        write(dst)  # type: ignore[operator]
    return out.getvalue()


def zip_bomb() -> bytes:
    """A real .xlsx whose sheet inflates to 1 GiB of white space (about 4.7 MB packed)."""
    from tests.parsers.builders import workbook

    def write(zf: zipfile.ZipFile) -> None:
        with zf.open(SHEET, "w", force_zip64=True) as fh:
            fh.write(b'<?xml version="1.0"?><worksheet><sheetData>')
            chunk = b" " * (1 << 20)
            for _ in range(1024):
                fh.write(chunk)
            fh.write(b"</sheetData></worksheet>")

    return _replace(workbook(("A1", "Mẫu số 01")), SHEET, write)


def xml_bomb() -> bytes:
    """An .xlsx whose sheet is a billion-laughs document (10^9 expansions of "lol")."""
    from tests.parsers.builders import workbook

    base = workbook(("A1", "Mẫu số 01"))
    with zipfile.ZipFile(io.BytesIO(base)) as zf:
        body = zf.read(SHEET).split(b"?>", 1)[-1]
    bomb = BILLION_LAUGHS + body.replace(b">", b">&lol9;", 1)
    return _replace(base, SHEET, lambda z: z.writestr(SHEET, bomb))


_CHILD = """
import json, resource, sys, time, tracemalloc
sys.path.insert(0, sys.argv[1])
from parsers.dispatch import parse_file
data = open(sys.argv[2], "rb").read()
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
start = time.perf_counter()
result = parse_file(data, "bomb.xlsx")
took = time.perf_counter() - start
_, peak = tracemalloc.get_traced_memory()
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": took, "heap_peak": peak, "rss_growth_kb": rss - base,
                  "rss_peak_kb": rss, "problems": [p.code for p in result.problems]}))
"""


def bomb_figures(name: str, data: bytes, tmp: Path) -> None:
    path = tmp / f"{name}.xlsx"
    path.write_bytes(data)
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(ROOT), str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    got = json.loads(out.stdout)
    print(
        f"{name}: {len(data) / 1e6:.2f} MB file, refused in {got['seconds'] * 1000:.0f} ms "
        f"({', '.join(got['problems'])}); heap peak {got['heap_peak'] / 1e6:.1f} MB; "
        f"RSS +{got['rss_growth_kb'] / 1024:.1f} MB (peak {got['rss_peak_kb'] / 1024:.0f} MB)"
    )


def forged_figures() -> None:
    from mailbot.intake import process_mail
    from tests.mailbot.intake_support import INTAKE, context

    for name in (
        "hostile_forged_no_auth.eml",
        "hostile_forged_untrusted_server.eml",
        "hostile_forged_spf_fail_dmarc_none.eml",
    ):
        raw = (INTAKE / name).read_bytes()
        start = time.perf_counter()
        outcome = process_mail(raw, context(trusted_authserv_id="mx.hanoi.gov.vn"))
        took = time.perf_counter() - start
        to = outcome.reply.to if outcome.reply else None
        print(
            f"forged {name}: {outcome.action}, awaiting={outcome.needs_confirmation}, "
            f"receipt to {to} (forger's Reply-To: {'evil.example' in str(raw)}; "
            f"answered there: {'evil.example' in str(to)}), {took * 1000:.0f} ms"
        )


def slow_figures() -> None:
    from mailbot.intake import process_mail
    from mailbot.workers import Decider
    from tests.mailbot import worker_funcs
    from tests.mailbot.e2e_support import backlog
    from tests.mailbot.intake_support import context

    slow, normal = backlog(2, "bench-stall")
    slow = slow.replace(b"\r\n\r\n", b"\r\nX-Test-Slow: yes\r\n\r\n", 1)
    decider = Decider(2, 120, 0, inline=lambda: process_mail, worker_fn=worker_funcs.slow_marked)
    try:
        list(decider.decide([(n, normal, context()) for n in range(2)]))  # start the workers
        decider.timeout = 6.0
        start = time.monotonic()
        for key, outcome in decider.decide(
            [("slow", slow, context()), ("normal", normal, context())]
        ):
            detail = type(outcome).__name__
            print(
                f"slow conversion: {key} decided after {time.monotonic() - start:.2f} s ({detail})"
            )
    finally:
        decider.close()
    print("  (limit 6 s here; `processing.timeout_seconds` in service; the stuck mail is then")
    print('   answered "quá lớn hoặc quá phức tạp" on the same pass)')


def main() -> None:
    import tempfile

    print(
        f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        bomb_figures("zip bomb (1 GiB sheet)", zip_bomb(), Path(tmp))
        bomb_figures("XML bomb (billion laughs)", xml_bomb(), Path(tmp))
    forged_figures()
    slow_figures()


if __name__ == "__main__":
    main()
