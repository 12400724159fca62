"""`pathways.csv` and the run report's pathways: each trial's rungs in the order reached."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.runs.layout import RunLayout
from sim.runs.summary import ARROW, NO_RUNG, Summary
from tests.conftest import SCENARIOS

TRIALS = 400


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("paths") / "run"
    sim.run(SCENARIOS / "baseline.toml", trials=TRIALS, seed=11, workers=1, out=out, progress=False)
    scenario = sim.load_scenario(out / "scenario.toml")
    return out, scenario, pd.read_parquet(out / "trials.parquet")


def summary_of(scenario, trials: pd.DataFrame, chunk: int) -> Summary:
    layout = RunLayout.of(scenario)
    s = Summary(layout)
    days = np.column_stack([trials[f"t_{m}"].to_numpy() for m in layout.milestones])
    for a in range(0, len(trials), chunk):
        s._add_paths(days[a:a + chunk])
    s.n = len(trials)
    return s


def path_of(row: pd.Series, ladder: list[str]) -> str:
    """The rungs of one trial in the order reached, ties in ladder order: written out plainly."""
    reached = [(row[f"t_{m}"], k, m) for k, m in enumerate(ladder) if not math.isnan(row[f"t_{m}"])]
    return ARROW.join(m for _, _, m in sorted(reached)) or NO_RUNG


def test_each_trial_s_path_is_its_rungs_in_the_order_reached(baseline):
    _, scenario, trials = baseline
    every = summary_of(scenario, trials, 1000).pathways(shown=None).set_index("path")
    expected = trials.apply(path_of, axis=1, ladder=list(scenario.ladder)).value_counts()
    assert every["trials"].to_dict() == expected.to_dict()
    # the same, however the trials come in chunks
    for chunk in (1, 7, 250):
        assert summary_of(scenario, trials, chunk).paths == summary_of(scenario, trials, 1000).paths


def test_pathway_shares_sum_to_one_and_agree_with_the_milestone_probabilities(baseline):
    out, scenario, trials = baseline
    table = pd.read_csv(out / "pathways.csv")
    assert table.trials.sum() == TRIALS and table.share.sum() == pytest.approx(1.0)
    assert (table.lo <= table.share).all() and (table.share <= table.hi).all()
    assert table.path.iloc[-1].startswith("other paths (") and math.isnan(table.rungs.iloc[-1])
    assert list(table.trials.iloc[:-1]) == sorted(table.trials.iloc[:-1], reverse=True)
    every = summary_of(scenario, trials, 1000).pathways(shown=None)
    summary = pd.read_csv(out / "summary.csv").set_index("metric")["estimate"]
    for m in scenario.ladder:  # the paths through a rung hold exactly the trials that reached it
        through = every[every.path.str.split(ARROW).apply(lambda rungs, m=m: m in rungs)]
        assert through.share.sum() == pytest.approx(summary[f"p_{m}"], abs=1e-12), m


def test_the_flow_from_rung_to_rung_accounts_for_every_trial(baseline):
    _, scenario, trials = baseline
    s = summary_of(scenario, trials, 1000)
    sources, targets, shares = s.transitions()
    ladder = list(scenario.ladder)
    assert sources == ["start", *ladder] and targets == [*ladder, "end"]
    reached = {m: trials[f"t_{m}"].notna().mean() for m in ladder}
    assert shares[0].sum() == pytest.approx(1.0)  # every trial starts somewhere: a rung, or ends at once
    for k, m in enumerate(ladder):
        assert shares[k + 1].sum() == pytest.approx(reached[m])  # a trial that reached m takes one step on
        assert shares[:, k].sum() == pytest.approx(reached[m])  # and came to m by one step


def test_the_report_shows_the_pathways(baseline):
    out, _, _ = baseline
    html = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    md = " ".join((out / "report.md").read_text(encoding="utf-8").split())
    first = pd.read_csv(out / "pathways.csv").path.iloc[0]
    for text in (html, md):
        assert "Pathways up the ladder" in text and "sum to 1" in text and first in text
    assert "From rung to rung" in html


def test_the_compare_report_shows_how_the_pathways_shift(tmp_path):
    """Trial i of each scenario on the same streams: the share of each path in A and B is as their
    run folders' trials say, and the paired difference is Newcombe's on those indicators."""
    from sim.comparison.stats import paired_proportion_difference
    from sim.runs.summary import path_codes, path_names

    out = tmp_path / "cmp"
    sim.compare([SCENARIOS / "baseline.toml", SCENARIOS / "israel_strikes_iraq_day60.toml"], trials=300, seed=2,
                workers=1, out=out, progress=False)
    md = (out / "report.md").read_text(encoding="utf-8")
    html = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    head = "### Pathways up the ladder: israel_strikes_iraq_day60 − baseline"
    assert head in md and "Pathways up the ladder: israel_strikes_iraq_day60 − baseline" in html
    section = md[md.index(head):].split("\n\n")[1].splitlines()[2:]
    ladder = list(sim.load_scenario(SCENARIOS / "baseline.toml").ladder)
    paths = {}
    for name in ("baseline", "israel_strikes_iraq_day60"):
        t = pd.read_parquet(out / "runs" / name / "trials.parquet")
        paths[name] = path_names(path_codes(np.column_stack([t[f"t_{m}"].to_numpy() for m in ladder])), ladder)
    assert 1 <= len(section) <= 8
    for line in section:
        path, a, b, diff, interval = [c.strip() for c in line.strip("|").split("|")]
        x, y = paths["baseline"] == path, paths["israel_strikes_iraq_day60"] == path
        assert float(a) == pytest.approx(x.mean(), abs=5e-4) and float(b) == pytest.approx(y.mean(), abs=5e-4)
        d = paired_proportion_difference(x, y)
        assert float(diff.replace("−", "-")) == pytest.approx(d.estimate, abs=5e-4)
        assert interval == f"[{d.lo:+.3f}, {d.hi:+.3f}]".replace("-", "−").replace("+0.000", "0.000").replace("−0.000", "0.000")
    moved = np.mean(paths["baseline"] != paths["israel_strikes_iraq_day60"])
    assert f"{moved:.1%} of the trials took another path" in md


def test_roots_csv_names_where_each_milestone_s_cause_chain_begins(baseline):
    """Every trial's roots are recorded (each milestone has as many as trials.parquet says reached it,
    and roots.csv counts trials.parquet's root columns), every milestone reached has one root, and a
    root is a shock of the scenario, a restraint in force at the start or a militia's spontaneous
    attacks on a front."""
    out, scenario, trials = baseline
    roots = pd.read_csv(out / "roots.csv")
    assert (roots.traced == TRIALS).all()
    for m in scenario.milestones:
        rows = roots[roots.milestone == m]
        reached = int(trials[f"t_{m}"].notna().sum())
        assert rows.trials.sum() == reached and (rows.reached == reached).all(), m
        assert (trials[f"root_{m}"].notna() == trials[f"t_{m}"].notna()).all(), m
        assert dict(zip(rows.root, rows.trials, strict=True)) == {k: v for k, v in trials[f"root_{m}"].value_counts().items() if v}, m
        if reached:
            assert rows.share.sum() == pytest.approx(1.0) and list(rows.trials) == sorted(rows.trials, reverse=True)
    militias = [name for name, a in scenario.actors.items() if a.kind == "militia"]
    kinds = ({f"shock {s}" for s in scenario.shocks}
             | {f"restraint of {m} on {t} at the start" for m in militias for t in scenario.actors[m].attacks}
             | {f"spontaneous attacks by {m} on {t}" for m in militias for t in scenario.actors[m].attacks})
    assert set(roots.root) <= kinds, set(roots.root) - kinds
    assert len(set(roots.root)) >= 3  # the baseline's milestones begin at several kinds of root
    html = " ".join((out / "report.html").read_text(encoding="utf-8").split())
    assert f"Roots of each milestone's cause chain (all {TRIALS:,} trials)" in html


def test_each_trial_s_roots_are_those_of_its_full_trace(baseline):
    """The run's root columns, recorded with the light tracer in the workers, name the same root as the
    full trace of the same trial (the first event of the milestone's cause chain, by kind)."""
    out, scenario, trials = baseline
    from sim.engine.trace import trace_trial

    seed = 11
    for trial in range(0, TRIALS, 7):
        traced = trace_trial(scenario, seed, trial)
        events = traced.events.set_index("event")
        row = trials.iloc[trial]
        for m in scenario.milestones:
            root = traced.roots.get(m)
            if root is None:
                assert pd.isna(row[f"root_{m}"]), (trial, m)
                continue
            first = events.loc[root]
            label = {"shock": f"shock {first.target}", "attack": f"spontaneous attacks by {first.actor} on {first.target}",
                     "hit": f"spontaneous attacks by {first.actor} on {first.target}",
                     "restraint start": f"restraint of {first.actor} on {first.target} at the start"}[first.kind]
            assert row[f"root_{m}"] == label, (trial, m)
            assert pd.isna(first.cause)


def test_the_compare_report_shows_how_the_roots_of_each_rung_shift(tmp_path):
    """Each row's shares are those of the arms' root columns (P(rung reached from that root)), its
    difference and interval Newcombe's on the paired indicators; each rung has its most common root
    of the two together; a scheduled Israeli strike inside Iraq on day 60 becomes a root of that rung."""
    from sim.comparison.stats import paired_proportion_difference

    out = tmp_path / "cmp"
    sim.compare([SCENARIOS / "baseline.toml", SCENARIOS / "israel_strikes_iraq_day60.toml"], trials=300, seed=2,
                workers=1, out=out, progress=False)
    md = (out / "report.md").read_text(encoding="utf-8")
    head = "### Roots of each rung: israel_strikes_iraq_day60 − baseline"
    assert head in md and head.removeprefix("### ") in (out / "report.html").read_text(encoding="utf-8")
    section = md[md.index(head):].split("\n\n")[1].splitlines()[2:]
    scenario = sim.load_scenario(SCENARIOS / "baseline.toml")
    labels = {(m.label or k): k for k, m in scenario.milestones.items()}
    trials = {name: pd.read_parquet(out / "runs" / name / "trials.parquet")
              for name in ("baseline", "israel_strikes_iraq_day60")}
    rungs = set()
    for line in section:
        rung, root, a, b, diff, interval = [c.strip().replace("\\", "") for c in line.strip("|").split("|")]
        m = labels[rung]
        x = (trials["baseline"][f"root_{m}"] == root).fillna(False).to_numpy(bool)
        y = (trials["israel_strikes_iraq_day60"][f"root_{m}"] == root).fillna(False).to_numpy(bool)
        assert float(a) == pytest.approx(x.mean(), abs=5e-4) and float(b) == pytest.approx(y.mean(), abs=5e-4)
        d = paired_proportion_difference(x, y)
        assert float(diff.replace("−", "-")) == pytest.approx(d.estimate, abs=5e-4)
        if m not in rungs:  # the first row of a rung: its most common root in the two together
            together = pd.concat([trials[n][f"root_{m}"] for n in trials]).value_counts()
            assert together[root] == together.max(), (m, root)
        rungs.add(m)
    assert rungs == set(scenario.ladder) - {m for m in scenario.ladder
                                            if trials["baseline"][f"t_{m}"].isna().all()
                                            and trials["israel_strikes_iraq_day60"][f"t_{m}"].isna().all()}
    iraq = [line for line in section if "shock israel_strikes_iraq" in line]
    assert iraq, "the scheduled strike is the root of Israel's strikes in Iraq in the what-if"


def test_pathways_and_roots_are_not_compared_across_different_ladders(tmp_path):
    out = tmp_path / "cmp"
    sim.compare([SCENARIOS / "baseline.toml", SCENARIOS / "baseline.toml"], trials=20, seed=2, workers=1, out=out,
                progress=False, overrides=["2:scenario.name=short_ladder", "2:ladder=[\"regional_war\"]"])
    md = (out / "report.md").read_text(encoding="utf-8")
    assert "Not compared: the ladders differ." in md or "not compared: the ladders differ." in md
    assert "### Roots of each rung: short_ladder − baseline" in md
