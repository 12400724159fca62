"""Risk over time: `p_<milestone>_by_<YYYY-MM>` in `summary.csv`, and the run report's curves and table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.runs.layout import RunLayout
from sim.runs.summary import Summary
from sim.sweeps.swings import extractors
from tests.conftest import SCENARIOS

TRIALS = 300


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("risk") / "run"
    sim.run(SCENARIOS / "leader_killed_month2.toml", trials=TRIALS, seed=5, workers=1, out=out, progress=False)
    scenario = sim.load_scenario(out / "scenario.toml")
    summary = pd.read_csv(out / "summary.csv").set_index("metric")
    return out, scenario, summary, pd.read_parquet(out / "trials.parquet")


def test_each_month_s_probability_is_the_share_reached_before_it_ends(run):
    _, scenario, summary, trials = run
    layout = RunLayout.of(scenario)
    assert layout.months[0] == "2024-06" and layout.month_ends[:2] == (27.0, 58.0)  # 4 June + 27 days: 1 July
    assert layout.month_ends[-1] == scenario.scenario.horizon_days and len(layout.month_ends) == len(layout.months)
    for m in scenario.milestones:
        days = trials[f"t_{m}"].to_numpy()
        previous = 0.0
        for month, end in zip(layout.months, layout.month_ends, strict=True):
            row = summary.loc[f"p_{m}_by_{month}"]
            assert row.estimate == pytest.approx(np.mean(np.nan_to_num(days, nan=np.inf) < end), rel=1e-5, abs=1e-12)  # %.6g
            assert row.lo <= row.estimate <= row.hi and row.estimate >= previous
            previous = row.estimate
        assert summary.loc[f"p_{m}_by_{layout.months[-1]}", "estimate"] == summary.loc[f"p_{m}", "estimate"]


def test_the_cumulative_curve_at_the_horizon_is_the_milestone_s_probability(run):
    _, scenario, summary, trials = run
    layout = RunLayout.of(scenario)
    s = Summary(layout)
    days = np.column_stack([trials[f"t_{m}"].to_numpy() for m in layout.milestones])
    s.add(days, trials.max_rung.to_numpy(), np.zeros((len(trials), len(layout.series)), dtype=np.int64),
          np.zeros((len(trials), len(layout.monthly_series), len(layout.months)), dtype=np.int64),
          trials.n_events.to_numpy())
    grid = np.array([0.0, 30.0, 90.0, layout.horizon_days])
    for m in scenario.milestones:
        p, lo, hi = s.cumulative(m, grid + 1e-9)
        assert p[-1] == pytest.approx(summary.loc[f"p_{m}", "estimate"], rel=1e-5, abs=1e-12)  # summary.csv: %.6g
        assert (np.diff(p) >= 0).all() and (lo <= p).all() and (p <= hi).all()
        for k, d in ((1, 30.0), (2, 90.0)):  # the 0.01-day grid: as the exact count, but for a day within 0.005
            exact = np.mean(np.nan_to_num(trials[f"t_{m}"].to_numpy(), nan=np.inf) <= d)
            assert abs(p[k] - exact) <= 2 / TRIALS, m


def test_the_report_shows_risk_over_time_and_how_to_read_it(run):
    out, scenario, summary, _ = run
    html = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    md = " ".join((out / "report.md").read_text(encoding="utf-8").split())
    for text in (html, md):
        assert "How to read this report" in text and "Risk over time" in text and "2025-06" in text
    assert "axis_leader_killed_day45" in html  # the scheduled shock marked on the curves
    assert html.count("<svg") >= 4
    # the month table holds the summary's numbers
    p = summary.loc["p_regional_war_by_2024-12", "estimate"]
    assert f"{p:.3f}" in md


def test_every_metric_of_the_summary_can_be_a_sweep_s_output(run):
    _, scenario, summary, _ = run
    assert set(summary.index) <= set(extractors(RunLayout.of(scenario)))
    assert not math.isnan(summary.loc["p_regional_war_by_2024-07", "estimate"])
