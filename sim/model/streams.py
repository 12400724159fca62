"""Named random streams for one trial.

Trial *i*'s entropy comes from `numpy.random.SeedSequence(seed, spawn_key=(i,))` (never
`seed + i`). Each actor, channel, rule or shock draws from its own stream, seeded from that
entropy and a stable hash of the stream's name rather than from creation order: trial *i* of
two scenarios, or of two sweep points, uses the same numbers for the same actor (common random
numbers), and adding an actor shifts no one else's draws.

A stream is a Mersenne Twister (Python's `random.Random`) seeded with the trial's 256 bits of
entropy and the 32-bit name key. In the event loop draws are taken one at a time, and there a
C-level `random()` costs about 30 ns, against about 80 ns for handing out numpy's batched draws
one by one and 13 µs to create a numpy generator. The generator is also bit-identical on every
platform. It is created on the first draw, since many rules and shocks never draw in a trial.
"""

from __future__ import annotations

import functools
import math
import random
import zlib

import numpy as np

LARGE_MEAN = 700.0  # a Poisson mean above which exp(−mean) leaves the normal floats
MAX_BERNOULLI = 1000  # the most Bernoulli draws a binomial takes one by one
PARAMETERS_STREAM = "parameters"  # a trial's draw of its posterior particle


@functools.lru_cache(maxsize=4096)
def stream_key(name: str) -> int:
    """A stable 32-bit key for a stream name (crc32: the same on every platform and run)."""
    return zlib.crc32(name.encode("utf-8"))


class Stream:
    """One independent stream: `uniform()` in [0, 1), plus small exact samplers."""

    __slots__ = ("_random", "_seed")

    def __init__(self, seed: int):
        self._seed = seed
        self._random = None  # the generator's `random`, once created

    @property
    def uniform(self):
        """The stream's uniform sampler (a C function: cache it in a hot loop)."""
        return self._random or self.start()._random

    def start(self) -> Stream:
        """Create the generator now."""
        if self._random is None:
            self._random = random.Random(self._seed).random
        return self

    def exponential(self) -> float:
        """A unit exponential, by inversion (1 − U lies in (0, 1], so the log is finite)."""
        return -math.log(1.0 - self.uniform())

    def poisson(self, mean: float) -> int:
        """Poisson(mean) by inversion of one uniform (exact), or above `LARGE_MEAN`, where
        exp(−mean) would underflow, by a legacy numpy sampler seeded from one uniform."""
        if mean <= 0.0:
            return 0
        if mean > LARGE_MEAN:
            return int(self._large().poisson(mean))
        u = self.uniform()
        k, p = 0, math.exp(-mean)
        cdf = p
        while u > cdf:
            k += 1
            p *= mean / k
            cdf += p
            if p == 0.0:  # the tail underflowed: only for means far above any here
                break
        return k

    def negative_binomial(self, mean: float, k: float) -> int:
        """A negative binomial count of mean `mean` and shape `k` (variance mean + mean²/k; the
        Poisson as k → ∞) by inversion of one uniform (exact), from P(0) = (k/(k+mean))^k and
        P(j+1) = P(j)·(j+k)/(j+1)·mean/(k+mean); above `LARGE_MEAN`, or where P(0) would
        underflow, by a legacy numpy sampler seeded from one uniform."""
        if mean <= 0.0:
            return 0
        q = mean / (k + mean)
        p0 = k * math.log1p(-q)
        if mean > LARGE_MEAN or p0 < -LARGE_MEAN:  # inversion would take ~mean steps, or P(0) underflow
            return int(self._large().negative_binomial(k, 1.0 - q))
        u = self.uniform()
        j, p = 0, math.exp(p0)
        cdf = p
        while u > cdf:
            p *= (j + k) / (j + 1) * q
            j += 1
            cdf += p
            if p == 0.0:  # the tail underflowed
                break
        return j

    def binomial(self, n: int, p: float) -> int:
        """Binomial(n, p) by inversion of one uniform (exact; n·p is small here), falling back
        to n Bernoulli draws when n·p is large, and for more than `MAX_BERNOULLI` of them to a
        legacy numpy sampler seeded from one uniform."""
        if n <= 0 or p <= 0.0:
            return 0
        if p >= 1.0:
            return n
        if p > 0.5:
            return n - self.binomial(n, 1.0 - p)
        if n * p > 30.0:
            if n > MAX_BERNOULLI:
                return int(self._large().binomial(n, p))
            uniform = self.uniform
            return sum(1 for _ in range(n) if uniform() < p)
        q = 1.0 - p
        ratio = p / q
        prob = q**n
        u = self.uniform()
        k = 0
        while u > prob and k < n:
            u -= prob
            k += 1
            prob *= ratio * (n - k + 1) / k
        return k

    def _large(self) -> np.random.RandomState:
        """A sampler for the rare draws too large for the methods above (a casualty mean of
        millions): numpy's legacy `RandomState`, whose samplers never change between numpy
        versions, seeded from 53 bits of one uniform of this stream."""
        bits = int(self.uniform() * 2**53)
        return np.random.RandomState([bits & 0xFFFFFFFF, bits >> 32])


class Streams:
    """The streams of one trial, created on first use by name."""

    def __init__(self, seed: int, trial: int):
        self.seed = seed
        self.trial = trial
        self._entropy: int | None = None
        self._base: int | None = None  # the entropy shifted to make room for a name's key
        self._streams: dict[str, Stream] = {}
        self._keys: dict[int, str] = {}

    def entropy(self) -> int:
        """The trial's 256 bits from SeedSequence(seed, spawn_key=(trial,)), as an integer."""
        if self._entropy is None:
            words = np.random.SeedSequence(self.seed, spawn_key=(self.trial,)).generate_state(4, np.uint64)
            self._entropy = int.from_bytes(words.tobytes(), "little")
        return self._entropy

    def __call__(self, name: str) -> Stream:
        stream = self._streams.get(name)
        if stream is None:
            key = stream_key(name)
            if self._keys.setdefault(key, name) != name:
                raise ValueError(f"stream names {name!r} and {self._keys[key]!r} collide; rename one")
            stream = self._streams[name] = self.keyed(key)
        return stream

    def keyed(self, key: int) -> Stream:
        """The stream of a name whose `stream_key` is `key`, for callers that have checked their
        names' keys are distinct (a world's streams, keyed once per scenario): no bookkeeping."""
        base = self._base
        if base is None:
            base = self._base = self.entropy() << 32
        return Stream(base | key)
