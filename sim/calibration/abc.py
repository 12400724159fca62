"""Likelihood-free ABC-SMC (Toni et al. 2009; weights and kernel of Beaumont et al. 2009).

Generation 0 samples the prior. Each later generation sets its tolerance ε to a quantile
(default the median) of the previous generation's distances (or, when distances on a lattice
leave that stuck, the next distance below), then proposes particles by
picking one of the previous generation by weight and moving it with a Gaussian kernel of
twice the previous generation's weighted covariance, keeps proposals whose simulation lands
within ε, and weights each by prior / Σ_j w_j K(θ | θ_j). It stops after a number of
generations, or when acceptance or the simulation budget runs out.

The algorithm knows nothing of the model: `simulate(thetas, keys)` returns one distance per
parameter vector, `keys` being unique integers from which the caller seeds each simulation.
Proposals are drawn and accepted in a fixed order, batch by batch, so a fit is the same
whoever runs the simulations and however many of them run at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

KEY_STRIDE = 10**9  # keys of generation g are g·KEY_STRIDE + proposal number


@dataclass
class Generation:
    index: int
    epsilon: float
    particles: np.ndarray  # (n, p)
    weights: np.ndarray  # (n,), summing to 1
    distances: np.ndarray  # (n,)
    simulations: int  # simulated in this generation (accepted or not)
    proposals: int  # proposed, including those outside the prior's support

    @property
    def acceptance(self) -> float:
        return len(self.weights) / self.simulations if self.simulations else math.nan

    @property
    def ess(self) -> float:
        """Effective sample size, 1 / Σ w²."""
        return float(1.0 / np.sum(self.weights**2))


class IndependentPrior:
    """A product of one-dimensional scipy distributions."""

    def __init__(self, marginals: Sequence):
        self.marginals = list(marginals)

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.column_stack([m.rvs(size=n, random_state=rng) for m in self.marginals])

    def logpdf(self, thetas: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.sum([m.logpdf(thetas[:, k]) for k, m in enumerate(self.marginals)], axis=0)


def abc_smc(
    prior: IndependentPrior,
    simulate: Callable[[np.ndarray, np.ndarray], np.ndarray],
    *,
    particles: int,
    generations: int,
    seed: int,
    quantile: float = 0.5,
    batch: int = 256,
    min_acceptance: float = 0.0,
    max_simulations: float = math.inf,
    on_generation: Callable[[Generation], None] | None = None,
) -> list[Generation]:
    """Run ABC-SMC; return every generation (the last is the posterior sample)."""
    rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(0,))))
    thetas = prior.sample(rng, particles)
    distances = simulate(thetas, np.arange(particles, dtype=np.int64))
    history = [Generation(0, math.inf, thetas, np.full(particles, 1.0 / particles), distances, particles, particles)]
    if on_generation:
        on_generation(history[0])
    spent = particles
    for g in range(1, generations):
        previous = history[-1]
        if previous.epsilon <= 0.0:
            break  # already exact: nothing left to tighten
        epsilon = float(np.quantile(previous.distances, quantile))
        if epsilon >= previous.epsilon:
            # Distances on a lattice (counts) can leave the quantile stuck: step to the next
            # value below, so the tolerance keeps falling.
            below = previous.distances[previous.distances < previous.epsilon]
            if below.size == 0:
                break
            epsilon = float(below.max())
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(g,))))
        covariance = 2.0 * _weighted_covariance(previous.particles, previous.weights)
        chol = _cholesky(covariance)
        kept_theta, kept_distance = [], []
        proposals = simulations = 0
        while len(kept_theta) < particles:
            if spent + simulations >= max_simulations:
                break
            parents = rng.choice(len(previous.weights), size=batch, p=previous.weights)
            candidates = previous.particles[parents] + rng.standard_normal((batch, chol.shape[0])) @ chol.T
            proposals += batch
            inside = np.isfinite(prior.logpdf(candidates))
            candidates = candidates[inside]
            if len(candidates) == 0:
                continue
            keys = g * KEY_STRIDE + simulations + np.arange(len(candidates), dtype=np.int64)
            d = simulate(candidates, keys)
            simulations += len(candidates)
            for theta, distance in zip(candidates, d, strict=True):
                if distance <= epsilon and len(kept_theta) < particles:
                    kept_theta.append(theta)
                    kept_distance.append(distance)
        if len(kept_theta) < particles:
            break  # budget exhausted mid-generation: keep the last complete one
        thetas = np.array(kept_theta)
        weights = _weights(prior, thetas, previous, covariance)
        generation = Generation(g, epsilon, thetas, weights, np.array(kept_distance), simulations, proposals)
        history.append(generation)
        spent += simulations
        if on_generation:
            on_generation(generation)
        if generation.acceptance < min_acceptance:
            break
    return history


def _weighted_covariance(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    mean = w @ x
    centred = x - mean
    cov = (centred * w[:, None]).T @ centred / (1.0 - np.sum(w**2))
    return np.atleast_2d(cov)


def _cholesky(cov: np.ndarray) -> np.ndarray:
    jitter = 1e-12 * max(float(np.trace(cov)), 1e-300)
    for _ in range(10):
        try:
            return np.linalg.cholesky(cov + jitter * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            jitter *= 100
    raise np.linalg.LinAlgError("the particles' covariance is not positive definite")


def _weights(prior: IndependentPrior, thetas: np.ndarray, previous: Generation, covariance: np.ndarray) -> np.ndarray:
    """w_i ∝ π(θ_i) / Σ_j w_j K(θ_i | θ_j), K the Gaussian kernel (computed in logs)."""
    inverse = np.linalg.inv(covariance)
    log_previous = np.log(previous.weights)[None, :]
    log_mix = np.empty(len(thetas))
    for a in range(0, len(thetas), 256):  # in blocks: the pairwise array grows as n·m·p
        diff = thetas[a:a + 256, None, :] - previous.particles[None, :, :]
        mahalanobis = np.einsum("nmp,pq,nmq->nm", diff, inverse, diff)
        # The kernel's normalising constant is the same for every pair: it cancels.
        log_mix[a:a + 256] = _logsumexp(-0.5 * mahalanobis + log_previous, axis=1)
    log_w = prior.logpdf(thetas) - log_mix
    log_w -= log_w.max()
    w = np.exp(log_w)
    return w / w.sum()


def _logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(a, axis=axis, keepdims=True)
    return (top + np.log(np.sum(np.exp(a - top), axis=axis, keepdims=True))).squeeze(axis)
