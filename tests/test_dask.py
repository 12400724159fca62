"""Runs and sweeps on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1,
started here with the same `dask scheduler` / `dask worker` commands the README gives, give the
same bytes as local processes, also when a worker is lost or the run is killed and resumed."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from tests.conftest import ROOT, SCENARIOS, as_foreground
from tests.test_crash import ARGS, ENV, same_files, wait_for_chunks, whole  # noqa: F401 - whole is a fixture
from tests.test_sweeps import TINY_PARAMETERS, write_spec

DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def dask_cluster(scratch: Path, workers: int = 2, nanny: bool = True):
    """A scheduler and `workers` one-thread worker processes on 127.0.0.1; yields its address and
    the processes (scheduler first)."""
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scratch.mkdir(parents=True, exist_ok=True)
    logs = open(scratch / "cluster.log", "w")  # noqa: SIM115 - closed at teardown
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT)]
    for _ in range(workers):
        procs.append(subprocess.Popen(
            [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
             *([] if nanny else ["--no-nanny"]), "--local-directory", str(scratch)],
            cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(workers, timeout=60)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield address, procs
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with dask_cluster(tmp_path_factory.mktemp("dask")) as (address, _):
        yield address


def test_a_run_on_dask_gives_the_same_bytes_as_local_processes(cluster, tmp_path):
    args = ["run", str(SCENARIOS / "baseline.toml"), "--trials", "300", "--seed", "4"]
    on_dask = CliRunner().invoke(main, [*args, "--scheduler", cluster, "--out", str(tmp_path / "dask")])
    assert on_dask.exit_code == 0, on_dask.output
    local = sim.run(SCENARIOS / "baseline.toml", trials=300, seed=4, workers=2, out=tmp_path / "local", progress=False)
    for name in ("trials.parquet", "monthly.parquet", "summary.csv", "scenario.toml"):
        assert (tmp_path / "dask" / name).read_bytes() == (local.out / name).read_bytes(), name
    manifest = (tmp_path / "dask" / "manifest.json").read_text()
    assert f'"executor": "dask {cluster}"' in manifest and '"workers": 2' in manifest


def test_a_sweep_on_dask_gives_the_same_bytes_as_local_processes(cluster, tmp_path):
    spec = write_spec(tmp_path, "sobol", 8, TINY_PARAMETERS, ["p_retaliation", "mean_hits_on_s"], trials_per_point=30)
    on_dask = CliRunner().invoke(main, ["sweep", str(spec), "--scheduler", cluster, "--out", str(tmp_path / "dask")])
    assert on_dask.exit_code == 0, on_dask.output
    serial = sim.sweep(spec, workers=1, out=tmp_path / "serial", progress=False)
    local = sim.sweep(spec, workers=2, out=tmp_path / "local", progress=False)
    for name in ("points.parquet", "sensitivity.csv"):
        data = (tmp_path / "dask" / name).read_bytes()
        assert data == (serial.out / name).read_bytes() == (local.out / name).read_bytes(), name


def test_an_unreachable_scheduler_is_a_clear_input_error(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(main, ["run", str(SCENARIOS / "baseline.toml"), "--trials", "10", "--scheduler", address,
                                       "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"--scheduler {address}: expected a reachable Dask scheduler" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_an_address_where_something_else_listens_is_refused_not_waited_on(tmp_path):
    """A web server on the port: Dask's client waited on it for ever; the handshake probe says what is there."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        address = f"tcp://127.0.0.1:{port}"
        done = subprocess.run([sys.executable, "-m", "sim", "run", str(SCENARIOS / "baseline.toml"), "--trials", "10",
                               "--scheduler", address, "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
    finally:
        server.kill()
    assert done.returncode == 2, done.stderr
    assert done.stderr == (f"error: --scheduler {address}: expected a Dask scheduler (started with `dask scheduler`), "
                           "found a service that sent nothing within 5 s there\n")
    assert not (tmp_path / "out").exists()


def test_workers_and_scheduler_together_are_refused(tmp_path):
    result = CliRunner().invoke(main, ["run", str(SCENARIOS / "baseline.toml"), "--workers", "2", "--scheduler",
                                       "tcp://127.0.0.1:1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "expected one of them, found both" in result.output


def test_a_calibration_on_dask_gives_the_same_fit_as_local_processes(cluster, tmp_path):
    from tests.test_calibration import write_case

    case = write_case(tmp_path / "case")
    args = ["calibrate", str(case), "--budget", "small", "--seed", "5"]
    on_dask = CliRunner().invoke(main, [*args, "--scheduler", cluster, "--out", str(tmp_path / "dask")])
    assert on_dask.exit_code == 0, on_dask.output
    local = CliRunner().invoke(main, [*args, "--workers", "2", "--out", str(tmp_path / "local")])
    assert local.exit_code == 0, local.output
    for name in ("posterior.parquet", "generations.csv", "predictive_monthly.csv", "scores.csv"):
        assert (tmp_path / "dask" / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name


def test_a_run_losing_a_dask_worker_or_killed_completes_to_the_same_files(whole, tmp_path):  # noqa: F811 - the fixture
    """A worker killed mid-run: the cluster runs its tasks again elsewhere. The run itself killed:
    `--resume` on the cluster completes it. Both give the files of an uninterrupted run."""
    with dask_cluster(tmp_path, workers=2, nanny=False) as (address, procs):
        out = tmp_path / "lost_worker"
        proc = subprocess.Popen([*ARGS, "--scheduler", address, "--out", str(out)], cwd=ROOT, env=ENV,
                                stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
        wait_for_chunks(out, 3, proc)
        procs[1].kill()
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        same_files(out, whole)

        out = tmp_path / "killed"
        proc = subprocess.Popen([*ARGS, "--scheduler", address, "--out", str(out)], cwd=ROOT, env=ENV,
                                stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
        wait_for_chunks(out, 5, proc)
        proc.kill()
        proc.wait(timeout=30)
        done = subprocess.run([*ARGS, "--scheduler", address, "--out", str(out), "--resume"], cwd=ROOT, env=ENV,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        same_files(out, whole)


def test_a_malformed_scheduler_address_fails_at_once_without_a_traceback(tmp_path):
    for address, found in (("127.0.0.1", "found no port"), ("http://127.0.0.1:8786", "found a scheme other than"),
                           ("tcp://127.0.0.1:99999", "found a port out of range")):
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "sim", "run", str(SCENARIOS / "baseline.toml"), "--trials", "10",
                               "--scheduler", address, "--out", str(tmp_path / "out")], cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        elapsed = time.perf_counter() - started
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith(f"error: --scheduler {address}: expected a Dask scheduler address tcp://HOST:PORT")
        assert found in done.stderr and done.stderr.count("\n") == 1, done.stderr  # no "Exception ignored" after it
        assert elapsed < 8, elapsed  # Dask's client took 21 s to give up, then to clean up
        assert not (tmp_path / "out").exists()


def test_a_scheduler_lost_mid_run_is_one_message_and_resume_on_a_new_cluster_completes(whole, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    with dask_cluster(tmp_path / "first", workers=1) as (address, procs):
        proc = subprocess.Popen([*ARGS, "--scheduler", address, "--out", str(out)], cwd=ROOT, env=ENV,
                                stderr=subprocess.PIPE, text=True, preexec_fn=as_foreground)
        wait_for_chunks(out, 2, proc)
        procs[0].kill()  # the scheduler
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err
    resume = ["escsim", "run", str(SCENARIOS / "baseline.toml"), "--trials", "3000", "--seed", "8",
              "--scheduler", address, "--out", str(out), "--resume"]
    assert err == ("error: the Dask cluster was lost (its scheduler stopped or could no longer be reached). The job "
                   "stopped; its completed chunks are kept. Fix the cause and resume it (on a new cluster: with its "
                   f"address) with: {' '.join(resume)}\n"), err  # no Dask logging, no traceback
    assert list((out / ".chunks").glob("chunk-*.npz")) and not (out / "manifest.json").exists()
    with dask_cluster(tmp_path / "second", workers=2) as (new_address, _):
        done = subprocess.run([*ARGS, "--scheduler", new_address, "--out", str(out), "--resume"], cwd=ROOT, env=ENV,
                              capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same_files(out, whole)
