"""Property tests: invariants that hold for any valid scenario (hypothesis draws the scenario),
in the trial arrays and in every file `sim.run` writes; and the extremes of the parameters'
ranges (rates at 0 and at their limits, certain interception, unreachable thresholds, the
shortest horizon, near-critical excitation), where the model says exactly what comes out."""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import re
import signal
import tempfile
import typing
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import sim
from sim.engine.chunk import simulate_trials
from sim.errors import TrialError
from sim.model.streams import Stream
from sim.model.world import World, tally_layout
from sim.runs.layout import RunLayout
from sim.runs.summary import QUANTILES, Summary, day_label
from sim.scenario import load_scenario
from sim.scenario.loading import to_plain, validate
from sim.scenario.paths import with_values
from sim.scenario.schema import Count, Days, NonNegative
from sim.stats import Z95
from tests.conftest import SCENARIOS, Trials, assert_mean, hawkes_mean, make_scenario

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


# --- the files `sim.run` writes ----------------------------------------------------------------

FILES = {"scenario.toml", "manifest.json", "trials.parquet", "monthly.parquet", "summary.csv", "report.html",
         "report.md", "milestones.csv", "counts.csv", "pathways.csv", "parameters.csv", "roots.csv"}
RUN_TRIALS = 20
MAX_EVENTS = 5_000  # runaways stop within a fraction of a second


def run_folder(scenario, out: Path, trials: int = RUN_TRIALS, seed: int = 1) -> Path | None:
    """Run in this process and return the folder; None if the run stopped because a trial ran
    away, after checking that this is the error and that no finished output was left behind."""
    try:
        sim.run(scenario, trials=trials, seed=seed, workers=1, out=out, progress=False)
    except TrialError as e:
        assert e.error.startswith("sim.model.world.RunawayError: ") and "running away" in e.error, e.error
        assert not FILES & {p.name for p in out.iterdir()}, sorted(p.name for p in out.iterdir())
        return None
    return out


class Outputs:
    """A finished run folder read back, with every documented invariant checked on the way."""

    def __init__(self, out: Path, scenario):
        self.out, self.scenario = out, scenario
        assert {p.name for p in out.iterdir()} == FILES
        self.layout = lay = RunLayout.of(scenario)
        self.trials = pd.read_parquet(out / "trials.parquet")
        self.monthly = pd.read_parquet(out / "monthly.parquet")
        self.summary = pd.read_csv(out / "summary.csv").set_index("metric")
        self.milestones = pd.read_csv(out / "milestones.csv")
        self.counts = pd.read_csv(out / "counts.csv").set_index("series")
        self.n = len(self.trials)
        self.horizon = lay.horizon_days
        self._check_trials()
        self._check_monthly()
        self._check_summary()
        self._check_report_tables()
        self._check_roots()

    def _check_roots(self) -> None:
        """roots.csv counts the trials' root columns: each milestone's roots sum to the trials reaching it."""
        roots = pd.read_csv(self.out / "roots.csv", keep_default_na=False, na_values=[""])
        assert list(roots.columns) == ["milestone", "root", "trials", "share", "lo", "hi", "reached", "traced"]
        assert (roots.traced == self.n).all()
        for m in self.layout.milestones:
            rows = roots[roots.milestone == m]
            found = {k: v for k, v in self.trials[f"root_{m}"].value_counts().items() if v}
            assert dict(zip(rows.root, rows.trials, strict=True)) == found, m
            assert (rows.reached == int(self.trials[f"t_{m}"].notna().sum())).all(), m
            assert ((rows.lo <= rows.share) & (rows.share <= rows.hi)).all(), m

    def day(self, milestone: str) -> np.ndarray:
        return self.trials[f"t_{milestone}"].to_numpy()

    def count(self, series: str) -> np.ndarray:
        return self.trials[series].to_numpy()

    def _check_trials(self) -> None:
        lay, t, n = self.layout, self.trials, self.n
        columns = ["trial", "n_events", *(["particle"] if lay.particles else []),
                   *(f"t_{m}" for m in lay.milestones), "max_rung", *lay.series, *(f"root_{m}" for m in lay.milestones)]
        assert list(t.columns) == columns
        for m in lay.milestones:  # a root for each trial that reached the milestone, one of the scenario's
            assert (t[f"root_{m}"].notna() == t[f"t_{m}"].notna()).all(), m
            assert set(t[f"root_{m}"].dropna()) <= set(lay.roots), m
        assert (t.trial.to_numpy() == np.arange(n)).all()
        for name in ["n_events", "max_rung", *lay.series]:  # counts: integers, never negative
            assert t[name].dtype.kind == "i", name
            assert (t[name] >= 0).all(), name
        assert (t.n_events <= self.scenario.run.max_events_per_trial).all()
        if lay.particles:
            assert t.particle.between(0, len(self.scenario.parameters.posterior.weights) - 1).all()
        # A first day is a day of the trial, [0, H), or NaN: not reached. Nothing else.
        days = t[[f"t_{m}" for m in lay.milestones]].to_numpy()
        assert days.dtype.kind == "f"
        assert (np.isnan(days) | ((days >= 0) & (days < self.horizon))).all()
        rungs = [lay.ladder.index(m) + 1 if m in lay.ladder else 0 for m in lay.milestones]  # tracked: no rung
        expected = np.max(np.where(np.isnan(days), 0, rungs), axis=1, initial=0)
        assert (t.max_rung.to_numpy() == expected).all()
        assert t.max_rung.between(0, len(lay.ladder)).all()
        targets = [s.removeprefix("attacks_on_") for s in lay.series if s.startswith("attacks_on_")]
        for k in targets:
            attacks, hits = self.count(f"attacks_on_{k}"), self.count(f"hits_on_{k}")
            casualties, deaths = self.count(f"casualties_on_{k}"), self.count(f"deaths_on_{k}")
            assert (hits <= attacks).all() or self._forced_hits(), k
            assert (deaths <= casualties).all() and (casualties[hits == 0] == 0).all(), k
        by = [s for s in lay.series if s.startswith("attacks_by_")]
        on = [f"attacks_on_{k}" for k in targets]
        assert (t[on].sum(axis=1) == t[by].sum(axis=1)).all()  # each attack has one target and one militia

    def _forced_hits(self) -> bool:
        """A forced attack may carry more than one hit."""
        effects = [e for sh in self.scenario.shocks.values() for e in sh.effects]
        effects += [e for st_ in self.scenario.states().values() for r in st_.rules.values() for e in r.response]
        return any(e.type == "attack" and e.hits > 1 for e in effects)

    def _check_monthly(self) -> None:
        lay, m, n = self.layout, self.monthly, self.n
        assert list(m.columns) == ["trial", "month", "series", "count"]
        assert m["count"].dtype.kind == "i" and (m["count"] >= 0).all()
        assert len(m) == n * len(lay.months) * len(lay.monthly_series)
        # Ordered by trial, then month, then series.
        assert (m.trial.to_numpy() == np.repeat(np.arange(n), len(lay.months) * len(lay.monthly_series))).all()
        assert list(m.month.astype(str)[: len(lay.months) * len(lay.monthly_series)]) == list(
            np.repeat(lay.months, len(lay.monthly_series)))
        assert list(m.series.astype(str)[: len(lay.monthly_series)]) == lay.monthly_series
        # A monthly series' total is the sum of its months.
        sums = m.groupby(["trial", "series"], observed=True)["count"].sum().unstack("series")
        for series in lay.monthly_series:
            assert (sums[series].to_numpy() == self.count(series)).all(), series

    def _check_summary(self) -> None:
        lay, table, n = self.layout, self.summary, self.n
        names = []
        for m in lay.ordered:  # the rungs, then the milestones tracked off the ladder
            names += [f"p_{m}", *(f"p_{m}_by_{day_label(d)}d" for d in lay.by_days),
                      *(f"p_{m}_by_{month}" for month in lay.months)]
        names += [f"median_t_{m}" for m in lay.ordered]
        for series in lay.series:
            names += [f"mean_{series}", *(f"q{round(q * 100):02d}_{series}" for q in QUANTILES)]
        assert list(table.columns) == ["estimate", "lo", "hi"]
        assert list(table.index) == [*names, "mean_max_rung"]
        # The only NaN: the median day of a milestone no trial reached (all three columns).
        unreached = {f"median_t_{m}" for m in lay.milestones if np.isnan(self.day(m)).all()}
        assert set(table.index[table.isna().any(axis=1)]) == unreached
        assert table.loc[sorted(unreached)].isna().all().all()
        assert not np.isinf(table.to_numpy()).any()
        ordered = table.drop(sorted(unreached))
        assert ((ordered.lo <= ordered.estimate) & (ordered.estimate <= ordered.hi)).all()
        assert (ordered.lo >= 0).all()  # probabilities, days and counts alike
        for m in lay.milestones:
            reached = ~np.isnan(self.day(m))
            p = table.loc[f"p_{m}"]
            assert p.hi <= 1 and math.isclose(p.estimate, reached.mean(), rel_tol=1e-5, abs_tol=1e-12)
            previous = 0.0
            for d in lay.by_days:
                by = table.loc[f"p_{m}_by_{day_label(d)}d"]
                assert by.hi <= 1 and previous <= by.estimate <= p.estimate
                assert math.isclose(by.estimate, (self.day(m)[reached] <= d).sum() / n, rel_tol=1e-5, abs_tol=1e-12)
                previous = by.estimate
            previous = 0.0
            for month, end in zip(lay.months, lay.month_ends, strict=True):  # by the end of each month
                by = table.loc[f"p_{m}_by_{month}"]
                assert by.hi <= 1 and previous <= by.estimate <= p.estimate
                assert math.isclose(by.estimate, (self.day(m)[reached] < end).sum() / n, rel_tol=1e-5, abs_tol=1e-12)
                previous = by.estimate
            assert table.loc[f"p_{m}_by_{lay.months[-1]}", "estimate"] == p.estimate
            if reached.any():
                median = table.loc[f"median_t_{m}"]
                assert median.hi <= self.horizon
                # The 0.01-day grid, and 6 significant digits in the file.
                assert abs(median.estimate - np.median(self.day(m)[reached])) <= 0.005 + 1e-5 * median.estimate
        for series in lay.series:
            x = self.count(series)
            assert math.isclose(table.loc[f"mean_{series}", "estimate"], x.mean(), rel_tol=1e-5)
            quantiles = [table.loc[f"q{round(q * 100):02d}_{series}", "estimate"] for q in QUANTILES]
            # q05 may be the smallest count itself: within the file's 6 significant digits of it
            assert x.min() * (1 - 1e-5) <= quantiles[0] and quantiles[-1] <= x.max() * (1 + 1e-5)
            assert quantiles == sorted(quantiles)
            for q, value in zip(QUANTILES, quantiles, strict=True):
                # a count (the order statistic), to the 6 significant digits of the file
                assert math.isclose(value, np.quantile(x, q, method="inverted_cdf"), rel_tol=1e-5, abs_tol=1e-9), series
        assert 0 <= table.loc["mean_max_rung", "estimate"] <= len(lay.ladder)

    def _check_report_tables(self) -> None:
        lay, table = self.layout, self.summary
        ms = self.milestones
        assert list(ms.milestone) == lay.ordered
        for _, row in ms.iterrows():
            p = table.loc[f"p_{row.milestone}"]
            assert (row.estimate, row.lo, row.hi) == (p.estimate, p.lo, p.hi)
            assert math.isnan(row.median_day) == (row.estimate == 0)
            for d in lay.by_days:
                assert row[f"by_{day_label(d)}d"] == table.loc[f"p_{row.milestone}_by_{day_label(d)}d", "estimate"]
        assert ms.drop(columns="median_day").notna().all().all()
        c = self.counts
        assert list(c.index) == lay.series and not c.isna().any().any() and (c >= 0).all().all()
        assert (c["mean"] == table.loc[[f"mean_{s}" for s in lay.series], "estimate"].to_numpy()).all()
        for name in ("report.md", "report.html"):  # a number where one is expected, never nan or inf
            text = (self.out / name).read_text(encoding="utf-8")
            assert not re.search(r"\b(nan|inf)\b", text, re.IGNORECASE), (name, re.search(r".{60}\b(nan|inf)\b.{60}", text, re.I | re.S))
        md = (self.out / "report.md").read_text(encoding="utf-8")
        for m in lay.ordered:  # a milestone no trial reached has no median day: a dash
            if np.isnan(self.day(m)).all():
                assert re.search(rf"\| {re.escape(lay.labels[m])}( \(tracked, no rung\))? \|.*\| — \|", md), m


def outputs_of(scenario, out: Path, trials: int = RUN_TRIALS, seed: int = 1) -> Outputs | None:
    folder = run_folder(scenario, out, trials, seed)
    return None if folder is None else Outputs(folder, scenario)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    """A new empty run folder each call (hypothesis cannot use function-scoped tmp_path)."""
    base = tmp_path_factory.mktemp("runs")
    return lambda: Path(tempfile.mkdtemp(dir=base)) / "run"


@settings(max_examples=15, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios(), seed=st.integers(0, 2**32))
def test_every_file_of_a_run_is_well_formed_for_any_valid_scenario(folders, scenario, seed):
    data = to_plain(scenario)
    data["run"]["max_events_per_trial"] = MAX_EVENTS
    event("ran away" if outputs_of(validate(data), folders(), seed=seed) is None else "finished")


# --- mutations of the shipped scenarios --------------------------------------------------------

SHIPPED = sorted(p.name for p in SCENARIOS.glob("*.toml"))


def upper(annotated) -> float:
    """The upper limit of one of the schema's number types."""
    return next(m.le for m in typing.get_args(annotated)[1].metadata if hasattr(m, "le"))


MAX_VALUE, MAX_DAYS, MAX_COUNT = upper(NonNegative), upper(Days), int(upper(Count))
# Numeric keys by range (the schema's): what a mutation may set them to.
UNIT = {"p_hit", "death_share", "factor", "share", "probability", "discharge", "capacity_loss", "interception",
        "ally_restraint"}
NON_NEGATIVE = {"rate_per_day", "casualties_per_hit", "per_incident", "per_hit", "per_casualty", "per_death",
                "casualties_mean", "amplitude", "capacity_recovery_per_day"}
DAYS = {"remaining_days", "memory_days", "ramp_days", "decay_days", "window_days", "duration_days", "within_days"}
DAY_OFFSETS = {"cooldown_days", "delay_days"}
MAPS = {"interception", "from", "ally_restraint", "salvo"}  # tables of name → number, ranged by the table
EXPLOSIVE = {"rate_per_day", "amplitude"}  # at their limit, a billion events a day


@functools.cache
def shipped(name: str) -> dict:
    return to_plain(load_scenario(SCENARIOS / name))


def without_idle_dispersion(data: dict) -> dict:
    """`data` without the casualty dispersions that a mean of 0 (or a salvo) leaves with nothing to
    shape: the schema refuses those (test_config_errors), and these tests want valid scenarios.
    The fit draws the drone's dispersion, so a scenario whose drones hurt no one cannot take the
    fit (the loader refuses it): such a scenario drops its `parameters`."""
    dropped = []

    def walk(node, path):
        if isinstance(node, dict):
            mean = node.get("casualties_per_hit", node.get("casualties_mean"))
            if "casualties_dispersion" in node and (mean == 0 or node.get("salvo")):
                del node["casualties_dispersion"]
                dropped.append(f"{path}.casualties_dispersion")
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    walk(data, "")
    if any(path.startswith("weapons.") for path in dropped):
        data.pop("parameters", None)
    return data


@st.composite
def mutated_scenarios(draw):
    """A shipped scenario with its numbers moved within their valid ranges: kept, scaled by a
    random factor or set to 0 (the range's low end) and, in an `extreme` scenario, also set to
    the range's high end; a shorter horizon, with the scheduled shocks moved into it."""
    data = copy.deepcopy(shipped(draw(st.sampled_from(SHIPPED))))
    kind = draw(st.sampled_from(["ordinary", "extreme", "extreme", "explosive"]))
    extreme, explosive = kind != "ordinary", kind == "explosive"  # explosive: rates at their limit too
    horizon = draw(st.sampled_from([1e-6, 1e-3])) if draw(st.integers(0, 9)) == 0 else draw(st.floats(0.5, 60.0))
    data["scenario"]["horizon_days"] = horizon
    data["run"]["max_events_per_trial"] = MAX_EVENTS
    if draw(st.booleans()):
        data.pop("parameters", None)
    for shock in data.get("shocks", {}).values():
        if "rate_per_day" not in shock:
            shock.pop("date", None)
            shock["day"] = draw(st.floats(0.0, 0.99)) * horizon

    def scale(value: float, low: float, high: float, path: tuple) -> float:
        high_too = explosive if path[-1] in EXPLOSIVE else extreme
        how = draw(st.sampled_from(["keep", "scale", "scale", "low", *(["high"] if high_too else [])]))
        if how == "keep":
            return value
        if how in ("low", "high"):
            return low if how == "low" else high
        return min(high, max(low, value * draw(st.floats(0.0, 10.0))))

    def mutate(node, path: tuple):
        if isinstance(node, dict):
            return {k: mutate(v, (*path, k)) for k, v in node.items()}
        if isinstance(node, list):
            return [mutate(v, (*path, i)) for i, v in enumerate(node)]
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return node
        if path[-2] == "weapons" and path[-4] == "attacks":
            return node  # a weapon mix must sum to 1
        key = path[-2] if path[-2] in MAPS else path[-1]
        if key == "capacity_loss" and not node:
            return node  # only a strike on a militia may cut capacity
        if key in UNIT:
            return scale(node, 0.0, 1.0, path)
        if key == "from":  # one self-exciting militia per shipped scenario: its branching ratio
            return scale(node, 0.0, 0.999 if extreme else 0.95, path)
        if key in NON_NEGATIVE:
            return scale(node, 0.0, MAX_VALUE, path)
        if key == "threshold":
            return scale(node, 1e-3, MAX_VALUE, path)
        if key in DAYS:
            return scale(node, 1e-3, MAX_DAYS, path)
        if key in DAY_OFFSETS:
            return scale(node, 0.0, MAX_DAYS, path)
        if key == "salvo":
            return int(scale(node, 0, MAX_COUNT, path))
        return node

    for part in ("weapons", "actors", "shocks"):
        data[part] = mutate(data.get(part, {}), (part,))
    without_idle_dispersion(data)
    if explosive:
        channels = [ch for actor in data["actors"].values() for ch in actor.get("attacks", {}).values()]
        draw(st.sampled_from(channels))["rate_per_day"] = MAX_VALUE
    event(kind)
    return validate(data)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(scenario=mutated_scenarios(), seed=st.integers(0, 2**32))
def test_every_file_of_a_run_is_well_formed_for_mutated_shipped_scenarios(folders, scenario, seed):
    event(scenario.scenario.name)
    event("ran away" if outputs_of(scenario, folders(), seed=seed) is None else "finished")


# --- the extremes of the ranges, where the model says what comes out ---------------------------


class TookTooLong(BaseException):
    """Not an `Exception`, so that no handler of the code under test takes it for a trial's error."""


@contextlib.contextmanager
def within(seconds: float):
    """Fail, rather than hang, when the block takes longer than `seconds` (SIGALRM: Unix, main thread)."""
    def expire(signum, frame):
        raise TookTooLong(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def baseline(changes: dict | None = None, *, posterior: bool = True, **meta) -> dict:
    """The baseline's data, with `changes` set by key path and `scenario` keys from `meta`."""
    data = copy.deepcopy(shipped("baseline.toml"))
    if not posterior:
        data.pop("parameters")
    data["scenario"].update(meta)
    return without_idle_dispersion(with_values(data, changes or {}))


def every(data: dict, pattern: str) -> list[str]:
    """The key paths of `data` that match a regular expression (`.` separated, `[i]` for lists)."""
    found = []

    def walk(node, path):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{path}.{k}" if path else k)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, f"{path}[{i}]")
        elif re.fullmatch(pattern, path):
            found.append(path)

    walk(data, "")
    return found


def test_without_attacks_or_shocks_nothing_happens_and_every_file_is_well_formed(tmp_path):
    rates = every(baseline(), r"(actors\..*\.attacks|shocks)\..*rate_per_day")
    data = baseline(dict.fromkeys(rates, 0.0), posterior=False)
    out = outputs_of(validate(data), tmp_path / "run")
    lay, table, n = out.layout, out.summary, out.n
    assert (out.trials[lay.series].to_numpy() == 0).all() and (out.monthly["count"] == 0).all()
    assert out.trials[[f"t_{m}" for m in lay.milestones]].isna().all().all() and (out.trials.max_rung == 0).all()
    # P = 0 exactly, its Wilson interval [0, z²/(n + z²)]; no median day; counts 0 with 0-wide intervals.
    for m in lay.ordered:
        for metric in [f"p_{m}", *(f"p_{m}_by_{day_label(d)}d" for d in lay.by_days), *(f"p_{m}_by_{t}" for t in lay.months)]:
            assert table.loc[metric, "estimate"] == 0 and table.loc[metric, "lo"] == 0
            assert math.isclose(table.loc[metric, "hi"], Z95**2 / (n + Z95**2), rel_tol=1e-5)
        assert table.loc[f"median_t_{m}"].isna().all()
    counts = table.loc[[m for m in table.index if m.startswith(("mean_", "q"))]]
    assert (counts.to_numpy() == 0).all()


@pytest.mark.parametrize(("what", "changes", "zero", "unreached"), [
    ("certain interception", {r"actors\.(israel|us)\.interception\..*": 1.0},
     ["hits_on_israel", "hits_on_us", "casualties_on_israel", "casualties_on_us", "deaths_on_israel", "deaths_on_us"],
     ["israel_casualties_from_iraq", "first_us_deaths"]),
    ("no weapon ever hits", {r"weapons\..*\.p_hit": 0.0},
     ["hits_on_israel", "hits_on_us", "casualties_on_israel", "casualties_on_us", "deaths_on_israel", "deaths_on_us"],
     ["israel_casualties_from_iraq", "first_us_deaths"]),
    ("hits without casualties", {r"weapons\..*\.casualties_per_hit": 0.0},
     ["casualties_on_israel", "casualties_on_us", "deaths_on_israel", "deaths_on_us"],
     ["israel_casualties_from_iraq", "first_us_deaths"]),
    ("thresholds at the limit, no random shocks", {r"actors\..*\.rules\..*\.threshold": MAX_VALUE,
                                                   r"shocks\..*\.rate_per_day": 0.0},
     ["strikes_by_israel", "strikes_by_us", "strikes_by_iran"],
     ["israel_strikes_militia_in_syria", "us_strikes_in_iraq", "israel_strikes_in_iraq", "iran_attacks_israel",
      "israel_strikes_iran", "regional_war"]),
])
def test_extremes_of_interception_hits_casualties_and_thresholds(tmp_path, what, changes, zero, unreached):
    data = baseline({path: value for pattern, value in changes.items() for path in every(baseline(), pattern)})
    out = outputs_of(validate(data), tmp_path / "run")
    for series in zero:
        assert (out.count(series) == 0).all(), series
        assert (out.summary.loc[[f"mean_{series}", f"q95_{series}"]].to_numpy() == 0).all()
    for m in unreached:
        assert np.isnan(out.day(m)).all() and out.summary.loc[f"p_{m}", "estimate"] == 0, m
    assert out.count("attacks_on_israel").sum() > 0  # not for want of attacks
    if "threshold" in what:  # no rule ever decided: no harm comes near the limit
        world = World(validate(data), 1, 0)
        world.run()
        assert sum(rule.decisions for rule in world.rules) == 0
    if what == "hits without casualties":
        assert out.count("hits_on_israel").sum() > 0


@pytest.mark.parametrize("path", ["actors.iri.attacks.israel.rate_per_day",
                                  "shocks.israel_kills_iranian_commanders.rate_per_day",
                                  "shocks.axis_leader_killed.effects[1].amplitude"])
def test_a_rate_at_its_limit_stops_as_a_runaway_at_once(tmp_path, path):
    changes = {path: MAX_VALUE}
    if "amplitude" in path:  # a billionfold surge as soon as the leader is killed, on day 0
        changes["shocks.axis_leader_killed.rate_per_day"] = MAX_VALUE
    data = baseline(changes, posterior=False)
    data["run"]["max_events_per_trial"] = 1_000
    with within(30), pytest.raises(TrialError, match=r"trial 0 failed: sim\.model\.world\.RunawayError: 1,000 "
                                                     r"events by day 0\.0 of 365: the trial is running away"):
        sim.run(validate(data), trials=RUN_TRIALS, seed=1, workers=1, out=tmp_path / "run", progress=False)
    assert run_folder(validate(data), tmp_path / "again") is None  # and nothing finished is left behind


def test_a_billion_casualties_per_hit_are_counted_and_summarised(tmp_path):
    kappa, share = MAX_VALUE, 0.5
    s = make_scenario({"weapons": {"drone": {"p_hit": 1.0, "casualties_per_hit": kappa, "death_share": share}},
                       "actors": {"m": {"attacks": {"s": {"rate_per_day": 2.0}}}}}, horizon_days=10.0)
    out = outputs_of(s, tmp_path / "run")
    hits, casualties, deaths = (out.count(f"{k}_on_s").astype(float) for k in ("hits", "casualties", "deaths"))
    assert (hits > 0).all()
    # Per trial: casualties ~ Poisson(hits·κ), deaths ~ Binomial(casualties, share); 5 SD for 20 trials.
    assert (np.abs(casualties - hits * kappa) <= 5 * np.sqrt(hits * kappa)).all()
    assert (np.abs(deaths - casualties * share) <= 5 * np.sqrt(casualties * share * (1 - share))).all()
    assert math.isclose(out.summary.loc["mean_casualties_on_s", "estimate"], casualties.mean(), rel_tol=1e-5)


def test_capacity_that_recovers_at_the_limit_is_never_missing():
    # A strike destroys 90% of capacity on day 1; at κ = 10⁹/day it is back within a nanoday: the
    # attacks are those of an uncut militia, with no look-ahead renewals spent on the recovery.
    mu, horizon = 2.0, 60.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": mu}}, "capacity_recovery_per_day": MAX_VALUE}},
        "shocks": {"strike": {"day": 1.0, "effects": [
            {"type": "strike", "by": "s", "on": "m", "at": "x", "capacity_loss": 0.9}]}},
    }, horizon_days=horizon)
    with within(20):
        t = Trials(s, 1000)
    attacks = t.count("attacks_on_s")
    assert_mean(attacks, mu * horizon)
    assert (t.result.n_events <= 2 * attacks + 100).all()  # candidates, not renewals


@pytest.mark.parametrize("horizon", [1e-6, 1e-3])
def test_the_shortest_horizon_gives_well_formed_files(tmp_path, horizon):
    out = outputs_of(validate(baseline(horizon_days=horizon)), tmp_path / "run")
    assert out.layout.by_days == [] and out.layout.months == ["2024-06"]
    assert (out.trials[out.layout.series].to_numpy() == 0).all()  # a billionth of a day holds no attack


def test_near_critical_excitation_matches_the_hawkes_mean():
    mu, alpha, memory, horizon = 1.0, 0.999, 2.0, 30.0
    s = make_scenario({"actors": {"m": {
        "attacks": {"s": {"rate_per_day": mu}}, "excitation": {"memory_days": memory, "from": {"m": alpha}},
    }}}, horizon_days=horizon)
    expected = hawkes_mean(mu, alpha, memory, horizon)
    assert_mean(Trials(s, 1000).count("attacks_on_s"), expected)


@pytest.mark.parametrize("mean", [701.0, 1e6, MAX_VALUE, 1e15])
def test_poisson_sampler_beyond_the_reach_of_exp(mean):
    s = Stream(7)
    draws = np.array([s.poisson(mean) for _ in range(400)], dtype=float)
    assert_mean(draws, mean)
    assert abs(draws.var(ddof=1) / mean - 1) < 4.5 * math.sqrt(2 / (draws.size - 1))  # var/mean of a Poisson: 1


@pytest.mark.parametrize(("n", "p"), [(10**6, 0.3), (10**12, 0.2), (10**9, 0.9)])
def test_binomial_sampler_with_a_huge_count_is_quick_and_right(n, p):
    s = Stream(7)
    with within(5):
        draws = np.array([s.binomial(n, p) for _ in range(400)], dtype=float)
    assert_mean(draws, n * p)


def test_monthly_counts_hold_billions():
    # 10,000 hits per forced attack, about 250,000 of them in one month: past 2³¹.
    s = make_scenario({"run": {"max_events_per_trial": 10**6}, "actors": {"m": {"attacks": {"s": {"rate_per_day": 0.0}}}},
                       "shocks": {"f": {"rate_per_day": 1e5, "effects": [
                           {"type": "attack", "by": "m", "on": "s", "hits": MAX_COUNT}]}}}, horizon_days=2.5)
    t = Trials(s, 1)
    hits = t.count("hits_on_s")
    assert hits[0] > 2**31 and hits[0] == MAX_COUNT * t.count("attacks_on_s")[0]
    assert t.result.monthly[0, t.monthly_series.index("hits_on_s")].sum() == hits[0]


def test_summary_keeps_days_before_the_horizon_and_means_of_counts_above_zero():
    # First days just before a horizon that is off the 0.01-day grid round up past it; a count
    # that is mostly 0 has a normal interval reaching below 0.
    horizon = 0.006
    s = make_scenario(horizon_days=horizon)
    layout = RunLayout.of(s)
    n = 40
    series = len(layout.series)
    totals = np.zeros((n, series), dtype=np.int64)
    totals[0, 0] = 1
    summary = Summary(layout)
    summary.add(np.full((n, 1), 0.0058), np.ones(n, dtype=np.int16), totals,
                np.zeros((n, len(layout.monthly_series), len(layout.months)), dtype=np.int64), np.ones(n, dtype=np.int64))
    table = summary.table().set_index("metric")
    assert (table.loc["median_t_first_attack"] == horizon).all()
    mean = table.loc[f"mean_{layout.series[0]}"]
    assert mean.estimate == 1 / n and mean.lo == 0 and mean.hi > mean.estimate


@pytest.mark.parametrize("days", [0.0, 1e-17, 1e-300])
def test_durations_too_short_to_move_the_clock_act_as_the_shortest(days):
    # Two sources deposit each attack separately, and each deposit checks the rule. A cooldown that
    # leaves a day t > 0 unchanged when added to it acts as a cooldown of 0: one decision per instant;
    # the shortest harm window still holds the deposit made at the instant, (t − W, t] ∋ t.
    s = make_scenario({"actors": {"s": {
        "harm": {"h": {"window_days": 1e-6,
                       "sources": [{"by": ["m"], "per_incident": 1.0}, {"on": ["s"], "per_incident": 1.0}]}},
        "rules": {"r": {"harm": "h", "threshold": 0.5, "probability": 0.0, "cooldown_days": days,
                        "response": [{"type": "strike", "on": "m", "at": "x"}]}}}}}, horizon_days=10.0)
    world = World(s, 1, 0)
    out = world.run()
    assert world.rules[0].decisions == out.totals[0] > 0
