"""Shared helpers: small scenarios built in code, and running trials without the CLI."""

from __future__ import annotations

import copy
import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from sim.engine.chunk import simulate_trials
from sim.scenario.loading import deep_merge, validate

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"

MINIMAL = {
    "scenario": {"name": "oracle", "start_date": dt.date(2024, 1, 1), "horizon_days": 100.0},
    "run": {"trials": 100, "seed": 1},
    "weapons": {"drone": {"p_hit": 0.5, "casualties_per_hit": 0.0, "death_share": 0.0}},
    "actors": {
        "m": {"kind": "militia", "attacks": {"s": {"rate_per_day": 1.0, "weapons": {"drone": 1.0}}}},
        "s": {"kind": "state", "interception": {"drone": 0.0}},
    },
    "milestones": {"first_attack": {"when": {"by": ["m"], "on": ["s"]}}},
    "ladder": ["first_attack"],
}


def make_scenario(override: dict | None = None, **meta):
    """The minimal one-militia, one-state scenario, deep-merged with `override`."""
    data = deep_merge(copy.deepcopy(MINIMAL), override or {})
    data["scenario"].update(meta)
    return validate(data)


class Trials:
    """Arrays of a batch of trials, addressable by series and milestone name."""

    def __init__(self, scenario, n: int, seed: int = 12345):
        from sim.model.world import tally_layout

        self.scenario = scenario
        self.result = simulate_trials(scenario, seed, 0, n)
        assert not self.result.failures, self.result.failures
        self.series, self.monthly_series, self.months = tally_layout(scenario)
        self.milestones = list(scenario.milestones)

    def count(self, series: str) -> np.ndarray:
        return self.result.totals[:, self.series.index(series)]

    def day(self, milestone: str) -> np.ndarray:
        return self.result.milestone_days[:, self.milestones.index(milestone)]


@pytest.fixture
def trials():
    return Trials


def hawkes_mean(mu: float, alpha: float, memory: float, horizon: float) -> float:
    """E[N(T)] of a Hawkes process of base rate μ and exponential kernel α·β·exp(−β t), β = 1/memory,
    started empty: μT/(1 − α) − μα/(1 − α) · (1 − exp(−kT))/k with k = β(1 − α)."""
    k = (1 - alpha) / memory
    return mu * horizon / (1 - alpha) - mu * alpha / (1 - alpha) * (1 - math.exp(-k * horizon)) / k


def assert_mean(values: np.ndarray, expected: float, z: float = 4.5) -> None:
    """The sample mean is within z Monte Carlo standard errors of the expected value."""
    values = np.asarray(values, dtype=float)
    se = values.std(ddof=1) / np.sqrt(values.size)
    assert abs(values.mean() - expected) <= z * se, (
        f"mean {values.mean():.4f} vs expected {expected:.4f}: {abs(values.mean() - expected) / se:.1f} SE"
    )


def as_foreground() -> None:
    """Popen preexec_fn: restore Ctrl-C's default, which a shell leaves ignored for background jobs (and their
    children), so a test can interrupt a command as a user at a terminal would."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)
