"""A command that has done its work exits with its own code: no native thread (Arrow's reading
pool, above all) is left alive at interpreter exit, where its teardown aborts the process
("terminate called without an active exception", exit code 134) in a few runs in a hundred."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from tests.conftest import ROOT, SCENARIOS

UNKNOWN_WEAPON = """extends = "{base}"
[scenario]
name = "unknown_weapon"
[actors.iri.attacks.us]
weapons = {{ drone = 0.6, rockt = 0.4 }}
"""
SHARES_OFF = """extends = "{base}"
[scenario]
name = "shares_off"
[actors.iri.attacks.us]
weapons = {{ drone = 0.5, rocket = 0.4 }}
"""
RUNS = 48  # each of the two files 24 times, two at a time


def test_loading_a_calibrated_scenario_leaves_no_reading_threads_behind():
    """Deterministic: the threads a process has before and after reading the baseline's posterior
    (Arrow's own allocator thread and numpy's are started first, by importing them)."""
    started = threads_left_by("from sim.scenario import load_scenario\n"
                              f"load_scenario({str(SCENARIOS / 'baseline.toml')!r})\n")
    assert started == 0, f"{started} threads started by loading the scenario are still alive"


def threads_left_by(code: str, setup: str = "") -> int:
    """How many more threads a fresh process has after running `code` than before (the libraries that
    start threads of their own on import, Arrow's allocator and numpy's, are imported first)."""
    script = ("import os, numpy, pyarrow.parquet, pandas\n" + setup +
              "def threads(): return len(os.listdir(f'/proc/{os.getpid()}/task'))\n"
              "before = threads()\n" + code + "print(threads() - before)\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_validate_of_a_bad_calibrated_scenario_always_exits_2(tmp_path):
    files = []
    for name, text in (("unknown_weapon", UNKNOWN_WEAPON), ("shares_off", SHARES_OFF)):
        path = tmp_path / f"{name}.toml"
        path.write_text(text.format(base=(SCENARIOS / "baseline.toml").as_posix()))
        files.append(path)

    def validate(k: int) -> tuple[int, str]:
        done = subprocess.run([sys.executable, "-m", "sim", "validate", str(files[k % 2])], cwd=ROOT,
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stderr

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(validate, range(RUNS)))
    for code, err in results:
        assert code == 2 and "terminate called" not in err, (code, err)
        assert err.count("\n") == 1 and err.startswith("error: ") and "expected" in err, err


def test_reading_results_back_leaves_no_reading_threads_behind(tmp_path):
    """The same for every reader of a finished folder: a run's tables in the API, a fit's posterior, and
    the comparison of two run folders (its report reads their trials and monthly counts)."""
    import sim

    for name in ("a", "b"):
        sim.run(SCENARIOS / "baseline.toml", trials=30, seed=3, workers=1, out=tmp_path / name, progress=False)
    started = threads_left_by(
        f"run = RunResult(Path({str(tmp_path / 'a')!r}), None, {{}})\n"
        "run.trials, run.monthly\n"
        f"sim.compare([{str(tmp_path / 'a')!r}, {str(tmp_path / 'b')!r}], out={str(tmp_path / 'c')!r}, progress=False)\n",
        setup="from pathlib import Path\nimport sim\nfrom sim.runs.runner import RunResult\n")
    assert started == 0, f"{started} threads started by reading results are still alive"
