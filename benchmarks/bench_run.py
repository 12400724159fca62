"""Benchmark of `escsim run` (DESIGN §9): speed per core against a bare SimPy loop, parallel
efficiency, and peak memory as the trial count grows.

    python benchmarks/bench_run.py                 # speed and the floor (about a minute)
    python benchmarks/bench_run.py --parallel      # + efficiency at 2 workers (a few minutes)
    python benchmarks/bench_run.py --memory        # + peak memory for 1e3 .. 1e5 trials

Machines are noisy, so every figure is a median over repeats, and the model and the bare loop
are measured alternately in the same process: the ratio compares like with like.

- trials/s per core: `simulate_trials` (the engine path a worker runs: world built from the
  scenario, run to the horizon, results into arrays) on one core;
- events per trial: SimPy events processed, as reported in `trials.parquet` (`n_events`);
- µs per event: the model's time per trial over its events;
- bare SimPy: for each trial, a fresh environment and one process that yields as many
  timeouts as that trial processed events: the floor of any SimPy design;
- with roots: the same trials with `roots=True`, as a run's workers run them (each trial with
  the light tracer that records where each milestone's cause chain begins), alternately;
- parallel efficiency: wall time of a whole run (`sim.run`, Parquet and report included) on
  1 worker, over twice its wall time on 2 workers.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import simpy

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.engine.chunk import simulate_trials  # noqa: E402
from sim.runs.runner import run  # noqa: E402
from sim.scenario import load_scenario  # noqa: E402


def bare_simpy(events_per_trial) -> None:
    for n in events_per_trial:
        env = simpy.Environment()

        def loop(env, n=int(n)):
            timeout = env.timeout
            for _ in range(n):
                yield timeout(1.0)

        env.process(loop(env))
        env.run()


def speed(scenario, trials: int, repeats: int, seed: int) -> dict:
    # Warm up imports and caches; with a posterior, build every particle's scenario first, as a
    # worker does once in a long run.
    posterior = scenario.parameters.posterior
    simulate_trials(scenario, seed, 10**9, 10**9 + (4 * len(posterior.weights) if posterior else 50))
    model, bare, ratios, rooted, events = [], [], [], [], None
    for r in range(repeats):
        start = r * trials  # fresh trials each repeat, same count
        t0 = time.perf_counter()
        result = simulate_trials(scenario, seed, start, start + trials)
        t1 = time.perf_counter()
        bare_simpy(result.n_events)
        t2 = time.perf_counter()
        simulate_trials(scenario, seed, start, start + trials, roots=True)
        t3 = time.perf_counter()
        model.append(t1 - t0)
        bare.append(t2 - t1)
        ratios.append((t1 - t0) / (t2 - t1))
        rooted.append((t3 - t2) / (t1 - t0))
        events = result.n_events if events is None else events
        n_events = int(result.n_events.sum())
    m, b = statistics.median(model), statistics.median(bare)
    return {
        "trials": trials, "repeats": repeats,
        "trials_per_second_per_core": trials / m,
        "events_per_trial": n_events / trials,
        "us_per_event": m / n_events * 1e6,
        "bare_simpy_us_per_event": b / n_events * 1e6,
        "ratio_to_bare_simpy": statistics.median(ratios),
        "roots_cost_ratio": statistics.median(rooted),
        "trials_per_second_per_core_with_roots": trials / (m * statistics.median(rooted)),
    }


def parallel(scenario_path: Path, trials: int, repeats: int, seed: int) -> dict:
    walls = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            for workers in (1, 2):
                out = Path(tmp) / f"w{workers}-{r}"
                t0 = time.perf_counter()
                run(scenario_path, trials=trials, seed=seed, workers=workers, out=out, progress=False)
                walls[workers].append(time.perf_counter() - t0)
    one, two = statistics.median(walls[1]), statistics.median(walls[2])
    return {"trials": trials, "repeats": repeats, "wall_1_worker_s": one, "wall_2_workers_s": two,
            "efficiency_2_workers": one / (2 * two)}


MEMORY_PROBE = """
import resource, sys, tempfile
sys.path.insert(0, {root!r})
import sim
with tempfile.TemporaryDirectory() as tmp:
    sim.run({scenario!r}, trials={trials}, seed=1, workers=2, out=tmp + "/run", progress=False)
me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(me, workers)
"""


def memory(scenario_path: Path, sizes: list[int]) -> list[dict]:
    rows = []
    for n in sizes:
        code = MEMORY_PROBE.format(root=str(ROOT), scenario=str(scenario_path), trials=n)
        t0 = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        me, workers = (int(x) for x in out.stdout.split())
        rows.append({"trials": n, "peak_rss_main_mb": me / 1024, "peak_rss_worker_mb": workers / 1024,
                     "wall_s": time.perf_counter() - t0})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    parser.add_argument("--trials", type=int, default=1000, help="trials per speed repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", action="store_true", help="measure efficiency at 2 workers")
    parser.add_argument("--parallel-trials", type=int, default=10_000)
    parser.add_argument("--memory", action="store_true", help="measure peak memory for growing runs")
    parser.add_argument("--memory-sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    scenario = load_scenario(args.scenario)
    horizon = scenario.scenario.horizon_days
    results = {"scenario": scenario.scenario.name, "horizon_days": horizon, "python": platform.python_version(),
               "machine": platform.machine(), "speed": speed(scenario, args.trials, args.repeats, args.seed)}
    s = results["speed"]
    print(f"scenario {scenario.scenario.name}, {horizon:g} days, {args.trials} trials x {args.repeats} repeats (medians)")
    print(f"  trials/s per core        {s['trials_per_second_per_core']:10.0f}   (target >= 300)")
    print(f"  SimPy events per trial   {s['events_per_trial']:10.0f}")
    print(f"  us per event, model      {s['us_per_event']:10.2f}")
    print(f"  us per event, bare SimPy {s['bare_simpy_us_per_event']:10.2f}")
    print(f"  ratio model / bare       {s['ratio_to_bare_simpy']:10.2f}   (target <= 4)")
    print(f"  trials/s, with roots     {s['trials_per_second_per_core_with_roots']:10.0f}   (a run's workers)")
    print(f"  ratio with roots / not   {s['roots_cost_ratio']:10.2f}")
    if args.parallel:
        p = results["parallel"] = parallel(args.scenario, args.parallel_trials, 3, args.seed)
        print(f"parallel: {p['trials']} trials, whole run, median of {p['repeats']}")
        print(f"  1 worker {p['wall_1_worker_s']:.1f} s, 2 workers {p['wall_2_workers_s']:.1f} s, "
              f"efficiency {p['efficiency_2_workers']:.0%}   (target >= 85%)")
    if args.memory:
        rows = results["memory"] = memory(args.scenario, args.memory_sizes)
        print("memory: peak resident set, main process / largest worker")
        for row in rows:
            print(f"  {row['trials']:>9,} trials  {row['peak_rss_main_mb']:7.0f} MB / {row['peak_rss_worker_mb']:5.0f} MB"
                  f"   ({row['wall_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
