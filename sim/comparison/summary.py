"""The summary `escsim compare` prints: per pair, the milestone probabilities and mean counts
side by side, with the paired interval of the difference and its test."""

from __future__ import annotations

import math

from sim.comparison.runner import CompareResult


def compare_text(result: CompareResult) -> str:
    m = result.manifest
    names = ", ".join(s["name"] for s in m["scenarios"])
    lines = [f"compare {names}: {m['trials']:,} trials each, seed {m['seed']} (common random numbers), "
             f"{m['elapsed_seconds']:.1f} s"]
    table = result.comparison
    for (a, b), rows in table.groupby(["a", "b"], sort=False):
        lines += ["", f"{b} − {a}", f"{'metric':<40}{a[:11]:>12}{b[:11]:>12}{'difference':>12}{'paired 95% interval':>22}"
                  f"{'p':>9}{'var. cut':>10}"]
        for row in rows.itertuples():
            if row.metric.startswith("p_") and "_by_" not in row.metric or row.metric.startswith("mean_"):
                cut = "" if math.isnan(row.variance_reduction) else f"{round(row.variance_reduction * 100):d}%"
                lines.append(f"{row.metric:<40}{row.estimate_a:>12.3f}{row.estimate_b:>12.3f}{row.difference:>+12.3f}"
                             f"{f'{row.lo:+.3f} – {row.hi:+.3f}':>22}{row.p_value:>9.2g}{cut:>10}")
    lines += ["", "p: McNemar for probabilities, Wilcoxon signed-rank for means; var. cut: the share of the variance "
              "of the difference that pairing removed.",
              f"wrote {result.out}/ (report.html, report.md, comparison.csv, milestones.csv, ladder.csv, parameters.csv, "
              "manifest.json, runs/)"]
    return "\n".join(lines)
