"""Benchmark of memory (DESIGN §6: "memory stays bounded whatever the trial count"): the peak
memory of the real command line as runs and sweeps grow, which should stay flat.

    python benchmarks/bench_memory.py                  # runs of 1e4, 1e5, 1e6 trials; sweeps of 1e3, 1e4, 1e5 points
    python benchmarks/bench_memory.py --quick          # runs of 1e3, 1e4 trials; sweeps of 1e3, 1e4 points
    python benchmarks/bench_memory.py --sizes 10000 --sweep-points 1000 10000

Each job is `escsim run scenarios/baseline.toml --trials N --workers 2 --out TMP` or
`escsim sweep SPEC --workers 2 --out TMP`, a subprocess started exactly as a user would, where
SPEC (written to a temporary folder) is a Latin hypercube over four parameters of the baseline
with `--sweep-points` points and `--trials-per-point` trials each (default 1: the most points for
the time, which is what strains the sweep's bookkeeping). The full sizes took about two hours
on two cores shared with other jobs (the 10^6-trial run an hour of it); run them under nohup.

How memory is measured (Linux, /proc; psutil, installed with the `distributed` extra, lists
the process tree):

- peak RSS of each process: its kernel high-water mark (`VmHWM` in /proc/PID/status), read
  every `--interval` seconds while it lives. The mark is exact, so spikes between two reads are
  not missed; only a rise in the last interval of a process's life could be. For the main
  process that gap is closed at its exit by `wait4`, whose `ru_maxrss` is the largest peak of
  the main process and its (reaped) workers: when it exceeds every worker's mark, it is the
  main process's own.
- peak total: the largest sum, at one reading, of the tree's proportional set sizes (PSS:
  pages shared between the forked workers and the main process counted once, split between
  them): what the whole job takes from the machine. Only this figure is sampled, so a spike
  shorter than the interval can escape it.

Wall times are shown for scale only (the machine is shared); no figure depends on them. The
ratio of the main process's peak at the largest size to that at the smallest says whether
memory is flat (1.0) or grows with the job.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import psutil
except ImportError:  # pragma: no cover - a message, not a traceback
    sys.exit("bench_memory.py needs psutil (pip install psutil, or the project's `distributed` extra)")

ROOT = Path(__file__).resolve().parent.parent
ESCSIM = str(Path(sys.executable).parent / "escsim")

SWEEP_SPEC = """\
[sweep]
name = "memory_lhs"
description = "Latin hypercube over four baseline parameters, for bench_memory.py."
base = {base!r}
design = "lhs"
samples = {samples}
trials_per_point = {trials_per_point}
seed = 20240604
outputs = ["p_israel_strikes_in_iraq", "p_regional_war", "mean_attacks_on_israel"]

[parameters.israel_base_rate]
path = "actors.iri.attacks.israel.rate_per_day"
low = 0.01
high = 0.1
scale = "log"

[parameters.drone_p_hit]
path = "weapons.drone.p_hit"
low = 0.05
high = 0.25

[parameters.israel_iraq_threshold]
path = "actors.israel.rules.strike_in_iraq.threshold"
low = 40.0
high = 160.0

[parameters.us_restrains_israel]
path = "actors.israel.rules.strike_in_iraq.ally_restraint.us"
low = 0.2
high = 0.9
"""


def _status_kb(pid: int, field: str) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return None


def measure(command: list[str], log: Path, interval: float) -> dict:
    """Run `command` and return its wall time and peak memory (see the module docstring), in MB."""
    hwm: dict[int, int] = {}  # pid -> largest VmHWM seen (kB)
    total_kb = 0
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "CI": "1"})
    main = psutil.Process(proc.pid)
    while True:
        # Reap here, not through Popen, to get the child's resource usage.
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        try:
            tree = [main, *main.children(recursive=True)]
        except psutil.NoSuchProcess:
            tree = []
        total = 0
        for p in tree:
            mark = _status_kb(p.pid, "VmHWM")
            if mark is not None:
                hwm[p.pid] = max(hwm.get(p.pid, 0), mark)
            try:
                total += p.memory_full_info().pss // 1024
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                pass
        total_kb = max(total_kb, total)
        time.sleep(interval)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited with {proc.returncode}; see {log}:\n"
                         + log.read_text()[-2000:])
    workers = [kb for p, kb in hwm.items() if p != proc.pid]
    worker_kb = max(workers, default=0)
    main_kb = hwm.get(proc.pid, 0)
    if usage.ru_maxrss > worker_kb:  # ru_maxrss (kB on Linux) = max(main, reaped workers)
        main_kb = max(main_kb, usage.ru_maxrss)
    return {"wall_s": wall, "peak_rss_main_mb": main_kb / 1024, "peak_rss_worker_mb": worker_kb / 1024,
            "peak_total_pss_mb": total_kb / 1024, "processes": len(hwm)}


def run_job(trials: int, workdir: Path, workers: int, interval: float) -> dict:
    out = workdir / f"run-{trials}"
    command = [ESCSIM, "run", str(ROOT / "scenarios" / "baseline.toml"), "--trials", str(trials),
               "--workers", str(workers), "--out", str(out)]
    row = {"job": "run", "size": trials, "unit": "trials", **measure(command, workdir / f"run-{trials}.log", interval)}
    row["report_kb"] = (out / "report.html").stat().st_size / 1024
    shutil.rmtree(out)
    return row


def sweep_job(points: int, trials_per_point: int, workdir: Path, workers: int, interval: float) -> dict:
    spec = workdir / f"lhs-{points}.toml"
    spec.write_text(SWEEP_SPEC.format(base=str(ROOT / "scenarios" / "baseline.toml"), samples=points,
                                      trials_per_point=trials_per_point))
    out = workdir / f"sweep-{points}"
    command = [ESCSIM, "sweep", str(spec), "--workers", str(workers), "--out", str(out)]
    row = {"job": "sweep", "size": points, "unit": "points",
           **measure(command, workdir / f"sweep-{points}.log", interval)}
    row["report_kb"] = (out / "report.html").stat().st_size / 1024
    shutil.rmtree(out)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=None,
                        help="trial counts of the runs (default 1e4 1e5 1e6; none: no runs)")
    parser.add_argument("--sweep-points", type=int, nargs="*", default=None,
                        help="design points of the sweeps (default 1e3 1e4 1e5; none: no sweeps)")
    parser.add_argument("--trials-per-point", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="runs of 1e3, 1e4 trials; sweeps of 1e3, 1e4 points")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between readings of /proc")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parser.parse_args()
    sizes = args.sizes if args.sizes is not None else [1_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
    points = (args.sweep_points if args.sweep_points is not None
              else [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000])

    rows = []
    print(f"{'job':<6}{'size':>17}{'wall':>9}{'main':>10}{'worker':>10}{'total':>10}{'report':>10}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        jobs = [("run", n) for n in sizes] + [("sweep", n) for n in points]
        for kind, n in jobs:
            if kind == "run":
                row = run_job(n, Path(tmp), args.workers, args.interval)
            else:
                row = sweep_job(n, args.trials_per_point, Path(tmp), args.workers, args.interval)
            rows.append(row)
            print(f"{row['job']:<6}{row['size']:>10,} {row['unit']:<6}{row['wall_s']:>8.0f}s"
                  f"{row['peak_rss_main_mb']:>7.0f} MB{row['peak_rss_worker_mb']:>7.0f} MB"
                  f"{row['peak_total_pss_mb']:>7.0f} MB{row['report_kb']:>7.0f} kB", flush=True)
    print("main / worker: peak RSS of the main process / of the largest worker; total: peak PSS of the "
          "whole tree; report: size of report.html")
    ratios = {}
    for kind in ("run", "sweep"):
        found = [r for r in rows if r["job"] == kind]
        if len(found) >= 2:
            small, large = min(found, key=lambda r: r["size"]), max(found, key=lambda r: r["size"])
            ratios[kind] = {key: large[key] / small[key] for key in
                            ("peak_rss_main_mb", "peak_rss_worker_mb", "peak_total_pss_mb")}
            r = ratios[kind]
            print(f"{kind}: peak at {large['size']:,} / at {small['size']:,} {large['unit']}: main "
                  f"{r['peak_rss_main_mb']:.2f}, worker {r['peak_rss_worker_mb']:.2f}, total "
                  f"{r['peak_total_pss_mb']:.2f}   (flat = 1.00)")
    if args.json:
        args.json.write_text(json.dumps({"workers": args.workers, "trials_per_point": args.trials_per_point,
                                         "interval_s": args.interval, "jobs": rows, "ratios": ratios},
                                        indent=2) + "\n")


if __name__ == "__main__":
    main()
