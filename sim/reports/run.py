"""The report of a run folder: milestone probabilities, monthly fan chart, ladder, counts.

`report.html` is one self-contained page; `report.md` holds its tables as Markdown, and each table is also a CSV
beside it (`milestones.csv`, `counts.csv`, `pathways.csv`, `parameters.csv`). All are rebuilt byte for byte from the saved files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from sim.errors import InputError
from sim.reports import figures
from sim.reports import markdown as md
from sim.reports.html import render
from sim.reports.labels import PARTIAL_NOTE, marked_months, month_scale, series_label
from sim.reports.numbers import number, probability
from sim.runs.layout import RunLayout
from sim.runs.storage import write_text
from sim.runs.summary import Summary, day_label
from sim.scenario import Scenario
from sim.scenario.schema import Militia

PATHWAYS_NOTE = ("Each trial's path is the ladder's rungs in the order it reached them (rungs reached on the same day "
                 "in ladder order); the most common paths first, the rest summed in the last row. Shares have 95% "
                 "Wilson intervals; they sum to 1. `escsim trace` tells one trial's path with its causes.")
RISK_NOTE = ("P(reached by the end of each calendar month; the last column: by the horizon, the milestone's "
             "probability), over all trials; `p_<milestone>_by_<YYYY-MM>` in `summary.csv` gives each with its 95% "
             "Wilson interval. The report's curves give it day by day, with the scheduled shocks marked.")
HOW_TO_READ = (
    "Each trial is one possible year from the scenario's start; a probability is the share of trials in which "
    "something happened, and its 95% interval is the Monte Carlo error of that share only (more trials shrink it).",
    "The parameters drawn from a calibrated posterior vary from trial to trial, so their uncertainty is inside "
    "the probabilities; every other parameter is a point value (Key parameters), and how much the answer hangs on "
    "them is what `escsim sweep` shows.",
    "Risk over time: how the chance of each rung builds up through the horizon; a step at a dashed line is the "
    "scheduled shock at work.",
    "Pathways: in what order the rungs come; `escsim trace` re-runs one trial with every event and its cause.",
    "These are the model's logic on the evidence of the seeds, not forecasts of particular events.",
)
ROOTS_NOTE = ("A root is where a milestone's cause chain begins: a shock, a restraint in force at the start (the "
              "effort it moved to another front), or a militia's spontaneous attacks. Every trial records the root "
              "of each milestone it reached (`trials.parquet`'s root columns, the same as `escsim trace` shows): "
              "`roots.csv` counts them all, the report shows the three most common of each milestone, with the "
              "share of the trials that reached it.")
ROOTS_SHOWN = 3


def _roots(out: Path, layout: RunLayout) -> list[dict]:
    """The most common roots of each milestone, from the run's `roots.csv` (none in a folder without it)."""
    path = out / "roots.csv"
    if not path.is_file():
        return []
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    rows = []
    for m in layout.ordered:
        for r in table[table.milestone == m].head(ROOTS_SHOWN).itertuples():
            rows.append({"label": layout.labels[m], "root": r.root, "trials": int(r.trials), "reached": int(r.reached),
                         "traced": int(r.traced), "share": r.share, "lo": r.lo, "hi": r.hi})
    return rows


TRACKED = " (tracked, no rung)"  # a milestone off the ladder, so its probability is not read as a rung's
REPORT_FILES = ("report.html", "report.md", "milestones.csv", "counts.csv", "pathways.csv", "parameters.csv")
FLOAT = "%.6g"
QUANTILES = (5, 25, 50, 75, 95)  # the percentiles of the counts table


def forecast_section(scenario: Scenario, table: pd.DataFrame, trials: int) -> dict | None:
    """What a forecast's report says of its start: the origin, what its histories were held to,
    how many it took, and what they had reached before the origin (None for a scenario that is no
    forecast). `table`: the summary of its `trials` trials, indexed by metric."""
    if scenario.forecast is None or scenario.forecast.resolved is None:
        return None
    resolved = scenario.forecast.resolved
    runs = float(table.loc["forecast_history_simulations", "estimate"])
    redrawn = table.loc["forecast_redrawn"]
    reached = [(name, float(table.loc[f"history_p_{name}", "estimate"]), float(table.loc[f"history_p_{name}", "lo"]),
                float(table.loc[f"history_p_{name}", "hi"]))
               for name in [m.removeprefix("history_p_") for m in table.index if m.startswith("history_p_")]]
    return {
        "origin": scenario.scenario.start_date, "targets": Path(resolved.targets).name,
        "counts": [c.name for c in resolved.counts], "events": [e.name for e in resolved.events],
        "left_out": resolved.left_out, "replaced": resolved.replaced, "fit_note": resolved.fit_note,
        "tolerance": resolved.tolerance if scenario.forecast.tolerance is None else scenario.forecast.tolerance,
        "attempts": scenario.forecast.attempts, "runs": runs, "per_trial": runs / trials if trials else math.nan,
        "redrawn": redrawn.estimate, "redrawn_lo": redrawn.lo, "redrawn_hi": redrawn.hi,
        "effective": float(table.loc["forecast_effective_trials", "estimate"]), "reached": reached,
        "reporting": reporting_text(resolved),
    }


def reporting_text(resolved) -> str:
    """What the forecast's conditions took the counts of reported series to be ("" if none is)."""
    from sim.model.observation import FIELDS

    if not resolved.reporting:
        return ""
    fitted = {where: name for name, where in resolved.reporting_parameters.items()}
    parts = []
    for series, r in resolved.reporting.items():
        fields = ", ".join(f"{f} " + (f"fitted (each trial's particle's {fitted[f'{series}.{f}']})" if f"{series}.{f}" in fitted
                                       else f"{getattr(r, f):g}") for f in FIELDS)
        parts.append(f"{series} ({fields})")
    return ("The observed counts of " + "; ".join(parts) + " are claims: each history's were drawn from its launches by "
            "the targets' reporting model. This forecast's own counts are the simulated ones (launches), not claims")


def _forecast_markdown(f: dict | None, labels: dict[str, str]) -> list[str]:
    if f is None:
        return []
    return [
        f"## Forecast from {f['origin']}: the state at the origin\n",
        f"Each trial ran the history replay of {md.code(f['targets'])} from its start to {f['origin']} with its parameter "
        f"draw until one history agreed with the {len(f['counts'])} counts and {len(f['events'])} events observed before "
        f"the origin (counts' root mean square miss at most {f['tolerance']:.3g}; events exactly), and started from the "
        f"state that history left. Histories run: {number(f['runs'])}, {f['per_trial']:.0f} a trial. Trials whose first "
        f"parameter draw found none in {f['attempts']:,} tries and drew again: {probability(f['redrawn'])} "
        f"({probability(f['redrawn_lo'])} – {probability(f['redrawn_hi'])}); effective trials {number(f['effective'])}. "
        f"Not conditioned on (observed on or after the origin): {', '.join(f['left_out']) or 'none'}. "
        + (f"Replaced by the history's state: {', '.join(md.code(r) for r in f['replaced'])}. " if f["replaced"] else "")
        + (f"{md.text(f['reporting'])}. " if f["reporting"] else "")
        + f"Parameters: {md.text(f['fit_note'])}.\n",
        md.table(["Milestone", "Reached before the origin", "95% interval"],
                 [[md.text(labels.get(name, name)), probability(p), f"{probability(lo)} – {probability(hi)}"]
                  for name, p, lo, hi in f["reached"]]),
        "Milestones above count from the origin: a milestone its history had reached counts again only if its "
        "condition is met after the origin.\n",
    ]


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
            "tracked": name not in lay.ladder,
        })
    fan = summary.fan()
    scale = np.asarray(month_scale(scenario.scenario.start_date, lay.horizon_days, lay.months))
    panels = []
    for series in lay.monthly_series:
        if series.startswith("attacks_on_"):
            q = fan[fan.series == series]
            panels.append((series_label(series, scenario),
                           {c: (q[c].to_numpy() * scale).tolist() for c in ("mean", "q05", "q25", "q50", "q75", "q95")}))
    counts = []
    for series in lay.series:
        counts.append({"name": series, "label": series_label(series, scenario), "mean": table.loc[f"mean_{series}", "estimate"],
                       "q": [table.loc[f"q{p:02d}_{series}", "estimate"] for p in QUANTILES]})
    parameters = key_parameters(scenario, summary.particle_counts())
    pathways = summary.pathways()
    labelled = lambda names: [n if n in ("start", "end") else lay.labels[n] for n in names]  # noqa: E731
    sources, targets, steps = summary.transitions()
    roots = _roots(out, lay)
    by_month = [(m["label"], m["tracked"], [table.loc[f"p_{m['name']}_by_{month}", "estimate"] for month in lay.months])
                for m in milestones]
    grid = np.arange(0.0, math.ceil(lay.horizon_days) + 1.0)
    grid[-1] = lay.horizon_days
    curves = [(lay.labels[name], *summary.cumulative(name, grid + 1e-9)) for name in lay.ladder]
    forecast = forecast_section(scenario, table, summary.n)
    marks = [(day, name) for name, shock in scenario.shocks.items()
             if (day := scenario.shock_day(shock)) is not None and 0.0 <= day < lay.horizon_days]
    render(
        "run.html.j2", out / "report.html",
        title=f"escalation-sim run: {scenario.scenario.name}",
        scenario=scenario.scenario, manifest=manifest, number=number, probability=probability, by_days=lay.by_days, milestones=milestones,
        milestone_svg=figures.probability_bars(
            [m["label"] for m in milestones], [m["p"] for m in milestones],
            [m["lo"] for m in milestones], [m["hi"] for m in milestones],
            f"P(milestone within {lay.horizon_days:g} days)",
        ),
        fan_svg=figures.fan_chart(marked_months(lay.months, list(scale)), panels, PARTIAL_NOTE) if panels else "",
        rung_svg=figures.rung_bars(["none"] + [lay.labels[m] for m in lay.ladder], summary.rung_distribution()),
        counts=counts, parameters=parameters, pathways=pathways.to_dict("records"), roots=roots,
        roots_note=ROOTS_NOTE.replace("`", ""),
        risk_svg=figures.risk_curves(grid, curves, marks, "Risk over time: P(each rung reached by day t)")
        if curves else "",
        months=lay.months, by_month=by_month, risk_note=RISK_NOTE.replace("`", ""), how_to_read=[line.replace("`", "") for line in HOW_TO_READ],
        flow_svg=figures.transition_matrix(labelled(sources), labelled(targets), steps) if lay.ladder else "",
        posterior_source=posterior_source(scenario) if scenario.parameters.posterior else "",
        reproduce=manifest["reproduce"], versions=manifest["versions"], forecast=forecast, labels=lay.labels,
    )
    write_text(out / "report.md", _markdown(scenario, manifest, lay.by_days, milestones, counts, parameters, pathways,
                                            lay.months, by_month, roots, _forecast_markdown(forecast, lay.labels)))
    by = [f"by_{day_label(d)}d" for d in lay.by_days]
    write_text(out / "milestones.csv", pd.DataFrame(
        [(m["name"], m["label"], m["p"], m["lo"], m["hi"], *m["by"], m["median_day"]) for m in milestones],
        columns=["milestone", "label", "estimate", "lo", "hi", *by, "median_day"],
    ).to_csv(index=False, float_format=FLOAT))
    write_text(out / "counts.csv", pd.DataFrame(
        [(c["name"], c["mean"], *c["q"]) for c in counts],
        columns=["series", "mean", *(f"q{p:02d}" for p in QUANTILES)],
    ).to_csv(index=False, float_format=FLOAT))
    write_text(out / "pathways.csv", pathways.to_csv(index=False, float_format=FLOAT))
    write_text(out / "parameters.csv", pd.DataFrame([p.row for p in parameters], columns=PARAMETER_COLUMNS)
               .to_csv(index=False, float_format=FLOAT))
    return [out / name for name in REPORT_FILES]


def _markdown(scenario: Scenario, manifest: dict, by_days, milestones: list[dict], counts: list[dict],
              parameters: list[Parameter], pathways: pd.DataFrame, months: list[str], by_month: list,
              roots: list[dict], forecast: list[str] = ()) -> str:
    s = scenario.scenario
    parts = [f"# Run: {md.text(s.name)}\n"]
    if s.description:
        parts.append(f"{md.text(s.description)}\n")
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
        "## How to read this report\n",
        *(f"- {line}" for line in HOW_TO_READ),
        "",
        "## Escalation milestones\n",
        md.table(["Milestone", "P(by horizon)", "95% interval", *(f"P(≤ {d:g} d)" for d in by_days),
                  "Median day if reached"],
                 [[md.text(m["label"]) + (TRACKED if m["tracked"] else ""), probability(m["p"]), f"{probability(m['lo'])} – {probability(m['hi'])}",
                   *(probability(p) for p in m["by"]),
                   m["median"]] for m in milestones]),
        f"Probabilities with 95% Wilson intervals over {manifest['trials']:,} trials (Monte Carlo error only); "
        f"the median day counts from {s.start_date}, among trials that reach the milestone.\n",
        *forecast,
        "## Risk over time\n",
        md.table(["Milestone", *months],
                 [[md.text(label), *(probability(p) for p in ps)] for label, _, ps in by_month]),
        RISK_NOTE + "\n",
        "## Pathways up the ladder\n",
        md.table(["Rungs in the order reached", "Trials", "Share", "95% interval"],
                 [[md.text(r.path), f"{r.trials:,}", probability(r.share), f"{probability(r.lo)} – {probability(r.hi)}"]
                  for r in pathways.itertuples()], left=(0,)),
        PATHWAYS_NOTE + "\n",
        *([f"### Roots of each milestone's cause chain (all {roots[0]['traced']:,} trials)\n",
           md.table(["Milestone", "Root", "Trials", "Share of those reaching it", "95% interval"],
                    [[md.text(r["label"]), md.text(r["root"]), f"{r['trials']:,} of {r['reached']:,}", probability(r["share"]),
                      f"{probability(r['lo'])} – {probability(r['hi'])}"] for r in roots], left=(0, 1)),
           ROOTS_NOTE + "\n"] if roots else []),
        "## Counts per trial\n",
        md.table(["Series", "Mean", "5%", "25%", "Median", "75%", "95%"],
                 [[f"{md.text(c['label'])} ({md.code(c['name'])})", number(c["mean"]), *(number(q) for q in c["q"])]
                  for c in counts]),
        "## Key parameters\n",
        md.table(["Parameter", "Value", "Source"], [[md.code(p.path), p.value, md.text(p.source)] for p in parameters],
                 left=(0, 1, 2)),
        *([f"Values marked {DRAWN} are drawn by each trial from the {md.text(posterior_source(scenario))}: "
           "its rows give their mean and 5%, 50% and 95% quantiles across this run's trials "
           "(each trial's particle is in `trials.parquet`).\n"] if scenario.parameters.posterior else []),
        "`milestones.csv`, `counts.csv`, `pathways.csv` and `parameters.csv` beside this file hold these tables; `summary.csv` "
        "every metric with its full numbers.\n",
    ]
    return "\n".join(parts)


WRITTEN = "scenario file"
DRAWN = "drawn"  # a number of a key parameter's value that each trial draws from the posterior instead


@dataclass(frozen=True)
class Parameter:
    """A row of the key parameters: its dotted path, its value as shown, where the value comes from and, for a value
    each trial draws from a posterior, its mean and 5/50/95% quantiles across the run's trials."""

    path: str
    value: str
    source: str = WRITTEN
    mean: float = math.nan
    q05: float = math.nan
    q50: float = math.nan
    q95: float = math.nan

    @property
    def row(self) -> tuple:
        return self.path, self.value, self.source, self.mean, self.q05, self.q50, self.q95


PARAMETER_COLUMNS = ["parameter", "value", "source", "mean", "q05", "q50", "q95"]


def posterior_source(scenario: Scenario) -> str:
    """Where a scenario's drawn parameters come from, in words: the calibration fit's name and folder."""
    posterior = scenario.parameters.posterior
    name = Path(posterior.folder).name if posterior.folder else (posterior.fit.split(":")[0] or "given inline")
    return f"posterior of calibration fit {name}" + (f" ({posterior.folder})" if posterior.folder else "")


def drawn_parameters(scenario: Scenario, particles: tuple[np.ndarray, np.ndarray] | None) -> dict[str, Parameter]:
    """Each key path the trials draw from the posterior, with its distribution across the trials: `particles` gives
    each particle the trials drew and how many drew it (None: the posterior's own weights)."""
    posterior = scenario.parameters.posterior
    if posterior is None:
        return {}
    values = np.asarray(posterior.values, dtype=float)
    if particles is None:
        rows, counts = np.arange(len(values)), np.asarray(posterior.weights, dtype=float)
        source = posterior_source(scenario) + ", weighted (not the trials' draws)"
    else:
        rows, counts = np.asarray(particles[0], dtype=np.int64), np.asarray(particles[1], dtype=float)
        source = posterior_source(scenario)
    found = {}
    for k, paths in enumerate(posterior.paths):
        x = values[rows, k] if rows.size else np.zeros(0)
        order = np.argsort(x, kind="stable")
        x, w = x[order], counts[order]
        total = float(w.sum())
        if total <= 0:
            stats = (math.nan,) * 4
        else:
            cumulative = np.cumsum(w)

            def at(q: float, x=x, cumulative=cumulative, total=total) -> float:  # the order statistic (inverted CDF)
                return float(x[min(np.searchsorted(cumulative, q * total, side="left"), x.size - 1)])

            stats = (float(x @ w) / total, at(0.05), at(0.5), at(0.95))
        text = (f"drawn per trial: mean {number(stats[0])} (5% {number(stats[1])}, median {number(stats[2])}, "
                f"95% {number(stats[3])})")
        for path in paths:
            found[path] = Parameter(path, text, source, *stats)
    return found


def key_parameters(scenario: Scenario, particles: tuple[np.ndarray, np.ndarray] | None = None) -> list[Parameter]:
    """The numbers an analyst most often asks about, by their dotted path, as the trials used them: a value each
    trial draws from a calibration posterior is shown as drawn (its distribution across the trials, see
    `drawn_parameters`) with its source, next to the key parameter it belongs to, never as the number written in the
    file that no trial used."""
    drawn = drawn_parameters(scenario, particles)

    def num(path: str, value: float) -> str:
        return DRAWN if path in drawn else f"{value:g}"

    def days(what: str, path: str, value: float) -> str:
        return f"{what} {DRAWN}" if path in drawn else f"{what} {value:g} days"

    written: list[tuple[str, str, tuple[str, ...]]] = []  # path, value, the paths whose draws belong to the row
    for name, actor in scenario.actors.items():
        if isinstance(actor, Militia):
            for target, ch in actor.attacks.items():
                path = f"actors.{name}.attacks.{target}"
                written.append((f"{path}.rate_per_day", num(f"{path}.rate_per_day", ch.rate_per_day),
                                (f"{path}.rate_per_day", f"{path}.weapons")))
                if ch.initial_restraint:
                    r, at = ch.initial_restraint, f"{path}.initial_restraint"
                    written.append((at, f"×{num(f'{at}.factor', r.factor)} for {num(f'{at}.remaining_days', r.remaining_days)} "
                                        "days", (at,)))
            if actor.excitation:
                at = f"actors.{name}.excitation"
                for j, a in actor.excitation.from_.items():
                    written.append((f"{at}.from.{j}", f"{num(f'{at}.from.{j}', a)} "
                                    f"({days('memory', f'{at}.memory_days', actor.excitation.memory_days)})",
                                    (f"{at}.from.{j}", f"{at}.memory_days")))
            if actor.redirect:
                at = f"actors.{name}.redirect"
                written.append((f"{at}.share", f"{num(f'{at}.share', actor.redirect.share)} "
                                f"({days('ramp', f'{at}.ramp_days', actor.redirect.ramp_days)})", (at,)))
        else:
            for rule_name, rule in actor.rules.items():
                at = f"actors.{name}.rules.{rule_name}"
                restraint = "".join(f", {a} restrains {num(f'{at}.ally_restraint.{a}', r)}"
                                    for a, r in rule.ally_restraint.items())
                written.append((at, f"harm {rule.harm} ≥ {num(f'{at}.threshold', rule.threshold)}: "
                                    f"p {num(f'{at}.probability', rule.probability)}{restraint}", (at,)))
    rows: list[Parameter] = []
    placed: set[str] = set()
    for path, value, scope in written:
        inside = [p for p in drawn if p not in placed and any(p == s or p.startswith((f"{s}.", f"{s}[")) for s in scope)]
        placed.update(inside)
        if path in drawn:  # the row's own number is drawn: the drawn row, with what else the row says
            rest = value.removeprefix(DRAWN)
            rows.append(replace(drawn[path], value=drawn[path].value + rest))
            inside.remove(path)
        else:
            rows.append(Parameter(path, value, WRITTEN + (f"; {DRAWN}: from the posterior (rows below)" if inside else "")))
        rows += [drawn[p] for p in inside]
    rows += [p for path, p in drawn.items() if path not in placed]
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
                    counts.reshape(n, n_months, n_series).transpose(0, 2, 1), batch.column("n_events").to_numpy(),
                    batch.column("particle").to_numpy() if layout.particles else None)
        if layout.forecast:
            summary.add_history(batch.column("history_attempts").to_numpy(), batch.column("parameter_redraws").to_numpy(),
                                np.column_stack([batch.column(f"history_t_{m}").to_numpy() for m in layout.milestones]))
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
