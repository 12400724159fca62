"""The summary `escsim compare` prints: per pair, the milestone probabilities and mean counts
side by side, with the paired interval of the difference and its test; and the metrics that only
one scenario of the pair has, which have no difference."""

from __future__ import annotations

import math

import pandas as pd

from sim.comparison.runner import NOT_COMPARABLE, CompareResult
from sim.reports.numbers import MISSING, decimals, estimate, interval, number, signed


def _shown(metric: str) -> bool:
    return metric.startswith("p_") and "_by_" not in metric or metric.startswith("mean_")


def compare_text(result: CompareResult) -> str:
    m = result.manifest
    names = ", ".join(s["name"] for s in m["scenarios"])
    lines = [f"compare {names}: {m['trials']:,} trials each, seed {m['seed']} (common random numbers), "
             f"{m['elapsed_seconds']:.1f} s"]
    table = result.comparison
    for (a, b), rows in table.groupby(["a", "b"], sort=False):
        wa, wb = max(12, len(a) + 2), max(12, len(b) + 2)
        lines += ["", f"{b} − {a}", f"{'metric':<40}{a:>{wa}}{b:>{wb}}{'difference':>12}{'paired 95% interval':>22}"
                  f"{'p':>9}{'var. cut':>10}"]
        for row in rows.itertuples():
            if not _shown(row.metric):
                continue
            head = f"{row.metric:<40}{estimate(row.metric, row.estimate_a):>{wa}}{estimate(row.metric, row.estimate_b):>{wb}}"
            if isinstance(row.only_in, str) and row.only_in:
                lines.append(f"{head}  only in {row.only_in}")
            elif row.interval == NOT_COMPARABLE:
                lines.append(f"{head}  not compared: the ladders differ")
            else:
                cut = "" if math.isnan(row.variance_reduction) else f"{round(row.variance_reduction * 100):d}%"
                places = decimals(row.metric)
                lines.append(f"{head}{signed(row.difference, places):>12}{interval(row.lo, row.hi, places):>22}"
                             f"{p_value(row.p_value):>9}{cut:>10}")
        only = only_in(rows)
        for name, metrics in only.items():
            lines.append(f"only {name} has {len(metrics)} metric{'s' if len(metrics) != 1 else ''} (no difference): "
                         + ", ".join(metrics))
    lines += ["", "p: McNemar for probabilities, Wilcoxon signed-rank for means; var. cut: the share of the variance "
              "of the difference that pairing removed.",
              f"wrote {result.out}/ (report.html, report.md, comparison.csv, milestones.csv, ladder.csv, parameters.csv, "
              "manifest.json, runs/)"]
    return "\n".join(lines)


def only_in(rows: pd.DataFrame) -> dict[str, list[str]]:
    """The metrics of a pair's rows that only one of its scenarios has, by that scenario."""
    found: dict[str, list[str]] = {}
    for metric, name in zip(rows["metric"], rows["only_in"], strict=True):
        if isinstance(name, str) and name:
            found.setdefault(name, []).append(metric)
    return found


def p_value(p: float) -> str:
    if not math.isfinite(p):
        return MISSING
    return "<0.0001" if p < 1e-4 else number(p)
