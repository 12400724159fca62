"""Trials of a scenario with some parameters changed: the unit of work of a calibration (one
trial per parameter vector) and of draws from a calibrated posterior.

The base scenario travels as JSON and is parsed once per worker; each variant sets its values
by key path and is validated like any scenario. A variant that fails (values the scenario
refuses, a runaway trial) comes back as its error message: the caller decides what it means.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

from pydantic import ValidationError

from sim.engine.trial import run_trial
from sim.model.world import Blueprint, TrialOutcome
from sim.scenario.paths import with_values
from sim.scenario.schema import Scenario


@dataclass(frozen=True)
class VariantTask:
    scenario_json: str
    paths: tuple[str, ...]
    thetas: tuple[tuple[float, ...], ...]
    seed: int
    trials: tuple[int, ...]  # the trial index (random streams) of each variant
    edges: tuple[float, ...] | None = None  # time bins of the monthly series (None: months)


@functools.lru_cache(maxsize=4)
def _plain(text: str) -> dict:
    return json.loads(text)


def variant(base: dict, paths: tuple[str, ...], theta) -> Scenario:
    return Scenario.model_validate(with_values(base, dict(zip(paths, map(float, theta), strict=True))), strict=False)


def run_variants(task: VariantTask) -> list[TrialOutcome | str]:
    base = _plain(task.scenario_json)
    out: list[TrialOutcome | str] = []
    for theta, trial in zip(task.thetas, task.trials, strict=True):
        try:
            scenario = variant(base, task.paths, theta)
            out.append(run_trial(Blueprint(scenario, list(task.edges) if task.edges is not None else None),
                                 task.seed, trial))
        except (ValidationError, RuntimeError) as exc:
            out.append(f"{type(exc).__name__}: {exc}")
    return out
