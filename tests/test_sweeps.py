"""`escsim sweep`: designs, indices against known answers, common random numbers, the folder,
determinism, resume and bad specs."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tomli_w
from click.testing import CliRunner
from scipy import stats

import sim
from sim.cli import main
from sim.sweeps.designs import build_design
from sim.sweeps.indices import analyze, main_effects, prcc
from sim.sweeps.spec import SweepParameter
from tests.conftest import ROOT, as_foreground

TINY = ROOT / "tests" / "data" / "tiny.toml"
SWEEPS = ROOT / "scenarios" / "sweeps"

# The Ishigami function (a = 7, b = 0.1) on [-π, π]^3 and its known indices (Sobol' & Levitan 1999).
ISHIGAMI_S1 = {"x1": 0.3139, "x2": 0.4424, "x3": 0.0}
ISHIGAMI_ST = {"x1": 0.5576, "x2": 0.4424, "x3": 0.2437}


def ishigami(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + 7.0 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_parameters() -> dict[str, SweepParameter]:
    # x4 is never read by the function.
    return {f"x{i}": SweepParameter(path=f"x{i}", low=-math.pi, high=math.pi) for i in (1, 2, 3, 4)}


@pytest.fixture(scope="module")
def ishigami_indices():
    design = build_design("sobol", ishigami_parameters(), 2**13, seed=7)
    return analyze(design, {"y": ishigami(design.values)}, seed=7).set_index(["parameter", "index"])


@pytest.mark.parametrize("index, known", [("S1", ISHIGAMI_S1), ("ST", ISHIGAMI_ST)])
def test_sobol_recovers_the_ishigami_indices(ishigami_indices, index, known):
    for name, value in known.items():
        row = ishigami_indices.loc[(name, index)]
        # SALib's interval is 1.96 bootstrap standard errors: allow three standard errors.
        se = (row.hi - row.lo) / 2 / 1.96
        assert abs(row.estimate - value) <= 3 * se + 1e-9, (name, index, row.estimate, value, se)
        assert se < 0.03  # the design is large enough for the check to mean something


def test_sobol_finds_the_ishigami_interaction_and_ignores_the_unread_input(ishigami_indices):
    s13 = ishigami_indices.loc[("x1:x3", "S2")]
    assert s13.lo <= ISHIGAMI_ST["x1"] - ISHIGAMI_S1["x1"] <= s13.hi
    for index in ("S1", "ST"):
        row = ishigami_indices.loc[("x4", index)]
        assert row.lo <= 0.0 <= row.hi and abs(row.estimate) < 1e-9


def test_salib_agrees_with_scipys_sobol_indices():
    rng = np.random.default_rng(3)
    dists = [stats.uniform(loc=-math.pi, scale=2 * math.pi)] * 3
    ref = stats.sobol_indices(func=lambda x: ishigami(x.T), n=2**13, dists=dists, rng=rng)
    design = build_design("sobol", {k: v for k, v in ishigami_parameters().items() if k != "x4"}, 2**13, seed=3,
                          second_order=False)
    ours = analyze(design, {"y": ishigami(design.values)}, seed=3, second_order=False).set_index(["parameter", "index"])
    for j, name in enumerate(("x1", "x2", "x3")):
        assert abs(ours.loc[(name, "S1")].estimate - ref.first_order[j]) < 0.03
        assert abs(ours.loc[(name, "ST")].estimate - ref.total_order[j]) < 0.03


def test_morris_ranks_the_ishigami_inputs():
    design = build_design("morris", ishigami_parameters(), 200, seed=5, levels=4)
    si = analyze(design, {"y": ishigami(design.values)}, seed=5, levels=4).set_index(["parameter", "index"])
    star = {p: si.loc[(p, "mu_star")].estimate for p in ("x1", "x2", "x3", "x4")}
    assert star["x4"] == 0.0 and si.loc[("x4", "sigma")].estimate == 0.0
    assert min(star["x1"], star["x2"], star["x3"]) > 0.5
    # x3 acts only through its interaction with x1: its effects change sign, so σ > μ*.
    assert si.loc[("x3", "sigma")].estimate > star["x3"]


def test_prcc_of_a_known_monotone_relation():
    rng = np.random.default_rng(1)
    x = rng.uniform(size=(400, 3))
    y = np.exp(3 * x[:, 0]) - 2 * x[:, 1] + 0.01 * rng.standard_normal(400)
    est, lo, hi = prcc(x, y)
    assert est[0] > 0.95 and est[1] < -0.7 and lo[2] <= 0.0 <= hi[2]


def test_grid_main_effects_of_an_additive_function():
    design = build_design("grid", {"a": SweepParameter(path="a", low=0, high=1), "b": SweepParameter(path="b", low=0, high=1)},
                          5, seed=0)
    shares = main_effects(design.unit, 3 * design.values[:, 0] + design.values[:, 1])
    assert shares == pytest.approx([0.9, 0.1])


def test_grid_main_effect_intervals_cover_the_truth_under_monte_carlo_noise():
    params = {"a": SweepParameter(path="a", low=0, high=1), "b": SweepParameter(path="b", low=0, high=1)}
    design = build_design("grid", params, 5, seed=0)
    truth = 3 * design.values[:, 0] + design.values[:, 1] + design.values[:, 0] * design.values[:, 1]
    exact = main_effects(design.unit, truth)
    rng = np.random.default_rng(11)
    se, reps, covered = 0.15, 60, np.zeros(2)
    for r in range(reps):
        noisy = truth + rng.normal(0, se, truth.size)
        half = np.full(truth.size, 1.96 * se)
        found = analyze(design, {"y": noisy}, {"y": (noisy - half, noisy + half)}, seed=r).set_index("parameter")
        covered += (found["lo"] <= exact) & (exact <= found["hi"])
    # Nominal 95%: with 60 repetitions, coverage below 85% would be 3 binomial SE short.
    assert (covered / reps >= 0.85).all(), covered / reps


def test_designs_have_the_documented_sizes_and_ranges():
    params = {"r": SweepParameter(path="r", low=0.01, high=1.0, scale="log"), "p": SweepParameter(path="p", low=0.2, high=0.4)}
    assert build_design("oat", params, 3, 0).size == 1 + 2 * 3
    assert build_design("grid", params, 4, 0).size == 16
    assert build_design("sobol", params, 8, 0).size == 8 * 6
    assert build_design("morris", params, 5, 0).size == 5 * 3
    lhs = build_design("lhs", params, 50, 0)
    r = lhs.values[:, 0]
    assert r.min() >= 0.01 and r.max() <= 1.0
    # Log scale: a Latin hypercube puts one point in each of 50 equal slices of log r.
    assert sorted(np.floor(50 * np.log(r / 0.01) / np.log(100)).astype(int)) == list(range(50))
    again = build_design("lhs", params, 50, 0)
    assert np.array_equal(lhs.values, again.values)


def write_spec(folder: Path, design: str, samples: int, parameters: dict, outputs: list[str], **extra) -> Path:
    data = {"sweep": {"name": "t", "base": str(TINY), "design": design, "samples": samples,
                      "trials_per_point": extra.pop("trials_per_point", 50), "seed": 3, "outputs": outputs, **extra},
            "parameters": parameters}
    path = folder / "spec.toml"
    path.write_text(tomli_w.dumps(data))
    return path


TINY_PARAMETERS = {
    "rate": {"path": "actors.m.attacks.s.rate_per_day", "low": 0.05, "high": 0.5, "scale": "log"},
    "threshold": {"path": "actors.s.rules.retaliate.threshold", "low": 5.0, "high": 40.0},
    "p_hit": {"path": "weapons.drone.p_hit", "low": 0.05, "high": 0.5},
    "unused": {"path": "weapons.unused.p_hit", "low": 0.0, "high": 1.0},
}


@pytest.fixture(scope="module")
def tiny_sobol(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sobol")
    spec = write_spec(folder, "sobol", 64, TINY_PARAMETERS, ["p_retaliation", "mean_hits_on_s"], trials_per_point=40)
    result = CliRunner().invoke(main, ["sweep", str(spec), "--workers", "1", "--out", str(folder / "out")])
    assert result.exit_code == 0, result.output
    return folder / "out", result.output


def test_a_parameter_the_model_never_reads_gets_no_sobol_index(tiny_sobol):
    out, _ = tiny_sobol
    si = pd.read_csv(out / "sensitivity.csv").set_index(["output", "parameter", "index"])
    for output in ("p_retaliation", "mean_hits_on_s"):
        st = si.loc[(output, "unused", "ST")]
        assert st.lo <= 0.0 <= st.hi and abs(st.estimate) < 0.02
        assert si.loc[(output, "rate", "ST")].lo > 0.05  # the attack rate drives both
    assert si.loc[("mean_hits_on_s", "p_hit", "ST")].lo > 0.05
    assert si.loc[("mean_hits_on_s", "threshold", "ST")].estimate < 0.05  # hits do not depend on Israel's rule


def test_sweep_folder_has_the_documented_files_and_columns(tiny_sobol):
    out, output = tiny_sobol
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.json", "points.parquet", "report.html", "report.md", "parameters.csv", "scenario.toml",
         "sensitivity.csv", "spec.toml"])
    points = pd.read_parquet(out / "points.parquet")
    assert list(points.columns) == ["point", "rate", "threshold", "p_hit", "unused", "output", "estimate", "lo", "hi", "half_width"]
    assert len(points) == 64 * 10 * 2 and points["point"].is_monotonic_increasing
    assert (points["lo"] <= points["estimate"]).all() and (points["estimate"] <= points["hi"]).all()
    sens = pd.read_csv(out / "sensitivity.csv")
    assert list(sens.columns) == ["output", "parameter", "index", "estimate", "lo", "hi", "interval", "note"]
    assert set(sens["index"]) == {"S1", "ST", "S2"}
    assert "p_retaliation: ST" in output and "wrote" in output


def test_common_random_numbers_make_points_differ_only_by_their_parameters(tmp_path):
    rate = {**TINY_PARAMETERS["rate"], "high": 1.0}  # the base scenario's rate is 0.5
    spec = write_spec(tmp_path, "oat", 2, {"unused": TINY_PARAMETERS["unused"], "rate": rate},
                      ["p_retaliation", "mean_attacks_on_s"], trials_per_point=80)
    points = sim.sweep(spec, workers=1, out=tmp_path / "out", progress=False).points
    wide = points.pivot(index="point", columns="output", values="estimate")
    # Points 1 and 2 move only the unread weapon: the same trials give the same estimates as the base.
    assert (wide.loc[1] == wide.loc[0]).all() and (wide.loc[2] == wide.loc[0]).all()
    assert wide.loc[3, "mean_attacks_on_s"] < wide.loc[0, "mean_attacks_on_s"] < wide.loc[4, "mean_attacks_on_s"]
    # A point equals a plain run of the scenario with that value, on the same seed and trials.
    run = sim.run(TINY, trials=80, seed=3, workers=1, out=tmp_path / "run", progress=False).summary.set_index("metric")
    assert wide.loc[0, "mean_attacks_on_s"] == run.loc["mean_attacks_on_s", "estimate"]


def test_one_and_two_workers_give_identical_sweeps(tmp_path):
    spec = write_spec(tmp_path, "lhs", 12, TINY_PARAMETERS, ["p_retaliation", "q95_hits_on_s"])
    one = sim.sweep(spec, workers=1, out=tmp_path / "one", progress=False)
    two = sim.sweep(spec, workers=2, out=tmp_path / "two", progress=False)
    for name in ("points.parquet", "sensitivity.csv", "spec.toml", "scenario.toml"):
        assert (one.out / name).read_bytes() == (two.out / name).read_bytes(), name


def test_report_rebuilds_identically(tiny_sobol):
    out, _ = tiny_sobol
    html = (out / "report.html").read_text()
    assert "<svg" in html and "http://" not in html.replace("http://www.w3.org", "")
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").read_text() == html


def test_saved_spec_reproduces_the_sweep(tiny_sobol, tmp_path):
    out, _ = tiny_sobol
    again = sim.sweep(out / "spec.toml", workers=1, out=tmp_path / "again", progress=False)
    assert (again.out / "points.parquet").read_bytes() == (out / "points.parquet").read_bytes()


def test_interrupted_sweep_resumes_to_the_same_files(tmp_path):
    spec = write_spec(tmp_path, "grid", 6, {k: TINY_PARAMETERS[k] for k in ("rate", "threshold")},
                      ["p_retaliation"], trials_per_point=400)
    args = [sys.executable, "-m", "sim", "sweep", str(spec), "--workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*args, "--out", str(cut)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_foreground)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((cut / ".chunks").glob("points-*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert 3 <= len(list((cut / ".chunks").glob("points-*.npz"))) < 18
    subprocess.run([*args, "--out", str(cut), "--resume"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*args, "--out", str(tmp_path / "whole")], cwd=ROOT, env=env, check=True, capture_output=True)
    for name in ("points.parquet", "sensitivity.csv"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_resume_refuses_a_sweep_with_other_options(tmp_path):
    spec = write_spec(tmp_path, "oat", 2, {"rate": TINY_PARAMETERS["rate"]}, ["p_retaliation"], trials_per_point=10)
    sim.sweep(spec, workers=1, out=tmp_path / "out", progress=False)
    result = CliRunner().invoke(main, ["sweep", str(spec), "--seed", "9", "--out", str(tmp_path / "out"), "--resume"])
    assert result.exit_code == 2 and "another spec, scenario, seed" in result.output


def test_a_trial_that_raises_fails_the_sweep_naming_its_point(tmp_path, monkeypatch):
    import sim.engine.chunk as chunk

    real = chunk.run_trial

    def flaky(blueprint, seed, trial, *streams):
        if blueprint.scenario.actors["s"].rules["retaliate"].threshold > 30 and trial == 4:
            raise ZeroDivisionError("boom")
        return real(blueprint, seed, trial, *streams)

    monkeypatch.setattr(chunk, "run_trial", flaky)
    spec = write_spec(tmp_path, "oat", 2, {"threshold": TINY_PARAMETERS["threshold"]}, ["p_retaliation"], trials_per_point=10)
    result = CliRunner().invoke(main, ["sweep", str(spec), "--workers", "1", "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert "design point 2 failed: trial 4 failed: ZeroDivisionError: boom (at threshold = 40)" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out" / "points.parquet").exists()


BAD_SPECS = [
    ("unknown dotted path", {"parameters": {"rate": {"path": "actors.m.attacks.s.rate_per_week"}}},
     "parameters.rate.path", "expected a key path into scenario tiny: actors.m.attacks.s.rate_per_week: expected a key"),
    ("low above high", {"parameters": {"rate": {"low": 0.5, "high": 0.05}}}, "parameters.rate", "expected low < high"),
    ("low equal to high", {"parameters": {"rate": {"low": 0.5, "high": 0.5}}}, "parameters.rate", "expected low < high"),
    ("log scale from zero", {"parameters": {"rate": {"low": 0.0}}}, "parameters.rate", "expected low > 0 on a log scale"),
    ("sobol size not a power of two", {"sweep": {"samples": 12}}, "sweep.samples", "expected a power of two"),
    ("unknown output metric", {"sweep": {"outputs": ["p_retaliation", "p_war"]}}, "sweep.outputs[1]",
     "expected a summary.csv metric of scenario tiny"),
    ("unknown design", {"sweep": {"design": "fast"}}, "sweep.design", "expected one of"),
    ("unknown key", {"sweep": {"trials": 10}}, "sweep.trials", "expected one of the known keys (name, description, base"),
    ("a value the scenario refuses", {"parameters": {"p_hit": {"high": 1.5}}}, "parameters.p_hit.high",
     "expected a value scenario tiny accepts"),
    ("path to a table", {"parameters": {"rate": {"path": "actors.m.attacks.s", "scale": "linear"}}},
     "parameters.rate.path", "expected a path to a number"),
    ("too many points", {"sweep": {"design": "grid", "samples": 1001}}, "sweep.samples", "expected a design of at most"),
]


@pytest.mark.parametrize("case, edit, where, expected", BAD_SPECS, ids=[c[0] for c in BAD_SPECS])
def test_bad_specs_get_one_clear_message(tmp_path, case, edit, where, expected):
    parameters = {k: dict(v) for k, v in TINY_PARAMETERS.items() if k in ("rate", "p_hit")}
    for name, change in edit.get("parameters", {}).items():
        parameters[name].update(change)
    spec = write_spec(tmp_path, "sobol", 8, parameters, ["p_retaliation"])
    data = __import__("tomllib").loads(spec.read_text())
    data["sweep"].update(edit.get("sweep", {}))
    spec.write_text(tomli_w.dumps(data))
    result = CliRunner().invoke(main, ["sweep", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert f"{spec}: {where}: {expected}" in result.output, result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


def test_bad_command_line_sizes_are_refused(tmp_path):
    spec = write_spec(tmp_path, "sobol", 8, {k: TINY_PARAMETERS[k] for k in ("rate", "p_hit")}, ["p_retaliation"])
    result = CliRunner().invoke(main, ["sweep", str(spec), "--samples", "100", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--samples: expected a power of two" in result.output and "64 or 128" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_sweep_is_valid_and_runs_small(path, tmp_path):
    spec = sim.load_sweep(path)
    small = 4 if spec.design == "sobol" else (2 if spec.design in ("oat", "grid") else None)
    result = sim.sweep(spec, samples=small, trials_per_point=5, workers=1, out=tmp_path / "out", progress=False)
    assert set(result.sensitivity["output"]) == set(spec.outputs)
