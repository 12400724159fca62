"""One trial: a pure function of (scenario, seed, trial index) → a small result record."""

from __future__ import annotations

from sim.model.state import WorldState
from sim.model.streams import Streams
from sim.model.world import Blueprint, TrialOutcome, World
from sim.scenario.schema import Scenario


def run_trial(scenario: Scenario | Blueprint, seed: int, trial: int, streams: Streams | None = None,
              tracer=None, initial: WorldState | None = None) -> TrialOutcome:
    """Build trial `trial`'s world on its own random streams and run it to the horizon.
    Pass a `Blueprint` when running many trials of one scenario: it is the shared part;
    and the trial's `streams` if they are already made (`simulate_trials` makes them a block of
    trials at a time), a tracer to tell its events to (`sim.model.trace`), and the state a history
    left at the start (`sim.model.state`; a forecast's). The world is released once read out
    (`World.release`)."""
    world = World(scenario, seed, trial, streams, tracer=tracer, initial=initial)
    try:
        return world.run()
    finally:
        world.release()
