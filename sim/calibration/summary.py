"""What `escsim calibrate` prints: the posterior, the fit's diagnostics, the checks and scores."""

from __future__ import annotations

import math

from sim.calibration.fit import FitResult, weighted_quantile


def fit_text(result: FitResult) -> str:
    post = result.posterior
    names = [c for c in post.columns if c not in ("weight", "distance")]
    full = result.generations[result.generations.fit == "full"]
    last = full.iloc[-1]
    lines = [
        f"fit {result.out.name}: {len(full)} generations, {int(full.simulations.sum()):,} simulations, "
        f"final ε {last.epsilon:.3g}, acceptance {last.acceptance:.3f}, ESS {last.ess:.0f}",
        "",
        f"{'Parameter':<22}{'mean':>10}{'5%':>10}{'median':>10}{'95%':>10}",
    ]
    w = post.weight.to_numpy()
    for name in names:
        x = post[name].to_numpy()
        q = [weighted_quantile(x, w, p) for p in (0.05, 0.5, 0.95)]
        lines.append(f"{name:<22}{float(w @ x):>10.3g}{q[0]:>10.3g}{q[1]:>10.3g}{q[2]:>10.3g}")
    checks = result.predictive_targets
    bad = checks[~checks.consistent_90]
    lines += ["", f"targets consistent with the 90% posterior predictive: {len(checks) - len(bad)} of {len(checks)}"
              + ("" if bad.empty else " (not: " + ", ".join(bad.target) + ")")]
    scores = result.scores.dropna(subset=["crps"])
    if not scores.empty:
        mean = scores.groupby("forecaster").crps.mean()
        lines.append("time-split forecast, mean CRPS: " + ", ".join(
            f"{k} {v:.2f}" for k, v in mean.items() if not math.isnan(v)))
    lines += ["", f"wrote {result.out}/ (posterior.parquet, generations.csv, predictive_monthly.csv, "
              "predictive_targets.csv, scores.csv, fit.toml, report.html, report.md, parameters.csv)"]
    return "\n".join(lines)
