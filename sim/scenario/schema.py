"""The scenario file's schema: every key, its unit, its meaning and its valid range.

Pydantic v2 models with ``extra="forbid"`` (a typo is an error) and strict types (a string
where a number belongs is an error, never coerced). Field-level checks live on the fields;
checks that need the whole scenario (names that must refer to something, the branching
ratio, the ladder) live in `check_references`. Units are in the key names.

Collections of named things (actors, weapons, rules, shocks, milestones) are TOML tables
keyed by name, so `extends` can override one entry by its name and sweeps can address a
parameter by a readable dotted path such as ``actors.iri.attacks.israel.rate_per_day``.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal, NamedTuple, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sim.errors import did_you_mean

Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=40)]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=1e9)]
Positive = Annotated[float, Field(gt=0.0, le=1e9)]
# A duration: from 10⁻⁶ day (0.09 s; shorter ones vanish in the clock's rounding, 1/τ overflows)
# to a century.
Days = Annotated[float, Field(ge=1e-6, le=36_500.0)]
DayOffset = Annotated[float, Field(ge=0.0, le=36_500.0)]
Count = Annotated[int, Field(ge=0, le=1_000_000)]

MAX_TRIALS = 100_000_000
MAX_PARTICLES = 100_000
MAX_MONTHLY_CELLS = 20_000  # monthly series × months of one trial: a chunk of 1,000 trials holds 2·10⁷ counts
CALENDAR_END = dt.date(9999, 12, 1)  # the last month whose end Python's dates can hold


class Strict(BaseModel):
    """Base of every table: unknown keys, wrong types, NaN and infinities are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, frozen=True)


# --- metadata and run defaults -------------------------------------------------------------


class Meta(Strict):
    """What the scenario is and the period it covers."""

    name: Name = Field(
        description="The scenario's name (lowercase letters, digits and _), used in folder names and reports.")
    description: str = Field("",
        description="What the scenario assumes and, for a what-if, what its comparison with the baseline shows.")
    start_date: dt.date = Field(description="Calendar date of day 0 (YYYY-MM-DD, unquoted).")
    horizon_days: Days = Field(description="Length of each trial, in days from start_date.")

    @model_validator(mode="after")
    def _within_calendar(self) -> Meta:
        if (CALENDAR_END - self.start_date).days < self.horizon_days:
            raise ValueError(f"expected the horizon to end by {CALENDAR_END}, found start_date {self.start_date} "
                             f"and horizon_days {self.horizon_days:g}")
        return self


class RunDefaults(Strict):
    """Defaults for `escsim run` (the command line overrides trials and seed), and the most
    SimPy events one trial may process before it is stopped as a runaway (at most 10⁷, about
    half a minute of one core: a runaway must be stopped while the run is still worth waiting for)."""

    trials: Annotated[int, Field(ge=1, le=MAX_TRIALS)] = Field(1000,
        description="Monte Carlo trials of a run (the command line's --trials overrides it).")
    seed: Annotated[int, Field(ge=0, lt=2**63)] = Field(0,
        description="Master seed: the same seed gives the same results, byte for byte (--seed overrides it).")
    max_events_per_trial: Annotated[int, Field(ge=1_000, le=10**7)] = Field(1_000_000,
        description="SimPy events one trial may process before it is stopped as a runaway (a feedback loop).")


class SummaryOptions(Strict):
    """Which extra first-passage checkpoints `summary.csv` reports (`p_<milestone>_by_<N>d`)."""

    by_days: list[Days] = Field(default_factory=lambda: [30.0, 90.0, 180.0], max_length=20,
        description="Days after start at which summary.csv reports each milestone's probability (p_<milestone>_by_<N>d).")


# --- weapons ---------------------------------------------------------------------------------


class Weapon(Strict):
    """What one projectile of this type does once launched.

    Interception is a property of the defender (`State.interception`); these are the chances
    after a projectile is not intercepted.
    """

    p_hit: Probability = Field(description="Probability that a projectile not intercepted hits.")
    casualties_per_hit: NonNegative = Field(0.0,
        description="Mean casualties (killed or wounded) per hit.")
    casualties_dispersion: Positive | None = Field(None,
        description="Shape k of a negative binomial number of casualties per hit (variance mean + mean²/k: the "
                    "smaller, the heavier the tail of mass-casualty hits); absent: Poisson.")
    death_share: Probability = Field(0.0, description="Probability that each casualty is a death.")

    @model_validator(mode="after")
    def _dispersion_of_something(self) -> Weapon:
        if self.casualties_dispersion is not None and self.casualties_per_hit == 0:
            raise ValueError("expected casualties_dispersion only with casualties_per_hit above 0 (it shapes the "
                             "spread of a hit's casualties around their mean), found casualties_per_hit 0")
        return self


# --- incidents and filters -------------------------------------------------------------------


IncidentKind = Literal["attack", "strike"]
INCIDENT_KINDS: tuple[str, ...] = get_args(IncidentKind)


class Incident(NamedTuple):
    """The static part of an incident, as the model emits it and filters select it: who acted,
    on whom, where, and its kind (one of INCIDENT_KINDS). `Scenario.incidents` lists every one a
    scenario can produce; the model builds its incidents with `attack_incident` and
    `strike_incident`, so that the two cannot drift apart."""

    by: str
    on: str
    at: str
    kind: str


class IncidentFilter(Strict):
    """Selects incidents: who acted (`by`), on whom (`on`), where (`at`), of what kind.

    An absent list matches anything. Kinds: ``attack`` (a militia's attack) and ``strike``
    (a state's or patron's response, including direct salvos).
    """

    by: list[Name] | None = Field(None,
        description="Actors who acted (attacker or striker); absent: anyone. Each must be one that acts in the scenario.")
    on: list[Name] | None = Field(None,
        description="Actors acted on (target); absent: anyone. Each must be one that some incident falls on.")
    at: list[Name] | None = Field(None,
        description="Locations (a channel's location or target, a strike's at); absent: anywhere. Each must be one where some incident happens.")
    kind: IncidentKind | None = Field(None,
        description="Kind of incident: attack (a militia's) or strike (a state's or patron's); absent: both.")

    def matches(self, by: str, on: str, at: str, kind: str) -> bool:
        """Whether an incident by `by` on `on` at `at` of `kind` is selected (the model's routing
        and the scenario checks both ask this)."""
        return (
            (self.by is None or by in self.by)
            and (self.on is None or on in self.on)
            and (self.at is None or at in self.at)
            and (self.kind is None or self.kind == kind)
        )


class HarmSource(IncidentFilter):
    """Harm deposited by each matching incident, by what it did."""

    per_incident: NonNegative = Field(0.0, description="Harm deposited per matching incident.")
    per_hit: NonNegative = Field(0.0, description="Harm deposited per hit of a matching incident.")
    per_casualty: NonNegative = Field(0.0, description="Harm deposited per casualty of a matching incident.")
    per_death: NonNegative = Field(0.0, description="Harm deposited per death of a matching incident.")


class HarmAccount(Strict):
    """A running sum of harm that forgets: exponential decay, a sliding window, or neither."""

    decay_days: Days | None = Field(None,
        description="Time constant of exponential forgetting, in days (absent: no decay). Not with window_days.")
    window_days: Days | None = Field(None,
        description="Length of a sliding window, in days: harm older than this is forgotten (absent: no window). Not with decay_days.")
    sources: list[HarmSource] = Field(min_length=1, max_length=50,
        description="Which incidents deposit harm here, and how much.")

    @model_validator(mode="after")
    def _one_memory(self) -> HarmAccount:
        if self.decay_days is not None and self.window_days is not None:
            raise ValueError("expected decay_days or window_days, not both, found both")
        return self


# --- effects (responses of rules and consequences of shocks) --------------------------------


def _chance():
    return Field(1.0, description="Probability that this effect happens when its rule's response or its shock does "
                                  "(drawn for each effect on its own); 1: always.")


class StrikeEffect(Strict):
    """A state's or patron's strike: an incident by `by` on `on` at location `at`.

    `capacity_loss` is the share of the target militia's capacity destroyed; a `salvo` sends
    that many weapons of each type through the target's defences, otherwise casualties are
    Poisson with mean `casualties_mean` (negative binomial with `casualties_dispersion`).
    """

    type: Literal["strike"] = Field(description="The kind of effect: strike.")
    by: Name | None = Field(None,
        description="The striking state or patron; absent in a rule: the rule's owner (a shock's strike must say).")
    on: Name = Field(description="The actor struck.")
    at: Name = Field(description="Where the strike lands (a location name, matched by filters' at).")
    capacity_loss: Probability = Field(0.0,
        description="Share of the struck militia's capacity destroyed (0 for a strike on a state).")
    casualties_mean: NonNegative = Field(0.0, description="Mean casualties of a strike without a salvo.")
    casualties_dispersion: Positive | None = Field(None,
        description="Shape k of a negative binomial number of casualties of a strike without a salvo (variance "
                    "mean + mean²/k); absent: Poisson.")
    death_share: Probability = Field(0.0,
        description="Probability that each casualty of a strike without a salvo is a death.")
    salvo: dict[Name, Count] = Field(default_factory=dict,
        description="Weapons launched by type (a count of each), each going through the target's interception; absent: one hit with casualties_mean.")
    probability: Probability = _chance()

    @model_validator(mode="after")
    def _dispersion_of_something(self) -> StrikeEffect:
        if self.casualties_dispersion is not None:
            if self.salvo:
                raise ValueError("expected casualties_dispersion only on a strike without a salvo (a salvo's casualties "
                                 "follow its weapons' casualties_dispersion), found a salvo")
            if self.casualties_mean == 0:
                raise ValueError("expected casualties_dispersion only with casualties_mean above 0, found casualties_mean 0")
        return self


class AttackEffect(Strict):
    """A militia attack with a fixed outcome, for events history must not leave to chance."""

    type: Literal["attack"] = Field(description="The kind of effect: attack (with a fixed outcome).")
    by: Name = Field(description="The attacking militia.")
    on: Name = Field(description="The target: one the militia has an attack channel on.")
    hits: Count = Field(0, description="Hits of the attack.")
    casualties: Count = Field(0, description="Casualties of the attack (at least one hit if any).")
    deaths: Count = Field(0, description="Deaths of the attack (at most casualties).")
    probability: Probability = _chance()


class SurgeEffect(Strict):
    """A solidarity or grievance shock: militia rates multiplied by 1 + A·exp(−t/τ)."""

    type: Literal["surge"] = Field(description="The kind of effect: surge.")
    on: list[Name] = Field(min_length=1,
        description="Militias whose attack rates surge (each must have attack channels).")
    amplitude: NonNegative = Field(
        description="A in the rate multiplier 1 + A·exp(−t/τ): the extra share of the rate at once.")
    decay_days: Days = Field(description="τ in days: how fast the surge fades.")
    probability: Probability = _chance()


class RestrainEffect(Strict):
    """Rates of `militias` on `front` multiplied by `factor` for `duration_days`.

    Issued by a patron's rule to its proxies, or by a shock (a front that closes is a
    restraint with factor 0). With `redirect` true, a share of the suppressed effort moves to
    the other fronts (the militia's `redirect`); false for a pause that holds everywhere, such
    as a truce.
    """

    type: Literal["restrain"] = Field(description="The kind of effect: restrain.")
    militias: list[Name] = Field(min_length=1,
        description="Militias restrained (a rule's: proxies of its patron); each must attack the front.")
    front: Name = Field(description="The target state whose front is restrained.")
    factor: Probability = Field(description="Multiplier of the militias' rates on the front (0 closes it).")
    duration_days: Days = Field(description="How long the restraint lasts, in days (with duration = \"exponential\": its mean).")
    duration: Literal["fixed", "exponential"] = Field("fixed",
        description="fixed: the restraint lasts exactly duration_days; exponential: each time the effect happens its "
                    "length is drawn, exponential with mean duration_days (a pause as likely to end on any day).")
    redirect: bool = Field(True,
        description="Whether a share of the suppressed effort moves to the militia's other fronts (its `redirect` table); false for a pause that holds everywhere, such as a truce.")
    probability: Probability = _chance()


Effect = Annotated[
    StrikeEffect | AttackEffect | SurgeEffect | RestrainEffect, Field(discriminator="type")
]


# --- actors ----------------------------------------------------------------------------------


class InitialRestraint(Strict):
    """A restraint already in force at the start; its redirected effort has fully ramped.
    `redirect` false: the effort is held back, not moved (a campaign not yet begun)."""

    factor: Probability = Field(description="Multiplier of the channel's rate while the restraint lasts.")
    remaining_days: Days = Field(description="Days the restraint still lasts from day 0.")
    redirect: bool = Field(True,
        description="Whether the held-back effort moves to the militia's other fronts (already fully ramped at day 0); false: held back, not moved (a campaign not yet begun).")


class AttackChannel(Strict):
    """A militia's attacks on one target: base rate, weapon mix, and where they land."""

    rate_per_day: NonNegative = Field(description="Base rate of attacks on this target, per day.")
    weapons: dict[Name, Probability] = Field(min_length=1,
        description="Weapon mix: each weapon's share of attacks, summing to 1.")
    location: Name | None = Field(None,
        description="Where the attacks land (matched by filters' at); absent: the target's name.")
    initial_restraint: InitialRestraint | None = Field(None,
        description="A restraint of this channel already in force at day 0.")

    @field_validator("weapons")
    @classmethod
    def _mix_sums_to_one(cls, weapons: dict[str, float]) -> dict[str, float]:
        total = sum(weapons.values())
        if abs(total - 1.0) > 1e-6:
            shares = ", ".join(f"{w} {p:g}" for w, p in weapons.items())
            raise ValueError(f"expected weapon shares summing to 1, found {total:.10g} ({shares})")
        return weapons


class Excitation(Strict):
    """Hawkes excitation: each attack on a front by an Axis member raises this militia's rate
    on that front by `from[member]` expected extra attacks, spread over a kernel of mean
    `memory_days`."""

    model_config = ConfigDict(populate_by_name=True)

    memory_days: Days = Field(description="Mean of the excitation kernel, in days.")
    from_: dict[Name, NonNegative] = Field(alias="from", default_factory=dict,
        description="Expected extra attacks on a front that one attack there by each named Axis militia brings (α; the matrix's spectral radius must be below 1).")


class Redirect(Strict):
    """While a front is restrained, `share` of the suppressed effort moves to the other fronts,
    ramping up (and back down) with time constant `ramp_days`."""

    share: Probability = Field(
        description="Share of the effort suppressed on a restrained front that moves to the other fronts.")
    ramp_days: Days = Field(description="Time constant, in days, of the moved effort ramping up (and back down).")


class Militia(Strict):
    """An armed faction: one attack channel per target, capacity, excitation, redirection."""

    kind: Literal["militia"] = Field(description="The kind of actor: militia.")
    label: str = Field("", description="Name shown in reports.")
    axis: bool = Field(True, description="Whether the militia is an Axis member (its attacks can excite others).")
    attacks: dict[Name, AttackChannel] = Field(default_factory=dict, max_length=20,
        description="Attack channels by target state.")
    excitation: Excitation | None = Field(None, description="Self- and cross-excitation of attack rates (Hawkes).")
    redirect: Redirect | None = Field(None,
        description="How effort moves between fronts while one is restrained (needs channels on two fronts or more).")
    capacity_recovery_per_day: NonNegative = Field(0.0,
        description="Rate per day at which capacity lost to strikes is made good (exponential).")


class Rule(Strict):
    """When harm account `harm` is at or above `threshold` and the rule is off cooldown, the
    owner decides: with probability `probability` × Π(1 − ally restraint) it launches
    `response` after `delay_days`. Every decision, taken or not, starts the cooldown."""

    harm: Name = Field(description="The owner's harm account the rule watches.")
    threshold: Positive = Field(description="Harm at or above which the owner decides.")
    probability: Probability = Field(1.0, description="Probability of acting when deciding (before allies' restraint).")
    cooldown_days: DayOffset = Field(0.0, description="Days after a decision before the next one.")
    delay_days: DayOffset = Field(0.0, description="Days from the decision to the response.")
    ally_restraint: dict[Name, Probability] = Field(default_factory=dict,
        description="Probability that each named ally holds the owner back (the chance to act is multiplied by 1 − each).")
    discharge: Probability = Field(0.0, description="Share of the account's harm removed when the owner acts.")
    response: list[Effect] = Field(min_length=1, max_length=20, description="Effects of acting.")


class State(Strict):
    """A state (Israel, the US): defends, accumulates harm, retaliates by rules."""

    kind: Literal["state"] = Field(description="The kind of actor: state.")
    label: str = Field("", description="Name shown in reports.")
    interception: dict[Name, Probability] = Field(default_factory=dict,
        description="Probability of intercepting each weapon type aimed at this state.")
    harm: dict[Name, HarmAccount] = Field(default_factory=dict, max_length=20, description="Harm accounts by name.")
    rules: dict[Name, Rule] = Field(default_factory=dict, max_length=20, description="Retaliation rules by name.")


class Patron(State):
    """A state that sponsors proxies (Iran): its rules may also restrain them."""

    kind: Literal["patron"] = Field(
        description="The kind of actor: patron (a state that sponsors proxies and may restrain them).")  # type: ignore[assignment]
    proxies: list[Name] = Field(default_factory=list,
        description="Militias the patron sponsors and its rules may restrain.")


Actor = Annotated[Militia | State | Patron, Field(discriminator="kind")]


def attack_incident(militia: str, target: str, channel: AttackChannel) -> Incident:
    """The incident of an attack of `militia` on `target` through `channel` (forced attacks
    included): it lands at the channel's `location`, or on the target's own ground."""
    return Incident(militia, target, channel.location or target, "attack")


def strike_incident(effect: StrikeEffect, owner: str | None) -> Incident:
    """The incident of a strike effect, by its `by` or else by the rule's owner."""
    return Incident(effect.by or owner or "", effect.on, effect.at, "strike")


# --- shocks and milestones -------------------------------------------------------------------


class Pressure(Strict):
    """What raises a random shock's rate: a harm account of an actor. The shock arrives at
    rate_per_day + per_unit × the account's level at each instant (sampled exactly, by
    thinning); an account that decays makes the pressure fade with it."""

    actor: Name = Field(description="The state or patron whose harm account presses.")
    harm: Name = Field(description="The harm account of that actor.")
    per_unit: NonNegative = Field(description="Extra arrivals per day for each unit of harm held in the account.")


class Shock(Strict):
    """Something that happens to the system: on a date, on a day, or at random at a rate
    (which a harm account's `pressure` may raise)."""

    label: str = Field("", description="Name shown in reports.")
    date: dt.date | None = Field(None,
        description="Calendar date of a scheduled shock (one of date, day or rate_per_day).")
    day: DayOffset | None = Field(None, description="Day offset of a scheduled shock from start_date.")
    rate_per_day: NonNegative | None = Field(None, description="Rate of a random shock, per day (Poisson arrivals).")
    pressure: Pressure | None = Field(None,
        description="A harm account whose level raises a random shock's rate (rate_per_day + per_unit × level); "
                    "absent: a constant rate.")
    probability: Probability = Field(1.0, description="Probability that the shock's effects happen when it arrives.")
    effects: list[Effect] = Field(min_length=1, max_length=20, description="What happens.")

    @model_validator(mode="after")
    def _one_timing(self) -> Shock:
        given = [k for k in ("date", "day", "rate_per_day") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "expected exactly one of date, day or rate_per_day, found "
                + (", ".join(given) if given else "none")
            )
        if self.pressure is not None and self.rate_per_day is None:
            raise ValueError(f"expected pressure only on a random shock (with rate_per_day), found {given[0]}")
        return self


class MilestoneCondition(IncidentFilter):
    """An incident that counts towards a milestone; `min_*` set the outcome it needs."""

    min_hits: Count = Field(0, description="Hits an incident needs to count.")
    min_casualties: Count = Field(0, description="Casualties an incident needs to count.")
    min_deaths: Count = Field(0, description="Deaths an incident needs to count.")


class Milestone(Strict):
    """Reached at the first time `count` matching incidents fall within `within_days`. A milestone
    named in the `ladder` is a rung of it; one that is not is tracked (its probability and first
    day are reported) without counting towards a trial's highest rung."""

    label: str = Field("", description="Name shown in reports.")
    when: MilestoneCondition = Field(description="The incidents that count towards the milestone.")
    count: Annotated[int, Field(ge=1, le=10_000)] = Field(1,
        description="Matching incidents needed (within within_days, if given).")
    within_days: Days | None = Field(None,
        description="Window, in days, in which count incidents must fall (absent: any time).")


# --- the scenario ----------------------------------------------------------------------------


class Posterior(Strict):
    """Parameter draws from a calibrated fit: each trial picks one particle by weight and sets
    each fitted parameter, at its key paths in this scenario, to the particle's value. The
    loader fills this from `from_calibration`; a resolved scenario carries it whole."""

    fit: str = Field("", description="The fit's name and command (filled by the loader).")
    folder: str = Field("", description="The fit folder it was read from (empty when given inline).")  # the fit folder it was read from ("" when given inline)
    hash: str = Field("", description="Hash of the fit, pinned by parameters.fit_hash.")  # `loading.fit_hash` of the fit, which `parameters.fit_hash` pins
    parameters: list[Name] = Field(min_length=1, description="Names of the fitted parameters.")
    paths: list[list[str]] = Field(min_length=1,
        description="Key paths each fitted parameter sets, one list per parameter.")
    weights: list[Annotated[float, Field(ge=0.0)]] = Field(min_length=1, max_length=MAX_PARTICLES,
        description="Weight of each particle.")
    values: list[list[float]] = Field(min_length=1, max_length=MAX_PARTICLES,
        description="Each particle's values, one per parameter.")

    @model_validator(mode="after")
    def _shapes(self) -> Posterior:
        if len(self.paths) != len(self.parameters):
            raise ValueError(f"expected one list of paths per parameter ({len(self.parameters)}), found {len(self.paths)}")
        if len(self.values) != len(self.weights):
            raise ValueError(f"expected one weight per particle ({len(self.values)}), found {len(self.weights)}")
        odd = next((i for i, v in enumerate(self.values) if len(v) != len(self.parameters)), None)
        if odd is not None:
            raise ValueError(f"expected {len(self.parameters)} values per particle, found {len(self.values[odd])} in particle {odd}")
        if sum(self.weights) <= 0:
            raise ValueError("expected weights with a positive sum, found none")
        return self


class ParameterSource(Strict):
    """Where per-trial parameters come from. `from_calibration` names a fit folder (relative
    to the file; "" switches off a parent's fit); `apply` maps a fitted parameter to the key
    paths it sets here, when they differ from the paths it was fitted at; `fit_hash` pins the fit
    (a resolved scenario records it, so that a fit made again since is an error, not another run)."""

    from_calibration: str | None = Field(None,
        description="Fit folder (relative to the file) whose posterior each trial draws its parameters from; empty string: switch off a parent's fit.")
    fit_hash: str | None = Field(None,
        description="Hash the fit must have (a resolved scenario records it, so that a fit made again since is an error).")
    apply: dict[Name, list[str]] = Field(default_factory=dict,
        description="Key paths a fitted parameter sets here, when they differ from the path it was fitted at.")
    posterior: Posterior | None = Field(None,
        description="The fit's draws, as the loader fills them from from_calibration (not written by hand).")


REPORTING_PREFIX = "reporting."  # a fitted parameter's path into its targets' reporting model, not the scenario


class Reporting(Strict):
    """How a tracker's count of a series comes from what was launched: each launch is claimed
    (reported) with probability `claimed`, and claims with no launch behind them (spurious,
    inflated or double-counted) come at `spurious_per_launch` per launch and `spurious_per_day`
    per day, as Poisson counts. The defaults report every launch once and nothing else."""

    claimed: Probability = Field(1.0, description="Probability that a launch is claimed (reported).")
    spurious_per_launch: NonNegative = Field(0.0,
        description="Spurious claims per launch (a Poisson count of mean this times the launches).")
    spurious_per_day: NonNegative = Field(0.0,
        description="Spurious claims per day, whatever was launched (a Poisson count of mean this times the days).")
    why: str = Field("", description="Why these values (their source, or the reasoning).")


class ConditionCount(Strict):
    """A reported count the history must come close to (a calibration target before the origin)."""

    name: Name = Field(description="The target's name in the targets file.")
    series: Name = Field(description="The monthly series counted.")
    start_day: float = Field(ge=0.0, description="First day of the period, in the history's days.")
    end_day: float = Field(gt=0.0, description="Day after the period's last, in the history's days.")
    lo: NonNegative = Field(description="Lowest count observed.")
    hi: NonNegative | None = Field(None, description="Highest count observed (absent: a lower bound).")


class ConditionEvent(Strict):
    """An event that did or did not happen before a day of the history; the history must agree."""

    name: Name = Field(description="The target's name in the targets file.")
    milestone: Name = Field(description="The milestone whose first time is observed.")
    by_day: float = Field(gt=0.0, description="Day (exclusive) by which it had or had not happened.")
    happened: bool = Field(description="True: it had happened by then; false: it had not.")


class ForecastHistory(Strict):
    """What a forecast conditions on, resolved from `forecast.observed` when the scenario is run
    (filled by the runner, not written by hand): the history replay cut at the origin and the
    targets observed before it."""

    targets: str = Field(description="The targets file the conditions were read from.")
    history: dict = Field(description="The history replay as a resolved scenario (without parameters), run from its start to the origin.")
    origin_day: Positive = Field(description="The origin, in days after the history's start.")
    paths: list[list[str]] = Field(default_factory=list,
        description="Key paths of the history each of the forecast's fitted parameters sets (the fit's own).")
    counts: list[ConditionCount] = Field(default_factory=list, max_length=500,
        description="Counts observed before the origin.")
    events: list[ConditionEvent] = Field(default_factory=list, max_length=500,
        description="Events observed before the origin.")
    tolerance: Positive = Field(description="Largest root mean square miss of the counts a history may have (Anscombe scale).")
    left_out: list[str] = Field(default_factory=list,
        description="Targets observed on or after the origin, not conditioned on.")
    replaced: list[str] = Field(default_factory=list,
        description="Key paths of the forecast scenario that the history's state replaces (initial restraints).")
    fit_note: str = Field("", description="What the parameters' fit saw, against the origin.")
    reporting: dict[Name, Reporting] = Field(default_factory=dict,
        description="The targets' reporting model of each series that has one: its counts are claims drawn from the history's launches.")
    reporting_parameters: dict[Name, str] = Field(default_factory=dict,
        description="Fitted parameters of the reporting model (posterior parameter name -> series.field): each trial's particle sets them.")


class Forecast(Strict):
    """A forecast from the scenario's start date (the origin), with the state at the origin
    drawn from history: each trial runs the history replay of `observed` (its `[fit] scenario`)
    from its start to the origin with the trial's parameter draw, again and again until the
    history agrees with every count and event observed before the origin, and the forecast
    starts from the state that history left (`sim.model.state`)."""

    observed: str = Field(
        description="A calibration targets file (relative to this file): its [fit] scenario is the history replay, and its counts and events before the origin are what each trial's history must agree with; empty string: switch off a parent's forecast.")
    tolerance: Positive | None = Field(None,
        description="Largest root mean square miss of the counts before the origin (Anscombe scale, as the calibration's distance) a history may have; absent: the final tolerance of the fit the scenario draws its parameters from.")
    attempts: Annotated[int, Field(ge=1, le=100_000)] = Field(1000,
        description="Histories tried with one parameter draw before the trial draws its parameters again.")
    max_redrawn: Probability = Field(0.02,
        description="Largest share of trials that may draw their parameters again (their first draw is one that what was observed rules out): the run is an error when the lower end of the share's 95% interval lies above it.")
    resolved: ForecastHistory | None = Field(None,
        description="The history and conditions, as the runner resolves them from observed (not written by hand).")


class Scenario(Strict):
    """A whole scenario, after `extends` is resolved."""

    scenario: Meta = Field(description="What the scenario is and the period it covers.")
    run: RunDefaults = Field(RunDefaults(),
        description="Defaults for `escsim run`: trials, seed and the runaway guard.")
    summary: SummaryOptions = Field(SummaryOptions(),
        description="Extra first-passage checkpoints reported in summary.csv.")
    parameters: ParameterSource = Field(ParameterSource(),
        description="Where per-trial parameters come from (a calibrated fit).")
    weapons: dict[Name, Weapon] = Field(min_length=1, max_length=50,
        description="Weapon types by name: what one projectile does once launched.")
    actors: dict[Name, Actor] = Field(min_length=1, max_length=100,
        description="Actors by name: militias, states and patrons.")
    shocks: dict[Name, Shock] = Field(default_factory=dict, max_length=200,
        description="Shocks by name: events on a date, on a day, or at random.")
    milestones: dict[Name, Milestone] = Field(min_length=1, max_length=50,
        description="Milestones by name: incidents whose first occurrence the run reports.")
    ladder: list[Name] = Field(min_length=1, max_length=50,
        description="The escalation ladder: milestone names from the lowest rung to the highest; a trial's max_rung is the highest rung it reached. A milestone not named here is tracked without being a rung.")
    forecast: Forecast | None = Field(None,
        description="A forecast from start_date, its state at that origin conditioned on the history observed before it.")

    def with_changes(self, changes: dict[str, object]) -> Scenario:
        """A new scenario with the values at the given key paths changed, validated like a file:
        `baseline.with_changes({"actors.israel.rules.strike_in_iraq.threshold": 60.0})`.
        Scenarios are frozen (a trial's world is built from one that cannot change under it);
        this is the way to vary one in code, with the semantics of `--set`."""
        from sim.scenario.loading import with_changes

        return with_changes(self, changes)

    def incidents(self) -> list[Incident]:
        """Every kind of incident this scenario can produce, each once, in a fixed order: the
        attacks of each militia's channels, then the strikes of each rule and shock."""
        found: dict[Incident, None] = {}
        for name, m in self.militias().items():
            for target, ch in m.attacks.items():
                found[attack_incident(name, target, ch)] = None
        for name, st in self.states().items():
            for rule in st.rules.values():
                for eff in rule.response:
                    if isinstance(eff, StrikeEffect):
                        found[strike_incident(eff, name)] = None
        for shock in self.shocks.values():
            for eff in shock.effects:
                if isinstance(eff, StrikeEffect) and eff.by is not None:
                    found[strike_incident(eff, None)] = None
        return list(found)

    def militias(self) -> dict[str, Militia]:
        return {k: a for k, a in self.actors.items() if isinstance(a, Militia)}

    def states(self) -> dict[str, State]:
        return {k: a for k, a in self.actors.items() if isinstance(a, State)}

    def shock_day(self, shock: Shock) -> float | None:
        """Day offset of a scheduled shock, None for a random one."""
        if shock.date is not None:
            return float((shock.date - self.scenario.start_date).days)
        return shock.day


def check_references(scenario: Scenario) -> list[tuple[str, str]]:
    """Problems (key path, message) that need the whole scenario; empty when it is sound."""
    return ReferenceCheck(scenario).run()


class ReferenceCheck:
    """Checks that need the whole scenario: every name refers to something of the right kind,
    the excitation's branching ratio is below 1, and milestones and ladder agree."""

    def __init__(self, s: Scenario):
        self.s = s
        self.problems: list[tuple[str, str]] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append((path, message))

    def run(self) -> list[tuple[str, str]]:
        s = self.s
        militias, states = s.militias(), s.states()
        self.incidents = s.incidents()
        self.filters: list[tuple[str, IncidentFilter]] = []
        for name, m in militias.items():
            self._militia(name, m, militias, states)
        self._branching_ratio(militias)
        for name, st in states.items():
            self._state(name, st, militias, states)
        for name, shock in s.shocks.items():
            path = f"shocks.{name}"
            day = s.shock_day(shock)
            if day is not None and not 0 <= day < s.scenario.horizon_days:
                self.add(
                    path + (".date" if shock.date is not None else ".day"),
                    f"expected a time within the horizon (from day 0 to before day {s.scenario.horizon_days:g}"
                    f" from {s.scenario.start_date}), found day {day:g}",
                )
            if shock.pressure is not None:
                self._pressure(f"{path}.pressure", shock.pressure, states)
            for i, eff in enumerate(shock.effects):
                self._effect(f"{path}.effects[{i}]", eff, None, militias, states)
        for name, ms in s.milestones.items():
            self._filter(f"milestones.{name}.when", ms.when)
        if not self.problems:  # what incidents there can be is known once the actors and effects are sound
            for path, f in self.filters:
                self._filter_matches(path, f)
        self._ladder()
        self._posterior()
        self._monthly_cells(militias, states)
        return self.problems

    def _monthly_cells(self, militias: dict[str, Militia], states: dict[str, State]) -> None:
        """Each trial keeps a count per monthly series and month; too many would exhaust memory."""
        meta = self.s.scenario
        targets = {t for m in militias.values() for t in m.attacks}
        series = 2 * len(targets) + sum(1 for m in militias.values() if m.attacks) + len(states)
        last = meta.start_date + dt.timedelta(days=math.ceil(meta.horizon_days) - 1)  # the last day in [0, H)
        months = (last.year - meta.start_date.year) * 12 + last.month - meta.start_date.month + 1
        if series * months > MAX_MONTHLY_CELLS:
            self.add("scenario.horizon_days", f"expected at most {MAX_MONTHLY_CELLS:,} monthly counts per trial "
                     f"(monthly series × months), found {series} series × {months} months = {series * months:,}: "
                     "shorten the horizon or split the actors")

    def _posterior(self) -> None:
        from sim.scenario.paths import PathError, get

        posterior = self.s.parameters.posterior
        if posterior is None:
            return
        data = self.s.model_dump(mode="python", by_alias=True)
        for i, (name, paths) in enumerate(zip(posterior.parameters, posterior.paths, strict=True)):
            for path in paths:
                try:
                    value = get(data, path)
                except PathError as e:
                    self.add(f"parameters.posterior.paths[{i}]", f"expected key paths into this scenario for {name}: {e}")
                    continue
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    found = "no value (it is unset)" if value is None else type(value).__name__
                    self.add(f"parameters.posterior.paths[{i}]", f"expected {path} to lead to a number, for the fit "
                             f"draws {name} there, found {found}: set it, or run without the fit")

    def _pressure(self, path: str, p: Pressure, states: dict[str, State]) -> None:
        if p.actor not in states:
            self.add(f"{path}.actor", _unknown("a state or patron with harm accounts", states, p.actor))
        elif p.harm not in states[p.actor].harm:
            self.add(f"{path}.harm", _unknown(f"a harm account of {p.actor}", states[p.actor].harm, p.harm))

    def _actor_names(self, path: str, names: list[str] | None, pool: dict, what: str) -> None:
        for i, n in enumerate(names or []):
            if n not in pool:
                self.add(f"{path}[{i}]", f"expected {what} ({_choices(pool)}), found '{n}'{did_you_mean(n, pool)}")

    def _militia(self, name, m: Militia, militias, states) -> None:
        for target, ch in m.attacks.items():
            path = f"actors.{name}.attacks.{target}"
            if target not in states:
                self.add(path, f"expected a state or patron as target ({_choices(states)}), found '{target}'"
                         + did_you_mean(target, states))
            for w in ch.weapons:
                if w not in self.s.weapons:
                    self.add(f"{path}.weapons.{w}", _unknown("a weapon", self.s.weapons, w))
        if m.excitation is not None:
            if not m.attacks:
                self.add(f"actors.{name}.excitation", f"expected a militia with attack channels to excite, found {name} "
                         "with none (excitation raises its attack rates, and it has none)")
            for j, alpha in m.excitation.from_.items():
                if j not in militias or not militias[j].axis:
                    axis = {k: v for k, v in militias.items() if v.axis}
                    self.add(f"actors.{name}.excitation.from.{j}", _unknown("an Axis militia", axis, j))
                elif alpha > 0 and m.attacks and not set(militias[j].attacks) & set(m.attacks):
                    self.add(f"actors.{name}.excitation.from.{j}",
                             f"expected a militia that attacks a target {name} attacks ({', '.join(m.attacks)}): an "
                             f"attack excites on its own front only, found '{j}', which attacks "
                             f"{', '.join(militias[j].attacks) or 'nothing'}")
        if m.redirect is not None and m.redirect.share > 0 and len(m.attacks) < 2:
            self.add(f"actors.{name}.redirect", f"expected a militia with attack channels on at least two fronts for "
                     f"effort to move between, found {name} with {len(m.attacks) or 'none'}")

    def _branching_ratio(self, militias: dict[str, Militia]) -> None:
        names = list(militias)
        alpha = np.zeros((len(names), len(names)))
        for m_i, m in enumerate(names):
            ex = militias[m].excitation
            for j, a in (ex.from_.items() if ex else ()):
                if j in militias:
                    alpha[names.index(j), m_i] = a
        if len(names):
            radius = float(max(abs(np.linalg.eigvals(alpha))))
            if radius >= 1.0:
                # Name the one militia whose excitation is at fault when there is only one, so
                # the message points at its key (and the file that set it).
                excited = [m for m in names if militias[m].excitation and any(militias[m].excitation.from_.values())]
                self.add(
                    f"actors.{excited[0]}.excitation.from" if len(excited) == 1 else "actors.*.excitation.from",
                    "expected a branching ratio (spectral radius of the excitation matrix) "
                    f"below 1, or attacks multiply without end; found {radius:.3g}"
                    + (f" (excitation of {', '.join(excited)})" if len(excited) > 1 else ""),
                )

    def _state(self, name, st: State, militias, states) -> None:
        for w in st.interception:
            if w not in self.s.weapons:
                self.add(f"actors.{name}.interception.{w}", _unknown("a weapon", self.s.weapons, w))
        for acc_name, acc in st.harm.items():
            for i, src in enumerate(acc.sources):
                self._filter(f"actors.{name}.harm.{acc_name}.sources[{i}]", src)
        if isinstance(st, Patron):
            self._actor_names(f"actors.{name}.proxies", st.proxies, militias, "a militia")
        for rule_name, rule in st.rules.items():
            path = f"actors.{name}.rules.{rule_name}"
            if rule.harm not in st.harm:
                self.add(f"{path}.harm", _unknown(f"a harm account of {name}", st.harm, rule.harm))
            for ally in rule.ally_restraint:
                if ally not in states or ally == name:
                    others = {k: v for k, v in states.items() if k != name}
                    self.add(f"{path}.ally_restraint.{ally}", _unknown("another state", others, ally))
            for i, eff in enumerate(rule.response):
                self._effect(f"{path}.response[{i}]", eff, name, militias, states)

    def _effect(self, path, eff, owner: str | None, militias, states) -> None:
        actors = self.s.actors
        if isinstance(eff, StrikeEffect):
            by = eff.by or owner
            if by is None:
                self.add(f"{path}.by", "expected the striking state (a shock's strike must say by whom), found nothing")
            elif by not in states:
                self.add(f"{path}.by", _unknown("a state or patron", states, by))
            if eff.on not in actors:
                self.add(f"{path}.on", _unknown("an actor", actors, eff.on))
            if eff.capacity_loss > 0 and eff.on in actors and eff.on not in militias:
                self.add(f"{path}.capacity_loss", f"expected 0 for a strike on a state ('{eff.on}' has no capacity), found {eff.capacity_loss:g}")
            elif eff.capacity_loss > 0 and eff.on in militias and not militias[eff.on].attacks:
                self.add(f"{path}.capacity_loss", f"expected 0 for a strike on a militia without attack channels ('{eff.on}' "
                         f"has no attacks for its capacity to limit), found {eff.capacity_loss:g}")
            for w in eff.salvo:
                if w not in self.s.weapons:
                    self.add(f"{path}.salvo.{w}", _unknown("a weapon", self.s.weapons, w))
        elif isinstance(eff, AttackEffect):
            if eff.by not in militias:
                self.add(f"{path}.by", _unknown("a militia", militias, eff.by))
            elif eff.on not in militias[eff.by].attacks:
                self.add(f"{path}.on", _unknown(f"a target that {eff.by} has an attack channel on", militias[eff.by].attacks, eff.on))
            if eff.deaths > eff.casualties:
                self.add(f"{path}.deaths", f"expected at most casualties ({eff.casualties}), found {eff.deaths}")
            if eff.casualties > 0 and eff.hits == 0:
                self.add(f"{path}.hits", f"expected at least 1 hit for {eff.casualties} casualties, found 0")
        elif isinstance(eff, SurgeEffect):
            self._actor_names(f"{path}.on", eff.on, militias, "a militia")
            for i, m in enumerate(eff.on):
                if m in militias and not militias[m].attacks:
                    attacking = {k: v for k, v in militias.items() if v.attacks}
                    self.add(f"{path}.on[{i}]", f"expected a militia with attack channels, whose rates a surge raises "
                             f"({_choices(attacking)}), found '{m}', which has none")
        elif isinstance(eff, RestrainEffect):
            self._actor_names(f"{path}.militias", eff.militias, militias, "a militia")
            fronts = {t: None for m in militias.values() for t in m.attacks}
            if eff.front not in states:
                self.add(f"{path}.front", f"expected a front, i.e. a target state ({_choices(states)}), found '{eff.front}'"
                         + did_you_mean(eff.front, states))
            elif eff.front not in fronts:
                self.add(f"{path}.front", f"expected a front some militia attacks ({_choices(fronts)}), found '{eff.front}', "
                         "which no militia attacks")
            else:
                for i, m in enumerate(eff.militias):
                    if m in militias and eff.front not in militias[m].attacks:
                        attacks = militias[m].attacks
                        self.add(f"{path}.militias[{i}]",
                                 f"expected a militia with an attack channel on front {eff.front} to restrain, found '{m}', "
                                 + (f"which attacks only {', '.join(attacks)}" if attacks else "which has no attack channels"))
            if owner is not None:
                patron = self.s.actors[owner]
                proxies = patron.proxies if isinstance(patron, Patron) else []
                for i, m in enumerate(eff.militias):
                    if m not in proxies:
                        self.add(
                            f"{path}.militias[{i}]",
                            f"expected a proxy of {owner} (only a patron restrains, and only its proxies: "
                            f"{', '.join(proxies) or 'none'}), found '{m}'" + did_you_mean(m, proxies),
                        )

    def _filter(self, path: str, f: IncidentFilter) -> None:
        actors = self.s.actors
        for key in ("by", "on"):
            self._actor_names(f"{path}.{key}", getattr(f, key), actors, "an actor")
        self.filters.append((path, f))

    def _filter_matches(self, path: str, f: IncidentFilter) -> None:
        """Every name of a filter must be one some incident of the scenario carries, and some
        incident must match the whole filter: a filter that can never match is an error, not
        a milestone of probability 0 or a harm source that never deposits."""
        incidents = self.incidents
        before = len(self.problems)
        for key, role in (("by", "acts (attacks or strikes)"), ("on", "is attacked or struck")):
            produced = {getattr(i, key): None for i in incidents}
            for i, n in enumerate(getattr(f, key) or []):
                if n not in produced:
                    self.add(f"{path}.{key}[{i}]", f"expected an actor that {role} in this scenario ({_choices(produced)}), "
                             f"found '{n}', which never does")
        places = {i.at: None for i in incidents}
        for i, n in enumerate(f.at or []):
            if n not in places:
                self.add(f"{path}.at[{i}]", _unknown("a location where some attack or strike lands", places, n))
        kinds = {i.kind: None for i in incidents}
        if f.kind is not None and f.kind not in kinds:
            self.add(f"{path}.kind", f"expected a kind of incident this scenario produces ({_choices(kinds)}), "
                     f"found '{f.kind}', which nothing in it produces")
        if len(self.problems) == before and not any(f.matches(*i) for i in incidents):
            asked = "; ".join(f"{k} {', '.join(v) if isinstance(v, list) else v}"
                              for k in ("by", "on", "at", "kind") if (v := getattr(f, k)) is not None)
            near = [i for i in incidents if (f.by is None or i.by in f.by)] or incidents
            shown = ", ".join(f"{i.kind} by {i.by} on {i.on} at {i.at}" for i in near[:8])
            more = f" and {len(near) - 8} more" if len(near) > 8 else ""
            self.add(path, f"expected a filter that some incident of the scenario matches (such as {shown}{more}), "
                     f"found {asked or 'an empty filter'}, which none matches")

    def _ladder(self) -> None:
        s = self.s
        seen: set[str] = set()
        for i, rung in enumerate(s.ladder):
            if rung not in s.milestones:
                self.add(f"ladder[{i}]", _unknown("a milestone", s.milestones, rung))
            if rung in seen:
                self.add(f"ladder[{i}]", f"expected each milestone once, found '{rung}' again")
            seen.add(rung)


def _unknown(what: str, pool, found: str) -> str:
    """"expected <what> (one of ...), found '<found>'", with the closest name suggested."""
    return f"expected {what} ({_choices(pool)}), found '{found}'{did_you_mean(found, pool)}"


def _choices(pool) -> str:
    names = list(pool)
    if not names:
        return "none defined"
    return "one of " + ", ".join(names)
