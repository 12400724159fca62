"""A chunk of consecutive trials, run in one worker and returned as compact arrays.

Chunks are the unit of work the executors hand out and the unit that is checkpointed. A
trial that raises does not stop its chunk: its index and error are returned so the run can
name it. The scenario travels as JSON text and is rebuilt once per worker (cached by hash),
so any executor can carry a task.
"""

from __future__ import annotations

import functools
import traceback
from dataclasses import dataclass, field

import numpy as np

from sim.engine.draws import ParameterDraws
from sim.engine.history import HistoryStarts
from sim.engine.trial import run_trial
from sim.model.streams import Streams, stream_key
from sim.model.trace import TRACE_STREAM, RootTracer, root_vocabulary
from sim.model.world import Blueprint
from sim.scenario.schema import Scenario


@dataclass
class ChunkResult:
    start: int
    stop: int
    n_events: np.ndarray
    milestone_days: np.ndarray
    max_rung: np.ndarray
    totals: np.ndarray
    monthly: np.ndarray
    failures: list[tuple[int, str]] = field(default_factory=list)
    particle: np.ndarray | None = None  # the posterior particle each trial drew (-1: none)
    roots: np.ndarray | None = None  # [trial, milestone]: the root of its cause chain, by `root_vocabulary` index (-1: not reached)
    # A forecast's (`sim.engine.history`): histories each trial ran, its parameter redraws, and the
    # day (before the origin: negative) its history reached each milestone (NaN: not reached).
    history_attempts: np.ndarray | None = None
    redraws: np.ndarray | None = None
    history_days: np.ndarray | None = None

    @property
    def trials(self) -> np.ndarray:
        return np.arange(self.start, self.stop, dtype=np.int64)


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs: the scenario as JSON, the seed and a range of trials."""

    scenario_json: str
    seed: int
    start: int
    stop: int
    roots: bool = False  # record each milestone's root (`simulate_trials`)


@functools.lru_cache(maxsize=8)
def _scenario_from_json(text: str) -> Scenario:
    return Scenario.model_validate_json(text, strict=False)


def run_chunk(task: ChunkTask) -> ChunkResult:
    return simulate_trials(_scenario_from_json(task.scenario_json), task.seed, task.start, task.stop, roots=task.roots)


BLOCK_TRIALS = 250  # trials whose random streams are seeded, and posterior particles picked, together


def _next_streams(seed: int, start: int, stop: int, draws: ParameterDraws | None, particles: np.ndarray) -> list[Streams]:
    """The streams of the next block of trials from `start`, last first, each with its entropy
    drawn (and, with a posterior, its particle picked into `particles`). Done block by block
    rather than trial by trial, numpy's `SeedSequence` runs with its code in the processor's
    cache: between two trials' runs it took three times as long."""
    block = [Streams(seed, trial) for trial in range(start, min(stop, start + BLOCK_TRIALS))]
    for k, streams in enumerate(block):
        if draws is not None:
            particles[k] = draws.pick(streams)
        else:
            streams.entropy()
    block.reverse()
    return block


def simulate_trials(scenario: Scenario, seed: int, start: int, stop: int, roots: bool = False) -> ChunkResult:
    """Trials `start` .. `stop` − 1 of `scenario` with `seed`. `roots`: run each with a `RootTracer`
    (its own stream: the trial's outcome is the same) and record the root of each milestone's cause
    chain, as its full trace names it; a trial then takes about twice as long (docs/performance.md)."""
    n = stop - start
    blueprint = Blueprint(scenario)
    draws = ParameterDraws(scenario) if scenario.parameters.posterior is not None else None
    names, monthly_names, months = blueprint.series, blueprint.monthly_series, blueprint.months
    n_events = np.zeros(n, dtype=np.int64)
    days = np.full((n, len(scenario.milestones)), np.nan)
    rung = np.zeros(n, dtype=np.int16)
    totals = np.zeros((n, len(names)), dtype=np.int64)
    monthly = np.zeros((n, len(monthly_names), len(months)), dtype=np.int64)
    particle = np.full(n, -1, dtype=np.int32)
    root_codes = np.full((n, len(scenario.milestones)), -1, dtype=np.int16) if roots else None
    vocabulary = {name: k for k, name in enumerate(root_vocabulary(scenario))} if roots else {}
    trace_key = stream_key(TRACE_STREAM)
    milestones = list(scenario.milestones)
    starts = HistoryStarts(scenario) if scenario.forecast is not None else None
    attempts = np.zeros(n, dtype=np.int32) if starts is not None else None
    redraws = np.zeros(n, dtype=np.int16) if starts is not None else None
    history_days = np.full((n, len(milestones)), np.nan) if starts is not None else None
    failures = []
    streams: list[Streams] = []
    for k, trial in enumerate(range(start, stop)):
        if not streams:
            streams = _next_streams(seed, trial, stop, draws, particle[k:])
        try:
            trial_streams = streams.pop()
            initial = None
            if starts is not None:
                initial, attempts[k], redraws[k], particle[k] = starts.start(seed, trial, int(particle[k]))
                history_days[k] = [initial.reached.get(m, np.nan) for m in milestones]
            plan = draws.blueprint(int(particle[k])) if draws is not None else blueprint
            tracer = RootTracer(trial_streams.keyed(trace_key)) if roots else None
            out = run_trial(plan, seed, trial, trial_streams, tracer, initial)
            if tracer is not None:
                root_codes[k] = _codes(tracer.roots(), milestones, vocabulary)
            n_events[k] = out.n_events
            days[k] = out.milestone_days
            rung[k] = out.max_rung
            totals[k] = out.totals
            monthly[k] = out.monthly
        except Exception as exc:  # noqa: BLE001 - recorded with the trial index, reported by the run
            failures.append((trial, "".join(traceback.format_exception_only(exc)).strip()))
    return ChunkResult(start, stop, n_events, days, rung, totals, monthly, failures, particle, root_codes,
                       attempts, redraws, history_days)


def _codes(roots: dict[str, str], milestones: list[str], vocabulary: dict[str, int]) -> list[int]:
    codes = []
    for m in milestones:
        root = roots.get(m)
        if root is not None and root not in vocabulary:
            raise RuntimeError(f"milestone {m}'s cause chain begins at {root!r}, a root pathways cannot name")
        codes.append(-1 if root is None else vocabulary[root])
    return codes
