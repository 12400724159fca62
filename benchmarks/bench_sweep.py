"""Benchmark of `escsim sweep` on local processes against a Dask cluster on the same machine
(DESIGN §9): a sweep of about 10^5 trials in all, run alternately on each executor.

    python benchmarks/bench_sweep.py                     # grid spec, 25 points x 4,000 trials, 3 repeats

The Dask cluster is started here as the README says (`dask scheduler`, then `dask worker` with one
thread per worker process), with as many worker processes as the local run has. Both executors
run the same plan and write the same bytes (checked); the figure is the median wall time of
the whole sweep (points, Parquet, indices, report), its trials per second, and the Dask/local
ratio, whose target is at most 1.15.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sim.sweeps.runner import sweep  # noqa: E402
from sim.sweeps.spec import design_size, load_sweep  # noqa: E402

DASK = str(Path(sys.executable).parent / "dask")


def start_cluster(workers: int, scratch: Path) -> tuple[str, list[subprocess.Popen]]:
    from distributed import Client

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": ROOT}
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"], **quiet)]
    for _ in range(workers):
        procs.append(subprocess.Popen([DASK, "worker", address, "--nthreads", "1", "--no-dashboard",
                                       "--local-directory", str(scratch)], **quiet))
    deadline = time.time() + 60
    while True:
        try:
            with Client(address, timeout=5) as client:
                client.wait_for_workers(workers, timeout=60)
            return address, procs
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, default=ROOT / "scenarios" / "sweeps" / "grid_restraint_thresholds.toml")
    parser.add_argument("--trials", type=int, default=100_000, help="trials in all (split evenly over the points)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()

    spec = load_sweep(args.spec)
    points = design_size(spec.spec)
    per_point = max(1, args.trials // points)
    total = points * per_point
    walls: dict[str, list[float]] = {"local": [], "dask": []}
    with tempfile.TemporaryDirectory() as tmp:
        address, procs = start_cluster(args.workers, Path(tmp))
        try:
            for r in range(args.repeats):
                for name, options in (("local", {"workers": args.workers}), ("dask", {"scheduler": address})):
                    t0 = time.perf_counter()
                    sweep(spec, trials_per_point=per_point, out=Path(tmp) / f"{name}-{r}", progress=False, **options)
                    walls[name].append(time.perf_counter() - t0)
                    print(f"  repeat {r + 1} {name:<5} {walls[name][-1]:6.1f} s", flush=True)
            same = all((Path(tmp) / "local-0" / f).read_bytes() == (Path(tmp) / "dask-0" / f).read_bytes()
                       for f in ("points.parquet", "sensitivity.csv"))
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=30)
    local, dask = statistics.median(walls["local"]), statistics.median(walls["dask"])
    results = {"spec": spec.name, "points": points, "trials_per_point": per_point, "trials": total,
               "workers": args.workers, "repeats": args.repeats, "wall_local_s": local, "wall_dask_s": dask,
               "trials_per_s_local": total / local, "trials_per_s_dask": total / dask,
               "dask_over_local": dask / local, "identical_files": same}
    print(f"sweep {spec.name}: {points} points x {per_point:,} trials = {total:,} trials, {args.workers} workers, "
          f"median of {args.repeats}")
    print(f"  local processes {local:7.1f} s   {total / local:7.0f} trials/s")
    print(f"  dask            {dask:7.1f} s   {total / dask:7.0f} trials/s")
    print(f"  dask / local    {dask / local:7.3f}     (target <= 1.15)   identical files: {same}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
