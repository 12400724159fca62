"""The report of a run folder: milestone probabilities, monthly fan chart, ladder, counts.

`report.html` is one self-contained page; `report.md` holds its tables as Markdown, and each table is also a CSV
beside it (`milestones.csv`, `counts.csv`, `parameters.csv`). All are rebuilt byte for byte from the saved files.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.reports import figures
from sim.reports import markdown as md
from sim.reports.html import render
from sim.runs.layout import RunLayout
from sim.runs.storage import write_text
from sim.runs.summary import Summary, day_label
from sim.scenario import Scenario
from sim.scenario.schema import Militia

REPORT_FILES = ("report.html", "report.md", "milestones.csv", "counts.csv", "parameters.csv")
FLOAT = "%.6g"
QUANTILES = (5, 25, 50, 75, 95)  # the percentiles of the counts table


def write_run_report(out: Path, scenario: Scenario, summary: Summary, manifest: dict) -> list[Path]:
    """Write the report files (`REPORT_FILES`) of a run folder; return their paths."""
    lay = summary.layout
    table = summary.table().set_index("metric")
    milestones = []
    for name in lay.ordered:
        row = table.loc[f"p_{name}"]
        median = float(table.loc[f"median_t_{name}", "estimate"])
        milestones.append({
            "name": name, "label": lay.labels[name], "p": row.estimate, "lo": row.lo, "hi": row.hi,
            "by": [table.loc[f"p_{name}_by_{day_label(d)}d", "estimate"] for d in lay.by_days],
            "median": "—" if math.isnan(median) else f"{median:.1f}", "median_day": median,
        })
    fan = summary.fan()
    panels = []
    for series in lay.monthly_series:
        if series.startswith("attacks_on_"):
            q = fan[fan.series == series]
            panels.append((f"Attacks on {series.removeprefix('attacks_on_')}", {c: q[c].tolist() for c in ("mean", "q05", "q25", "q50", "q75", "q95")}))
    counts = []
    for series in lay.series:
        counts.append({"name": series, "mean": table.loc[f"mean_{series}", "estimate"],
                       "q": [table.loc[f"q{p:02d}_{series}", "estimate"] for p in QUANTILES]})
    parameters = key_parameters(scenario)
    render(
        "run.html.j2", out / "report.html",
        title=f"escalation-sim run: {scenario.scenario.name}",
        scenario=scenario.scenario, manifest=manifest, by_days=lay.by_days, milestones=milestones,
        milestone_svg=figures.probability_bars(
            [m["label"] for m in milestones], [m["p"] for m in milestones],
            [m["lo"] for m in milestones], [m["hi"] for m in milestones],
            f"P(milestone within {lay.horizon_days:g} days)",
        ),
        fan_svg=figures.fan_chart(lay.months, panels) if panels else "",
        rung_svg=figures.rung_bars(["none"] + [lay.labels[m] for m in lay.ladder], summary.rung_distribution()),
        counts=counts, parameters=parameters,
        reproduce=manifest["reproduce"], versions=manifest["versions"],
    )
    write_text(out / "report.md", _markdown(scenario, manifest, lay.by_days, milestones, counts, parameters))
    by = [f"by_{day_label(d)}d" for d in lay.by_days]
    write_text(out / "milestones.csv", pd.DataFrame(
        [(m["name"], m["label"], m["p"], m["lo"], m["hi"], *m["by"], m["median_day"]) for m in milestones],
        columns=["milestone", "label", "estimate", "lo", "hi", *by, "median_day"],
    ).to_csv(index=False, float_format=FLOAT))
    write_text(out / "counts.csv", pd.DataFrame(
        [(c["name"], c["mean"], *c["q"]) for c in counts],
        columns=["series", "mean", *(f"q{p:02d}" for p in QUANTILES)],
    ).to_csv(index=False, float_format=FLOAT))
    write_text(out / "parameters.csv", pd.DataFrame(parameters, columns=["parameter", "value"]).to_csv(index=False))
    return [out / name for name in REPORT_FILES]


def _markdown(scenario: Scenario, manifest: dict, by_days, milestones: list[dict], counts: list[dict],
              parameters: list[tuple[str, str]]) -> str:
    s = scenario.scenario
    parts = [f"# Run: {s.name}\n"]
    if s.description:
        parts.append(f"{s.description}\n")
    parts += [
        f"- Start date: {s.start_date}",
        f"- Horizon: {s.horizon_days:g} days",
        f"- Seed: {manifest['seed']}",
        f"- Trials: {manifest['trials']:,}",
        f"- Scenario hash: {md.code(manifest['config_hash'])}",
        f"- Run: {manifest['started_at']} → {manifest['finished_at']}",
        f"- Versions: {md.versions(manifest['versions'])}",
        f"- Command: {md.code(manifest['command'])}",
        f"- Reproduce: {md.code(manifest['reproduce'])}\n",
        "## Escalation milestones\n",
        md.table(["Milestone", "P(by horizon)", "95% interval", *(f"P(≤ {d:g} d)" for d in by_days),
                  "Median day if reached"],
                 [[m["label"], f"{m['p']:.3f}", f"{m['lo']:.3f} – {m['hi']:.3f}", *(f"{p:.3f}" for p in m["by"]),
                   m["median"]] for m in milestones]),
        f"Probabilities with 95% Wilson intervals over {manifest['trials']:,} trials (Monte Carlo error only); "
        f"the median day counts from {s.start_date}, among trials that reach the milestone.\n",
        "## Counts per trial\n",
        md.table(["Series", "Mean", "5%", "25%", "Median", "75%", "95%"],
                 [[c["name"], f"{c['mean']:.2f}", *(f"{q:g}" for q in c["q"])] for c in counts]),
        "## Key parameters\n",
        md.table(["Parameter", "Value"], [[md.code(path), value] for path, value in parameters], left=(0, 1)),
        "`milestones.csv`, `counts.csv` and `parameters.csv` beside this file hold these tables; `summary.csv` "
        "every metric with its full numbers.\n",
    ]
    return "\n".join(parts)


def key_parameters(scenario: Scenario) -> list[tuple[str, str]]:
    """The numbers an analyst most often asks about, by their dotted path."""
    rows = []
    for name, actor in scenario.actors.items():
        if isinstance(actor, Militia):
            for target, ch in actor.attacks.items():
                rows.append((f"actors.{name}.attacks.{target}.rate_per_day", f"{ch.rate_per_day:g}"))
                if ch.initial_restraint:
                    rows.append((f"actors.{name}.attacks.{target}.initial_restraint",
                                 f"×{ch.initial_restraint.factor:g} for {ch.initial_restraint.remaining_days:g} days"))
            if actor.excitation:
                for j, a in actor.excitation.from_.items():
                    rows.append((f"actors.{name}.excitation.from.{j}", f"{a:g} (memory {actor.excitation.memory_days:g} days)"))
            if actor.redirect:
                rows.append((f"actors.{name}.redirect.share", f"{actor.redirect.share:g} (ramp {actor.redirect.ramp_days:g} days)"))
        else:
            for rule_name, rule in actor.rules.items():
                restraint = "".join(f", {a} restrains {r:g}" for a, r in rule.ally_restraint.items())
                rows.append((f"actors.{name}.rules.{rule_name}",
                             f"harm {rule.harm} ≥ {rule.threshold:g}: p {rule.probability:g}{restraint}"))
    return rows


def rebuild_run_report(out: Path) -> list[Path]:
    """Rebuild the report files of a finished run folder from its saved files only; return their paths."""
    from sim.runs.reading import read_run_folder

    out = Path(out)
    require_files(out, ("manifest.json", "scenario.toml", "trials.parquet", "monthly.parquet"), "run")
    manifest, scenario = read_run_folder(out)  # each file checked against the scenario and manifest
    layout = RunLayout.of(scenario)
    summary = Summary(layout)
    trials = pq.ParquetFile(out / "trials.parquet", pre_buffer=False)
    monthly = _Rows(pq.ParquetFile(out / "monthly.parquet", pre_buffer=False).iter_batches(columns=["count"], use_threads=False))
    n_series, n_months = len(layout.monthly_series), len(layout.months)
    for batch in trials.iter_batches(use_threads=False):
        n = batch.num_rows
        days = np.column_stack([batch.column(f"t_{m}").to_numpy() for m in layout.milestones])
        totals = np.column_stack([batch.column(s).to_numpy() for s in layout.series])
        counts = monthly.take(n * n_months * n_series)
        summary.add(days, batch.column("max_rung").to_numpy(), totals,
                    counts.reshape(n, n_months, n_series).transpose(0, 2, 1), batch.column("n_events").to_numpy())
    return write_run_report(out, scenario, summary, manifest)


def require_files(out: Path, names, what: str) -> None:
    """Fail in one line, naming them, when files a report is built from are missing from a folder."""
    missing = [name for name in names if not (Path(out) / name).is_file()]
    if missing:
        raise InputError(f"error: {out}: expected a finished {what} folder, found no {', '.join(missing)} there")


class _Rows:
    """Hands out exact numbers of values from a stream of record batches of one column."""

    def __init__(self, batches):
        self._batches = batches
        self._buffer = np.zeros(0, dtype=np.int64)

    def take(self, n: int) -> np.ndarray:
        parts, have = [self._buffer], self._buffer.size
        while have < n:
            values = next(self._batches).column(0).to_numpy()
            parts.append(values)
            have += values.size
        joined = np.concatenate(parts)
        self._buffer = joined[n:]
        return joined[:n]
