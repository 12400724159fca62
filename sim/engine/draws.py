"""Per-trial parameters drawn from a calibrated posterior (`parameters.posterior`).

Trial *i* picks particle *j* with probability proportional to its weight, by a uniform from
its own stream named "parameters" (so the same trial picks the same particle in every scenario
that uses the fit), and runs the scenario with the particle's values at the fitted key paths.
Each particle's scenario is built once per worker and kept.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right

from sim.model.streams import Streams
from sim.model.world import Blueprint
from sim.scenario.loading import to_plain
from sim.scenario.paths import with_values
from sim.scenario.schema import Scenario

_BLUEPRINTS: dict[tuple[str, int], Blueprint] = {}
_MAX_CACHED = 5000


class ParameterDraws:
    def __init__(self, scenario: Scenario):
        posterior = scenario.parameters.posterior
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
        self.key = hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()

    def pick(self, seed: int, trial: int) -> int:
        u = Streams(seed, trial)("parameters").uniform()
        return min(bisect_right(self.cumulative, u), len(self.cumulative) - 1)

    def values(self, particle: int) -> dict[str, float]:
        row = self.posterior.values[particle]
        return {path: value for paths, value in zip(self.posterior.paths, row, strict=True) for path in paths}

    def blueprint(self, particle: int) -> Blueprint:
        key = (self.key, particle)
        found = _BLUEPRINTS.get(key)
        if found is None:
            if len(_BLUEPRINTS) >= _MAX_CACHED:
                _BLUEPRINTS.clear()
            scenario = Scenario.model_validate(with_values(self.base, self.values(particle)), strict=False)
            found = _BLUEPRINTS[key] = Blueprint(scenario)
        return found
