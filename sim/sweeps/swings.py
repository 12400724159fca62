"""One-at-a-time swings with paired intervals: the output at a parameter's high end minus the output
at its low end, from the per-trial outputs at both ends of the same trials.

Every point of a sweep runs trials 0 … M−1 with the same random streams (common random numbers),
so trial i at the low end and trial i at the high end are a pair, as the arms of `escsim compare`
are, and the swing's interval is compare's paired interval (`sim.comparison.stats`): Newcombe's
paired interval for probabilities, the paired t interval for means, a paired bootstrap for
quantiles. An output that is the same in every trial at both ends (a parameter that does not touch
it) swings by exactly 0, with interval [0, 0]; the unpaired interval (both points' Monte Carlo
errors added) stays only where no per-trial outputs exist (a median first-passage day, which is a
median over different trials at each end).

The workers keep the per-trial outputs of the design's end points only (`end_points`): a vector of
trials per end point and output, not per point of the design.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

import numpy as np

from sim.comparison import stats
from sim.runs.layout import RunLayout
from sim.runs.summary import QUANTILES, day_label

IDENTICAL = "identical in every trial"
NEWCOMBE = "Newcombe paired (method 10)"
PAIRED_T = "paired t"
BOOTSTRAP = "paired bootstrap"
UNPAIRED = "both points' Monte Carlo errors (unpaired)"
BOOTSTRAP_RESAMPLES = 2000

Extract = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def end_points(unit: np.ndarray) -> list[tuple[int, int]]:
    """(low, high) design indices of each parameter of a one-at-a-time design: the first point with
    the parameter at 0 and the first with it at 1 of its unit range."""
    return [(int(np.flatnonzero(unit[:, j] == 0.0)[0]), int(np.flatnonzero(unit[:, j] == 1.0)[0]))
            for j in range(unit.shape[1])]


def end_mask(unit: np.ndarray) -> np.ndarray:
    """Which design points are an end of some parameter's range (their per-trial outputs are kept)."""
    keep = np.zeros(len(unit), dtype=bool)
    for low, high in end_points(unit):
        keep[[low, high]] = True
    return keep


def extractors(layout: RunLayout) -> dict[str, tuple[str, Extract]]:
    """Each `summary.csv` metric's kind and how to read its per-trial value from a chunk's arrays
    (milestone_days, max_rung, totals): the metric names of `Summary.table`."""
    found: dict[str, tuple[str, Extract]] = {}
    for j, name in enumerate(layout.milestones):
        found[f"p_{name}"] = ("probability", lambda t, r, c, j=j: ~np.isnan(t[:, j]))
        for d in layout.by_days:
            found[f"p_{name}_by_{day_label(d)}d"] = ("probability", lambda t, r, c, j=j, d=d: np.nan_to_num(t[:, j], nan=np.inf) <= d)
        for month, end in zip(layout.months, layout.month_ends, strict=True):
            found[f"p_{name}_by_{month}"] = ("probability", lambda t, r, c, j=j, e=end: np.nan_to_num(t[:, j], nan=np.inf) < e)
        found[f"median_t_{name}"] = ("median", lambda t, r, c, j=j: t[:, j])
    for k, name in enumerate(layout.series):
        found[f"mean_{name}"] = ("mean", lambda t, r, c, k=k: c[:, k])
        for q in QUANTILES:
            found[f"q{round(q * 100):02d}_{name}"] = ("quantile", lambda t, r, c, k=k: c[:, k])
    found["mean_max_rung"] = ("mean", lambda t, r, c: r)
    return found


def trial_values(layout: RunLayout, outputs: Sequence[str], milestone_days: np.ndarray, max_rung: np.ndarray,
                 totals: np.ndarray) -> np.ndarray:
    """(outputs, trials): each output's value in each trial of a chunk (a probability's as 0/1)."""
    table = extractors(layout)
    return np.stack([np.asarray(table[o][1](milestone_days, max_rung, totals), dtype=float) for o in outputs])


def kind(output: str) -> str:
    """probability, mean, quantile or median, from a `summary.csv` metric's name."""
    if output.startswith("p_"):
        return "probability"
    if output.startswith("median_t_"):
        return "median"
    if re.fullmatch(r"q\d\d_.+", output):
        return "quantile"
    return "mean"


def paired_swing(output: str, low: np.ndarray, high: np.ndarray, *, seed: int = 0) -> tuple[float, float, float, str]:
    """(estimate, lo, hi, method) of high − low over paired per-trial values of one output."""
    if np.array_equal(low, high, equal_nan=True):
        return 0.0, 0.0, 0.0, IDENTICAL
    match kind(output):
        case "probability":
            i = stats.paired_proportion_difference(low > 0.5, high > 0.5)
            method = NEWCOMBE
        case "mean":
            i = stats.paired_mean_difference(low, high)
            method = PAIRED_T
        case "quantile":
            q = int(re.match(r"q(\d\d)_", output)[1]) / 100
            i = stats.paired_bootstrap_difference(low, high, lambda v, axis=None: np.quantile(v, q, axis=axis),
                                                  resamples=BOOTSTRAP_RESAMPLES, seed=seed, vectorized=True)
            method = BOOTSTRAP
        case _:
            return math.nan, math.nan, math.nan, UNPAIRED
    return i.estimate, i.lo, i.hi, method


def unpaired_swing(low: tuple[float, float, float], high: tuple[float, float, float]) -> tuple[float, float, float]:
    """(estimate, lo, hi) of high − low from each end's estimate and 95% interval alone: their
    half-widths added in quadrature, as if the two ends were independent (wider than paired under
    common random numbers)."""
    swing = high[0] - low[0]
    half = math.hypot((low[2] - low[1]) / 2, (high[2] - high[1]) / 2)
    return swing, swing - half, swing + half


class TrialStore:
    """The per-trial outputs of the end points, gathered from the finished tasks in the main process:
    (outputs, trials) per end point."""

    def __init__(self):
        self.values: dict[int, np.ndarray] = {}

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        if "kept" in arrays:
            for point, values in zip(arrays["kept"].tolist(), arrays["trials"], strict=True):
                self.values[int(point)] = np.asarray(values, dtype=float)

    def get(self, point: int, output: int) -> np.ndarray | None:
        values = self.values.get(point)
        return None if values is None else values[output]
