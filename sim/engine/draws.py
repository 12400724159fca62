"""Per-trial parameters drawn from a calibrated posterior (`parameters.posterior`).

Trial *i* picks particle *j* with probability proportional to its weight, by a uniform from
its own stream named "parameters" (so the same trial picks the same particle in every scenario
that uses the fit), and runs the scenario with the particle's values at the fitted key paths.
Each particle's scenario is built once per worker and kept, for the scenarios used last
(`KEPT_SCENARIOS`): a run reuses its particles in every chunk, while a sweep's points are each a
new scenario whose particles no later point can use.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections import OrderedDict

from sim.model.streams import PARAMETERS_STREAM, Streams, stream_key
from sim.model.world import Blueprint
from sim.scenario.loading import to_plain
from sim.scenario.paths import with_values
from sim.scenario.schema import Scenario

KEPT_SCENARIOS = 3  # scenarios whose particles a worker keeps, the most recently used (a forecast uses two: its history's and its own)
_MAX_CACHED = 5000  # particles kept for one scenario (each ~85 kB)
PARAMETERS_KEY = stream_key(PARAMETERS_STREAM)
_BLUEPRINTS: OrderedDict[str, dict[int, Blueprint]] = OrderedDict()


class ParameterDraws:
    def __init__(self, scenario: Scenario, edges: list[float] | None = None):
        """`edges`: the time bins of the particles' blueprints (`Blueprint`; None: calendar months)."""
        posterior = scenario.parameters.posterior
        self.edges = edges
        self.posterior = posterior
        total = sum(posterior.weights)
        running, self.cumulative = 0.0, []
        for w in posterior.weights:
            running += w / total
            self.cumulative.append(running)
        self.cumulative[-1] = 1.0
        base = to_plain(scenario)
        base.pop("parameters", None)
        self.base = base
        self.key = hashlib.sha256((scenario.model_dump_json() + repr(edges)).encode()).hexdigest()

    def pick(self, streams: Streams) -> int:
        """The particle of the trial whose streams these are."""
        u = streams.keyed(PARAMETERS_KEY).uniform()  # not kept by `streams`: the trial draws it once
        return min(bisect_right(self.cumulative, u), len(self.cumulative) - 1)

    def values(self, particle: int) -> dict[str, float]:
        row = self.posterior.values[particle]
        return {path: value for paths, value in zip(self.posterior.paths, row, strict=True) for path in paths}

    def blueprint(self, particle: int) -> Blueprint:
        kept = _BLUEPRINTS.get(self.key)
        if kept is None:
            kept = _BLUEPRINTS[self.key] = {}
            while len(_BLUEPRINTS) > KEPT_SCENARIOS:
                _BLUEPRINTS.popitem(last=False)
        else:
            _BLUEPRINTS.move_to_end(self.key)
        found = kept.get(particle)
        if found is None:
            if len(kept) >= _MAX_CACHED:
                kept.clear()
            scenario = Scenario.model_validate(with_values(self.base, self.values(particle)), strict=False)
            first = next(iter(kept.values()), None)  # the particles share what their values leave alone
            found = kept[particle] = Blueprint(scenario, self.edges, like=first)
        return found
