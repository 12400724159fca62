"""Oracle tests: where theory knows the answer, the model must reproduce it within its Monte
Carlo error (tolerances are z standard errors of the sample, never picked to pass)."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from tests.conftest import Trials, assert_mean, hawkes_mean, make_scenario

N = 2000


def test_constant_rate_gives_poisson_counts():
    rate, horizon = 2.0, 50.0
    s = make_scenario({"actors": {"m": {"attacks": {"s": {"rate_per_day": rate}}}}}, horizon_days=horizon)
    counts = Trials(s, N).count("attacks_on_s")
    mean = rate * horizon
    assert_mean(counts, mean)
    # Sample variance of a Poisson sample: Var(s²) ≈ (μ4 − σ⁴)/n with μ4 = λ + 3λ².
    se_var = math.sqrt((mean + 2 * mean**2) / N)
    assert abs(counts.var(ddof=1) - mean) <= 4.5 * se_var
    # Distribution: chi-square goodness of fit over bins with enough expected counts.
    edges = np.arange(int(mean - 25), int(mean + 26), 5)
    observed = np.histogram(counts, bins=np.concatenate([[-1], edges, [10**6]]))[0]
    cdf = stats.poisson.cdf(np.concatenate([[-1], edges, [10**6]]), mean)
    expected = np.diff(cdf) * N
    assert stats.chisquare(observed, expected).pvalue > 1e-4


def test_monthly_counts_add_up_and_follow_calendar_months():
    s = make_scenario({"actors": {"m": {"attacks": {"s": {"rate_per_day": 3.0}}}}}, horizon_days=60.0)
    t = Trials(s, 400)
    k = t.monthly_series.index("attacks_on_s")
    monthly = t.result.monthly[:, k, :]
    assert t.months == ["2024-01", "2024-02"]
    assert (monthly.sum(axis=1) == t.count("attacks_on_s")).all()
    # January has 31 of the 60 days: its expected share of attacks is 31/60.
    assert_mean(monthly[:, 0], 3.0 * 31)
    assert_mean(monthly[:, 1], 3.0 * 29)


def test_interception_thins_attacks_into_poisson_hits():
    rate, horizon, p_int, p_hit, kappa, share = 5.0, 40.0, 0.6, 0.5, 0.8, 0.25
    s = make_scenario({
        "weapons": {"drone": {"p_hit": p_hit, "casualties_per_hit": kappa, "death_share": share}},
        "actors": {"m": {"attacks": {"s": {"rate_per_day": rate}}}, "s": {"interception": {"drone": p_int}}},
    }, horizon_days=horizon)
    t = Trials(s, N)
    hits = t.count("hits_on_s")
    m = rate * horizon * (1 - p_int) * p_hit
    assert_mean(hits, m)
    assert abs(hits.var(ddof=1) - m) <= 4.5 * math.sqrt((m + 2 * m**2) / N)
    # Casualties: a Poisson(κ) number per hit, so mean mκ; deaths a binomial share of them.
    assert_mean(t.count("casualties_on_s"), m * kappa)
    assert_mean(t.count("deaths_on_s"), m * kappa * share)
    assert (t.count("hits_on_s") <= t.count("attacks_on_s")).all()


def test_weapon_mix_sets_the_hit_rate():
    s = make_scenario({
        "weapons": {"drone": {"p_hit": 0.2}, "cruise_missile": {"p_hit": 0.9}},
        "actors": {
            "m": {"attacks": {"s": {"rate_per_day": 4.0, "weapons": {"drone": 0.75, "cruise_missile": 0.25}}}},
            "s": {"interception": {"drone": 0.5, "cruise_missile": 0.2}},
        },
    }, horizon_days=30.0)
    per_attack = 0.75 * 0.5 * 0.2 + 0.25 * 0.8 * 0.9
    assert_mean(Trials(s, N).count("hits_on_s"), 4.0 * 30.0 * per_attack)


def _threshold_scenario(rate: float, threshold: float, horizon: float):
    return make_scenario({
        "actors": {
            "m": {"attacks": {"s": {"rate_per_day": rate}}},
            "s": {
                "harm": {"attacks": {"sources": [{"by": ["m"], "per_incident": 1.0}]}},
                "rules": {"retaliate": {
                    "harm": "attacks", "threshold": threshold,
                    "response": [{"type": "strike", "on": "m", "at": "x"}],
                }},
            },
        },
        "milestones": {"strike": {"when": {"by": ["s"], "kind": "strike"}}},
        "ladder": ["first_attack", "strike"],
    }, horizon_days=horizon)


def test_threshold_on_poisson_attacks_gives_erlang_first_passage():
    rate, n = 0.5, 5
    t = Trials(_threshold_scenario(rate, float(n), 400.0), N)
    days = t.day("strike")
    assert not np.isnan(days).any()  # P(Erlang(5, 0.5) > 400) is about 1e-80
    assert stats.kstest(days, stats.gamma(a=n, scale=1 / rate).cdf).pvalue > 1e-4
    assert_mean(days, n / rate)
    # The first attack is Exp(rate).
    assert stats.kstest(t.day("first_attack"), stats.expon(scale=1 / rate).cdf).pvalue > 1e-4


def test_first_passage_is_censored_at_the_horizon():
    rate, n, horizon = 0.5, 5, 8.0
    days = Trials(_threshold_scenario(rate, float(n), horizon), N).day("strike")
    reached = ~np.isnan(days)
    assert (days[reached] <= horizon).all()
    p = stats.gamma(a=n, scale=1 / rate).cdf(horizon)
    assert abs(reached.mean() - p) <= 4.5 * math.sqrt(p * (1 - p) / N)


def test_self_excitation_matches_the_hawkes_mean():
    mu, alpha, memory, horizon = 1.0, 0.5, 7.0, 100.0
    s = make_scenario({"actors": {"m": {
        "attacks": {"s": {"rate_per_day": mu}},
        "excitation": {"memory_days": memory, "from": {"m": alpha}},
    }}}, horizon_days=horizon)
    expected = hawkes_mean(mu, alpha, memory, horizon)
    counts = Trials(s, N).count("attacks_on_s")
    assert_mean(counts, expected)
    # Overdispersed, as a cluster process must be.
    assert counts.var() > 1.5 * counts.mean()


def test_cross_excitation_between_axis_members():
    # Militia a excites b on the shared front; b's expected count gains α·E[N_a].
    mu_a, mu_b, alpha, memory, horizon = 2.0, 0.5, 0.3, 3.0, 60.0
    s = make_scenario({"actors": {
        "a": {"kind": "militia", "attacks": {"s": {"rate_per_day": mu_a, "weapons": {"drone": 1.0}}}},
        "m": {"attacks": {"s": {"rate_per_day": mu_b}}, "excitation": {"memory_days": memory, "from": {"a": alpha}}},
    }}, horizon_days=horizon)
    t = Trials(s, N)
    beta = 1.0 / memory
    # Each attack of a at time u adds α(1 − exp(−β(T − u))) expected attacks by b before T.
    expected_b = mu_b * horizon + alpha * mu_a * (horizon - (1 - math.exp(-beta * horizon)) / beta)
    assert_mean(t.count("attacks_by_m"), expected_b)
    assert_mean(t.count("attacks_by_a"), mu_a * horizon)


def test_capacity_cut_by_a_strike_recovers_exponentially():
    mu, loss, kappa, day, horizon = 2.0, 0.5, 0.1, 10.0, 60.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": mu}}, "capacity_recovery_per_day": kappa}},
        "shocks": {"strike": {"day": day, "effects": [
            {"type": "strike", "by": "s", "on": "m", "at": "x", "capacity_loss": loss}]}},
    }, horizon_days=horizon)
    rest = horizon - day
    expected = mu * (day + rest - loss * (1 - math.exp(-kappa * rest)) / kappa)
    assert_mean(Trials(s, N).count("attacks_on_s"), expected)


def test_capacity_without_recovery_stays_cut():
    mu, loss, day, horizon = 2.0, 0.75, 20.0, 60.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": mu}}}},
        "shocks": {"strike": {"day": day, "effects": [
            {"type": "strike", "by": "s", "on": "m", "at": "x", "capacity_loss": loss}]}},
    }, horizon_days=horizon)
    assert_mean(Trials(s, N).count("attacks_on_s"), mu * (day + (horizon - day) * (1 - loss)))


def test_surge_decays_exponentially():
    mu, amplitude, tau, day, horizon = 1.0, 2.0, 10.0, 5.0, 40.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": mu}}}},
        "shocks": {"solidarity": {"day": day, "effects": [
            {"type": "surge", "on": ["m"], "amplitude": amplitude, "decay_days": tau}]}},
    }, horizon_days=horizon)
    expected = mu * (horizon + amplitude * tau * (1 - math.exp(-(horizon - day) / tau)))
    assert_mean(Trials(s, N).count("attacks_on_s"), expected)


def test_two_surges_with_the_same_decay_add_up():
    mu, tau, horizon = 1.0, 5.0, 30.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": mu}}}},
        "shocks": {
            "first": {"day": 0.0, "effects": [{"type": "surge", "on": ["m"], "amplitude": 1.0, "decay_days": tau}]},
            "second": {"day": 10.0, "effects": [{"type": "surge", "on": ["m"], "amplitude": 3.0, "decay_days": tau}]},
        },
    }, horizon_days=horizon)
    expected = mu * (horizon + 1.0 * tau * (1 - math.exp(-horizon / tau)) + 3.0 * tau * (1 - math.exp(-(horizon - 10) / tau)))
    assert_mean(Trials(s, N).count("attacks_on_s"), expected)


def test_restraint_with_redirect_moves_effort_to_the_other_front():
    mu_a, mu_b, share, ramp, factor, duration, horizon = 1.0, 2.0, 0.5, 10.0, 0.25, 30.0, 60.0
    s = make_scenario({
        "actors": {
            "m": {
                "attacks": {"s": {"rate_per_day": mu_a}, "t": {"rate_per_day": mu_b, "weapons": {"drone": 1.0}}},
                "redirect": {"share": share, "ramp_days": ramp},
            },
            "t": {"kind": "state"},
        },
        "shocks": {"order": {"day": 0.0, "effects": [
            {"type": "restrain", "militias": ["m"], "front": "t", "factor": factor, "duration_days": duration}]}},
    }, horizon_days=horizon)
    t = Trials(s, N)
    assert_mean(t.count("attacks_on_t"), mu_b * (factor * duration + (horizon - duration)))
    target = share * (1 - factor) * mu_b
    ramped = target * (duration - ramp * (1 - math.exp(-duration / ramp)))
    at_lift = target * (1 - math.exp(-duration / ramp))
    decay = at_lift * ramp * (1 - math.exp(-(horizon - duration) / ramp))
    assert_mean(t.count("attacks_on_s"), mu_a * horizon + ramped + decay)


def test_initial_restraint_starts_with_redirect_fully_ramped():
    mu_a, mu_b, share, factor, remaining, horizon = 0.5, 2.0, 0.5, 0.0, 20.0, 50.0
    s = make_scenario({
        "actors": {
            "m": {
                "attacks": {
                    "s": {"rate_per_day": mu_a},
                    "t": {"rate_per_day": mu_b, "weapons": {"drone": 1.0},
                          "initial_restraint": {"factor": factor, "remaining_days": remaining}},
                },
                "redirect": {"share": share, "ramp_days": 5.0},
            },
            "t": {"kind": "state"},
        },
    }, horizon_days=horizon)
    t = Trials(s, N)
    assert_mean(t.count("attacks_on_t"), mu_b * (horizon - remaining))
    target = share * mu_b
    after = target * 5.0 * (1 - math.exp(-(horizon - remaining) / 5.0))
    assert_mean(t.count("attacks_on_s"), mu_a * horizon + target * remaining + after)


def test_random_shocks_arrive_as_a_poisson_process():
    rate, horizon = 0.2, 100.0
    s = make_scenario({"shocks": {"raids": {"rate_per_day": rate, "effects": [
        {"type": "strike", "by": "s", "on": "m", "at": "x"}]}}}, horizon_days=horizon)
    strikes = Trials(s, N).count("strikes_by_s")
    assert_mean(strikes, rate * horizon)
    assert abs(strikes.var(ddof=1) - rate * horizon) <= 4.5 * math.sqrt((20 + 2 * 400) / N)


def test_salvo_goes_through_the_defence_missile_by_missile():
    count, p_int, p_hit = 100, 0.8, 0.5
    s = make_scenario({
        "weapons": {"ballistic_missile": {"p_hit": p_hit}},
        "actors": {
            "s": {"interception": {"ballistic_missile": p_int}},
            "p": {"kind": "patron", "harm": {"h": {"sources": [{"by": ["s"], "on": ["m"], "per_incident": 1.0}]}},
                  "rules": {"fire": {"harm": "h", "threshold": 1.0, "response": [
                      {"type": "strike", "on": "s", "at": "s", "salvo": {"ballistic_missile": count}}]}}},
        },
        "shocks": {"provocation": {"day": 1.0, "effects": [{"type": "strike", "by": "s", "on": "m", "at": "x"}]}},
        "milestones": {"salvo_hits": {"when": {"by": ["p"], "min_hits": 15}}},
        "ladder": ["first_attack", "salvo_hits"],
    }, horizon_days=10.0)
    reached = ~np.isnan(Trials(s, N).day("salvo_hits"))
    p = stats.binom.sf(14, count, (1 - p_int) * p_hit)
    assert abs(reached.mean() - p) <= 4.5 * math.sqrt(p * (1 - p) / N)


def test_self_excitation_of_a_quiet_channel_starts_at_its_first_attack():
    # A low base rate puts the first attack late: its offspring must not be discounted by the
    # time before it.
    mu, alpha, memory, horizon = 0.02, 0.6, 20.0, 150.0
    s = make_scenario({"weapons": {"drone": {"p_hit": 0.0}}, "actors": {"m": {
        "attacks": {"s": {"rate_per_day": mu}},
        "excitation": {"memory_days": memory, "from": {"m": alpha}},
    }}}, horizon_days=horizon)
    expected = hawkes_mean(mu, alpha, memory, horizon)
    assert_mean(Trials(s, 4000).count("attacks_on_s"), expected)


def test_forced_attack_excites_its_own_channel():
    # No base rate: every attack descends from the forced one, E[N] = α/(1 − α) offspring.
    alpha, memory = 0.5, 5.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": 0.0}},
                         "excitation": {"memory_days": memory, "from": {"m": alpha}}}},
        "shocks": {"spark": {"day": 1.0, "effects": [{"type": "attack", "by": "m", "on": "s"}]}},
    }, horizon_days=300.0)
    assert_mean(Trials(s, N).count("attacks_on_s") - 1, alpha / (1 - alpha))


def test_redirected_effort_meets_the_receiving_fronts_own_restraint():
    # Both fronts restrained for the whole horizon: each receives the other's suppressed effort
    # (share φ), scaled by its own factor on arrival.
    mu_s, mu_t, r_s, r_t, share, horizon = 1.0, 2.0, 0.5, 0.2, 0.6, 40.0
    s = make_scenario({
        "actors": {
            "m": {
                "attacks": {
                    "s": {"rate_per_day": mu_s, "initial_restraint": {"factor": r_s, "remaining_days": 100.0}},
                    "t": {"rate_per_day": mu_t, "weapons": {"drone": 1.0},
                          "initial_restraint": {"factor": r_t, "remaining_days": 100.0}},
                },
                "redirect": {"share": share, "ramp_days": 5.0},
            },
            "t": {"kind": "state"},
        },
    }, horizon_days=horizon)
    t = Trials(s, N)
    assert_mean(t.count("attacks_on_s"), r_s * (mu_s + share * (1 - r_t) * mu_t) * horizon)
    assert_mean(t.count("attacks_on_t"), r_t * (mu_t + share * (1 - r_s) * mu_s) * horizon)


def test_an_empty_salvo_hits_nothing():
    s = make_scenario({
        "weapons": {"ballistic_missile": {"p_hit": 1.0, "casualties_per_hit": 3.0}},
        "actors": {"p": {"kind": "patron"}},
        "shocks": {"bluff": {"day": 1.0, "effects": [
            {"type": "strike", "by": "p", "on": "s", "at": "s", "casualties_mean": 5.0,
             "salvo": {"ballistic_missile": 0}}]}},
        "milestones": {"struck": {"when": {"by": ["p"], "min_hits": 1}}},
        "ladder": ["first_attack", "struck"],
    }, horizon_days=5.0)
    t = Trials(s, 50)
    assert (t.count("strikes_by_p") == 1).all()
    assert np.isnan(t.day("struck")).all()


def test_a_restraint_that_does_not_redirect_holds_effort_back():
    mu_a, mu_b, share, horizon = 1.0, 2.0, 0.5, 40.0
    s = make_scenario({
        "actors": {
            "m": {
                "attacks": {"s": {"rate_per_day": mu_a},
                            "t": {"rate_per_day": mu_b, "weapons": {"drone": 1.0},
                                  "initial_restraint": {"factor": 0.0, "remaining_days": 10.0, "redirect": False}}},
                "redirect": {"share": share, "ramp_days": 5.0},
            },
            "t": {"kind": "state"},
        },
        "shocks": {"truce": {"day": 20.0, "effects": [
            {"type": "restrain", "militias": ["m"], "front": "s", "factor": 0.0, "duration_days": 5.0,
             "redirect": False}]}},
    }, horizon_days=horizon)
    t = Trials(s, N)
    assert_mean(t.count("attacks_on_s"), mu_a * (horizon - 5.0))
    assert_mean(t.count("attacks_on_t"), mu_b * (horizon - 10.0))


# --- heavy-tailed harm: negative binomial casualties ---------------------------------------------


def _negative_binomial_sample(mean: float, k: float, n: int, seed: int = 7) -> np.ndarray:
    from sim.model.streams import Stream

    stream = Stream(seed)
    return np.array([stream.negative_binomial(mean, k) for _ in range(n)])


def test_negative_binomial_casualties_have_the_mean_variance_and_tail_of_scipys():
    """The sampler against scipy.stats.nbinom (n = k, p = k/(k+m)): the mean, the variance (its
    standard error from the fourth central moment), the chance of a mass-casualty draw, and the
    whole distribution by chi-square; a heavy tail (k = 0.1) and a mild one (k = 5)."""
    n = 200_000
    for mean, k in ((0.5, 0.1), (3.0, 5.0)):
        x = _negative_binomial_sample(mean, k, n)
        law = stats.nbinom(k, k / (k + mean))
        assert_mean(x, mean)
        var = law.var()
        mu4 = law.moment(4) - 4 * law.mean() * law.moment(3) + 6 * law.mean() ** 2 * law.moment(2) - 3 * law.mean() ** 4
        assert abs(x.var(ddof=1) - var) <= 4.5 * math.sqrt((mu4 - var**2) / n), (mean, k)
        for t in (5, 10, 20):
            p = law.sf(t - 1)  # P(X ≥ t)
            assert abs((x >= t).mean() - p) <= 4.5 * math.sqrt(p * (1 - p) / n) + 1e-12, (mean, k, t)
        top = int(law.ppf(0.999))
        edges = np.arange(0, top + 1)
        observed = np.array([(x == j).sum() for j in edges[:-1]] + [(x >= top).sum()])
        expected = np.append(law.pmf(edges[:-1]), law.sf(top - 1)) * n
        assert stats.chisquare(observed, expected).pvalue > 1e-4, (mean, k)


def test_a_huge_negative_binomial_mean_is_drawn_by_numpys_sampler_with_the_same_law():
    """Above LARGE_MEAN (inversion would take about `mean` steps per draw), and where P(0) underflows."""
    n = 4000
    for mean, k in ((1e6, 60.0), (50.0, 1e5)):
        x = _negative_binomial_sample(mean, k, n)
        law = stats.nbinom(k, k / (k + mean))
        assert_mean(x, mean)
        assert abs(x.var(ddof=1) / law.var() - 1) < 0.15


def test_overdispersed_casualties_per_hit_reach_the_model_as_drawn():
    """Through a trial: given a trial's H hits, its casualties are a sum of H negative binomials,
    mean H·κ and variance H·κ + H·κ²/k; a Poisson would give variance H·κ only (a third of it here)."""
    rate, horizon, kappa, k = 2.0, 30.0, 1.0, 0.5
    s = make_scenario({
        "weapons": {"drone": {"p_hit": 1.0, "casualties_per_hit": kappa, "casualties_dispersion": k}},
        "actors": {"m": {"attacks": {"s": {"rate_per_day": rate}}}, "s": {"interception": {"drone": 0.0}}},
    }, horizon_days=horizon)
    t = Trials(s, N)
    hits, casualties = t.count("hits_on_s").astype(float), t.count("casualties_on_s").astype(float)
    assert_mean(casualties - hits * kappa, 0.0)
    residual = (casualties - hits * kappa) ** 2
    expected = hits * kappa + hits * kappa**2 / k
    assert_mean(residual - expected, 0.0)


def test_a_strike_and_a_salvo_draw_overdispersed_casualties_too():
    """A strike without a salvo: one negative binomial; a salvo of h hits: one of mean h·κ and shape h·k.
    Seen through milestones on the strike's casualties: P(at least t) against the law's tail."""
    tails = (1, 5, 15, 30)

    def reached(strike: dict) -> list[float]:
        s = make_scenario({
            "weapons": {"ballistic_missile": {"p_hit": 1.0, "casualties_per_hit": 2.0, "casualties_dispersion": 0.5}},
            "actors": {"s": {"interception": {"ballistic_missile": 0.0}}, "p": {"kind": "patron"}},
            "shocks": {"strike": {"day": 1.0, "effects": [{"type": "strike", "by": "p", "on": "s", "at": "s", **strike}]}},
            "milestones": {f"at_least_{c}": {"when": {"by": ["p"], "min_casualties": c}} for c in tails},
            "ladder": ["first_attack", *(f"at_least_{c}" for c in tails)],
        }, horizon_days=10.0)
        t = Trials(s, N)
        return [float((~np.isnan(t.day(f"at_least_{c}"))).mean()) for c in tails]

    for strike, law in (({"casualties_mean": 3.0, "casualties_dispersion": 1.0}, stats.nbinom(1.0, 1.0 / 4.0)),
                        ({"salvo": {"ballistic_missile": 4}}, stats.nbinom(2.0, 2.0 / 10.0))):  # 4 hits: mean 8, k 2
        for c, share in zip(tails, reached(strike), strict=True):
            p = law.sf(c - 1)
            assert abs(share - p) <= 4.5 * math.sqrt(p * (1 - p) / N), (strike, c, share, p)


def test_a_pause_of_exponential_length_ends_as_drawn():
    """A pause (a restraint to 0 from day 0) whose length is drawn, exponential of mean d: the first
    attack comes at D + E, D ~ Exp(1/d) and E ~ Exp(r) the wait at rate r after it, so
    P(first attack > t) = (r·e^(−t/d) − (1/d)·e^(−r·t)) / (r − 1/d)."""
    rate, mean = 5.0, 10.0
    s = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": rate}}}},
        "shocks": {"pause": {"day": 0.0, "effects": [{"type": "restrain", "militias": ["m"], "front": "s", "factor": 0.0,
                                                      "duration_days": mean, "duration": "exponential",
                                                      "redirect": False}]}},
    }, horizon_days=80.0)
    first = Trials(s, N).day("first_attack")
    a = 1.0 / mean
    for t in (2.0, 5.0, 10.0, 20.0, 40.0):
        p = (rate * math.exp(-a * t) - a * math.exp(-rate * t)) / (rate - a)
        share = float((np.nan_to_num(first, nan=np.inf) > t).mean())
        assert abs(share - p) <= 4.5 * math.sqrt(p * (1 - p) / N), (t, share, p)
    fixed = make_scenario({
        "actors": {"m": {"attacks": {"s": {"rate_per_day": rate}}}},
        "shocks": {"pause": {"day": 0.0, "effects": [{"type": "restrain", "militias": ["m"], "front": "s", "factor": 0.0,
                                                      "duration_days": mean, "redirect": False}]}},
    }, horizon_days=80.0)
    assert (Trials(fixed, 200).day("first_attack") >= mean).all()  # fixed: never before the pause ends


def _pressured(base: float, per_unit: float, memory: dict, horizon: float):
    """A state whose harm account takes 10 at forced attacks on days 10 and 30 (the militia attacks
    on no other day), and a random shock (a strike on the militia) at rate base + per_unit × H(t)."""
    forced = {"type": "attack", "by": "m", "on": "s", "hits": 1}
    return make_scenario({
        "actors": {
            "m": {"attacks": {"s": {"rate_per_day": 0.0}}},
            "s": {"harm": {"pressure": {**memory, "sources": [{"by": ["m"], "on": ["s"], "per_incident": 10.0}]}}},
        },
        "shocks": {
            "first": {"day": 10.0, "effects": [forced]},
            "second": {"day": 30.0, "effects": [forced]},
            "raid": {"rate_per_day": base, "pressure": {"actor": "s", "harm": "pressure", "per_unit": per_unit},
                     "effects": [{"type": "strike", "by": "s", "on": "m", "at": "x"}]},
        },
        "milestones": {"first_raid": {"when": {"by": ["s"], "kind": "strike"}}},
    }, horizon_days=horizon)


def test_a_pressured_shock_arrives_at_its_rate_plus_the_decaying_pressure():
    """Arrivals of an inhomogeneous Poisson process of rate b + c·H(t), H jumping by 10 on days 10
    and 30 and decaying with time constant τ: their number is Poisson with mean
    b·T + Σ c·10·τ·(1 − e^(−(T − t_i)/τ)), and none come before the first jump when b = 0."""
    base, c, tau, horizon = 0.05, 0.02, 15.0, 60.0
    raids = Trials(_pressured(base, c, {"decay_days": tau}, horizon), N).count("strikes_by_s")
    expected = base * horizon + sum(c * 10 * tau * (1 - math.exp(-(horizon - t) / tau)) for t in (10.0, 30.0))
    assert_mean(raids, expected)
    assert abs(raids.var(ddof=1) - expected) <= 4.5 * math.sqrt((expected + 2 * expected**2) / N)  # Poisson
    first = Trials(_pressured(0.0, c, {"decay_days": tau}, horizon), 500).day("first_raid")
    assert (np.nan_to_num(first, nan=np.inf) >= 10.0).all()


def test_a_pressured_shock_under_a_window_account_and_a_constant_rate():
    """With a window of W days the pressure is 10 on [10, 10 + W) and [30, 30 + W): mean arrivals
    b·T + c·10·2W. Without pressure in the account (per_unit 0) the shock is a Poisson process."""
    base, c, window, horizon = 0.05, 0.03, 12.0, 60.0
    raids = Trials(_pressured(base, c, {"window_days": window}, horizon), N).count("strikes_by_s")
    assert_mean(raids, base * horizon + c * 10 * 2 * window)
    flat = Trials(_pressured(0.2, 0.0, {"decay_days": 5.0}, horizon), N).count("strikes_by_s")
    assert_mean(flat, 0.2 * horizon)
    assert abs(flat.var(ddof=1) - 0.2 * horizon) <= 4.5 * math.sqrt((12 + 2 * 144) / N)


def test_an_effect_with_a_chance_happens_that_often_and_independently():
    """A scheduled shock of two strikes, of probability 0.3 and 1: the first happens in 30% of
    trials (binomial), the second always; a random shock's effect of chance p thins its Poisson
    arrivals to a Poisson count of mean p·rate·T."""
    s = make_scenario({
        "actors": {"t": {"kind": "state"}},
        "shocks": {
            "once": {"day": 5.0, "effects": [
                {"type": "strike", "by": "s", "on": "m", "at": "x", "probability": 0.3},
                {"type": "strike", "by": "t", "on": "m", "at": "x"}]},
            "raids": {"rate_per_day": 0.2, "effects": [
                {"type": "strike", "by": "s", "on": "m", "at": "y", "probability": 0.25}]},
        },
        "milestones": {"chance_strike": {"when": {"by": ["s"], "at": ["x"], "kind": "strike"}}},
    }, horizon_days=100.0)
    t = Trials(s, N)
    happened = ~np.isnan(t.day("chance_strike"))
    assert abs(happened.mean() - 0.3) <= 4.5 * math.sqrt(0.3 * 0.7 / N)
    assert (t.count("strikes_by_t") == 1).all()
    raids = t.count("strikes_by_s") - happened
    assert_mean(raids, 0.25 * 0.2 * 100.0)
    assert abs(raids.var(ddof=1) - 5.0) <= 4.5 * math.sqrt((5 + 2 * 25) / N)
