"""Shocks: events from outside the actors' rules, scheduled on a day or arriving at random.

A scheduled shock happens on its day with its probability; a random shock arrives as a
Poisson process of its rate, each arrival happening with its probability. Either applies its
effects in order.
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
        for effect in self.effects:
            effect.apply(self.world, self.stream)


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
