"""The report of a comparison folder: scenarios side by side, trial by trial.

`report.html` (one self-contained page, inline SVG) shows what each scenario assumes where they differ,
the milestone probabilities, the time to each milestone (Kaplan–Meier), the per-trial counts (ECDFs),
the monthly attacks (overlaid fan charts) and the highest rung of the ladder; then for each pair the
rows of `comparison.csv`: B − A with its paired interval, test and p-value, and what pairing gained.
`report.md` holds the same tables as Markdown, and each table is also a CSV beside the report
(`comparison.csv`, `milestones.csv`, `ladder.csv`, `parameters.csv`).

Everything is read from the saved files (the runs' `summary.csv`, `trials.parquet`, `monthly.parquet`,
`scenario.toml`), one Parquet column at a time, and reduced to a few hundred points a line, so the
report of a million trials is as small as that of a hundred, and a rebuild is byte for byte the same.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sim.comparison.runner import NOT_COMPARABLE, arm_pairs
from sim.comparison.stats import kaplan_meier, paired_proportion_difference, survival_at
from sim.errors import InputError
from sim.reports import compare_figures as figs
from sim.reports import markdown as md
from sim.reports.html import render
from sim.reports.labels import PARTIAL_NOTE, marked_months, month_scale, series_label
from sim.reports.numbers import decimals, estimate, number, probability
from sim.reports.numbers import interval as _interval
from sim.reports.numbers import signed as _signed
from sim.reports.run import WRITTEN, key_parameters
from sim.runs.layout import RunLayout
from sim.runs.storage import read_table, write_text
from sim.runs.summary import count_quantile, path_codes, path_names
from sim.scenario import Scenario, load_scenario
from sim.scenario.loading import to_plain
from sim.scenario.paths import get

MAX_POINTS = 600  # points of a step line beyond which it is drawn on a regular grid instead
FLOAT = "%.6g"


@dataclass
class _Arm:
    name: str
    folder: str  # as the manifest records it
    path: Path  # where it was found
    description: str
    config_hash: str | None
    scenario: Scenario
    layout: RunLayout

    def column(self, name: str) -> np.ndarray:
        return read_table(self.path / "trials.parquet", columns=[name]).column(0).to_numpy()

    def has_column(self, name: str) -> bool:
        return name in pq.ParquetFile(self.path / "trials.parquet", pre_buffer=False).schema_arrow.names


def write_compare_report(out: Path, *, manifest: dict) -> None:
    out = Path(out)
    arms = [_arm(out, entry) for entry in manifest["scenarios"]]
    names = [a.name for a in arms]
    horizon = arms[0].layout.horizon_days
    labels = _labels(arms)
    milestones = _ordered(arms, lambda a: [*a.layout.ladder, *(m for m in a.layout.milestones if m not in a.layout.ladder)])
    series = _ordered(arms, lambda a: a.layout.series)
    count_series = [s for s in series if s.startswith(("attacks_on_", "hits_on_", "casualties_on_"))]
    attack_series = _ordered(arms, lambda a: [s for s in a.layout.monthly_series if s.startswith("attacks_on_")])

    probabilities = _milestone_table(arms, milestones)
    km_panels = [(labels.get(m, m), [_first_passage(a, m, horizon) for a in arms]) for m in milestones]
    scenarios = [a.scenario for a in arms]
    series_labels = {s: series_label(s, scenarios) for s in series}
    labels.update({k: v for k, v in series_labels.items() if k not in labels})
    ecdf_panels = [(series_labels[s], [_ecdf(a, s) for a in arms]) for s in count_series]
    months, fans, scales = _fans(arms, attack_series)
    rung_labels, shares = _ladder(arms)
    parameters = _parameters(arms)
    text = ["a", "b", "metric", "interval", "test", "only_in"]
    comparison = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""], dtype=dict.fromkeys(text, str))
    comparison[text] = comparison[text].fillna("")
    pairs = [_pair(comparison, a, b, labels, horizon) for a, b in arm_pairs(names, manifest.get("pairs", "all"))]
    by_name = {a.name: a for a in arms}
    for pair in pairs:
        pair["paths"], pair["paths_note"] = _pathway_shift(by_name[pair["a"]], by_name[pair["b"]])
        pair["roots"], pair["roots_note"] = _root_shift(by_name[pair["a"]], by_name[pair["b"]])

    milestone_rows = [{"label": labels.get(m, m), "milestone": m,
                       "cells": [_p_cell(probabilities.get((a.name, m))) for a in arms]} for m in milestones]
    ladder_rows = [{"label": label, "cells": [f"{row[r]:.1%}" for row in shares]} for r, label in enumerate(rung_labels)]

    p = [[probabilities.get((a.name, m), (math.nan,) * 3) for m in milestones] for a in arms]
    figures = {
        "milestones": figs.milestone_bars([labels.get(m, m) for m in milestones], names,
                                          [[v[0] for v in row] for row in p], [[v[1] for v in row] for row in p],
                                          [[v[2] for v in row] for row in p],
                                          f"P(milestone within {horizon:g} days)") if milestones else "",
        "km": figs.step_panels(km_panels, names, "day", "P(reached by day)", xlim=(0, horizon),
                                 fit_y=True) if km_panels else "",
        "ecdf": figs.step_panels(ecdf_panels, names, "count per trial", "share of trials ≤ count")
        if ecdf_panels else "",
        "histograms": figs.histogram_panels(
            [(series_labels[s], [_counts(a, s) for a in arms]) for s in count_series], names, "count per trial")
        if count_series else "",
        "fan": figs.fan_overlay(marked_months(months, scales), [(series_label(s, scenarios), fans[s]) for s in attack_series],
                                names, PARTIAL_NOTE) if attack_series else "",
        "ladder": figs.rung_groups(rung_labels, names, shares),
    }
    render(
        "compare.html.j2", out / "report.html",
        title=f"escalation-sim comparison: {' vs '.join(names)}",
        manifest=manifest, arms=arms, names=names, horizon=f"{horizon:g}", start_dates=_start_dates(arms),
        colours=[figs.colour(k) for k in range(len(arms))], parameters=parameters,
        milestone_rows=milestone_rows, ladder_rows=ladder_rows, pairs=pairs, figures=figures,
        reproduce=manifest["reproduce"], versions=manifest["versions"],
    )
    write_text(out / "report.md", _markdown(manifest, arms, parameters, milestone_rows, ladder_rows, pairs))
    write_text(out / "milestones.csv", pd.DataFrame(
        [(a.name, m, *probabilities[(a.name, m)]) for a in arms for m in milestones if (a.name, m) in probabilities],
        columns=["scenario", "milestone", "estimate", "lo", "hi"]).to_csv(index=False, float_format=FLOAT))
    write_text(out / "ladder.csv", pd.DataFrame(
        [(a.name, r, row[r]) for a, row in zip(arms, shares, strict=True) for r in range(len(rung_labels))],
        columns=["scenario", "rung", "share"]).to_csv(index=False, float_format=FLOAT))
    write_text(out / "parameters.csv", pd.DataFrame(
        [(row["path"], a.name, value) for row in parameters for a, value in zip(arms, row["values"], strict=True)],
        columns=["parameter", "scenario", "value"]).to_csv(index=False))


def rebuild_compare_report(out: Path) -> None:
    """Rebuild the report files of a finished comparison folder from its saved files only."""
    from sim.runs.reading import check_run_files, read_manifest

    out = Path(out)
    manifest = read_manifest(out, "compare")
    if not (out / "comparison.csv").is_file():
        raise InputError(f"error: {out}: expected a finished comparison folder, found no comparison.csv there")
    for entry in manifest["scenarios"]:  # each run folder checked against its scenario before any is read
        arm = _arm(out, entry)
        check_run_files(arm.path, arm.scenario, manifest["trials"])
    write_compare_report(out, manifest=manifest)


# --- reading -------------------------------------------------------------------------------------------------------


def _arm(out: Path, entry: dict) -> _Arm:
    """A scenario of the comparison and its run folder: as recorded (absolute, or relative to where the comparison
    ran, which may be any parent of the compare folder), else under the compare folder's `runs/`."""
    recorded = Path(entry["folder"])
    candidates = [recorded] if recorded.is_absolute() else [
        recorded, *(parent / recorded for parent in out.resolve().parents)]
    candidates.append(out / "runs" / entry["name"])
    for path in candidates:
        if (path / "trials.parquet").is_file() and (path / "scenario.toml").is_file():
            scenario = load_scenario(path / "scenario.toml")
            return _Arm(entry["name"], entry["folder"], path, entry.get("description") or "",
                        entry.get("config_hash"), scenario, RunLayout.of(scenario))
    raise InputError(f"error: {out / 'manifest.json'}: scenarios: expected the run folder of {entry['name']} at "
                     f"{entry['folder']} (or {out / 'runs' / entry['name']}), found no trials.parquet and "
                     "scenario.toml there; run the comparison again")


def _ordered(arms: list[_Arm], items) -> list[str]:
    """The union of each arm's list, in the first arm's order, then the ones only later arms have."""
    seen: dict[str, None] = {}
    for a in arms:
        seen.update(dict.fromkeys(items(a)))
    return list(seen)


def _labels(arms: list[_Arm]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for a in arms:
        for k, v in a.layout.labels.items():
            labels.setdefault(k, v)
    return labels


def _milestone_table(arms: list[_Arm], milestones: list[str]) -> dict[tuple[str, str], tuple[float, float, float]]:
    """(scenario, milestone) → (estimate, lo, hi) from each run's summary.csv (Wilson intervals)."""
    table = {}
    for a in arms:
        summary = pd.read_csv(a.path / "summary.csv", keep_default_na=False, na_values=[""],
                              dtype={"metric": str}).set_index("metric")
        for m in milestones:
            if f"p_{m}" in summary.index:
                row = summary.loc[f"p_{m}"]
                table[(a.name, m)] = (float(row["estimate"]), float(row["lo"]), float(row["hi"]))
    return table


def _first_passage(arm: _Arm, milestone: str, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """1 − S(t) of the Kaplan–Meier curve of the days to a milestone, as a step line up to the horizon."""
    if milestone not in arm.layout.milestones:
        return np.zeros(0), np.zeros(0)
    km = kaplan_meier(arm.column(f"t_{milestone}"), horizon)
    if km.t.size <= MAX_POINTS:
        x = np.append(km.t, horizon)
        y = 1.0 - np.append(km.survival, km.survival[-1])
    else:
        x = np.linspace(0.0, horizon, MAX_POINTS + 1)
        y = 1.0 - survival_at(km, x)
    return x, y


def _counts(arm: _Arm, series: str) -> np.ndarray:
    """A per-trial count of one arm (empty when the arm has no such series)."""
    return arm.column(series).astype(float) if series in arm.layout.series else np.zeros(0)


def _ecdf(arm: _Arm, series: str) -> tuple[np.ndarray, np.ndarray]:
    """The empirical CDF of a per-trial count, at its distinct values (or on a regular grid if there are many)."""
    if series not in arm.layout.series:
        return np.zeros(0), np.zeros(0)
    values = np.sort(arm.column(series).astype(float))
    if values.size == 0:
        return np.zeros(0), np.zeros(0)
    distinct = np.unique(values)
    x = distinct if distinct.size <= MAX_POINTS else np.linspace(values[0], values[-1], MAX_POINTS + 1)
    y = np.searchsorted(values, x, side="right") / values.size
    return np.concatenate([[x[0]], x]), np.concatenate([[0.0], y])


def _fans(arms: list[_Arm], attack_series: list[str]) -> tuple[list[str], dict[str, list[dict | None]], list[list[float]]]:
    """Months (the union, in order), per series each arm's 5%, 50% and 95% quantiles across trials per month, a
    partial month's scaled to the whole month, and each arm's scale per month (`month_scale`)."""
    months = sorted({m for a in arms for m in a.layout.months})
    fans: dict[str, list[dict | None]] = {s: [] for s in attack_series}
    scales = []
    for a in arms:
        scale = np.asarray(month_scale(a.scenario.scenario.start_date, a.layout.horizon_days, months))
        scales.append(list(scale))
        wanted = [s for s in attack_series if s in a.layout.monthly_series]
        q = None
        if wanted:
            table = read_table(a.path / "monthly.parquet", columns=["month", "series", "count"])
            frame = table.filter(pc.is_in(table["series"], pa.array(wanted))).to_pandas(use_threads=False)
            q = frame.groupby(["series", "month"], observed=True, sort=True)["count"].agg(
                [lambda v, p=p: count_quantile(v.to_numpy(), p) for p in (0.05, 0.5, 0.95)])
            q.columns = [0.05, 0.5, 0.95]
            q.index = pd.MultiIndex.from_tuples([(str(s), str(m)) for s, m in q.index])
        for s in attack_series:
            if s not in wanted:
                fans[s].append(None)
                continue
            part = q.loc[s].reindex(months)
            fans[s].append({k: (part[p].to_numpy() * scale).tolist() for k, p in (("q05", 0.05), ("q50", 0.5), ("q95", 0.95))})
    return months, fans, scales


def _ladder(arms: list[_Arm]) -> tuple[list[str], list[list[float]]]:
    """Rung labels (0 = none reached) and each arm's share of trials whose highest rung is each."""
    ladders = [a.layout.ladder for a in arms]
    n = max(len(ladder) for ladder in ladders) + 1
    if all(ladder == ladders[0] for ladder in ladders):
        labels = ["none"] + [arms[0].layout.labels.get(m, m) for m in ladders[0]]
    else:
        labels = ["none"] + [f"rung {r}" for r in range(1, n)]
    shares = []
    for a in arms:
        rungs = a.column("max_rung").astype(np.int64)
        counts = np.bincount(rungs, minlength=n)[:n] if rungs.size else np.zeros(n)
        shares.append([float(c) / max(rungs.size, 1) for c in counts])
    return labels, shares


def _start_dates(arms: list[_Arm]) -> str:
    dates = sorted({str(a.scenario.scenario.start_date) for a in arms})
    return dates[0] if len(dates) == 1 else "differs (see below)"


def _parameters(arms: list[_Arm]) -> list[dict]:
    """The key parameters (with the start date and the shocks) whose values differ between the scenarios, a drawn one
    as the trials drew it with its source; — where one lacks it."""
    values = []
    for a in arms:
        particles = None
        if a.layout.particles:  # as the trials drew them, from the posterior
            particles = np.unique(a.column("particle").astype(np.int64), return_counts=True)
        rows = [("scenario.start_date", str(a.scenario.scenario.start_date)),
                *((p.path, p.value if p.source.startswith(WRITTEN) else f"{p.value}, {p.source}")
                  for p in key_parameters(a.scenario, particles)),
                *((f"shocks.{name}", _shock(shock)) for name, shock in a.scenario.shocks.items())]
        values.append(dict(rows))
    paths = list(dict.fromkeys(path for v in values for path in v))
    rows = []
    for path in paths:
        cells = [v.get(path) or _written(a.scenario, path) for a, v in zip(arms, values, strict=True)]
        if len(set(cells)) > 1:
            rows.append({"path": path, "values": cells})
    return rows


def _written(scenario: Scenario, path: str) -> str:
    """The number a scenario writes at a key path that another scenario draws from a posterior; — if none."""
    try:
        value = get(to_plain(scenario), path)
    except (KeyError, IndexError, TypeError, ValueError):
        return "—"
    return f"{value:g}" if isinstance(value, int | float) and not isinstance(value, bool) else "—"


def _shock(shock) -> str:
    """A shock in one line: when, how likely, and its effects with the fields they set."""
    if shock.date is not None:
        when = f"on {shock.date}"
    elif shock.day is not None:
        when = f"day {shock.day:g}"
    else:
        when = f"at rate {shock.rate_per_day:g}/day"
    if shock.probability < 1:
        when += f" with p {shock.probability:g}"

    def value(v) -> str:
        if isinstance(v, list | tuple):
            return "/".join(value(x) for x in v)
        if isinstance(v, dict):
            return ", ".join(f"{k} {value(x)}" for k, x in v.items())
        return f"{v:g}" if isinstance(v, float) else str(v)

    effects = "; ".join(
        " ".join([e.type, *(f"{k} {value(v)}" for k, v in e.model_dump(exclude={"type"}, exclude_defaults=True).items())])
        for e in shock.effects)
    return f"{shock.label + ': ' if shock.label else ''}{when}: {effects}"


# --- the comparison table ------------------------------------------------------------------------------------------


def _lower(label: str) -> str:
    """A series label inside a sentence: "Attacks on Israel" → "attacks on Israel" (the actor keeps its capitals)."""
    return label[:1].lower() + label[1:]


def metric_label(metric: str, labels: dict[str, str], horizon: float) -> str:
    """A readable name for a `comparison.csv` metric."""
    if m := re.fullmatch(r"p_(.+)_by_(\d+(?:_\d+)?)d", metric):
        return f"P({labels.get(m[1], m[1])} within {m[2].replace('_', '.')} days)"
    if metric.startswith("p_"):
        return f"P({labels.get(metric[2:], metric[2:])} by {horizon:g} days)"
    if metric.startswith("rmst_"):
        return f"Mean days to {labels.get(metric[5:], metric[5:])} (capped at {horizon:g})"
    if metric == "mean_max_rung":
        return "Mean highest rung"
    if metric.startswith("mean_"):
        return f"Mean {_lower(labels.get(metric[5:], metric[5:].replace('_', ' ')))}"
    if metric.startswith("q95_"):
        return f"95th percentile of {_lower(labels.get(metric[4:], metric[4:].replace('_', ' ')))}"
    return metric.replace("_", " ")


TESTS = {"McNemar chi2, continuity-corrected": "McNemar χ²", "log-rank (Mantel-Cox)": "log-rank",
         "Wilcoxon signed-rank (zsplit)": "Wilcoxon", "Anderson-Darling k-sample": "Anderson–Darling"}


def _test(method: str) -> str:
    """The test's short name (comparison.csv keeps the full one)."""
    base = re.sub(r" \(p (capped|floored) at [\d.]+\)$", "", method)
    return TESTS.get(base, base)


def _p_value(p: float, method: str) -> str:
    """p to 3 significant digits; below 0.0001 as such, and as a bound where the test clipped it."""
    if not math.isfinite(p):
        return "—"
    if m := re.search(r"\(p (capped|floored) at ([\d.]+)\)$", method):
        return ("≥ " if m[1] == "capped" else "≤ ") + m[2]
    return "< 0.0001" if p < 1e-4 else number(p)


def _share(v: float) -> str:
    if not math.isfinite(v):
        return "—"
    text = f"{100 * v:.0f}"
    return ("0" if text == "-0" else text.replace("-", "−")) + "%"


def _pair(comparison: pd.DataFrame, a: str, b: str, labels: dict[str, str], horizon: float) -> dict:
    rows, only = [], {}
    for r in comparison[(comparison["a"] == a) & (comparison["b"] == b)].itertuples(index=False):
        if r.only_in or r.interval == NOT_COMPARABLE:
            why = f"only in {r.only_in}" if r.only_in else "not compared: the ladders differ"
            if r.only_in:
                only.setdefault(r.only_in, []).append(r.metric)
            rows.append({"metric": r.metric, "label": metric_label(r.metric, labels, horizon), "a": estimate(r.metric, r.estimate_a),
                         "b": estimate(r.metric, r.estimate_b), "difference": "—", "interval": why, "method": r.interval, "test": "—",
                         "p": "—", "unpaired": "—", "cut": "—"})
            continue
        rows.append({
            "metric": r.metric, "label": metric_label(r.metric, labels, horizon),
            "a": estimate(r.metric, r.estimate_a), "b": estimate(r.metric, r.estimate_b),
            "difference": _signed(r.difference, decimals(r.metric)),
            "interval": _interval(r.lo, r.hi, decimals(r.metric)), "method": r.interval, "test": _test(r.test),
            "p": _p_value(r.p_value, r.test), "unpaired": _interval(r.unpaired_lo, r.unpaired_hi, decimals(r.metric)),
            "cut": _share(r.variance_reduction),
        })
    return {"a": a, "b": b, "rows": rows, "only": only}


PATHS_COMPARED = 8  # the most common paths of the two scenarios together


def _paths(arm: _Arm) -> np.ndarray:
    ladder = arm.layout.ladder
    days = np.column_stack([arm.column(f"t_{m}") for m in ladder]) if ladder else np.zeros((0, 0))
    return path_names(path_codes(days), ladder)


def _pathway_shift(a: _Arm, b: _Arm) -> tuple[list[dict], str]:
    """The most common orders of rungs of the two scenarios, each with its share in A and B and the paired
    difference (Newcombe's interval: trial i of B against trial i of A)."""
    if a.layout.ladder != b.layout.ladder or not a.layout.ladder:
        return [], "not compared: the ladders differ" if a.layout.ladder != b.layout.ladder else "no ladder"
    pa_, pb = _paths(a), _paths(b)
    names, counts = np.unique(np.concatenate([pa_, pb]), return_counts=True)
    ranked = sorted(zip(names.tolist(), counts.tolist(), strict=True), key=lambda kv: (-kv[1], kv[0]))[:PATHS_COMPARED]
    rows = []
    for path, _ in ranked:
        x, y = pa_ == path, pb == path
        d = paired_proportion_difference(x, y)
        rows.append({"path": path, "a": probability(float(x.mean())), "b": probability(float(y.mean())),
                     "difference": _signed(d.estimate, 3), "interval": _interval(d.lo, d.hi, 3),
                     "moved": bool(d.lo > 0 or d.hi < 0)})
    changed = float(np.mean(pa_ != pb))
    return rows, (f"{changed:.1%} of the trials took another path in {b.name} than in {a.name} (same random streams); "
                  f"the {len(rows)} most common paths of the two together, each with the paired 95% interval of its share's "
                  "change")


def _root_shift(a: _Arm, b: _Arm) -> tuple[list[dict], str]:
    """For each rung of the ladder both scenarios have, P(the rung is reached with its cause chain
    beginning at a root) in A and B with the paired difference: the most common root of the two
    together, and every other whose share moved (its paired 95% interval leaves out 0)."""
    rungs = [m for m in a.layout.ladder if m in b.layout.ladder]
    rows = []
    for m in rungs:
        ra, rb = _roots_of(a, m), _roots_of(b, m)
        names, counts = np.unique(np.concatenate([ra[ra != ""], rb[rb != ""]]), return_counts=True)
        ranked = sorted(zip(names.tolist(), counts.tolist(), strict=True), key=lambda kv: (-kv[1], kv[0]))
        for k, (root, _) in enumerate(ranked):
            x, y = ra == root, rb == root
            d = paired_proportion_difference(x, y)
            moved = bool(d.lo > 0 or d.hi < 0)
            if k == 0 or moved:
                rows.append({"rung": a.layout.labels.get(m, m), "root": root, "a": probability(float(x.mean())),
                             "b": probability(float(y.mean())), "difference": _signed(d.estimate, 3),
                             "interval": _interval(d.lo, d.hi, 3), "moved": moved})
    if not rungs:
        return [], "no rung in both ladders"
    return rows, ("each row: the share of all trials that reached the rung with its cause chain beginning at that root "
                  "(a shock, a restraint in force at the start, a militia's spontaneous attacks; `roots.csv` of each "
                  "run); for each rung both ladders have, its most common root in the two together and every other "
                  "whose share moved, with the paired 95% interval of the change")


def _roots_of(arm: _Arm, milestone: str) -> np.ndarray:
    """Each trial's root of `milestone` ("" where not reached)."""
    column = read_table(arm.path / "trials.parquet", columns=[f"root_{milestone}"]).column(0)
    return np.asarray(column.to_pandas().astype(object).fillna("").to_numpy(), dtype=object)


def _p_cell(value: tuple[float, float, float] | None) -> str:
    if value is None:
        return "—"
    e, lo, hi = value
    return f"{number(e)} [{number(lo)}, {number(hi)}]"


# --- Markdown ------------------------------------------------------------------------------------------------------


def _markdown(manifest: dict, arms: list[_Arm], parameters: list[dict], milestone_rows: list[dict],
              ladder_rows: list[dict], pairs: list[dict]) -> str:
    names = [a.name for a in arms]
    parts = [f"# Comparison: {md.text(' vs '.join(names))}\n",
             f"- Scenarios: {md.text(', '.join(names))}",
             f"- Seed: {manifest['seed']}",
             f"- Trials: {manifest['trials']:,} per scenario (common random numbers: trial i of every scenario uses "
             "the same random streams, so differences are paired)",
             f"- Command: {md.code(manifest['command'])}",
             f"- Reproduce: {md.code(manifest['reproduce'])}\n",
             "## Scenarios\n",
             md.table(["Scenario", "Description", "Scenario hash", "Run folder"],
                       [[md.text(a.name), md.text(a.description), a.config_hash or "—", md.code(a.folder)] for a in arms], left=(0, 1, 2, 3))]
    parts.append("## Key parameters that differ\n")
    if parameters:
        parts.append(md.table(["Parameter", *names], [[md.code(r["path"]), *map(md.text, r["values"])] for r in parameters],
                               left=tuple(range(len(names) + 1))))
    else:
        parts.append("No key parameter differs between the scenarios.\n")
    parts.append("## Milestone probabilities (95% Wilson interval)\n")
    parts.append(md.table(["Milestone", *names], [[md.text(r["label"]), *r["cells"]] for r in milestone_rows]))
    parts.append("## Highest rung of the escalation ladder (share of trials)\n")
    parts.append(md.table(["Rung", *names], [[md.text(r["label"]), *r["cells"]] for r in ladder_rows]))
    for pair in pairs:
        parts.append(f"## {md.text(pair['b'])} − {md.text(pair['a'])}\n")
        parts.append(md.table(
            ["Metric", pair["a"], pair["b"], "Difference", "Paired 95% interval", "Test", "p", "Unpaired 95% interval",
             "Var. cut"],
            [[f"{md.text(r['label'])} ({md.code(r['metric'])})", r["a"], r["b"], r["difference"], r["interval"], r["test"], r["p"],
              r["unpaired"], r["cut"]] for r in pair["rows"]], left=(0, 5)))
        parts.append(f"### Pathways up the ladder: {md.text(pair['b'])} − {md.text(pair['a'])}\n")
        if pair["paths"]:
            parts.append(md.table(["Rungs in the order reached", pair["a"], pair["b"], "Difference", "Paired 95% interval"],
                                  [[md.text(r["path"]), r["a"], r["b"], r["difference"], r["interval"]] for r in pair["paths"]]))
        parts.append(md.text(pair["paths_note"]) + ".\n")
        parts.append(f"### Roots of each rung: {md.text(pair['b'])} − {md.text(pair['a'])}\n")
        if pair["roots"]:
            parts.append(md.table(["Rung", "Root of its cause chain", pair["a"], pair["b"], "Difference",
                                   "Paired 95% interval"],
                                  [[md.text(r["rung"]), md.text(r["root"]), r["a"], r["b"], r["difference"], r["interval"]]
                                   for r in pair["roots"]], left=(0, 1)))
        parts.append(md.text(pair["roots_note"]) + ".\n")
        for name, metrics in pair["only"].items():
            parts.append(f"Only {md.text(name)} has {len(metrics)} of these metrics ({', '.join(map(md.code, metrics))}): "
                         "they have its estimate and no difference (`only_in` in `comparison.csv`).\n")
    parts.append("Differences are B − A, rounded to 3 significant digits; `comparison.csv` holds the full numbers. "
                 "Var. cut: the share of the variance of the difference that pairing removed.\n")
    return "\n".join(parts)
