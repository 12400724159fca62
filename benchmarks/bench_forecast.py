"""Benchmark of a forecast's trials (`[forecast]`, docs/model.md 9.5) against plain ones.

    python benchmarks/bench_forecast.py            # about three minutes

Machines are noisy, so every figure is a median over repeats, measured alternately in one
process on one core, as a run's worker runs them (`simulate_trials` with roots):

- trials/s per core of the baseline (an assumed start) and of `forecast_2024_06` (each trial's
  histories until one agrees, then the year from its state), and their ratio;
- histories per forecast trial;
- the exact saving of stopping a history once it cannot agree: the forecast's time with the
  checks that stop histories switched off (every history run to the origin, then judged), over
  its time with them (the trials come out the same: tests/test_forecast.py).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.engine import history  # noqa: E402
from sim.engine.chunk import simulate_trials  # noqa: E402
from sim.forecast import resolve_forecast  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402


def timed(scenario, start: int, stop: int) -> tuple[float, object]:
    began = time.perf_counter()
    result = simulate_trials(scenario, scenario.run.seed, start, stop, roots=True)
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trials", type=int, default=40, help="forecast trials per repeat (the baseline runs 10x)")
    args = parser.parse_args()
    baseline = load_scenario(ROOT / "scenarios" / "baseline.toml")
    forecast = resolve_forecast(load_scenario(ROOT / "scenarios" / "forecast_2024_06.toml"))
    timed(baseline, 0, 50)  # warm up: imports, particles' scenarios
    timed(forecast, 0, 5)
    plain, conditioned, unchecked, histories = [], [], [], []
    watch = history.Conditions.watch
    for r in range(args.repeats):
        n = args.trials
        start = 1000 + r * n  # new trials each repeat, the same ones for each kind
        seconds, _ = timed(baseline, start * 10, (start + n) * 10)
        plain.append(n * 10 / seconds)
        seconds, result = timed(forecast, start, start + n)
        conditioned.append(n / seconds)
        histories.append(float(result.history_attempts.mean()))
        history.Conditions.watch = lambda self, world: None
        try:
            seconds_off, _ = timed(forecast, start, start + n)
        finally:
            history.Conditions.watch = watch
        unchecked.append(seconds_off / seconds)
    out = {
        "machine": platform.processor() or platform.machine(), "python": platform.python_version(),
        "repeats": args.repeats, "forecast_trials_per_repeat": args.trials,
        "baseline_trials_per_s": round(statistics.median(plain), 1),
        "forecast_trials_per_s": round(statistics.median(conditioned), 2),
        "ratio": round(statistics.median(p / c for p, c in zip(plain, conditioned, strict=True)), 1),
        "histories_per_trial": round(statistics.median(histories), 1),
        "early_stopping_saving": round(statistics.median(unchecked), 2),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
