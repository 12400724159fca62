"""One trial: a pure function of (scenario, seed, trial index) → a small result record."""

from __future__ import annotations

from sim.model.world import TrialOutcome, World
from sim.scenario.schema import Scenario


def run_trial(scenario: Scenario, seed: int, trial: int) -> TrialOutcome:
    """Build trial `trial`'s world on its own random streams and run it to the horizon."""
    return World(scenario, seed, trial).run()
