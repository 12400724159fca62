"""The summary a sweep prints: its size, and each output's most influential parameters."""

from __future__ import annotations

import math

from sim.sweeps.runner import SweepResult

# The index that ranks parameters in each design's printout.
RANKING = {"oat": "swing", "grid": "main_effect", "lhs": "prcc", "sobol": "ST", "morris": "mu_star"}


def sweep_text(result: SweepResult) -> str:
    m = result.manifest
    index = RANKING[m["design"]]
    lines = [
        f"{m['sweep']}: {m['design']} design over {len(m['parameters'])} parameters of {m['scenario']}, "
        f"{m['points']:,} points × {m['trials_per_point']:,} trials (seed {m['seed']}), {m['elapsed_seconds']:.1f} s",
    ]
    table = result.sensitivity[result.sensitivity["index"] == index]
    for output in m["outputs"]:
        rows = table[table["output"] == output].copy()
        rows["size"] = rows["estimate"].abs()
        rows = rows.sort_values("size", ascending=False, na_position="last")
        lines += ["", f"{output}: {index} (95% interval)"]
        for row in rows.itertuples():
            interval = "" if math.isnan(row.lo) else f"{row.lo:.3f} – {row.hi:.3f}"
            lines.append(f"  {row.parameter:<34}{row.estimate:>10.3f}{interval:>20}")
    lines += ["", f"wrote {result.out}/ (report.html, report.md, sensitivity.csv, parameters.csv, points.parquet, spec.toml, "
                          "scenario.toml, manifest.json)"]
    return "\n".join(lines)
