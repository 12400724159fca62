"""Unit tests of each rule of the model, on small worlds stepped by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import simpy

from sim.model.harm import HarmAccount, RetaliationRule
from sim.model.milestones import MilestoneTracker, max_rung
from sim.model.streams import Stream, Streams, stream_key
from sim.model.tally import month_edges
from sim.model.world import World, matches
from sim.scenario.schema import IncidentFilter, Milestone
from tests.conftest import SCENARIOS, make_scenario


class Recorder:
    """A stand-in world for rules: records what is scheduled."""

    tracer = None  # an untraced trial

    def __init__(self):
        self.scheduled = []

    def after(self, delay, fn, *args):
        self.scheduled.append((delay, fn))


class AlwaysStream:
    def __init__(self, u: float):
        self.u = u

    def uniform(self):
        return self.u


# --- harm accounts -----------------------------------------------------------------------


def test_decaying_harm_forgets_exponentially():
    acc = HarmAccount("h", decay_days=10.0, window_days=None)
    acc.deposit(0.0, 5.0)
    acc.deposit(10.0, 1.0)
    assert acc.value == pytest.approx(5.0 * math.exp(-1) + 1.0)
    assert acc.level(20.0) == pytest.approx((5.0 * math.exp(-1) + 1.0) * math.exp(-1))


def test_windowed_harm_counts_only_the_last_window():
    acc = HarmAccount("h", decay_days=None, window_days=7.0)
    for day in (0.0, 3.0, 6.0, 7.5):
        acc.deposit(day, 1.0)
    assert acc.value == 3.0  # day 0 fell out at day 7.5
    assert acc.level(13.5) == 1.0


def test_cumulative_harm_never_forgets():
    acc = HarmAccount("h", None, None)
    for day in range(10):
        acc.deposit(float(day * 100), 2.0)
    assert acc.level(1e6) == 20.0


def _rule(acc, *, threshold=3.0, probability=1.0, ally=(), cooldown=0.0, discharge=0.0, u=0.0):
    world = Recorder()
    rule = RetaliationRule("r", "s", acc, threshold, probability, list(ally), cooldown, 2.0, discharge,
                           [], AlwaysStream(u), world)
    return rule, world


def test_rule_fires_when_harm_reaches_threshold_and_launches_after_delay():
    acc = HarmAccount("h", None, None)
    rule, world = _rule(acc)
    acc.deposit(1.0, 1.0)
    acc.deposit(2.0, 1.0)
    assert world.scheduled == []
    acc.deposit(3.0, 1.0)
    assert [d for d, _ in world.scheduled] == [2.0]
    assert rule.decisions == 1


def test_rule_cooldown_limits_decisions():
    acc = HarmAccount("h", None, None)
    rule, world = _rule(acc, threshold=1.0, cooldown=10.0)
    for day in (0.0, 1.0, 5.0, 9.9, 10.0, 10.5):
        acc.deposit(day, 1.0)
    assert rule.decisions == 2  # day 0 and day 10
    assert len(world.scheduled) == 2


def test_rule_with_zero_cooldown_decides_once_per_instant():
    acc = HarmAccount("h", None, None)
    rule, _ = _rule(acc, threshold=1.0)
    acc.deposit(1.0, 1.0)
    acc.deposit(1.0, 1.0)
    acc.deposit(2.0, 1.0)
    assert rule.decisions == 2


def test_ally_restraint_lowers_the_chance_to_act():
    acc = HarmAccount("h", None, None)
    rule, world = _rule(acc, probability=0.8, ally=(0.5, 0.25), u=0.31)
    assert rule.p_act == pytest.approx(0.8 * 0.5 * 0.75)
    for _ in range(3):
        acc.deposit(0.0, 1.0)
    assert rule.decisions == 1 and world.scheduled == []  # 0.31 ≥ 0.3: restrained this time


def test_acting_discharges_harm():
    acc = HarmAccount("h", decay_days=100.0, window_days=None)
    _rule(acc, threshold=3.0, discharge=0.5)
    acc.deposit(0.0, 4.0)
    assert acc.value == pytest.approx(2.0)


@pytest.mark.parametrize("kind", ["decay", "window", "cumulative"])
def test_an_account_considers_its_rules_exactly_when_checking_every_rule_on_every_deposit_would(kind):
    """The account skips its rules between deposits that cannot make one decide (see
    `HarmAccount.trigger`); a reference that checks every rule on every deposit must make the
    same decisions at the same instants, for rules of several thresholds, cooldowns and
    discharges on random deposits."""
    decay, window = {"decay": (6.0, None), "window": (None, 5.0), "cumulative": (None, None)}[kind]
    for case in range(20):
        rng = np.random.default_rng(case)
        specs = [(float(rng.uniform(1, 12)), float(rng.choice([0.0, 0.5, 3.0, 10.0])),
                  float(rng.choice([0.0, 0.3]))) for _ in range(int(rng.integers(1, 5)))]
        days = np.cumsum(rng.exponential(0.7, 200) * (rng.random(200) > 0.1))  # some at one instant
        amounts = rng.exponential(1.5, 200)

        acc = HarmAccount("h", decay, window)
        stream = Stream(case)
        rules = [RetaliationRule(f"r{i}", "s", acc, thr, 0.7, [], cool, 1.0, dis, [], stream, Recorder())
                 for i, (thr, cool, dis) in enumerate(specs)]
        for day, amount in zip(days, amounts, strict=True):
            acc.deposit(float(day), float(amount))

        ref = HarmAccount("h", decay, window)
        ref_stream = Stream(case)
        ref_rules = [RetaliationRule(f"r{i}", "s", ref, thr, 0.7, [], cool, 1.0, dis, [], ref_stream, Recorder())
                     for i, (thr, cool, dis) in enumerate(specs)]
        for day, amount in zip(days, amounts, strict=True):
            ref.trigger = ref.next_ready = -math.inf  # the gate always open: every rule checked
            ref.deposit(float(day), float(amount))
        assert [r.decisions for r in rules] == [r.decisions for r in ref_rules]
        assert [r.world.scheduled and [d for d, _ in r.world.scheduled] for r in rules] == \
            [r.world.scheduled and [d for d, _ in r.world.scheduled] for r in ref_rules]
        assert [r.ready_at for r in rules] == [r.ready_at for r in ref_rules]
        assert acc.value == ref.value
        assert sum(r.decisions for r in rules) > 0


# --- militias: capacity, surges, restraint, redirect, excitation ---------------------------


def _world(override=None, **meta):
    return World(make_scenario(override, **meta), seed=3, trial=0)


def test_strike_cuts_capacity_multiplicatively_and_it_recovers():
    w = _world({"actors": {"m": {"capacity_recovery_per_day": 0.1}}})
    m = w.militias["m"]
    m.strike(0.0, 0.5)
    m.strike(0.0, 0.5)
    assert m.capacity_at(0.0) == pytest.approx(0.25)
    assert m.capacity_at(10.0) == pytest.approx(1 - 0.75 * math.exp(-1.0))
    assert m.strikes_received == 2


def test_surges_with_equal_decay_merge_and_others_stay_apart():
    w = _world()
    m = w.militias["m"]
    m.surge(0.0, 1.0, 10.0)
    m.surge(5.0, 2.0, 10.0)
    m.surge(5.0, 1.0, 3.0)
    assert [round(1 / k, 9) for _, _, k in m.surges] == [10.0, 3.0]
    expected = 1 + math.exp(-1.0) + 2 * math.exp(-0.5) + math.exp(-5 / 3)
    assert m.surge_level(10.0) == pytest.approx(expected)


def test_intensity_multiplies_capacity_restraint_surge_and_adds_excitation():
    w = _world({"actors": {"m": {"excitation": {"memory_days": 5.0, "from": {"m": 0.4}}}}})
    ch = w.militias["m"].channels["s"]
    assert ch.intensity(0.0) == pytest.approx(1.0)
    ch.excite(0.0, 0.4 / 5.0)
    w.militias["m"].surge(0.0, 1.0, 10.0)
    w.militias["m"].strike(0.0, 0.5)
    ch.set_restraint(0.0, 0.5, 100.0)
    expected = 0.5 * 0.5 * (1.0 * (1 + math.exp(-0.2)) + 0.08 * math.exp(-0.4))
    assert ch.intensity(2.0) == pytest.approx(expected)


def test_overlapping_restraints_keep_stronger_factor_and_later_end():
    w = _world()
    ch = w.militias["m"].channels["s"]
    ch.set_restraint(0.0, 0.5, 30.0)
    ch.set_restraint(10.0, 0.8, 20.0)
    assert (ch.restraint, ch.restraint_end) == (0.5, 30.0)
    ch.set_restraint(20.0, 0.2, 50.0)
    assert (ch.restraint, ch.restraint_end) == (0.2, 50.0)


def test_restraint_is_lifted_only_by_its_latest_episode_at_its_end():
    w = _world({"actors": {"m": {"attacks": {"s": {"rate_per_day": 0.0}}}}}, horizon_days=100.0)
    m = w.militias["m"]
    w.env.process(_at(w.env, 0.0, lambda: m.restrain(0.0, "s", 0.1, 10.0)))
    w.env.process(_at(w.env, 5.0, lambda: m.restrain(5.0, "s", 0.3, 20.0)))
    w.env.run(until=24.0)
    assert m.channels["s"].restraint == 0.1
    w.env.run(until=26.0)
    assert m.channels["s"].restraint == 1.0


def _at(env, day, fn):
    yield env.timeout(day)
    fn()


def test_redirect_shares_suppressed_effort_among_the_other_fronts():
    w = _world({"actors": {
        "m": {"attacks": {"s": {"rate_per_day": 1.0}, "t": {"rate_per_day": 2.0, "weapons": {"drone": 1.0}},
                          "u": {"rate_per_day": 3.0, "weapons": {"drone": 1.0}}},
              "redirect": {"share": 0.5, "ramp_days": 4.0}},
        "t": {"kind": "state"}, "u": {"kind": "state"},
    }})
    m = w.militias["m"]
    m.restrain(0.0, "u", 0.0, 50.0)
    s, t, u = (m.channels[k] for k in "stu")
    assert s.redirect_target == t.redirect_target == pytest.approx(0.5 * 3.0 / 2)
    assert u.redirect_target == 0.0
    assert s.intensity(4.0) == pytest.approx(1.0 + 0.75 * (1 - math.exp(-1)))


def test_excitation_jumps_by_alpha_beta_and_decays():
    w = _world({"actors": {"m": {"excitation": {"memory_days": 4.0, "from": {"m": 0.5}}}}})
    ch = w.militias["m"].channels["s"]
    assert ch.self_jump == pytest.approx(0.5 / 4.0)
    ch.excite(1.0, ch.self_jump)
    assert ch.intensity(5.0) == pytest.approx(1.0 + 0.125 * math.exp(-1.0))


def test_only_axis_members_excite_others():
    w = _world({"actors": {
        "a": {"kind": "militia", "axis": True, "attacks": {"s": {"rate_per_day": 1.0, "weapons": {"drone": 1.0}}}},
        "m": {"excitation": {"memory_days": 4.0, "from": {"a": 0.2}}},
    }})
    assert [(c.militia.name, j) for c, j in w.militias["a"].channels["s"].excites] == [("m", pytest.approx(0.05))]
    assert w.militias["m"].channels["s"].excites == []


# --- effects, incidents and milestones -----------------------------------------------------


def test_incident_filters_match_on_each_field():
    f = IncidentFilter(by=["israel"], at=["iraq"], kind="strike")
    assert matches(f, "israel", "iri", "iraq", "strike")
    assert not matches(f, "israel", "iri", "syria", "strike")
    assert not matches(f, "us", "iri", "iraq", "strike")
    assert not matches(f, "israel", "iri", "iraq", "attack")
    assert matches(IncidentFilter(), "anyone", "anyone", "anywhere", "attack")


def test_every_incident_a_trial_routes_is_one_the_scenario_lists():
    """The checks that refuse a filter no incident can match rest on `Scenario.incidents`: the
    incidents a trial actually routes (attacks, forced attacks, strikes of rules and shocks) must
    all be among them, and the attack channels' routes must be exactly its attacks."""
    from sim.scenario import load_scenario

    for name in ("baseline.toml", "history_2023_2024.toml"):
        scenario = load_scenario(SCENARIOS / name)
        listed = set(scenario.incidents())
        world = World(scenario, seed=1, trial=0)
        world.run()
        routed = set(world._routes)
        assert routed <= listed, routed - listed
        attacks = {i for i in listed if i.kind == "attack"}
        assert {k for k in routed if k[3] == "attack"} == attacks
        assert any(k[3] == "strike" for k in routed)


def test_milestone_needs_count_within_window():
    spec = Milestone.model_validate({"when": {"by": ["a"]}, "count": 3, "within_days": 10.0})
    m = MilestoneTracker("war", 2, spec)
    for day in (0.0, 8.0, 11.0):
        m.observe(day, 1, 0, 0)
    assert m.t is None  # day 0 left the window
    m.observe(17.0, 1, 0, 0)
    assert m.t == 17.0
    assert max_rung([m, MilestoneTracker("x", 1, spec)]) == 2


def test_milestone_outcome_minimums():
    spec = Milestone.model_validate({"when": {"on": ["s"], "min_deaths": 1}})
    m = MilestoneTracker("deaths", 1, spec)
    m.observe(1.0, 1, 5, 0)
    assert m.t is None
    m.observe(2.0, 1, 5, 1)
    assert m.t == 2.0


def test_strike_effect_cuts_capacity_counts_and_reaches_milestones():
    w = _world({
        "actors": {"s": {"rules": {}}},
        "milestones": {"strike_in_x": {"when": {"by": ["s"], "at": ["x"], "kind": "strike"}}},
        "ladder": ["first_attack", "strike_in_x"],
        "shocks": {"raid": {"day": 3.0, "effects": [
            {"type": "strike", "by": "s", "on": "m", "at": "x", "capacity_loss": 0.4}]}},
    }, horizon_days=5.0)
    out = w.run()
    assert w.militias["m"].capacity_at(5.0) == pytest.approx(0.6)
    assert out.milestone_days[1] == 3.0
    assert out.max_rung == 2
    assert out.totals[w.tally.index["strikes_by_s"]] == 1


def test_forced_attack_counts_and_harms_like_any_attack():
    w = _world({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": 0.0}}},
                   "s": {"harm": {"h": {"sources": [{"by": ["m"], "per_death": 10.0}]}}}},
        "shocks": {"tower": {"day": 2.0, "effects": [
            {"type": "attack", "by": "m", "on": "s", "hits": 1, "casualties": 40, "deaths": 3}]}},
    }, horizon_days=5.0)
    out = w.run()
    idx = w.tally.index
    assert [out.totals[idx[k]] for k in ("attacks_on_s", "hits_on_s", "casualties_on_s", "deaths_on_s")] == [1, 1, 40, 3]
    assert w.accounts[0].value == 30.0
    assert out.milestone_days[0] == 2.0


def test_patron_restrains_its_proxy_when_risk_crosses_threshold():
    w = _world({
        "actors": {
            "m": {"attacks": {"s": {"rate_per_day": 0.0}}},
            "p": {"kind": "patron", "proxies": ["m"],
                  "harm": {"risk": {"sources": [{"by": ["m"], "per_death": 1.0}]}},
                  "rules": {"rein_in": {"harm": "risk", "threshold": 3.0, "response": [
                      {"type": "restrain", "militias": ["m"], "front": "s", "factor": 0.1, "duration_days": 30.0}]}}},
        },
        "shocks": {"deaths": {"day": 1.0, "effects": [
            {"type": "attack", "by": "m", "on": "s", "hits": 1, "casualties": 3, "deaths": 3}]}},
    }, horizon_days=20.0)
    w.run()
    ch = w.militias["m"].channels["s"]
    assert (ch.restraint, ch.restraint_end) == (0.1, 31.0)


# --- streams, calendar, events ----------------------------------------------------------------


def test_streams_are_keyed_by_name_not_creation_order():
    a = Streams(7, 3)
    a("x")
    first = [a("y").uniform() for _ in range(5)]
    b = Streams(7, 3)
    second = [b("y").uniform() for _ in range(5)]
    assert first == second
    assert [Streams(7, 4)("y").uniform() for _ in range(5)] != first
    assert stream_key("attacks:iri:israel") == stream_key("attacks:iri:israel")


def test_a_worlds_streams_are_its_named_streams():
    """A world takes its streams by precomputed key; they must be the streams of their names."""
    w = _world({"actors": {"m": {"excitation": {"memory_days": 5.0, "from": {"m": 0.4}}}}})
    channel = w.militias["m"].channels["s"]
    keyed = [channel.stream.uniform() for _ in range(5)]
    named = Streams(3, 0)("attacks:m:s")
    assert keyed == [named.uniform() for _ in range(5)]


def test_colliding_stream_names_are_refused_when_the_scenario_is_prepared(monkeypatch):
    import sim.model.world as world

    monkeypatch.setattr(world, "stream_key", lambda name: 7)
    with pytest.raises(ValueError, match="collide"):
        world.Blueprint(make_scenario())


def test_nothing_past_the_horizon_is_queued():
    """Events at or after the horizon never happen; kept out of SimPy's queue they cannot slow it."""
    w = _world(horizon_days=10.0)
    queued = len(w.env._queue)
    w.after(10.0, lambda: None)
    w.at(25.0, lambda: None)
    assert len(w.env._queue) == queued
    w.after(9.5, lambda: None)
    assert len(w.env._queue) == queued + 1


MUTUAL_EXCITATION = {"actors": {
    "a": {"kind": "militia", "axis": True, "attacks": {"s": {"rate_per_day": 1.0, "weapons": {"drone": 1.0}}},
          "excitation": {"memory_days": 4.0, "from": {"m": 0.2}}},
    "m": {"axis": True, "excitation": {"memory_days": 4.0, "from": {"a": 0.2, "m": 0.1}}},
}}


@pytest.mark.parametrize("name", ["baseline", "iran_restrains_militias", "leader_killed_month2", "mutual"])
def test_a_released_trial_leaves_nothing_to_the_cyclic_collector(name):
    """Every object of a trial is freed by reference counting once it is read out (the cyclic
    collector would cost a run ~4% of its time): nothing but SimPy's environment, which refers
    to itself, is left in a cycle."""
    import gc
    import random

    from sim.engine.draws import ParameterDraws
    from sim.engine.trial import run_trial
    from sim.model.world import Blueprint
    from sim.scenario import load_scenario

    scenario = make_scenario(MUTUAL_EXCITATION) if name == "mutual" else load_scenario(SCENARIOS / f"{name}.toml")
    draws = ParameterDraws(scenario) if scenario.parameters.posterior is not None else None
    plans = [draws.blueprint(draws.pick(Streams(5, t))) if draws else Blueprint(scenario) for t in range(30)]
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        outcomes = [run_trial(plan, 5, t) for t, plan in enumerate(plans)]
        gc.collect()
        left = [type(o) for o in gc.garbage]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert sum(o.n_events for o in outcomes) > 30 * 100
    assert not [t for t in left if t.__module__.startswith("sim.") or t in (random.Random, type(_generator()))]
    assert left.count(simpy.Environment) <= 30


def _generator():
    yield


def test_a_particles_blueprint_shares_what_its_values_leave_alone_and_runs_the_same():
    from sim.engine.draws import ParameterDraws
    from sim.engine.trial import run_trial
    from sim.model.world import Blueprint
    from sim.scenario import load_scenario

    draws = ParameterDraws(load_scenario(SCENARIOS / "baseline.toml"))
    first, other = draws.blueprint(0), draws.blueprint(1)
    assert other.tally is first.tally and other.accounts is first.accounts and other._routes is first._routes
    assert other.militias[1] is first.militias[1]  # hezbollah: no fitted value
    assert other.militias[0] is not first.militias[0] and other.excitation is not first.excitation
    changed = [a is not b for a, b in zip(other.rules, first.rules, strict=True)]
    assert sum(changed) == 1  # only Iran's restraint of the US front carries a fitted value
    alone = Blueprint(other.scenario)
    for trial in range(8):
        assert repr(run_trial(other, 3, trial)) == repr(run_trial(alone, 3, trial))


@pytest.mark.parametrize("name", ["baseline", "history_2023_2024", "israel_lower_threshold"])
def test_the_event_loops_inline_deposit_is_harm_account_deposit(name, monkeypatch):
    """Attacks write their deposit into a single decaying account inline; through
    `HarmAccount.deposit` every trial comes out the same, to the last bit of every account."""
    import sim.model.militia as militia
    from sim.model.world import Blueprint
    from sim.scenario import load_scenario

    blueprint = Blueprint(load_scenario(SCENARIOS / f"{name}.toml"))

    def trials():
        out = []
        for trial in range(12):
            w = World(blueprint, 4, trial)
            out.append((repr(w.run()), [(a.value, a.t) for a in w.accounts]))
        return out

    inline = trials()
    monkeypatch.setattr(militia, "single_decaying", lambda deposits: (None, None))
    assert trials() == inline
    assert sum(len(v) for _, v in inline) and any(value for _, v in inline for value, _ in v)


def test_an_event_queued_past_the_horizon_is_an_error_not_a_result():
    """A trial ends when SimPy's queue is empty, which holds only because nothing past the
    horizon is queued; code that broke that would process the event, and is stopped."""
    w = _world(horizon_days=10.0)
    w.env.timeout(12.0)
    with pytest.raises(RuntimeError, match="past the horizon"):
        w.run()


def test_stream_samplers_match_their_distributions():
    s = Stream(12345)
    n = 20000
    pois = np.array([s.poisson(2.5) for _ in range(n)])
    assert abs(pois.mean() - 2.5) < 4.5 * math.sqrt(2.5 / n)
    binom = np.array([s.binomial(10, 0.3) for _ in range(n)])
    assert abs(binom.mean() - 3.0) < 4.5 * math.sqrt(2.1 / n)
    expo = np.array([s.exponential() for _ in range(n)])
    assert abs(expo.mean() - 1.0) < 4.5 / math.sqrt(n)
    assert s.poisson(0.0) == 0 and s.binomial(5, 1.0) == 5


def test_month_edges_follow_the_calendar():
    import datetime as dt

    labels, edges = month_edges(dt.date(2024, 1, 15), 60.0)
    assert labels == ["2024-01", "2024-02", "2024-03"]
    assert edges == [17.0, 46.0]


def test_event_count_is_the_number_of_simpy_events_processed():
    import simpy

    counted = []
    original = simpy.Environment.step

    def counting_step(env):
        counted.append(1)
        return original(env)

    s = make_scenario({"actors": {"m": {"excitation": {"memory_days": 3.0, "from": {"m": 0.3}}}}}, horizon_days=40.0)
    simpy.Environment.step = counting_step
    try:
        out = World(s, 1, 0).run()
    finally:
        simpy.Environment.step = original
    assert out.n_events == len(counted) - 1 > 40  # the last step finds the queue empty


@pytest.mark.parametrize(("n", "p"), [(180, 0.05), (10, 0.3), (40, 0.9), (500, 0.2), (1, 0.5)])
def test_binomial_sampler_matches_the_binomial_law(n, p):
    from scipy import stats

    s = Stream(99)
    draws = np.array([s.binomial(n, p) for _ in range(20000)])
    assert abs(draws.mean() - n * p) < 4.5 * math.sqrt(n * p * (1 - p) / draws.size)
    support = np.arange(n + 1)
    observed = np.bincount(draws, minlength=n + 1)
    expected = stats.binom.pmf(support, n, p) * draws.size
    keep = expected > 5
    pooled_obs = np.append(observed[keep], observed[~keep].sum())
    pooled_exp = np.append(expected[keep], expected[~keep].sum())
    if pooled_exp[-1] < 5:
        pooled_obs, pooled_exp = pooled_obs[:-1], pooled_exp[:-1] * pooled_obs[:-1].sum() / pooled_exp[:-1].sum()
    assert stats.chisquare(pooled_obs, pooled_exp).pvalue > 1e-4


def test_a_runaway_feedback_loop_stops_with_a_clear_error():
    # Every attack brings a strike (no cooldown) that doubles the rate: the loop never settles.
    from sim.model.world import RunawayError

    s = make_scenario({
        "run": {"max_events_per_trial": 5000},
        "actors": {"s": {
            "harm": {"h": {"sources": [{"by": ["m"], "per_incident": 1.0}]}},
            "rules": {"hit_back": {"harm": "h", "threshold": 1.0, "response": [
                {"type": "strike", "on": "m", "at": "x"},
                {"type": "surge", "on": ["m"], "amplitude": 1.0, "decay_days": 1000.0}]}},
        }},
    }, horizon_days=100.0)
    with pytest.raises(RunawayError, match="5,000 events by day .* running away"):
        World(s, 1, 0).run()
