"""Statistics for `escsim compare`: two scenarios run with common random numbers, so outcome i of A and of B are paired.

Intervals for B − A: proportions (Newcombe's hybrid score, paired and independent), means (paired t, Welch) and any
statistic (paired bootstrap); tests: McNemar, Wilcoxon signed-rank, two-sample KS and Anderson–Darling; first-passage
times: Kaplan–Meier curves censored at the horizon and the log-rank test; and the share of variance pairing removes.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import stats

from sim.stats import wilson

BOOTSTRAP_MAX_PAIRS = 200_000
_BOOTSTRAP_BLOCK_ELEMENTS = 2_000_000
_NAN = math.nan


@dataclass(frozen=True)
class Interval:
    """A point estimate of B − A with its confidence limits."""

    estimate: float
    lo: float
    hi: float

    @property
    def width(self) -> float:
        return self.hi - self.lo


@dataclass(frozen=True)
class Test:
    """A test statistic, its p-value and the method that produced them."""

    __test__ = False  # not a pytest test class

    statistic: float
    p_value: float
    method: str


@dataclass(frozen=True, eq=False)
class KaplanMeier:
    """Step function: S just after each time in `t` (0, then the event times), with its at-risk and event counts."""

    t: np.ndarray
    survival: np.ndarray
    at_risk: np.ndarray
    events: np.ndarray
    se: np.ndarray
    horizon: float


def _z(level: float) -> float:
    """Two-sided standard-normal quantile for a confidence level."""
    return float(stats.norm.ppf(0.5 + level / 2))


def _paired(x: np.ndarray, y: np.ndarray, dtype: type = float) -> tuple[np.ndarray, np.ndarray]:
    """x and y as 1-D arrays of one length, or ValueError: pairs are matched by trial index."""
    x, y = np.asarray(x, dtype=dtype).ravel(), np.asarray(y, dtype=dtype).ravel()
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    return x, y


def _nan_interval() -> Interval:
    return Interval(_NAN, _NAN, _NAN)


def _newcombe_phi(both: int, only_b: int, only_a: int, neither: int) -> float:
    """Newcombe's (1998) phi for the 2×2 paired table: ad − bc shrunk by n/2 towards 0 when positive; 0 if a margin is 0."""
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    if margins == 0:
        return 0.0
    cross = both * neither - only_b * only_a
    if cross > 0:
        cross = max(cross - (both + only_b + only_a + neither) / 2, 0.0)
    return cross / math.sqrt(margins)


def _square_and_add(near: float, far: float, phi: float) -> float:
    """Newcombe's square-and-add distance from the estimate to one limit, with correlation phi."""
    return math.sqrt(max(near * near - 2.0 * phi * near * far + far * far, 0.0))


def paired_proportion_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Interval:
    """p_b − p_a for paired booleans: Newcombe's (1998, Stat Med 17:2635) method 10, Wilson limits of each proportion
    combined with the phi correlation of the pairs; works at p = 0 or 1 and when all pairs agree."""
    a, b = _paired(a, b, bool)
    n = a.size
    if n == 0:
        return _nan_interval()
    both, only_a, only_b = int(np.count_nonzero(a & b)), int(np.count_nonzero(a & ~b)), int(np.count_nonzero(b & ~a))
    z = _z(level)
    pa, la, ua = wilson(both + only_a, n, z)
    pb, lb, ub = wilson(both + only_b, n, z)
    phi = _newcombe_phi(both, only_b, only_a, n - both - only_a - only_b)
    diff = pb - pa
    return Interval(diff, diff - _square_and_add(pb - lb, ua - pa, phi), diff + _square_and_add(ub - pb, pa - la, phi))


def unpaired_proportion_difference(a: np.ndarray, b: np.ndarray, level: float = 0.95) -> Interval:
    """p_b − p_a for independent samples: Newcombe's (1998, Stat Med 17:873) method 10, the hybrid Wilson score
    interval. The baseline against which pairing's gain is measured."""
    a, b = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if a.size == 0 or b.size == 0:
        return _nan_interval()
    z = _z(level)
    pa, la, ua = wilson(int(np.count_nonzero(a)), a.size, z)
    pb, lb, ub = wilson(int(np.count_nonzero(b)), b.size, z)
    diff = pb - pa
    return Interval(diff, diff - _square_and_add(pb - lb, ua - pa, 0.0), diff + _square_and_add(ub - pb, pa - la, 0.0))


def mcnemar(a: np.ndarray, b: np.ndarray) -> Test:
    """McNemar's (1947) test that paired booleans have equal proportions: exact binomial on the discordant pairs below
    25 of them (statistic: the smaller count), else chi-square with Edwards' continuity correction."""
    a, b = _paired(a, b, bool)
    only_a, only_b = int(np.count_nonzero(a & ~b)), int(np.count_nonzero(b & ~a))
    discordant = only_a + only_b
    if discordant == 0:
        return Test(0.0, 1.0, "McNemar exact")
    if discordant < 25:
        smaller = min(only_a, only_b)
        return Test(float(smaller), min(1.0, 2.0 * float(stats.binom.cdf(smaller, discordant, 0.5))), "McNemar exact")
    chi2 = max(abs(only_a - only_b) - 1, 0) ** 2 / discordant
    return Test(chi2, float(stats.chi2.sf(chi2, 1)), "McNemar chi2, continuity-corrected")


def _t_interval(estimate: float, variance: float, dof: float, level: float) -> Interval:
    """estimate ± t(dof) · sqrt(variance)."""
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * math.sqrt(variance)
    return Interval(estimate, estimate - half, estimate + half)


def paired_mean_difference(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> Interval:
    """mean(y) − mean(x) for paired samples: Student's (1908) t interval on the differences d = y − x."""
    x, y = _paired(x, y)
    d = y - x
    if d.size == 0:
        return _nan_interval()
    if d.size == 1:
        return Interval(float(d[0]), _NAN, _NAN)
    return _t_interval(float(d.mean()), float(d.var(ddof=1)) / d.size, d.size - 1, level)


def unpaired_mean_difference(x: np.ndarray, y: np.ndarray, level: float = 0.95) -> Interval:
    """mean(y) − mean(x) for independent samples: Welch's (1947) interval with Satterthwaite degrees of freedom.
    The baseline against which pairing's gain is measured."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    if x.size == 0 or y.size == 0:
        return _nan_interval()
    estimate = float(y.mean() - x.mean())
    if x.size < 2 or y.size < 2:
        return Interval(estimate, _NAN, _NAN)
    vx, vy = float(x.var(ddof=1)) / x.size, float(y.var(ddof=1)) / y.size
    if vx + vy == 0:
        return Interval(estimate, estimate, estimate)
    dof = (vx + vy) ** 2 / (vx * vx / (x.size - 1) + vy * vy / (y.size - 1))
    return _t_interval(estimate, vx + vy, dof, level)


def _apply_rows(stat: Callable, samples: np.ndarray, vectorized: bool) -> np.ndarray:
    """stat of each row of a 2-D array of resamples."""
    if vectorized:
        return np.asarray(stat(samples, axis=-1), dtype=float)
    return np.fromiter((stat(row) for row in samples), dtype=float, count=samples.shape[0])


def paired_bootstrap_difference(
    x: np.ndarray,
    y: np.ndarray,
    stat: Callable[[np.ndarray], float],
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    *,
    vectorized: bool = False,
    max_pairs: int = BOOTSTRAP_MAX_PAIRS,
) -> Interval:
    """stat(y) − stat(x) with Efron's (1979) percentile interval, resampling trial indices (the same for x and y).

    Values must be finite (drop or recode NaN first). The estimate uses all pairs; the interval resamples only the
    first `max_pairs` pairs, which keeps time bounded and errs wide. With `vectorized`, `stat(sample, axis=-1)` is
    called on blocks of resamples (as scipy.stats.bootstrap does), e.g. np.mean or a partial of np.quantile.
    """
    x, y = _paired(x, y)
    if x.size == 0:
        return _nan_interval()
    estimate = float(stat(y) - stat(x))
    xs, ys = x[:max_pairs], y[:max_pairs]
    m = xs.size
    rng = np.random.default_rng(seed)
    block = max(1, _BOOTSTRAP_BLOCK_ELEMENTS // m)
    diffs = np.empty(resamples)
    for start in range(0, resamples, block):
        idx = rng.integers(0, m, size=(min(block, resamples - start), m))
        diffs[start : start + idx.shape[0]] = _apply_rows(stat, ys[idx], vectorized) - _apply_rows(stat, xs[idx], vectorized)
    lo, hi = np.quantile(diffs, [0.5 - level / 2, 0.5 + level / 2])
    return Interval(estimate, float(lo), float(hi))


def wilcoxon_signed_rank(x: np.ndarray, y: np.ndarray) -> Test:
    """Wilcoxon's (1945) signed-rank test on d = y − x, zero differences split between the signs (zsplit) so that
    tied trials count as evidence of no change; all differences zero gives p = 1."""
    x, y = _paired(x, y)
    d = y - x
    if d.size == 0:
        return Test(_NAN, _NAN, "Wilcoxon signed-rank (zsplit)")
    if not np.any(d):
        return Test(d.size * (d.size + 1) / 4, 1.0, "Wilcoxon signed-rank (zsplit)")
    result = stats.wilcoxon(d, zero_method="zsplit")
    return Test(float(result.statistic), float(result.pvalue), "Wilcoxon signed-rank (zsplit)")


def ks_two_sample(x: np.ndarray, y: np.ndarray) -> Test:
    """Two-sample Kolmogorov–Smirnov test (Smirnov, 1939) that x and y share a distribution; ignores the pairing."""
    result = stats.ks_2samp(np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel())
    return Test(float(result.statistic), float(result.pvalue), "Kolmogorov-Smirnov two-sample")


def _anderson_ksamp(x: np.ndarray, y: np.ndarray):
    """scipy's k-sample Anderson–Darling (midrank variant), its cap/floor warnings silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="p-value (capped|floored)")
        try:
            return stats.anderson_ksamp([x, y], variant="midrank")
        except TypeError:  # SciPy < 1.17 has no `variant`
            return stats.anderson_ksamp([x, y], midrank=True)


def anderson_darling_k_sample(x: np.ndarray, y: np.ndarray) -> Test:
    """Scholz & Stephens' (1987) k-sample Anderson–Darling test, more tail-sensitive than KS; ignores the pairing.
    SciPy interpolates p from tables and clips it to [0.001, 0.25]; `method` says when it was clipped."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    method = "Anderson-Darling k-sample"
    pooled = np.concatenate([x, y])
    if x.size and y.size and pooled.min() == pooled.max():
        return Test(_NAN, 1.0, method)
    result = _anderson_ksamp(x, y)
    p = float(result.pvalue)
    if p >= 0.25:
        method += " (p capped at 0.25)"
    elif p <= 0.001:
        method += " (p floored at 0.001)"
    return Test(float(result.statistic), p, method)


def _censor(times: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """(observed time, event flag): NaN or a time past the horizon means censored at the horizon."""
    times = np.asarray(times, dtype=float).ravel()
    event = np.isfinite(times) & (times <= horizon)
    observed = np.where(event, times, horizon)
    if np.any(observed < 0):
        raise ValueError("first-passage times must be non-negative")
    return observed, event


def _at_risk(observed: np.ndarray, t: np.ndarray) -> np.ndarray:
    """How many observations are still at risk (observed time ≥ t) at each t."""
    return observed.size - np.searchsorted(np.sort(observed), t, side="left")


def _events_at(observed: np.ndarray, event: np.ndarray, t: np.ndarray) -> np.ndarray:
    """How many events fall at each of the sorted distinct times t (which include every event time)."""
    return np.bincount(np.searchsorted(t, observed[event]), minlength=t.size)


def kaplan_meier(times: np.ndarray, horizon: float) -> KaplanMeier:
    """Kaplan & Meier's (1958) survival curve of first-passage times (NaN = not reached, censored at `horizon`), with
    Greenwood's (1926) standard error; `se` is NaN once S reaches 0, where Greenwood's formula is undefined."""
    observed, event = _censor(times, horizon)
    t = np.union1d([0.0], observed[event])
    at_risk = _at_risk(observed, t)
    events = _events_at(observed, event, t)
    with np.errstate(divide="ignore", invalid="ignore"):
        survival = np.cumprod(np.where(at_risk > 0, 1.0 - events / at_risk, 1.0))
        terms = np.where(at_risk > events, events / (at_risk * (at_risk - events)), 0.0)
    se = np.full(t.size, _NAN)
    alive = survival > 0
    se[alive] = survival[alive] * np.sqrt(np.cumsum(terms)[alive])
    return KaplanMeier(t, survival, at_risk, events, se, float(horizon))


def survival_at(km: KaplanMeier, t: float | np.ndarray) -> float | np.ndarray:
    """S(t) from a Kaplan–Meier step function (right-continuous); 1 before 0 and NaN past the horizon."""
    t = np.asarray(t, dtype=float)
    i = np.searchsorted(km.t, t, side="right") - 1
    s = np.where(i >= 0, km.survival[np.maximum(i, 0)], 1.0)
    s = np.where(t > km.horizon, _NAN, s)
    return float(s) if s.ndim == 0 else s


def log_rank(times_a: np.ndarray, times_b: np.ndarray, horizon: float) -> Test:
    """Mantel's (1966) log-rank test that two first-passage curves are equal, both censored at `horizon` (NaN =
    censored), with the hypergeometric variance for ties. Under common random numbers the samples are positively
    paired, which this unpaired test ignores: it is then conservative (p too large)."""
    obs_a, event_a = _censor(times_a, horizon)
    obs_b, event_b = _censor(times_b, horizon)
    t = np.union1d(obs_a[event_a], obs_b[event_b])
    method = "log-rank (Mantel-Cox)"
    if t.size == 0:
        return Test(0.0, 1.0, method)
    r_a, r_b = _at_risk(obs_a, t), _at_risk(obs_b, t)
    d_a = _events_at(obs_a, event_a, t)
    d = d_a + _events_at(obs_b, event_b, t)
    r = r_a + r_b
    expected = d * r_a / r
    variance = d * (r_a / r) * (r_b / r) * (r - d) / np.maximum(r - 1, 1)
    total_variance = float(variance.sum())
    if total_variance <= 0:
        return Test(0.0, 1.0, method)
    chi2 = float((d_a.sum() - expected.sum()) ** 2 / total_variance)
    return Test(chi2, float(stats.chi2.sf(chi2, 1)), method)


def variance_reduction(paired: Interval, unpaired: Interval) -> float:
    """1 − (paired width / unpaired width)²: the share of the difference's variance that pairing removed
    (common random numbers; Law & Kelton, 2000); NaN when the unpaired width is 0 or undefined."""
    if not math.isfinite(unpaired.width) or unpaired.width <= 0:
        return _NAN
    return 1.0 - (paired.width / unpaired.width) ** 2
