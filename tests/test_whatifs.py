"""Each shipped what-if does what its description says: it is run beside the baseline with common
random numbers (trial i draws the same random numbers, and the same posterior particle, in both)
and compared on the quantities its description names. A model change that makes a description
wrong fails here, so the description (and the README's table of scenarios) is updated with it.

Tolerances: 400 paired trials; the claims are checked with margins of several Monte Carlo
standard errors (the paired differences of these scenarios vary far less than the runs do)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sim
from sim.comparison.stats import paired_proportion_difference
from tests.conftest import SCENARIOS

TRIALS, SEED = 400, 20240604


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("whatifs")
    cache: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}

    def get(name: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        if name not in cache:
            result = sim.run(SCENARIOS / f"{name}.toml", trials=TRIALS, seed=SEED, workers=1, out=folder / name,
                             progress=False)
            cache[name] = result.trials, result.monthly
        return cache[name]
    return get


def months(monthly: pd.DataFrame, series: str) -> pd.DataFrame:
    """Counts per trial (rows) and month (columns)."""
    return monthly[monthly.series == series].pivot(index="trial", columns="month", values="count")


def reached(trials: pd.DataFrame, milestone: str) -> np.ndarray:
    return trials[f"t_{milestone}"].notna().to_numpy()


def more_likely(base: pd.DataFrame, what_if: pd.DataFrame, milestone: str) -> float:
    """The paired difference in P(milestone), asserted positive beyond its 95% interval."""
    d = paired_proportion_difference(reached(base, milestone), reached(what_if, milestone))
    assert d.lo > 0, (milestone, d)
    return d.estimate


def test_iran_restrains_militias(runs):
    """"attacks on Israel fall to about a fifth for the six months, then return to the baseline's level"."""
    base, what_if = months(runs("baseline")[1], "attacks_on_israel"), months(runs("iran_restrains_militias")[1],
                                                                            "attacks_on_israel")
    first, later = list(base.columns[:6]), list(base.columns[7:-1])  # 4 Jun - Nov 2024; Jan - May 2025
    during = what_if[first].to_numpy().sum() / base[first].to_numpy().sum()
    after = what_if[later].to_numpy().sum() / base[later].to_numpy().sum()
    assert 0.12 < during < 0.32, during
    assert 0.9 < after < 1.15, after


def test_leader_killed_month2(runs):
    """"a Nasrallah-like solidarity surge lifts the IRI's attacks on Israel by about 40% over July and
    August. Iran counts the loss as its own, but one such loss alone does not bring it to strike Israel"."""
    base_trials, base_monthly = runs("baseline")
    what_trials, what_monthly = runs("leader_killed_month2")
    surge = ["2024-07", "2024-08"]
    rise = (months(what_monthly, "attacks_on_israel")[surge].to_numpy().sum()
            / months(base_monthly, "attacks_on_israel")[surge].to_numpy().sum())
    assert 1.25 < rise < 1.6, rise
    d = paired_proportion_difference(reached(base_trials, "iran_attacks_israel"), reached(what_trials, "iran_attacks_israel"))
    assert abs(d.estimate) < 0.03 and d.lo > -0.05, d


def test_us_leaves_iraq(runs):
    """"The US front ... closes: little effort is left to shift to Israel (attacks on Israel change by
    under 2%), while Israeli strikes inside Iraq become more likely"."""
    base_trials, _ = runs("baseline")
    what_trials, what_monthly = runs("us_leaves_iraq")
    us = months(what_monthly, "attacks_on_us")
    after = [m for m in us.columns if m >= "2024-10"]  # day 90 is 2 September 2024
    assert us[after].to_numpy().sum() == 0
    change = what_trials.attacks_on_israel.sum() / base_trials.attacks_on_israel.sum() - 1
    assert abs(change) < 0.02, change
    more_likely(base_trials, what_trials, "israel_strikes_in_iraq")


def test_israel_lower_threshold(runs):
    """"strikes inside Iraq become more likely and come sooner, though most still follow the first
    casualties in Israel"."""
    base, what_if = runs("baseline")[0], runs("israel_lower_threshold")[0]
    more_likely(base, what_if, "israel_strikes_in_iraq")
    t_base = base.t_israel_strikes_in_iraq.fillna(365.0)
    t_what = what_if.t_israel_strikes_in_iraq.fillna(365.0)
    assert (t_what <= t_base + 1e-9).mean() > 0.9 and t_what.mean() < t_base.mean() - 20

    def before_blood(t: pd.DataFrame) -> float:
        strike, blood = t.t_israel_strikes_in_iraq, t.t_israel_casualties_from_iraq
        return float((strike.notna() & (blood.isna() | (strike < blood))).sum() / max(strike.notna().sum(), 1))
    assert before_blood(base) <= before_blood(what_if) < 0.5


def test_cruise_missiles(runs):
    """"about twice as many launches get through, hits on Israel rise by about 70%, and Israeli
    strikes inside Iraq become more likely"."""
    base, what_if = runs("baseline")[0], runs("cruise_missiles")[0]
    per_attack = (what_if.hits_on_israel.sum() / what_if.attacks_on_israel.sum()) / (
        base.hits_on_israel.sum() / base.attacks_on_israel.sum())
    assert 1.7 < per_attack < 2.3, per_attack
    hits = what_if.hits_on_israel.sum() / base.hits_on_israel.sum()
    assert 1.5 < hits < 1.9, hits
    more_likely(base, what_if, "israel_strikes_in_iraq")


def test_iran_lifts_restraint(runs):
    """"attacks on US forces resume at about their late-2023 rate (1.5 a day) until Iran restrains the
    militias again, US soldiers are very likely killed, and effort moves back from Israel: attacks on
    Israel fall by about half"."""
    base_trials, _ = runs("baseline")
    what_trials, what_monthly = runs("iran_lifts_restraint")
    us = months(what_monthly, "attacks_on_us")
    per_day = us["2024-08"].mean() / 31  # the first whole month after the order lapses on 4 July
    assert 1.2 < per_day < 1.9, per_day
    assert us[[m for m in us.columns if m >= "2025-02" and m != us.columns[-1]]].mean().mean() < 0.6 * us["2024-08"].mean()
    assert reached(what_trials, "first_us_deaths").mean() > 0.8
    more_likely(base_trials, what_trials, "first_us_deaths")
    fall = what_trials.attacks_on_israel.sum() / base_trials.attacks_on_israel.sum()
    assert 0.4 < fall < 0.65, fall


def test_every_shipped_what_if_is_checked_here():
    from tests.test_pathways import WHAT_IFS

    checked = {name.removeprefix("test_") for name in globals() if name.startswith("test_")} | WHAT_IFS
    shipped = {p.stem for p in SCENARIOS.glob("*.toml")} - {"baseline", "history_2023_2024", "forecast_2024_06"}  # the forecast: test_forecast.py
    assert shipped <= checked, shipped - checked
