"""The story of one trial: every event, in time order, with the event that caused it.

A `Tracer` handed to a `World` is told of each event as it happens: attacks and their hits,
strikes, shocks, rule decisions, restraints and pauses with their ends, surges, milestones,
and the level of each harm account after each deposit. It does no I/O and draws only from a
stream of its own (`TRACE_STREAM`), so a traced trial draws the same numbers, and reaches the
same outcome, as the trial run without it. Without a tracer the model calls nothing: the hooks
are a test of `world.tracer` on the rare paths (decisions, strikes, shocks, hits) and of a
local variable at each attack.

Causes. Every event names the event that produced it (`cause`, an event id), or none:

- an effect of a rule's response (a strike, a restraint, a surge, a forced attack) is caused by
  the decision that launched it; an effect of a shock by the shock;
- a decision by the incident whose deposit brought its account to the rule (an attack, a hit,
  a strike); a milestone by the incident that reached it; a restraint's end by its start;
- an attack by one part of the intensity that produced it, read as a branching process
  (Zhuang, Ogata & Vere-Jones 2002, J. Am. Stat. Assoc. 97): λ(t) = c·r·[(μ + R)·s + E] is a
  sum of parts — the base rate μ (spontaneous: no cause), the redirected effort R (the
  restraint on another front that moved it), each surge shock's share (μ + R)·(s_i − 1), and
  each earlier attack's remaining excitation α·β·exp(−β(t − t_j)) — and the attack's cause is
  drawn among them in proportion (the trace's own stream draws it);
- a random shock, a scheduled shock and a restraint in force at the start have no cause; in a
  forecast, what its history left at the origin (restraints, surges, excitation, responses
  decided but not launched) is caused by one root event at day 0, of kind `HISTORY`.

Following causes back from any event ends at a *root*: an event with no cause (a spontaneous
attack, a shock, a restraint in force at the start).
"""

from __future__ import annotations

import math
from bisect import bisect_right

from sim.model.harm import HarmAccount
from sim.model.milestones import MilestoneTracker

TRACE_STREAM = "trace"  # the name of the tracer's own stream (see `sim.model.streams`)
# A forecast's state at the origin (`sim.model.state`: restraints, surges, excitation, responses
# decided but not launched) traces back to one root event of this kind at day 0.
HISTORY = "history"

# The columns of a trace's events, in order (docs/model.md §8).
COLUMNS = ("event", "day", "kind", "actor", "target", "location", "weapon", "hits", "casualties", "deaths",
           "level", "threshold", "chance", "acted", "cause", "detail")
# A decision's own columns (empty on other rows): the level its rule's account was at, the rule's
# threshold and chance to act (allies' restraint included), and whether it acted.
DECISION_COLUMNS = ("level", "threshold", "chance", "acted")
LEVEL_COLUMNS = ("day", "event", "owner", "account", "level")
REBASE = 400.0  # β·(t − t_0) beyond which a channel's parents are re-weighted from a new reference time


class Parents:
    """Events whose weights decay at one rate β — the earlier attacks exciting one channel, or the
    surges of one decay time on one militia — with fixed weights from a reference time t0 and their
    running sums (for drawing one in proportion to what it adds to the intensity now)."""

    __slots__ = ("t0", "beta", "events", "cumulative")

    def __init__(self, t0: float, beta: float, old: Parents | None = None):
        self.t0, self.beta = t0, beta
        self.events: list[int] = []
        self.cumulative: list[float] = []
        if old is not None:  # re-weight the parents that still count from the new reference time
            scale = math.exp(beta * (old.t0 - t0))
            previous = 0.0
            for event, running in zip(old.events, old.cumulative, strict=True):
                weight = (running - previous) * scale
                previous = running
                if weight > 1e-300:
                    self.add(event, weight)

    def add(self, event: int, weight: float) -> None:
        self.events.append(event)
        self.cumulative.append((self.cumulative[-1] if self.cumulative else 0.0) + weight)

    def total(self, now: float) -> float:
        """Σ jump·exp(−β(now − t_j)): the excitation these parents leave at `now`."""
        return self.cumulative[-1] * math.exp(self.beta * (self.t0 - now)) if self.cumulative else 0.0

    def draw(self, u: float) -> int:
        return self.events[min(bisect_right(self.cumulative, u * self.cumulative[-1]), len(self.events) - 1)]


class Tracer:
    """Collects one trial's events (`rows`, dicts of `COLUMNS`) and account levels (`levels`)."""

    records_levels = True  # the world gives it accounts that report each deposit's level

    def __init__(self, stream):
        self.uniform = stream.uniform
        self.rows: list[dict] = []
        self.levels: list[tuple] = []
        self.current: int | None = None  # the event whose consequences are being worked out
        self.parents: dict[int, Parents] = {}  # id(channel) -> the earlier attacks that excite it
        self.surges: dict[str, dict[float, Parents]] = {}  # militia -> decay days τ -> its surges (weights: amplitudes)
        self.restraints: dict[int, int] = {}  # id(channel) -> the event that started its restraint
        self.splits: dict[int, list] = {}  # id(channel) -> how its redirected effort divides (`_split`)
        self.locations: dict[int, str] = {}  # id(channel) -> where its attacks land
        self.accounts: dict[int, tuple[str, str]] = {}  # id(account) -> (owner, name)
        self.milestones: dict[str, int] = {}  # milestone -> the event that reached it

    # --- wiring (the world tells the tracer what its objects are) --------------------------------

    def channel(self, channel, location: str) -> None:
        self.locations[id(channel)] = location

    def account(self, account, owner: str, name: str) -> None:
        self.accounts[id(account)] = (owner, name)

    # --- rows --------------------------------------------------------------------------------------

    def _row(self, day: float, kind: str, actor: str = "", target: str = "", location: str = "", weapon: str = "",
             hits: int = 0, casualties: int = 0, deaths: int = 0, cause: int | None = None, detail: str = "",
             decided: tuple | None = None) -> int:
        """Record an event; `decided`: a decision's (level, threshold, chance, acted)."""
        event = len(self.rows) + 1
        level, threshold, chance, acted = decided if decided is not None else (None, None, None, None)
        self.rows.append({"event": event, "day": day, "kind": kind, "actor": actor, "target": target,
                          "location": location, "weapon": weapon, "hits": hits, "casualties": casualties,
                          "deaths": deaths, "level": level, "threshold": threshold, "chance": chance,
                          "acted": acted, "cause": cause, "detail": detail})
        self.current = event
        return event

    # --- attacks -----------------------------------------------------------------------------------

    def attack(self, channel, now: float, rate: float, excitation: float) -> int:
        """An attack of `channel`'s own process, accepted at `now` (before it excites anything), when
        its intensity, less the capacity and restraint factors, was `rate` + `excitation`
        ((μ + R)·s + E: see `_attribute`)."""
        cause, how, share = self._attribute(channel, now, rate, excitation)
        event = self._row(now, "attack", channel.militia.name, channel.target, self.locations.get(id(channel), ""),
                          cause=cause, detail=f"{how}: {share:.0%} of the intensity")
        self._excites(channel, event, now)
        return event

    def forced(self, channel, now: float, hits: int, casualties: int, deaths: int) -> int:
        """An attack whose outcome the scenario gives (an effect), before it is recorded."""
        event = self._row(now, "hit" if hits else "attack", channel.militia.name, channel.target,
                          self.locations.get(id(channel), ""), hits=hits, casualties=casualties, deaths=deaths,
                          cause=self.current, detail="forced: its outcome is given by the scenario")
        self._excites(channel, event, now)
        return event

    def hit(self, weapon: str, casualties: int, deaths: int) -> None:
        """The attack just recorded hit, with `weapon`."""
        row = self.rows[-1]
        row.update(kind="hit", weapon=weapon, hits=1, casualties=casualties, deaths=deaths)

    def _excites(self, channel, event: int, now: float) -> None:
        """Keep an attack as a parent of the later attacks of the channels it excites (its own, and
        those that take their cue from it). The parents of one channel share its decay β, so each
        keeps a fixed weight jump·exp(β(t_j − t_0)) from the channel's reference time t_0, and their
        cumulative weights let `_attribute` draw one in O(log n). (`_join`, written out: this runs at
        every attack.)"""
        groups = self.parents
        jump = channel.self_jump
        receivers = ((channel, jump), *channel.excites) if jump else channel.excites
        for receiver, jump in receivers:
            key, beta = id(receiver), receiver.beta
            group = groups.get(key)
            if group is None or beta * (now - group.t0) > REBASE:
                group = groups[key] = Parents(now, beta, group)
            cumulative = group.cumulative
            group.events.append(event)
            cumulative.append((cumulative[-1] if cumulative else 0.0) + jump * math.exp(beta * (now - group.t0)))

    @staticmethod
    def _join(groups: dict, key, beta: float, event, now: float, jump: float) -> None:
        """Add `event`, of weight `jump` at `now` decaying at rate `beta`, to the group `groups[key]`."""
        group = groups.get(key)
        if group is None or beta * (now - group.t0) > REBASE:
            group = groups[key] = Parents(now, beta, group)
        group.add(event, jump * math.exp(beta * (now - group.t0)))

    def _attribute(self, channel, now: float, rate: float, excitation: float) -> tuple[int | None, str, float]:
        """Draw the part of λ(now) the attack came from: (its event — None for the base —, what the
        part is, its share of λ(now)). `rate` is (μ + R)·s and `excitation` E, as the channel's
        process has just worked them out. The parts are walked in a fixed order — the base μ, the
        redirected effort R (split among the restraints that moved it), the surges (μ + R)·(s − 1),
        the excitation E — with one uniform draw; a second picks the parent in the excitation, or the
        surge (by decay time, then within it) in the surges."""
        base = channel.base
        total = rate + excitation
        if total <= 0.0:
            return None, "spontaneous (base rate)", 1.0
        u = self.uniform() * total - base
        if u < 0.0:
            return None, "spontaneous (base rate)", base / total
        gap = channel.redirect_gap  # R(now), as `AttackChannel.redirect_at`
        redirect = channel.redirect_target + gap * math.exp((channel.redirect_t - now) / channel.militia.ramp_days) \
            if gap else channel.redirect_target
        if redirect > 0.0:
            split = self.splits.get(id(channel)) or self._split(channel)
            for share, start in split:
                w = redirect * share
                u -= w
                if u < 0.0:
                    how = "redirected effort of a restraint" if start is not None else "redirected effort"
                    return start, how, w / total
        surged = rate - base - max(redirect, 0.0)
        groups = self.surges.get(channel.militia.name)
        if groups and (u < surged or excitation <= 0.0):
            weights = [(group.total(now), group) for group in groups.values()]
            v = self.uniform() * sum(w for w, _ in weights)
            chosen = weights[-1][1]
            for w, group in weights:
                v -= w
                if v < 0.0:
                    chosen = group
                    break
            return chosen.draw(self.uniform()), "surge", max(surged, 0.0) / total
        parents = self.parents.get(id(channel))
        if excitation > 0.0 and parents is not None:
            return parents.draw(self.uniform()), "excited by an earlier attack", excitation / total
        return None, "spontaneous (base rate)", base / total  # rounding at the end of the walk

    def _split(self, channel) -> list[tuple[float, int | None]]:
        """How the effort redirected to `channel` divides among the restraints on its militia's other
        fronts that moved it: (share, the restraint's start event); [(1, None)] if none can be named.
        Kept until a restraint starts or ends (`restraint`, `lifted`)."""
        split = self.splits.get(id(channel))
        if not split:
            others = [((1.0 - o.restraint) * o.base, self.restraints.get(id(o)))
                      for o in channel.militia.channels.values()
                      if o is not channel and o.redirectable and o.restraint < 1.0]
            total = sum(w for w, _ in others)
            split = [(w / total, start) for w, start in others if w > 0.0] if total > 0.0 else []
            split = self.splits[id(channel)] = split or [(1.0, None)]
        return split

    # --- the rest ----------------------------------------------------------------------------------

    def strike(self, now: float, by: str, on: str, location: str, hits: int, casualties: int, deaths: int,
               capacity_loss: float) -> int:
        detail = f"destroys {capacity_loss:.0%} of the capacity left" if capacity_loss > 0.0 and on else ""
        return self._row(now, "strike", by, on, location, hits=hits, casualties=casualties, deaths=deaths,
                         cause=self.current, detail=detail)

    def shock(self, now: float, name: str, detail: str) -> int:
        return self._row(now, "shock", target=name, detail=detail)

    def decision(self, now: float, rule, level: float, acted: bool) -> int:
        owner, account = self.accounts.get(id(rule.account), (rule.owner, ""))
        detail = (f"rule {rule.name}: {account} at {level:.3g} >= threshold {rule.threshold:g}; chance to act "
                  f"{rule.p_act:.3g}; {'acts' if acted else 'holds back'}"
                  + (f" after {rule.delay_days:g} days" if acted and rule.delay_days else ""))
        cause = self.current
        event = self._row(now, "decision", rule.owner, rule.name, cause=cause, detail=detail,
                          decided=(level, rule.threshold, rule.p_act, acted))
        self.current = cause  # the other rules the same deposit brings to decide answer it too
        return event

    def restraint(self, now: float, channel, factor: float, end: float, redirect: bool) -> None:
        """A restraint (a pause, when a shock brings it) starts on `channel`."""
        self.splits.clear()
        cause = self.current
        pause = cause is not None and self.kind_of(cause) == "shock"
        detail = f"fire × {factor:.3g} until day {end:.1f}" + ("; effort moves to other fronts" if redirect else "")
        if cause is None:
            detail += "; in force at the start"
        # Called before the channel takes the merged episode: `channel.restraint` is the one in force.
        before = self.restraints.get(id(channel))
        kept = before is not None and channel.restraint < 1.0 and now < channel.restraint_end \
            and factor >= channel.restraint
        if kept:  # an episode no stronger than the one in force: the fire held back is still that one's
            detail += f"; merged into the restraint in force (event {before}), as strong or stronger"
        event = self._row(now, "pause start" if pause else "restraint start", channel.militia.name, channel.target,
                          cause=cause, detail=detail)
        if not kept:
            self.restraints[id(channel)] = event

    def lifted(self, now: float, channel) -> None:
        self.splits.clear()
        start = self.restraints.pop(id(channel), None)
        kind = "restraint end"
        if start is not None and self.kind_of(start) == "pause start":
            kind = "pause end"
        self._row(now, kind, channel.militia.name, channel.target, cause=start)

    def history(self, now: float) -> int:
        """The root of everything a forecast's history left at the origin (`sim.model.state.restore`)."""
        return self._row(now, HISTORY, detail="the state the history left at the origin: restraints, surges, "
                         "excitation, responses decided but not launched")

    def surge(self, now: float, militia: str, amplitude: float, decay_days: float) -> None:
        event = self._row(now, "surge", militia, cause=self.current,
                          detail=f"rate × (1 + {amplitude:g}·exp(−t/{decay_days:g} days))")
        self._join(self.surges.setdefault(militia, {}), decay_days, 1.0 / decay_days, event, now, amplitude)

    def milestone(self, now: float, name: str) -> None:
        cause = self.current
        event = self._row(now, "milestone", target=name, cause=cause)
        self.milestones[name] = event
        self.current = cause  # a milestone causes nothing: what follows is the incident's

    def level(self, now: float, account) -> None:
        owner, name = self.accounts.get(id(account), ("", ""))
        self.levels.append((now, self.current, owner, name, account.level(now)))

    # --- reading -----------------------------------------------------------------------------------

    def kind_of(self, event: int) -> str:
        return self.rows[event - 1]["kind"]

    def root_of(self, event: int) -> int:
        """The first event of `event`'s cause chain: one with no cause."""
        while True:
            cause = self.rows[event - 1]["cause"]
            if cause is None:
                return event
            event = cause

    def chain(self, event: int) -> list[int]:
        """`event` and its causes back to its root, the root first."""
        chain = [event]
        while (cause := self.rows[chain[-1] - 1]["cause"]) is not None:
            chain.append(cause)
        return chain[::-1]

    def root_label(self, event: int) -> str:
        """A root as pathways name it: the shock, the restraint in force at the start, or the
        spontaneous attacks of a militia on a front."""
        row = self.rows[self.root_of(event) - 1]
        return root_name(row["kind"], row["actor"], row["target"])


def root_vocabulary(scenario) -> list[str]:
    """Every root a trial of `scenario` can name (`root_name`), in a fixed order: its shocks, then each
    militia's fronts — the restraint in force there at the start (if any), its spontaneous attacks."""
    names = [root_name("shock", "", shock) for shock in scenario.shocks]
    if scenario.forecast is not None:  # its state at the start is a history's
        names.append(root_name(HISTORY, "", ""))
    for militia, spec in scenario.militias().items():
        for target, channel in spec.attacks.items():
            if channel.initial_restraint is not None:
                names.append(root_name("restraint start", militia, target))
            names.append(root_name("attack", militia, target))
    return names


def root_name(kind: str, actor: str, target: str) -> str:
    """How pathways name a root event of this kind, actor and target."""
    if kind == "shock":
        return f"shock {target}"
    if kind in ("attack", "hit"):
        return f"spontaneous attacks by {actor} on {target}"
    if kind == "restraint start":
        return f"restraint of {actor} on {target} at the start"
    if kind == HISTORY:
        return "the history before the origin"
    return f"{kind} {actor} on {target}".strip()


class RootTracer(Tracer):
    """A tracer that keeps, of each event, only the root of its cause chain: what a run records of
    every trial (`roots`, milestone → root name). Its events are not numbered: an event is named by
    its root (an event with no cause by itself, `root_name`), so an event's root is its cause's.
    It takes the same decisions and draws the same numbers from its stream as `Tracer`, so a
    trial's roots are those its full trace gives (tested)."""

    records_levels = False

    def __init__(self, stream):
        super().__init__(stream)
        self.names: dict[int, str] = {}  # id(channel) -> the name of its spontaneous attacks

    def _row(self, day: float, kind: str, actor: str = "", target: str = "", location: str = "", weapon: str = "",
             hits: int = 0, casualties: int = 0, deaths: int = 0, cause=None, detail: str = "",
             decided: tuple | None = None) -> str:
        event = self.current = root_name(kind, actor, target) if cause is None else cause
        return event

    def attack(self, channel, now: float, rate: float, excitation: float) -> str:
        cause = self._attribute(channel, now, rate, excitation)[0]
        if cause is None:
            cause = self.names.get(id(channel))
            if cause is None:
                cause = self.names[id(channel)] = root_name("attack", channel.militia.name, channel.target)
        self.current = cause
        self._excites(channel, cause, now)
        return cause

    def hit(self, weapon: str, casualties: int, deaths: int) -> None:
        pass  # a hit changes the attack's outcome, not its cause

    def kind_of(self, event) -> str:
        return ""  # the kinds are not kept: they name the rows (a pause or a restraint), not the roots

    def roots(self) -> dict[str, str]:
        """Milestone reached → the root of its cause chain, by name."""
        return dict(self.milestones)


class TracedAccount(HarmAccount):
    """A harm account that tells its tracer its level after each deposit."""

    __slots__ = ("tracer",)

    def deposit(self, now: float, amount: float) -> None:
        super().deposit(now, amount)
        self.tracer.level(now, self)


class TracedMilestone(MilestoneTracker):
    """A milestone that tells its tracer when it is reached, and by which incident."""

    __slots__ = ("tracer",)

    def observe(self, now: float, hits: int, casualties: int, deaths: int) -> None:
        if self.t is not None:
            return
        super().observe(now, hits, casualties, deaths)
        if self.t is not None:
            self.tracer.milestone(now, self.name)
