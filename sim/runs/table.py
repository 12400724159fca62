"""The summary a run prints: milestone probabilities and counts, readable in a terminal."""

from __future__ import annotations

import math

from sim.reports.numbers import number, probability
from sim.runs.runner import RunResult


def summary_text(result: RunResult, tracked=(), origin=None) -> str:
    """The console summary of a run; `tracked`: milestones off the ladder, marked as such (no rung);
    `origin`: a forecast's origin date."""
    m = result.manifest
    table = result.summary.set_index("metric")
    lines = [
        f"{m['scenario']}: {m['trials']:,} trials, seed {m['seed']}, {m['elapsed_seconds']:.1f} s",
        "",
        f"{'Milestone':<34}{'P(by horizon)':>14}{'95% interval':>18}{'median day':>12}",
    ]
    for metric in table.index:
        if metric.startswith("p_") and "_by_" not in metric:
            name = metric[2:]
            p = table.loc[metric]
            median = table.loc[f"median_t_{name}", "estimate"]
            lines.append(
                f"{name:<34}{probability(p.estimate):>14}{f'{probability(p.lo)} – {probability(p.hi)}':>18}"
                f"{'—' if math.isnan(median) else f'{median:.1f}':>12}" + ("  (tracked, no rung)" if name in tracked else "")
            )
    lines += ["", f"{'Count per trial':<34}{'mean':>10}{'5%':>8}{'median':>8}{'95%':>8}"]
    for metric in table.index:
        if metric.startswith("mean_") and metric != "mean_max_rung":
            name = metric[5:]
            q = [table.loc[f"{p}_{name}", "estimate"] for p in ("q05", "q50", "q95")]
            lines.append(f"{name:<34}{number(table.loc[metric, 'estimate']):>10}" + "".join(f"{number(v):>8}" for v in q))
    if "forecast_acceptance" in table.index:
        lines += ["", _forecast_lines(table, m, origin)]
    lines += ["", f"wrote {result.out}/ (report.html, report.md, summary.csv, milestones.csv, counts.csv, pathways.csv, parameters.csv, roots.csv, trials.parquet, "
                          "monthly.parquet, scenario.toml, manifest.json)"]
    return "\n".join(lines)


def _forecast_lines(table, manifest, origin) -> str:
    """What a forecast's trials started from: histories run, how many agreed, and what they had reached."""
    trials = manifest["trials"]
    runs = table.loc["forecast_history_simulations", "estimate"]
    redrawn = table.loc["forecast_redrawn"]
    lines = [
        f"Forecast from {origin or 'the start date'}: each trial started from a history agreeing with what was observed before it",
        f"  histories run {number(runs)} (one in {runs / trials:.0f} agreed); trials that drew their parameters again "
        f"{round(redrawn.estimate * trials):,} ({probability(redrawn.estimate)}); effective trials "
        f"{number(table.loc['forecast_effective_trials', 'estimate'])}",
        f"  {'reached before the origin':<32}{'share of histories':>20}",
    ]
    for metric in table.index:
        if metric.startswith("history_p_"):
            lines.append(f"  {metric.removeprefix('history_p_'):<32}{probability(table.loc[metric, 'estimate']):>20}")
    return "\n".join(lines)
