"""The report of a calibration fit: observed vs posterior predictive, prior → posterior, the
generations, and the time-split validation scores.

Built from the fit folder's saved files (and the targets file, for the priors), both when the fit
is written and by `escsim report`, so a rebuild is byte for byte the same. `report.md` holds the
tables as Markdown; `parameters.csv` the prior → posterior table. The other tables are the fit's
own CSVs: `predictive_targets.csv`, `generations.csv` and `scores.csv`.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import numpy as np
import pandas as pd

from sim.errors import InputError
from sim.reports import figures
from sim.reports import markdown as md
from sim.reports.html import render
from sim.reports.run import require_files
from sim.runs.storage import read_frame, write_text
from sim.scenario.loading import read_toml

FIT_FILES = ("fit.toml", "posterior.parquet", "generations.csv", "predictive_monthly.csv", "predictive_targets.csv",
             "scores.csv")
REPORT_FILES = ("report.html", "report.md", "parameters.csv")
FLOAT = "%.6g"
SUMMARY_COLUMNS = ["parameter", "path", "prior", "prior_q05", "prior_median", "prior_q95", "mean", "q05", "median", "q95"]


def write_fit_report(out: Path, targets) -> list[Path]:
    """Write the report files (`REPORT_FILES`) of a fit folder from its saved files and the fit's targets."""
    from sim.calibration.abc import Generation
    from sim.calibration.fit import parameter_summary

    out = Path(out)
    require_files(out, FIT_FILES, "calibration fit")
    fit_toml = read_fit_toml(out / "fit.toml")
    fit = {**fit_toml["fit"], "final_epsilon": float(fit_toml["fit"]["final_epsilon"])}  # "inf" is saved as text
    names = targets.parameter_names
    posterior = _posterior(out / "posterior.parquet", names)
    generations = _csv(out / "generations.csv")
    monthly = _csv(out / "predictive_monthly.csv")
    checks = _csv(out / "predictive_targets.csv")
    scores = _csv(out / "scores.csv")
    counted = {c.series for c in targets.spec.counts.values()}
    if len(set(monthly.groupby(["series", "measure"], sort=False).month.apply(tuple))) > 1 \
            or not counted <= set(monthly.series) \
            or monthly[["month", "series", "mean", "q05", "q25", "q50", "q75", "q95"]].isna().any(axis=None):
        raise InputError(f"error: {out / 'predictive_monthly.csv'}: expected every month of the replay for each series "
                         f"the targets count ({', '.join(sorted(counted))}), the same months for each, found a table "
                         "cut short or with missing values; run the fit again")
    if list(posterior.columns) != [*names, "weight", "distance"]:
        raise InputError(f"error: {targets.path}: parameters: expected those of the fit in {out} "
                         f"({', '.join(c for c in posterior.columns if c not in ('weight', 'distance'))}), "
                         f"found {', '.join(names)}; the targets file changed since the fit: run the fit again")
    full = generations[generations.fit == "full"]
    last = Generation(int(full.generation.iloc[-1]) if len(full) else 0, fit["final_epsilon"],
                      posterior[names].to_numpy(dtype=float), posterior["weight"].to_numpy(dtype=float),
                      posterior["distance"].to_numpy(dtype=float), 0, 0)
    parameters = parameter_summary(targets, last)
    for row in parameters:
        recorded = fit_toml.get("parameters", {}).get(row["parameter"], {})
        if (recorded.get("path"), recorded.get("prior")) != (row["path"], row["prior"]):
            raise InputError(f"error: {targets.path}: parameters.{row['parameter']}: expected the path and prior of "
                             f"the fit in {out} ({recorded.get('path')}, {recorded.get('prior')}), found {row['path']}, "
                             f"{row['prior']}; the targets file changed since the fit: run the fit again")

    fan_panels = []
    reported = set(targets.spec.reporting)
    for (series, measure), q in monthly.groupby(["series", "measure"], sort=False):
        q = q.reset_index(drop=True)
        observed = [(i, row.observed_lo, row.observed_hi) for i, row in q.iterrows() if not math.isnan(row.observed_lo)]
        label = series.replace("_", " ") + ("" if series not in reported else
                                            " (claimed)" if measure == "reported" else " (launched, before reporting)")
        fan_panels.append((label, {c: q[c].tolist() for c in ("q05", "q25", "q50", "q75", "q95")}, observed))
    months = list(monthly[(monthly.series == monthly.series.iloc[0]) & (monthly.measure == "reported")].month)
    prior_panels = [(name, p.prior.frozen(), last.particles[:, k].tolist(), last.weights.tolist())
                    for k, (name, p) in enumerate(targets.spec.parameters.items())]
    paths = [(label, list(g.generation), list(g.epsilon), list(g.acceptance)) for label, g in generations.groupby("fit", sort=False)]
    rows = [_check_row(t, reported) for t in checks.itertuples()]
    reporting = reporting_rows(targets)
    description = targets.spec.fit.description
    reproduce = shlex.join(fit["command"].split())
    render(
        "fit.html.j2", out / "report.html",
        title=f"escalation-sim calibration: {fit['name']}", fit=fit, description=description,
        fan_svg=figures.observed_fan(months, fan_panels), prior_svg=figures.prior_posterior(prior_panels),
        tolerance_svg=figures.tolerance_path(paths), parameters=parameters, checks=rows, reporting=reporting,
        generations=generations.to_dict("records"), scores=scores.to_dict("records"),
        reproduce=reproduce, versions=fit_toml["versions"],
    )
    write_text(out / "report.md", _markdown(fit, description, reproduce, fit_toml["versions"], parameters, rows,
                                            generations, scores, reporting))
    write_text(out / "parameters.csv", pd.DataFrame(parameters, columns=SUMMARY_COLUMNS)
               .to_csv(index=False, float_format=FLOAT))
    return [out / name for name in REPORT_FILES]


def rebuild_fit_report(out: Path) -> list[Path]:
    """Rebuild the report files of a fit folder from its saved files and the targets file it was fitted to."""
    from sim.calibration.targets import load_targets

    out = Path(out)
    require_files(out, FIT_FILES, "calibration fit")
    recorded = read_fit_toml(out / "fit.toml")["fit"]["targets"]
    return write_fit_report(out, load_targets(_targets_path(out, recorded)))


def read_fit_toml(path: Path) -> dict:
    data = read_toml(path, what="fit record (fit.toml)")
    missing = [f"fit.{k}" for k in ("name", "targets", "command", "final_epsilon") if k not in data.get("fit", {})]
    missing += [] if isinstance(data.get("versions"), dict) else ["versions"]
    if missing:
        raise InputError(f"error: {path}: expected the fit record escsim calibrate writes, found no {', '.join(missing)}")
    return data


def _targets_path(out: Path, recorded: str) -> Path:
    """The targets file of a fit: as recorded (absolute, or relative to where the fit ran, which may be any parent
    of the fit folder)."""
    path = Path(recorded)
    candidates = [path] if path.is_absolute() else [path, *(parent / path for parent in out.resolve().parents)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise InputError(f"error: {out / 'fit.toml'}: fit.targets: expected the targets file {recorded} (for the priors), "
                     f"found no such file relative to the current folder or any parent of {out}; restore it to rebuild "
                     "the report")


# The tables of a fit folder that its report reads: their columns in order, and which hold text
# (the others hold numbers or, for the `consistent_90` and `covered_90` flags, booleans).
FIT_TABLES = {
    "generations.csv": (("fit", "generation", "epsilon", "particles", "simulations", "proposals", "acceptance", "ess"),
                        ("fit",)),
    "predictive_monthly.csv": (("month", "series", "mean", "q05", "q25", "q50", "q75", "q95", "observed_lo",
                                "observed_hi", "measure"), ("month", "series", "measure")),
    "predictive_targets.csv": (("target", "kind", "series", "start", "end", "observation", "observed_lo", "observed_hi",
                                "mean", "q05", "q50", "q95", "consistent_90", "p_observed", "source", "simulated_mean",
                                "simulated_q05", "simulated_q50", "simulated_q95"),
                               ("target", "kind", "series", "start", "end", "observation", "source")),
    "scores.csv": (("target", "forecaster", "observed", "forecast_mean", "q05", "q95", "crps", "interval_score_90",
                    "covered_90", "pit"), ("target", "forecaster")),
}


# Columns a table gained after fits were committed, in the order they were added (each at the end), with
# the value a fit made before then reads as: its report says a source was not recorded; a fit before
# reporting models reported what it simulated (its months are the simulated ones, and its targets'
# simulated predictive is not recorded).
NOT_RECORDED = "not recorded (the fit predates it)"
ADDED_COLUMNS = {
    "predictive_targets.csv": {"source": NOT_RECORDED, "simulated_mean": math.nan, "simulated_q05": math.nan,
                               "simulated_q50": math.nan, "simulated_q95": math.nan},
    "predictive_monthly.csv": {"measure": "reported"},
}


def _csv(path: Path) -> pd.DataFrame:
    """A table of the fit, checked for the columns `FIT_TABLES` gives it, text columns read as text (a
    target may be called "NA"); no rows (no scores) as empty. A table that is not one is an InputError
    naming the file, never quoting it."""
    columns, text = FIT_TABLES[path.name]
    try:
        table = pd.read_csv(path, keep_default_na=False, na_values=[""], dtype=dict.fromkeys(text, str))
    except pd.errors.EmptyDataError:
        return pd.DataFrame(columns=list(columns))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError):
        table = None
    added = ADDED_COLUMNS.get(path.name, {})
    if table is not None and len(table.columns) < len(columns) and \
            len(table.columns) >= len(columns) - len(added) and tuple(table.columns) == columns[:len(table.columns)]:
        for name in columns[len(table.columns):]:
            table[name] = added[name]
    wrong = table is None or tuple(table.columns) != columns or any(
        not (pd.api.types.is_numeric_dtype(table[c]) or pd.api.types.is_bool_dtype(table[c]))
        for c in columns if c not in text)
    if wrong:
        raise InputError(f"error: {path}: expected the table escsim calibrate writes there (columns "
                         f"{', '.join(columns)}; numbers except {', '.join(text)}), found a file that is not one or "
                         "holds other columns or values; run the fit again")
    return table


def _posterior(path: Path, names: list[str]) -> pd.DataFrame:
    """A fit's particles: a number per parameter, weight and distance, weights that can be normalised."""
    import pyarrow as pa

    from sim.runs.reading import open_parquet

    schema = open_parquet(path, "the posterior of a calibration fit").schema_arrow
    if not {"weight", "distance"} <= set(schema.names) or not all(pa.types.is_floating(f.type) for f in schema):
        raise InputError(f"error: {path}: expected the particles of a fit (a number per parameter, weight and "
                         "distance), found other columns or types; run the fit again")
    posterior = read_frame(path)
    weights = posterior["weight"].to_numpy(dtype=float)
    if len(posterior) == 0 or not np.isfinite(posterior.to_numpy(dtype=float)).all() or (weights < 0).any() \
            or weights.sum() <= 0:
        raise InputError(f"error: {path}: expected particles with finite values and non-negative weights that sum "
                         f"to more than 0, found {len(posterior):,} particles that do not; run the fit again")
    return posterior


def reporting_rows(targets) -> list[dict]:
    """Each series' reporting model: its fields, fixed or fitted (by which parameter)."""
    from sim.model.observation import FIELDS
    from sim.scenario.schema import REPORTING_PREFIX

    fitted = {p.path.removeprefix(REPORTING_PREFIX): name for name, p in targets.spec.parameters.items()
              if p.path.startswith(REPORTING_PREFIX)}
    rows = []
    for series, r in targets.spec.reporting.items():
        values = [f"fitted ({fitted[f'{series}.{f}']})" if f"{series}.{f}" in fitted else f"{getattr(r, f):g}"
                  for f in FIELDS]
        rows.append({"series": series, **dict(zip(FIELDS, values, strict=True)), "why": r.why})
    return rows


def _check_row(t, reported: set[str]) -> dict:
    if t.kind == "count":
        observed = f"{t.observed_lo:g}" if t.observed_lo == t.observed_hi else (
            f"≥ {t.observed_lo:g}" if math.isinf(t.observed_hi) else f"{t.observed_lo:g} – {t.observed_hi:g}")
        interval = f"{t.q05:g} – {t.q95:g}"
    else:
        observed = t.observation.replace("_", " ") + f" {t.end}"
        interval = f"P(happened) {t.mean:.2f}"
    source = t.source if isinstance(t.source, str) and t.source else "—"
    simulated = "—" if t.kind != "count" or t.series not in reported or math.isnan(t.simulated_mean) else \
        f"{t.simulated_mean:.1f} ({t.simulated_q05:g} – {t.simulated_q95:g})"
    return {"target": t.target, "observed": observed, "mean": t.mean, "interval": interval,
            "consistent_90": bool(t.consistent_90), "p_observed": t.p_observed, "source": source, "simulated": simulated}


def _reporting_markdown(reporting: list[dict], checks: list[dict]) -> list[str]:
    """The reporting model's section: what each series' counts are claims of, and the simulated
    (before reporting) predictive of each target beside its claims'."""
    if not reporting:
        return ["No series has a reporting model: each count is compared with the simulated count itself.\n"]
    return [
        "## Reporting model\n",
        "The counts of these series are claims: each launch is claimed with probability `claimed`, and spurious claims "
        "come at `spurious_per_launch` per launch and `spurious_per_day` per day (Poisson).\n",
        md.table(["Series", "Claimed", "Spurious per launch", "Spurious per day", "Why"],
                 [[r["series"], r["claimed"], r["spurious_per_launch"], r["spurious_per_day"], md.text(r["why"])]
                  for r in reporting], left=(0, 1, 2, 3, 4)),
        md.table(["Target", "Claims: predictive mean", "Simulated before reporting: mean (90%)"],
                 [[t["target"], f"{t['mean']:.1f}", t["simulated"]] for t in checks if t["simulated"] != "—"],
                 left=(0, 2)),
    ]


def _g(x: float, spec: str = ".3g") -> str:
    return "—" if isinstance(x, float) and np.isnan(x) else format(x, spec)


def _markdown(fit: dict, description: str, reproduce: str, versions: dict, parameters: list[dict], checks: list[dict],
              generations: pd.DataFrame, scores: pd.DataFrame, reporting: list[dict]) -> str:
    parts = [f"# Calibration: {md.text(fit['name'])}\n"]
    if description:
        parts.append(f"{md.text(description)}\n")
    parts += [
        f"- Scenario: {md.code(fit.get('scenario', ''))}",
        f"- Targets: {md.code(fit['targets'])}",
        f"- Budget: {fit.get('budget', '')} ({fit.get('particles', '')} particles, {fit.get('generations', '')} "
        f"generations, {fit.get('simulations', 0):,} simulations, final ε {fit['final_epsilon']:.3g})",
        f"- Seed: {fit.get('seed', '')}",
        f"- Run: {fit.get('started_at', '')}, {fit.get('elapsed_seconds', '')} s on {fit.get('workers', '')} worker(s)"
        + (" in the session that resumed and finished it (the earlier sessions' time is not counted)"
           if fit.get("resumed") else ""),
        f"- Versions: {md.versions(versions)}",
        f"- Command: {md.code(fit['command'])}",
        f"- Reproduce: {md.code(reproduce)}\n",
        "## Targets: observed and posterior predictive\n",
        md.table(["Target", "Observed", "Predictive mean", "90% predictive", "Consistent", "P(observed)", "Source"],
                 [[t["target"], t["observed"], f"{t['mean']:.1f}", t["interval"], "yes" if t["consistent_90"] else "no",
                   f"{t['p_observed']:.2f}", md.text(t["source"])] for t in checks], left=(0, 1, 3, 4, 6)),
        "A count target is consistent when its observed range overlaps the 90% posterior-predictive interval; an event "
        "when at least 5% of predictive trials agree with what happened.\n",
        *_reporting_markdown(reporting, checks),
        "## Parameters: prior → posterior\n",
        md.table(["Parameter", "Prior", "Prior 90%", "Posterior mean", "Posterior 90%"],
                 [[md.code(p["path"]), p["prior"], f"{p['prior_q05']:.3g} – {p['prior_q95']:.3g}", f"{p['mean']:.3g}",
                   f"{p['q05']:.3g} – {p['q95']:.3g}"] for p in parameters], left=(0, 1)),
        "## ABC-SMC generations\n",
        md.table(["Fit", "Generation", "ε", "Simulations", "Acceptance", "ESS"],
                 [[g.fit, g.generation, _g(g.epsilon), g.simulations, f"{g.acceptance:.3f}", f"{g.ess:.0f}"]
                  for g in generations.itertuples()]),
        "## Time-split validation\n",
        f"The split fit uses only the targets that end by {fit.get('fit_until', '')} and forecasts the rest; lower CRPS "
        "and interval score are better.\n",
        md.table(["Target", "Forecaster", "Observed", "Forecast mean", "90% interval", "CRPS", "Interval score",
                  "Covered", "PIT"],
                 [[s.target, s.forecaster, f"{s.observed:g}", f"{s.forecast_mean:.1f}", f"{s.q05:g} – {s.q95:g}",
                   _g(s.crps, ".2f"), _g(s.interval_score_90, ".1f"), "yes" if s.covered_90 else "no", f"{s.pit:.2f}"]
                  for s in scores.itertuples()], left=(0, 1, 7)),
        "The tables round; `parameters.csv`, `predictive_targets.csv`, `generations.csv` and `scores.csv` beside this "
        "file hold them with their full numbers, `posterior.parquet` the weighted posterior sample.\n",
    ]
    return "\n".join(parts)
