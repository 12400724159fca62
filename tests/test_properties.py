"""Property tests: invariants that hold for any valid scenario (hypothesis draws the scenario)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim.engine.chunk import simulate_trials
from sim.model.world import tally_layout
from sim.runs.layout import RunLayout
from sim.runs.summary import Summary
from tests.conftest import Trials, make_scenario

rates = st.floats(0.0, 5.0)
probabilities = st.floats(0.0, 1.0)


@st.composite
def scenarios(draw):
    horizon = draw(st.floats(1.0, 90.0))
    override = {
        "run": {"max_events_per_trial": 20_000},
        "weapons": {
            "drone": {"p_hit": draw(probabilities), "casualties_per_hit": draw(st.floats(0.0, 5.0)),
                      "death_share": draw(probabilities)},
        },
        "actors": {
            "m": {
                "attacks": {
                    "s": {"rate_per_day": draw(rates), "weapons": {"drone": 1.0}},
                    "t": {"rate_per_day": draw(rates), "weapons": {"drone": 1.0}},
                },
                "excitation": {"memory_days": draw(st.floats(0.5, 30.0)), "from": {"m": draw(st.floats(0.0, 0.95))}},
                "redirect": {"share": draw(probabilities), "ramp_days": draw(st.floats(0.5, 60.0))},
                "capacity_recovery_per_day": draw(st.floats(0.0, 1.0)),
            },
            "s": {
                "interception": {"drone": draw(probabilities)},
                "harm": {"h": {"decay_days": draw(st.floats(1.0, 60.0)),
                               "sources": [{"by": ["m"], "per_incident": 1.0, "per_casualty": 5.0}]}},
                "rules": {"hit_back": {
                    "harm": "h", "threshold": draw(st.floats(0.5, 50.0)), "probability": draw(probabilities),
                    "cooldown_days": draw(st.floats(0.0, 30.0)), "delay_days": draw(st.floats(0.0, 10.0)),
                    "response": [
                        {"type": "strike", "on": "m", "at": "x", "capacity_loss": draw(probabilities)},
                        {"type": "surge", "on": ["m"], "amplitude": draw(st.floats(0.0, 3.0)),
                         "decay_days": draw(st.floats(0.5, 30.0))},
                    ],
                }},
            },
            "t": {"kind": "state"},
            "p": {"kind": "patron", "proxies": ["m"],
                  "harm": {"risk": {"window_days": draw(st.floats(1.0, 60.0)),
                                    "sources": [{"by": ["s"], "kind": "strike", "per_incident": 1.0}]}},
                  "rules": {"rein_in": {"harm": "risk", "threshold": draw(st.floats(0.5, 5.0)), "response": [
                      {"type": "restrain", "militias": ["m"], "front": draw(st.sampled_from(["s", "t"])),
                       "factor": draw(probabilities), "duration_days": draw(st.floats(1.0, 60.0))}]}}},
        },
        "shocks": {"random": {"rate_per_day": draw(st.floats(0.0, 0.5)), "effects": [
            {"type": "surge", "on": ["m"], "amplitude": draw(st.floats(0.0, 3.0)), "decay_days": 7.0}]}},
        "milestones": {
            "blood": {"when": {"on": ["s"], "min_casualties": 1}},
            "strike": {"when": {"by": ["s"], "kind": "strike"}},
            "three_strikes": {"when": {"by": ["s"], "kind": "strike"}, "count": 3, "within_days": 30.0},
        },
        "ladder": ["first_attack", "blood", "strike", "three_strikes"],
    }
    return make_scenario(override, horizon_days=horizon)


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_invariants_hold_for_any_valid_scenario(scenario, seed):
    r = simulate_trials(scenario, seed, 0, 8)
    # Retaliation that provokes surges can run away; such trials must stop with that message.
    assert all("running away" in error for _, error in r.failures), r.failures
    failed = {trial for trial, _ in r.failures}
    if failed:
        keep = [k for k in range(8) if k not in failed]
        r.n_events, r.milestone_days, r.max_rung = r.n_events[keep], r.milestone_days[keep], r.max_rung[keep]
        r.totals, r.monthly = r.totals[keep], r.monthly[keep]
    t = Trials.__new__(Trials)
    t.scenario, t.result = scenario, r
    t.series, t.monthly_series, t.months = tally_layout(scenario)
    t.milestones = list(scenario.milestones)
    n = len(r.max_rung)
    horizon = scenario.scenario.horizon_days
    assert (r.totals >= 0).all() and (r.monthly >= 0).all()
    for target in ("s", "t"):
        attacks, hits = t.count(f"attacks_on_{target}"), t.count(f"hits_on_{target}")
        casualties, deaths = t.count(f"casualties_on_{target}"), t.count(f"deaths_on_{target}")
        assert (hits <= attacks).all() and (deaths <= casualties).all()
        assert (casualties[hits == 0] == 0).all()
        k = t.monthly_series.index(f"attacks_on_{target}")
        assert (r.monthly[:, k, :].sum(axis=1) == attacks).all()
    days = r.milestone_days
    assert ((days >= 0) & (days <= horizon) | np.isnan(days)).all()
    # Three strikes come no earlier than the first.
    strike, three = t.day("strike"), t.day("three_strikes")
    assert (np.isnan(three) | (three >= strike)).all()
    rungs = [max([i + 1 for i, m in enumerate(scenario.ladder) if not np.isnan(t.day(m)[k])], default=0)
             for k in range(n)]
    assert list(r.max_rung) == rungs
    if n == 0:  # every trial ran away: nothing left to summarise
        return
    summary = Summary(RunLayout.of(scenario))
    summary.add(r.milestone_days, r.max_rung, r.totals, r.monthly, r.n_events)
    table = summary.table().set_index("metric")
    probs = table[table.index.str.startswith("p_")]
    assert ((probs.lo <= probs.estimate) & (probs.estimate <= probs.hi)).all()
    assert ((probs.lo >= 0) & (probs.hi <= 1)).all()
    assert not table.loc[[m for m in table.index if m.startswith(("mean_", "q"))], "estimate"].isna().any()
