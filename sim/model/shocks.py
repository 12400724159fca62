"""Shocks: events from outside the actors' rules, scheduled on a day or arriving at random.

A scheduled shock happens on its day with its probability; a random shock arrives as a
Poisson process of its rate, each arrival happening with its probability. Either applies its
effects in order. A pressured shock is a random shock whose rate rises with a harm account:
rate + per_unit × level(t), an inhomogeneous Poisson process sampled exactly by thinning.
"""

from __future__ import annotations


class ScheduledShock:
    __slots__ = ("name", "day", "probability", "effects", "stream", "world", "happened")

    def __init__(self, name, day, probability, effects, stream, world):
        self.name, self.day, self.probability = name, day, probability
        self.effects, self.stream, self.world = effects, stream, world
        self.happened = 0

    def start(self) -> None:
        self.world.at(self.day, self.fire)

    def fire(self) -> None:
        if self.probability < 1.0 and self.stream.uniform() >= self.probability:
            return
        self.happened += 1
        tracer = self.world.tracer
        shock = tracer.shock(self.world.env.now, self.name, self.describe()) if tracer is not None else None
        for effect in self.effects:
            if tracer is not None:
                tracer.current = shock
            effect.apply(self.world, self.stream)

    def describe(self) -> str:
        """What a trace says of the shock when it happens."""
        return f"scheduled on day {self.day:g}" + (f", probability {self.probability:g}" if self.probability < 1 else "")


class RandomShock(ScheduledShock):
    """Arrivals of a Poisson process of `rate` per day, each scheduled when the one before has
    happened (a callback, as scheduled shocks: no SimPy process to start and release)."""

    __slots__ = ("rate",)

    def __init__(self, name, rate, probability, effects, stream, world):
        super().__init__(name, None, probability, effects, stream, world)
        self.rate = rate

    def start(self) -> None:
        if self.rate > 0.0:
            self.world.after(self.stream.exponential() / self.rate, self.arrive)

    def arrive(self) -> None:
        self.fire()
        self.start()

    def describe(self) -> str:
        return f"random, {self.rate:.3g} a day" + (f", probability {self.probability:g}" if self.probability < 1 else "")


class PressuredShock(RandomShock):
    """A random shock arriving at rate λ(t) = rate + per_unit × H(t), where H is a harm account's
    level. Between two deposits H never rises (it decays, drops out of its window or stays), so
    λ at the last deposit bounds λ until the next: candidates come at that bound and each is
    kept with probability λ(t)/bound (Lewis & Shedler's thinning, exact). A deposit raises the
    bound, and the pending candidate is dropped for one drawn from the new bound (the candidate
    process is memoryless, so restarting it at any instant leaves the law unchanged)."""

    __slots__ = ("account", "per_unit", "bound", "generation")

    def __init__(self, name, rate, probability, effects, stream, world, account, per_unit):
        super().__init__(name, rate, probability, effects, stream, world)
        self.account, self.per_unit = account, per_unit
        self.bound = 0.0
        self.generation = 0
        account.watchers.append(self)

    def start(self) -> None:
        self.schedule(self.world.env.now)

    def schedule(self, now: float) -> None:
        self.generation += 1
        bound = self.bound = self.rate + self.per_unit * self.account.level(now)
        if bound > 0.0:
            self.world.after(self.stream.exponential() / bound, self.candidate, self.generation)

    def pressed(self, now: float) -> None:
        """The account took a deposit: λ may have risen above the bound."""
        if self.rate + self.per_unit * self.account.level(now) > self.bound:
            self.schedule(now)

    def candidate(self, generation: int) -> None:
        if generation != self.generation:
            return  # superseded by a deposit
        now = self.world.env.now
        if self.stream.uniform() * self.bound < self.rate + self.per_unit * self.account.level(now):
            self.fire()
        self.schedule(now)

    def describe(self) -> str:
        pressure = self.per_unit * self.account.level(self.world.env.now)
        return f"random, {self.rate + pressure:.3g} a day at its arrival, {pressure:.3g} of it from {self.account.name}"
