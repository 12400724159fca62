"""Sensitivity indices of a sweep's outputs, with 95% intervals: the rows of `sensitivity.csv`.

One row per output, parameter and index: `output, parameter, index, estimate, lo, hi`.

- `sobol`: first-order `S1`, total `ST` and second-order `S2` (parameter "a:b") from SALib,
  with bootstrap intervals;
- `morris`: `mu`, `mu_star` (bootstrap interval) and `sigma` of the elementary effects, per
  unit of the parameter's range (log range on a log scale);
- `lhs`: partial rank correlation coefficients `prcc`, with Fisher-z intervals;
- `oat`: the output `at_low` and `at_high` of each range (the points' Monte Carlo intervals) and
  the `swing` between them, with a paired interval over the same trials at both ends
  (`sim.sweeps.swings`: exactly [0, 0] where no trial changed);
- `grid`: each parameter's `main_effect` share of the variance over the grid (the variance of
  its marginal means), corrected for the points' Monte Carlo noise, with an interval from a
  parametric bootstrap of that noise.

Two more columns: `interval`, how the row's interval was computed, and `note`: an output that is
constant over the design, a Sobol size or Morris trajectory count too small for its intervals, an
S1/ST interval wider than 0.5.

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

COLUMNS = ["output", "parameter", "index", "estimate", "lo", "hi", "interval", "note"]
RESAMPLES = 1000
BLOCK_VALUES = 2**18  # resampled values gathered at a time by a bootstrap (bounds its memory)
EPS = np.finfo(float).eps

# The notes of `sensitivity.csv` (its `note` column), repeated by the console and the report.
CONSTANT = "constant over the design"
UNDEFINED_AT_SOME = "not a finite number at every point"
SOBOL_MIN_N = 64
SOBOL_MAX_WIDTH = 0.5
MORRIS_MIN_TRAJECTORIES = 8
WIDE = f"interval wider than {SOBOL_MAX_WIDTH:g}: N too small for it"
# How each index's interval is computed: the `interval` column.
METHODS = {"S1": "bootstrap", "ST": "bootstrap", "S2": "bootstrap", "mu_star": "bootstrap", "prcc": "Fisher z",
           "main_effect": "parametric bootstrap"}
POINT_METHODS = {"probability": "Wilson", "mean": "normal", "quantile": "order statistics",
                 "median": "order statistics"}


def sobol_size(design: DesignPoints, second_order: bool) -> int:
    """N, the base samples of a Saltelli design."""
    d = len(design.names)
    return design.size // (2 * d + 2 if second_order else d + 2)


def morris_trajectories(design: DesignPoints) -> int:
    return design.size // (len(design.names) + 1)


def design_note(design: DesignPoints, second_order: bool = True) -> str:
    """A warning that applies to every index of the design (too few samples for its intervals), or ''."""
    if design.kind == "sobol" and (n := sobol_size(design, second_order)) < SOBOL_MIN_N:
        return (f"Sobol N = {n} is below {SOBOL_MIN_N}: too small for its bootstrap intervals "
                f"(use N >= {SOBOL_MIN_N})")
    if design.kind == "morris" and (t := morris_trajectories(design)) < MORRIS_MIN_TRAJECTORIES:
        return (f"{t} Morris trajectories, fewer than {MORRIS_MIN_TRAJECTORIES}: mu_star's interval and sigma are "
                f"unreliable (use {MORRIS_MIN_TRAJECTORIES} or more)")
    return ""


def analyze(design: DesignPoints, outputs: dict[str, np.ndarray],
            intervals: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
            *, seed: int = 0, second_order: bool = True, levels: int = 4,
            trials: dict[str, dict[int, np.ndarray | None]] | None = None) -> pd.DataFrame:
    """Indices of every output (values per design point, in design order) for the design's kind.

    `intervals` are the points' 95% Monte Carlo intervals (lo, hi); None for exact functions.
    `trials` (one-at-a-time designs) holds each output's per-trial values at the end points, by
    design index, for the swings' paired intervals; without them a swing's interval is unpaired.

    An output that is the same at every point is `constant over the design` (its `note`): its
    indices are not defined (NaN) where they are shares of its variance or correlations (S1, ST,
    S2, PRCC, main effects), zero where they are changes (Morris, swings)."""
    rows: list[tuple] = []
    warning = design_note(design, second_order)
    for name, y in outputs.items():
        y = np.asarray(y, dtype=float)
        lo, hi = (y, y) if intervals is None else (np.asarray(a, dtype=float) for a in intervals[name])
        finite = bool(np.isfinite(y).all())
        constant = finite and y.size > 0 and float(y.max()) == float(y.min())
        note = CONSTANT if constant else "" if finite else UNDEFINED_AT_SOME
        match design.kind:
            case "sobol":
                found = _sobol(design, y, seed, second_order, constant or not finite)
            case "morris":
                found = _morris(design, y, seed, levels, constant, finite)
            case "lhs":
                found = _prcc(design, y, constant or not finite)
            case "oat":
                found = _oat(design, name, y, lo, hi, None if trials is None else trials.get(name), seed,
                             exact=intervals is None)
            case "grid":
                found = _grid(design, y, (hi - lo) / 2, seed, constant or not finite)
            case _:
                raise ValueError(design.kind)
        for row in found:
            parameter, index, est, low, high, *method = row
            method = method[0] if method else METHODS.get(index, "")
            notes = [note] if note else []
            if warning and design.kind in ("sobol", "morris"):
                notes.append(warning)
            if (design.kind == "sobol" and index in ("S1", "ST") and math.isfinite(low) and math.isfinite(high)
                    and high - low > SOBOL_MAX_WIDTH):
                notes.append(WIDE)
            rows.append((name, parameter, index, est, low, high, method if math.isfinite(low) else "",
                         "; ".join(notes)))
    return pd.DataFrame(rows, columns=COLUMNS)


def design_warnings(table: pd.DataFrame) -> list[str]:
    """What the notes of `sensitivity.csv` warn of, once each: the design's size, and how many
    intervals are too wide for which outputs (a constant output is said where it is shown)."""
    notes = table["note"].fillna("").astype(str) if "note" in table else pd.Series([], dtype=str)
    found: list[str] = []
    for text in notes:
        for part in filter(None, text.split("; ")):
            if part not in (CONSTANT, UNDEFINED_AT_SOME, WIDE) and part not in found:
                found.append(part)
    wide = table[notes.str.contains(WIDE, regex=False)] if len(notes) else table.iloc[:0]
    if len(wide):
        outputs = list(dict.fromkeys(wide["output"]))
        found.append(f"{len(wide)} Sobol S1/ST intervals are wider than {SOBOL_MAX_WIDTH:g} "
                     f"({', '.join(outputs)}): the design is too small for them; use a larger N")
    return found


def constant_outputs(table: pd.DataFrame) -> list[str]:
    """The outputs that `sensitivity.csv` notes as constant over the design."""
    if "note" not in table:
        return []
    notes = table["note"].fillna("").astype(str)
    return list(dict.fromkeys(table.loc[notes.str.split("; ").map(lambda n: CONSTANT in n), "output"]))


def _constant(y: np.ndarray) -> bool:
    return not np.isfinite(y).all() or float(np.var(y)) == 0.0


def _sobol(design: DesignPoints, y: np.ndarray, seed: int, second_order: bool, undefined: bool) -> list[tuple]:
    names = design.names
    if undefined or _constant(y):
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


def _morris(design: DesignPoints, y: np.ndarray, seed: int, levels: int, constant: bool, finite: bool) -> list[tuple]:
    from SALib.analyze import morris

    if not finite:
        return [(p, i, math.nan, math.nan, math.nan) for i in ("mu", "mu_star", "sigma") for p in design.names]
    if constant:  # every elementary effect is exactly 0
        return [row for p in design.names
                for row in ((p, "mu", 0.0, math.nan, math.nan), (p, "mu_star", 0.0, 0.0, 0.0, ""),
                            (p, "sigma", 0.0, math.nan, math.nan))]
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


def _prcc(design: DesignPoints, y: np.ndarray, undefined: bool) -> list[tuple]:
    if undefined:  # no ranks to correlate: not 0, not a number
        return [(p, "prcc", math.nan, math.nan, math.nan) for p in design.names]
    est, lo, hi = prcc(design.unit, y)
    return [(p, "prcc", float(est[j]), float(lo[j]), float(hi[j])) for j, p in enumerate(design.names)]


def _oat(design: DesignPoints, output: str, y: np.ndarray, lo: np.ndarray, hi: np.ndarray,
         trials: dict[int, np.ndarray | None] | None, seed: int, *, exact: bool) -> list[tuple]:
    """At each parameter's low and high end, and the swing between them: paired over the trials
    where the per-trial outputs are at hand (`sim.sweeps.swings`), else from both ends' intervals."""
    from sim.sweeps import swings

    point = "" if exact else POINT_METHODS[swings.kind(output)]
    rows = []
    for p, (low, high) in zip(design.names, swings.end_points(design.unit), strict=True):
        rows.append((p, "at_low", y[low], lo[low], hi[low], point))
        rows.append((p, "at_high", y[high], lo[high], hi[high], point))
        swing, s_lo, s_hi = swings.unpaired_swing((y[low], lo[low], hi[low]), (y[high], lo[high], hi[high]))
        method = "" if exact else swings.UNPAIRED
        a, b = (None, None) if trials is None else (trials.get(low), trials.get(high))
        if a is not None and b is not None:
            _, p_lo, p_hi, paired = swings.paired_swing(output, a, b, seed=seed)
            if paired != swings.UNPAIRED:
                s_lo, s_hi, method = p_lo, p_hi, paired
                if paired == swings.IDENTICAL:
                    swing = 0.0
        rows.append((p, "swing", swing, s_lo, s_hi, method))
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


def _grid(design: DesignPoints, y: np.ndarray, hw: np.ndarray, seed: int, undefined: bool) -> list[tuple]:
    """Main effects corrected for the points' Monte Carlo noise, which inflates the variance
    and pulls the shares down: a parametric bootstrap adds that noise again, and the estimate
    and its interval are reflected about the bootstrap (2·est − mean, [2·est − q97.5,
    2·est − q2.5]; the basic bootstrap), clipped to [0, 1]."""
    if undefined:
        return [(p, "main_effect", math.nan, math.nan, math.nan) for p in design.names]
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
