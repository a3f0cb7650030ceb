"""Render the consolidated workbook and its Word export to PNG pages, to look at them.

    python scripts/render_documents.py OUT_DIR                 # from `mailbot demo`'s data
    python scripts/render_documents.py OUT_DIR --config FILE   # from a real data directory
    python scripts/render_documents.py OUT_DIR --synthetic 6   # the shipped register, 6 models
                                                               # per unit (page breaks, totals)

Writes tong-hop.xlsx and tong-hop.docx, converts both with LibreOffice (soffice --headless
--convert-to pdf) and the PDFs with `pdftoppm -r 60` to OUT_DIR/xlsx-N.png and docx-N.png.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mailbot.campaign.export_docx import write_consolidated_docx  # noqa: E402
from mailbot.campaign.export_model import ExportModel, FormStatus, UnitStatusRow  # noqa: E402
from mailbot.campaign.export_xlsx import write_consolidated_xlsx  # noqa: E402
from mailbot.units import read_units  # noqa: E402
from parsers.model import FIELDS  # noqa: E402
from rules.campaign import newest_campaign  # noqa: E402

_MODELS = (
    "Tổ dân phố văn minh, sạch đẹp, không rác thải nhựa",
    "Câu lạc bộ dưỡng sinh người cao tuổi",
    "Camera an ninh kết nối khu dân cư",
    "Chi bộ gương mẫu, gần dân, sát dân",
    "Nuôi heo đất giúp hội viên khó khăn",
    "Tủ sách dùng chung của khu phố",
)


def _cli(*args: str) -> None:
    code = f"import sys; from mailbot.cli import main; sys.exit(main({list(args)!r}))"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


def _from_database(out: Path, config: Path | None) -> None:
    """Export through the real command, from the demo's database or a configured one."""
    if config is None:
        demo = Path(tempfile.mkdtemp(prefix="render-demo-")) / "demo"
        _cli("demo", "--dir", str(demo))
        config = demo / "mailbot.toml"
    _cli("--config", str(config), "export", "--out", str(out / "tong-hop.xlsx"), "--docx")


def _synthetic(out: Path, per_unit: int) -> None:
    """The shipped register with made-up models: most units sent, some did not, one error."""
    campaign = newest_campaign()
    units = read_units((ROOT / "data" / "units.csv").read_bytes(), "units.csv")
    when = datetime(campaign.year, 2, 14, 2, 30, tzinfo=UTC)
    models: list[ExportModel] = []
    rows: list[UnitStatusRow] = []
    for i, unit in enumerate(units):
        forms: dict[str, FormStatus | None] = {}
        for form in ("M1", "M2"):
            if i % 7 == 3:
                forms[form] = None
                continue
            if i % 11 == 5 and form == "M2":
                forms[form] = FormStatus(
                    when, False, 2, 2, ["Dòng 5: thiếu tên mô hình"], "", state="errors"
                )
                continue
            count = 0 if i % 9 == 4 else per_unit - (i % 3)
            forms[form] = FormStatus(
                when + timedelta(hours=i), i % 13 == 2, count, declared_empty=count == 0
            )
            for n in range(count):
                models.append(
                    ExportModel(
                        unit.code,
                        unit.name,
                        form,
                        "collective" if n % 3 else "individual",
                        FIELDS[(i + n) % 4],
                        None,
                        f"Chi hội số {n + 1}" if n % 3 else "Nguyễn Thị Hồng Nhung",
                        _MODELS[(i + n) % len(_MODELS)],
                    )
                )
        done = [f for f in forms.values() if f is not None]
        state = "complete" if len(done) == 2 and all(f.counts for f in done) else "partial"
        state = "missing" if not done else state
        state = "errors" if any(not f.counts for f in done) else state
        rows.append(UnitStatusRow(unit.code, unit.name, state, forms, (), unit.group, unit.order))
    now = datetime(campaign.year, 2, 22, 3, 8, tzinfo=UTC)
    (out / "tong-hop.xlsx").write_bytes(write_consolidated_xlsx(models, rows, campaign, now))
    (out / "tong-hop.docx").write_bytes(write_consolidated_docx(models, rows, campaign, now))


def _render(out: Path) -> list[Path]:
    for old in out.glob("*.png"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="render-lo-") as profile:
        for name in ("tong-hop.xlsx", "tong-hop.docx"):
            subprocess.run(
                [
                    "soffice",
                    f"-env:UserInstallation=file://{profile}",
                    "--headless",
                    "--convert-to",
                    "pdf",
                    "--outdir",
                    str(out / name.replace(".", "-")),
                    str(out / name),
                ],
                check=True,
                capture_output=True,
                timeout=300,
            )
    pages: list[Path] = []
    for kind in ("xlsx", "docx"):
        pdf = out / f"tong-hop-{kind}" / "tong-hop.pdf"
        subprocess.run(["pdftoppm", "-r", "60", "-png", str(pdf), str(out / kind)], check=True)
        pages.extend(sorted(out.glob(f"{kind}-*.png")))
    return pages


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the files and the PNG pages")
    parser.add_argument("--config", type=Path, help="a mailbot.toml whose database to export")
    parser.add_argument("--synthetic", type=int, metavar="N", help="N made-up models per unit")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out.resolve()
    if args.synthetic:
        _synthetic(out, args.synthetic)
    else:
        _from_database(out, args.config)
    for page in _render(out):
        print(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
