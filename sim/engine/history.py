"""A forecast's start: each trial's history, run until it agrees with what was observed.

A forecast scenario (`[forecast]`, resolved into `forecast.resolved`) starts at its origin from
the state a history replay leaves there. For trial *i* with parameter draw θ (its posterior
particle), `HistoryStarts.start` runs the replay from its start to the origin with θ, on the
streams of attempt *a* = 0, 1, …, until one history agrees with every observation before the
origin: each event happened (or did not) as observed, and the counts' root mean square miss
(`sim.stats.count_miss`, the calibration's measure) is at most the tolerance. The forecast
trial then runs from the state that history left (`sim.model.state`) on the trial's own streams,
the same as an unconditioned trial's, so common random numbers hold between scenarios that
share the history.

θ keeps its posterior law: the history is drawn given θ (p(history | θ, observed)), not θ again
given the history, which would count the fit's data twice. A θ under which no agreeing history
comes in `attempts` tries is one the observations rule out (more strictly than its fit did, for
targets it did not use): the trial draws θ again, from the stream of its next round, and counts
it (`redraws`); the runner refuses a forecast where too many trials did.

A history is abandoned as soon as it cannot agree (an exact saving): at the end of each count's
period and at each event's date a check adds the periods closed so far, and stops the history
once an event has gone the other way or the closed counts alone miss by more than the tolerance
allows. A history that runs away (`RunawayError`: more events than the scenario allows) counts
as one that does not agree.

Where the targets give a series a reporting model (`resolved.reporting`), its observed counts are
claims: a history's count is the claims drawn (`sim.model.observation.claims`) from its launches
in the period, on the attempt's stream `REPORTING_STREAM`, with the trial's particle's values for
the fitted fields. Claims are drawn count by count in the order the periods close, whether a check
or the final test asks first, so early stopping stays exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.engine.draws import ParameterDraws
from sim.model.observation import REPORTING_STREAM, claims, is_identity
from sim.model.state import WorldState, capture
from sim.model.streams import Streams
from sim.model.world import Blueprint, RunawayError, World
from sim.scenario.schema import ForecastHistory, Reporting, Scenario
from sim.stats import count_miss

HISTORY_PURPOSE = 0x68697374  # "hist": the spawn key of the histories' seeds


class Disagrees(Exception):
    """Raised by a check inside a history that can no longer agree with the observations."""


def history_seed(seed: int, round_: int, attempt: int) -> int:
    """The seed of the streams of one history attempt (of trial i: `Streams(history_seed(...), i)`),
    apart from every forecast trial's streams (`Streams(seed, i)`)."""
    words = np.random.SeedSequence(seed, spawn_key=(HISTORY_PURPOSE, round_, attempt)).generate_state(2, np.uint64)
    return int(words[0]) << 64 | int(words[1])


@dataclass(frozen=True)
class _Count:
    name: str
    series: str
    first: int
    last: int  # inclusive bins
    end_day: float
    lo: float
    hi: float
    days: float  # the period's length


class Conditions:
    """The observations before the origin, in a history blueprint's bins and milestones."""

    def __init__(self, resolved: ForecastHistory, history: Scenario, tolerance: float | None = None):
        """`tolerance`: the scenario's `forecast.tolerance` where it sets one (a sweep may vary it
        after the history was resolved); else the one resolved from the fit."""
        self.tolerance = resolved.tolerance if tolerance is None else tolerance
        self.origin = resolved.origin_day
        cuts = {c.start_day for c in resolved.counts} | {c.end_day for c in resolved.counts}
        self.edges = sorted(d for d in cuts if 0.0 < d < self.origin)
        from bisect import bisect_right

        self.counts = sorted((  # by the end of their period: a check adds those closed since the last
            _Count(c.name, c.series, bisect_right(self.edges, c.start_day), bisect_right(self.edges, c.end_day - 1e-9),
                   c.end_day, c.lo, math.inf if c.hi is None else c.hi, c.end_day - c.start_day)
            for c in resolved.counts), key=lambda c: c.end_day)
        self.reporting = dict(resolved.reporting)
        self.reporting_parameters = dict(resolved.reporting_parameters)
        milestones = list(history.milestones)
        self.events = [(milestones.index(e.milestone), e.by_day, e.happened) for e in resolved.events]
        days = {c.end_day for c in self.counts} | {d for _, d, _ in self.events}
        self.check_days = sorted(d for d in days if d < self.origin)
        self.allowed = self.tolerance ** 2 * len(self.counts)  # the sum of squared misses a history may reach

    # --- inside a running history -----------------------------------------------------------

    def reporting_of(self, parameters: list[str], values: list[float] | None) -> dict[str, Reporting]:
        """Each reported series' model with a particle's values (of the posterior's `parameters`)."""
        out = dict(self.reporting)
        if values is not None:
            for name, value in zip(parameters, values, strict=True):
                if name in self.reporting_parameters:
                    series, field = self.reporting_parameters[name].split(".", 1)
                    out[series] = out[series].model_copy(update={field: float(value)})
        return {series: r for series, r in out.items() if not is_identity(r)}

    def observer(self, reporting: dict[str, Reporting], streams: Streams) -> _Observer:
        """What one history attempt's counts are observed as (claims where a series is reported)."""
        return _Observer(self, reporting, streams)

    def watch(self, world: World, observer: _Observer) -> None:
        """Schedule the checks that stop `world` once it cannot agree. They come in time order, and a
        count's miss is final once its period has closed: `progress` keeps the counts added so far
        and the sum of their squared misses."""
        progress = [0, 0.0]
        for day in self.check_days:
            world.at(day, self._check, world, day, progress, observer)

    def _live(self, world: World, count: _Count) -> int:
        series = count.series
        if series.startswith("attacks_on_") or series.startswith("attacks_by_"):
            target = series.removeprefix("attacks_on_") if series.startswith("attacks_on_") else None
            militia = series.removeprefix("attacks_by_") if target is None else None
            return sum(sum(ch.attacks[count.first:count.last + 1])
                       for m in world.militias.values() if militia is None or m.name == militia
                       for ch in m.channels.values() if target is None or ch.target == target)
        row = world.tally.monthly[world.tally.index[series]]
        return sum(row[count.first:count.last + 1])

    def _check(self, world: World, day: float, progress: list, observer: _Observer) -> None:
        for index, by_day, happened in self.events:
            t = world.milestones[index].t
            if happened and by_day <= day and (t is None or t >= by_day):
                raise Disagrees
            if not happened and t is not None and t < by_day:
                raise Disagrees
        k, missed = progress
        counts = self.counts
        while k < len(counts) and counts[k].end_day <= day:
            missed += count_miss(observer.count(world, k), counts[k].lo, counts[k].hi) ** 2
            k += 1
        progress[0], progress[1] = k, missed
        if missed > self.allowed:
            raise Disagrees

    # --- a finished history -----------------------------------------------------------------

    def agrees(self, world: World, observer: _Observer) -> bool:
        """Whether a history run to the origin agrees with every observation."""
        for index, by_day, happened in self.events:
            t = world.milestones[index].t
            if (t is not None and t < by_day) != happened:
                return False
        missed = sum(count_miss(observer.count(world, k), c.lo, c.hi) ** 2 for k, c in enumerate(self.counts))
        return missed <= self.allowed


class _Observer:
    """The counts of one history attempt as observed: each drawn once, when first asked for, in the
    order of `Conditions.counts` (checks and the final test ask in that order)."""

    __slots__ = ("conditions", "reporting", "streams", "stream", "seen")

    def __init__(self, conditions: Conditions, reporting: dict[str, Reporting], streams: Streams):
        self.conditions, self.reporting, self.streams = conditions, reporting, streams
        self.stream = None
        self.seen: dict[int, int] = {}

    def count(self, world: World, k: int) -> int:
        found = self.seen.get(k)
        if found is None:
            c = self.conditions.counts[k]
            found = self.conditions._live(world, c)
            r = self.reporting.get(c.series)
            if r is not None:
                if self.stream is None:
                    self.stream = self.streams(REPORTING_STREAM)
                found = claims(found, c.days, r, self.stream)
            self.seen[k] = found
        return found


class HistoryStarts:
    """The histories of a forecast scenario's trials: one per trial, agreeing with the record."""

    def __init__(self, scenario: Scenario):
        resolved = scenario.forecast.resolved if scenario.forecast is not None else None
        if resolved is None:
            raise RuntimeError(f"scenario {scenario.scenario.name} is a forecast whose history has not been resolved "
                               "(sim.forecast.resolve_forecast); it cannot run unconditioned")
        self.attempts = scenario.forecast.attempts
        data = dict(resolved.history)
        posterior = scenario.parameters.posterior
        if posterior is not None:
            data["parameters"] = {"posterior": posterior.model_copy(update={"paths": resolved.paths}).model_dump()}
        self.history = Scenario.model_validate(data, strict=False)
        self.conditions = Conditions(resolved, self.history, scenario.forecast.tolerance)
        self.draws = ParameterDraws(self.history, edges=self.conditions.edges) if posterior is not None else None
        self.parameters = list(posterior.parameters) if posterior is not None else []
        self.values = (lambda particle: posterior.values[particle]) if posterior is not None else (lambda particle: None)
        self.blueprint = Blueprint(self.history, self.conditions.edges) if posterior is None else None

    def start(self, seed: int, trial: int, particle: int) -> tuple[WorldState, int, int, int]:
        """(state at the origin, attempts run, rounds of redrawing, the particle used) for `trial`,
        whose own parameter draw is `particle` (-1: the scenario draws none)."""
        attempts = 0
        round_ = 0
        while True:
            plan = self.draws.blueprint(particle) if self.draws is not None else self.blueprint
            reporting = self.conditions.reporting_of(self.parameters, self.values(particle))
            for a in range(self.attempts):
                attempts += 1
                streams = Streams(history_seed(seed, round_, a), trial)
                world = World(plan, seed, trial, streams)
                observer = self.conditions.observer(reporting, streams)
                try:
                    self.conditions.watch(world, observer)
                    try:
                        world.run()
                    except (Disagrees, RunawayError):  # a runaway history is one no record agrees with
                        continue
                    if self.conditions.agrees(world, observer):
                        return capture(world, world.horizon), attempts, round_, particle
                finally:
                    world.release()
            round_ += 1
            if self.draws is None:
                raise RuntimeError(f"no history of {self.attempts:,} agreed with what was observed before the origin "
                                   "(the scenario draws no parameters to try again with): loosen forecast.tolerance or "
                                   "raise forecast.attempts")
            if round_ > 100:
                raise RuntimeError(f"no history agreed with what was observed before the origin in {attempts:,} tries "
                                   f"with 100 parameter draws: loosen forecast.tolerance")
            particle = self.draws.pick(Streams(history_seed(seed, round_, self.attempts), trial))
