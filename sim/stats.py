"""Interval estimates used across reports: Wilson intervals for probabilities, distribution-free
intervals for quantiles (from order statistics), and normal intervals for means.

All work from counts or histograms, so a run of any size is summarised in bounded memory.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))


EVENT_MISS = 1.0  # an event that did not happen as observed: about one standard deviation


def anscombe(x):
    """2·√(x + 3/8): under it a Poisson count has standard deviation about 1."""
    return 2.0 * np.sqrt(np.asarray(x, dtype=float) + 0.375)


def count_miss(x: float, lo: float, hi: float) -> float:
    """How far a count x lies outside its observed range [lo, hi] (hi may be inf) on the Anscombe
    scale: 0 inside, else the transformed distance to the nearer bound. The calibration's distance
    and a forecast's conditioning on history (`sim.engine.history`) both measure counts by it."""
    if lo <= x <= hi:
        return 0.0
    y = 2.0 * math.sqrt(x + 0.375)
    if x < lo:
        return 2.0 * math.sqrt(lo + 0.375) - y
    return y - 2.0 * math.sqrt(hi + 0.375)


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float, float]:
    """(estimate, lo, hi): the Wilson score interval for a binomial proportion."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Rounding can put a bound a hair past p at p = 0 or 1; the interval always contains p.
    return p, max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def mean_interval(total: float, total_sq: float, n: int, z: float = Z95) -> tuple[float, float, float]:
    """(mean, lo, hi): normal-approximation interval from a sum and a sum of squares."""
    if n <= 0:
        return math.nan, math.nan, math.nan
    mean = total / n
    if n == 1:
        return mean, math.nan, math.nan
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = z * math.sqrt(var / n)
    return mean, mean - half, mean + half


def quantile_ranks(n: int, q: float, level: float = 0.95) -> tuple[int, int]:
    """0-based ranks (lo, hi) of the order statistics that bracket the q-quantile with at least
    `level` coverage (the binomial construction; no distributional assumption)."""
    a = (1.0 - level) / 2.0
    lo = int(stats.binom.ppf(a, n, q)) - 1
    hi = int(stats.binom.ppf(1.0 - a, n, q))
    return max(lo, 0), min(hi, n - 1)


def inverted_cdf_rank(n: int, q: float) -> int:
    """The 0-based rank of the q-quantile of n values by numpy's "inverted_cdf" method (the same arithmetic, so the
    same order statistic): the smallest value with at least a share q of the values at or below it."""
    virtual = n * q - 1
    below = math.floor(virtual)
    return min(max(below + (virtual - below > 0), 0), n - 1)


class Histogram:
    """Counts of values on a fixed grid (integers, or multiples of `resolution`), from which
    exact (to the grid) quantiles and their order-statistic intervals follow. Only the grid
    points that occur are kept (`points`, ascending, and their `counts`), so a count of a
    billion costs no more memory than a count of ten."""

    def __init__(self, resolution: float = 1.0):
        self.resolution = resolution
        self.points = np.zeros(0, dtype=np.int64)
        self.counts = np.zeros(0, dtype=np.int64)
        self.n = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, values: np.ndarray) -> None:
        values = np.asarray(values)
        if values.dtype.kind in "iu" and self.resolution == 1.0:
            bins = values.astype(np.int64)  # exact, however large
            values = values.astype(float)
        else:
            values = values.astype(float)
            values = values[~np.isnan(values)]
            bins = np.rint(values / self.resolution).astype(np.int64)
        if values.size == 0:
            return
        points, counts = np.unique(bins, return_counts=True)
        if points[0] < 0:
            raise ValueError("histogram values must be non-negative")
        self._combine(points, counts)
        self.n += int(values.size)
        self.total += float(values.sum())
        self.total_sq += float(np.square(values).sum())

    def _combine(self, points: np.ndarray, counts: np.ndarray) -> None:
        if self.points.size:
            points, where = np.unique(np.concatenate([self.points, points]), return_inverse=True)
            merged = np.zeros(points.size, dtype=np.int64)
            np.add.at(merged, where, np.concatenate([self.counts, counts]))
            counts = merged
        self.points, self.counts = points, counts.astype(np.int64)

    def merge(self, other: Histogram) -> None:
        self._combine(other.points, other.counts)
        self.n += other.n
        self.total += other.total
        self.total_sq += other.total_sq

    def value_at_rank(self, rank: int) -> float:
        """The value of the order statistic of 0-based `rank`."""
        cumulative = np.cumsum(self.counts)
        return float(self.points[np.searchsorted(cumulative, rank, side="right")]) * self.resolution

    def quantile(self, q: float, method: str = "linear") -> tuple[float, float, float]:
        """(estimate, lo, hi): the q-quantile and its 95% distribution-free interval. `method` as numpy's:
        "linear" interpolates between order statistics (for days), "inverted_cdf" is the order statistic itself, the
        smallest value with at least a share q at or below it (for counts, whose quantiles are then counts)."""
        n = self.n
        if n == 0:
            return math.nan, math.nan, math.nan
        cumulative = np.cumsum(self.counts)

        def at(rank: int) -> float:
            return float(self.points[np.searchsorted(cumulative, rank, side="right")]) * self.resolution

        if method == "inverted_cdf":
            estimate = at(inverted_cdf_rank(n, q))
        elif method == "linear":
            h = (n - 1) * q
            below = math.floor(h)
            estimate = at(below) + (h - below) * (at(min(below + 1, n - 1)) - at(below))
        else:
            raise ValueError(f"unknown quantile method {method!r}")
        lo_rank, hi_rank = quantile_ranks(n, q)
        return estimate, at(lo_rank), at(hi_rank)

    def mean(self) -> tuple[float, float, float]:
        """(mean, lo, hi) with a normal interval; the values are non-negative, so is its lower end."""
        mean, lo, hi = mean_interval(self.total, self.total_sq, self.n)
        return mean, max(lo, 0.0), hi
