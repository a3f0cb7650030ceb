"""Several models or one long description: let the TỔNG row decide how a listed cell reads."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from parsers.grid import Cell
from parsers.model import FIELDS, Entry, Totals

# Beyond this many listed cells in one group only "all split" and "none split" are tried.
_MAX_SUBSET_CELLS = 12


@dataclass(frozen=True)
class Listed:
    """A field cell whose lines are numbered or bulleted, read as `count` models."""

    field: str
    cell: Cell
    start: int  # index of its first entry in the body's entries
    count: int


@dataclass(frozen=True)
class Decision:
    """Which listed cells stay split, and which ones the TỔNG could not settle (and why)."""

    split: tuple[bool, ...]
    unsettled: tuple[tuple[int, str], ...]  # (index, "neither" | "several")


def decide(
    listed: Sequence[tuple[str, int]], counts: Mapping[str, int], totals: Totals
) -> Decision:
    """Choose, for each listed cell (field, item count), a list of models or one model.

    `counts` are the entries per field with every listed cell split (today's reading). A
    field's TỔNG figure decides its own cells; cells in fields without a figure are decided
    together by the grand total. Where the TỔNG is silent the cells stay split; where no
    choice matches it, or several do, they stay split and are reported.
    """
    split = [True] * len(listed)
    unsettled: list[tuple[int, str]] = []
    by_total: list[int] = []
    for fld in FIELDS:
        group = [i for i, (f, _) in enumerate(listed) if f == fld]
        declared = totals.get(fld)
        if not group:
            continue
        if declared is None:
            by_total.extend(group)
            continue
        _settle(group, listed, counts.get(fld, 0), declared, split, unsettled)
    if by_total and totals.all is not None:
        current = sum(counts.values()) - sum(
            n - 1 for i, (_, n) in enumerate(listed) if not split[i]
        )
        _settle(by_total, listed, current, totals.all, split, unsettled)
    return Decision(tuple(split), tuple(sorted(unsettled)))


def _settle(
    group: list[int],
    listed: Sequence[tuple[str, int]],
    counted: int,
    declared: int,
    split: list[bool],
    unsettled: list[tuple[int, str]],
) -> None:
    """Mark the group's cells to keep whole so that `counted` becomes `declared`, if one way."""
    excess = counted - declared
    if excess == 0:
        return
    subsets: Iterable[tuple[int, ...]] = [tuple(group)]
    if len(group) <= _MAX_SUBSET_CELLS:
        subsets = (s for k in range(1, len(group) + 1) for s in itertools.combinations(group, k))
    matches = [s for s in subsets if sum(listed[i][1] - 1 for i in s) == excess]
    if len(matches) == 1:
        for i in matches[0]:
            split[i] = False
        return
    reason = "several" if matches else "neither"
    unsettled.extend((i, reason) for i in group)


def apply(entries: list[Entry], listed: Sequence[Listed], decision: Decision) -> list[Entry]:
    """The entries with every listed cell kept whole where the decision says so."""
    whole = {
        item.start: item
        for item, keep_split in zip(listed, decision.split, strict=True)
        if not keep_split
    }
    if not whole:
        return entries
    out: list[Entry] = []
    i = 0
    while i < len(entries):
        item = whole.get(i)
        if item is None:
            out.append(entries[i])
            i += 1
            continue
        out.append(replace(entries[i], model=item.cell.text))
        i += item.count
    return out


__all__ = ["Decision", "Listed", "apply", "decide"]
