"""escalation-sim: an agent-based, discrete-event model of escalation around the Iraqi militias'
attacks on Israel and US forces, run as Monte Carlo trials.

The Python API mirrors the command line and returns pandas objects:

    import sim
    scenario = sim.load_scenario("scenarios/baseline.toml")
    result = sim.run(scenario, trials=1000, seed=1)
    result.summary          # summary.csv as a DataFrame
    result.trials           # one row per trial
    swept = sim.sweep("scenarios/sweeps/tornado_baseline.toml", trials_per_point=200)
    swept.sensitivity       # sensitivity.csv as a DataFrame
    story = sim.trace("scenarios/baseline.toml", where="regional_war")
    story                   # events.csv as a DataFrame; story.attrs["roots"], ["chains"], ["levels"]
    lower = scenario.with_changes({"actors.israel.rules.strike_in_iraq.threshold": 60.0})
    sim.run("scenarios/baseline.toml", overrides=["actors.israel.rules.strike_in_iraq.threshold=60"])

Names are imported on first use, so a worker process that only simulates does not load the
report and storage libraries.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "InputError": "sim.errors",
    "TrialError": "sim.errors",
    "Scenario": "sim.scenario",
    "load_scenario": "sim.scenario",
    "RunResult": "sim.runs.runner",
    "run": "sim.runs.runner",
    "load_sweep": "sim.sweeps.spec",
    "SweepResult": "sim.sweeps.runner",
    "sweep": "sim.sweeps.runner",
    "calibrate": "sim.calibration.fit",
    "compare": "sim.comparison.runner",
    "CompareResult": "sim.comparison.runner",
    "trace": "sim.runs.trace",
}

__all__ = sorted(_EXPORTS)


def __dir__() -> list[str]:
    """The public API (the names are imported on first use, so they are not module globals yet)."""
    return sorted({*__all__, *(k for k in globals() if not k.startswith("_"))} - {"annotations", "importlib"})


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")
