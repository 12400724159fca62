"""What `escsim compare` shows: metrics only some scenarios have (named, with their estimate, never dropped), the
mean highest rung only where the ladders agree, whole scenario names, one number format, and `--pairs first`."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from tests.conftest import ROOT
from tests.test_compare import variant

TINY = ROOT / "tests" / "data" / "tiny.toml"

# A milestone tracked off the ladder: the ladders stay equal.
TRACKED = """[milestones.two_hits]
label = "Two hits on S"
when = { by = ["m"], on = ["s"], min_hits = 1 }
count = 2
"""
# A second militia and a rung of its own: the ladders differ.
MILITIA = """[actors.second_front]
kind = "militia"
label = "Second Front"

[actors.second_front.attacks.s]
rate_per_day = 0.3
weapons = { drone = 1.0 }

[milestones.second_front_hit]
label = "Second Front hits S"
when = { by = ["second_front"], on = ["s"], min_hits = 1 }

[append]
ladder = ["second_front_hit"]
"""


@pytest.fixture(scope="module")
def three(tmp_path_factory):
    folder = tmp_path_factory.mktemp("compare_outputs")
    tracked = variant(folder, "tiny_with_a_tracked_milestone", TRACKED)
    militia = variant(folder, "tiny_with_a_second_militia", MILITIA)
    out = folder / "out"
    result = CliRunner().invoke(main, ["compare", str(TINY), str(tracked), str(militia), "--trials", "150", "--seed", "3",
                                       "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, result.output


def rows(out, b: str) -> pd.DataFrame:
    table = pd.read_csv(out / "comparison.csv", keep_default_na=False, na_values=[""])
    return table[(table.a == "tiny") & (table.b == b)].set_index("metric")


def test_metrics_only_one_scenario_has_are_rows_with_its_estimate_and_no_difference(three):
    out, _ = three
    tracked = rows(out, "tiny_with_a_tracked_milestone")
    for metric in ("p_two_hits", "p_two_hits_by_30d", "rmst_two_hits"):
        row = tracked.loc[metric]
        assert row.only_in == "tiny_with_a_tracked_milestone", metric
        assert math.isnan(row.estimate_a) and not math.isnan(row.estimate_b) and math.isnan(row.difference), metric
    militia = rows(out, "tiny_with_a_second_militia")
    for metric in ("p_second_front_hit", "mean_attacks_by_second_front", "q95_attacks_by_second_front"):
        assert militia.loc[metric].only_in == "tiny_with_a_second_militia", metric
        assert militia.loc[metric].estimate_b > 0 and math.isnan(militia.loc[metric].difference), metric
    # what both have is compared as before
    assert tracked["only_in"].isna()["p_retaliation"] and not math.isnan(tracked.loc["p_retaliation", "lo"])


def test_the_mean_highest_rung_is_compared_only_on_the_same_ladder(three):
    out, output = three
    same = rows(out, "tiny_with_a_tracked_milestone").loc["mean_max_rung"]
    assert same.interval == "paired t" and not math.isnan(same.difference)
    other = rows(out, "tiny_with_a_second_militia").loc["mean_max_rung"]
    assert other.interval == "none: the ladders differ" and math.isnan(other.difference)
    assert not math.isnan(other.estimate_a) and not math.isnan(other.estimate_b)
    assert "mean_max_rung" in output and "not compared: the ladders differ" in output


def test_the_console_and_reports_say_which_metrics_only_some_scenarios_have(three):
    out, output = three
    assert ("only tiny_with_a_second_militia has 5 metrics (no difference): p_second_front_hit, "
            "p_second_front_hit_by_30d, rmst_second_front_hit, mean_attacks_by_second_front") in output
    assert "only in tiny_with_a_tracked_milestone" in output
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "Only tiny_with_a_second_militia has 5 of these metrics (`p_second_front_hit`" in text
    assert "only in tiny_with_a_tracked_milestone" in text
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "Only tiny_with_a_tracked_milestone has 3 of these metrics" in html


def test_the_console_shows_whole_names_and_three_significant_digits(three):
    from sim.reports.numbers import number, signed

    out, output = three
    lines = output.splitlines()
    section = lines[lines.index("tiny_with_a_second_militia − tiny"):]
    assert section[1].split()[1:3] == ["tiny", "tiny_with_a_second_militia"]  # whole names, not "tiny_with_a"
    row = rows(out, "tiny_with_a_second_militia").loc["mean_attacks_on_s"]
    mean = next(line for line in section if line.startswith("mean_attacks_on_s ")).split()
    assert mean[1:4] == [number(row.estimate_a), number(row.estimate_b), signed(row.difference)]
    text = (out / "report.md").read_text(encoding="utf-8")
    assert f"| {number(row.estimate_a)} | {number(row.estimate_b)} | {signed(row.difference)} |" in text
    assert "Mean attacks by Second Front (`mean_attacks_by_second_front`)" in text  # the actor's label, capitals kept


def test_probabilities_and_their_differences_print_with_three_decimals_everywhere(three):
    """One format for a probability: 1.000 beside 0.998, and a difference of 0 as 0.000 with its interval to
    the same three decimals, not 1 beside 0.998 and [−0.00383, +0.00383]."""
    from sim.reports.numbers import interval, signed

    assert signed(0.0, 3) == "0.000" and signed(-0.0002, 3) == "0.000" and signed(-0.0383, 3) == "−0.038"
    assert interval(-0.00383, 0.00383, 3) == "[−0.004, +0.004]"
    out, output = three
    lines = output.splitlines()
    section = lines[lines.index("tiny_with_a_second_militia − tiny"):]
    for line in section:
        if line.startswith("p_") and "only in" not in line:
            words = line.split()
            assert all(len(w.split(".")[-1]) == 3 for w in words[1:4]), line


def test_pairs_first_compares_each_scenario_with_the_first_only(three, tmp_path):
    out, _ = three
    runs = [out / "runs" / n for n in ("tiny", "tiny_with_a_tracked_milestone", "tiny_with_a_second_militia")]
    result = sim.compare(runs, out=tmp_path / "first", pairs="first")
    assert sorted(set(zip(result.comparison.a, result.comparison.b, strict=True))) == [
        ("tiny", "tiny_with_a_second_militia"), ("tiny", "tiny_with_a_tracked_milestone")]
    assert result.manifest["pairs"] == "first" and "--pairs first" in result.manifest["reproduce"]
    every = pd.read_csv(out / "comparison.csv")
    assert len(set(zip(every.a, every.b, strict=True))) == 3
    text = (tmp_path / "first" / "report.md").read_text(encoding="utf-8")
    assert "## tiny\\_with\\_a\\_second\\_militia − tiny\n" not in text  # names are escaped only at word edges
    assert "## tiny_with_a_second_militia − tiny\n" in text
    assert "− tiny_with_a_tracked_milestone\n" not in text
    cli = CliRunner().invoke(main, ["compare", *map(str, runs), "--pairs", "first", "--out", str(tmp_path / "cli")])
    assert cli.exit_code == 0, cli.output
    assert "tiny_with_a_second_militia − tiny_with_a_tracked_milestone" not in cli.output
    assert "tiny_with_a_second_militia − tiny\n" in cli.output
    bad = CliRunner().invoke(main, ["compare", *map(str, runs), "--pairs", "some", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "--pairs" in bad.output
