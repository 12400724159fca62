"""`escsim trace` and `sim.trace`: a traced trial is its run's trial (same counts, milestone days,
events, particle and roots, on 1 and 2 workers), every consequence has a cause that leads back to a
root, the causes of attacks follow the branching reading of the intensity (an oracle on a
Hawkes process), and bad requests are refused with one clear message."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import sim
from sim.cli import main
from sim.engine.trace import trace_trial
from sim.model.trace import COLUMNS
from tests.conftest import SCENARIOS, assert_mean, hawkes_mean, make_scenario

SEED = 20240604
CONSEQUENCES = {"strike", "decision", "surge", "milestone", "restraint end", "pause start", "pause end"}
ROOT_KINDS = {"shock", "attack", "hit", "restraint start"}


@pytest.fixture(scope="module")
def run_folders(tmp_path_factory):
    """Runs of 40 trials of the baseline, the replay and a what-if, on 1 and on 2 workers."""
    base = tmp_path_factory.mktemp("trace_runs")
    folders = {}
    for name in ("baseline", "history_2023_2024", "us_strikes_irgc_in_iraq"):
        for workers in (1, 2):
            out = base / f"{name}-{workers}"
            sim.run(SCENARIOS / f"{name}.toml", trials=40, seed=SEED, workers=workers, out=out, progress=False)
            folders[(name, workers)] = out
    return folders


@pytest.mark.parametrize("name", ["baseline", "history_2023_2024", "us_strikes_irgc_in_iraq"])
@pytest.mark.parametrize("workers", [1, 2])
def test_a_traced_trial_is_the_run_s_trial(run_folders, name, workers):
    folder = run_folders[(name, workers)]
    rows = pd.read_parquet(folder / "trials.parquet").set_index("trial")
    scenario = sim.load_scenario(folder / "scenario.toml")
    for trial in (0, 7, 39):
        events = sim.trace(folder, trial)  # refuses a trace that differs from the run's row
        traced = trace_trial(scenario, SEED, trial)
        row = rows.loc[trial]
        assert traced.outcome.n_events == row["n_events"]
        assert traced.outcome.totals == [int(row[s]) for s in traced.series]
        for m, day in zip(traced.milestones, traced.outcome.milestone_days, strict=True):
            assert (math.isnan(day) and math.isnan(row[f"t_{m}"])) or day == row[f"t_{m}"], m
        if "particle" in rows:
            assert traced.particle == row["particle"] == events.attrs["particle"]
        # The events tell the same story as the counts.
        attacks = events[events.kind.isin(["attack", "hit"])]
        for target in {s.removeprefix("attacks_on_") for s in traced.series if s.startswith("attacks_on_")}:
            assert (attacks.target == target).sum() == row[f"attacks_on_{target}"]
            assert attacks[attacks.target == target].hits.sum() == row[f"hits_on_{target}"]
        reached = events[events.kind == "milestone"]
        assert set(reached.target) == {m for m in traced.milestones if not math.isnan(row[f"t_{m}"])}
        for _, r in reached.iterrows():
            assert r.day == row[f"t_{r.target}"]
        # The roots the run recorded in its workers are those of the full trace.
        for m in traced.milestones:
            assert traced.root_names.get(m) == (None if pd.isna(row[f"root_{m}"]) else row[f"root_{m}"]), m


def test_every_consequence_has_a_cause_that_leads_back_to_a_root():
    for name, trials in (("baseline", range(12)), ("history_2023_2024", range(4)), ("iran_lifts_restraint", range(6))):
        scenario = sim.load_scenario(SCENARIOS / f"{name}.toml")
        for trial in trials:
            t = trace_trial(scenario, scenario.run.seed, trial)
            ev = t.events.set_index("event")
            assert list(t.events.columns) == ["event", "day", "date", *COLUMNS[2:]]
            assert (np.diff(ev.day.to_numpy()) >= 0).all(), "events in time order"
            for event, r in ev.iterrows():
                if r.kind in CONSEQUENCES or (r.kind == "restraint start" and "at the start" not in r.detail):
                    assert not pd.isna(r.cause), (name, trial, event, r.kind)
                if not pd.isna(r.cause):
                    assert r.cause < event and ev.loc[r.cause, "day"] <= r.day
                root = t.chains.get(r.target, None) if r.kind == "milestone" else None
                if root is not None:
                    assert ev.loc[root[0], "kind"] in ROOT_KINDS and pd.isna(ev.loc[root[0], "cause"])
                    assert root[-1] == event
            for strike in ev[ev.kind == "strike"].index:  # a strike comes of a decision or a shock
                assert ev.loc[ev.loc[strike, "cause"], "kind"] in ("decision", "shock")
            for decision in ev[ev.kind == "decision"].index:  # a decision of an incident that deposited
                assert ev.loc[ev.loc[decision, "cause"], "kind"] in ("attack", "hit", "strike")
            assert set(t.roots) == set(ev[ev.kind == "milestone"].target)


def test_attack_causes_follow_the_branching_structure_of_a_hawkes_process():
    """In a Hawkes process of base rate μ, started empty, the immigrants (attacks of the base
    rate) are a Poisson process of rate μ, and the rest are offspring: E[offspring] =
    E[N] − μT (Hawkes 1974's cluster representation). Tolerances: 4.5 standard errors."""
    mu, alpha, memory, horizon, n = 1.0, 0.5, 7.0, 100.0, 400
    s = make_scenario({"actors": {"m": {
        "attacks": {"s": {"rate_per_day": mu}},
        "excitation": {"memory_days": memory, "from": {"m": alpha}},
    }}}, horizon_days=horizon)
    expected = hawkes_mean(mu, alpha, memory, horizon)
    spontaneous, offspring = [], []
    for trial in range(n):
        ev = trace_trial(s, 3, trial).events
        attacks = ev[ev.kind.isin(["attack", "hit"])]
        spontaneous.append(attacks.cause.isna().sum())
        offspring.append(attacks.cause.notna().sum())
        parents = attacks.cause.dropna().astype(int)
        assert (ev.set_index("event").loc[parents, "kind"].isin(["attack", "hit"])).all()
    spontaneous, offspring = np.array(spontaneous), np.array(offspring)
    assert_mean(spontaneous, mu * horizon)
    assert abs(spontaneous.var(ddof=1) - mu * horizon) <= 4.5 * math.sqrt((mu * horizon + 2 * (mu * horizon) ** 2) / n)
    assert_mean(offspring, expected - mu * horizon)


def test_a_decision_s_level_threshold_chance_and_action_are_columns_of_its_row():
    """Decisions carry the level their account was at (at or above the rule's threshold: a rule decides
    only then), the rule's threshold and chance as the trial had them, and whether it acted, the same as
    their detail says; every other row leaves the four empty."""
    scenario = sim.load_scenario(SCENARIOS / "baseline.toml")
    rules = {(o, n): r for o, st in scenario.states().items() for n, r in st.rules.items()}
    decided = 0
    for trial in range(5):
        ev = trace_trial(scenario, SEED, trial).events
        d = ev[ev.kind == "decision"]
        decided += len(d)
        assert ev.loc[ev.kind != "decision", ["level", "threshold", "chance", "acted"]].isna().all().all()
        assert d[["level", "threshold", "chance", "acted"]].notna().all().all()
        assert (d.level >= d.threshold).all() and d.chance.between(0, 1).all()
        for _, r in d.iterrows():
            rule = rules[(r.actor, r.target)]
            assert r.threshold == rule.threshold  # the baseline's fit draws no threshold
            assert r.chance == pytest.approx(rule.probability * math.prod(1 - a for a in rule.ally_restraint.values()))
            assert bool(r.acted) == ("; acts" in r.detail) and f"at {r.level:.3g} >=" in r.detail
    assert decided > 20


def test_attacks_in_a_surge_are_caused_by_it_in_proportion_to_its_share_of_the_rate():
    """A surge of amplitude A decaying over τ, at day 0, on a base rate μ without excitation:
    the attacks form a Poisson process of rate μ(1 + A·e^(−t/τ)), of which the base's part is
    μT and the surge's μAτ(1 − e^(−T/τ)) in expectation (a thinning of the Poisson process:
    each part is Poisson). Tolerances: 4.5 standard errors."""
    mu, amplitude, tau, horizon, n = 1.0, 2.0, 10.0, 50.0, 300
    s = make_scenario({"shocks": {"s0": {"day": 0.0, "effects": [
        {"type": "surge", "on": ["m"], "amplitude": amplitude, "decay_days": tau}]}}}, horizon_days=horizon)
    spontaneous, surged = [], []
    for trial in range(n):
        ev = trace_trial(s, 5, trial).events
        attacks = ev[ev.kind.isin(["attack", "hit"])]
        shock = int(ev[ev.kind == "shock"].event.iloc[0])
        surge = int(ev[ev.kind == "surge"].event.iloc[0])
        assert ev.set_index("event").loc[surge, "cause"] == shock
        spontaneous.append(attacks.cause.isna().sum())
        surged.append((attacks.cause == surge).sum())
        assert attacks.cause.isna().sum() + (attacks.cause == surge).sum() == len(attacks)
    assert_mean(np.array(spontaneous), mu * horizon)
    assert_mean(np.array(surged), mu * amplitude * tau * (1 - math.exp(-horizon / tau)))


def test_escsim_trace_writes_the_trace_folder(run_folders, tmp_path):
    folder = run_folders[("baseline", 1)]
    out = tmp_path / "trace"
    result = CliRunner().invoke(main, ["trace", str(folder), "--where", "regional_war", "--out", str(out)])
    assert result.exit_code == 0, result.output
    rows = pd.read_parquet(folder / "trials.parquet")
    first = int(rows[rows.t_regional_war.notna()].trial.min())
    assert result.output.startswith(f"baseline: trial {first}, seed {SEED}")
    assert "regional_war" in result.output and f"wrote {out}/ (events.csv" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["events.csv", "events.parquet", "levels.csv", "trace.html"]
    csv, parquet = pd.read_csv(out / "events.csv"), pd.read_parquet(out / "events.parquet")
    assert list(csv.columns) == list(parquet.columns) == ["event", "day", "date", *COLUMNS[2:]]
    assert len(csv) == len(parquet) and (csv.event == parquet.event).all()
    levels = pd.read_csv(out / "levels.csv")
    assert list(levels.columns) == ["day", "date", "event", "owner", "account", "level"] and (levels.level >= 0).all()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    again = CliRunner().invoke(main, ["trace", str(folder), "--trial", str(first), "--out", str(out)])
    assert again.exit_code == 0, again.output  # a trace folder is rewritten, to the same bytes
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_a_scenario_is_traced_with_its_seed_or_another(tmp_path):
    events = sim.trace(SCENARIOS / "baseline.toml", 3)
    assert events.attrs["seed"] == sim.load_scenario(SCENARIOS / "baseline.toml").run.seed
    other = sim.trace(SCENARIOS / "baseline.toml", 3, seed=99)
    assert other.attrs["seed"] == 99 and not events[["day"]].equals(other[["day"]])
    found = sim.trace(SCENARIOS / "iran_lifts_restraint.toml", where="first_us_deaths")
    assert (found.kind == "milestone").any() and "first_us_deaths" in set(found.target)


@pytest.mark.parametrize("args, message", [
    (["--trial", "5", "--where", "regional_war"], "--trial, --where: expected one of them, found both"),
    ([], "--trial, --where: expected one of them, found neither"),
    (["--where", "regional_wars"], "did you mean 'regional_war'?"),
    (["--trial", "40"], "--trial: expected a trial of the run, 0 to 39, found 40"),
    (["--trial", "1", "--seed", "3"], "--seed, --set: expected none with a run folder"),
])
def test_bad_trace_requests_get_one_clear_message(run_folders, args, message):
    folder = run_folders[("baseline", 1)]
    result = CliRunner().invoke(main, ["trace", str(folder), *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output


def test_a_trace_that_would_differ_from_its_run_is_refused(run_folders, tmp_path):
    import shutil

    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    folder = tmp_path / "run"
    shutil.copytree(run_folders[("baseline", 1)], folder)
    rows = pq.read_table(folder / "trials.parquet")  # in arrow, so that NaN (not reached) stays NaN
    i = rows.schema.get_field_index("attacks_on_israel")
    column = rows.column(i)
    changed = pc.if_else(pc.equal(rows.column("trial"), 2), pc.add(column, 1), column)
    pq.write_table(rows.set_column(i, "attacks_on_israel", changed), folder / "trials.parquet")  # as other code's run
    result = CliRunner().invoke(main, ["trace", str(folder), "--trial", "2", "--out", str(tmp_path / "t")])
    assert result.exit_code == 2, result.output
    assert "expected the traced trial to equal the run's, found attacks_on_israel" in result.output
    assert not (tmp_path / "t").exists()


def test_a_trace_folder_is_new_empty_or_a_trace(tmp_path):
    out = tmp_path / "t"
    out.mkdir()
    (out / "notes.txt").write_text("keep")
    result = CliRunner().invoke(main, ["trace", str(SCENARIOS / "baseline.toml"), "--trial", "1", "--out", str(out)])
    assert result.exit_code == 2 and "holds 1 other file(s)" in result.output
    assert (out / "notes.txt").read_text() == "keep" and sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    cut = tmp_path / "cut"  # a trace killed after its first file: the next trace completes it
    cut.mkdir()
    (cut / "events.csv").write_text("partial")
    done = CliRunner().invoke(main, ["trace", str(SCENARIOS / "baseline.toml"), "--trial", "1", "--out", str(cut)])
    assert done.exit_code == 0, done.output
    assert sorted(p.name for p in cut.iterdir()) == ["events.csv", "events.parquet", "levels.csv", "trace.html"]


def test_a_weaker_restraint_merged_into_the_one_in_force_does_not_take_its_redirected_effort():
    """A pause on a front already held back more strongly changes nothing there (the model keeps
    the stronger factor and the later end): the effort moved to the other front is still the
    first restraint's, so its attacks are caused by that restraint, not by the pause."""
    s = make_scenario({
        "actors": {
            "m": {
                "attacks": {
                    "s": {"rate_per_day": 0.2},
                    "t": {"rate_per_day": 2.0, "weapons": {"drone": 1.0},
                          "initial_restraint": {"factor": 0.0, "remaining_days": 80.0}},
                },
                "redirect": {"share": 0.5, "ramp_days": 5.0},
            },
            "t": {"kind": "state"},
        },
        "shocks": {"pause": {"day": 10.0, "effects": [
            {"type": "restrain", "militias": ["m"], "front": "t", "factor": 0.5, "duration_days": 20.0}]}},
    }, horizon_days=60.0)
    redirected = 0
    for trial in range(5):
        ev = trace_trial(s, 7, trial).events.set_index("event")
        start = ev[(ev.kind == "restraint start") & ev.detail.str.contains("in force at the start")].index
        pause = ev[ev.kind == "pause start"]
        assert len(start) == 1 and len(pause) == 1
        assert f"merged into the restraint in force (event {start[0]})" in pause.detail.iloc[0]
        moved = ev[ev.kind.isin(["attack", "hit"]) & ev.detail.str.startswith("redirected effort")]
        assert (moved.cause == start[0]).all(), moved.cause.unique()
        redirected += len(moved[moved.day > 10.0])
        assert "pause end" not in set(ev.kind)  # the merged episode ends as the restraint it joined
    assert redirected > 20  # about 1 a day on s from day 10 to 60, of which most redirected


def test_the_default_trace_folder_is_made_with_its_parent_and_nothing_beside_it(tmp_path):
    """`escsim trace` without --out writes runs/trace-<scenario>-trial<N>, making runs/ if need be,
    and leaves no staging folder beside it."""
    done = subprocess.run([sys.executable, "-m", "sim", "trace", str(SCENARIOS / "baseline.toml"), "--trial", "1"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["trace-baseline-trial1"]
