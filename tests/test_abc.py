"""ABC-SMC against problems with known answers."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from sim.calibration.abc import IndependentPrior, abc_smc


def poisson_gamma(seed: int):
    """y_1..y_10 ~ Poisson(θ), θ ~ Gamma(2, rate 1), Σy = 30: the posterior is Gamma(32, rate 11).
    The sum is sufficient, so ABC on |S − 30| reaches the exact posterior at ε = 0."""
    n, total = 10, 30

    def simulate(thetas, keys):
        out = np.empty(len(thetas))
        for k, (theta, key) in enumerate(zip(thetas[:, 0], keys, strict=True)):
            rng = np.random.default_rng([seed, int(key)])
            out[k] = abs(rng.poisson(theta * n) - total)
        return out

    history = abc_smc(IndependentPrior([stats.gamma(2.0, scale=1.0)]), simulate,
                      particles=2000, generations=12, seed=seed, batch=512)
    return history, stats.gamma(32.0, scale=1 / 11)


def test_abc_smc_recovers_the_poisson_gamma_posterior():
    history, posterior = poisson_gamma(7)
    last = history[-1]
    assert last.epsilon == 0.0
    x, w = last.particles[:, 0], last.weights
    mean = float(w @ x)
    var = float(w @ (x - mean) ** 2)
    ess = last.ess
    assert ess > 500
    assert abs(mean - posterior.mean()) <= 4.5 * posterior.std() / math.sqrt(ess)
    # Var of a sample variance ≈ σ⁴ (κ − 1)/n, κ the kurtosis (Gamma(32): 3 + 6/32).
    se_var = posterior.var() * math.sqrt((2 + 6 / 32) / ess)
    assert abs(var - posterior.var()) <= 4.5 * se_var


def test_tolerances_fall_and_diagnostics_are_kept():
    history, _ = poisson_gamma(11)
    epsilons = [g.epsilon for g in history[1:]]
    assert all(a >= b for a, b in zip(epsilons, epsilons[1:], strict=False))
    for g in history:
        assert abs(g.weights.sum() - 1) < 1e-9 and (g.weights >= 0).all()
        assert 0 < g.acceptance <= 1 and g.simulations >= len(g.weights)
        assert (g.distances <= g.epsilon).all()


def test_a_fit_is_reproducible_from_its_seed():
    a, _ = poisson_gamma(3)
    b, _ = poisson_gamma(3)
    assert [g.epsilon for g in a] == [g.epsilon for g in b]
    assert np.array_equal(a[-1].particles, b[-1].particles)
