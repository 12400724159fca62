"""The report of a calibration fit: observed vs posterior predictive, prior → posterior, the
generations, and the time-split validation scores."""

from __future__ import annotations

import math
import shlex
from pathlib import Path

from sim.reports import figures
from sim.reports.html import render


def write_fit_report(out: Path, targets, fit_toml: dict, parameters: list[dict], full, generations,
                     monthly, checks, scores) -> None:
    fit = fit_toml["fit"]
    fan_panels = []
    for series in monthly.series.unique():
        q = monthly[monthly.series == series].reset_index(drop=True)
        observed = [(i, row.observed_lo, row.observed_hi) for i, row in q.iterrows() if not math.isnan(row.observed_lo)]
        fan_panels.append((series.replace("_", " "), {c: q[c].tolist() for c in ("q05", "q25", "q50", "q75", "q95")}, observed))
    months = list(monthly[monthly.series == monthly.series.iloc[0]].month)
    last = full[-1]
    prior_panels = [(name, p.prior.frozen(), last.particles[:, k].tolist(), last.weights.tolist())
                    for k, (name, p) in enumerate(targets.spec.parameters.items())]
    paths = [(label, list(g.generation), list(g.epsilon), list(g.acceptance)) for label, g in generations.groupby("fit", sort=False)]
    rows = []
    for t in checks.itertuples():
        if t.kind == "count":
            observed = f"{t.observed_lo:g}" if t.observed_lo == t.observed_hi else (
                f"≥ {t.observed_lo:g}" if math.isinf(t.observed_hi) else f"{t.observed_lo:g} – {t.observed_hi:g}")
            interval = f"{t.q05:g} – {t.q95:g}"
        else:
            observed = t.observation.replace("_", " ") + f" {t.end}"
            interval = f"P(happened) {t.mean:.2f}"
        rows.append({"target": t.target, "observed": observed, "mean": t.mean, "interval": interval,
                     "consistent_90": t.consistent_90, "p_observed": t.p_observed})
    render(
        "fit.html.j2", out / "report.html",
        title=f"escalation-sim calibration: {fit['name']}", fit=fit, description=targets.spec.fit.description,
        fan_svg=figures.observed_fan(months, fan_panels), prior_svg=figures.prior_posterior(prior_panels),
        tolerance_svg=figures.tolerance_path(paths), parameters=parameters, checks=rows,
        generations=generations.to_dict("records"), scores=scores.to_dict("records"),
        reproduce=shlex.join(fit["command"].split()), versions=fit_toml["versions"],
    )
