"""Forecasts from an origin, their state drawn from a history that agrees with what was observed.

Oracles: a forecast started from the state its history left has the law of the unbroken run after
the origin (`sim.model.state` carries everything that matters); conditioning on an event or a
count keeps the histories in which it came out as observed, at the rate theory gives, and sets
the forecast's state accordingly; stopping a history early is exact (the same trials, draw for
draw). Then the shipped forecast end to end: reproducible on any number of workers, traceable,
with clear errors for bad forecasts.
"""

from __future__ import annotations

import copy
import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import sim
from sim.engine import history as history_module
from sim.engine.chunk import simulate_trials
from sim.model.world import tally_layout
from sim.scenario.loading import deep_merge, to_plain, validate
from sim.stats import count_miss
from tests.conftest import MINIMAL, ROOT, SCENARIOS, assert_mean

N = 3000
START = dt.date(2024, 1, 1)
ORIGIN = 60.0  # 1 March 2024: the unbroken run's third month is the forecast's first


def _scenario(override: dict, start: dt.date = START, horizon: float = 91.0) -> dict:
    data = deep_merge(copy.deepcopy(MINIMAL), override)
    data["scenario"].update(start_date=start, horizon_days=horizon)
    return data


def _forecast(unbroken: dict, history_only: tuple[str, ...] = (), horizon: float = 31.0, counts=(), events=(),
              tolerance: float = 1.0, attempts: int = 1000, future: dict | None = None):
    """(history, forecast) scenarios: the history is `unbroken` cut at the origin; the forecast is
    `unbroken` from the origin for `horizon` days, without the shocks only history has, and with
    the changes `future` makes."""
    history = copy.deepcopy(unbroken)
    history["scenario"]["horizon_days"] = ORIGIN
    history["shocks"] = {k: v for k, v in history.get("shocks", {}).items() if v.get("day", 0.0) < ORIGIN}
    history = to_plain(validate(history))
    forecast = copy.deepcopy(unbroken)
    forecast["shocks"] = {k: v for k, v in forecast.get("shocks", {}).items() if k not in history_only}
    forecast = deep_merge(forecast, future or {})
    forecast["scenario"].update(start_date=START + dt.timedelta(days=ORIGIN), horizon_days=horizon)
    forecast["forecast"] = {"observed": "synthetic.toml", "attempts": attempts, "resolved": {
        "targets": "synthetic.toml", "history": history, "origin_day": ORIGIN, "counts": list(counts),
        "events": list(events), "tolerance": tolerance}}
    return validate(forecast)


def _totals(scenario, result, series: str) -> np.ndarray:
    names, _, _ = tally_layout(scenario)
    return result.totals[:, names.index(series)]


def _march(scenario, result, series: str) -> np.ndarray:
    _, monthly, months = tally_layout(scenario)
    return result.monthly[:, monthly.index(series), months.index("2024-03")]


def _same_mean(a: np.ndarray, b: np.ndarray, z: float = 4.5) -> float:
    """How many standard errors apart two independent samples' means are (asserted within z)."""
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    gap = abs(a.mean() - b.mean()) / se
    assert gap <= z, f"means {a.mean():.3f} and {b.mean():.3f} are {gap:.1f} SE apart"
    return gap


# Everything the state carries at once: excitation, a restraint straddling the origin (history
# only: a shock on day 45 holds the front to a fifth for 25 days), a decaying harm account whose
# rule has a cooldown and a delay that straddle it, and the capacity and surges its strikes leave.
CARRIED = _scenario({
    "actors": {
        "m": {"kind": "militia", "axis": True, "capacity_recovery_per_day": 0.05,
              "excitation": {"memory_days": 10.0, "from": {"m": 0.4}}},
        "s": {"harm": {"attacks": {"decay_days": 20.0, "sources": [{"by": ["m"], "per_incident": 1.0, "per_hit": 2.0}]}},
              "rules": {"retaliate": {
                  "harm": "attacks", "threshold": 25.0, "probability": 0.5, "cooldown_days": 15.0, "delay_days": 8.0,
                  "response": [{"type": "strike", "on": "m", "at": "x", "capacity_loss": 0.5},
                               {"type": "surge", "on": ["m"], "amplitude": 1.0, "decay_days": 10.0}]}}},
    },
    "shocks": {"hold": {"day": 45.0, "effects": [
        {"type": "restrain", "militias": ["m"], "front": "s", "factor": 0.2, "duration_days": 25.0, "redirect": False}]}},
    "milestones": {"strike": {"when": {"by": ["s"], "kind": "strike"}}},
    "ladder": ["first_attack", "strike"],
})


def test_a_forecast_from_the_history_s_state_has_the_law_of_the_unbroken_run_after_the_origin():
    unbroken = validate(CARRIED)
    forecast = _forecast(CARRIED, history_only=("hold",))
    whole = simulate_trials(unbroken, 11, 0, N)
    ahead = simulate_trials(forecast, 11, 0, N)
    assert not whole.failures and not ahead.failures
    for series in ("attacks_on_s", "hits_on_s", "strikes_by_s"):
        _same_mean(_march(unbroken, whole, series), _totals(forecast, ahead, series))
    # Not conditioned: every trial's first history agrees.
    assert (ahead.history_attempts == 1).all() and (ahead.redraws == 0).all()
    # The histories reached what the unbroken runs had reached by the origin, as often.
    k = list(unbroken.milestones).index("strike")
    before = np.mean(whole.milestone_days[:, k] < ORIGIN)
    assert abs(np.mean(~np.isnan(ahead.history_days[:, k])) - before) <= 4.5 * math.sqrt(before * (1 - before) / N) * 1.5
    # The test has the power to see a state left behind: the forecast's scenario run from a fresh
    # start (no restraint, no excitation, no harm) is far off.
    fresh = validate({k: v for k, v in to_plain(forecast).items() if k != "forecast"})
    plain = simulate_trials(fresh, 11, 0, N)
    a, b = _march(unbroken, whole, "attacks_on_s"), _totals(fresh, plain, "attacks_on_s")
    assert abs(a.mean() - b.mean()) / math.sqrt(a.var() / N + b.var() / N) > 10


def _struck(observed: bool):
    """A history in which a random raid (0.01 a day) destroys the militia's capacity for good;
    the forecast is told whether it had come by the origin."""
    data = _scenario({
        "actors": {"m": {"capacity_recovery_per_day": 0.0}},
        "shocks": {"raid": {"rate_per_day": 0.01, "effects": [
            {"type": "strike", "by": "s", "on": "m", "at": "x", "capacity_loss": 1.0}]}},
        "milestones": {"struck": {"when": {"by": ["s"], "on": ["m"], "kind": "strike"}}},
        "ladder": ["first_attack", "struck"],
    })
    event = {"name": "raid_seen", "milestone": "struck", "by_day": ORIGIN, "happened": observed}
    return _forecast(data, horizon=30.0, events=[event], future={"shocks": {"raid": {"rate_per_day": 0.0}}})


@pytest.mark.parametrize("observed", [True, False])
def test_conditioning_on_an_event_keeps_the_histories_where_it_came_out_as_observed(observed):
    forecast = _struck(observed)
    n = 2000
    result = simulate_trials(forecast, 5, 0, n)
    p = 1 - math.exp(-0.01 * ORIGIN)  # P(a raid by the origin)
    p = p if observed else 1 - p
    # Attempts per trial are geometric with mean 1/p: trials / attempts estimates p.
    attempts = result.history_attempts.astype(float)
    assert_mean(attempts, 1 / p)
    k = list(forecast.milestones).index("struck")
    assert np.isnan(result.history_days[:, k]).all() != observed
    attacks = _totals(forecast, result, "attacks_on_s")
    if observed:  # the raid destroyed the capacity: the forecast's militia never fires
        assert (attacks == 0).all()
    else:  # untouched: Poisson at rate 1 for 30 days
        assert_mean(attacks, 30.0)


def _counted(tolerance: float):
    data = _scenario({"actors": {"m": {"attacks": {"s": {"rate_per_day": 0.5}}}}})
    counts = [{"name": "first", "series": "attacks_on_s", "start_day": 0.0, "end_day": 30.0, "lo": 14.0, "hi": 16.0},
              {"name": "second", "series": "attacks_on_s", "start_day": 30.0, "end_day": 60.0, "lo": 18.0}]
    return _forecast(data, counts=counts, tolerance=tolerance)


@pytest.mark.parametrize("tolerance", [1e-9, 0.8])
def test_conditioning_on_counts_accepts_histories_at_the_rate_their_miss_allows(tolerance):
    """Two periods of Poisson(15) attacks each, observed as 14-16 and at least 18: a history is kept
    when its root mean square miss is at most the tolerance, whose chance is a sum over the pmfs."""
    forecast = _counted(tolerance)
    pmf = stats.poisson(15.0).pmf(np.arange(80))
    miss1 = np.array([count_miss(k, 14.0, 16.0) for k in range(80)])
    miss2 = np.array([count_miss(k, 18.0, math.inf) for k in range(80)])
    kept = (miss1[:, None] ** 2 + miss2[None, :] ** 2) <= 2 * tolerance ** 2
    p = float((pmf[:, None] * pmf[None, :] * kept).sum())
    result = simulate_trials(forecast, 9, 0, 1500)
    assert_mean(result.history_attempts.astype(float), 1 / p)


def test_stopping_a_history_early_changes_nothing(monkeypatch):
    forecast = _counted(0.8)
    early = simulate_trials(forecast, 3, 0, 300)
    monkeypatch.setattr(history_module.Conditions, "watch", lambda self, world, observer: None)
    full = simulate_trials(forecast, 3, 0, 300)
    for name in ("history_attempts", "redraws", "history_days", "totals", "monthly", "milestone_days"):
        np.testing.assert_array_equal(getattr(early, name), getattr(full, name))


def test_a_parameter_draw_that_finds_no_agreeing_history_draws_again():
    """No history can show a raid that cannot come (rate 0): with one attempt per draw and no
    posterior the trial cannot draw again, and says what to change."""
    data = _scenario({"shocks": {"raid": {"rate_per_day": 0.0, "effects": [{"type": "strike", "by": "s", "on": "m", "at": "x"}]}},
                      "milestones": {"struck": {"when": {"by": ["s"], "on": ["m"], "kind": "strike"}}},
                      "ladder": ["first_attack", "struck"]})
    forecast = _forecast(data, events=[{"name": "raid_seen", "milestone": "struck", "by_day": ORIGIN, "happened": True}],
                         attempts=3)
    result = simulate_trials(forecast, 1, 0, 2)
    assert len(result.failures) == 2 and "forecast.tolerance" in result.failures[0][1]


# --- the shipped forecast ------------------------------------------------------------------

FORECAST = SCENARIOS / "forecast_2024_06.toml"


@pytest.fixture(scope="module")
def forecast_runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("forecast")
    one = sim.run(FORECAST, trials=40, seed=3, workers=1, out=base / "one", progress=False)
    two = sim.run(FORECAST, trials=40, seed=3, workers=2, out=base / "two", progress=False)
    return one, two


def test_the_shipped_forecast_is_the_same_on_one_and_two_workers(forecast_runs):
    one, two = forecast_runs
    for name in ("trials.parquet", "monthly.parquet", "summary.csv", "roots.csv"):
        assert (one.out / name).read_bytes() == (two.out / name).read_bytes(), name


def test_the_shipped_forecast_starts_from_histories_that_agree_with_the_record(forecast_runs):
    one, _ = forecast_runs
    trials = one.trials
    # Observed before 5 June 2024: US strikes in Iraq (Nov 2023), Tower 22's deaths (forced), Iran's
    # attack on Israel (April); no casualties in Israel, no Israeli strike in Iraq, no regional war.
    for m in ("us_strikes_in_iraq", "first_us_deaths", "iran_attacks_israel"):
        assert (trials[f"history_t_{m}"] < 0).all(), m
    for m in ("israel_casualties_from_iraq", "israel_strikes_in_iraq", "regional_war"):
        assert trials[f"history_t_{m}"].isna().all(), m
    assert (trials["history_attempts"] >= 1).all()
    table = one.summary.set_index("metric")
    assert table.loc["forecast_history_simulations", "estimate"] == trials["history_attempts"].sum()
    assert table.loc["forecast_effective_trials", "estimate"] == (trials["parameter_redraws"] == 0).sum()
    assert table.loc["history_p_us_strikes_in_iraq", "estimate"] == 1.0
    # Milestones count from the origin: days within the year after it.
    days = trials.filter(regex="^t_").stack().dropna()
    assert days.between(0, 365).all()
    # The run folder reloads, and its report rebuilds to the same summary.
    from sim.reports.run import rebuild_run_report

    for name in ("report.md", "report.html"):  # the report says what the histories were held to and reached
        text = (one.out / name).read_text(encoding="utf-8")
        assert "Forecast from 2024-06-05: the state at the origin" in text and "Reached before the origin" in text
        assert "no_regional_war" not in text.split("Not conditioned on")[1].split(".")[0]
    before = (one.out / "report.md").read_bytes()
    rebuild_run_report(one.out)
    assert (one.out / "report.md").read_bytes() == before


def test_a_forecast_trial_traces_to_the_run_s_row(forecast_runs):
    one, _ = forecast_runs
    for trial in (0, 7):  # the trace checks its outcome and roots against the run's row
        out = one.out.parent / f"trace{trial}"
        done = _cli("trace", str(one.out), "--trial", str(trial), "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert sorted(p.name for p in out.iterdir()) == ["events.csv", "events.parquet", "levels.csv", "trace.html"]
        assert sorted(p.name for p in one.out.parent.iterdir() if p.name.startswith(".")) == []


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sim", *args], capture_output=True, text=True, cwd=ROOT)


def test_an_origin_outside_the_history_is_an_error_naming_the_forecast(tmp_path):
    done = _cli("run", str(FORECAST), "--trials", "2", "--out", str(tmp_path / "r"), "--set", "scenario.start_date=2023-01-01")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "forecast: expected scenario.start_date (the origin) after the history's start 2023-10-07" in done.stderr
    assert not (tmp_path / "r").exists()


def test_a_missing_targets_file_is_an_error(tmp_path):
    done = _cli("validate", str(FORECAST), "--set", f'forecast.observed="{tmp_path / "none.toml"}"')
    assert done.returncode == 2 and "Traceback" not in done.stderr and "none.toml" in done.stderr


def test_a_scenario_named_as_the_observed_targets_is_one_clear_error():
    done = _cli("validate", str(FORECAST), "--set", f'forecast.observed="{SCENARIOS / "baseline.toml"}"')
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("error:") == 1
    assert "forecast.observed: expected a calibration targets file (with a [fit] table" in done.stderr


def test_too_many_redrawn_trials_are_an_error_saying_what_to_change(tmp_path):
    done = _cli("run", str(FORECAST), "--trials", "30", "--out", str(tmp_path / "r"),
                "--set", "forecast.attempts=50", "--set", "forecast.max_redrawn=0.0")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "forecast.max_redrawn: expected at most 0.0% of the trials to draw their parameters again" in done.stderr
    assert "Raise forecast.attempts (say to 500)" in done.stderr
    assert not (tmp_path / "r" / "manifest.json").exists()


def test_a_child_can_switch_a_forecast_off(tmp_path):
    child = tmp_path / "child.toml"
    child.write_text(f'extends = "{FORECAST}"\n[forecast]\nobserved = ""\n', encoding="utf-8")
    assert sim.load_scenario(child).forecast is None


def test_a_run_folder_s_forecast_moved_by_set_is_resolved_again(forecast_runs):
    """A run folder's scenario.toml carries its resolved history: moving its origin with --set
    must condition on the targets before the new origin, not keep the old ones."""
    one, _ = forecast_runs
    from sim.forecast import resolve_forecast

    moved = resolve_forecast(sim.load_scenario(one.out / "scenario.toml", overrides=["scenario.start_date=2024-03-01"]))
    fresh = resolve_forecast(sim.load_scenario(FORECAST, overrides=["scenario.start_date=2024-03-01"]))
    assert moved.forecast.resolved.origin_day == fresh.forecast.resolved.origin_day == 146.0
    assert [c.name for c in moved.forecast.resolved.counts] == [c.name for c in fresh.forecast.resolved.counts]
    assert moved.forecast.resolved.replaced == ["actors.iri.attacks.us.initial_restraint"]
    same = resolve_forecast(sim.load_scenario(one.out / "scenario.toml"))
    assert same.forecast.resolved == sim.load_scenario(one.out / "scenario.toml").forecast.resolved


def test_a_forecast_cannot_be_the_scenario_a_calibration_fits(tmp_path):
    targets = (ROOT / "calibration" / "history.toml").read_text(encoding="utf-8").replace(
        'scenario = "../scenarios/history_2023_2024.toml"', f'scenario = "{FORECAST}"').replace(
        'facts = "../seeds/facts.csv"', f'facts = "{ROOT / "seeds" / "facts.csv"}"')
    (tmp_path / "t.toml").write_text(targets, encoding="utf-8")
    done = _cli("validate", str(tmp_path / "t.toml"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "fit.scenario: expected a scenario that runs from its own start (a history replay)" in done.stderr


def test_a_sweep_of_a_forecast_reports_what_its_histories_reached(tmp_path):
    spec = tmp_path / "sweep.toml"
    spec.write_text(f'''[sweep]
name = "forecast_pause"
base = "{FORECAST}"
design = "grid"
samples = 2
trials_per_point = 12
seed = 5
outputs = ["p_regional_war", "history_p_us_strikes_in_iraq", "forecast_redrawn"]

[parameters.israel_iraq_threshold]
path = "actors.israel.rules.strike_in_iraq.threshold"
low = 40.0
high = 160.0
why = "a test: applies from the origin; the history keeps the replay's"
''', encoding="utf-8")
    result = sim.sweep(spec, out=tmp_path / "out", workers=1, progress=False)
    points = pd.read_parquet(result.out / "points.parquet")
    reached = points[points.output == "history_p_us_strikes_in_iraq"]["estimate"]
    assert len(reached) == 2 and (reached == 1.0).all()  # every history had them (Nov 2023)
    assert points[points.output == "forecast_redrawn"]["estimate"].between(0, 1).all()


def test_inherited_state_is_rooted_in_the_history(forecast_runs):
    """Roots of a forecast name the history for what it left at the origin (the restrained US
    front's turned fire, the excitation, the surges), never a root a trial cannot name."""
    one, _ = forecast_runs
    roots = pd.read_csv(one.out / "roots.csv")
    assert "the history before the origin" in set(roots["root"])
