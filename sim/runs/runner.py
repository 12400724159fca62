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
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from sim.engine.chunk import ChunkResult, ChunkTask, run_chunk
from sim.errors import InputError, TrialError
from sim.runs import manifest as manifests
from sim.runs.executors import executor_workers, local_executor
from sim.runs.layout import RunLayout
from sim.runs.outputs import RunWriter
from sim.runs.storage import read_arrays, write_arrays, write_json
from sim.scenario import Scenario, config_hash, load_scenario
from sim.scenario.schema import MAX_TRIALS

CHUNKS = ".chunks"
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
        return pd.read_parquet(self.out / "trials.parquet")

    @property
    def monthly(self) -> pd.DataFrame:
        return pd.read_parquet(self.out / "monthly.parquet")


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
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    command: list[str] | None = None,
) -> RunResult:
    """Run a scenario's Monte Carlo trials and write the run folder (see module docstring).

    `scenario` is a `Scenario` or a path to a scenario file; `trials` and `seed` default to the
    scenario's `[run]` table; `workers` to every available core; `out` to a new temporary
    folder. `progress` None shows a bar only on a terminal.
    """
    source = None
    if not isinstance(scenario, Scenario):
        source = str(scenario)
        scenario = load_scenario(scenario)
    trials = scenario.run.trials if trials is None else trials
    seed = scenario.run.seed if seed is None else seed
    if not 1 <= trials <= MAX_TRIALS:
        raise InputError(f"error: --trials: expected a whole number from 1 to {MAX_TRIALS:,}, found {trials}")
    if not 0 <= seed < 2**63:
        raise InputError(f"error: --seed: expected a whole number from 0 to 2**63 - 1, found {seed}")
    if workers is not None and workers < 1:
        raise InputError(f"error: --workers: expected at least 1, found {workers}")
    plan = Plan(config_hash(scenario), seed, trials, chunk_trials(trials))
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"escsim-{scenario.scenario.name}-"))
    finished = _prepare_folder(out, plan, resume)
    if finished is not None:
        return finished

    started = dt.datetime.now(dt.UTC)
    clock = time.perf_counter()
    executor = local_executor(workers)
    writer = RunWriter(out, scenario, RunLayout.of(scenario))
    try:
        _simulate(scenario, plan, out / CHUNKS, executor, progress, writer)
    except BaseException:
        writer.abort()
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
    summary = writer.finish()
    manifest = manifests.run_manifest(
        scenario, plan.as_dict(), workers=executor_workers(executor), started=started,
        elapsed=time.perf_counter() - clock, command=command or manifests.api_command(source, trials, seed),
        out=out,
    )
    writer.write_report(manifest)
    write_json(out / "manifest.json", manifest)
    shutil.rmtree(out / CHUNKS, ignore_errors=True)
    return RunResult(out, summary, manifest)


def _prepare_folder(out: Path, plan: Plan, resume: bool) -> RunResult | None:
    """Check the output folder can take this run; return the result if it is already done."""
    if out.exists() and not out.is_dir():
        raise InputError(f"error: --out {out}: expected a folder, found a file")
    plan_file = out / CHUNKS / "plan.json"
    manifest_file = out / "manifest.json"
    if plan_file.exists():
        if not resume:
            raise InputError(
                f"error: --out {out}: holds an unfinished run; add --resume to complete it, "
                "or choose another --out"
            )
        _check_same(out, manifests.read_json(plan_file), plan)
        return None
    if manifest_file.exists():
        done = manifests.read_json(manifest_file)
        if resume:
            _check_same(out, done.get("plan", {}), plan)
            summary = pd.read_csv(out / "summary.csv")
            return RunResult(out, summary, done)
        raise InputError(f"error: --out {out}: already holds a finished run; choose another --out")
    if out.exists() and any(out.iterdir()):
        raise InputError(f"error: --out {out}: expected a new or empty folder, found one with other files")
    write_json(plan_file, plan.as_dict())
    return None


def _check_same(out: Path, saved: dict, plan: Plan) -> None:
    mine = plan.as_dict()
    different = [k for k in ("config_hash", "seed", "trials") if saved.get(k) != mine[k]]
    if different:
        what = ", ".join(f"{k} {saved.get(k)} there but {mine[k]} here" for k in different)
        raise InputError(
            f"error: --resume {out}: that folder holds a run of another scenario, seed or trial "
            f"count ({what}); resume it with the same scenario and options, or choose another --out"
        )


def _chunk_name(start: int) -> str:
    return f"chunk-{start:012d}.npz"


def _simulate(scenario: Scenario, plan: Plan, folder: Path, executor, progress: bool | None,
              writer: RunWriter) -> None:
    """Run every chunk not yet checkpointed (at most two per worker in flight), checkpoint each
    as it finishes, and hand chunks to `writer` in trial order as soon as their turn comes, so
    writing overlaps simulating and only out-of-order chunks wait in memory."""
    text = scenario.model_dump_json(by_alias=True)
    chunks = plan.chunks()
    on_disk = {a for a, _ in chunks if (folder / _chunk_name(a)).exists()}
    todo = [(a, b) for a, b in chunks if a not in on_disk]
    bar = tqdm(total=plan.trials, initial=plan.trials - sum(b - a for a, b in todo), unit="trial",
               disable=None if progress is None else not progress, file=sys.stderr, dynamic_ncols=True,
               desc=scenario.scenario.name)
    ready: dict[int, dict] = {}
    failures: list[tuple[int, str]] = []
    written = 0

    def write_in_order() -> None:
        nonlocal written
        while written < len(chunks) and not failures:
            start = chunks[written][0]
            if start in ready:
                writer.add(ready.pop(start))
            elif start in on_disk:
                writer.add(read_arrays(folder / _chunk_name(start)))
            else:
                return
            written += 1

    pending = set()
    queue = iter(todo)
    in_flight = 2 * executor_workers(executor)
    try:
        write_in_order()
        while True:
            while len(pending) < in_flight:
                nxt = next(queue, None)
                if nxt is None:
                    break
                pending.add(executor.submit(run_chunk, ChunkTask(text, plan.seed, *nxt)))
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                result: ChunkResult = future.result()
                if result.failures:
                    failures.extend(result.failures)
                    continue
                arrays = {"n_events": result.n_events, "milestone_days": result.milestone_days,
                          "max_rung": result.max_rung, "totals": result.totals, "monthly": result.monthly,
                          "particle": result.particle}
                write_arrays(folder / _chunk_name(result.start), **arrays)
                ready[result.start] = arrays
                bar.update(result.stop - result.start)
            write_in_order()
    finally:
        bar.close()
    if failures:
        failures.sort()
        write_json(folder / "failures.json", [{"trial": t, "error": e} for t, e in failures])
        trial, error = failures[0]
        more = f" ({len(failures) - 1} more in {folder / 'failures.json'})" if len(failures) > 1 else ""
        raise TrialError(trial, error + more)
