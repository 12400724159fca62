"""Sensitivity indices of a sweep's outputs, with 95% intervals: the rows of `sensitivity.csv`.

One row per output, parameter and index: `output, parameter, index, estimate, lo, hi`.

- `sobol`: first-order `S1`, total `ST` and second-order `S2` (parameter "a:b") from SALib,
  with bootstrap intervals;
- `morris`: `mu`, `mu_star` (bootstrap interval) and `sigma` of the elementary effects, per
  unit of the parameter's range (log range on a log scale);
- `lhs`: partial rank correlation coefficients `prcc`, with Fisher-z intervals;
- `oat`: the output `at_low` and `at_high` of each range (the points' Monte Carlo intervals) and
  the `swing` between them (an interval from both points' errors, conservative, since common
  random numbers correlate the two estimates positively);
- `grid`: each parameter's `main_effect` share of the variance over the grid (the variance of
  its marginal means), corrected for the points' Monte Carlo noise, with an interval from a
  parametric bootstrap of that noise.

Like the designs, this sees arrays only, so the tests check it on analytic functions.

SALib gives the Sobol and Morris estimates; their bootstrap intervals are computed here, from
the same random draws as SALib's (so the same numbers, to rounding), but a block of resamples
at a time: SALib holds its whole resample matrix and several gathered copies of it, points ×
resamples values (about 750 MB at 10^5 Sobol points), where this holds a block.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from sim.stats import Z95
from sim.sweeps.designs import DesignPoints, design_seed

COLUMNS = ["output", "parameter", "index", "estimate", "lo", "hi"]
RESAMPLES = 1000
BLOCK_VALUES = 2**18  # resampled values gathered at a time by a bootstrap (bounds its memory)
EPS = np.finfo(float).eps


def analyze(design: DesignPoints, outputs: dict[str, np.ndarray],
            intervals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
            *, seed: int = 0, second_order: bool = True, levels: int = 4) -> pd.DataFrame:
    """Indices of every output (values per design point, in design order) for the design's kind.

    `intervals` are the points' 95% Monte Carlo intervals (lo, hi); None for exact functions."""
    rows: list[tuple] = []
    for name, y in outputs.items():
        y = np.asarray(y, dtype=float)
        lo, hi = (y, y) if intervals is None else (np.asarray(a, dtype=float) for a in intervals[name])
        match design.kind:
            case "sobol":
                found = _sobol(design, y, seed, second_order)
            case "morris":
                found = _morris(design, y, seed, levels)
            case "lhs":
                found = _prcc(design, y)
            case "oat":
                found = _oat(design, y, lo, hi)
            case "grid":
                found = _grid(design, y, (hi - lo) / 2, seed)
            case _:
                raise ValueError(design.kind)
        rows += [(name, *row) for row in found]
    return pd.DataFrame(rows, columns=COLUMNS)


def _constant(y: np.ndarray) -> bool:
    return not np.isfinite(y).all() or float(np.var(y)) == 0.0


def _sobol(design: DesignPoints, y: np.ndarray, seed: int, second_order: bool) -> list[tuple]:
    names = design.names
    if _constant(y):
        rows = [(p, i, math.nan, math.nan, math.nan) for i in ("S1", "ST") for p in names]
        return rows + ([(f"{a}:{b}", "S2", math.nan, math.nan, math.nan)
                        for k, a in enumerate(names) for b in names[k + 1:]] if second_order else [])
    from SALib.analyze import sobol

    # SALib's estimates (its own bootstrap cut to two resamples), our blocked bootstrap's intervals.
    si = sobol.analyze(design.problem(), y, calc_second_order=second_order, num_resamples=2,
                       conf_level=0.95, seed=_int_seed(seed))
    conf = sobol_half_widths(y, len(names), second_order, RESAMPLES, _int_seed(seed))
    rows = []
    for index in ("S1", "ST"):
        for j, p in enumerate(names):
            est, half = float(si[index][j]), float(conf[index][j])
            rows.append((p, index, est, est - half, est + half))
    if second_order:
        for a in range(len(names)):
            for b in range(a + 1, len(names)):
                est, half = float(si["S2"][a, b]), float(conf["S2"][a, b])
                rows.append((f"{names[a]}:{names[b]}", "S2", est, est - half, est + half))
    return rows


def sobol_half_widths(y: np.ndarray, d: int, second_order: bool, resamples: int, seed: int,
                      block: int = BLOCK_VALUES) -> dict[str, np.ndarray]:
    """SALib's bootstrap half-widths of S1, ST and S2 (z · the standard deviation of the
    estimates over `resamples` resamples of the N base rows, drawn as SALib draws them: an
    (N, resamples) matrix of row indices from `default_rng(seed)`), accumulated over blocks of
    the matrix's rows, so memory does not grow with N."""
    y = (y - y.mean()) / y.std()
    step = 2 * d + 2 if second_order else d + 2
    n = y.size // step
    a, b = y[0::step], y[step - 1::step]
    ab = np.column_stack([y[j + 1::step] for j in range(d)])
    ba = np.column_stack([y[j + 1 + d::step] for j in range(d)]) if second_order else None
    draw = np.random.default_rng(seed).integers
    # Sums over the N resampled rows, one per resample.
    total, squares = np.zeros(resamples), np.zeros(resamples)
    first, whole = np.zeros((d, resamples)), np.zeros((d, resamples))
    pairs = np.zeros((d, d, resamples))
    low, high = math.inf, -math.inf
    rows = max(1, block // (resamples * (d + 2)))
    for start in range(0, n, rows):
        r = draw(n, size=(min(rows, n - start), resamples))
        ar, br, abr = a[r], b[r], ab[r]
        low, high = min(low, ar.min(), br.min()), max(high, ar.max(), br.max())
        total += ar.sum(axis=0) + br.sum(axis=0)
        squares += (ar * ar).sum(axis=0) + (br * br).sum(axis=0)
        for j in range(d):
            first[j] += (br * (abr[..., j] - ar)).sum(axis=0)
            whole[j] += ((ar - abr[..., j]) ** 2).sum(axis=0)
        if second_order:
            bar = ba[r]
            both = (ar * br).sum(axis=0)
            for j in range(d):
                for k in range(j + 1, d):
                    pairs[j, k] += (bar[..., j] * abr[..., k]).sum(axis=0) - both
    # As SALib: each resample's estimates over the variance of its 2N values; all zero when the
    # resampled values do not vary at all.
    mean = total / (2 * n)
    var = squares / (2 * n) - mean * mean
    flat = high - low <= EPS

    def share(sums: np.ndarray) -> np.ndarray:
        if flat:
            return np.zeros(resamples)
        return np.divide(sums / n, var, out=np.zeros(resamples), where=var > EPS)

    z = float(stats.norm.ppf(0.5 + 0.95 / 2))
    s1 = np.array([share(first[j]) for j in range(d)])
    st = np.array([0.5 * share(whole[j]) for j in range(d)])
    varies = high - low != 0.0
    conf = {"S1": np.array([z * s1[j].std(ddof=1) if varies else 0.0 for j in range(d)]),
            "ST": np.array([z * st[j].std(ddof=1) if varies else 0.0 for j in range(d)])}
    if second_order:
        s2 = np.full((d, d), np.nan)
        for j in range(d):
            for k in range(j + 1, d):
                s2[j, k] = z * (share(pairs[j, k]) - s1[j] - s1[k]).std(ddof=1)
        conf["S2"] = s2
    return conf


def _morris(design: DesignPoints, y: np.ndarray, seed: int, levels: int) -> list[tuple]:
    from SALib.analyze import morris

    if not np.isfinite(y).all():
        return [(p, i, math.nan, math.nan, math.nan) for i in ("mu", "mu_star", "sigma") for p in design.names]
    # SALib's estimates (its own bootstrap cut to two resamples), our blocked bootstrap's intervals.
    si = morris.analyze(design.problem(), design.unit, y, num_resamples=2, conf_level=0.95,
                        num_levels=levels, seed=_int_seed(seed))
    conf = morris_half_widths(design.unit, y, levels, RESAMPLES, _int_seed(seed))
    rows = []
    for j, p in enumerate(design.names):
        rows.append((p, "mu", float(si["mu"][j]), math.nan, math.nan))
        star, half = float(si["mu_star"][j]), float(conf[j])
        rows.append((p, "mu_star", star, star - half, star + half))
        rows.append((p, "sigma", float(si["sigma"][j]), math.nan, math.nan))
    return rows


def elementary_effects(unit: np.ndarray, y: np.ndarray, levels: int) -> np.ndarray:
    """(parameters, trajectories): as SALib computes them, the output where the parameter's step
    ends higher minus where it ends lower, over the step Δ = levels / (2 (levels − 1))."""
    t, d = len(y) // (unit.shape[1] + 1), unit.shape[1]
    x = unit.reshape(t, d + 1, d)
    out = y.reshape(t, d + 1)
    step = np.diff(x, axis=1)  # (t, d steps, d parameters): one parameter moves per step
    moved = np.argmax(step != 0, axis=2)
    up = np.take_along_axis(step, moved[..., None], axis=2)[..., 0] > 0
    after, before = out[:, 1:], out[:, :-1]
    high, low = np.where(up, after, before), np.where(up, before, after)
    ee = np.zeros((d, t))
    rows = np.arange(t)[:, None]
    ee[moved, rows] = (high - low) / (levels / (2.0 * (levels - 1)))
    return ee


def morris_half_widths(unit: np.ndarray, y: np.ndarray, levels: int, resamples: int, seed: int,
                       block: int = BLOCK_VALUES) -> np.ndarray:
    """SALib's bootstrap half-widths of μ* (z · the standard deviation of μ* over `resamples`
    resamples of the trajectories, drawn as SALib draws them from `default_rng(seed)`),
    computed a block of resamples at a time, so memory does not grow with the trajectories."""
    ee = elementary_effects(unit, y, levels)
    draw = np.random.default_rng(seed).integers
    z = float(stats.norm.ppf(0.5 + 0.95 / 2))
    t = ee.shape[1]
    rows = max(1, block // t)
    conf = np.zeros(ee.shape[0])
    for j in range(ee.shape[0]):
        star = np.concatenate([np.average(np.abs(ee[j][draw(t, size=(min(rows, resamples - start), t))]), axis=1)
                               for start in range(0, resamples, rows)])
        conf[j] = z * star.std(ddof=1)
    return conf


def prcc(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Partial rank correlation of y with each column of x, and 95% Fisher-z intervals."""
    n, d = x.shape
    ranks = np.column_stack([stats.rankdata(x[:, j]) for j in range(d)])
    ry = stats.rankdata(y)
    est = np.full(d, np.nan)
    for j in range(d):
        others = np.column_stack([np.ones(n), np.delete(ranks, j, axis=1)])
        res_x = ranks[:, j] - others @ np.linalg.lstsq(others, ranks[:, j], rcond=None)[0]
        res_y = ry - others @ np.linalg.lstsq(others, ry, rcond=None)[0]
        denom = math.sqrt(float(res_x @ res_x) * float(res_y @ res_y))
        est[j] = float(res_x @ res_y) / denom if denom > 0 else np.nan
    half = Z95 / math.sqrt(max(n - d - 2, 1))
    z = np.arctanh(np.clip(est, -0.999999, 0.999999))
    return est, np.tanh(z - half), np.tanh(z + half)


def _prcc(design: DesignPoints, y: np.ndarray) -> list[tuple]:
    est, lo, hi = prcc(design.unit, y)
    return [(p, "prcc", float(est[j]), float(lo[j]), float(hi[j])) for j, p in enumerate(design.names)]


def _oat(design: DesignPoints, y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[tuple]:
    rows = []
    hw = (hi - lo) / 2
    for j, p in enumerate(design.names):
        column = design.unit[:, j]
        low = int(np.flatnonzero(column == 0.0)[0])
        high = int(np.flatnonzero(column == 1.0)[0])
        rows.append((p, "at_low", y[low], lo[low], hi[low]))
        rows.append((p, "at_high", y[high], lo[high], hi[high]))
        swing, half = y[high] - y[low], math.hypot(hw[low], hw[high])
        rows.append((p, "swing", swing, swing - half, swing + half))
    return rows


def main_effects(unit: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per column: the variance of y's means over the column's levels, over y's variance."""
    total = float(np.var(y))
    out = np.full(unit.shape[1], np.nan)
    if total == 0.0:
        return out
    for j in range(unit.shape[1]):
        levels, where = np.unique(unit[:, j], return_inverse=True)
        means = np.bincount(where, weights=y) / np.bincount(where)
        out[j] = float(np.var(means[where])) / total
    return out


def _grid(design: DesignPoints, y: np.ndarray, hw: np.ndarray, seed: int) -> list[tuple]:
    """Main effects corrected for the points' Monte Carlo noise, which inflates the variance
    and pulls the shares down: a parametric bootstrap adds that noise again, and the estimate
    and its interval are reflected about the bootstrap (2·est − mean, [2·est − q97.5,
    2·est − q2.5]; the basic bootstrap), clipped to [0, 1]."""
    est = main_effects(design.unit, y)
    se = hw / Z95
    if np.isnan(est).all() or not np.any(se > 0):
        return [(p, "main_effect", float(est[j]), float(est[j]), float(est[j])) for j, p in enumerate(design.names)]
    rng = design_seed(seed)
    draws = np.array([main_effects(design.unit, y + rng.standard_normal(len(y)) * se) for _ in range(RESAMPLES)])
    q_lo, q_hi = np.nanpercentile(draws, 2.5, axis=0), np.nanpercentile(draws, 97.5, axis=0)
    corrected = np.clip(2 * est - np.nanmean(draws, axis=0), 0.0, 1.0)
    lo, hi = np.clip(2 * est - q_hi, 0.0, 1.0), np.clip(2 * est - q_lo, 0.0, 1.0)
    return [(p, "main_effect", float(corrected[j]), float(lo[j]), float(hi[j])) for j, p in enumerate(design.names)]


def _int_seed(seed: int) -> int:
    return int(np.random.SeedSequence(seed).generate_state(1)[0])
