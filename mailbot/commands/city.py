"""Commands over every mailbox of a city-wide configuration: `status` and `export --all`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mailbot.app import open_app, terminal_progress
from mailbot.campaign.export_city import DistrictData, city_docx, city_xlsx, district_data
from mailbot.campaign.status import STATE_LABELS, STATES, count_states, unit_states
from mailbot.campaign.views import percent
from mailbot.clock import utc_now
from mailbot.config import Config


def district_name(config: Config) -> str:
    """The district as people write it, else the mailbox's name."""
    return config.district or config.mailbox_name or config.board.place


def status_all(config: Config) -> int:
    """One line per mailbox: its district and where its units stand."""
    now = utc_now()
    width = max(len(m.name) for m in config.mailboxes)
    shown: set[str] = set()
    for mailbox in config.mailboxes:
        cfg = mailbox.config
        with open_app(cfg, exclusive=False) as app, app.database.session(write=False) as s:
            states = unit_states(s, app.campaign, now)
            campaign = app.campaign
        if campaign.name not in shown:
            shown.add(campaign.name)
            print(f"{campaign.name} – hạn nộp {campaign.deadline_text}, {campaign.deadline_words}")
        counts = count_states(states)
        total = len(states)
        rest = "; ".join(f"{STATE_LABELS[k]}: {counts[k]}" for k in STATES if k != "complete")
        print(
            f"{mailbox.name:<{width}}  {district_name(cfg)}: đã gửi đủ {counts['complete']}/"
            f"{total} đơn vị ({percent(counts['complete'], total)}%); {rest}"
        )
    return 0


def export_all(args: argparse.Namespace, config: Config, out: Path) -> list[Path]:
    """The city's workbook (and Word copy) from every mailbox's store; the files written."""
    from mailbot.fsutil import atomic_write

    progress = terminal_progress()
    now = utc_now()
    districts: list[DistrictData] = []
    configs = config.districts()
    for number, cfg in enumerate(configs, start=1):
        name = district_name(cfg)
        if progress:
            progress(f"đang đọc số liệu {name} ({number}/{len(configs)})…")
        with open_app(cfg, exclusive=False) as app, app.database.session(write=False) as s:
            districts.append(district_data(s, cfg.mailbox_name or "", name, app.campaign, now))
    campaign = districts[0].campaign
    written: list[Path] = []
    word_only = out.suffix.lower() == ".docx"
    if not word_only:
        if progress:
            progress("đang lập bảng tổng hợp toàn thành phố .xlsx…")
        atomic_write(out, city_xlsx(districts, campaign, now))
        written.append(out)
    if word_only or args.docx:
        target = out if word_only else out.with_suffix(".docx")
        if progress:
            progress("đang lập bản Word .docx…")
        atomic_write(target, city_docx(districts, campaign, now))
        written.append(target)
    if progress:
        sys.stderr.write("\r\033[K")
    return written
