"""Counts a trial keeps: totals per series, and per calendar month for the monthly series.

Series are named in the domain's words: `attacks_on_<target>`, `hits_on_<target>`,
`casualties_on_<target>`, `deaths_on_<target>`, `attacks_by_<militia>`,
`strikes_by_<state>`. Days are counted from the scenario's start date; months are calendar
months (the first and last may be partial).
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right

MONTHLY_PREFIXES = ("attacks_on_", "hits_on_", "attacks_by_", "strikes_by_")


def month_edges(start: dt.date, horizon_days: float) -> tuple[list[str], list[float]]:
    """Month labels (YYYY-MM) touched by [start, start + horizon) and the day offsets at which
    the second and later months begin."""
    labels = [f"{start.year:04d}-{start.month:02d}"]
    edges: list[float] = []
    year, month = start.year, start.month
    while True:
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        offset = float((dt.date(year, month, 1) - start).days)
        if offset >= horizon_days:
            return labels, edges
        labels.append(f"{year:04d}-{month:02d}")
        edges.append(offset)


def series_names(targets: list[str], militias: list[str], strikers: list[str]) -> list[str]:
    names = []
    for t in targets:
        names += [f"attacks_on_{t}", f"hits_on_{t}", f"casualties_on_{t}", f"deaths_on_{t}"]
    names += [f"attacks_by_{m}" for m in militias]
    names += [f"strikes_by_{s}" for s in strikers]
    return names


class TallyLayout:
    """What every trial's tally shares: series names and indices, months and their edges, and
    which series are kept by month."""

    __slots__ = ("names", "index", "months", "edges", "monthly_of", "is_monthly")

    def __init__(self, names: list[str], months: list[str], edges: list[float]):
        self.names = names
        self.index = {n: i for i, n in enumerate(names)}
        self.months = months
        self.edges = edges
        self.monthly_of = [j for j, n in enumerate(names) if n.startswith(MONTHLY_PREFIXES)]
        monthly = set(self.monthly_of)
        self.is_monthly = [j in monthly for j in range(len(names))]


class Tally:
    """Counts of one trial. A monthly series is kept only by month (its total is the sum);
    the others only as totals. `add(series_index, now, amount)` records either kind."""

    __slots__ = ("names", "index", "counts", "monthly", "monthly_of", "edges", "months")

    def __init__(self, layout: TallyLayout):
        self.names, self.index, self.months = layout.names, layout.index, layout.months
        self.edges, self.monthly_of = layout.edges, layout.monthly_of
        self.counts = [0] * len(layout.names)
        n = len(layout.months)
        self.monthly = [[0] * n if monthly else None for monthly in layout.is_monthly]

    def add(self, series: int, now: float, amount: int = 1) -> None:
        row = self.monthly[series]
        if row is None:
            self.counts[series] += amount
        else:
            row[bisect_right(self.edges, now)] += amount

    def totals(self) -> list[int]:
        return [c if row is None else sum(row) for c, row in zip(self.counts, self.monthly, strict=True)]

    def monthly_counts(self) -> list[list[int]]:
        """[series][month] for the monthly series, in the order of `names`."""
        return [self.monthly[j] for j in self.monthly_of]
