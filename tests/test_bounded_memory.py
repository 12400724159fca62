"""What keeps a large sweep's memory flat (benchmarks/bench_memory.py measures it): a worker lets go
of each point's posterior scenarios, the Sobol and Morris bootstraps run a block at a time (and
still give SALib's numbers), and a Latin hypercube's scatter panels draw a fixed sample of a
large design's points."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from SALib.analyze import morris, sobol

from sim.engine import draws
from sim.reports import sweep_figures as figs
from sim.reports.sweep import SCATTER_POINTS, scatter_sample
from sim.scenario import load_scenario
from sim.sweeps.designs import build_design
from sim.sweeps.indices import RESAMPLES, morris_half_widths, sobol_half_widths
from sim.sweeps.points import PointsTask, run_points
from sim.sweeps.spec import SweepParameter
from tests.conftest import ROOT

PARAMETERS = {f"x{i}": SweepParameter(path=f"x{i}", low=-math.pi, high=math.pi) for i in (1, 2, 3, 4)}  # x4 unread


def _f(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + 7 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


@pytest.mark.parametrize("second_order", [True, False])
@pytest.mark.parametrize("block", [5_000, 10**9])  # many blocks; one
def test_the_blocked_sobol_bootstrap_gives_salibs_intervals(second_order, block):
    design = build_design("sobol", PARAMETERS, 128, 3, second_order=second_order)
    y = _f(design.values)
    ref = sobol.analyze(design.problem(), y, calc_second_order=second_order, num_resamples=RESAMPLES, seed=11)
    ours = sobol_half_widths(y, 4, second_order, RESAMPLES, 11, block=block)
    assert np.allclose(ours["S1"], ref["S1_conf"], rtol=1e-9, atol=1e-12)
    assert np.allclose(ours["ST"], ref["ST_conf"], rtol=1e-9, atol=1e-12)
    if second_order:
        upper = np.triu(np.ones((4, 4), dtype=bool), 1)
        assert np.allclose(ours["S2"][upper], ref["S2_conf"][upper], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("levels", [4, 6])
def test_the_blocked_morris_bootstrap_gives_salibs_intervals(levels):
    design = build_design("morris", PARAMETERS, 40, 5, levels=levels)
    y = _f(design.values)
    ref = morris.analyze(design.problem(), design.unit, y, num_resamples=RESAMPLES, num_levels=levels, seed=11)
    assert np.allclose(morris_half_widths(design.unit, y, levels, RESAMPLES, 11, block=777), ref["mu_star_conf"],
                       rtol=1e-12, atol=1e-15)


def test_a_worker_keeps_the_posterior_scenarios_of_its_last_points_only():
    scenario = load_scenario(ROOT / "scenarios" / "baseline.toml")
    assert scenario.parameters.posterior is not None
    task = PointsTask(scenario.model_dump_json(by_alias=True), ("weapons.drone.p_hit",), np.arange(3, 6),
                      np.array([[0.1], [np.nan], [0.2]]), 7, 3, ("p_israel_strikes_in_iraq",))
    result = run_points(task)
    assert not result.failures
    assert result.points.tolist() == [3, 4, 5]
    assert np.isfinite(result.estimate).all()
    assert len(draws._BLUEPRINTS) <= draws.KEPT_SCENARIOS  # the last points' particles, not every point's


def _points(n: int, outputs=("a", "b")) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"point": np.repeat(np.arange(n), len(outputs)), "x": np.repeat(rng.random(n), len(outputs)),
                          "output": np.tile(outputs, n), "estimate": rng.random(n * len(outputs))})
    return frame


def test_the_scatter_draws_a_fixed_sample_of_a_large_design_the_same_for_every_output():
    points = _points(3 * SCATTER_POINTS)
    shown = {o: scatter_sample(points[points["output"] == o].sort_values("point")) for o in ("a", "b")}
    assert len(shown["a"]) == SCATTER_POINTS
    assert shown["a"]["point"].tolist() == shown["b"]["point"].tolist()
    assert shown["a"]["point"].is_monotonic_increasing
    again = scatter_sample(points[points["output"] == "a"].sort_values("point"))
    assert again["point"].tolist() == shown["a"]["point"].tolist()
    small = _points(SCATTER_POINTS)
    assert len(scatter_sample(small[small["output"] == "a"])) == SCATTER_POINTS


def test_a_sampled_scatter_says_so_in_its_title():
    panel = ("x", [0.1, 0.5], [1.0, 2.0], [0.5, 1.5], [1.5, 2.5], False)
    assert "at 2 of the 50,000 points (a random sample, fixed seed)" in figs.scatter_panels([panel], "Y", of=50_000)
    assert "Y at each point" in figs.scatter_panels([panel], "Y", of=2)
