"""Nothing lost: runs killed (SIGKILL), terminated (SIGTERM) or losing a worker process finish,
after `--resume` where needed, with the same files as an uninterrupted run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SCENARIOS, as_foreground
from tests.killing import holds_exactly

BASELINE = SCENARIOS / "baseline.toml"
ARGS = [sys.executable, "-m", "sim", "run", str(BASELINE), "--trials", "3000", "--seed", "8"]
FILES = ("trials.parquet", "monthly.parquet", "summary.csv", "scenario.toml")
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="module")
def whole(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("whole") / "run"
    subprocess.run([*ARGS, "--workers", "1", "--out", str(out)], cwd=ROOT, env=ENV, check=True, capture_output=True)
    return out


def start(out: Path, workers: int) -> subprocess.Popen:
    return subprocess.Popen([*ARGS, "--workers", str(workers), "--out", str(out)], cwd=ROOT, env=ENV,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)


def wait_for_chunks(out: Path, n: int, proc: subprocess.Popen, pattern: str = "chunk-*.npz") -> None:
    """Wait until `out` holds `n` checkpoints (of a run by default; "*.npz": any job's)."""
    deadline = time.time() + 120
    while len(list((out / ".chunks").glob(pattern))) < n:
        assert proc.poll() is None, "the job ended before it could be interrupted"
        assert time.time() < deadline
        time.sleep(0.02)


def same_files(a: Path, b: Path) -> None:
    for name in FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


@pytest.mark.parametrize("seed", [1, 2])
def test_a_run_killed_at_a_random_point_resumes_to_the_same_files(whole, tmp_path, seed):
    out = tmp_path / "cut"
    proc = start(out, workers=2)
    wait_for_chunks(out, random.Random(seed).randint(2, 40), proc)
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    workers = [c for c in children(proc.pid) if Path(f"/proc/{c}/cmdline").read_bytes() == cmdline]
    assert workers, "no worker processes found"
    proc.kill()
    proc.wait(timeout=30)
    assert not (out / "manifest.json").exists()
    deadline = time.time() + 10  # the workers die with the command, none left behind
    while (alive := [w for w in workers if is_running(w)]) and time.time() < deadline:
        time.sleep(0.05)
    assert not alive, f"worker processes {alive} outlived the killed command"
    done = subprocess.run([*ARGS, "--out", str(out), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same_files(out, whole)
    holds_exactly(out, "run")  # the killed command's temporaries removed


def test_sigterm_stops_cleanly_and_the_run_resumes(whole, tmp_path):
    out = tmp_path / "cut"
    proc = start(out, workers=2)
    wait_for_chunks(out, 3, proc)
    stopped = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert time.time() - stopped < 10
    assert "terminated" in err and "--resume" in err and "Traceback" not in err
    done = subprocess.run([*ARGS, "--out", str(out), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same_files(out, whole)


def is_running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a dead child its parent has not reaped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def test_a_worker_killed_mid_run_is_replaced_and_its_chunks_rerun(whole, tmp_path):
    out = tmp_path / "run"
    proc = start(out, workers=2)
    wait_for_chunks(out, 3, proc)
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    workers = [c for c in children(proc.pid) if Path(f"/proc/{c}/cmdline").read_bytes() == cmdline]
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    same_files(out, whole)


FIT_FILES = ("posterior.parquet", "generations.csv", "predictive_monthly.csv", "predictive_targets.csv", "scores.csv")


@pytest.fixture(scope="module")
def fit_case(tmp_path_factory) -> tuple[list[str], Path]:
    """The synthetic calibration case's command, and its fit run without interruption."""
    from tests.test_calibration import write_case

    case = write_case(tmp_path_factory.mktemp("case"))
    args = [sys.executable, "-m", "sim", "calibrate", str(case), "--budget", "small", "--seed", "4"]
    whole = tmp_path_factory.mktemp("whole_fit") / "fit"
    subprocess.run([*args, "--workers", "1", "--out", str(whole)], cwd=ROOT, env=ENV, check=True, capture_output=True)
    return args, whole


@pytest.mark.parametrize("seed", [1, 2])
def test_a_fit_killed_at_a_random_point_resumes_to_the_same_files(fit_case, tmp_path, seed):
    args, whole = fit_case
    out = tmp_path / "fit"
    proc = subprocess.Popen([*args, "--workers", "2", "--out", str(out)], cwd=ROOT, env=ENV,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
    wait_for_chunks(out, random.Random(seed).randint(1, 80), proc, "*.npz")  # of 84
    proc.kill()
    proc.wait(timeout=30)
    assert not (out / "fit.toml").exists()
    done = subprocess.run([*args, "--out", str(out), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in FIT_FILES:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name
    holds_exactly(out, "fit")
    # The time recorded is the finishing session's, and the record says so.
    assert "resumed = true" in (out / "fit.toml").read_text() and "resumed = false" in (whole / "fit.toml").read_text()
    assert "in the session that resumed and finished it" in (out / "report.md").read_text()


def test_a_fit_losing_a_worker_or_stopped_by_ctrl_c_completes_to_the_same_files(fit_case, tmp_path):
    args, whole = fit_case
    out = tmp_path / "fit"
    proc = subprocess.Popen([*args, "--workers", "2", "--out", str(out)], cwd=ROOT, env=ENV,
                            stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
    wait_for_chunks(out, 2, proc, "*.npz")
    cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes()
    workers = [c for c in children(proc.pid) if Path(f"/proc/{c}/cmdline").read_bytes() == cmdline]
    assert workers, "no worker processes found"
    os.kill(workers[0], signal.SIGKILL)
    wait_for_chunks(out, 6, proc, "*.npz")
    stopped = time.time()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert time.time() - stopped < 10
    assert f"--resume --out {out}" in err and "Traceback" not in err
    done = subprocess.run([*args, "--out", str(out), "--resume"], cwd=ROOT, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for name in FIT_FILES:
        assert (out / name).read_bytes() == (whole / name).read_bytes(), name


def _large_result(size: int) -> bytes:
    return b"x" * size


def test_a_pool_stopped_while_a_worker_sends_its_result_lets_go():
    """Stopping a job stops its workers' tasks in flight (`LocalPool.shutdown`); a worker stopped
    while it was sending a result leaves half a message in the result pipe, which the pool's
    manager thread would wait to finish for ever (and the interpreter's exit with it). A result
    of 400 MB takes about half a second to send: stops at several points of it."""
    from sim.runs.executors import LocalPool

    hung = []
    for delay in (0.3, 0.45, 0.6, 0.8):
        pool = LocalPool(1)
        future = pool.submit(_large_result, 400_000_000)
        manager = pool._pool._executor_manager_thread
        deadline = time.time() + 30
        while not future.running() and time.time() < deadline:
            time.sleep(0.001)
        time.sleep(delay)
        pool.shutdown(wait=False, cancel_futures=True)
        manager.join(20)
        if manager.is_alive():
            hung.append(delay)
    assert not hung, f"the pool's manager thread hung after stops at {hung} s"
