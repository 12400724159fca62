"""Effects: what a rule's response or a shock does to the world when it happens.

- `Strike`: a state's or patron's strike on an actor at a location. It may destroy a share of
  a militia's capacity; a salvo sends weapons through the target's defences one by one,
  otherwise casualties are Poisson. It becomes an incident (kind ``strike``) for harm and
  milestones, and counts in `strikes_by_<state>`.
- `ForcedAttack`: a militia attack whose outcome is given (history that must not be left to
  chance); it counts, excites and harms like any attack.
- `Surge`: a solidarity or grievance shock on militias' rates.
- `Restraint`: militias' rates on a front multiplied by a factor for a while.
"""

from __future__ import annotations


class Strike:
    __slots__ = ("route", "militia", "capacity_loss", "casualties_mean", "death_share",
                 "salvo", "series")

    def __init__(self, world, by: str, spec):
        self.route = world.route(by, spec.on, spec.at, "strike")
        self.militia = world.militias.get(spec.on)
        self.capacity_loss = spec.capacity_loss
        self.casualties_mean = spec.casualties_mean
        self.death_share = spec.death_share
        defence = world.defence.get(spec.on)
        self.salvo = [
            (world.arsenal.index[w], n, defence[world.arsenal.index[w]] if defence else 0.0)
            for w, n in spec.salvo.items() if n > 0
        ]
        self.series = world.tally.index[f"strikes_by_{by}"]

    def apply(self, world, stream) -> None:
        now = world.env.now
        if self.salvo:
            hits = casualties = deaths = 0
            arsenal = world.arsenal
            for w, count, p_intercept in self.salvo:
                for _ in range(count):
                    h, c, d = arsenal.outcome(w, p_intercept, stream)
                    hits += h
                    casualties += c
                    deaths += d
        else:
            hits = 1
            casualties = stream.poisson(self.casualties_mean)
            deaths = stream.binomial(casualties, self.death_share)
        if self.militia is not None and self.capacity_loss > 0.0:
            self.militia.strike(now, self.capacity_loss)
        world.tally.add(self.series, now)
        world.incident(self.route, now, hits, casualties, deaths)


class ForcedAttack:
    __slots__ = ("channel", "hits", "casualties", "deaths")

    def __init__(self, world, spec):
        self.channel = world.militias[spec.by].channels[spec.on]
        self.hits, self.casualties, self.deaths = spec.hits, spec.casualties, spec.deaths

    def apply(self, world, stream) -> None:
        self.channel.record(world.env.now, self.hits, self.casualties, self.deaths)


class Surge:
    __slots__ = ("militias", "amplitude", "decay_days")

    def __init__(self, world, spec):
        self.militias = [world.militias[m] for m in spec.on]
        self.amplitude, self.decay_days = spec.amplitude, spec.decay_days

    def apply(self, world, stream) -> None:
        now = world.env.now
        for m in self.militias:
            m.surge(now, self.amplitude, self.decay_days)


class Restraint:
    __slots__ = ("militias", "front", "factor", "duration_days")

    def __init__(self, world, spec):
        self.militias = [world.militias[m] for m in spec.militias]
        self.front, self.factor, self.duration_days = spec.front, spec.factor, spec.duration_days

    def apply(self, world, stream) -> None:
        now = world.env.now
        for m in self.militias:
            m.restrain(now, self.front, self.factor, self.duration_days)


def compile_effect(world, spec, owner: str | None):
    """The runtime effect for a scenario effect; `owner` is the rule's actor (None for shocks)."""
    kind = spec.type
    if kind == "strike":
        return Strike(world, spec.by or owner, spec)
    if kind == "attack":
        return ForcedAttack(world, spec)
    if kind == "surge":
        return Surge(world, spec)
    return Restraint(world, spec)
