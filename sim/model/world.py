"""The world of one trial: actors wired together from a scenario, on one SimPy environment.

Everything an actor does becomes an *incident* (who, on whom, where, what kind, hits,
casualties, deaths). Incidents flow along precomputed *routes* to the harm accounts and
milestones whose filters match, so a new actor, rule or milestone is a change to the scenario
file, never a branch in code. The world does no I/O: it is built, run to the horizon, and
read out as a `TrialOutcome`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import simpy

from sim.model.effects import compile_effect
from sim.model.harm import HarmAccount, RetaliationRule
from sim.model.milestones import MilestoneTracker, max_rung
from sim.model.militia import AttackChannel, Militia
from sim.model.shocks import RandomShock, ScheduledShock
from sim.model.streams import Streams
from sim.model.tally import Tally, month_edges, series_names
from sim.scenario.schema import IncidentFilter, Scenario


class RunawayError(RuntimeError):
    """A trial processed more events than its scenario allows."""


class Arsenal:
    """Weapon types by index, and the outcome of one projectile against a defence."""

    def __init__(self, weapons: dict):
        self.names = list(weapons)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.p_hit = [w.p_hit for w in weapons.values()]
        self.casualties_mean = [w.casualties_per_hit for w in weapons.values()]
        self.death_share = [w.death_share for w in weapons.values()]

    def volley(self, w: int, count: int, p_intercept: float, stream) -> tuple[int, int, int]:
        """(hits, casualties, deaths) of `count` projectiles of weapon w, each intercepted,
        missing or hitting independently: hits are binomial, and the casualties of h hits,
        a sum of h Poisson draws, are Poisson with h times the mean."""
        hits = stream.binomial(count, (1.0 - p_intercept) * self.p_hit[w])
        casualties = stream.poisson(hits * self.casualties_mean[w]) if hits else 0
        return hits, casualties, stream.binomial(casualties, self.death_share[w])


class Route:
    """Where incidents of one static kind (by, on, at, kind) go: harm deposits and milestones."""

    __slots__ = ("deposits", "milestones")

    def __init__(self, deposits, milestones):
        self.deposits = deposits
        self.milestones = milestones


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial leaves: events processed, milestone days, counts."""

    n_events: int
    milestone_days: list[float]
    max_rung: int
    totals: list[int]
    monthly: list[list[int]]


def matches(f: IncidentFilter, by: str, on: str, at: str, kind: str) -> bool:
    return (
        (f.by is None or by in f.by)
        and (f.on is None or on in f.on)
        and (f.at is None or at in f.at)
        and (f.kind is None or f.kind == kind)
    )


def tally_layout(scenario: Scenario) -> tuple[list[str], list[str], list[str]]:
    """Series names and month labels a scenario's trials report, in a fixed order."""
    targets: list[str] = []
    for m in scenario.militias().values():
        for target in m.attacks:
            if target not in targets:
                targets.append(target)
    strikers = list(scenario.states())
    attackers = [name for name, m in scenario.militias().items() if m.attacks]
    names = series_names(targets, attackers, strikers)
    months, _ = month_edges(scenario.scenario.start_date, scenario.scenario.horizon_days)
    monthly = [n for n in names if n.startswith(("attacks_on_", "hits_on_", "attacks_by_", "strikes_by_"))]
    return names, monthly, months


class Blueprint:
    """What every trial of a scenario shares, worked out once: series, months, weapons,
    defences, and which harm accounts and milestones each kind of incident reaches."""

    def __init__(self, scenario: Scenario, edges: list[float] | None = None):
        """`edges`: day offsets where the time bins of the monthly series begin (after the
        first); calendar months by default, any other split (for calibration periods) if given."""
        self.scenario = scenario
        self.horizon = scenario.scenario.horizon_days
        self.series, self.monthly_series, self.months = tally_layout(scenario)
        _, self.edges = month_edges(scenario.scenario.start_date, self.horizon)
        if edges is not None:
            self.edges = list(edges)
            self.months = [f"bin{i}" for i in range(len(edges) + 1)]
        self.arsenal = Arsenal(scenario.weapons)
        self.defence = {
            name: [st.interception.get(w, 0.0) for w in self.arsenal.names]
            for name, st in scenario.states().items()
        }
        self.accounts = [
            (owner, acc_name, acc) for owner, st in scenario.states().items()
            for acc_name, acc in st.harm.items()
        ]
        self.account_index = {(o, n): i for i, (o, n, _) in enumerate(self.accounts)}
        self.milestones = [
            (name, scenario.ladder.index(name) + 1, spec) for name, spec in scenario.milestones.items()
        ]
        self._routes: dict[tuple, tuple[list, list]] = {}
        self.responses = {
            (name, rule_name): [compile_effect(self, e, name) for e in rule.response]
            for name, st in scenario.states().items() for rule_name, rule in st.rules.items()
        }
        self.shock_effects = {
            name: [compile_effect(self, e, None) for e in shock.effects] for name, shock in scenario.shocks.items()
        }

    def hit_table(self, mix: dict[str, float], target: str) -> list[float]:
        """Cumulative P(the attack hits with weapon w) over weapons, for one channel: the
        weapon's share × P(not intercepted by `target`) × P(hit)."""
        defence = self.defence[target]
        table, total = [], 0.0
        for w, name in enumerate(self.arsenal.names):
            total += mix.get(name, 0.0) * (1.0 - defence[w]) * self.arsenal.p_hit[w]
            table.append(total)
        return table

    def route(self, by: str, on: str, at: str, kind: str) -> tuple[list, list]:
        """(deposits as (account index, weights...), milestone indices) for an incident kind."""
        key = (by, on, at, kind)
        found = self._routes.get(key)
        if found is None:
            deposits = []
            for i, (_, _, acc) in enumerate(self.accounts):
                for src in acc.sources:
                    weights = (src.per_incident, src.per_hit, src.per_casualty, src.per_death)
                    if matches(src, by, on, at, kind) and any(weights):
                        deposits.append((i, *weights))
            milestones = [
                i for i, (_, _, spec) in enumerate(self.milestones) if matches(spec.when, by, on, at, kind)
            ]
            found = self._routes[key] = (deposits, milestones)
        return found


class World:
    """One trial's actors, routes and counters, built from a scenario's blueprint."""

    def __init__(self, blueprint: Blueprint | Scenario, seed: int, trial: int):
        if isinstance(blueprint, Scenario):
            blueprint = Blueprint(blueprint)
        bp = self.blueprint = blueprint
        self.scenario = bp.scenario
        self.env = simpy.Environment()
        self.streams = Streams(seed, trial)
        self.horizon = bp.horizon
        self.tally = Tally(bp.series, bp.months, bp.edges)
        self.arsenal = bp.arsenal
        self.defence = bp.defence
        self.accounts = [HarmAccount(n, a.decay_days, a.window_days) for _, n, a in bp.accounts]
        self.milestones = [MilestoneTracker(n, rung, spec) for n, rung, spec in bp.milestones]
        self._routes: dict[tuple, Route] = {}
        self.militias: dict[str, Militia] = {}
        self._build_militias()
        self.rules: list[RetaliationRule] = []
        self._build_rules()
        self.shocks = self._build_shocks()

    # --- wiring -----------------------------------------------------------------------------

    def route(self, by: str, on: str, at: str, kind: str) -> Route:
        key = (by, on, at, kind)
        route = self._routes.get(key)
        if route is None:
            deposits, milestones = self.blueprint.route(by, on, at, kind)
            route = self._routes[key] = Route(
                [(self.accounts[i], *w) for i, *w in deposits],
                [self.milestones[i] for i in milestones],
            )
        return route

    def _build_militias(self) -> None:
        s, tally, arsenal, bp = self.scenario, self.tally, self.arsenal, self.blueprint
        militias = s.militias()
        for name, spec in militias.items():
            redirect = spec.redirect
            m = Militia(
                name, spec.axis, self, spec.capacity_recovery_per_day,
                redirect.share if redirect else 0.0, redirect.ramp_days if redirect else 1.0,
            )
            beta = 1.0 / spec.excitation.memory_days if spec.excitation else 0.0
            for target, ch in spec.attacks.items():
                hit_cum = bp.hit_table(ch.weapons, target)
                series = (
                    tally.index[f"attacks_on_{target}"], tally.index[f"attacks_by_{name}"],
                    tally.index[f"hits_on_{target}"], tally.index[f"casualties_on_{target}"],
                    tally.index[f"deaths_on_{target}"],
                )
                m.channels[target] = AttackChannel(
                    m, target, self, self.streams(f"attacks:{name}:{target}"), ch.rate_per_day,
                    hit_cum, arsenal.casualties_mean, arsenal.death_share, beta,
                    self.route(name, target, ch.location or target, "attack"),
                    series,
                )
            self.militias[name] = m
        for name, spec in militias.items():
            if not spec.axis:
                continue
            for target, channel in self.militias[name].channels.items():
                for other_name, other in militias.items():
                    alpha = other.excitation.from_.get(name, 0.0) if other.excitation else 0.0
                    receiver = self.militias[other_name].channels.get(target)
                    if alpha > 0.0 and receiver is not None:
                        if receiver is channel:
                            channel.self_jump = alpha * receiver.beta
                        else:
                            channel.excites.append((receiver, alpha * receiver.beta))

    def _build_rules(self) -> None:
        for name, st in self.scenario.states().items():
            for rule_name, r in st.rules.items():
                response = self.blueprint.responses[(name, rule_name)]
                self.rules.append(RetaliationRule(
                    rule_name, name, self.accounts[self.blueprint.account_index[(name, r.harm)]],
                    r.threshold, r.probability, list(r.ally_restraint.values()), r.cooldown_days,
                    r.delay_days, r.discharge, response, self.streams(f"rule:{name}:{rule_name}"), self,
                ))

    def _build_shocks(self) -> list[ScheduledShock]:
        shocks = []
        for name, spec in self.scenario.shocks.items():
            effects = self.blueprint.shock_effects[name]
            stream = self.streams(f"shock:{name}")
            day = self.scenario.shock_day(spec)
            if day is None:
                shocks.append(RandomShock(name, spec.rate_per_day, spec.probability, effects, stream, self))
            else:
                shocks.append(ScheduledShock(name, day, spec.probability, effects, stream, self))
        return shocks

    # --- running ----------------------------------------------------------------------------

    def at(self, time: float, fn, *args) -> None:
        """Call fn(*args) at simulated day `time` (from a callback, outside any process)."""
        self.after(time - self.env.now, fn, *args)

    def after(self, delay: float, fn, *args) -> None:
        event = self.env.timeout(max(delay, 0.0))
        event.callbacks.append(lambda _event: fn(*args))

    def incident(self, route: Route, now: float, hits: int, casualties: int, deaths: int) -> None:
        for milestone in route.milestones:
            if milestone.t is None:
                milestone.observe(now, hits, casualties, deaths)
        for account, per_incident, per_hit, per_casualty, per_death in route.deposits:
            amount = per_incident + per_hit * hits + per_casualty * casualties + per_death * deaths
            if amount:
                account.deposit(now, amount)

    def _advance(self) -> int:
        """Process every event before the horizon; return how many. A trial may not process more
        than `run.max_events_per_trial` events: beyond that a feedback loop is running away
        (attacks that bring strikes that bring surges that bring attacks), and the trial stops
        with a `RunawayError` instead of running for ever."""
        env, horizon = self.env, self.horizon
        queue, step = env._queue, env.step  # SimPy's heap, read directly: this loop runs per event
        limit = self.scenario.run.max_events_per_trial
        for n in range(limit + 1):
            if not queue or queue[0][0] >= horizon:
                return n
            step()
        raise RunawayError(
            f"{limit:,} events by day {env.now:.1f} of {horizon:g}: the trial is running away (a feedback "
            "loop, e.g. strikes that provoke surges that provoke strikes, or rates too high for "
            "run.max_events_per_trial); add cooldowns, lower the responses or rates, or raise "
            "run.max_events_per_trial"
        )

    def run(self) -> TrialOutcome:
        s = self.scenario
        for name, spec in s.militias().items():
            m = self.militias[name]
            for target, ch in spec.attacks.items():
                if ch.initial_restraint is not None:
                    channel = m.channels[target]
                    r = ch.initial_restraint
                    channel.set_restraint(0.0, r.factor, r.remaining_days, r.redirect)
                    self.at(r.remaining_days, channel.lift_restraint, channel.restraint_episode)
            m.update_redirect(0.0, ramped=True)
            for channel in m.channels.values():
                channel.start()
        for shock in self.shocks:
            shock.start()
        n_events = self._advance()
        for militia in self.militias.values():
            for channel in militia.channels.values():
                channel.fold_counts()
        return TrialOutcome(
            n_events=n_events,
            milestone_days=[m.t if m.t is not None else math.nan for m in self.milestones],
            max_rung=max_rung(self.milestones),
            totals=self.tally.totals(),
            monthly=self.tally.monthly_counts(),
        )
