"""Statistics against outside references.

Median CI ranks checked against R:  qbinom(c(0.025, 0.975), n, 0.5) -> for n = 10: 2, 8, i.e.
the interval [x_(2), x_(9)] (the usual order-statistic CI), and for n = 100: [x_(40), x_(61)].
"""
import math
import random

import pytest

from benchbench.stats import LatencyStats, quantile, quantile_ci


def test_quantile_matches_numpy_linear():
    np = pytest.importorskip("numpy")
    rng = random.Random(1)
    x = sorted(rng.random() for _ in range(37))
    for q in (0.0, 0.1, 0.5, 0.9, 0.99, 1.0):
        assert quantile(x, q) == pytest.approx(float(np.quantile(x, q)))


def test_median_ci_order_statistics_small_n():
    x = list(range(1, 11))          # x_(i) = i
    assert quantile_ci(x) == (2, 9)
    y = list(range(1, 101))
    assert quantile_ci(y) == (40, 61)


def test_median_ci_infinite_for_too_few_samples():
    lo, hi = quantile_ci([1.0, 2.0, 3.0, 4.0, 5.0])
    assert lo == -math.inf and hi == math.inf


def test_median_ci_normal_approximation_agrees_with_exact_ranks():
    # n = 2000 uses the normal approximation; its ranks must match the exact binomial ones
    # within one order statistic (scipy.stats.binom.ppf(0.025, 2000, 0.5) = 956).
    x = list(range(1, 2001))
    lo, hi = quantile_ci(x)
    assert abs(lo - 957) <= 1 and abs(hi - 1044) <= 1


def test_latency_stats_invariants():
    rng = random.Random(0)
    samples = [10 + rng.expovariate(1.0) for _ in range(500)]
    s = LatencyStats.from_samples(samples)
    assert s.min_ms <= s.p50_ms <= s.p90_ms <= s.p99_ms <= s.max_ms
    assert s.ci95_p50_ms[0] <= s.p50_ms <= s.ci95_p50_ms[1]
    assert s.n == 500 and s.std_ms > 0
