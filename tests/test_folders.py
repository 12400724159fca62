"""Output folders: every state a kill leaves is resumable to the same files and to exactly the
documented files; folders that cannot be written are refused before any work; a folder another
command works in is locked; checkpoints that vanish are run again and damaged ones refused."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from sim.calibration.fit import calibrate
from sim.cli import main
from sim.comparison.runner import compare
from sim.errors import InputError, WorkError
from sim.runs.folders import CHUNKS, FOLDER_FILES, folder_entries, locked
from sim.runs.runner import run
from sim.runs.tasks import Checkpoints
from sim.sweeps.runner import sweep
from tests.conftest import ROOT
from tests.killing import holds_exactly, killed_at, same_files

TINY = ROOT / "tests" / "data" / "tiny.toml"
TRIALS = 40  # 40 chunks of one trial
RUN_FILES = ("trials.parquet", "monthly.parquet", "summary.csv", "scenario.toml", "milestones.csv", "counts.csv",
             "pathways.csv", "parameters.csv", "roots.csv")
SWEEP_FILES = ("points.parquet", "sensitivity.csv", "spec.toml", "scenario.toml", "parameters.csv")
COMPARE_FILES = ("comparison.csv", "milestones.csv", "ladder.csv", "parameters.csv")
OTHER = ["2:actors.m.attacks.s.rate_per_day=0.55"]  # the second arm of the comparisons


def run_tiny(out: Path, resume: bool = False):
    return run(TINY, trials=TRIALS, seed=5, workers=1, out=out, resume=resume, progress=False)


def write_sweep_spec(folder: Path) -> Path:
    import tomli_w

    spec = folder / "spec.toml"
    spec.write_text(tomli_w.dumps({
        "sweep": {"name": "kill", "base": str(TINY), "design": "oat", "samples": 2, "trials_per_point": 10, "seed": 3,
                  "outputs": ["p_retaliation"]},
        "parameters": {"rate": {"path": "actors.m.attacks.s.rate_per_day", "low": 0.05, "high": 0.5},
                       "p_hit": {"path": "weapons.drone.p_hit", "low": 0.05, "high": 0.5}}}))
    return spec


def sweep_tiny(spec: Path, out: Path, resume: bool = False):
    return sweep(spec, workers=1, out=out, resume=resume, progress=False)


def compare_tiny(out: Path, resume: bool = False):
    return compare([TINY, TINY], trials=20, seed=5, workers=1, out=out, resume=resume, progress=False, overrides=OTHER)


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """Each kind of job run without interruption."""
    folder = tmp_path_factory.mktemp("whole")
    spec = write_sweep_spec(folder)
    run_tiny(folder / "run")
    sweep_tiny(spec, folder / "sweep")
    compare_tiny(folder / "compare")
    return folder, spec


# Steps of a run, in order: inside folder creation, checkpoints, every final write, the cleanup.
RUN_STEPS = [
    "folder created", "write plan.json", "write chunk-000000000000.npz", "write chunk-000000000023.npz",
    "write trials.parquet", "write monthly.parquet", "write summary.csv", "write scenario.toml", "write roots.csv", "write report.html",
    "write manifest.json", "cleanup", "cleanup: plan removed", "cleanup: checkpoint removed#7",
]


def test_a_run_killed_at_every_step_resumes_to_the_same_and_only_the_documented_files(whole, tmp_path):
    folder, _ = whole
    for k, step in enumerate(RUN_STEPS):
        out = tmp_path / f"run{k}"
        killed_at(step, lambda out=out: run_tiny(out))
        run_tiny(out, resume=True)
        same_files(out, folder / "run", RUN_FILES)
        holds_exactly(out, "run")


@pytest.mark.parametrize("step", ["folder created", "write plan.json"])
def test_a_run_killed_before_its_plan_leaves_a_folder_a_new_run_accepts(whole, tmp_path, step):
    out = tmp_path / "run"
    killed_at(step, lambda: run_tiny(out))
    run_tiny(out)  # neither --resume nor an empty folder needed
    same_files(out, whole[0] / "run", RUN_FILES)
    holds_exactly(out, "run")


def test_a_sweep_killed_at_its_steps_resumes_to_the_same_and_only_the_documented_files(whole, tmp_path):
    folder, spec = whole
    for k, step in enumerate(["write plan.json", "write points-000000000000.npz", "write points.parquet",
                              "write sensitivity.csv", "write manifest.json", "cleanup: checkpoint removed"]):
        out = tmp_path / f"sweep{k}"
        killed_at(step, lambda out=out: sweep_tiny(spec, out))
        sweep_tiny(spec, out, resume=True)
        same_files(out, folder / "sweep", SWEEP_FILES)
        holds_exactly(out, "sweep")


def test_a_killed_comparison_resumes_with_its_runs_to_the_same_files(whole, tmp_path):
    folder, _ = whole
    args = ["compare", str(TINY), str(TINY), "--trials", "20", "--seed", "5", "--workers", "1", "--set", OTHER[0]]
    # In the second arm's run (resumed on the command line); in the comparison's own final writes.
    for k, step in enumerate(["write chunk-000000000007.npz#2", "write comparison.csv"]):
        out = tmp_path / f"compare{k}"
        killed_at(step, lambda out=out: compare_tiny(out))
        with pytest.raises(InputError, match="holds an unfinished comparison; add --resume"):
            compare_tiny(out)
        if k == 0:
            result = CliRunner().invoke(main, [*args, "--out", str(out), "--resume"])
            assert result.exit_code == 0, result.output
        else:
            compare_tiny(out, resume=True)
        same_files(out, folder / "compare", COMPARE_FILES)
        holds_exactly(out, "compare")
        for arm in ("tiny", "tiny-2"):
            same_files(out / "runs" / arm, folder / "compare" / "runs" / arm, RUN_FILES)
            holds_exactly(out / "runs" / arm, "run")


def test_a_finished_folder_holds_exactly_its_documented_files(whole):
    folder, _ = whole
    for kind in ("run", "sweep", "compare"):
        holds_exactly(folder / kind, kind)
    assert set(FOLDER_FILES["fit"]) >= {"fit.toml", "posterior.parquet", "report.html"}


# --- completeness ------------------------------------------------------------------------------


def test_checkpoints_vanishing_under_a_resume_are_run_again(whole, tmp_path, monkeypatch):
    out = tmp_path / "run"
    killed_at("write manifest.json", lambda: run_tiny(out))  # every chunk checkpointed
    load = Checkpoints.load

    def vanishing(self, key):  # the first read removes every other checkpoint
        for path in self.folder.glob("chunk-*.npz"):
            if path != self.path(key):
                path.unlink()
        return load(self, key)

    monkeypatch.setattr(Checkpoints, "load", vanishing)
    result = run_tiny(out, resume=True)
    assert len(result.trials) == TRIALS
    same_files(out, whole[0] / "run", RUN_FILES)


def test_sweep_checkpoints_vanishing_under_a_resume_are_run_again(whole, tmp_path, monkeypatch):
    folder, spec = whole
    out = tmp_path / "sweep"
    killed_at("write manifest.json", lambda: sweep_tiny(spec, out))
    load = Checkpoints.load

    def vanishing(self, key):
        for path in self.folder.glob("points-*.npz"):
            if path != self.path(key):
                path.unlink()
        return load(self, key)

    monkeypatch.setattr(Checkpoints, "load", vanishing)
    sweep_tiny(spec, out, resume=True)
    same_files(out, folder / "sweep", SWEEP_FILES)


def test_a_writer_given_fewer_trials_than_planned_writes_nothing(tmp_path):
    from sim.engine.chunk import simulate_trials
    from sim.runs.layout import RunLayout
    from sim.runs.outputs import RunWriter
    from sim.runs.runner import _chunk_arrays
    from sim.scenario import load_scenario

    scenario = load_scenario(TINY)
    writer = RunWriter(tmp_path, scenario, RunLayout.of(scenario), trials=10)
    writer.add(_chunk_arrays(simulate_trials(scenario, 1, 0, 6, roots=True))[0])
    with pytest.raises(WorkError, match="trials.parquet would hold 6 rows where the plan's 10 trials"):
        try:
            writer.finish()
        except BaseException:
            writer.abort()
            raise
    assert list(tmp_path.iterdir()) == []


CORRUPTIONS = {
    "garbage": lambda path: path.write_bytes(b"SECRET-LINE not an archive\n" * 10),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2]),
    "another shape": lambda path: np.savez(path, n_events=np.zeros(3), milestone_days=np.zeros(3), max_rung=np.zeros(3),
                                           totals=np.zeros(3), monthly=np.zeros(3), particle=np.zeros(3), roots=np.zeros(3)),
}


@pytest.mark.parametrize("damage", list(CORRUPTIONS))
def test_a_damaged_checkpoint_is_refused_naming_the_file(tmp_path, damage):
    out = tmp_path / "run"
    killed_at("write chunk-000000000009.npz", lambda: run_tiny(out))
    bad = out / CHUNKS / "chunk-000000000004.npz"
    CORRUPTIONS[damage](bad)
    result = CliRunner().invoke(main, ["run", str(TINY), "--trials", str(TRIALS), "--seed", "5", "--workers", "1",
                                       "--out", str(out), "--resume"])
    assert result.exit_code == 2, result.output
    assert str(bad) in result.output and "delete that file" in result.output and "--resume" in result.output
    assert "Traceback" not in result.output and "SECRET" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]  # nothing half-written left
    bad.unlink()  # as the message says: the chunk runs again
    assert CliRunner().invoke(main, ["run", str(TINY), "--trials", str(TRIALS), "--seed", "5", "--workers", "1",
                                     "--out", str(out), "--resume"]).exit_code == 0
    holds_exactly(out, "run")


# --- folders that cannot be written ------------------------------------------------------------


def _jobs(tmp_path: Path):
    from tests.test_calibration import write_case

    spec = write_sweep_spec(tmp_path)
    targets = write_case(tmp_path / "case")
    return {
        "run": lambda out: run(TINY, trials=5, workers=1, out=out, progress=False),
        "sweep": lambda out: sweep(spec, workers=1, out=out, progress=False),
        "compare": lambda out: compare([TINY, TINY], trials=5, workers=1, out=out, progress=False),
        "calibrate": lambda out: calibrate(targets, workers=1, out=out, progress=False),
    }


def test_unwritable_folders_are_refused_before_any_work(tmp_path):
    jobs = _jobs(tmp_path)
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    cases = {
        a_file / "out": "goes through",  # NotADirectoryError
        a_file: "is a file",
        tmp_path / ("n" * 300) / "out": "at most 255 bytes",  # ENAMETOOLONG
    }
    before = folder_entries(tmp_path)
    for command, job in jobs.items():
        for out, expected in cases.items():
            with pytest.raises(InputError, match=expected) as caught:
                job(out)
            assert str(out)[:40] in str(caught.value) and "--out" in str(caught.value), command
    assert folder_entries(tmp_path) == before


def _make_unwritable(folder: Path, undo: bool = False) -> None:
    """No permission to write in `folder`; for root, which writes anywhere, the immutable flag."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o755 if undo else 0o555)
    elif subprocess.run(["chattr", "-i" if undo else "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root without chattr +i cannot make a folder it cannot write in")


def test_a_read_only_folder_is_refused_with_one_message(tmp_path):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    _make_unwritable(read_only)
    try:
        result = CliRunner().invoke(main, ["run", str(TINY), "--trials", "5", "--workers", "1",
                                           "--out", str(read_only / "out")])
        assert result.exit_code == 2, result.output
        assert result.output.strip() == (f"error: --out {read_only / 'out'}: expected a folder escsim can write in, "
                                         f"found {read_only} not writable (permission denied)")
    finally:
        _make_unwritable(read_only, undo=True)


def test_os_errors_writing_the_folder_are_input_errors(tmp_path, monkeypatch):
    from sim.runs import folders

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out" / CHUNKS))

    monkeypatch.setattr(folders, "write_json", refuse)
    with pytest.raises(InputError, match="on a read-only file system"):
        run(TINY, trials=5, workers=1, out=tmp_path / "out", progress=False)


# --- compare: pairing before running -----------------------------------------------------------


@pytest.mark.parametrize("setting, expected", [("2:scenario.horizon_days=100.0", "scenario.horizon_days"),
                                               ("2:scenario.start_date=2024-02-01", "scenario.start_date")])
def test_compare_refuses_unpaired_scenarios_before_running_and_leaves_nothing(tmp_path, setting, expected):
    out = tmp_path / "out"
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["compare", str(TINY), str(TINY), "--trials", "2000", "--workers", "1",
                                       "--set", setting, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not out.exists()
    assert time.perf_counter() - started < 5  # nothing ran


# --- the lock ----------------------------------------------------------------------------------


def test_a_second_command_on_a_folder_in_use_is_refused(tmp_path):
    out = tmp_path / "run"
    with locked(out, "run"):
        result = CliRunner().invoke(main, ["run", str(TINY), "--trials", "5", "--workers", "1", "--out", str(out),
                                           "--resume"])
        assert result.exit_code == 2, result.output
        assert "found one still running there" in result.output and str(out) in result.output
        assert folder_entries(out) == set()  # refused before it wrote anything
    run(TINY, trials=5, workers=1, out=out, progress=False)
    holds_exactly(out, "run")  # and no lock file


def test_forked_workers_do_not_keep_the_lock(tmp_path):
    out = tmp_path / "run"
    with locked(out, "run"):
        ready, tell = os.pipe()
        child = os.fork()
        if child == 0:  # a worker, as a local pool forks them
            os.write(tell, b"x")
            time.sleep(3)
            os._exit(0)
        os.read(ready, 1)  # the child is running
    try:
        with locked(out, "run"):  # the parent let go: free, though the child still lives
            pass
    finally:
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)


def test_resume_of_a_finished_folder_with_leftover_checkpoints_removes_them(whole, tmp_path):
    out = tmp_path / "run"
    killed_at("cleanup: plan removed", lambda: run_tiny(out))
    assert (out / CHUNKS).is_dir() and (out / "manifest.json").is_file()
    result = CliRunner().invoke(main, ["run", str(TINY), "--trials", str(TRIALS), "--seed", "5", "--out", str(out)])
    assert result.exit_code == 2 and "already holds a finished run" in result.output
    holds_exactly(out, "run")
    assert pd.read_parquet(out / "trials.parquet").shape[0] == TRIALS


def test_a_fit_refuses_a_damaged_checkpoint_and_reruns_a_vanished_one(tmp_path):
    from sim.calibration.fit import Simulator
    from sim.calibration.objective import Objective
    from sim.calibration.targets import load_targets
    from sim.runs.executors import InlineExecutor
    from tests.test_calibration import write_case

    targets = load_targets(write_case(tmp_path / "case"))
    simulator = Simulator(targets, Objective.build(targets), InlineExecutor(), 4, tmp_path / CHUNKS)
    thetas, keys = np.array([[1.0, 0.3], [0.8, 0.2]]), np.arange(2)
    distances = simulator.distances(7, False, "full")(thetas, keys)
    saved = Checkpoints(tmp_path / CHUNKS, "full").path(0)
    saved.write_bytes(b"SECRET not an archive")
    with pytest.raises(InputError, match="found a truncated or damaged file; delete that file") as caught:
        simulator.distances(7, False, "full")(thetas, keys)
    assert str(saved) in str(caught.value) and "SECRET" not in str(caught.value)
    saved.unlink()  # gone: simulated again, to the same distances
    assert np.array_equal(simulator.distances(7, False, "full")(thetas, keys), distances)
