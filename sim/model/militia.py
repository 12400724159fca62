"""Militias and their attack channels: the attack process of DESIGN §3.1.

The intensity of militia *m* on front (target) *k*, in attacks per day, is

    λ(t) = c(t) · r(t) · [ (μ + R(t)) · s(t) + E(t) ]

with capacity c (cut by strikes, recovering as dc/dt = κ(1 − c)), restraint r (a patron's
factor while an episode lasts), base rate μ, redirected effort R (relaxing towards its target
with the redirect ramp time), the surge multiplier s = 1 + Σ A·exp(−(t − t_s)/τ) of solidarity
and grievance shocks, and the Hawkes excitation E = Σ α·β·exp(−β(t − t_a)) over earlier
attacks on the same front by Axis members.

Each channel is one long-lived SimPy process that samples its attacks exactly by Ogata
thinning: it draws a candidate wait from an upper bound λ̄ of the intensity, valid until the
next outside change, and accepts the candidate with probability λ(t)/λ̄. Parts that only fall
between events (excitation, surges) are bounded by their present value; a recovering capacity
by its value at the end of a look-ahead window of 0.5/κ, after which the bound is renewed
(until what is left to recover is negligible: then by full capacity); a redirect ramping up
by its target. A change from outside that can raise the intensity
(another member's attack, a surge, a lifted restraint, a redirect) interrupts the wait so the
channel resamples; changes that only lower it need no interrupt, since thinning rejects.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import simpy

INF = math.inf
HALF_DECAY = math.exp(-0.5)  # capacity deficit left after a look-ahead window of 0.5/κ
# A recovering capacity's deficit below which the bound takes full capacity and needs no more
# look-ahead windows: renewing them would shave almost nothing off λ̄ and, with a fast
# recovery (a window every 0.5/κ days), cost events without end.
NEGLIGIBLE_DEFICIT = 1e-9


def single_decaying(deposits: list[tuple]) -> tuple:
    """(account, amount) when an attack deposits into one decaying account only, the common
    case, which the event loop then writes inline (a call per attack costs ~2% of a run);
    (None, None) otherwise."""
    if len(deposits) == 1 and deposits[0][0].decay_days is not None:
        return deposits[0]
    return None, None


class Militia:
    """A faction's shared state: capacity, surges, restraint-driven redirection of effort.

    Time-dependent pieces are stored with the time they were last brought up to date, so
    evaluating them again at the same instant costs no exponential.
    """

    __slots__ = (
        "name", "axis", "world", "channels", "deficit", "deficit_t", "recovery",
        "surges", "redirect_share", "ramp_days",
        "strikes_received",
    )

    def __init__(self, name, axis, world, recovery_per_day, redirect_share, ramp_days):
        self.name = name
        self.axis = axis
        self.world = world
        self.channels: dict[str, AttackChannel] = {}
        self.deficit = 0.0  # 1 − c at the last strike, which decays as exp(−κ(t − deficit_t))
        self.deficit_t = 0.0
        self.recovery = recovery_per_day
        self.surges: list[tuple[float, float, float]] = []  # (amplitude at t_s, t_s, 1/τ)
        self.redirect_share = redirect_share
        self.ramp_days = ramp_days
        self.strikes_received = 0

    # --- capacity ---------------------------------------------------------------------------

    def capacity_at(self, now: float) -> float:
        """c(now), recovering as dc/dt = κ(1 − c) since the last strike."""
        if self.deficit == 0.0:
            return 1.0
        return 1.0 - self.deficit * math.exp(self.recovery * (self.deficit_t - now))

    def strike(self, now: float, loss: float) -> None:
        """A strike destroys a share `loss` of what capacity is left (intensity only falls)."""
        self.strikes_received += 1
        self.deficit = 1.0 - self.capacity_at(now) * (1.0 - loss)
        self.deficit_t = now

    # --- surges -----------------------------------------------------------------------------

    def surge_level(self, now: float) -> float:
        """s(now) = 1 + Σ A·exp(−(now − t_s)/τ)."""
        s = 1.0
        for amplitude, t, inverse_tau in self.surges:
            s += amplitude * math.exp((t - now) * inverse_tau)
        return s

    def surge(self, now: float, amplitude: float, decay_days: float) -> None:
        """Add a shock A·exp(−(t − now)/τ); shocks sharing τ are kept as one exact sum."""
        if amplitude <= 0.0:
            return
        if self.world.tracer is not None:
            self.world.tracer.surge(now, self.name, amplitude, decay_days)
        inverse_tau = 1.0 / decay_days
        for i, (a, t, k) in enumerate(self.surges):
            if k == inverse_tau:
                self.surges[i] = (a * math.exp((t - now) * k) + amplitude, now, k)
                break
        else:
            self.surges.append((amplitude, now, inverse_tau))
        for ch in self.channels.values():
            ch.nudge()

    # --- restraint and redirection ----------------------------------------------------------

    def restrain(self, now: float, front: str, factor: float, duration_days: float,
                 redirect: bool = True) -> None:
        """Restrain the channel on `front`; overlapping episodes keep the stronger factor and
        the later end."""
        ch = self.channels.get(front)
        if ch is None:
            return
        ch.set_restraint(now, factor, now + duration_days, redirect)
        self.world.at(now + duration_days, ch.lift_restraint, ch.restraint_episode)
        self.update_redirect(now)

    def update_redirect(self, now: float, ramped: bool = False) -> None:
        """Share a `redirect_share` of the effort each redirecting restraint suppresses,
        (1 − r)·μ, equally among the militia's other fronts, where their own restraint applies
        to it; `ramped` sets it at once (a restraint already in force at the start)."""
        if self.redirect_share <= 0.0:
            return
        channels = list(self.channels.values())
        if len(channels) < 2:
            return
        share = self.redirect_share / (len(channels) - 1)
        for ch in channels:
            target = share * sum((1.0 - o.restraint) * o.base for o in channels if o is not ch and o.redirectable)
            ch.set_redirect(now, target, ramped)


class AttackChannel:
    """A militia's attacks on one target, sampled by Ogata thinning in one SimPy process."""

    __slots__ = (
        "militia", "target", "world", "env", "stream", "base", "hit_cum", "casualties_mean", "casualties_k",
        "death_share", "beta", "excitation", "excite_t", "excites", "self_jump", "restraint",
        "restraint_end", "restraint_episode", "redirectable", "redirect_gap", "redirect_t", "redirect_target",
        "route", "deposits", "milestones_all", "milestones_any", "series", "counts",
        "edges", "attacks", "hits_on", "process", "nudged", "rate0",
    )

    def __init__(self, militia: Militia, target: str, world, stream, base_rate, hit_cum,
                 casualties_mean, casualties_k, death_share, beta, route, series):
        self.militia = militia
        self.target = target
        self.world = world
        self.env = world.env
        self.stream = stream
        self.base = base_rate
        self.hit_cum = hit_cum
        self.casualties_mean = casualties_mean
        self.casualties_k = casualties_k  # per weapon: a negative binomial's shape, None for Poisson
        self.death_share = death_share
        self.beta = beta
        self.excitation = 0.0
        self.excite_t = 0.0
        self.self_jump = 0.0
        self.excites: list[tuple[AttackChannel, float]] = []
        self.restraint = 1.0
        self.restraint_end = 0.0
        self.restraint_episode = 0
        self.redirectable = True  # the restraint in force moves effort to other fronts
        self.redirect_target = 0.0
        self.redirect_gap = 0.0  # R − target at redirect_t; it decays as exp(−(t − redirect_t)/ramp)
        self.redirect_t = 0.0
        self.route = route
        self.deposits = route.deposits
        self.milestones_all = route.milestones
        self.milestones_any = [m for m in route.milestones if m.unconditional]
        self.series = series
        tally = world.tally
        self.counts, self.edges = tally.counts, tally.edges
        self.attacks = [0] * len(tally.months)  # this channel's attacks by month (see `fold_counts`)
        self.hits_on = tally.monthly[series[2]]
        self.rate0 = base_rate  # μ + R while R sits at its target
        self.process = None
        self.nudged = False

    def start(self) -> None:
        self.process = self.world.start(self._run())

    # --- intensity --------------------------------------------------------------------------

    def intensity(self, now: float) -> float:
        """λ(now), attacks per day, bringing every time-dependent piece up to `now`. The event
        loop computes the same inline, with its bound; this is the formula for readers and
        tests."""
        m = self.militia
        c = m.capacity_at(now)
        rate = self.base + self.redirect_at(now)
        if m.surges:
            rate *= m.surge_level(now)
        e = self.excitation
        if e and self.excite_t != now:
            e = self.excitation = e * math.exp(self.beta * (self.excite_t - now))
            self.excite_t = now
        return c * self.restraint * (rate + e)

    def redirect_at(self, now: float) -> float:
        """R(now), relaxing from its last change towards its target."""
        if not self.redirect_gap:
            return self.redirect_target
        return self.redirect_target + self.redirect_gap * math.exp((self.redirect_t - now) / self.militia.ramp_days)

    # --- outside changes --------------------------------------------------------------------

    def nudge(self) -> None:
        """The intensity may have risen from outside: make the process resample its wait."""
        process = self.process
        if process is None or self.nudged or process is self.env.active_process:
            return
        self.nudged = True
        process.interrupt()

    def excite(self, now: float, jump: float) -> None:
        e = self.excitation
        if e and self.excite_t != now:
            e *= math.exp(self.beta * (self.excite_t - now))
        self.excitation = e + jump
        self.excite_t = now

    def set_restraint(self, now: float, factor: float, end: float, redirect: bool = True) -> None:
        """Overlapping episodes keep the stronger factor and the later end; the merged episode
        redirects effort if either does."""
        if self.restraint < 1.0 and now < self.restraint_end:
            factor = min(factor, self.restraint)
            end = max(end, self.restraint_end)
            redirect = redirect or self.redirectable
        rises = factor > self.restraint  # an episode that ended this instant, not yet lifted
        if self.world.tracer is not None:
            self.world.tracer.restraint(now, self, factor, end, redirect)
        self.restraint = factor
        self.restraint_end = end
        self.redirectable = redirect
        self.restraint_episode += 1
        if rises:
            self.nudge()

    def lift_restraint(self, episode: int) -> None:
        if episode != self.restraint_episode or self.restraint >= 1.0:
            return
        now = self.env.now
        if now < self.restraint_end:
            self.world.at(self.restraint_end, self.lift_restraint, self.restraint_episode)
            return
        self.restraint = 1.0
        self.redirectable = True
        if self.world.tracer is not None:
            self.world.tracer.lifted(now, self)
        self.militia.update_redirect(now)
        self.nudge()

    def set_redirect(self, now: float, target: float, ramped: bool) -> None:
        current = target if ramped else self.redirect_at(now)
        self.redirect_gap = current - target
        self.redirect_t = now
        self.redirect_target = target
        self.rate0 = self.base + target
        if target > current:
            self.nudge()

    # --- the process ------------------------------------------------------------------------

    def _run(self):
        """The channel's process: Ogata thinning.

        At each step it brings the pieces of λ up to now and computes λ(now) and the bound
        λ̄ on [now, now + window]: excitation and surges only decay between events, so their
        present value bounds them; a recovering capacity is taken at the end of the window,
        a rising redirect at its target, and the bound is renewed when the window ends. A candidate wait is drawn
        from λ̄ and accepted with probability λ/λ̄ when it comes. `intensity` and the common
        case of an attack (no hit) are written inline: this loop is where a trial spends
        its time."""
        env = self.env
        timeout, event = env.timeout, env.event
        uniform = self.stream.uniform
        exp, log = math.exp, math.log
        m = self.militia
        recovery = m.recovery
        capacity_window = 0.5 / recovery if recovery > 0.0 else INF
        beta, base, self_jump = self.beta, self.base, self.self_jump
        ramp_days = m.ramp_days
        p_hit = self.hit_cum[-1]
        edges = self.edges
        month, next_edge = 0, edges[0] if edges else INF
        attacks = self.attacks
        excites, milestones_any = self.excites, self.milestones_any
        deposits_any = [(account, per_incident) for account, per_incident, *_ in self.deposits if per_incident]
        one, one_amount = single_decaying(deposits_any)
        inf, half_decay, negligible = INF, HALF_DECAY, NEGLIGIBLE_DEFICIT
        horizon = self.world.horizon
        tracer = self.world.tracer
        if tracer is not None and tracer.records_levels:  # every deposit through its account, which tells the tracer
            one = None
        candidate = False
        lam_bar = 0.0
        while True:
            now = env._now  # the `now` property costs a call; this loop reads it every event
            # λ(now), as `intensity`, and λ̄ on [now, now + window].
            deficit = m.deficit
            if deficit:
                if recovery > 0.0:
                    deficit *= exp(recovery * (m.deficit_t - now))
                    if deficit > negligible:
                        window = capacity_window
                        c_bar = 1.0 - deficit * half_decay
                    else:
                        window = inf
                        c_bar = 1.0
                else:
                    window = inf
                    c_bar = 1.0 - deficit
                c = 1.0 - deficit
            else:
                c = c_bar = 1.0
                window = inf
            gap = self.redirect_gap
            if gap:
                target = self.redirect_target
                redirect = target + gap * exp((self.redirect_t - now) / ramp_days)
                rate = base + redirect
                rate_bar = base + (target if gap < 0.0 else redirect)
            else:
                rate = rate_bar = self.rate0
            surges = m.surges
            if surges:
                surge = 1.0
                for amplitude, t, inverse_tau in surges:
                    surge += amplitude * exp((t - now) * inverse_tau)
                rate *= surge
                rate_bar *= surge
            e = self.excitation
            if e:
                e *= exp(beta * (self.excite_t - now))
            r = self.restraint
            cr_bar = c_bar * r
            next_bar = cr_bar * (rate_bar + e)
            lam = c * r * (rate + e)
            if candidate and (u := uniform() * lam_bar) < lam:
                # An attack. Its own excitation is the only rise of λ since the lines above:
                # outside changes that raise λ interrupt, and those that lower it keep λ̄ valid.
                # Given acceptance, u/λ is a fresh uniform: it decides the outcome.
                u /= lam
                if tracer is not None:
                    tracer.attack(self, now, rate, e)
                if u < p_hit:
                    next_bar += self.attack_hit(now, u)
                else:
                    while now >= next_edge:  # calendar month of the attack (time only moves on)
                        month += 1
                        next_edge = edges[month] if month < len(edges) else inf
                    attacks[month] += 1
                    if self_jump:
                        self.excitation = e + self_jump
                        self.excite_t = now
                        next_bar += cr_bar * self_jump
                    for channel, jump in excites:
                        channel.excite(now, jump)
                        channel.nudge()
                    for milestone in milestones_any:
                        if milestone.t is None:
                            milestone.observe(now, 0, 0, 0)
                    if one is not None:  # `HarmAccount.deposit` into a decaying account, inline
                        value = one.value = one.value * exp((one.t - now) / one.decay_days) + one_amount
                        one.t = now
                        if value >= one.trigger or now >= one.next_ready:
                            one.consider(now)
                    else:
                        for account, amount in deposits_any:
                            account.deposit(now, amount)
            lam_bar = next_bar
            candidate = False
            try:
                if lam_bar <= 0.0:
                    yield event()  # nothing but an outside change can raise λ, and it interrupts
                else:
                    wait = -log(1.0 - uniform()) / lam_bar
                    if wait > window:
                        wait = window
                    else:
                        candidate = True
                    if now + wait < horizon:
                        yield timeout(wait)
                    else:  # past the end of the trial: only an outside change can matter
                        yield event()
            except simpy.Interrupt:
                self.nudged = False
                candidate = False

    def attack_hit(self, now: float, u: float) -> float:
        """An attack that hits: the weapon from the hit table, then casualties and deaths.
        Returns the rise of λ̄ from the attack's self-excitation."""
        hit_cum = self.hit_cum
        w = 0
        while u >= hit_cum[w]:
            w += 1
        stream = self.stream
        k = self.casualties_k[w]
        casualties = stream.poisson(self.casualties_mean[w]) if k is None else \
            stream.negative_binomial(self.casualties_mean[w], k)
        deaths = stream.binomial(casualties, self.death_share[w]) if casualties else 0
        if self.world.tracer is not None:
            self.world.tracer.hit(self.world.arsenal.names[w], casualties, deaths)
        self.record(now, 1, casualties, deaths)
        m = self.militia
        deficit = m.deficit  # as in `_run`: c̄ is c at the end of the look-ahead window
        if deficit and m.recovery > 0.0:
            deficit *= math.exp(m.recovery * (m.deficit_t - now))
            deficit = deficit * HALF_DECAY if deficit > NEGLIGIBLE_DEFICIT else 0.0
        return (1.0 - deficit) * self.restraint * self.self_jump

    def fold_counts(self) -> None:
        """Add this channel's monthly attacks into `attacks_on_<target>` and `attacks_by_<militia>`
        (kept per channel during the trial: one count per attack instead of two)."""
        monthly = self.world.tally.monthly
        for row in (monthly[self.series[0]], monthly[self.series[1]]):
            for month, count in enumerate(self.attacks):
                row[month] += count

    def record(self, now: float, hits: int, casualties: int, deaths: int) -> None:
        """Count the attack, excite the front, and pass the incident to harm and milestones."""
        month = bisect_right(self.edges, now)
        self.attacks[month] += 1
        if hits:
            self.hits_on[month] += hits
            counts = self.counts
            counts[self.series[3]] += casualties
            counts[self.series[4]] += deaths
        if self.self_jump:
            self.excite(now, self.self_jump)
            self.nudge()  # a forced attack comes from outside the channel's own loop
        for channel, jump in self.excites:
            channel.excite(now, jump)
            channel.nudge()
        for milestone in self.milestones_any if not hits else self.milestones_all:
            if milestone.t is None:
                milestone.observe(now, hits, casualties, deaths)
        for account, per_incident, per_hit, per_casualty, per_death in self.deposits:
            amount = per_incident + per_hit * hits + per_casualty * casualties + per_death * deaths
            if amount:
                account.deposit(now, amount)
