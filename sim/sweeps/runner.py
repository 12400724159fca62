"""`escsim sweep`: run a sensitivity design over a scenario and compute its indices.

The design's points are cut into tasks of whole points (about a thousand trials per task, a
plan that depends on the spec only, never on the workers). Each finished task is checkpointed
under `DIR/.chunks/` and its rows streamed, in point order, into `points.parquet` (one row per
design point and output: the parameters' values, the estimate, its 95% Monte Carlo interval
and half-width). When all are in: `sensitivity.csv`, `report.html`, then `manifest.json`, whose
presence marks a finished sweep; `--resume` completes an interrupted one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import shlex
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import tomli_w
from tqdm import tqdm

from sim.errors import PointError, WorkError
from sim.runs import manifest as manifests
from sim.runs.executors import executor_name, executor_workers, make_executor
from sim.runs.folders import CHUNKS, finish_folder, locked, prepare_folder
from sim.runs.outputs import PARQUET_OPTIONS, scenario_toml
from sim.runs.storage import atomic_path, read_frame, write_json, write_text
from sim.runs.tasks import Checkpoints, complete_in_order
from sim.scenario import config_hash
from sim.scenario.loading import as_changes
from sim.sweeps.designs import DesignPoints, build_design
from sim.sweeps.indices import analyze
from sim.sweeps.points import PointsResult, PointsTask, run_points
from sim.sweeps.spec import Sweep, load_sweep
from sim.sweeps.swings import TrialStore, end_mask

TRIALS_PER_TASK = 1000
ROW_GROUP_ROWS = 65_536


@dataclass
class SweepResult:
    """A finished sweep: its folder, its indices and its points (one row per point and output)."""

    out: Path
    sensitivity: pd.DataFrame
    manifest: dict

    @property
    def points(self) -> pd.DataFrame:
        return read_frame(self.out / "points.parquet")


def points_per_task(trials_per_point: int) -> int:
    return max(1, TRIALS_PER_TASK // trials_per_point)


def sweep(
    spec: Sweep | str | Path,
    *,
    samples: int | None = None,
    trials_per_point: int | None = None,
    seed: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    out: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
    command: list[str] | None = None,
    overrides: Mapping[str, Any] | Sequence[str] | None = None,
) -> SweepResult:
    """Run a sweep spec (a `Sweep` or a path to a spec file) and write its folder.

    `samples`, `trials_per_point` and `seed` override the spec's; `workers` and `scheduler`
    choose the executor as for runs; `out` defaults to a new temporary folder; `overrides` set
    values of the base scenario (key path → value, or `--set` words), recorded in the manifest."""
    source = None
    if not isinstance(spec, Sweep):
        source = str(spec)
        spec = load_sweep(spec, overrides=overrides)
    elif overrides:  # setting a value twice (the command line loads the spec with them) changes nothing
        spec = spec.with_scenario(spec.scenario.with_changes(as_changes(overrides)))
    spec = spec.with_options(samples, trials_per_point, seed)
    meta = spec.spec.sweep
    design = build_design(meta.design, spec.parameters, meta.samples, meta.seed,
                          second_order=meta.second_order, levels=meta.levels)
    plan = {"config_hash": config_hash(spec.scenario), "spec_hash": _spec_hash(spec), "seed": meta.seed,
            "samples": meta.samples, "trials_per_point": meta.trials_per_point, "points": design.size}
    out = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix=f"escsim-sweep-{spec.name}-"))
    command = command or ["escsim", "sweep", source or "<sweep object>", "--samples", str(meta.samples),
                          "--trials-per-point", str(meta.trials_per_point), "--seed", str(meta.seed),
                          *(word for setting in manifests.override_words(overrides) for word in ("--set", setting))]
    with locked(out, "sweep"):
        executor = make_executor(workers, scheduler)
        try:
            finished = prepare_folder(out, plan, resume, what="sweep",
                                      options="spec, scenario, seed, sample size or trial count")
            if finished is not None:
                executor.shutdown(wait=True)
                return SweepResult(out, pd.read_csv(out / "sensitivity.csv"), finished)
            started = dt.datetime.now(dt.UTC)
            clock = time.perf_counter()
            trials = _run_points(spec, design, out, executor, progress)
        except BaseException:
            executor.shutdown(wait=False, cancel_futures=True)
            raise
        executor.shutdown(wait=True, cancel_futures=True)
        sensitivity = sensitivity_table(spec, design, out / "points.parquet", trials)
        pa.default_memory_pool().release_unused()
        write_text(out / "sensitivity.csv", sensitivity.to_csv(index=False, float_format="%.6g"))
        write_text(out / "spec.toml", spec_toml(spec))
        write_text(out / "scenario.toml", scenario_toml(spec.scenario))
        manifest = {
            "kind": "sweep",
            "sweep": spec.name,
            "description": meta.description,
            "scenario": spec.scenario.scenario.name,
            "config_hash": plan["config_hash"],
            "design": meta.design,
            "parameters": {k: p.model_dump(exclude_none=True) for k, p in spec.parameters.items()},
            "outputs": list(spec.outputs),
            "set": manifests.override_words(overrides),
            "seed": meta.seed,
            "samples": meta.samples,
            "trials_per_point": meta.trials_per_point,
            "points": design.size,
            "trials": design.size * meta.trials_per_point,
            "plan": plan,
            "workers": executor_workers(executor),
            "executor": executor_name(executor),
            "started_at": started.isoformat(timespec="seconds"),
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "elapsed_seconds": round(time.perf_counter() - clock, 3),
            "command": shlex.join(command),
            "reproduce": shlex.join(["escsim", "sweep", str(out / "spec.toml"), "--out", "NEW_FOLDER"]),
            "versions": manifests.versions(extra=("SALib",)),
        }
        from sim.reports.sweep import write_sweep_report

        write_sweep_report(out, manifest=manifest)
        write_json(out / "manifest.json", manifest)
        finish_folder(out)
    return SweepResult(out, sensitivity, manifest)


def sensitivity_table(spec: Sweep, design: DesignPoints, points: Path, trials: TrialStore | None = None) -> pd.DataFrame:
    """`sensitivity.csv` from `points.parquet`: each output's values and intervals in point order
    (and, for a one-at-a-time design, the end points' per-trial outputs for paired swings)."""
    meta = spec.spec.sweep
    y, lo, hi = point_outputs(points, list(spec.outputs), design.size)
    intervals = {o: (lo[o], hi[o]) for o in spec.outputs}
    per_trial = None
    if trials is not None:
        per_trial = {o: {p: trials.get(p, k) for p in trials.values} for k, o in enumerate(spec.outputs)}
    return analyze(design, y, intervals, seed=meta.seed, second_order=meta.second_order, levels=meta.levels,
                   trials=per_trial)


def point_outputs(path: Path, outputs: list[str], size: int) -> tuple[dict, dict, dict]:
    """Each output's estimate, lo and hi at every design point (NaN where the file has none), read
    from `points.parquet` a row group at a time: three floats per point and output are held,
    not the file's table (which, with its parameter columns, weighs ten times more)."""
    y, lo, hi = ({o: np.full(size, np.nan) for o in outputs} for _ in range(3))
    for batch in pq.ParquetFile(path, pre_buffer=False).iter_batches(columns=["point", "output", "estimate", "lo", "hi"], use_threads=False):
        point = batch.column("point").to_numpy()
        column = batch.column("output")
        if pa.types.is_dictionary(column.type):
            names, codes = column.dictionary.to_pylist(), column.indices.to_numpy(zero_copy_only=False)
        else:
            names, codes = np.unique(column.to_numpy(zero_copy_only=False).astype(str), return_inverse=True)
        values = [batch.column(k).to_numpy() for k in ("estimate", "lo", "hi")]
        for code, name in enumerate(names):
            if name in y:
                where = codes == code
                for target, source in zip((y, lo, hi), values, strict=True):
                    target[name][point[where]] = source[where]
    return y, lo, hi


def _run_points(spec: Sweep, design: DesignPoints, out: Path, executor, progress: bool | None) -> TrialStore:
    meta = spec.spec.sweep
    keep = end_mask(design.unit) if design.kind == "oat" else None
    text = spec.scenario.model_dump_json(by_alias=True)
    paths = tuple(p.path for p in spec.parameters.values())
    size = points_per_task(meta.trials_per_point)
    tasks = []
    for first in range(0, design.size, size):
        stop = min(first + size, design.size)
        # A view of the design's rows: the plan of a sweep costs no more memory than its design.
        tasks.append((first, PointsTask(text, paths, np.arange(first, stop, dtype=np.int64), design.values[first:stop],
                                        meta.seed, meta.trials_per_point, tuple(spec.outputs),
                                        None if keep is None else keep[first:stop])))
    by_first = dict(tasks)
    checkpoints = Checkpoints(out / CHUNKS, prefix="points",
                              check=lambda first, arrays: _points_problem(by_first[first], len(spec.outputs), arrays))
    counts = {first: len(task.points) for first, task in tasks}
    left = sum(n for first, n in counts.items() if not checkpoints.has(first))
    bar = tqdm(total=design.size, initial=design.size - left, unit="point", desc=spec.name, file=sys.stderr,
               dynamic_ncols=True, disable=None if progress is None else not progress)
    writer = PointsWriter(out / "points.parquet", design, list(spec.outputs))
    trials = TrialStore()

    def consume(key: int, arrays) -> None:
        writer.add(arrays)
        trials.add(arrays)

    try:
        failures = complete_in_order(executor, run_points, tasks, checkpoints, to_arrays=_point_arrays,
                                     consume=consume,
                                     done=lambda key: bar.update(counts[key]))
        if failures:
            writer.abort()
            _raise_failures(out / CHUNKS, design, failures)
        writer.finish()
    except BaseException:
        writer.abort()
        raise
    finally:
        bar.close()
    return trials


def _points_problem(task: PointsTask, outputs: int, arrays: dict) -> str | None:
    """What is wrong with a points checkpoint read back for `task`, if anything."""
    missing = [k for k in ("points", "estimate", "lo", "hi") if k not in arrays]
    if missing:
        return f"an archive without the array {missing[0]!r}"
    if not np.array_equal(arrays["points"], task.points):
        return f"the checkpoint of other design points than this task's {len(task.points):,}"
    shape = (len(task.points), outputs)
    for name in ("estimate", "lo", "hi"):
        if arrays[name].shape != shape:
            return f"the array {name!r} of shape {arrays[name].shape}, where these points have {shape}"
    return None


def _point_arrays(result: PointsResult):
    if result.failures:
        return None, result.failures
    arrays = {"points": result.points, "estimate": result.estimate, "lo": result.lo, "hi": result.hi}
    if result.kept is not None:
        arrays |= {"kept": result.kept, "trials": result.trials}
    return arrays, []


def _raise_failures(folder: Path, design: DesignPoints, failures: list[tuple[int, str]]) -> None:
    def where(point: int) -> str:
        values = [f"{n} = {v:g}" for n, v in zip(design.names, design.values[point], strict=True) if not math.isnan(v)]
        return ", ".join(values) or "the base scenario's values"

    write_json(folder / "failures.json", [{"point": p, "values": where(p), "error": e} for p, e in failures])
    point, error = failures[0]
    more = f" ({len(failures) - 1} more in {folder / 'failures.json'})" if len(failures) > 1 else ""
    raise PointError(point, f"{error} (at {where(point)}){more}")


class PointsWriter:
    """Streams points' rows into `points.parquet` (a temporary file renamed in at the end)."""

    def __init__(self, path: Path, design: DesignPoints, outputs: list[str]):
        self.design, self.outputs = design, outputs
        fields = [pa.field("point", pa.int64())]
        fields += [pa.field(name, pa.float64()) for name in design.names]
        fields += [pa.field("output", pa.dictionary(pa.int16(), pa.string())), pa.field("estimate", pa.float64()),
                   pa.field("lo", pa.float64()), pa.field("hi", pa.float64()), pa.field("half_width", pa.float64())]
        self.schema = pa.schema(fields)
        self._tmp = atomic_path(path)
        self._written = self._tmp.__enter__()
        self._writer = pq.ParquetWriter(self._written, self.schema, **PARQUET_OPTIONS)
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._names = pa.array(outputs, pa.string())
        self._closed = False
        self._next_point = 0

    def add(self, arrays: dict[str, np.ndarray]) -> None:
        points = arrays["points"]
        if not np.array_equal(points, np.arange(self._next_point, self._next_point + len(points))):
            raise WorkError(f"points.parquet: expected design points from {self._next_point} in order, found others; "
                            "nothing final was written")
        self._next_point += len(points)
        o = len(self.outputs)
        rows = np.repeat(points, o)
        est, lo, hi = (arrays[k].reshape(-1) for k in ("estimate", "lo", "hi"))
        columns = [pa.array(rows)]
        columns += [pa.array(self.design.values[rows, j]) for j in range(len(self.design.names))]
        columns += [pa.DictionaryArray.from_arrays(pa.array(np.tile(np.arange(o, dtype=np.int16), len(points))), self._names),
                    pa.array(est), pa.array(lo), pa.array(hi), pa.array((hi - lo) / 2)]
        self._tables.append(pa.Table.from_arrays(columns, schema=self.schema))
        self._rows += len(rows)
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._tables:
            table = pa.concat_tables(self._tables).combine_chunks()
            self._writer.write_table(table, row_group_size=table.num_rows)
            self._tables, self._rows = [], 0
            # Arrow's allocator keeps what a row group freed (tens of MB over a long sweep).
            pa.default_memory_pool().release_unused()

    def finish(self) -> None:
        self._flush()
        self._writer.close()
        written = pq.ParquetFile(self._written).metadata.num_rows
        expected = self.design.size * len(self.outputs)
        if written != expected or self._next_point != self.design.size:
            self.abort()
            raise WorkError(f"points.parquet would hold {written:,} rows where the design's {self.design.size:,} points "
                            f"and {len(self.outputs)} outputs make {expected:,} (checkpoints went missing while it was "
                            "written); nothing final was written")
        self._closed = True
        self._tmp.__exit__(None, None, None)

    def abort(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._writer.close()
        except Exception:  # noqa: BLE001 - already broken: nothing more to save
            pass
        self._tmp.__exit__(RuntimeError, RuntimeError("aborted"), None)


def spec_toml(spec: Sweep) -> str:
    """The sweep as run (overrides applied, base scenario resolved beside it as scenario.toml)."""
    data = spec.spec.model_dump(mode="python", exclude_none=True)
    data["sweep"]["base"] = "scenario.toml"
    header = "# Sweep spec as run; its base is the resolved scenario beside it. `escsim sweep` on this file reproduces it.\n"
    return header + tomli_w.dumps(data)


def _spec_hash(spec: Sweep) -> str:
    data = spec.spec.model_dump(mode="json")
    data["sweep"].pop("base")
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
