"""`escsim trace`: one trial's story, re-simulated exactly as its run made it.

From a finished run folder the trial is traced with the run's resolved scenario and seed, and
its counts and milestone days are checked against the run's row of `trials.parquet`: a trace
that would differ (a fit or the code changed since the run) is refused, never shown. From a
scenario file the trial is traced with the scenario's seed or `seed`. `where` picks the first
trial that reached a milestone: from the run's rows, or, for a scenario, by running its trials
in order (untraced, as a run does) until one does.

The trace folder holds `events.csv` and `events.parquet` (one row per event, `COLUMNS` of
`sim.model.trace` with `date`), `levels.csv` (each harm account after each deposit) and
`trace.html`; a trace folder, whole or cut short by a kill, is rewritten by the next trace into it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from sim.engine.chunk import simulate_trials
from sim.engine.trace import TracedTrial, trace_trial
from sim.errors import InputError, did_you_mean
from sim.forecast import resolve_forecast
from sim.runs.folders import check_out
from sim.runs.reading import read_run_folder
from sim.runs.storage import atomic_path, is_temporary, write_text
from sim.scenario import Scenario, load_scenario

TRACE_FILES = ("events.csv", "events.parquet", "levels.csv", "trace.html")
SEARCH_BLOCK = 250  # trials a search for `where` in a scenario runs at a time


@dataclass
class TraceResult:
    """A traced trial, where it came from, and the folder written (None: nothing written)."""

    traced: TracedTrial
    scenario: Scenario
    source: str
    out: Path | None

    @property
    def events(self) -> pd.DataFrame:
        return self.traced.events


def trace(source: str | Path, trial: int | None = None, *, where: str | None = None, seed: int | None = None,
          out: str | Path | None = None, overrides=None) -> pd.DataFrame:
    """The Python API of `escsim trace`: the traced trial's events (events.csv as a DataFrame), with
    `attrs` holding `trial`, `seed`, `particle`, `roots` (milestone -> root event), `chains`
    (milestone -> cause chain, root first) and `levels` (levels.csv as a DataFrame)."""
    result = trace_result(source, trial, where=where, seed=seed, out=out, overrides=overrides)
    traced = result.traced
    events = traced.events.copy()
    events.attrs = {"trial": traced.trial, "seed": traced.seed, "particle": traced.particle,
                    "roots": dict(traced.roots), "chains": dict(traced.chains), "levels": traced.levels}
    return events


def trace_result(source: str | Path, trial: int | None = None, *, where: str | None = None, seed: int | None = None,
                 out: str | Path | None = None, overrides=None) -> TraceResult:
    """Trace trial `trial` (or the first that reached milestone `where`) of a run folder or a
    scenario file; write the trace folder `out` if given."""
    source = Path(source)
    if (trial is None) == (where is None):
        raise InputError("error: --trial, --where: expected one of them, found "
                         f"{'both' if trial is not None else 'neither'}")
    if out is not None:
        _check_trace_folder(Path(out))
    if source.is_dir():
        if seed is not None or overrides:
            raise InputError(f"error: {source}: --seed, --set: expected none with a run folder (its trials are "
                             "traced as they were run), found some")
        traced, scenario = _from_run(source, trial, where)
    else:
        scenario = resolve_forecast(load_scenario(source, overrides=overrides), str(source))
        seed = scenario.run.seed if seed is None else seed
        if where is not None:
            _check_milestone(source, scenario, where)
            trial = _search(scenario, seed, where)
        traced = trace_trial(scenario, seed, trial)
    result = TraceResult(traced, scenario, str(source), None)
    return write_trace(result, out) if out is not None else result


def _check_trace_folder(out: Path) -> None:
    """A trace folder is new, empty, or a trace folder (whole, or cut short by a kill), which is rewritten."""
    check_out(out)
    if out.is_dir():
        others = [p.name for p in out.iterdir() if p.name not in TRACE_FILES and not is_temporary(p.name)]
        if others:
            raise InputError(f"error: --out {out}: expected a new or empty folder, or a trace folder, for the trace; "
                             f"found one that holds {len(others)} other file(s)")
        for p in out.iterdir():
            if is_temporary(p.name):
                p.unlink()


def write_trace(result: TraceResult, out: str | Path) -> TraceResult:
    """Write `result`'s trace folder `out` (new or empty): `TRACE_FILES`."""
    out = Path(out)
    _check_trace_folder(out)
    _write(out, result)
    return TraceResult(result.traced, result.scenario, result.source, out)


def _check_milestone(source: Path, scenario: Scenario, where: str) -> None:
    if where not in scenario.milestones:
        raise InputError(f"error: {source}: --where: expected a milestone of scenario {scenario.scenario.name}, "
                         f"found {where!r}{did_you_mean(where, scenario.milestones)}")


def _from_run(folder: Path, trial: int | None, where: str | None) -> tuple[TracedTrial, Scenario]:
    manifest, scenario = read_run_folder(folder)
    rows = pd.read_parquet(folder / "trials.parquet")
    if where is not None:
        _check_milestone(folder, scenario, where)
        hits = rows.index[rows[f"t_{where}"].notna()]
        if not len(hits):
            raise InputError(f"error: {folder}: --where {where}: expected a trial of the run that reached it, found "
                             f"none in {len(rows):,} trials")
        trial = int(rows.loc[hits[0], "trial"])
    elif not 0 <= trial < manifest["trials"]:
        raise InputError(f"error: {folder}: --trial: expected a trial of the run, 0 to {manifest['trials'] - 1:,}, "
                         f"found {trial:,}")
    row = rows[rows["trial"] == trial].iloc[0]
    traced = trace_trial(scenario, manifest["seed"], trial)
    _check_same(folder, traced, row)
    return traced, scenario


def _check_same(folder: Path, traced: TracedTrial, row: pd.Series) -> None:
    """The traced trial must be the run's: every count, milestone day, event count and particle."""
    found = {"n_events": traced.outcome.n_events, **dict(zip(traced.series, traced.outcome.totals, strict=True))}
    if "particle" in row:
        found["particle"] = traced.particle
    for name, day in zip(traced.milestones, traced.outcome.milestone_days, strict=True):
        found[f"t_{name}"] = day
    for name in traced.milestones:
        found[f"root_{name}"] = traced.root_names.get(name)
    for key, value in found.items():
        saved = row[key]
        if key.startswith("root_"):
            if (None if pd.isna(saved) else saved) != value:
                raise InputError(f"error: {folder}: trials.parquet: trial {traced.trial}: expected the traced trial to "
                                 f"equal the run's, found {key} {value or 'none'} traced but {saved} in the run; the "
                                 "code it ran with has changed since: run the scenario again, then trace that run")
            continue
        same = (math.isnan(value) and math.isnan(saved)) if isinstance(value, float) and math.isnan(value) else \
            saved == value
        if not same:
            raise InputError(f"error: {folder}: trials.parquet: trial {traced.trial}: expected the traced trial to "
                             f"equal the run's, found {key} {value:g} traced but {saved:g} in the run; the fit or "
                             "the code it ran with has changed since: run the scenario again, then trace that run")


def _search(scenario: Scenario, seed: int, where: str) -> int:
    """The first trial of the scenario's run that reaches `where`, within its `run.trials`."""
    column = list(scenario.milestones).index(where)
    limit = scenario.run.trials
    for start in range(0, limit, SEARCH_BLOCK):
        chunk = simulate_trials(scenario, seed, start, min(limit, start + SEARCH_BLOCK))
        if chunk.failures:
            trial, error = chunk.failures[0]
            raise InputError(f"error: trial {trial} of {scenario.scenario.name} failed while searching for "
                             f"--where {where}: {error}")
        reached = np.flatnonzero(~np.isnan(chunk.milestone_days[:, column]))
        if len(reached):
            return start + int(reached[0])
    raise InputError(f"error: --where {where}: expected a trial that reaches it, found none in the scenario's "
                     f"{limit:,} trials (seed {seed})")


def _write(out: Path, result: TraceResult) -> None:
    from sim.reports.trace import write_trace_report

    traced = result.traced
    out.mkdir(parents=True, exist_ok=True)  # each file is written whole (atomically) into it
    with atomic_path(out / "events.parquet") as tmp:
        traced.events.to_parquet(tmp, index=False)
    write_text(out / "events.csv", traced.events.to_csv(index=False, float_format="%.6g"))
    write_text(out / "levels.csv", traced.levels.to_csv(index=False, float_format="%.6g"))
    write_trace_report(out, traced, result.scenario, reproduce_command(result))


def reproduce_command(result: TraceResult) -> str:
    traced = result.traced
    if Path(result.source).is_dir():
        return f"escsim trace {result.source} --trial {traced.trial}"
    return f"escsim trace {result.source} --trial {traced.trial} --seed {traced.seed}"


def trace_text(result: TraceResult) -> str:
    """What `escsim trace` prints: the trial, its milestones in order with their roots, its counts."""
    traced, scenario = result.traced, result.scenario
    events = traced.events
    kinds = events["kind"].value_counts()
    particle = f", posterior particle {traced.particle}" if traced.particle >= 0 else ""
    lines = [f"{scenario.scenario.name}: trial {traced.trial}, seed {traced.seed}{particle}; "
             f"{len(events):,} events traced ({', '.join(f'{kinds[k]:,} {k}' for k in kinds.index)})", ""]
    reached = traced.reached()
    if reached:
        days = dict(zip(traced.milestones, traced.outcome.milestone_days, strict=True))
        width = max(len(m) for m in reached)
        lines.append(f"{'Milestone':<{width}}  {'day':>6}  {'date':<10}  root of its cause chain")
        for m in reached:
            root = events.iloc[traced.roots[m] - 1]
            lines.append(f"{m:<{width}}  {days[m]:>6.1f}  {events.iloc[traced.chains[m][-1] - 1]['date']:<10}  "
                         f"event {int(root['event'])} (day {root['day']:.1f}): {_root_text(root, traced, m)}")
    else:
        lines.append("no milestone reached")
    totals = dict(zip(traced.series, traced.outcome.totals, strict=True))
    shown = [s for s in traced.series if s.startswith(("attacks_on_", "hits_on_", "deaths_on_", "strikes_by_"))]
    lines += ["", "Counts: " + ", ".join(f"{s} {totals[s]:,}" for s in shown)]
    if result.out is not None:
        lines += ["", f"wrote {result.out}/ ({', '.join(TRACE_FILES)})"]
    return "\n".join(lines)


def _root_text(root: pd.Series, traced: TracedTrial, milestone: str) -> str:
    kind = root["kind"]
    if kind == "shock":
        return f"shock {root['target']}"
    if kind in ("attack", "hit"):
        return f"a spontaneous {kind} by {root['actor']} on {root['target']} ({_steps(len(traced.chains[milestone]) - 1)} " \
               "to the milestone)"
    if kind == "restraint start":
        return f"the restraint of {root['actor']} on {root['target']} in force at the start"
    if kind == "history":
        return "the history before the origin (the state it left there)"
    return f"{kind} {root['actor']} {root['target']}".strip()


def _steps(n: int) -> str:
    return f"{n} step{'' if n == 1 else 's'}"
