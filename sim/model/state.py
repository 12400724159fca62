"""A world's state at one instant, carried from a history replay into a forecast's world.

A forecast (`[forecast]` in a scenario) runs each trial's history from the replay's start to the
origin, then builds the forecast scenario's world and sets it in the state the history left, so
that the state at the origin is what history made it rather than assumed. `capture` reads the
state of a world at its horizon (the origin); `restore` sets a new world, whose day 0 is the
origin, in that state. Times are kept relative to the origin (negative: before it). What is
carried, by name (militia, front, account owner and name, rule owner and name, milestone):

- a militia's capacity deficit and its surges, each at its level at the origin;
- each attack channel's excitation, its restraint (factor, days left, whether it redirects) and
  the redirected effort R it had reached, which then relaxes towards the forecast's own target;
- each harm account's level (a windowed account: its deposits still in the window);
- each rule's cooldown left and its responses decided but not yet launched (their delay left);
- the incidents still inside a milestone's window (a milestone of `count` > 1), so that
  a war of four exchanges in 90 days counts the exchanges of the weeks before the origin.

A milestone itself starts unreached: the forecast reports each one's first time after the
origin, and a history's milestones reached before it are reported apart (`reached`).
Memoryless parts need nothing: random shocks draw their next arrival afresh. The model does no
I/O; this is plain data.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChannelState:
    excitation: float
    restraint: float
    restraint_left: float  # days of the restraint left after the origin (≤ 0: none in force)
    redirectable: bool
    redirect: float  # R at the origin


@dataclass(frozen=True)
class MilitiaState:
    deficit: float  # 1 − capacity at the origin
    surges: tuple[tuple[float, float], ...]  # (amplitude at the origin, 1/τ)
    channels: dict[str, ChannelState]


@dataclass(frozen=True)
class AccountState:
    value: float
    deposits: tuple[tuple[float, float], ...] = ()  # a windowed account's (time, amount) still in its window


@dataclass(frozen=True)
class RuleState:
    ready_in: float  # days until the rule may decide again (≤ 0: it may now)
    pending: tuple[float, ...]  # days until each response decided before the origin is launched


@dataclass(frozen=True)
class WorldState:
    militias: dict[str, MilitiaState]
    accounts: dict[tuple[str, str], AccountState]
    rules: dict[tuple[str, str], RuleState]
    windows: dict[str, tuple[float, ...]]  # a milestone's incidents still in its window
    reached: dict[str, float] = field(default_factory=dict)  # milestone → day reached, before the origin (negative)


def capture(world, now: float) -> WorldState:
    """The state of `world` at `now` (its horizon: nothing at or after it has happened)."""
    militias = {}
    for name, m in world.militias.items():
        deficit = m.deficit * math.exp(m.recovery * (m.deficit_t - now)) if m.deficit else 0.0
        surges = tuple((a * math.exp((t - now) * k), k) for a, t, k in m.surges)
        channels = {}
        for target, ch in m.channels.items():
            e = ch.excitation * math.exp(ch.beta * (ch.excite_t - now)) if ch.excitation else 0.0
            in_force = ch.restraint < 1.0 and ch.restraint_end > now
            channels[target] = ChannelState(e, ch.restraint if in_force else 1.0,
                                            ch.restraint_end - now if in_force else 0.0,
                                            ch.redirectable if in_force else True, ch.redirect_at(now))
        militias[name] = MilitiaState(deficit, surges, channels)
    accounts, rules = {}, {}
    for (owner, name, _), account in zip(world.blueprint.accounts, world.accounts, strict=True):
        if account.window_days is not None:
            kept = tuple((t - now, a) for t, a in account.deposits if now - t < account.window_days)
            accounts[(owner, name)] = AccountState(sum(a for _, a in kept), kept)
        else:
            accounts[(owner, name)] = AccountState(account.level(now))
    for rule in world.rules:
        rules[(rule.owner, rule.name)] = RuleState(rule.ready_at - now, tuple(t - now for t in rule.pending if t >= now))
    windows = {m.name: tuple(t - now for t in m.times if m.within_days is None or now - t < m.within_days)
               for m in world.milestones if m.count > 1}
    reached = {m.name: m.t - now for m in world.milestones if m.t is not None}
    return WorldState(militias, accounts, rules, windows, reached)


def restore(world, state: WorldState) -> None:
    """Set `world` (at day 0, not yet run) in `state`. Every militia, front, account and rule of
    the state must be in the world (the scenario is checked for this when it is read); parts of
    the world the state does not name start as a new world's do (`World.run`). A traced world
    records one root event for what the history left (`Tracer.history`): the restraints, surges,
    excitation and pending responses restored here are its consequences."""
    tracer = world.tracer
    history = tracer.history(0.0) if tracer is not None else None
    for name, ms in state.militias.items():
        m = world.militias[name]
        m.deficit, m.deficit_t = ms.deficit, 0.0
        m.surges = []
        for amplitude, inverse_tau in ms.surges:
            if amplitude > 0.0:
                m.surges.append((amplitude, 0.0, inverse_tau))
                if tracer is not None:
                    tracer.current = history
                    tracer.surge(0.0, name, amplitude, 1.0 / inverse_tau)
        for target, cs in ms.channels.items():
            ch = m.channels[target]
            ch.excitation, ch.excite_t = cs.excitation, 0.0
            if tracer is not None and cs.excitation > 0.0:  # the excitation's parent: the history
                tracer._join(tracer.parents, id(ch), ch.beta, history, 0.0, cs.excitation)
            if cs.restraint_left > 0.0:
                if tracer is not None:
                    tracer.current = history
                ch.set_restraint(0.0, cs.restraint, cs.restraint_left, cs.redirectable)
                world.at(cs.restraint_left, ch.lift_restraint, ch.restraint_episode)
            ch.redirect_target, ch.redirect_gap, ch.redirect_t = cs.redirect, 0.0, 0.0
            ch.rate0 = ch.base + cs.redirect
        if m.redirect_share > 0.0 and len(m.channels) >= 2:
            m.update_redirect(0.0)
        else:  # no redirection in the forecast: what was redirected relaxes away
            for ch in m.channels.values():
                ch.set_redirect(0.0, 0.0, False)
    index = {(owner, name): account for (owner, name, _), account in zip(world.blueprint.accounts, world.accounts, strict=True)}
    for key, st in state.accounts.items():
        account = index[key]
        account.value, account.t = st.value, 0.0
        if account.window_days is not None:
            account.deposits = deque(st.deposits)
    rules = {(rule.owner, rule.name): rule for rule in world.rules}
    for key, st in state.rules.items():
        rule = rules[key]
        rule.ready_at = st.ready_in
        for delay in st.pending:
            rule.pending.append(delay)
            world.at(delay, rule.launch, history)
    for account in world.accounts:  # when its rules may next decide, as `HarmAccount.consider` leaves it
        ready = [r.threshold for r in account.rules if r.ready_at <= 0.0]
        waiting = [r.ready_at for r in account.rules if r.ready_at > 0.0]
        account.trigger = min(ready, default=math.inf)
        account.next_ready = min(waiting, default=math.inf)
    for milestone in world.milestones:
        times = state.windows.get(milestone.name)
        if times:
            milestone.times = deque(times)
    if tracer is not None:
        tracer.current = None
