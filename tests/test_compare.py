"""`escsim compare`: paired comparisons of scenarios run with common random numbers."""

from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from tests.conftest import ROOT

TINY = ROOT / "tests" / "data" / "tiny.toml"


def variant(folder, name: str, body: str):
    path = folder / f"{name}.toml"
    path.write_text(f'extends = "{TINY}"\n\n[scenario]\nname = "{name}"\n\n{body}\n')
    return path


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare")
    b = variant(folder, "tiny_b", "[actors.m.attacks.s]\nrate_per_day = 0.55\n\n[actors.s.rules.retaliate]\nthreshold = 12.0")
    out = folder / "out"
    result = CliRunner().invoke(main, ["compare", str(TINY), str(b), "--trials", "600", "--seed", "2", "--workers", "1",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output, b


def test_compare_writes_a_paired_table(pair):
    out, output, _ = pair
    table = pd.read_csv(out / "comparison.csv")
    assert list(table.columns) == ["a", "b", "metric", "estimate_a", "estimate_b", "difference", "lo", "hi", "interval",
                                   "test", "statistic", "p_value", "unpaired_lo", "unpaired_hi", "variance_reduction",
                                   "only_in"]
    assert set(table.a) == {"tiny"} and set(table.b) == {"tiny_b"}
    metrics = set(table.metric)
    assert {"p_retaliation", "p_first_hit", "rmst_retaliation", "mean_attacks_on_s", "q95_attacks_on_s",
            "mean_max_rung"} <= metrics
    row = table.set_index("metric").loc["p_retaliation"]
    assert row.lo <= row.difference <= row.hi and row.test.startswith("McNemar")
    assert row.difference == pytest.approx(row.estimate_b - row.estimate_a, abs=1e-5)
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["tiny", "tiny_b"]
    assert "tiny_b − tiny" in output and "p_retaliation" in output


def test_pairing_narrows_the_intervals_of_scenarios_that_differ_slightly(pair):
    out, _, _ = pair
    table = pd.read_csv(out / "comparison.csv").set_index("metric")
    for metric in ("p_retaliation_by_30d", "p_first_hit_by_30d", "rmst_retaliation", "mean_attacks_on_s", "mean_hits_on_s"):
        row = table.loc[metric]
        assert (row.hi - row.lo) < (row.unpaired_hi - row.unpaired_lo), metric
        assert row.variance_reduction > 0.3, (metric, row.variance_reduction)
    # A faster attack rate gives more attacks: the paired interval excludes zero.
    assert table.loc["mean_attacks_on_s"].lo > 0


def test_existing_run_folders_compare_like_the_scenarios(pair, tmp_path):
    out, _, b = pair
    sim.compare([out / "runs" / "tiny", out / "runs" / "tiny_b"], out=tmp_path / "again")
    assert (tmp_path / "again" / "comparison.csv").read_bytes() == (out / "comparison.csv").read_bytes()


def test_runs_that_cannot_be_paired_are_refused(pair, tmp_path):
    out, _, b = pair
    other = sim.run(b, trials=600, seed=3, workers=1, out=tmp_path / "seed3", progress=False)
    result = CliRunner().invoke(main, ["compare", str(out / "runs" / "tiny"), str(other.out), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2, result.output
    assert "expected runs made with the same seed and trial count" in result.output and "seed 3" in result.output
    assert not (tmp_path / "x").exists() and "Traceback" not in result.output
    fewer = sim.run(b, trials=300, seed=2, workers=1, out=tmp_path / "fewer", progress=False)
    result = CliRunner().invoke(main, ["compare", str(out / "runs" / "tiny"), str(fewer.out), "--out", str(tmp_path / "y")])
    assert result.exit_code == 2 and "300 trials" in result.output
    result = CliRunner().invoke(main, ["compare", str(out / "runs" / "tiny"), str(TINY), "--seed", "9", "--out", str(tmp_path / "z")])
    assert result.exit_code == 2 and "expected a run with seed 9" in result.output


def test_compare_needs_two_scenarios(tmp_path):
    result = CliRunner().invoke(main, ["compare", str(TINY), "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "expected at least two" in result.output


def test_more_trials_than_a_comparison_can_hold_are_refused_before_running(tmp_path):
    from sim.comparison.runner import MAX_COMPARE_TRIALS

    result = CliRunner().invoke(main, ["compare", str(TINY), str(TINY), "--trials", str(MAX_COMPARE_TRIALS + 1),
                                       "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and f"expected at most {MAX_COMPARE_TRIALS:,} trials to compare" in result.output
    assert not (tmp_path / "x").exists()
