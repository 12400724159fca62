"""The summary a sweep prints: its size, its warnings, and each output's most influential parameters
(or that it is constant over the design)."""

from __future__ import annotations

import math

from sim.sweeps.indices import constant_outputs, design_warnings
from sim.sweeps.runner import SweepResult

# The index that ranks parameters in each design's printout.
RANKING = {"oat": "swing", "grid": "main_effect", "lhs": "prcc", "sobol": "ST", "morris": "mu_star"}


def number(x: float) -> str:
    """Three decimals, or three significant digits where three decimals would show a non-zero
    value as 0.000 (a local format; the reports of runs and compares have their own)."""
    if not math.isfinite(x):
        return "—"
    if x != 0 and abs(x) < 0.0005:
        return f"{x:.3g}"
    text = f"{x:.3f}"
    return "0.000" if text == "-0.000" else text


def sweep_text(result: SweepResult) -> str:
    m = result.manifest
    index = RANKING[m["design"]]
    lines = [
        f"{m['sweep']}: {m['design']} design over {len(m['parameters'])} parameters of {m['scenario']}, "
        f"{m['points']:,} points × {m['trials_per_point']:,} trials (seed {m['seed']}), {m['elapsed_seconds']:.1f} s",
    ]
    sensitivity = result.sensitivity
    lines += [f"warning: {w}" for w in design_warnings(sensitivity)]
    constant = set(constant_outputs(sensitivity))
    table = sensitivity[sensitivity["index"] == index]
    for output in m["outputs"]:
        if output in constant:
            at = sensitivity[(sensitivity["output"] == output) & (sensitivity["index"] == "at_low")]["estimate"]
            value = f" ({number(float(at.iloc[0]))} at every point)" if len(at) else ""
            lines += ["", f"{output}: constant over the design{value}; no parameter moved it, no indices"]
            continue
        rows = table[table["output"] == output].copy()
        rows["size"] = rows["estimate"].abs()
        rows = rows.sort_values("size", ascending=False, na_position="last")
        lines += ["", f"{output}: {index} (95% interval)"]
        for row in rows.itertuples():
            interval = "" if math.isnan(row.lo) else f"{number(row.lo)} – {number(row.hi)}"
            lines.append(f"  {row.parameter:<34}{number(row.estimate):>10}{interval:>20}")
    lines += ["", f"wrote {result.out}/ (report.html, report.md, sensitivity.csv, parameters.csv, points.parquet, spec.toml, "
                          "scenario.toml, manifest.json)"]
    return "\n".join(lines)
