"""Design points run in a worker: each point's trials are simulated and reduced there to its
outputs' estimates and 95% intervals, so only a few numbers per point travel back.

Every point runs trials 0 … M−1 of the sweep's seed: the same random streams at every point
(common random numbers), so differences between points are the parameters', not noise. A swept
parameter that the base scenario draws from a calibrated posterior is held at the point's value
(the posterior still draws the others).

A task carries its points as arrays (views of the design in the main process, so planning a sweep
of 10^5 or 10^6 points costs no more than its design). A worker keeps the posterior scenarios of
the last points only (`sim.engine.draws`): no other point can use them.

A one-at-a-time design's end points (`keep`) also return each output's value in each trial, for
the swings' paired intervals (`sim.sweeps.swings`).
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import ValidationError

from sim.engine.chunk import simulate_trials
from sim.runs.layout import RunLayout
from sim.runs.summary import Summary
from sim.scenario.paths import with_values
from sim.scenario.schema import Scenario, check_references
from sim.sweeps.swings import trial_values

TRIALS_PER_BLOCK = 1000  # a point's trials are simulated and summarised in blocks of this size


@dataclass(frozen=True, eq=False)
class PointsTask:
    scenario_json: str
    paths: tuple[str, ...]
    points: np.ndarray  # (points,) design indices
    values: np.ndarray  # (points, parameters); NaN: keep the base scenario's value
    seed: int
    trials: int
    outputs: tuple[str, ...]
    keep: np.ndarray | None = None  # (points,) bool: return these points' per-trial outputs too


@dataclass
class PointsResult:
    points: np.ndarray
    estimate: np.ndarray  # (points, outputs)
    lo: np.ndarray
    hi: np.ndarray
    failures: list[tuple[int, str]] = field(default_factory=list)  # (point, message)
    kept: np.ndarray | None = None  # design indices of the points whose per-trial outputs follow
    trials: np.ndarray | None = None  # (kept, outputs, trials)


@functools.lru_cache(maxsize=4)
def _plain(text: str) -> dict:
    return json.loads(text)


def point_scenario(base: dict, paths: tuple[str, ...], values: tuple[float, ...]) -> Scenario:
    """The base scenario with the point's values set (NaN: unchanged)."""
    chosen = {p: v for p, v in zip(paths, values, strict=True) if not math.isnan(v)}
    data = with_values(base, chosen)
    posterior = data.get("parameters", {}).get("posterior")
    if posterior is not None and chosen:
        posterior["paths"] = [[p for p in ps if p not in chosen] for ps in posterior["paths"]]
    scenario = Scenario.model_validate(data, strict=False)
    problems = check_references(scenario)
    if problems:
        raise ValueError(f"{problems[0][0]}: {problems[0][1]}")
    return scenario


def run_points(task: PointsTask) -> PointsResult:
    base = _plain(task.scenario_json)
    k, o = len(task.points), len(task.outputs)
    estimate, lo, hi = (np.full((k, o), np.nan) for _ in range(3))
    failures = []
    keep = np.zeros(k, dtype=bool) if task.keep is None else np.asarray(task.keep, dtype=bool)
    kept = np.asarray(task.points, dtype=np.int64)[keep]
    trials = np.full((len(kept), o, task.trials), np.nan)
    for i, (point, row) in enumerate(zip(task.points.tolist(), task.values, strict=True)):
        try:
            scenario = point_scenario(base, task.paths, tuple(map(float, row)))
        except (ValidationError, ValueError) as e:
            failures.append((point, f"the scenario refuses these values: {_first_line(e)}"))
            continue
        summary = Summary(RunLayout.of(scenario))
        failed = None
        for start in range(0, task.trials, TRIALS_PER_BLOCK):
            chunk = simulate_trials(scenario, task.seed, start, min(start + TRIALS_PER_BLOCK, task.trials))
            if chunk.failures:
                failed = f"trial {chunk.failures[0][0]} failed: {chunk.failures[0][1]}"
                break
            summary.add(chunk.milestone_days, chunk.max_rung, chunk.totals, chunk.monthly, chunk.n_events)
            if chunk.history_attempts is not None:  # a forecast's: what its histories took and reached
                summary.add_history(chunk.history_attempts, chunk.redraws, chunk.history_days)
            if keep[i]:
                trials[int(keep[:i].sum()), :, chunk.start:chunk.stop] = trial_values(
                    summary.layout, task.outputs, chunk.milestone_days, chunk.max_rung, chunk.totals)
        if not failed and scenario.forecast is not None:
            failed = summary.redrawn_problem(scenario.forecast)
        if failed:
            failures.append((point, failed))
            continue
        table = summary.table().set_index("metric").loc[list(task.outputs)]
        estimate[i], lo[i], hi[i] = table["estimate"], table["lo"], table["hi"]
    return PointsResult(np.asarray(task.points, dtype=np.int64), estimate, lo, hi, failures,
                        *((kept, trials) if task.keep is not None else (None, None)))


def _first_line(e: Exception) -> str:
    if isinstance(e, ValidationError):
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        return f"{where}: {err['msg'].removeprefix('Value error, ')}"
    return str(e).splitlines()[0]
