"""`escsim run`: Monte Carlo trials of a scenario, checkpointed in chunks, reduced in order.

A run is planned as fixed chunks of consecutive trials (their size depends on the trial count
only, never on the workers, so files come out byte-identical for any number of workers).
Each finished chunk is checkpointed atomically under `DIR/.chunks/`; `resume=True` skips the
chunks already there. When all are in, the chunks are streamed in trial order into
`trials.parquet`, `monthly.parquet` and the summary, so memory stays bounded however many
trials there are. `manifest.json` is written last: its presence marks a finished run.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm

from sim.engine.chunk import ChunkResult, ChunkTask, run_chunk
from sim.errors import InputError, TrialError
from sim.forecast import resolve_forecast
from sim.runs import manifest as manifests
from sim.runs.executors import executor_name, executor_workers, make_executor
from sim.runs.folders import CHUNKS, finish_folder, locked, prepare_folder
from sim.runs.layout import RunLayout
from sim.runs.outputs import RunWriter
from sim.runs.storage import read_frame, write_json
from sim.runs.tasks import Checkpoints, complete_in_order
from sim.scenario import Scenario, config_hash, load_scenario
from sim.scenario.loading import as_changes
from sim.scenario.schema import MAX_TRIALS

MAX_CHUNK_TRIALS = 1000


def chunk_trials(trials: int) -> int:
    """Trials per chunk: about 64 chunks for small runs, at most 1000 trials each."""
    return max(1, min(MAX_CHUNK_TRIALS, math.ceil(trials / 64)))


@dataclass
class RunResult:
    """A finished run: its folder, its summary table, and its per-trial tables on demand."""

    out: Path
    summary: pd.DataFrame
    manifest: dict

    @property
    def trials(self) -> pd.DataFrame:
        return read_frame(self.out / "trials.parquet")

    @property
    def monthly(self) -> pd.DataFrame:
        return read_frame(self.out / "monthly.parquet")


@dataclass(frozen=True)
class Plan:
    config_hash: str
    seed: int
    trials: int
    chunk_trials: int

    def chunks(self) -> list[tuple[int, int]]:
        return [(a, min(a + self.chunk_trials, self.trials)) for a in range(0, self.trials, self.chunk_trials)]

    def as_dict(self) -> dict:
        return {"config_hash": self.config_hash, "seed": self.seed, "trials": self.trials,
                "chunk_trials": self.chunk_trials}


def run(
    scenario: Scenario | str | Path,
    *,
    trials: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    command: list[str] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> RunResult:
    """Run a scenario's Monte Carlo trials and write the run folder (see module docstring).

    `scenario` is a `Scenario` or a path to a scenario file; `trials` and `seed` default to the
    scenario's `[run]` table; `workers` to every available core; `out` to a new temporary
    folder; `scheduler` (tcp://HOST:PORT) runs the chunks on a Dask cluster instead of local
    processes. `progress` None shows a bar only on a terminal. `overrides` sets scenario values
    (key path → value, or `--set` words) as `load_scenario` does; they are recorded in the manifest.
    """
    source = None
    if not isinstance(scenario, Scenario):
        source = str(scenario)
        scenario = load_scenario(scenario, overrides=overrides)
    elif overrides:  # setting a value twice (the command line loads the file with them) changes nothing
        scenario = scenario.with_changes(as_changes(overrides))
    scenario = resolve_forecast(scenario, source)
    trials = scenario.run.trials if trials is None else trials
    seed = scenario.run.seed if seed is None else seed
    if not 1 <= trials <= MAX_TRIALS:
        raise InputError(f"error: --trials: expected a whole number from 1 to {MAX_TRIALS:,}, found {trials}")
    if not 0 <= seed < 2**63:
        raise InputError(f"error: --seed: expected a whole number from 0 to 2**63 - 1, found {seed}")
    plan = Plan(config_hash(scenario), seed, trials, chunk_trials(trials))
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"escsim-{scenario.scenario.name}-"))
    with locked(out, "run"):
        executor = make_executor(workers, scheduler)
        try:
            finished = prepare_folder(out, plan.as_dict(), resume, what="run", options="scenario, seed or trial count")
            if finished is not None:
                executor.shutdown(wait=True)
                return RunResult(out, pd.read_csv(out / "summary.csv"), finished)
            started = dt.datetime.now(dt.UTC)
            clock = time.perf_counter()
            layout = RunLayout.of(scenario)
            writer = RunWriter(out, scenario, layout, trials=plan.trials)
            try:
                _simulate(scenario, plan, layout, out / CHUNKS, executor, progress, writer)
                _check_redrawn(scenario, writer.summary, source)
                summary = writer.finish()
            except BaseException:
                writer.abort()
                raise
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True, cancel_futures=True)
        manifest = manifests.run_manifest(
            scenario, plan.as_dict(), workers=executor_workers(executor), executor=executor_name(executor),
            started=started,
            elapsed=time.perf_counter() - clock, command=command or manifests.api_command(source, trials, seed, overrides),
            out=out, overrides=overrides,
        )
        writer.write_report(manifest)
        write_json(out / "manifest.json", manifest)
        finish_folder(out)
    return RunResult(out, summary, manifest)


def _check_redrawn(scenario: Scenario, summary, source: str | None) -> None:
    """A forecast whose trials too often drew their parameters again is refused (its parameters'
    law is no longer the fit's; `Summary.redrawn_problem`)."""
    problem = summary.redrawn_problem(scenario.forecast) if scenario.forecast is not None else None
    if problem is not None:
        raise InputError(f"error: {source or 'scenario ' + scenario.scenario.name}: {problem}")


def _simulate(scenario: Scenario, plan: Plan, layout: RunLayout, folder: Path, executor, progress: bool | None,
              writer: RunWriter) -> None:
    """Run every chunk not yet checkpointed and hand chunks to `writer` in trial order."""
    text = scenario.model_dump_json(by_alias=True)
    chunks = plan.chunks()
    size = dict(chunks)
    checkpoints = Checkpoints(folder, check=lambda a, arrays: chunk_problem(layout, size[a] - a, arrays))
    left = sum(b - a for a, b in chunks if not checkpoints.has(a))
    bar = tqdm(total=plan.trials, initial=plan.trials - left, unit="trial",
               disable=None if progress is None else not progress, file=sys.stderr, dynamic_ncols=True,
               desc=scenario.scenario.name)
    try:
        failures = complete_in_order(
            executor, run_chunk, [(a, ChunkTask(text, plan.seed, a, b, roots=True)) for a, b in chunks], checkpoints,
            to_arrays=_chunk_arrays, consume=lambda key, arrays: writer.add(arrays),
            done=lambda a: bar.update(size[a] - a),
        )
    finally:
        bar.close()
    if failures:
        write_json(folder / "failures.json", [{"trial": t, "error": e} for t, e in failures])
        trial, error = failures[0]
        more = f" ({len(failures) - 1} more in {folder / 'failures.json'})" if len(failures) > 1 else ""
        raise TrialError(trial, error + more)


CHUNK_ARRAYS = ("n_events", "milestone_days", "max_rung", "totals", "monthly", "particle", "roots")
FORECAST_ARRAYS = ("history_attempts", "redraws", "history_days")


def chunk_problem(layout: RunLayout, trials: int, arrays: dict) -> str | None:
    """What is wrong with a chunk checkpoint read back for `trials` trials of this layout, if anything."""
    missing = [k for k in (*CHUNK_ARRAYS, *(FORECAST_ARRAYS if layout.forecast else ())) if k not in arrays]
    if missing:
        return f"an archive without the array {missing[0]!r}"
    shapes = {"n_events": (trials,), "max_rung": (trials,), "particle": (trials,),
              "milestone_days": (trials, len(layout.milestones)), "roots": (trials, len(layout.milestones)),
              "totals": (trials, len(layout.series)),
              "monthly": (trials, len(layout.monthly_series), len(layout.months))}
    if layout.forecast:
        shapes |= {"history_attempts": (trials,), "redraws": (trials,), "history_days": (trials, len(layout.milestones))}
    for name, shape in shapes.items():
        if arrays[name].shape != shape:
            return f"the array {name!r} of shape {arrays[name].shape}, where this chunk of {trials:,} trials has {shape}"
    roots = arrays["roots"]
    if roots.size and (roots.min() < -1 or roots.max() >= len(layout.roots)):
        return f"root codes outside 0 to {len(layout.roots) - 1} (the roots of this scenario) and -1"
    return None


def _chunk_arrays(result: ChunkResult) -> tuple[dict | None, list]:
    if result.failures:
        return None, result.failures
    arrays = {"n_events": result.n_events, "milestone_days": result.milestone_days, "max_rung": result.max_rung,
              "totals": result.totals, "monthly": result.monthly, "particle": result.particle, "roots": result.roots}
    if result.history_attempts is not None:
        arrays |= {"history_attempts": result.history_attempts, "redraws": result.redraws,
                   "history_days": result.history_days}
    return arrays, []
