"""Calibration: targets files, the objective, recovery of known parameters, the fit folder, and
scenarios that draw their parameters from a fit."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

import sim
from sim.calibration.abc import IndependentPrior, abc_smc
from sim.calibration.fit import Simulator, weighted_quantile
from sim.calibration.objective import Objective, anscombe
from sim.calibration.targets import load_targets
from sim.cli import main
from sim.runs.executors import InlineExecutor
from tests.conftest import ROOT

SCENARIO = """
ladder = ["first_attack"]

[scenario]
name = "synthetic"
start_date = 2024-01-01
horizon_days = 121

[weapons.drone]
p_hit = 0.0

[actors.m]
kind = "militia"
excitation = { memory_days = 7.0, from = { m = 0.4 } }
attacks.s = { rate_per_day = 1.0, weapons = { drone = 1.0 } }

[actors.s]
kind = "state"

[milestones.first_attack]
when = { by = ["m"], on = ["s"] }
"""

FACTS = "id,start,end,actor,event,value,lo,hi,unit,observation,source,quote\nS1,2024-01-01,,m,synthetic,,,,,exact,test,test\n"


def write_case(folder: Path, counts: list[int] | None = None, extra: str = "") -> Path:
    """A synthetic scenario, facts and targets: monthly counts of attacks, base rate and
    self-excitation fitted."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.toml").write_text(textwrap.dedent(SCENARIO).strip() + "\n", encoding="utf-8")
    (folder / "facts.csv").write_text(FACTS, encoding="utf-8")
    months = [("2024-01-01", "2024-01-31"), ("2024-02-01", "2024-02-29"), ("2024-03-01", "2024-03-31"), ("2024-04-01", "2024-04-30")]
    counts = counts if counts is not None else [40, 40, 40, 40]
    body = [
        '[fit]\nname = "synthetic"\nscenario = "scenario.toml"\nfacts = "facts.csv"\nfit_until = 2024-02-29\n',
        '[parameters.rate]\npath = "actors.m.attacks.s.rate_per_day"\nprior = { dist = "lognormal", median = 1.0, sigma = 0.7 }\n',
        '[parameters.alpha]\npath = "actors.m.excitation.from.m"\nprior = { dist = "beta", a = 2.0, b = 3.0 }\n',
    ]
    for k, ((a, b), c) in enumerate(zip(months, counts, strict=True)):
        body.append(f'[counts.month{k}]\nseries = "attacks_on_s"\nstart = {a}\nend = {b}\nobservation = "exact"\nvalue = {c}\nfacts = ["S1"]\n')
    (folder / "targets.toml").write_text("\n".join(body) + extra, encoding="utf-8")
    return folder / "targets.toml"


def test_history_targets_load_and_every_target_maps_to_bins():
    targets = load_targets(ROOT / "calibration" / "history.toml")
    objective = Objective.build(targets)
    assert len(objective.counts) == len(targets.spec.counts) and len(objective.events) == len(targets.spec.events)
    edges = [0.0, *objective.edges, targets.scenario.scenario.horizon_days]
    for spec in objective.counts:  # bins tile each period exactly
        assert edges[spec.first_bin] == spec.start_day and edges[spec.last_bin + 1] == spec.end_day
    assert len(objective.month_labels) == 15 and objective.month_labels[0] == "2023-10"
    # Every target cites facts that exist.
    for c in targets.spec.counts.values():
        assert all(f in targets.facts for f in c.facts)


def test_distance_is_zero_inside_the_observed_range_and_grows_outside(tmp_path):
    targets = load_targets(write_case(tmp_path))
    o = Objective.build(targets)
    assert o.distance(np.array([40.0, 40.0, 40.0, 40.0]), np.array([])) == 0.0
    d = o.distance(np.array([40.0, 40.0, 40.0, 60.0]), np.array([]))
    assert d == pytest.approx(math.sqrt(((anscombe(60) - anscombe(40)) ** 2) / 4))
    # The split uses only the months up to fit_until.
    assert o.distance(np.array([40.0, 40.0, 90.0, 90.0]), np.array([]), split=True) == 0.0


def test_abc_recovers_the_models_own_parameters(tmp_path):
    """Synthetic counts from known parameters; the 90% credible intervals must cover the truth
    about as often as they claim (binomial bound at the 0.1% level over the datasets)."""
    truth = {"rate": 1.0, "alpha": 0.4}
    datasets, covered = 12, {"rate": 0, "alpha": 0}
    case = write_case(tmp_path / "case")
    targets = load_targets(case)
    objective = Objective.build(targets)
    simulator = Simulator(targets, objective, InlineExecutor(), batch=400)
    truth_theta = np.array([[truth["rate"], truth["alpha"]]])
    for k in range(datasets):
        observed = objective.count_values(simulator.outcomes(truth_theta, np.array([k]), seed=99)[0].monthly)
        targets_k = load_targets(write_case(tmp_path / f"d{k}", [int(x) for x in observed]))
        sim_k = Simulator(targets_k, Objective.build(targets_k), InlineExecutor(), batch=400)
        history = abc_smc(IndependentPrior(targets_k.priors()), sim_k.distances(1000 + k, split=False),
                          particles=200, generations=5, seed=k, batch=400)
        last = history[-1]
        for j, name in enumerate(("rate", "alpha")):
            lo = weighted_quantile(last.particles[:, j], last.weights, 0.05)
            hi = weighted_quantile(last.particles[:, j], last.weights, 0.95)
            covered[name] += lo <= truth[name] <= hi
    least = stats.binom.ppf(0.001, datasets, 0.9)
    assert covered["rate"] >= least and covered["alpha"] >= least, covered


def test_calibrate_writes_the_fit_folder(tmp_path):
    case = write_case(tmp_path / "case")
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["calibrate", str(case), "--budget", "small", "--seed", "3", "--workers", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == sorted([
        "posterior.parquet", "generations.csv", "predictive_monthly.csv", "predictive_targets.csv",
        "scores.csv", "fit.toml", "report.html", "report.md", "parameters.csv"])
    post = pd.read_parquet(out / "posterior.parquet")
    assert list(post.columns) == ["rate", "alpha", "weight", "distance"] and abs(post.weight.sum() - 1) < 1e-9
    monthly = pd.read_csv(out / "predictive_monthly.csv")
    assert list(monthly.columns) == ["month", "series", "mean", "q05", "q25", "q50", "q75", "q95", "observed_lo", "observed_hi", "measure"]
    assert list(monthly.month.unique()) == ["2024-01", "2024-02", "2024-03", "2024-04"]
    assert monthly.observed_lo.notna().sum() == 4  # one whole-month target per month
    gens = pd.read_csv(out / "generations.csv")
    assert {"epsilon", "acceptance", "ess", "simulations"} <= set(gens.columns) and set(gens.fit) == {"full", "split"}
    scores = pd.read_csv(out / "scores.csv")
    assert set(scores.forecaster) == {"model", "persistence", "poisson_mean"}
    assert set(scores.target) == {"month2", "month3"}  # held out after fit_until
    assert "posterior predictive" in (out / "report.html").read_text()
    again = CliRunner().invoke(main, ["calibrate", str(case), "--budget", "small", "--seed", "3", "--workers", "1", "--out", str(out)])
    assert again.exit_code == 2 and "--replace" in again.output


def test_a_fit_is_reproducible_whatever_the_workers(tmp_path):
    from sim.calibration.fit import calibrate

    case = write_case(tmp_path / "case")
    one = calibrate(case, budget="small", seed=5, workers=1, out=tmp_path / "one", progress=False)
    two = calibrate(case, budget="small", seed=5, workers=2, out=tmp_path / "two", progress=False)
    pd.testing.assert_frame_equal(one.posterior, two.posterior)
    assert (tmp_path / "one" / "predictive_monthly.csv").read_bytes() == (tmp_path / "two" / "predictive_monthly.csv").read_bytes()


@pytest.mark.parametrize(("extra", "edit", "expected"), [
    ('[counts.bad]\nseries = "attacks_on_nowhere"\nstart = 2024-01-01\nend = 2024-01-02\nobservation = "exact"\nvalue = 1\nfacts = ["S1"]\n',
     None, ("counts.bad.series", "expected a series", "found 'attacks_on_nowhere'")),
    ('[counts.overlap]\nseries = "attacks_on_s"\nstart = 2024-01-15\nend = 2024-02-10\nobservation = "exact"\nvalue = 1\nfacts = ["S1"]\n',
     None, ("expected periods of attacks_on_s that do not overlap", "counts.month")),
    ('[counts.bad]\nseries = "attacks_on_s"\nstart = 2024-05-01\nend = 2024-05-02\nobservation = "interval"\nlo = 9\nhi = 3\nfacts = ["S1"]\n',
     None, ("counts.bad", "expected lo ≤ hi, found lo 9 above hi 3")),
    ('[events.bad]\nmilestone = "peace"\nobservation = "happened_by"\ndate = 2024-02-01\nfacts = ["S1"]\n',
     None, ("events.bad.milestone", "found 'peace'")),
    ('[counts.bad]\nseries = "attacks_on_s"\nstart = 2024-05-01\nend = 2024-06-30\nobservation = "exact"\nvalue = 1\nfacts = ["S1"]\n',
     None, ("counts.bad", "expected a period within")),
    ('[counts.bad]\nseries = "attacks_on_s"\nstart = 2024-05-01\nend = 2024-05-02\nobservation = "exact"\nvalue = 1\nfacts = ["X9"]\n',
     None, ("counts.bad.facts[0]", "found 'X9'")),
    ("", ('path = "actors.m.excitation.from.m"', 'path = "actors.m.excitation.form.m"'),
     ("parameters.alpha.path", "expected a key 'form'")),
    ("", ('prior = { dist = "beta", a = 2.0, b = 3.0 }', 'prior = { dist = "beta", a = -2.0, b = 3.0 }'),
     ("parameters.alpha.prior.a", "expected a number > 0")),
    ('[counts.bad]\nseries = "attacks_on_s"\nstart = 2024-05-01\nend = 2024-05-02\nobservation = "exact"\nvalue = 1\nlo = 0\nfacts = ["S1"]\n',
     None, ("counts.bad", "expected an exact count to give value")),
])
def test_bad_targets_get_one_clear_message(tmp_path, extra, edit, expected):
    case = write_case(tmp_path / "case", extra=extra)
    if edit:
        case.write_text(case.read_text().replace(*edit))
    out = tmp_path / "fit"
    result = CliRunner().invoke(main, ["calibrate", str(case), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and not out.exists()
    assert str(case) in result.output
    for piece in expected:
        assert piece in result.output


def test_scenarios_draw_their_parameters_from_a_fit(tmp_path):
    from sim.calibration.fit import calibrate

    case = write_case(tmp_path / "case")
    calibrate(case, budget="small", seed=5, workers=1, out=tmp_path / "fit", progress=False)
    (tmp_path / "use.toml").write_text(
        'extends = "case/scenario.toml"\n[scenario]\nname = "use"\n[parameters]\nfrom_calibration = "fit"\n', encoding="utf-8")
    scenario = sim.load_scenario(tmp_path / "use.toml")
    posterior = scenario.parameters.posterior
    assert posterior.parameters == ["rate", "alpha"] and len(posterior.values) == 200
    result = sim.run(scenario, trials=200, seed=1, workers=1, out=tmp_path / "run", progress=False)
    trials = result.trials
    assert trials.particle.between(0, 199).all() and trials.particle.nunique() > 50
    # The resolved scenario carries the draws, so it reproduces the run on its own.
    again = sim.run(result.out / "scenario.toml", trials=200, seed=1, workers=1, out=tmp_path / "again", progress=False)
    assert (again.out / "trials.parquet").read_bytes() == (result.out / "trials.parquet").read_bytes()
    # Counts follow the particles: trials with a higher fitted rate attack more, on average.
    post = pd.read_parquet(tmp_path / "fit" / "posterior.parquet")
    rate = post.rate.to_numpy()[trials.particle.to_numpy()]
    assert stats.pearsonr(rate, trials.attacks_on_s, alternative="greater").pvalue < 1e-3


def test_a_fit_parameter_can_be_applied_elsewhere_and_bad_ones_are_refused(tmp_path):
    from sim.calibration.fit import calibrate

    case = write_case(tmp_path / "case")
    calibrate(case, budget="small", seed=5, workers=1, out=tmp_path / "fit", progress=False)
    bad = tmp_path / "bad.toml"
    bad.write_text('extends = "case/scenario.toml"\n[scenario]\nname = "bad"\n[parameters]\nfrom_calibration = "fit"\n'
                   'apply = { gamma = ["actors.m.attacks.s.rate_per_day"] }\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(bad)])
    assert result.exit_code == 2 and "parameters.apply.gamma" in result.output and "found 'gamma'" in result.output
    missing = tmp_path / "missing.toml"
    missing.write_text('extends = "case/scenario.toml"\n[scenario]\nname = "m"\n[parameters]\nfrom_calibration = "nofit"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(missing)])
    assert result.exit_code == 2 and "parameters.from_calibration" in result.output and "expected a fit folder" in result.output
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('extends = "case/scenario.toml"\n[scenario]\nname = "e"\n[parameters]\nfrom_calibration = "fit"\n'
                         'apply = { alpha = ["actors.m.excitation.from.x"] }\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(elsewhere)])
    assert result.exit_code == 2 and "parameters.posterior.paths[1]" in result.output


def test_a_fit_folder_is_resumed_replaced_or_refused_as_asked(tmp_path):
    from sim.runs.storage import write_json

    case = write_case(tmp_path / "case")
    args = ["calibrate", str(case), "--budget", "small", "--seed", "3", "--workers", "1"]
    out = tmp_path / "fit"
    first = CliRunner().invoke(main, [*args, "--out", str(out)])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(main, [*args, "--out", str(out), "--resume"])  # finished: read back as it is
    assert again.exit_code == 0 and again.output == first.output
    other = CliRunner().invoke(main, [*args[:-4], "--seed", "9", "--out", str(out), "--resume"])
    assert other.exit_code == 2 and "another targets file, budget or seed (seed 3 there but 9 here)" in other.output
    both = CliRunner().invoke(main, [*args, "--out", str(out), "--resume", "--replace"])
    assert both.exit_code == 2 and "expected one of them, found both" in both.output

    unfinished = tmp_path / "unfinished"
    write_json(unfinished / ".chunks" / "plan.json", {"targets_hash": "0" * 16, "budget": "small", "seed": 3})
    plain = CliRunner().invoke(main, [*args, "--out", str(unfinished)])
    assert plain.exit_code == 2 and "holds an unfinished fit; add --resume to complete it, or --replace" in plain.output
    mismatch = CliRunner().invoke(main, [*args, "--out", str(unfinished), "--resume"])
    assert mismatch.exit_code == 2 and "targets_hash 0000000000000000 there" in mismatch.output
    replaced = CliRunner().invoke(main, [*args, "--out", str(unfinished), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    assert (unfinished / "posterior.parquet").read_bytes() == (out / "posterior.parquet").read_bytes()
    assert not (unfinished / ".chunks").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("keep me")
    refused = CliRunner().invoke(main, [*args, "--out", str(elsewhere), "--replace"])
    assert refused.exit_code == 2 and "expected a new or empty folder" in refused.output
    assert (elsewhere / "notes.txt").read_text() == "keep me"
