"""The digest's progress chart: units by state and submissions per day, as a small PNG."""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from matplotlib.axes import Axes

# Width x height in pixels at DPI: small enough for a mail, large enough to read.
SIZE_INCHES: Final = (6.0, 2.6)
DPI: Final = 100
FONT: Final = "DejaVu Sans"  # ships with matplotlib, has every Vietnamese letter
# One colour per unit state, the same as the digest's HTML figures.
STATE_COLOURS: Final = {
    "complete": "#047857",
    "awaiting-confirmation": "#1d4ed8",
    "errors": "#b91c1c",
    "partial": "#d97706",
    "missing": "#9ca3af",
}


@dataclass(frozen=True)
class StateBar:
    """One segment of the units bar: a state, its label and how many units are in it."""

    state: str
    label: str
    count: int


@dataclass(frozen=True)
class DayCount:
    """Submissions received on one local day."""

    day: date
    count: int


def progress_png(
    states: Sequence[StateBar],
    per_day: Sequence[DayCount],
    last_day: date,
) -> bytes:
    """Two panels: units by state (one stacked bar) and submissions per day to `last_day`.

    `last_day` is the last day that counts as on time: the deadline line is drawn after it.
    The PNG carries no timestamp, so the same figures give the same bytes.
    """
    # Imported here: the chart is drawn once a day, and `mailbot --help` must stay light.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=SIZE_INCHES, dpi=DPI)
    fig.set_layout_engine("none")
    left = fig.add_axes((0.03, 0.18, 0.40, 0.62))
    right = fig.add_axes((0.55, 0.18, 0.43, 0.62))
    _units_panel(left, states)
    _days_panel(right, per_day, last_day)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _units_panel(ax: Axes, states: Sequence[StateBar]) -> None:
    total = sum(s.count for s in states)
    ax.set_title(f"Đơn vị theo tình trạng ({total})", fontsize=10, family=FONT, loc="left")
    start = 0
    shown = [s for s in states if s.count > 0]
    for s in shown:
        colour = STATE_COLOURS.get(s.state, "#6b7280")
        ax.barh(0, s.count, left=start, color=colour, height=0.6, label=f"{s.label}: {s.count}")
        if total and s.count / total >= 0.06:
            ax.text(
                start + s.count / 2,
                0,
                str(s.count),
                ha="center",
                va="center",
                color="white",
                fontsize=9,
                fontweight="bold",
                family=FONT,
            )
        start += s.count
    ax.set_xlim(0, max(total, 1))
    ax.set_ylim(-0.5, 0.5)
    ax.axis("off")
    if shown:
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(0.0, 0.12),
            ncol=2,
            frameon=False,
            handlelength=1,
            columnspacing=0.8,
            prop={"family": FONT, "size": 7.5},
        )


def _days_panel(ax: Axes, per_day: Sequence[DayCount], last_day: date) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.set_title("Số lượt gửi biểu theo ngày", fontsize=10, family=FONT, loc="left")
    xs = list(range(len(per_day)))
    ax.bar(xs, [d.count for d in per_day], color="#1d4ed8", width=0.7)
    labels = [f"{d.day:%d/%m}" for d in per_day]
    step = max(1, (len(per_day) + 6) // 7)  # at most about seven dates under the axis
    ax.set_xticks(xs[::step], labels[::step], fontsize=7, family=FONT)
    ax.tick_params(axis="y", labelsize=7)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_xlim(-0.6, max(len(per_day), 1) - 0.4)
    ax.set_ylim(0, max([d.count for d in per_day] + [1]) * 1.25)
    days = [d.day for d in per_day]
    if last_day in days:
        x = days.index(last_day) + 0.5
        ax.axvline(x, color="#b91c1c", linewidth=1.2, linestyle="--")
        right_half = x > len(days) / 2
        label = f"Hạn {last_day:%d/%m} " if right_half else f" Hạn {last_day:%d/%m}"
        ax.text(
            x,
            ax.get_ylim()[1],
            label,
            color="#b91c1c",
            fontsize=7,
            va="top",
            ha="right" if right_half else "left",
            family=FONT,
        )
