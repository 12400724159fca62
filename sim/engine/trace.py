"""Re-simulate one trial exactly as a run did, with its story: `trace_trial`.

Trial *i* of a run is a pure function of (scenario, seed, i): its streams come from
`Streams(seed, i)`, and with a posterior its particle is picked from those streams as
`simulate_trials` picks it, so the traced trial draws the same numbers and reaches the same
outcome (counts, milestone days) as the run's row of `trials.parquet`. The tracer draws only
from its own stream (`sim.model.trace.TRACE_STREAM`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from sim.engine.draws import ParameterDraws
from sim.engine.history import HistoryStarts
from sim.model.streams import Streams, stream_key
from sim.model.trace import COLUMNS, LEVEL_COLUMNS, TRACE_STREAM, Tracer
from sim.model.world import Blueprint, TrialOutcome, World
from sim.scenario.schema import Scenario


@dataclass
class TracedTrial:
    """One trial's outcome and story."""

    trial: int
    seed: int
    particle: int  # the posterior particle it drew (-1: none)
    outcome: TrialOutcome
    milestones: list[str]  # in the order of `outcome.milestone_days`
    series: list[str]  # in the order of `outcome.totals`
    events: pd.DataFrame  # `COLUMNS` and `date`, in time order
    levels: pd.DataFrame  # `LEVEL_COLUMNS` and `date`: each harm account after each deposit
    roots: dict[str, int]  # milestone reached -> the root event of its cause chain
    root_names: dict[str, str]  # milestone reached -> its root as pathways name it (`trials.parquet`'s root_<m>)
    chains: dict[str, list[int]]  # milestone reached -> its cause chain, root first

    def reached(self) -> list[str]:
        """The milestones reached, in the order they were (ties in the scenario's order)."""
        days = dict(zip(self.milestones, self.outcome.milestone_days, strict=True))
        return sorted((m for m, d in days.items() if d == d), key=lambda m: days[m])


def _traced(scenario: Scenario, draws: ParameterDraws | None, blueprint: Blueprint | None, seed: int, trial: int,
            starts: HistoryStarts | None = None):
    """(particle, plan, tracer, outcome): trial `trial` run with a tracer, on the streams and particle
    `simulate_trials` gives it (a forecast's: from the history `starts` gives it, as the run's)."""
    streams = Streams(seed, trial)
    if draws is not None:
        particle = draws.pick(streams)
    else:
        streams.entropy()
        particle = -1
    initial = None
    if starts is not None:
        initial, _, _, particle = starts.start(seed, trial, particle)
    plan = draws.blueprint(particle) if draws is not None else blueprint
    tracer = Tracer(streams.keyed(stream_key(TRACE_STREAM)))
    world = World(plan, seed, trial, streams, tracer=tracer, initial=initial)
    try:
        outcome = world.run()
    finally:
        world.release()
    return particle, plan, tracer, outcome


def _sources(scenario: Scenario) -> tuple[ParameterDraws | None, Blueprint | None]:
    if scenario.parameters.posterior is not None:
        return ParameterDraws(scenario), None
    return None, Blueprint(scenario)


def trace_trial(scenario: Scenario, seed: int, trial: int) -> TracedTrial:
    """Run trial `trial` of `scenario` with seed `seed`, traced."""
    draws, blueprint = _sources(scenario)
    starts = HistoryStarts(scenario) if scenario.forecast is not None else None
    particle, plan, tracer, outcome = _traced(scenario, draws, blueprint, seed, trial, starts)
    start = pd.Timestamp(scenario.scenario.start_date)
    events = pd.DataFrame(tracer.rows, columns=list(COLUMNS))
    events["cause"] = events["cause"].astype("Int64")
    for column in ("level", "threshold", "chance"):
        events[column] = events[column].astype("float64")
    events["acted"] = events["acted"].astype("boolean")
    events.insert(2, "date", _dates(start, events["day"]))
    levels = pd.DataFrame(tracer.levels, columns=list(LEVEL_COLUMNS))
    levels["event"] = levels["event"].astype("Int64")
    levels.insert(1, "date", _dates(start, levels["day"]))
    roots = {name: tracer.root_of(event) for name, event in tracer.milestones.items()}
    names = {name: tracer.root_label(event) for name, event in tracer.milestones.items()}
    chains = {name: tracer.chain(event) for name, event in tracer.milestones.items()}
    return TracedTrial(trial, seed, particle, outcome, [m[0] for m in plan.milestones], list(plan.series), events,
                       levels, roots, names, chains)


def _dates(start: pd.Timestamp, days: pd.Series) -> pd.Series:
    """The calendar date of each day offset (day 0 is the start date)."""
    return pd.Series([(start + dt.timedelta(days=float(d))).date().isoformat() for d in days], index=days.index,
                     dtype="string")
