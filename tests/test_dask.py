"""Runs and sweeps on a real Dask cluster: a scheduler and two worker processes on 127.0.0.1,
started here with the same `dask scheduler` / `dask worker` commands the README gives, give the
same bytes as local processes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from tests.conftest import ROOT, SCENARIOS
from tests.test_sweeps import TINY_PARAMETERS, write_spec

DASK = str(Path(sys.executable).parent / "dask")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scratch = tmp_path_factory.mktemp("dask")
    logs = open(scratch / "cluster.log", "w")  # noqa: SIM115 - closed at teardown
    procs = [subprocess.Popen([DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT)]
    for _ in range(2):
        procs.append(subprocess.Popen(
            [DASK, "worker", address, "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
             "--local-directory", str(scratch)], cwd=ROOT, stdout=logs, stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout=5) as client:
                    client.wait_for_workers(2, timeout=60)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        yield address
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        logs.close()


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
