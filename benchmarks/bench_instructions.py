"""The model's cost per event against a bare SimPy loop, in CPU instructions: a figure that does
not move with the machine's load, to tell whether a change made the model cheaper.

    python benchmarks/bench_instructions.py [--trials 100] [--roots]   # needs valgrind; about 2 minutes (3 with --roots)

Wall-clock ratios (`bench_run.py`) move by several per cent between runs on a shared machine,
more than most changes to the event loop gain. Instruction counts are the same on every run (the
interpreter's hashing is fixed with PYTHONHASHSEED=0). They are not time: the model's
instructions run slower than the bare loop's (more branches and data per event), so the time
ratio is higher than this one.

Each side runs in its own Python process under `valgrind --tool=callgrind`, which counts only
inside the one call to `operator.call` (nothing else in the project calls it):

- model: `simulate_trials` (what a worker runs) on trials 0..N-1 of the scenario, after one
  untimed pass over the same trials so that every posterior particle's scenario is built;
- roots (with `--roots`): the same trials with `roots=True`, as a run's workers run them;
- bare: for each of those trials, a fresh environment and one process that yields as many
  timeouts as the trial processed events (as in `bench_run.py`).
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def child(side: str, scenario_path: Path, trials: int, seed: int, events_file: Path) -> None:
    sys.path.insert(0, str(ROOT))
    if side in ("model", "roots"):
        from sim.engine.chunk import simulate_trials
        from sim.scenario import load_scenario

        scenario = load_scenario(scenario_path)
        roots = side == "roots"
        simulate_trials(scenario, seed, 0, trials, roots=roots)
        result = operator.call(simulate_trials, scenario, seed, 0, trials, roots=roots)
        if not roots:
            events_file.write_text(json.dumps([int(n) for n in result.n_events]))
    else:
        from bench_run import bare_simpy

        events = json.loads(events_file.read_text())
        bare_simpy(events[:2])
        operator.call(bare_simpy, events)


def counted(side: str, args: argparse.Namespace, events_file: Path) -> int:
    command = [
        "valgrind", "--tool=callgrind", "--collect-atstart=no", "--toggle-collect=_operator_call",
        f"--callgrind-out-file={events_file.parent / (side + '.callgrind')}",
        sys.executable, __file__, "--child", side, "--scenario", str(args.scenario), "--trials", str(args.trials),
        "--seed", str(args.seed), "--events-file", str(events_file),
    ]
    out = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})
    found = re.search(r"Collected : (\d+)", out.stderr)
    if out.returncode != 0 or found is None:
        sys.exit(f"valgrind failed for the {side} side:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", type=Path, default=ROOT / "scenarios" / "baseline.toml")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--roots", action="store_true", help="also count the trials as a run's workers run them")
    parser.add_argument("--child", choices=["model", "roots", "bare"], help=argparse.SUPPRESS)
    parser.add_argument("--events-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(Path(__file__).parent))
        child(args.child, args.scenario, args.trials, args.seed, args.events_file)
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (Debian: apt install valgrind)")
    with tempfile.TemporaryDirectory() as tmp:
        events_file = Path(tmp) / "events.json"
        model = counted("model", args, events_file)
        bare = counted("bare", args, events_file)
        roots = counted("roots", args, events_file) if args.roots else None
        n_events = sum(json.loads(events_file.read_text()))
    print(f"scenario {args.scenario.stem}, trials 0..{args.trials - 1}, {n_events / args.trials:.0f} SimPy events per trial")
    print(f"  instructions per trial, model   {model / args.trials / 1e6:8.2f} M")
    print(f"  instructions per event, model   {model / n_events:8.0f}")
    print(f"  instructions per event, bare    {bare / n_events:8.0f}")
    print(f"  ratio model / bare              {model / bare:8.2f}")
    if roots is not None:
        print(f"  instructions per trial, roots   {roots / args.trials / 1e6:8.2f} M   (a run's workers: each trial's roots recorded)")
        print(f"  ratio roots / model             {roots / model:8.2f}")


if __name__ == "__main__":
    main()
