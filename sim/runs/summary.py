"""The streaming summary behind `summary.csv` and the report.

`Summary` takes chunks of trial
arrays in trial order and keeps only counts and histograms, so memory does not grow with the
number of trials; its `table()` is `summary.csv`, with stable metric names:

- `p_<milestone>`: P(reached by the horizon), 95% Wilson interval;
- `p_<milestone>_by_<N>d`: P(reached within N days), for the scenario's `summary.by_days`;
- `p_<milestone>_by_<YYYY-MM>`: P(reached by the end of that calendar month, or of the horizon
  in its last month, which is then `p_<milestone>`), 95% Wilson interval;
- `median_t_<milestone>`: median first-passage day among trials that reach it (NaN if none),
  with a 95% order-statistic interval (days are kept on a 0.01-day grid, capped at the horizon);
- `mean_<series>` (normal interval, not below 0) and `q05_`, `q25_`, `q50_`, `q75_`, `q95_<series>`
  of each per-trial count: order statistics (numpy's "inverted_cdf", so a count's quantile is a count), with
  order-statistic intervals;
- `mean_max_rung`;
- a forecast's (`[forecast]`): `history_p_<milestone>`, the share of trials whose history had
  reached it before the origin (Wilson interval); `forecast_history_simulations` (histories run in
  all), `forecast_acceptance` (trials ÷ histories run), `forecast_redrawn` (share of trials that drew
  their parameters again, Wilson interval) and `forecast_effective_trials` (the trials that kept
  their parameter draw).

`pathways()` is `pathways.csv`: the order in which each trial reached the ladder's rungs (a
day's ties in ladder order), the most common paths first and the rest summed in one row.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from sim.runs.layout import RunLayout
from sim.stats import Z95, Histogram, wilson

QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
TIME_RESOLUTION = 0.01
PATHS_SHOWN = 15  # paths listed by name in `pathways.csv`; the rest are summed in one row
NO_RUNG = "(no rung reached)"
ARROW = " → "


def count_quantile(values: np.ndarray, q: float) -> float:
    """The q-quantile of per-trial counts as the order statistic (a count, as `summary.csv` gives it)."""
    return float(np.quantile(values, q, method="inverted_cdf"))


def wilson_arrays(successes: np.ndarray, n: int, z: float = Z95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`sim.stats.wilson` for an array of successes out of `n`."""
    k = np.asarray(successes, dtype=float)
    if n <= 0:
        nan = np.full(k.shape, math.nan)
        return nan, nan, nan
    p = k / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return p, np.maximum(0.0, np.minimum(p, centre - half)), np.minimum(1.0, np.maximum(p, centre + half))


def path_codes(rung_days: np.ndarray) -> np.ndarray:
    """Each trial's rungs in the order reached, as ladder indices padded with -1: `rung_days` holds
    the first-passage days of the ladder's rungs (NaN: not reached); a day's ties in ladder order."""
    reached = ~np.isnan(rung_days)
    order = np.argsort(np.where(reached, rung_days, np.inf), axis=1, kind="stable")
    return np.where(np.arange(rung_days.shape[1]) < reached.sum(axis=1)[:, None], order, -1)


def path_names(codes: np.ndarray, ladder: list[str]) -> np.ndarray:
    """The `pathways.csv` name of each trial's path (`path_codes`)."""
    return np.array([ARROW.join(ladder[r] for r in row if r >= 0) or NO_RUNG for row in codes.tolist()], dtype=object)


def day_label(days: float) -> str:
    return f"{days:g}".replace(".", "_")


class Summary:
    """Streaming summary of trial arrays; add chunks in trial order, then read `table()`."""

    def __init__(self, layout: RunLayout):
        self.layout = layout
        self.n = 0
        m = len(layout.milestones)
        self.reached = np.zeros(m, dtype=np.int64)
        self.reached_by = np.zeros((m, len(layout.by_days)), dtype=np.int64)
        self.reached_by_month = np.zeros((m, len(layout.month_ends)), dtype=np.int64)
        self._month_ends = np.asarray(layout.month_ends, dtype=float)
        self.first_passage = [Histogram(TIME_RESOLUTION) for _ in range(m)]
        self.counts = [Histogram() for _ in layout.series]
        self.rungs = Histogram()
        self.monthly = [[Histogram() for _ in layout.months] for _ in layout.monthly_series]
        self.n_events = Histogram()
        self.particles = Histogram()  # how many trials drew each particle of the posterior (if any)
        self._rungs = [layout.milestones.index(m) for m in layout.ladder]
        self.paths: dict[tuple[int, ...], int] = {}  # rungs in the order reached (ladder indices) -> trials
        self.history_reached = np.zeros(m, dtype=np.int64)  # a forecast's: trials whose history reached each
        self.history_simulations = 0
        self.redrawn = 0

    def redrawn_problem(self, forecast) -> str | None:
        """What is wrong when too many of a forecast's trials drew their parameters again: when even
        the 95% Wilson interval's lower end of their share lies above `forecast.max_redrawn` (a
        small run's one redraw is not evidence); None when all is well."""
        if self.n == 0 or wilson(self.redrawn, self.n)[1] <= forecast.max_redrawn:
            return None
        return (f"forecast.max_redrawn: expected at most {forecast.max_redrawn:.1%} of the trials to draw their parameters "
                f"again (the lower end of the share's 95% interval), found {self.redrawn:,} of {self.n:,} "
                f"({self.redrawn / self.n:.1%}): their first draw found no history agreeing with what was observed before "
                f"the origin in {forecast.attempts:,} tries. Raise forecast.attempts (say to {forecast.attempts * 10:,}), "
                "or forecast.max_redrawn to accept the bias, or fit the parameters to the same observations (escsim calibrate)")

    def add_history(self, attempts: np.ndarray, redraws: np.ndarray, history_days: np.ndarray) -> None:
        """A forecast's chunk: histories run, parameter redraws, and days its histories reached milestones."""
        self.history_simulations += int(attempts.sum())
        self.redrawn += int((redraws > 0).sum())
        self.history_reached += (~np.isnan(history_days)).sum(axis=0)

    def add(self, milestone_days: np.ndarray, max_rung: np.ndarray, totals: np.ndarray,
            monthly: np.ndarray, n_events: np.ndarray, particles: np.ndarray | None = None) -> None:
        self.n += len(max_rung)
        if particles is not None:
            self.particles.add(particles)
        for j in range(len(self.layout.milestones)):
            t = milestone_days[:, j]
            hit = ~np.isnan(t)
            self.reached[j] += int(hit.sum())
            for k, d in enumerate(self.layout.by_days):
                self.reached_by[j, k] += int((t[hit] <= d).sum())
            self.reached_by_month[j] += (t[hit][:, None] < self._month_ends[None, :]).sum(axis=0)
            self.first_passage[j].add(t[hit])
        for k, hist in enumerate(self.counts):
            hist.add(totals[:, k])
        self.rungs.add(max_rung)
        for s, row in enumerate(self.monthly):
            for mth, hist in enumerate(row):
                hist.add(monthly[:, s, mth])
        self.n_events.add(n_events)
        self._add_paths(milestone_days)

    def _add_paths(self, milestone_days: np.ndarray) -> None:
        n, rungs = len(milestone_days), len(self._rungs)
        if not n:
            return
        if not rungs:
            self.paths[()] = self.paths.get((), 0) + n
            return
        codes = path_codes(milestone_days[:, self._rungs])
        for row, count in zip(*np.unique(codes, axis=0, return_counts=True), strict=True):
            key = tuple(int(r) for r in row if r >= 0)
            self.paths[key] = self.paths.get(key, 0) + int(count)

    def path_name(self, path: tuple[int, ...]) -> str:
        return ARROW.join(self.layout.ladder[r] for r in path) if path else NO_RUNG

    def pathways(self, shown: int | None = PATHS_SHOWN) -> pd.DataFrame:
        """`pathways.csv`: `path` (the rungs in the order reached), `rungs`, `trials`, `share` and its
        95% Wilson interval `lo`, `hi`; the `shown` most common paths (ties by name), then one row
        summing the rest (`rungs` empty). `shown=None`: every path."""
        ranked = sorted(self.paths.items(), key=lambda kv: (-kv[1], self.path_name(kv[0])))
        kept, rest = (ranked, []) if shown is None else (ranked[:shown], ranked[shown:])
        rows = [(self.path_name(path), len(path), count, *wilson(count, self.n)) for path, count in kept]
        if rest:
            count = sum(c for _, c in rest)
            rows.append((f"other paths ({len(rest):,} distinct)", math.nan, count, *wilson(count, self.n)))
        return pd.DataFrame(rows, columns=["path", "rungs", "trials", "share", "lo", "hi"])

    def transitions(self) -> tuple[list[str], list[str], np.ndarray]:
        """(from, to, shares): of all trials, the share in which rung `to` came next after `from`
        ("start": the first rung reached; "end": the last)."""
        ladder = self.layout.ladder
        sources, targets = ["start", *ladder], [*ladder, "end"]
        shares = np.zeros((len(sources), len(targets)))
        for path, count in self.paths.items():
            steps = [-1, *path, len(ladder)]
            for a, b in zip(steps[:-1], steps[1:], strict=True):
                shares[a + 1, b] += count
        return sources, targets, shares / self.n if self.n else shares

    def table(self) -> pd.DataFrame:
        rows: list[tuple[str, float, float, float]] = []
        lay = self.layout
        order = [lay.milestones.index(m) for m in lay.ordered]
        for j in order:
            name = lay.milestones[j]
            rows.append((f"p_{name}", *wilson(int(self.reached[j]), self.n)))
            for k, d in enumerate(lay.by_days):
                rows.append((f"p_{name}_by_{day_label(d)}d", *wilson(int(self.reached_by[j, k]), self.n)))
            for k, month in enumerate(lay.months[:len(lay.month_ends)]):
                rows.append((f"p_{name}_by_{month}", *wilson(int(self.reached_by_month[j, k]), self.n)))
        for j in order:
            # A day rounded to the grid may pass a horizon that is not on it: it is still before it.
            median = (min(v, lay.horizon_days) for v in self.first_passage[j].quantile(0.5))
            rows.append((f"median_t_{lay.milestones[j]}", *median))
        for k, name in enumerate(lay.series):
            hist = self.counts[k]
            rows.append((f"mean_{name}", *hist.mean()))
            for q in QUANTILES:
                rows.append((f"q{round(q * 100):02d}_{name}", *hist.quantile(q, "inverted_cdf")))
        rows.append(("mean_max_rung", *self.rungs.mean()))
        if lay.forecast:
            for j in order:
                rows.append((f"history_p_{lay.milestones[j]}", *wilson(int(self.history_reached[j]), self.n)))
            nan = math.nan
            rows.append(("forecast_history_simulations", float(self.history_simulations), nan, nan))
            rows.append(("forecast_acceptance", self.n / self.history_simulations if self.history_simulations else nan,
                         nan, nan))
            rows.append(("forecast_redrawn", *wilson(self.redrawn, self.n)))
            rows.append(("forecast_effective_trials", float(self.n - self.redrawn), nan, nan))
        return pd.DataFrame(rows, columns=["metric", "estimate", "lo", "hi"])

    def cumulative(self, milestone: str, days: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(estimate, lo, hi): P(reached before each of `days`), with 95% Wilson intervals, from the
        first-passage days on their 0.01-day grid (for curves; the summary's rows count exact days)."""
        hist = self.first_passage[self.layout.milestones.index(milestone)]
        before = np.cumsum(np.concatenate([[0], hist.counts]))[np.searchsorted(hist.points * hist.resolution,
                                                                                 days, side="left")]
        return wilson_arrays(before, self.n)

    def fan(self) -> pd.DataFrame:
        """Per monthly series and month: mean and the 5/25/50/75/95% quantiles (counts) across trials."""
        rows = []
        for s, name in enumerate(self.layout.monthly_series):
            for mth, month in enumerate(self.layout.months):
                hist = self.monthly[s][mth]
                rows.append((name, month, hist.mean()[0], *(hist.quantile(q, "inverted_cdf")[0] for q in QUANTILES)))
        return pd.DataFrame(rows, columns=["series", "month", "mean", "q05", "q25", "q50", "q75", "q95"])

    def particle_counts(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(particles, trials): each posterior particle the trials drew and how many drew it; None without a posterior."""
        if not self.layout.particles:
            return None
        return self.particles.points, self.particles.counts

    def rung_distribution(self) -> list[float]:
        """P(max rung = r) for r = 0 .. len(ladder)."""
        counts = np.zeros(len(self.layout.ladder) + 1, dtype=np.int64)
        counts[self.rungs.points] = self.rungs.counts
        return [c / self.n if self.n else math.nan for c in counts]
