"""Comparison statistics for paired (common-random-number) runs, against published values and hand computations."""

from __future__ import annotations

import math
import warnings
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from sim.comparison import stats as cs


def table_pairs(both: int, only_b: int, only_a: int, neither: int) -> tuple[np.ndarray, np.ndarray]:
    """Paired booleans (a, b) with the given 2×2 counts."""
    a = np.repeat([True, False, True, False], [both, only_b, only_a, neither])
    b = np.repeat([True, True, False, False], [both, only_b, only_a, neither])
    return a, b


def counts_vector(successes: int, n: int) -> np.ndarray:
    return np.arange(n) < successes


def correlated_binaries(rng: np.random.Generator, size, p_a: float, p_b: float, rho: float):
    """Paired booleans with P(a) = p_a, P(b) = p_b and phi correlation rho."""
    p11 = p_a * p_b + rho * math.sqrt(p_a * (1 - p_a) * p_b * (1 - p_b))
    cells = [p11, p_a - p11, p_b - p11, 1 - p_a - p_b + p11]  # both, a only, b only, neither
    cat = rng.choice(4, size=size, p=cells)
    return (cat == 0) | (cat == 1), (cat == 0) | (cat == 2)


# --- Newcombe, paired ---------------------------------------------------------------------------------------------

# Newcombe (1998, Stat Med 17:2635) examples, method 10. His table is e (both), f (first only), g (second only), h
# (neither) and θ = (f − g)/n; "first" is our b, so the interval is for p_b − p_a.
@pytest.mark.parametrize(
    ("e", "f", "g", "h", "lo", "hi"),
    [(36, 12, 2, 0, 0.0569, 0.3404), (18, 12, 2, 18, 0.0562, 0.3290), (53, 0, 0, 1, -0.0729, 0.0729),
     (0, 30, 0, 0, 0.8395, 1.0)],
)
def test_paired_newcombe_reproduces_published_examples(e, f, g, h, lo, hi):
    a, b = table_pairs(e, f, g, h)
    ci = cs.paired_proportion_difference(a, b)
    assert ci.estimate == pytest.approx((f - g) / (e + f + g + h), abs=1e-12)
    assert ci.lo == pytest.approx(lo, abs=1e-4)
    assert ci.hi == pytest.approx(hi, abs=1e-4)


def test_paired_newcombe_uses_the_continuity_shrunk_phi():
    # (18, 12, 2, 18) has ad − bc = 300 > n/2: with the raw phi = 0.5 the limits would be 0.0618 to 0.3239.
    ci = cs.paired_proportion_difference(*table_pairs(18, 12, 2, 18))
    assert abs(ci.lo - 0.0618) > 0.004 and abs(ci.hi - 0.3239) > 0.004


def brute_force_newcombe_paired(a: np.ndarray, b: np.ndarray, z: float) -> tuple[float, float]:
    """The same interval another way: Wilson limits as roots of (p − π)² = z²π(1 − π)/n, phi as Pearson's r."""
    n = a.size

    def limits(p):
        roots = np.sort(np.roots([1 + z * z / n, -(2 * p + z * z / n), p * p]).real)
        return roots[0], roots[1]

    pa, pb = a.mean(), b.mean()
    (la, ua), (lb, ub) = limits(pa), limits(pb)
    r = np.corrcoef(a.astype(float), b.astype(float))[0, 1]
    shrink = (n / 2) / math.sqrt(pa * (1 - pa) * pb * (1 - pb) * n**4)
    phi = max(r - shrink, 0.0) if r > 0 else r
    lo = pb - pa - math.sqrt((pb - lb) ** 2 + (ua - pa) ** 2 - 2 * phi * (pb - lb) * (ua - pa))
    hi = pb - pa + math.sqrt((ub - pb) ** 2 + (pa - la) ** 2 - 2 * phi * (ub - pb) * (pa - la))
    return lo, hi


@pytest.mark.parametrize("seed", range(6))
def test_paired_newcombe_matches_a_brute_force_implementation(seed):
    rng = np.random.default_rng(seed)
    rho = [-0.3, 0.0, 0.1, 0.4, 0.6, 0.75][seed]
    a, b = correlated_binaries(rng, 80 + 37 * seed, 0.35, 0.45, rho)
    ci = cs.paired_proportion_difference(a, b, level=0.9)
    lo, hi = brute_force_newcombe_paired(a, b, stats.norm.ppf(0.95))
    assert ci.lo == pytest.approx(lo, abs=1e-10)
    assert ci.hi == pytest.approx(hi, abs=1e-10)


def test_paired_newcombe_covers_the_true_difference():
    rng = np.random.default_rng(20240611)
    a, b = correlated_binaries(rng, (400, 200), 0.3, 0.35, 0.6)
    covered = 0
    for row_a, row_b in zip(a, b, strict=True):
        ci = cs.paired_proportion_difference(row_a, row_b)
        covered += ci.lo <= 0.05 <= ci.hi
    # Nominal 95%; the binomial SE of a coverage estimate from 400 datasets is ~1.1%, so 92% is ~2.7 SE below.
    assert covered / 400 >= 0.92


def test_paired_newcombe_edge_cases_are_quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        empty = cs.paired_proportion_difference(np.array([], bool), np.array([], bool))
        concordant = cs.paired_proportion_difference(*table_pairs(10, 0, 0, 10))
        all_true = cs.paired_proportion_difference(np.ones(40, bool), np.ones(40, bool))
    assert all(math.isnan(v) for v in (empty.estimate, empty.lo, empty.hi))
    assert concordant.estimate == 0 and concordant.lo < 0 < concordant.hi
    # 40/40 in both: phi = 0 (zero margins) and each side is 1 − Wilson lower limit = z²/(n + z²).
    z2 = stats.norm.ppf(0.975) ** 2
    assert all_true.estimate == 0 and (all_true.lo, all_true.hi) == pytest.approx((-z2 / (40 + z2), z2 / (40 + z2)))
    with pytest.raises(ValueError):
        cs.paired_proportion_difference(np.ones(3, bool), np.ones(4, bool))


# --- Newcombe, independent ----------------------------------------------------------------------------------------

def test_unpaired_newcombe_reproduces_published_examples():
    # Newcombe (1998, Stat Med 17:873), method 10: 56/70 − 48/80 is 0.0524 to 0.3339; 9/10 − 3/10 is 0.1705 to 0.8090.
    # Our difference is p_b − p_a, so the first-named proportion is b.
    ci = cs.unpaired_proportion_difference(counts_vector(48, 80), counts_vector(56, 70))
    assert ci.estimate == pytest.approx(0.2)
    assert (ci.lo, ci.hi) == pytest.approx((0.0524, 0.3339), abs=1e-4)
    ci = cs.unpaired_proportion_difference(counts_vector(3, 10), counts_vector(9, 10))
    assert (ci.lo, ci.hi) == pytest.approx((0.1705, 0.8090), abs=1e-4)
    flipped = cs.unpaired_proportion_difference(counts_vector(56, 70), counts_vector(48, 80))
    assert (flipped.estimate, flipped.lo, flipped.hi) == pytest.approx((-0.2, -0.3339, -0.0524), abs=1e-4)


# --- McNemar ------------------------------------------------------------------------------------------------------

def test_mcnemar_exact_hand_example():
    # 10 and 2 discordant pairs: p = 2 · P(Binom(12, ½) ≤ 2) = 2 · (1 + 12 + 66) / 4096 = 0.038574...
    result = cs.mcnemar(*table_pairs(30, 2, 10, 40))
    assert result.method == "McNemar exact"
    assert result.p_value == pytest.approx(2 * 79 / 4096, rel=1e-12)
    assert result.statistic == 2
    assert cs.mcnemar(*table_pairs(30, 10, 2, 40)).p_value == pytest.approx(result.p_value, rel=1e-12)


def test_mcnemar_chi_square_hand_example():
    # 40 and 20 discordant pairs: chi2 = (|40 − 20| − 1)² / 60 = 361/60 = 6.0167, p = P(chi2_1 > 6.0167) = 0.014171.
    result = cs.mcnemar(*table_pairs(100, 20, 40, 100))
    assert result.method == "McNemar chi2, continuity-corrected"
    assert result.statistic == pytest.approx(361 / 60, rel=1e-12)
    assert result.p_value == pytest.approx(0.014171, abs=1e-6)


def test_mcnemar_without_discordant_pairs_has_p_one():
    assert cs.mcnemar(*table_pairs(5, 0, 0, 7)).p_value == 1.0


# --- means --------------------------------------------------------------------------------------------------------

def test_paired_mean_interval_matches_scipy_ttest_rel():
    rng = np.random.default_rng(3)
    x = rng.normal(10, 2, 60)
    y = x + rng.normal(0.5, 1, 60)
    ci = cs.paired_mean_difference(x, y, level=0.9)
    ref = stats.ttest_rel(y, x).confidence_interval(0.9)
    assert ci.estimate == pytest.approx(y.mean() - x.mean())
    assert (ci.lo, ci.hi) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_unpaired_mean_interval_matches_scipy_welch():
    rng = np.random.default_rng(4)
    x, y = rng.normal(0, 1, 40), rng.normal(1, 3, 25)
    ci = cs.unpaired_mean_difference(x, y)
    ref = stats.ttest_ind(y, x, equal_var=False).confidence_interval(0.95)
    assert (ci.lo, ci.hi) == pytest.approx((ref.low, ref.high), rel=1e-12)


def test_pairing_narrows_the_interval_for_correlated_pairs():
    rng = np.random.default_rng(5)
    x = rng.normal(0, 1, 2000)
    y = x + 0.1 + rng.normal(0, 0.3, 2000)
    paired, unpaired = cs.paired_mean_difference(x, y), cs.unpaired_mean_difference(x, y)
    assert paired.width < unpaired.width
    assert cs.variance_reduction(paired, unpaired) > 0.5


def test_pairing_gains_nothing_for_independent_pairs():
    rng = np.random.default_rng(6)
    x, y = rng.normal(0, 1, 2000), rng.normal(0.1, 1, 2000)
    vr = cs.variance_reduction(cs.paired_mean_difference(x, y), cs.unpaired_mean_difference(x, y))
    assert abs(vr) < 0.2


def test_pairing_narrows_the_proportion_interval():
    # Expected reduction 2·cov / (var_a + var_b) = 2 · 0.6 · sqrt(0.21 · 0.2275) / 0.4375 ≈ 0.60.
    a, b = correlated_binaries(np.random.default_rng(7), 2000, 0.3, 0.35, 0.6)
    vr = cs.variance_reduction(cs.paired_proportion_difference(a, b), cs.unpaired_proportion_difference(a, b))
    assert 0.45 < vr < 0.75


def test_variance_reduction_hand_values():
    assert cs.variance_reduction(cs.Interval(0, -0.5, 0.5), cs.Interval(0, -1, 1)) == pytest.approx(0.75)
    assert math.isnan(cs.variance_reduction(cs.Interval(0, 0, 0), cs.Interval(0, 0, 0)))


# --- paired bootstrap ---------------------------------------------------------------------------------------------

def normal_pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(5, 2, n)
    return x, x + rng.normal(0.2, 1, n)


def test_paired_bootstrap_is_deterministic_for_a_seed():
    x, y = normal_pairs(300, 8)
    first = cs.paired_bootstrap_difference(x, y, np.median, resamples=300, seed=11)
    assert cs.paired_bootstrap_difference(x, y, np.median, resamples=300, seed=11) == first
    assert cs.paired_bootstrap_difference(x, y, np.median, resamples=300, seed=12) != first


def test_paired_bootstrap_of_the_mean_agrees_with_the_paired_t_interval():
    x, y = normal_pairs(5000, 9)
    boot = cs.paired_bootstrap_difference(x, y, np.mean)
    t = cs.paired_mean_difference(x, y)
    assert boot.estimate == pytest.approx(t.estimate)
    assert abs(boot.lo - t.lo) < 0.1 * t.width
    assert abs(boot.hi - t.hi) < 0.1 * t.width


def test_paired_bootstrap_vectorized_matches_row_by_row():
    x, y = normal_pairs(500, 10)

    def q90(v, axis=-1):
        return np.quantile(v, 0.9, axis=axis)

    rows = cs.paired_bootstrap_difference(x, y, q90, resamples=500, seed=1)
    blocks = cs.paired_bootstrap_difference(x, y, q90, resamples=500, seed=1, vectorized=True)
    assert (blocks.lo, blocks.hi) == pytest.approx((rows.lo, rows.hi), rel=1e-12)


def test_paired_bootstrap_resamples_only_the_first_pairs_beyond_the_cap():
    x, y = normal_pairs(1000, 12)
    capped = cs.paired_bootstrap_difference(x, y, np.mean, resamples=200, max_pairs=300)
    head = cs.paired_bootstrap_difference(x[:300], y[:300], np.mean, resamples=200)
    assert capped.estimate == pytest.approx(y.mean() - x.mean())
    assert (capped.lo, capped.hi) == (head.lo, head.hi)


# --- distribution tests -------------------------------------------------------------------------------------------

def test_distribution_tests_on_identical_samples():
    x = np.random.default_rng(13).normal(0, 1, 300)
    assert cs.ks_two_sample(x, x.copy()).p_value >= 0.99
    assert cs.wilcoxon_signed_rank(x, x.copy()).p_value == 1.0
    ad = cs.anderson_darling_k_sample(x, x.copy())
    assert ad.p_value >= 0.25 and "capped" in ad.method  # scipy's table stops at 0.25
    assert cs.anderson_darling_k_sample(np.full(10, 3.0), np.full(12, 3.0)).p_value == 1.0


def test_distribution_tests_on_shifted_samples():
    rng = np.random.default_rng(14)
    x = rng.normal(0, 1, 300)
    y = x + 0.5 + rng.normal(0, 0.2, 300)
    assert cs.ks_two_sample(x, y).p_value < 1e-3
    assert cs.wilcoxon_signed_rank(x, y).p_value < 1e-3
    ad = cs.anderson_darling_k_sample(x, y)
    assert ad.p_value <= 1e-3 and "floored" in ad.method  # scipy's table stops at 0.001


def test_wilcoxon_splits_zero_differences():
    x = np.arange(30.0)
    y = x.copy()
    y[:20] += np.arange(1, 21) * 0.1
    with_zeros = cs.wilcoxon_signed_rank(x, y)
    ref = stats.wilcoxon(y - x, zero_method="zsplit")
    assert (with_zeros.statistic, with_zeros.p_value) == pytest.approx((ref.statistic, ref.pvalue))


# --- Kaplan–Meier -------------------------------------------------------------------------------------------------

def test_kaplan_meier_without_censoring_is_the_empirical_survival_function():
    times = np.random.default_rng(15).integers(0, 30, 500).astype(float)
    km = cs.kaplan_meier(times, horizon=100.0)
    for t in np.arange(0.0, 31.0, 0.5):
        assert cs.survival_at(km, t) == pytest.approx(np.mean(times > t), abs=1e-12)


def test_kaplan_meier_hand_example_with_censoring():
    # times 1, –, 2, 2, 3 with horizon 4 (the NaN is censored at 4):
    #   t=1: at risk 5, 1 event → S = 4/5;   t=2: at risk 4, 2 events → S = 4/5 · 2/4 = 0.4
    #   t=3: at risk 2, 1 event → S = 0.4 · 1/2 = 0.2
    # Greenwood Σ d/(r(r−d)): 1/20, + 2/8, + 1/2 → se = 0.8·√0.05, 0.4·√0.3, 0.2·√0.8. With censoring only at the
    # horizon these equal the binomial √(S(1−S)/n): √(0.032), √(0.048), √(0.032).
    km = cs.kaplan_meier(np.array([1, np.nan, 2, 2, 3]), horizon=4)
    np.testing.assert_allclose(km.t, [0, 1, 2, 3])
    np.testing.assert_allclose(km.survival, [1, 0.8, 0.4, 0.2], atol=1e-15)
    np.testing.assert_array_equal(km.at_risk, [5, 5, 4, 2])
    np.testing.assert_array_equal(km.events, [0, 1, 2, 1])
    np.testing.assert_allclose(km.se, [0, math.sqrt(0.032), math.sqrt(0.048), math.sqrt(0.032)], rtol=1e-12)
    assert [cs.survival_at(km, t) for t in (-1, 0.5, 2, 2.5, 4)] == pytest.approx([1, 1, 0.4, 0.4, 0.2])
    assert math.isnan(cs.survival_at(km, 4.5))
    np.testing.assert_allclose(cs.survival_at(km, np.array([0.0, 1.0, 3.5])), [1, 0.8, 0.2])
    late = cs.kaplan_meier(np.array([1, 9, 2, 2, 3]), horizon=4)  # a passage after the horizon is censored too
    np.testing.assert_allclose(late.survival, km.survival)


def test_kaplan_meier_greenwood_is_nan_once_survival_hits_zero():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        km = cs.kaplan_meier(np.array([1.0, 2.0]), horizon=5)
    np.testing.assert_allclose(km.survival, [1, 0.5, 0])
    assert km.se[1] == pytest.approx(0.5 * math.sqrt(1 / 2))
    assert math.isnan(km.se[2])


# --- log-rank -----------------------------------------------------------------------------------------------------

def test_log_rank_hand_example():
    # A = 1, 2, 3, – and B = 2, 4, –, – (– censored at 5). Per event time: (at risk A, B; events A, total)
    #   t=1: 4, 4; 1, 1  E_A = 1·4/8 = 1/2   V = 1·(4/8)(4/8)·(7/7)      = 1/4
    #   t=2: 3, 4; 1, 2  E_A = 2·3/7 = 6/7   V = 2·(3/7)(4/7)·(5/6)      = 20/49
    #   t=3: 2, 3; 1, 1  E_A = 1·2/5 = 2/5   V = 1·(2/5)(3/5)·(4/4)      = 6/25
    #   t=4: 1, 3; 0, 1  E_A = 1·1/4 = 1/4   V = 1·(1/4)(3/4)·(3/3)      = 3/16
    # O_A − E_A = 3 − 281/140 = 139/140, V = 21279/19600, chi2 = (139/140)² / V = 19321/21279.
    e_a = Fraction(1, 2) + Fraction(6, 7) + Fraction(2, 5) + Fraction(1, 4)
    v = Fraction(1, 4) + Fraction(20, 49) + Fraction(6, 25) + Fraction(3, 16)
    assert (3 - e_a) ** 2 / v == Fraction(19321, 21279)
    nan = np.nan
    result = cs.log_rank(np.array([1, 2, 3, nan]), np.array([2, 4, nan, nan]), horizon=5)
    assert result.statistic == pytest.approx(19321 / 21279, abs=1e-9)
    assert result.p_value == pytest.approx(stats.chi2.sf(19321 / 21279, 1), abs=1e-12)
    swapped = cs.log_rank(np.array([2, 4, nan, nan]), np.array([1, 2, 3, nan]), horizon=5)
    assert swapped.statistic == pytest.approx(result.statistic, abs=1e-12)


def test_log_rank_without_events_has_p_one():
    assert cs.log_rank(np.full(5, np.nan), np.full(3, np.nan), horizon=10).p_value == 1.0


def test_log_rank_rejects_at_the_nominal_rate_under_the_null():
    rejections = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        a, b = np.ceil(rng.exponential(20, 100)), np.ceil(rng.exponential(20, 100))
        a[a > 30], b[b > 30] = np.nan, np.nan
        rejections += cs.log_rank(a, b, horizon=30).p_value < 0.05
    # Binomial(200, 0.05) has mean 10 and SD 3.1; 4 to 18 rejections is about ±2.6 SD.
    assert 0.02 <= rejections / 200 <= 0.09


def test_log_rank_detects_a_faster_hazard():
    rng = np.random.default_rng(16)
    a, b = np.ceil(rng.exponential(20, 300)), np.ceil(rng.exponential(10, 300))
    assert cs.log_rank(a, b, horizon=30).p_value < 1e-3
