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
from typing import NamedTuple

import simpy
from simpy.core import EmptySchedule

from sim.model.effects import compile_effect
from sim.model.harm import HarmAccount, RetaliationRule
from sim.model.milestones import MilestoneTracker, max_rung
from sim.model.militia import AttackChannel, Militia
from sim.model.shocks import PressuredShock, RandomShock, ScheduledShock
from sim.model.state import WorldState, restore
from sim.model.streams import PARAMETERS_STREAM, Streams, stream_key
from sim.model.tally import Tally, TallyLayout, month_edges, series_names
from sim.scenario.schema import IncidentFilter, Scenario, attack_incident


class RunawayError(RuntimeError):
    """A trial processed more events than its scenario allows."""


class Arsenal:
    """Weapon types by index, and the outcome of one projectile against a defence."""

    def __init__(self, weapons: dict):
        self.names = list(weapons)
        self.index = {n: i for i, n in enumerate(self.names)}
        self.p_hit = [w.p_hit for w in weapons.values()]
        self.casualties_mean = [w.casualties_per_hit for w in weapons.values()]
        self.casualties_k = [w.casualties_dispersion for w in weapons.values()]  # None: Poisson
        self.death_share = [w.death_share for w in weapons.values()]

    def volley(self, w: int, count: int, p_intercept: float, stream) -> tuple[int, int, int]:
        """(hits, casualties, deaths) of `count` projectiles of weapon w, each intercepted,
        missing or hitting independently: hits are binomial, and the casualties of h hits,
        a sum of h Poisson draws, are Poisson with h times the mean (negative binomial with h times
        the mean and h times the shape: a sum of h of them of one shape)."""
        hits = stream.binomial(count, (1.0 - p_intercept) * self.p_hit[w])
        k = self.casualties_k[w]
        if not hits:
            casualties = 0
        elif k is None:
            casualties = stream.poisson(hits * self.casualties_mean[w])
        else:
            casualties = stream.negative_binomial(hits * self.casualties_mean[w], hits * k)
        return hits, casualties, stream.binomial(casualties, self.death_share[w])


class ChannelPlan(NamedTuple):
    """A militia's attack channel on one target, as every trial builds it."""

    target: str
    stream: int  # the key of its stream's name (see `Blueprint.stream_key`)
    rate_per_day: float
    hit_cum: list[float]
    series: tuple[int, int, int, int, int]
    route: tuple[str, str, str, str]
    initial_restraint: tuple[float, float, bool] | None  # (factor, remaining days, redirect)


class MilitiaPlan(NamedTuple):
    name: str
    axis: bool
    recovery_per_day: float
    redirect_share: float
    ramp_days: float
    beta: float
    channels: list[ChannelPlan]


class RulePlan(NamedTuple):
    name: str
    owner: str
    account: int
    threshold: float
    p_act: float  # the chance to act when deciding, allies' restraint included
    cooldown_days: float
    delay_days: float
    discharge: float
    response: list
    stream: int


class ShockPlan(NamedTuple):
    name: str
    day: float | None  # None: a random shock, arriving at `rate_per_day`
    rate_per_day: float
    probability: float
    effects: list
    stream: int
    pressure: tuple[int, float] | None = None  # (account index, per_unit): a pressured random shock


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
    return f.matches(by, on, at, kind)  # one definition, shared with the scenario's checks


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
    defences, which harm accounts and milestones each kind of incident reaches, and a plan of
    each militia, channel, rule and shock (its numbers and its stream's key), so that building
    a trial's world reads no scenario file objects."""

    def __init__(self, scenario: Scenario, edges: list[float] | None = None, like: Blueprint | None = None):
        """`edges`: day offsets where the time bins of the monthly series begin (after the
        first); calendar months by default, any other split (for calibration periods) if given.
        `like`: the blueprint of a scenario that differs from this one in a few numbers (another
        particle of a posterior), whose objects are taken for every part that is equal here."""
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
            (name, scenario.ladder.index(name) + 1 if name in scenario.ladder else 0, spec)
            for name, spec in scenario.milestones.items()
        ]
        self._routes: dict[tuple, tuple[list, list]] = {}
        self.responses = {
            (name, rule_name): [compile_effect(self, e, name) for e in rule.response]
            for name, st in scenario.states().items() for rule_name, rule in st.rules.items()
        }
        self.shock_effects = {
            name: [compile_effect(self, e, None) for e in shock.effects] for name, shock in scenario.shocks.items()
        }
        self.tally = TallyLayout(self.series, self.months, self.edges)
        self._stream_names: dict[int, str] = {stream_key(PARAMETERS_STREAM): PARAMETERS_STREAM}
        self.militias = self._plan_militias()
        self.excitation = self._plan_excitation()
        self.rules = [
            RulePlan(rule_name, name, self.account_index[(name, r.harm)], r.threshold,
                     r.probability * math.prod([1.0 - a for a in r.ally_restraint.values()]),
                     r.cooldown_days, r.delay_days, r.discharge, self.responses[(name, rule_name)],
                     self.stream_key(f"rule:{name}:{rule_name}"))
            for name, st in scenario.states().items() for rule_name, r in st.rules.items()
        ]
        self.shocks = [
            ShockPlan(name, scenario.shock_day(spec), spec.rate_per_day or 0.0, spec.probability,
                      self.shock_effects[name], self.stream_key(f"shock:{name}"),
                      (self.account_index[(spec.pressure.actor, spec.pressure.harm)], spec.pressure.per_unit)
                      if spec.pressure is not None else None)
            for name, spec in scenario.shocks.items()
        ]
        if like is not None:
            self._share(like)

    def _share(self, like: Blueprint) -> None:
        """Take `like`'s objects for the parts equal to this blueprint's. Trials of a posterior
        each build their world from their particle's blueprint: the parts they share are then
        one set of objects, in the processor's cache, rather than one per particle, which had
        to be fetched from memory at every trial (about 2% of a run's time)."""
        if (self.series, self.months, self.edges) == (like.series, like.months, like.edges):
            self.series, self.monthly_series, self.months = like.series, like.monthly_series, like.months
            self.edges, self.tally = like.edges, like.tally
        if self.scenario.weapons == like.scenario.weapons:
            self.arsenal = like.arsenal
        if self.defence == like.defence:
            self.defence = like.defence
        if self.accounts == like.accounts and self.milestones == like.milestones:
            # Routes depend on the accounts' sources and the milestones' filters only.
            self.accounts, self.account_index = like.accounts, like.account_index
            self.milestones, self._routes = like.milestones, like._routes
        if self.excitation == like.excitation:
            self.excitation = like.excitation
        militias = []
        for mine, theirs in _paired(self.militias, like.militias):
            if theirs is not None and mine != theirs:
                mine = mine._replace(channels=_shared(mine.channels, theirs.channels))
            militias.append(theirs if mine == theirs else mine)
        self.militias = militias
        self.rules = _shared(self.rules, like.rules)
        self.shocks = _shared(self.shocks, like.shocks)

    def stream_key(self, name: str) -> int:
        """The key of a stream the world makes; two names with one key would share draws."""
        key = stream_key(name)
        if self._stream_names.setdefault(key, name) != name:
            raise ValueError(f"stream names {name!r} and {self._stream_names[key]!r} collide; rename one")
        return key

    def _plan_militias(self) -> list[MilitiaPlan]:
        index = self.tally.index
        plans = []
        for name, spec in self.scenario.militias().items():
            redirect = spec.redirect
            channels = []
            for target, ch in spec.attacks.items():
                series = (
                    index[f"attacks_on_{target}"], index[f"attacks_by_{name}"], index[f"hits_on_{target}"],
                    index[f"casualties_on_{target}"], index[f"deaths_on_{target}"],
                )
                r = ch.initial_restraint
                channels.append(ChannelPlan(
                    target, self.stream_key(f"attacks:{name}:{target}"), ch.rate_per_day,
                    self.hit_table(ch.weapons, target), series, tuple(attack_incident(name, target, ch)),
                    (r.factor, r.remaining_days, r.redirect) if r is not None else None,
                ))
            plans.append(MilitiaPlan(
                name, spec.axis, spec.capacity_recovery_per_day, redirect.share if redirect else 0.0,
                redirect.ramp_days if redirect else 1.0,
                1.0 / spec.excitation.memory_days if spec.excitation else 0.0, channels,
            ))
        return plans

    def _plan_excitation(self) -> list[tuple[str, str, str, float]]:
        """(exciting militia, target, excited militia, jump α·β): an Axis member's attack on a
        target excites the members that take their cue from it on the same target."""
        militias = self.scenario.militias()
        beta = {plan.name: plan.beta for plan in self.militias}
        links = []
        for name, spec in militias.items():
            if not spec.axis:
                continue
            for target in spec.attacks:
                for other_name, other in militias.items():
                    alpha = other.excitation.from_.get(name, 0.0) if other.excitation else 0.0
                    if alpha > 0.0 and target in other.attacks:
                        links.append((name, target, other_name, alpha * beta[other_name]))
        return links

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


def _paired(mine: list, theirs: list) -> list[tuple]:
    """Items of two lists side by side (an item alone when the lists differ in length)."""
    if len(mine) != len(theirs):
        return [(m, None) for m in mine]
    return list(zip(mine, theirs, strict=True))


def _shared(mine: list, theirs: list) -> list:
    """`mine` with each item equal to its counterpart in `theirs` replaced by it."""
    return [t if m == t else m for m, t in _paired(mine, theirs)]


class World:
    """One trial's actors, routes and counters, built from a scenario's blueprint."""

    def __init__(self, blueprint: Blueprint | Scenario, seed: int, trial: int, streams: Streams | None = None,
                 tracer=None, initial: WorldState | None = None):
        """`streams`: the trial's streams if already made (they must be those of seed, trial);
        `tracer`: a `sim.model.trace.Tracer` to tell every event to (None: the trial runs untraced);
        `initial`: the state a history left at this world's day 0 (`sim.model.state`), which then
        replaces the channels' initial restraints (None: the world starts as its scenario says)."""
        if isinstance(blueprint, Scenario):
            blueprint = Blueprint(blueprint)
        bp = self.blueprint = blueprint
        self.scenario = bp.scenario
        self.env = simpy.Environment()
        self.streams = streams if streams is not None else Streams(seed, trial)
        self.horizon = bp.horizon
        self.tally = Tally(bp.tally)
        self.arsenal = bp.arsenal
        self.defence = bp.defence
        self.tracer = tracer
        self.initial = initial
        if tracer is None:
            self.accounts = [HarmAccount(n, a.decay_days, a.window_days) for _, n, a in bp.accounts]
            self.milestones = [MilestoneTracker(n, rung, spec) for n, rung, spec in bp.milestones]
        else:
            self._traced(tracer)
        self._routes: dict[tuple, Route] = {}
        self._processes: list[tuple[simpy.Process, object]] = []  # with their generators
        self.militias: dict[str, Militia] = {}
        self._build_militias()
        self.rules = [
            RetaliationRule(p.name, p.owner, self.accounts[p.account], p.threshold, p.p_act,
                            (), p.cooldown_days, p.delay_days, p.discharge, p.response,
                            self.streams.keyed(p.stream), self)
            for p in bp.rules
        ]
        self.shocks = [
            ScheduledShock(p.name, p.day, p.probability, p.effects, self.streams.keyed(p.stream), self)
            if p.day is not None else
            RandomShock(p.name, p.rate_per_day, p.probability, p.effects, self.streams.keyed(p.stream), self)
            if p.pressure is None else
            PressuredShock(p.name, p.rate_per_day, p.probability, p.effects, self.streams.keyed(p.stream), self,
                           self.accounts[p.pressure[0]], p.pressure[1])
            for p in bp.shocks
        ]

    def _traced(self, tracer) -> None:
        """The accounts and milestones of a traced trial, which tell the tracer of milestones reached
        and, if it records levels, of each deposit."""
        from sim.model.trace import TracedAccount, TracedMilestone

        self.accounts, self.milestones = [], []
        for owner, name, spec in self.blueprint.accounts:
            if tracer.records_levels:
                account = TracedAccount(name, spec.decay_days, spec.window_days)
                account.tracer = tracer
            else:
                account = HarmAccount(name, spec.decay_days, spec.window_days)
            tracer.account(account, owner, name)
            self.accounts.append(account)
        for name, rung, spec in self.blueprint.milestones:
            milestone = TracedMilestone(name, rung, spec)
            milestone.tracer = tracer
            self.milestones.append(milestone)

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
        bp = self.blueprint
        for plan in bp.militias:
            m = self.militias[plan.name] = Militia(
                plan.name, plan.axis, self, plan.recovery_per_day, plan.redirect_share, plan.ramp_days,
            )
            for ch in plan.channels:
                m.channels[ch.target] = AttackChannel(
                    m, ch.target, self, self.streams.keyed(ch.stream), ch.rate_per_day, ch.hit_cum,
                    bp.arsenal.casualties_mean, bp.arsenal.casualties_k, bp.arsenal.death_share, plan.beta,
                    self.route(*ch.route), ch.series,
                )
                if self.tracer is not None:
                    self.tracer.channel(m.channels[ch.target], ch.route[2])
        for name, target, other, jump in bp.excitation:
            channel, receiver = self.militias[name].channels[target], self.militias[other].channels[target]
            if receiver is channel:
                channel.self_jump = jump
            else:
                channel.excites.append((receiver, jump))

    # --- running ----------------------------------------------------------------------------

    def start(self, generator) -> simpy.Process:
        """Run `generator` as one of the trial's SimPy processes."""
        process = self.env.process(generator)
        self._processes.append((process, generator))
        return process

    def at(self, time: float, fn, *args) -> None:
        """Call fn(*args) at simulated day `time` (from a callback, outside any process)."""
        self.after(time - self.env.now, fn, *args)

    def after(self, delay: float, fn, *args) -> None:
        delay = max(delay, 0.0)
        if self.env._now + delay >= self.horizon:
            return  # never reached: the trial ends at the horizon, when SimPy's queue is empty
        event = self.env.timeout(delay)
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
        """Process every event before the horizon; return how many. Nothing at or past the
        horizon is ever queued (`after`, the channels and the random shocks keep such events
        out), so the trial is over when SimPy's queue is empty. A trial may not process more
        than `run.max_events_per_trial` events: beyond that a feedback loop is running away
        (attacks that bring strikes that bring surges that bring attacks), and the trial stops
        with a `RunawayError` instead of running for ever."""
        env, horizon = self.env, self.horizon
        step = env.step
        limit = self.scenario.run.max_events_per_trial
        try:
            for n in range(limit + 1):  # noqa: B007 - n is read when the loop ends by raising
                step()
        except EmptySchedule:
            if env.now >= horizon:
                raise RuntimeError(f"an event at day {env.now:g} was queued, past the horizon {horizon:g}") from None
            return n
        raise RunawayError(
            f"{limit:,} events by day {env.now:.1f} of {horizon:g}: the trial is running away (a feedback "
            "loop, e.g. strikes that provoke surges that provoke strikes, or rates too high for "
            "run.max_events_per_trial); add cooldowns, lower the responses or rates, or raise "
            "run.max_events_per_trial"
        )

    def run(self) -> TrialOutcome:
        if self.initial is not None:
            restore(self, self.initial)
        restored = self.initial.militias if self.initial is not None else {}
        for plan in self.blueprint.militias:
            m = self.militias[plan.name]
            if plan.name not in restored:
                for ch in plan.channels:
                    if ch.initial_restraint is not None:
                        channel = m.channels[ch.target]
                        factor, days, redirect = ch.initial_restraint
                        channel.set_restraint(0.0, factor, days, redirect)
                        self.at(days, channel.lift_restraint, channel.restraint_episode)
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

    def release(self) -> None:
        """Let the trial's objects be freed as soon as it has been read out, by reference
        counting, by breaking the cycles among them: actors and the world, militias and their
        channels, channels exciting each other, accounts and their rules, processes and the
        events they wait on. Left to Python's cyclic collector, which then runs every few trials
        over all young objects, a trial's ~170 objects (its Mersenne Twister states among them)
        cost about 4% of a run's time. The world can be neither run nor read afterwards."""
        for process, generator in self._processes:
            generator.close()
            target = process.target
            if target is not None and target.callbacks:
                target.callbacks.clear()
        self._processes.clear()
        self.env._queue.clear()  # events scheduled for later hold callbacks into the actors
        for militia in self.militias.values():
            for channel in militia.channels.values():
                channel.process = None
                channel.excites = []
            militia.channels = {}
        for account in self.accounts:
            account.rules = []
            account.watchers = []
        self.militias, self.rules, self.shocks = {}, [], []
