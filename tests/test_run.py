"""`escsim run` end to end: the output folder, determinism, resume, failures, the API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.errors import InputError, TrialError
from sim.scenario import config_hash, load_scenario
from tests.conftest import ROOT, SCENARIOS, as_foreground

BASELINE = SCENARIOS / "baseline.toml"
FILES = ["scenario.toml", "manifest.json", "trials.parquet", "monthly.parquet", "summary.csv", "report.html", "report.md",
         "milestones.csv", "counts.csv", "pathways.csv", "parameters.csv", "roots.csv"]


@pytest.fixture(scope="module")
def baseline_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "baseline"
    result = CliRunner().invoke(main, ["run", str(BASELINE), "--trials", "120", "--seed", "5", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def test_run_writes_exactly_the_documented_folder(baseline_run):
    out, _ = baseline_run
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)


def test_trials_table_has_one_row_per_trial_with_documented_columns(baseline_run):
    out, _ = baseline_run
    trials = pd.read_parquet(out / "trials.parquet")
    scenario = load_scenario(BASELINE)
    assert list(trials.trial) == list(range(120))
    assert {"n_events", "max_rung", "attacks_on_israel", "hits_on_israel", "casualties_on_israel",
            "attacks_on_us"} <= set(trials.columns)
    for name in scenario.milestones:
        t = trials[f"t_{name}"]
        assert ((t >= 0) & (t <= 365) | t.isna()).all()
    rungs = np.array([
        max([scenario.ladder.index(m) + 1 for m in scenario.ladder if not np.isnan(row[f"t_{m}"])], default=0)
        for _, row in trials.iterrows()
    ])
    assert (rungs == trials.max_rung.to_numpy()).all()
    tracked = [m for m in scenario.milestones if m not in scenario.ladder]
    assert tracked, "the baseline tracks a milestone off the ladder (us_iran_exchange)"
    assert (trials.n_events > 0).all()


def test_monthly_table_sums_to_the_trial_totals(baseline_run):
    out, _ = baseline_run
    monthly = pd.read_parquet(out / "monthly.parquet")
    trials = pd.read_parquet(out / "trials.parquet").set_index("trial")
    assert list(monthly.columns) == ["trial", "month", "series", "count"]
    assert monthly.month.astype(str).iloc[0] == "2024-06" and monthly.month.astype(str).iloc[-1] == "2025-06"
    sums = monthly[monthly.series == "attacks_on_israel"].groupby("trial")["count"].sum()
    assert (sums == trials.attacks_on_israel).all()
    assert (monthly["count"] >= 0).all()


def test_summary_names_stable_metrics_with_intervals(baseline_run):
    out, _ = baseline_run
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary.columns) == ["metric", "estimate", "lo", "hi"]
    s = summary.set_index("metric")
    for name in ("israel_strikes_in_iraq", "regional_war"):
        p = s.loc[f"p_{name}"]
        assert 0 <= p.lo <= p.estimate <= p.hi <= 1
        assert f"p_{name}_by_90d" in s.index and f"median_t_{name}" in s.index
    for q in ("mean", "q05", "q25", "q50", "q75", "q95"):
        assert f"{q}_attacks_on_israel" in s.index
    trials = pd.read_parquet(out / "trials.parquet")
    assert s.loc["p_israel_strikes_in_iraq", "estimate"] == pytest.approx(trials.t_israel_strikes_in_iraq.notna().mean(), abs=1e-6)
    assert s.loc["q50_attacks_on_israel", "estimate"] == np.quantile(trials.attacks_on_israel, 0.5, method="inverted_cdf")


def test_manifest_records_what_reproduces_the_run(baseline_run):
    out, _ = baseline_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["seed"] == 5 and manifest["trials"] == 120
    assert manifest["config_hash"] == config_hash(load_scenario(BASELINE))
    assert {"python", "numpy", "simpy", "escalation-sim"} <= set(manifest["versions"])
    assert manifest["command"].startswith("escsim run")
    assert manifest["started_at"] <= manifest["finished_at"]


def test_saved_scenario_reproduces_the_run(baseline_run, tmp_path):
    out, _ = baseline_run
    assert config_hash(load_scenario(out / "scenario.toml")) == config_hash(load_scenario(BASELINE))
    again = sim.run(out / "scenario.toml", trials=120, seed=5, workers=1, out=tmp_path / "again", progress=False)
    assert (again.out / "trials.parquet").read_bytes() == (out / "trials.parquet").read_bytes()


def test_stdout_summary_is_readable(baseline_run):
    _, output = baseline_run
    assert "israel_strikes_in_iraq" in output and "95% interval" in output and "attacks_on_israel" in output


def test_report_is_self_contained_and_rebuilds_identically(baseline_run):
    out, _ = baseline_run
    html = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    assert html.count("<svg") >= 3
    for external in ('src="http', "src='http", 'href="http', "url(http", "<script", "<link"):
        assert external not in html
    assert "baseline" in html and "Reproduce" in html
    result = CliRunner().invoke(main, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").read_text() == html
    assert (out / "report.md").read_text() == markdown


def test_one_and_two_workers_give_identical_bytes(tmp_path):
    one = sim.run(BASELINE, trials=150, seed=11, workers=1, out=tmp_path / "one", progress=False)
    two = sim.run(BASELINE, trials=150, seed=11, workers=2, out=tmp_path / "two", progress=False)
    for name in ("trials.parquet", "monthly.parquet", "summary.csv", "scenario.toml"):
        assert (one.out / name).read_bytes() == (two.out / name).read_bytes(), name


def test_trial_results_do_not_depend_on_the_trial_count(tmp_path):
    small = sim.run(BASELINE, trials=30, seed=11, workers=1, out=tmp_path / "small", progress=False).trials
    large = sim.run(BASELINE, trials=90, seed=11, workers=1, out=tmp_path / "large", progress=False).trials
    pd.testing.assert_frame_equal(small, large.iloc[:30])


def test_different_seeds_give_different_trials(tmp_path):
    a = sim.run(BASELINE, trials=20, seed=1, workers=1, out=tmp_path / "a", progress=False).trials
    b = sim.run(BASELINE, trials=20, seed=2, workers=1, out=tmp_path / "b", progress=False).trials
    assert not a.equals(b)


def test_existing_folders_are_never_overwritten(baseline_run):
    out, _ = baseline_run
    before = (out / "trials.parquet").read_bytes()
    result = CliRunner().invoke(main, ["run", str(BASELINE), "--trials", "5", "--out", str(out)])
    assert result.exit_code == 2 and "already holds a finished run" in result.output
    assert (out / "trials.parquet").read_bytes() == before


def test_resume_refuses_a_folder_of_another_run(tmp_path):
    out = tmp_path / "r"
    (out / ".chunks").mkdir(parents=True)
    (out / ".chunks" / "plan.json").write_text(json.dumps({"config_hash": "x", "seed": 5, "trials": 10, "chunk_trials": 1}))
    with pytest.raises(InputError, match="another scenario, seed or trial count"):
        sim.run(BASELINE, trials=10, seed=5, workers=1, out=out, resume=True, progress=False)


def test_a_trial_that_raises_is_named_and_fails_the_run(tmp_path, monkeypatch):
    import sim.engine.chunk as chunk

    real = chunk.run_trial

    def flaky(scenario, seed, trial, *streams):
        if trial == 7:
            raise ZeroDivisionError("boom")
        return real(scenario, seed, trial, *streams)

    monkeypatch.setattr(chunk, "run_trial", flaky)
    with pytest.raises(TrialError) as info:
        sim.run(BASELINE, trials=20, seed=1, workers=1, out=tmp_path / "f", progress=False)
    assert info.value.trial == 7 and "ZeroDivisionError: boom" in str(info.value)
    result = CliRunner().invoke(main, ["run", str(BASELINE), "--trials", "20", "--workers", "1", "--out", str(tmp_path / "g")])
    assert result.exit_code == 1 and "trial 7 failed" in result.output and "Traceback" not in result.output


def test_interrupted_run_resumes_to_the_same_files(tmp_path):
    args = [sys.executable, "-m", "sim", "run", str(BASELINE), "--trials", "3000", "--seed", "3", "--workers", "1"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cut = tmp_path / "cut"
    proc = subprocess.Popen([*args, "--out", str(cut)], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
                            preexec_fn=as_foreground)
    deadline = time.time() + 60
    while time.time() < deadline and len(list((cut / ".chunks").glob("chunk-*.npz"))) < 3:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    done = len(list((cut / ".chunks").glob("chunk-*.npz")))
    assert 3 <= done < 64
    subprocess.run([*args, "--out", str(cut), "--resume"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run([*args, "--out", str(tmp_path / "whole")], cwd=ROOT, env=env, check=True, capture_output=True)
    for name in ("trials.parquet", "monthly.parquet", "summary.csv"):
        assert (cut / name).read_bytes() == (tmp_path / "whole" / name).read_bytes(), name


def test_python_api_returns_pandas(tmp_path):
    scenario = sim.load_scenario(BASELINE)
    result = sim.run(scenario, trials=10, seed=1, workers=1, out=tmp_path / "api", progress=False)
    assert isinstance(result.summary, pd.DataFrame) and isinstance(result.trials, pd.DataFrame)
    assert len(result.trials) == 10 and set(result.monthly.columns) == {"trial", "month", "series", "count"}


def test_validate_prints_the_resolved_scenario():
    result = CliRunner().invoke(main, ["validate", str(SCENARIOS / "us_leaves_iraq.toml")])
    assert result.exit_code == 0
    assert 'name = "us_leaves_iraq"' in result.output and "[actors.iri.attacks.israel]" in result.output


@pytest.mark.parametrize("path", sorted(SCENARIOS.glob("*.toml")), ids=lambda p: p.stem)
def test_every_shipped_scenario_validates_and_runs(path, tmp_path):
    result = sim.run(path, trials=5, seed=1, workers=1, out=tmp_path / path.stem, progress=False)
    assert len(result.trials) == 5


def test_reports_show_the_parameters_the_trials_drew_from_the_posterior(baseline_run):
    out, _ = baseline_run
    scenario = load_scenario(out / "scenario.toml")
    posterior = scenario.parameters.posterior
    particles = pd.read_parquet(out / "trials.parquet", columns=["particle"])["particle"].to_numpy()
    k = posterior.parameters.index("us_rate")
    drawn = np.asarray(posterior.values)[particles, k]
    table = pd.read_csv(out / "parameters.csv").set_index("parameter")
    row = table.loc["actors.iri.attacks.us.rate_per_day"]
    assert row.source == f"posterior of calibration fit default ({posterior.folder})"
    assert row["mean"] == pytest.approx(drawn.mean(), rel=1e-5)
    for q in (5, 50, 95):
        assert row[f"q{q:02d}"] == pytest.approx(np.quantile(drawn, q / 100, method="inverted_cdf"), rel=1e-5)
    # the value the file writes (0.9) is not shown as a number of its own: only the draws' summary
    assert row.value.startswith("drawn per trial: mean ")
    assert "0.9" not in re.findall(r"\d+(?:\.\d+)?", row.value)
    # every path the posterior sets has its row, and what the file writes alone says so
    assert {p for paths in posterior.paths for p in paths} <= set(table.index)
    assert table.loc["actors.iri.attacks.israel.rate_per_day", "source"] == "scenario file"
    for name in ("report.md", "report.html"):
        text = (out / name).read_text(encoding="utf-8")
        assert "posterior of calibration fit default" in text and "drawn per trial: mean" in text, name


def test_counts_quantiles_are_counts_and_means_show_their_digits(baseline_run):
    from sim.reports.numbers import number

    out, output = baseline_run
    s = pd.read_csv(out / "summary.csv").set_index("metric")["estimate"]
    trials = pd.read_parquet(out / "trials.parquet")
    for series in ("attacks_on_israel", "hits_on_israel", "attacks_by_iri"):
        for q in (5, 25, 50, 75, 95):
            value = s[f"q{q:02d}_{series}"]
            assert value == int(value) == np.quantile(trials[series], q / 100, method="inverted_cdf"), (series, q)
    counts = pd.read_csv(out / "counts.csv")
    assert (counts[["q05", "q25", "q50", "q75", "q95"]] % 1 == 0).all().all()
    line = next(line for line in output.splitlines() if line.startswith("strikes_by_us "))
    assert line.split()[1] == number(s["mean_strikes_by_us"]) == number(trials.strikes_by_us.mean())
    assert number(0.04375) == "0.0437" and number(515.57) == "516" and number(12345.6) == "12,346"


def test_series_keep_the_actors_labels_and_partial_months_are_marked(baseline_run):
    import datetime as dt

    from sim.reports.labels import month_scale

    out, _ = baseline_run
    html = (out / "report.html").read_text(encoding="utf-8")
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "Attacks on Israel" in html and "Attacks on israel" not in html
    assert "Attacks on Israel (`attacks_on_israel`)" in markdown
    # 2024-06-04 + 365 days: 27 of June 2024's 30 days, 3 of June 2025's, scaled to the whole month and marked
    assert month_scale(dt.date(2024, 6, 4), 365, ["2024-06", "2024-07", "2025-06"]) == [30 / 27, 1.0, 10.0]
    assert "2024-06*" in html and "2025-06*" in html and "2025-05*" not in html and "partial month" in html
