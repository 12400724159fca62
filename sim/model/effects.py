"""Effects: what a rule's response or a shock does to the world when it happens.

- `Strike`: a state's or patron's strike on an actor at a location. It may destroy a share of
  a militia's capacity; a salvo sends weapons through the target's defences (each missile
  intercepted, missing or hitting independently), otherwise casualties are Poisson. It becomes an incident (kind ``strike``) for harm and
  milestones, and counts in `strikes_by_<state>`.
- `ForcedAttack`: a militia attack whose outcome is given (history that must not be left to
  chance); it counts, excites and harms like any attack.
- `Surge`: a solidarity or grievance shock on militias' rates.
- `Restraint`: militias' rates on a front multiplied by a factor for a while.
- `Chance`: any of these with a probability below 1, drawn when its response or shock happens.
"""

from __future__ import annotations

from sim.scenario.schema import strike_incident


class Effect:
    """An effect is a value: two with the same numbers are equal (blueprints share equal plans)."""

    __slots__ = ()

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None


class Strike(Effect):
    __slots__ = ("route_key", "on", "capacity_loss", "casualties_mean", "casualties_k", "death_share", "salvo",
                 "series")

    def __init__(self, blueprint, by: str, spec):
        self.route_key = tuple(strike_incident(spec, by))
        self.on = spec.on
        self.capacity_loss = spec.capacity_loss
        self.casualties_mean = spec.casualties_mean
        self.casualties_k = spec.casualties_dispersion  # None: Poisson
        self.death_share = spec.death_share
        defence = blueprint.defence.get(spec.on)
        index = blueprint.arsenal.index
        # None: a strike without a salvo (one hit); a salvo, even of zero missiles, hits only as they do.
        self.salvo = [(index[w], n, defence[index[w]] if defence else 0.0) for w, n in spec.salvo.items()] if spec.salvo else None
        self.series = blueprint.series.index(f"strikes_by_{by}")

    def apply(self, world, stream) -> None:
        now = world.env.now
        if self.salvo is not None:
            hits = casualties = deaths = 0
            arsenal = world.arsenal
            for w, count, p_intercept in self.salvo:
                h, c, d = arsenal.volley(w, count, p_intercept, stream)
                hits += h
                casualties += c
                deaths += d
        else:
            hits = 1
            casualties = stream.poisson(self.casualties_mean) if self.casualties_k is None else \
                stream.negative_binomial(self.casualties_mean, self.casualties_k)
            deaths = stream.binomial(casualties, self.death_share)
        militia = world.militias.get(self.on)
        if militia is not None and self.capacity_loss > 0.0:
            militia.strike(now, self.capacity_loss)
        world.tally.add(self.series, now)
        if world.tracer is not None:
            by, on, at, _ = self.route_key
            world.tracer.strike(now, by, on, at, hits, casualties, deaths,
                                self.capacity_loss if militia is not None else 0.0)
        world.incident(world.route(*self.route_key), now, hits, casualties, deaths)


class ForcedAttack(Effect):
    __slots__ = ("by", "on", "hits", "casualties", "deaths")

    def __init__(self, spec):
        self.by, self.on = spec.by, spec.on
        self.hits, self.casualties, self.deaths = spec.hits, spec.casualties, spec.deaths

    def apply(self, world, stream) -> None:
        channel = world.militias[self.by].channels[self.on]
        if world.tracer is not None:
            world.tracer.forced(channel, world.env.now, self.hits, self.casualties, self.deaths)
        channel.record(world.env.now, self.hits, self.casualties, self.deaths)


class Surge(Effect):
    __slots__ = ("militias", "amplitude", "decay_days")

    def __init__(self, spec):
        self.militias = list(spec.on)
        self.amplitude, self.decay_days = spec.amplitude, spec.decay_days

    def apply(self, world, stream) -> None:
        now = world.env.now
        for name in self.militias:
            world.militias[name].surge(now, self.amplitude, self.decay_days)


class Restraint(Effect):
    __slots__ = ("militias", "front", "factor", "duration_days", "drawn", "redirect")

    def __init__(self, spec):
        self.militias = list(spec.militias)
        self.front, self.factor, self.duration_days = spec.front, spec.factor, spec.duration_days
        self.drawn = spec.duration == "exponential"  # one length per application, shared by its militias
        self.redirect = spec.redirect

    def apply(self, world, stream) -> None:
        now = world.env.now
        duration = self.duration_days * stream.exponential() if self.drawn else self.duration_days
        for name in self.militias:
            world.militias[name].restrain(now, self.front, self.factor, duration, self.redirect)


class Chance(Effect):
    """An effect that happens with a probability: one uniform of the rule's or shock's stream
    decides, each time its response or shock happens (effects of probability 1 draw nothing)."""

    __slots__ = ("effect", "probability")

    def __init__(self, effect: Effect, probability: float):
        self.effect, self.probability = effect, probability

    def apply(self, world, stream) -> None:
        if stream.uniform() < self.probability:
            self.effect.apply(world, stream)


def compile_effect(blueprint, spec, owner: str | None):
    """The effect for a scenario effect, shared by every trial (it holds names, not actors);
    `owner` is the rule's actor (None for shocks)."""
    kind = spec.type
    if kind == "strike":
        effect = Strike(blueprint, spec.by or owner, spec)
    elif kind == "attack":
        effect = ForcedAttack(spec)
    elif kind == "surge":
        effect = Surge(spec)
    else:
        effect = Restraint(spec)
    return effect if spec.probability >= 1.0 else Chance(effect, spec.probability)
