"""The report of a run folder: milestone probabilities, monthly fan chart, ladder, counts."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.reports import figures
from sim.reports.html import render
from sim.runs.layout import RunLayout, trials_schema
from sim.runs.manifest import read_json
from sim.runs.summary import Summary, day_label
from sim.scenario import Scenario, load_scenario
from sim.scenario.schema import Militia


def write_run_report(out: Path, scenario: Scenario, summary: Summary, manifest: dict) -> None:
    lay = summary.layout
    table = summary.table().set_index("metric")
    milestones = []
    for name in lay.ladder:
        row = table.loc[f"p_{name}"]
        median = table.loc[f"median_t_{name}", "estimate"]
        milestones.append({
            "name": name, "label": lay.labels[name], "p": row.estimate, "lo": row.lo, "hi": row.hi,
            "by": [table.loc[f"p_{name}_by_{day_label(d)}d", "estimate"] for d in lay.by_days],
            "median": "—" if math.isnan(median) else f"{median:.1f}",
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
                       "q": [table.loc[f"q{p:02d}_{series}", "estimate"] for p in (5, 25, 50, 75, 95)]})
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
        counts=counts, parameters=key_parameters(scenario),
        reproduce=manifest["reproduce"], versions=manifest["versions"],
    )


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


def rebuild_run_report(out: Path) -> None:
    """Rebuild `report.html` of a finished run folder from its saved files only."""
    manifest = read_json(out / "manifest.json")
    scenario = load_scenario(out / "scenario.toml")
    layout = RunLayout.of(scenario)
    summary = Summary(layout)
    trials = pq.ParquetFile(out / "trials.parquet")
    expected = trials_schema(layout).names
    if trials.schema_arrow.names != expected:
        raise InputError(
            f"error: {out / 'trials.parquet'}: expected the columns this version writes for the saved "
            f"scenario ({len(expected)} columns), found {len(trials.schema_arrow.names)} others; "
            "the folder was written by another version: run the scenario again"
        )
    monthly = _Rows(pq.ParquetFile(out / "monthly.parquet").iter_batches(columns=["count"]))
    n_series, n_months = len(layout.monthly_series), len(layout.months)
    for batch in trials.iter_batches():
        n = batch.num_rows
        days = np.column_stack([batch.column(f"t_{m}").to_numpy() for m in layout.milestones])
        totals = np.column_stack([batch.column(s).to_numpy() for s in layout.series])
        counts = monthly.take(n * n_months * n_series)
        summary.add(days, batch.column("max_rung").to_numpy(), totals,
                    counts.reshape(n, n_months, n_series).transpose(0, 2, 1), batch.column("n_events").to_numpy())
    write_run_report(out, scenario, summary, manifest)


class _Rows:
    """Hands out exact numbers of values from a stream of record batches of one column."""

    def __init__(self, batches):
        self._batches = batches
        self._buffer = np.zeros(0, dtype=np.int32)

    def take(self, n: int) -> np.ndarray:
        parts, have = [self._buffer], self._buffer.size
        while have < n:
            values = next(self._batches).column(0).to_numpy()
            parts.append(values)
            have += values.size
        joined = np.concatenate(parts)
        self._buffer = joined[n:]
        return joined[:n]
