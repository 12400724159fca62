"""The links from the Iraqi front to the state-on-state rungs (docs/model.md 7.17), and the what-ifs
that ask about them: each new rung can be reached, a pathway's rule acts as its threshold and
chance say, and the links are not structurally zero (a forced Israeli strike in Iraq moves a
state-on-state rung beyond its paired 95% interval). Each what-if's description is checked on
paired trials (common random numbers, one posterior particle per trial in both arms)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import sim
from sim.comparison.stats import paired_proportion_difference
from tests.conftest import SCENARIOS

TRIALS, SEED = 1000, 20240604
# The what-ifs whose descriptions the tests below check (test_whatifs checks the others).
WHAT_IFS = {"israel_strikes_iraq_day60", "us_strikes_irgc_in_iraq", "mass_casualty_day30", "militias_announce_pause"}
STATE_ON_STATE = ["iran_attacks_israel", "israel_strikes_iran", "iran_attacks_us", "us_strikes_iran", "regional_war"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pathways")
    cache: dict[str, pd.DataFrame] = {}

    def get(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = sim.run(SCENARIOS / f"{name}.toml", trials=TRIALS, seed=SEED, workers=1, out=folder / name,
                                  progress=False).trials
        return cache[name]
    return get


def reached(trials: pd.DataFrame, milestone: str) -> np.ndarray:
    return trials[f"t_{milestone}"].notna().to_numpy()


def difference(runs, what_if: str, milestone: str):
    return paired_proportion_difference(reached(runs("baseline"), milestone), reached(runs(what_if), milestone))


def test_a_forced_israeli_strike_in_iraq_moves_the_state_on_state_rungs(runs):
    """"It adds to Iran's own losses, so Iran attacks Israel, and Israel strikes Iran, somewhat more
    often": the link from the Iraqi front upwards is weak, not zero."""
    moved = {m: difference(runs, "israel_strikes_iraq_day60", m) for m in STATE_ON_STATE}
    assert moved["iran_attacks_israel"].lo > 0 and moved["israel_strikes_iran"].lo > 0, moved
    assert moved["iran_attacks_israel"].estimate < 0.15, moved  # "somewhat"
    assert reached(runs("israel_strikes_iraq_day60"), "israel_strikes_in_iraq").all()


def test_iran_answers_a_us_strike_on_its_people_as_its_rule_says(runs):
    """The US strike of day 30 deposits at least 20 in Iran's from_us account, its rule's threshold:
    Iran decides at once and acts with probability 0.5, after its 5-day delay; the US answers
    Iran's attack on Iran in some of those trials ("Iran attacks US forces directly in about half of
    the trials, and the US strikes Iran in reply in some of those; a regional war becomes more likely")."""
    t = runs("us_strikes_irgc_in_iraq")
    hit_back = reached(t, "iran_attacks_us")
    assert abs(hit_back.mean() - 0.5) <= 4.5 * math.sqrt(0.25 / TRIALS) + 0.01, hit_back.mean()
    days = t["t_iran_attacks_us"].to_numpy()[hit_back]
    assert np.median(days) == pytest.approx(35.0) and (days >= 35.0).mean() > 0.98
    assert reached(t, "us_strikes_iran").all()  # the day-30 strike is one
    replies = t["strikes_by_us"].to_numpy() - runs("baseline")["strikes_by_us"].to_numpy()
    assert (replies[hit_back] >= 2).mean() > 0.2  # the forced strike, and a reply on Iran
    assert (replies[~hit_back] >= 2).mean() < 0.05
    assert difference(runs, "us_strikes_irgc_in_iraq", "regional_war").lo > 0


def test_every_new_rung_is_reached_in_the_baseline(runs):
    """Rare, not impossible: each state-on-state rung is reached in some baseline trials."""
    base = runs("baseline")
    for m in STATE_ON_STATE + ["us_iran_exchange"]:
        assert reached(base, m).any(), m


def test_a_mass_casualty_hit_pulls_israel_into_iraq_and_towards_iran(runs):
    """"Israeli strikes inside Iraq become far more likely, and soon; Israel strikes Iran more often too"."""
    in_iraq = difference(runs, "mass_casualty_day30", "israel_strikes_in_iraq")
    assert in_iraq.estimate > 0.08 and in_iraq.lo > 0, in_iraq
    what_if = runs("mass_casualty_day30")
    assert what_if["t_israel_strikes_in_iraq"].median() < runs("baseline")["t_israel_strikes_in_iraq"].median() - 30
    assert difference(runs, "mass_casualty_day30", "israel_strikes_iran").lo > 0
    assert reached(what_if, "israel_casualties_from_iraq").all()


def test_an_announced_pause_lowers_attacks_and_blood(runs):
    """"Attacks on Israel fall by about a sixth over the year, blood drawn in Israel within 90 days
    becomes less likely, and the Israeli strikes that answer it with it"."""
    base, what_if = runs("baseline"), runs("militias_announce_pause")
    ratio = what_if["attacks_on_israel"].sum() / base["attacks_on_israel"].sum()
    assert 0.75 < ratio < 0.92, ratio
    early = lambda t: (t["t_israel_casualties_from_iraq"] < 90).to_numpy()  # noqa: E731
    d = paired_proportion_difference(early(base), early(what_if))
    assert d.hi < 0, d
    assert difference(runs, "militias_announce_pause", "israel_strikes_in_iraq").hi < 0


def test_the_replay_pauses_about_as_often_as_the_record():
    """The record of Oct 2023 - Dec 2024 has two or three lulls, the Gaza truce included (D05, D17,
    R17); the truce is scheduled in the replay, so its random `militias_pause` must come about one
    to three times in 15 months. The first form of the pause's pressure (on Iran's war_risk) gave 18
    a replay: this is the check it failed. Tolerance: 300 replays at the written values put the
    mean within ±0.3 of its expectation (a Poisson-like count of mean ~3)."""
    from sim.model.streams import Streams
    from sim.model.world import Blueprint, World

    scenario = sim.load_scenario(SCENARIOS / "history_2023_2024.toml")
    blueprint = Blueprint(scenario)
    pauses = []
    for trial in range(300):
        world = World(blueprint, 20231007, trial, Streams(20231007, trial))
        world.run()
        pauses.append(next(s.happened for s in world.shocks if s.name == "militias_pause"))
    assert 1.0 <= np.mean(pauses) <= 4.0, np.mean(pauses)
    assert np.median(pauses) <= 4
