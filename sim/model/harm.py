"""Harm that states and patrons accumulate, and the rules that turn it into responses.

A harm account is a running sum of deposits that forgets by exponential decay
(H ← H·exp(−Δt/τ) + deposit), by a sliding window (the sum of deposits in the last W days),
or not at all. A rule watches one account: after each deposit, if the account is at or above
the rule's threshold and the rule is off cooldown, the owner decides. With probability
p·Π(1 − ally restraint) it launches its response after a delay; every decision, acted on or
not, starts the cooldown, so a state reconsiders at most once per cooldown however many
attacks arrive. Acting may discharge a share of the harm (a grievance answered).
"""

from __future__ import annotations

import math
from collections import deque

exp = math.exp


class HarmAccount:
    """A decaying, windowed or cumulative sum of harm. After a deposit its `rules` decide as the
    module docstring says; they are looked at only when one of them can (see `trigger`)."""

    __slots__ = ("name", "value", "t", "decay_days", "window_days", "deposits", "rules", "trigger", "next_ready",
                 "watchers")

    def __init__(self, name: str, decay_days: float | None, window_days: float | None):
        self.name = name
        self.value = 0.0
        self.t = 0.0
        self.decay_days = decay_days
        self.window_days = window_days
        self.deposits: deque[tuple[float, float]] = deque()
        self.rules: list[RetaliationRule] = []
        self.watchers: list = []  # shocks whose rate the account raises (`PressuredShock`)
        # When a rule may decide: at or above `trigger`, the lowest threshold of the rules off
        # cooldown when last considered, or from `next_ready`, the first end of the others' cooldowns.
        self.trigger = math.inf
        self.next_ready = math.inf

    def level(self, now: float) -> float:
        """The account's value at `now` (without changing it)."""
        if self.decay_days is not None:
            return self.value * math.exp((self.t - now) / self.decay_days)
        if self.window_days is not None:
            window = self.window_days
            return sum(a for t, a in self.deposits if now - t < window)
        return self.value

    def deposit(self, now: float, amount: float) -> None:
        decay = self.decay_days
        if decay is not None:
            value = self.value = self.value * exp((self.t - now) / decay) + amount
            self.t = now
        elif self.window_days is not None:
            deposits = self.deposits
            deposits.append((now, amount))
            window = self.window_days
            # By age, as milestone windows: now − W may round to now, a deposit made now is 0 days old.
            while now - deposits[0][0] >= window:
                deposits.popleft()
            value = self.value = sum(a for _, a in deposits)
        else:
            value = self.value = self.value + amount
        if value >= self.trigger or now >= self.next_ready:
            self.consider(now)
        if self.watchers:
            for shock in self.watchers:
                shock.pressed(now)

    def consider(self, now: float) -> None:
        """Let each rule at or above its threshold and off cooldown decide; then work out when
        one may next (see `trigger`)."""
        rules = self.rules
        for rule in rules:  # re-read the value: a rule that acts may discharge it
            if self.value >= rule.threshold and now >= rule.ready_at:
                rule.decide(now)
        trigger = next_ready = math.inf
        for rule in rules:
            if now >= rule.ready_at:
                trigger = min(trigger, rule.threshold)
            else:
                next_ready = min(next_ready, rule.ready_at)
        self.trigger, self.next_ready = trigger, next_ready

    def discharge(self, now: float, share: float) -> None:
        """Remove a share of the harm held now (a response answered it)."""
        keep = 1.0 - share
        if self.decay_days is not None:
            self.value = self.level(now) * keep
            self.t = now
        elif self.window_days is not None:
            self.deposits = deque((t, a * keep) for t, a in self.deposits)
            self.value *= keep
        else:
            self.value *= keep


class RetaliationRule:
    """A threshold rule of a state or patron; see the module docstring for its semantics."""

    __slots__ = (
        "name", "owner", "account", "threshold", "p_act", "cooldown_days", "delay_days",
        "discharge", "response", "stream", "world", "ready_at", "decisions", "launches", "pending",
    )

    def __init__(self, name, owner, account, threshold, probability, ally_restraint,
                 cooldown_days, delay_days, discharge, response, stream, world):
        self.name = name
        self.owner = owner
        self.account = account
        self.threshold = threshold
        self.p_act = probability * math.prod([1.0 - r for r in ally_restraint]) if ally_restraint else probability
        self.cooldown_days = cooldown_days
        self.delay_days = delay_days
        self.discharge = discharge
        self.response = response
        self.stream = stream
        self.world = world
        self.ready_at = 0.0
        self.decisions = 0
        self.launches = 0
        self.pending: deque[float] = deque()  # when each response decided on is due, earliest first
        account.rules.append(self)
        account.trigger = min(account.trigger, threshold)

    def decide(self, now: float) -> None:
        self.decisions += 1
        # A cooldown of 0, or one too short to move the clock, still lets at most one decision
        # happen per instant.
        self.ready_at = max(now + self.cooldown_days, math.nextafter(now, math.inf))
        acts = self.stream.uniform() < self.p_act
        tracer = self.world.tracer
        decision = tracer.decision(now, self, self.account.level(now), acts) if tracer is not None else None
        if acts:
            if self.discharge > 0.0:
                self.account.discharge(now, self.discharge)
            self.pending.append(now + self.delay_days)  # one delay for all: launched in this order
            self.world.after(self.delay_days, self.launch, decision)

    def launch(self, decision: int | None = None) -> None:
        """Apply the response; `decision`: the traced decision that launched it (None untraced)."""
        self.launches += 1
        if self.pending:
            self.pending.popleft()
        tracer = self.world.tracer
        for effect in self.response:
            if tracer is not None:
                tracer.current = decision
            effect.apply(self.world, self.stream)
