"""Sweep statistics: paired one-at-a-time swings (common random numbers: an output a parameter does
not touch swings by exactly 0 with interval [0, 0]), outputs constant over the design (no indices,
a note, in every design), and designs too small for their intervals (a warning)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.reports.sweep import output_label
from sim.sweeps import swings
from sim.sweeps.designs import build_design
from sim.sweeps.indices import CONSTANT, WIDE, analyze
from sim.sweeps.spec import SweepParameter
from sim.sweeps.summary import number
from tests.test_sweeps import TINY_PARAMETERS, write_spec

# `threshold` moves the retaliation rule only: it touches p_retaliation, not the militia's hits.
TOUCH_SOME = {"unused": TINY_PARAMETERS["unused"], "threshold": TINY_PARAMETERS["threshold"]}
OUTPUTS = ["p_retaliation", "p_first_hit", "mean_hits_on_s"]
DESIGNS = [("oat", 2), ("grid", 3), ("lhs", 10), ("sobol", 8), ("morris", 4)]


def rows(table: pd.DataFrame, output: str, parameter: str, index: str) -> pd.Series:
    return table.set_index(["output", "parameter", "index"]).loc[(output, parameter, index)]


@pytest.fixture(scope="module")
def oat(tmp_path_factory):
    folder = tmp_path_factory.mktemp("oat")
    rate = {**TINY_PARAMETERS["rate"], "low": 0.25, "high": 0.5}  # a touched output, both ends moderate
    spec = write_spec(folder, "oat", 2, {"unused": TINY_PARAMETERS["unused"], "rate": rate},
                      ["p_first_hit", "mean_hits_on_s", "q95_hits_on_s"], trials_per_point=200)
    result = CliRunner().invoke(main, ["sweep", str(spec), "--workers", "1", "--out", str(folder / "out")])
    assert result.exit_code == 0, result.output
    return pd.read_csv(folder / "out" / "sensitivity.csv", keep_default_na=False, na_values=[""]), result.output


def test_an_untouched_parameter_swings_by_exactly_zero_with_interval_zero(oat):
    table, output = oat
    for out in ("p_first_hit", "mean_hits_on_s", "q95_hits_on_s"):
        row = rows(table, out, "unused", "swing")
        assert (row.estimate, row.lo, row.hi) == (0.0, 0.0, 0.0), out
        assert row.interval == swings.IDENTICAL
    assert re.search(r"\n  unused +0\.000 +0\.000 – 0\.000\n", output), output


def test_paired_swing_intervals_are_narrower_than_unpaired_ones(oat):
    table, _ = oat
    for out, method in (("p_first_hit", swings.NEWCOMBE), ("mean_hits_on_s", swings.PAIRED_T)):
        low, high, swing = (rows(table, out, "rate", i) for i in ("at_low", "at_high", "swing"))
        assert swing.interval == method
        assert swing.estimate == pytest.approx(high.estimate - low.estimate)
        assert swing.lo <= swing.estimate <= swing.hi
        _, lo, hi = swings.unpaired_swing((low.estimate, low.lo, low.hi), (high.estimate, high.lo, high.hi))
        assert swing.hi - swing.lo < 0.8 * (hi - lo), (out, swing.lo, swing.hi, lo, hi)


def test_paired_swings_reuse_compares_paired_intervals():
    rng = np.random.default_rng(1)
    low = rng.poisson(3.0, 400).astype(float)
    high = low + rng.poisson(0.5, 400)
    est, lo, hi, method = swings.paired_swing("mean_hits_on_s", low, high)
    assert method == swings.PAIRED_T and (est, lo, hi) == pytest.approx(
        tuple(vars(sim.comparison.stats.paired_mean_difference(low, high)).values()))
    assert swings.paired_swing("p_x", low > 3, low > 3)[:3] == (0.0, 0.0, 0.0)
    assert swings.paired_swing("p_x", low > 3, high > 3)[3] == swings.NEWCOMBE


@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    found = {}
    for design, samples in DESIGNS:
        folder = tmp_path_factory.mktemp(design)
        spec = write_spec(folder, design, samples, TOUCH_SOME, OUTPUTS, trials_per_point=20)
        result = CliRunner().invoke(main, ["sweep", str(spec), "--workers", "1", "--out", str(folder / "out")])
        assert result.exit_code == 0, result.output
        found[design] = (folder / "out", result.output)
    return found


def section(html: str, metric: str) -> str:
    parts = html.split("<h2>")
    return next(p for p in parts if f"<code>{metric}</code></h2>" in p)


@pytest.mark.parametrize("design", [d for d, _ in DESIGNS])
def test_an_output_constant_over_the_design_gets_no_indices_but_a_note(designs, design):
    out, console = designs[design]
    points = pd.read_parquet(out / "points.parquet")
    spread = points.groupby("output")["estimate"].agg(lambda v: v.max() - v.min())
    assert spread["p_first_hit"] == 0 and spread["mean_hits_on_s"] == 0 and spread["p_retaliation"] > 0
    table = pd.read_csv(out / "sensitivity.csv", keep_default_na=False, na_values=[""])
    notes = table["note"].fillna("")
    for metric in ("p_first_hit", "mean_hits_on_s"):
        mine = table[table["output"] == metric]
        assert notes[mine.index].str.contains(CONSTANT).all(), metric
        ranked = mine[mine["index"].isin(["S1", "ST", "S2", "prcc", "main_effect", "mu", "mu_star", "sigma", "swing"])]
        # Shares and correlations of a constant are not numbers; changes of it are exactly zero.
        assert ranked["estimate"].isna().all() or (ranked["estimate"] == 0).all(), ranked
        assert f"{metric}: constant over the design" in console
        html = section((out / "report.html").read_text(), metric)
        assert "Constant over the design" in html and "<svg" not in html
    assert not notes[table["output"] == "p_retaliation"].str.contains(CONSTANT).any()
    assert "<svg" in section((out / "report.html").read_text(), "p_retaliation")


def test_prcc_of_a_constant_output_is_not_a_number_and_noted():
    design = build_design("lhs", {"a": SweepParameter(path="a", low=0, high=1), "b": SweepParameter(path="b", low=0, high=1)},
                          30, seed=1)
    table = analyze(design, {"flat": np.full(30, 0.25), "one": np.ones(30), "y": design.values[:, 0]})
    for name in ("flat", "one"):
        assert table[table["output"] == name]["estimate"].isna().all()
        assert (table[table["output"] == name]["note"] == CONSTANT).all()
    assert rows(table, "y", "a", "prcc").estimate > 0.99 and rows(table, "y", "a", "prcc").note == ""


def test_a_sobol_size_too_small_for_its_intervals_is_warned_of(designs):
    out, console = designs["sobol"]
    assert "warning: Sobol N = 8 is below 64" in console
    assert "Sobol N = 8 is below 64" in (out / "report.md").read_text()
    assert "Sobol N = 8 is below 64" in (out / "report.html").read_text()
    table = pd.read_csv(out / "sensitivity.csv", keep_default_na=False, na_values=[""])
    assert table["note"].str.contains("Sobol N = 8 is below 64").all()


def test_morris_with_few_trajectories_is_warned_of(designs):
    out, console = designs["morris"]
    assert "warning: 4 Morris trajectories, fewer than 8" in console
    table = pd.read_csv(out / "sensitivity.csv", keep_default_na=False, na_values=[""])
    assert table["note"].str.contains("4 Morris trajectories").all()


def test_wide_sobol_intervals_are_noted_and_a_large_design_has_no_size_warning():
    params = {f"x{i}": SweepParameter(path=f"x{i}", low=-math.pi, high=math.pi) for i in (1, 2, 3)}
    for n, small in ((8, True), (256, False)):
        design = build_design("sobol", params, n, seed=2)
        x = design.values
        y = np.sin(x[:, 0]) + 7.0 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])
        table = analyze(design, {"y": y}, seed=2)
        first = table[table["index"].isin(["S1", "ST"])]
        wide = first["hi"] - first["lo"] > 0.5
        assert (first.loc[wide, "note"].str.contains(WIDE)).all() and not first.loc[~wide, "note"].str.contains(WIDE).any()
        assert table["note"].str.contains("below 64").all() == small
        if not small:
            assert not wide.any()


def test_output_labels_keep_capitals_and_small_means_show_their_digits():
    labels = {"israel_strikes_in_iraq": "Israel strikes inside Iraq"}
    assert output_label("p_israel_strikes_in_iraq", labels) == "P(Israel strikes inside Iraq)"
    assert output_label("p_israel_strikes_in_iraq_by_30d", labels) == "P(Israel strikes inside Iraq within 30 days)"
    assert output_label("mean_attacks_on_israel") == "Mean attacks on Israel"
    assert output_label("q95_strikes_by_us") == "95th percentile of strikes by US"
    assert number(0.0004) == "0.0004" and number(0.0) == "0.000" and number(-0.0) == "0.000"
    assert number(114.4394) == "114.439"
