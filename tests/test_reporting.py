"""The reporting model: counts as claims of launches, in the fit's distance, its predictive files
and report, in scenarios that draw from such a fit, and in a forecast's conditions."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from sim.calibration.abc import IndependentPrior, abc_smc
from sim.calibration.fit import Simulator, weighted_quantile
from sim.calibration.objective import Objective
from sim.calibration.targets import load_targets
from sim.engine.history import Conditions
from sim.engine.chunk import simulate_trials
from sim.model.observation import REPORTING_STREAM, claims
from sim.model.streams import Streams
from sim.runs.executors import InlineExecutor
from sim.scenario.schema import Reporting, Scenario
from sim.stats import count_miss
from tests.conftest import assert_mean
from tests.test_calibration import write_case
from tests.test_forecast import _forecast, _scenario

CLAIMED = """
[reporting.attacks_on_s]
claimed = {claimed}
spurious_per_launch = {per_launch}
spurious_per_day = {per_day}
why = "a test's tracker"
"""

FIT_CLAIMED = """
[parameters.claimed]
path = "reporting.attacks_on_s.claimed"
prior = { dist = "beta", a = 2.0, b = 2.0 }
"""


def _case(folder: Path, counts=None, claimed: float = 1.0, per_launch: float = 0.0, per_day: float = 0.0,
          fitted: str = "") -> Path:
    return write_case(folder, counts, CLAIMED.format(claimed=claimed, per_launch=per_launch, per_day=per_day) + fitted)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True)


# --- the law of claims ---------------------------------------------------------------------


def test_claims_have_the_mean_and_variance_of_a_thinned_count_plus_poisson_spurious_claims():
    """Given 200 launches in 30 days: Binomial(200, 0.6) + Poisson(0.2·200 + 0.5·30), mean 175 and
    variance 200·0.6·0.4 + 40 + 15 = 103."""
    r = Reporting(claimed=0.6, spurious_per_launch=0.2, spurious_per_day=0.5)
    x = np.array([claims(200, 30.0, r, Streams(7, k)(REPORTING_STREAM)) for k in range(20_000)], dtype=float)
    assert_mean(x, 175.0)
    # The sample variance's standard error for a near-normal count: var·√(2/(n−1)).
    assert abs(x.var(ddof=1) - 103.0) <= 4.5 * 103.0 * math.sqrt(2 / (x.size - 1))


def test_the_default_reporting_model_reports_the_launches_and_draws_nothing():
    stream = Streams(1, 0)(REPORTING_STREAM)
    assert [claims(n, 31.0, Reporting(), stream) for n in (0, 5, 80)] == [0, 5, 80]
    assert stream._random is None  # no generator was even created


# --- the fit -------------------------------------------------------------------------------


def test_a_reporting_model_that_reports_every_launch_leaves_every_distance_as_it_was(tmp_path):
    plain = load_targets(write_case(tmp_path / "plain"))
    identity = load_targets(_case(tmp_path / "identity"))
    thetas = np.array([[0.8, 0.3], [1.2, 0.5], [1.0, 0.1]])
    keys = np.arange(3)
    a = Simulator(plain, Objective.build(plain), InlineExecutor(), 10).distances(5, False)(thetas, keys)
    b = Simulator(identity, Objective.build(identity), InlineExecutor(), 10).distances(5, False)(thetas, keys)
    np.testing.assert_array_equal(a, b)


def test_the_fit_compares_claims_and_the_targets_and_months_sum_the_same_claims(tmp_path):
    """With half the launches claimed and 0.4 spurious claims a day, a simulation's claimed months
    are drawn bin by bin, and each target is the sum of its months' claims."""
    targets = load_targets(_case(tmp_path / "c", claimed=0.5, per_day=0.4))
    objective = Objective.build(targets)
    sim = Simulator(targets, objective, InlineExecutor(), 10)
    theta = np.array([[1.0, 0.3]])
    outcome = sim.outcomes(theta, np.array([0]), 11)[0]
    reported = sim.reported(outcome, theta[0], 11, 0)
    months = objective.monthly_values(reported)[0]
    np.testing.assert_array_equal(objective.count_values(reported), months[:4])
    launched = objective.monthly_values(outcome.monthly)[0]
    assert not np.array_equal(months, launched)
    # Over many simulations the claims' mean is half the launches' plus 0.4 a day.
    thetas = np.repeat(theta, 400, axis=0)
    outs = sim.outcomes(thetas, np.arange(400), 3)
    got = np.array([objective.count_values(sim.reported(o, thetas[k], 3, k)) for k, o in enumerate(outs)])
    simulated = np.array([objective.count_values(o.monthly) for o in outs])
    days = np.array([31.0, 29.0, 31.0, 30.0])
    residual = got - (0.5 * simulated + 0.4 * days)  # mean 0 given the launches, variance 0.25·L + 0.4·days
    se = np.sqrt((0.25 * simulated + 0.4 * days).mean(axis=0) / 400)
    assert (np.abs(residual.mean(axis=0)) <= 4.5 * se).all(), (residual.mean(axis=0), se)


def test_abc_recovers_a_claimed_share_from_claims_of_launches_at_a_known_rate(tmp_path):
    """Synthetic claims from the model with half the launches claimed (rate and self-excitation
    fixed at their written values): the 90% credible interval of the claimed share covers the truth
    about as often as it says (binomial bound at the 0.1% level over the datasets)."""
    truth = 0.5
    datasets, covered, widths = 8, 0, []
    for k in range(datasets):
        base = load_targets(_case(tmp_path / f"truth{k}", claimed=truth))
        objective = Objective.build(base)
        sim = Simulator(base, objective, InlineExecutor(), 400)
        theta = np.array([[1.0, 0.4]])
        outcome = sim.outcomes(theta, np.array([k]), 99)[0]
        observed = [int(x) for x in objective.count_values(sim.reported(outcome, theta[0], 99, k))]
        folder = tmp_path / f"d{k}"
        case = _case(folder, observed, fitted=FIT_CLAIMED)
        text = case.read_text(encoding="utf-8")  # fit the claimed share alone
        text = text.replace('[parameters.rate]\npath = "actors.m.attacks.s.rate_per_day"\n'
                            'prior = { dist = "lognormal", median = 1.0, sigma = 0.7 }\n', "")
        text = text.replace('[parameters.alpha]\npath = "actors.m.excitation.from.m"\n'
                            'prior = { dist = "beta", a = 2.0, b = 3.0 }\n', "")
        case.write_text(text, encoding="utf-8")
        targets = load_targets(case)
        assert targets.parameter_names == ["claimed"] and targets.world_paths == ()
        sim_k = Simulator(targets, Objective.build(targets), InlineExecutor(), 400)
        history = abc_smc(IndependentPrior(targets.priors()), sim_k.distances(1000 + k, split=False),
                          particles=200, generations=5, seed=k, batch=400)
        last = history[-1]
        lo = weighted_quantile(last.particles[:, 0], last.weights, 0.05)
        hi = weighted_quantile(last.particles[:, 0], last.weights, 0.95)
        covered += lo <= truth <= hi
        widths.append(hi - lo)
    assert covered >= stats.binom(datasets, 0.9).ppf(0.001), covered
    # And the claims inform it: the prior's 90% interval is 0.14 - 0.86 (a fit that compared launches
    # with the claims would learn nothing and keep it).
    assert np.mean(widths) < 0.4, widths


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> Path:
    """A small fit whose counts are claims, the claimed share fitted."""
    base = tmp_path_factory.mktemp("reporting")
    case = _case(base / "case", claimed=0.5, per_day=0.2, fitted=FIT_CLAIMED)
    done = _cli("calibrate", str(case), "--budget", "small", "--seed", "5", "--workers", "1", "--out", str(base / "fit"))
    assert done.returncode == 0, done.stderr
    return base


def test_the_fit_gives_the_predictive_of_claims_and_of_launches(fitted):
    out = fitted / "fit"
    monthly = pd.read_csv(out / "predictive_monthly.csv")
    assert set(monthly.measure) == {"reported", "simulated"}
    reported = monthly[monthly.measure == "reported"].set_index("month")
    simulated = monthly[monthly.measure == "simulated"].set_index("month")
    assert reported.observed_lo.notna().all() and simulated.observed_lo.isna().all()
    post = pd.read_parquet(out / "posterior.parquet")
    q = float(post.claimed @ post.weight)
    days = pd.Series([31.0, 29.0, 31.0, 30.0], index=reported.index)
    # Claims' mean = E[claimed · launches] + 0.2 a day, near E[claimed]·E[launches] (they correlate:
    # a loose tolerance), and far from the launches themselves.
    expected = q * simulated["mean"] + 0.2 * days
    assert ((reported["mean"] - expected).abs() <= 0.25 * expected).all(), (reported["mean"], expected)
    assert (simulated["mean"] > 1.3 * reported["mean"]).all()
    targets = pd.read_csv(out / "predictive_targets.csv").set_index("target")
    np.testing.assert_allclose(targets.loc[[f"month{k}" for k in range(4)], "simulated_mean"], simulated["mean"])
    np.testing.assert_allclose(targets.loc[[f"month{k}" for k in range(4)], "mean"], reported["mean"])
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Reporting model" in report and "fitted (claimed)" in report and "a test's tracker" in report
    fit = (out / "fit.toml").read_text(encoding="utf-8")
    assert 'path = "reporting.attacks_on_s.claimed"' in fit


def test_a_fit_made_before_reporting_models_reads_as_reporting_what_it_simulated(fitted, tmp_path):
    import shutil

    out = tmp_path / "old"
    shutil.copytree(fitted / "fit", out)
    targets_file = fitted / "case" / "targets.toml"
    monthly = pd.read_csv(out / "predictive_monthly.csv")
    monthly[monthly.measure == "reported"].drop(columns="measure").to_csv(out / "predictive_monthly.csv", index=False)
    table = pd.read_csv(out / "predictive_targets.csv")
    table.drop(columns=[c for c in table.columns if c.startswith("simulated_")]).to_csv(
        out / "predictive_targets.csv", index=False)
    from sim.reports.fit import write_fit_report

    write_fit_report(out, load_targets(targets_file))
    report = (out / "report.md").read_text(encoding="utf-8")
    assert "## Reporting model" in report  # the targets have one; the old fit's simulated predictive is not recorded


def test_a_scenario_drawing_from_the_fit_sets_nothing_with_the_reporting_parameter(fitted):
    scenario = fitted / "case" / "run.toml"
    scenario.write_text('extends = "scenario.toml"\n[parameters]\nfrom_calibration = "../fit"\n', encoding="utf-8")
    from sim.scenario import load_scenario

    loaded = load_scenario(scenario)
    posterior = loaded.parameters.posterior
    assert posterior.parameters == ["rate", "alpha", "claimed"]
    assert posterior.paths == [["actors.m.attacks.s.rate_per_day"], ["actors.m.excitation.from.m"], []]
    shown = _cli("validate", str(scenario))
    assert shown.returncode == 0 and "The fit's claimed set nothing here" in shown.stdout


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("extra, where, words", [
    ('[reporting.attacks_on_t]\nclaimed = 0.5\n', "reporting.attacks_on_t", "did you mean 'attacks_on_s'"),
    ('[reporting.hits_on_s]\nclaimed = 0.5\n', "reporting.hits_on_s", "which no count uses"),
    ('[reporting.attacks_on_s]\nclaimed = 1.5\n', "reporting.attacks_on_s.claimed", "expected a number ≤ 1.0, found 1.5"),
    ('[reporting.attacks_on_s]\nclaimd = 0.5\n', "reporting.attacks_on_s.claimd", "claimed"),
    ('[parameters.q]\npath = "reporting.attacks_on_s.claimed"\nprior = { dist = "beta", a = 2.0, b = 2.0 }\n',
     "parameters.q.path", "with a [reporting.<series>] table (none)"),
    ('[reporting.attacks_on_s]\n[parameters.q]\npath = "reporting.attacks_on_s.claimd"\n'
     'prior = { dist = "beta", a = 2.0, b = 2.0 }\n', "parameters.q.path", "did you mean 'claimed'"),
    ('[reporting.attacks_on_s]\n[parameters.q]\npath = "reporting.attacks_on_s.claimed"\n'
     'prior = { dist = "uniform", low = 0.2, high = 1.4 }\n', "parameters.q.prior", "expected a prior on 0 - 1"),
])
def test_a_bad_reporting_model_is_one_message_naming_its_key(tmp_path, extra, where, words):
    case = write_case(tmp_path / "bad", extra="\n" + extra)
    done = _cli("validate", str(case))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"{case}: {where}" in done.stderr and words in done.stderr, done.stderr


# --- a forecast's conditions ---------------------------------------------------------------


def _claimed_forecast(tolerance: float, reporting: dict):
    data = _scenario({"actors": {"m": {"attacks": {"s": {"rate_per_day": 0.5}}}}})
    counts = [{"name": "first", "series": "attacks_on_s", "start_day": 0.0, "end_day": 30.0, "lo": 9.0, "hi": 11.0},
              {"name": "second", "series": "attacks_on_s", "start_day": 30.0, "end_day": 60.0, "lo": 12.0}]
    forecast = _forecast(data, counts=counts, tolerance=tolerance)
    resolved = forecast.forecast.resolved.model_copy(update={"reporting": {"attacks_on_s": Reporting(**reporting)}})
    return forecast.model_copy(update={"forecast": forecast.forecast.model_copy(update={"resolved": resolved})})


@pytest.mark.parametrize("tolerance", [1e-9, 0.8])
def test_a_forecast_conditions_on_claims_drawn_from_its_histories_launches(tolerance):
    """Poisson(15) launches a period, each claimed with probability 0.5, and 0.1 spurious claims a
    day: claims are Poisson(7.5 + 3) = Poisson(10.5), observed as 9-11 and at least 12; a history is
    kept at the rate a sum over those pmfs gives (as launches, Poisson(15), it would be another)."""
    forecast = _claimed_forecast(tolerance, {"claimed": 0.5, "spurious_per_day": 0.1})
    pmf = stats.poisson(10.5).pmf(np.arange(80))
    miss1 = np.array([count_miss(k, 9.0, 11.0) for k in range(80)])
    miss2 = np.array([count_miss(k, 12.0, math.inf) for k in range(80)])
    p = float((pmf[:, None] * pmf[None, :] * ((miss1[:, None] ** 2 + miss2[None, :] ** 2) <= 2 * tolerance ** 2)).sum())
    result = simulate_trials(forecast, 9, 0, 1500)
    assert_mean(result.history_attempts.astype(float), 1 / p)


def test_stopping_a_claimed_history_early_changes_nothing(monkeypatch):
    from sim.engine import history as history_module

    forecast = _claimed_forecast(0.8, {"claimed": 0.5, "spurious_per_launch": 0.3})
    early = simulate_trials(forecast, 3, 0, 300)
    monkeypatch.setattr(history_module.Conditions, "watch", lambda self, world, observer: None)
    full = simulate_trials(forecast, 3, 0, 300)
    for name in ("history_attempts", "redraws", "history_days", "totals", "monthly", "milestone_days"):
        np.testing.assert_array_equal(getattr(early, name), getattr(full, name))


def test_each_particle_sets_the_fitted_fields_of_the_history_s_reporting_model():
    forecast = _claimed_forecast(0.8, {"claimed": 0.5, "spurious_per_day": 0.1})
    resolved = forecast.forecast.resolved.model_copy(update={"reporting_parameters": {"q": "attacks_on_s.claimed"}})
    conditions = Conditions(resolved, Scenario.model_validate(resolved.history))
    got = conditions.reporting_of(["rate", "q"], [2.0, 0.25])
    assert got["attacks_on_s"].claimed == 0.25 and got["attacks_on_s"].spurious_per_day == 0.1
    assert conditions.reporting_of(["rate", "q"], [2.0, 1.0]) == {  # still spurious claims: not the identity
        "attacks_on_s": Reporting(claimed=1.0, spurious_per_day=0.1, why="")}
