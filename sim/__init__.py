"""escalation-sim: an agent-based, discrete-event model of escalation around the Iraqi militias'
attacks on Israel and US forces, run as Monte Carlo trials.

The Python API mirrors the command line and returns pandas objects:

    import sim
    scenario = sim.load_scenario("scenarios/baseline.toml")
    result = sim.run(scenario, trials=1000, seed=1)
    result.summary          # summary.csv as a DataFrame
    result.trials           # one row per trial
"""

from sim.errors import InputError, TrialError
from sim.runs.runner import RunResult, run
from sim.scenario import Scenario, load_scenario

__all__ = ["InputError", "RunResult", "Scenario", "TrialError", "load_scenario", "run"]
