"""Summary statistics for timing samples, stdlib only (asv's habits: median with an
order-statistic confidence interval that is infinite when there are too few samples)."""
from __future__ import annotations

import math
from dataclasses import dataclass


def quantile(sorted_x: list[float], q: float) -> float:
    """Linear-interpolated quantile (numpy's default 'linear' method) of sorted data."""
    if not sorted_x:
        return float("nan")
    pos = (len(sorted_x) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_x) - 1)
    return sorted_x[lo] + (sorted_x[hi] - sorted_x[lo]) * (pos - lo)


def _binom_cdf_table(n: int, q: float) -> list[float]:
    """P(B <= k) for B ~ Binomial(n, q), k = 0..n, computed in log space (stable for large n)."""
    logs = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
            + k * math.log(q) + (n - k) * math.log1p(-q) for k in range(n + 1)]
    top = max(logs)
    pmf = [math.exp(v - top) for v in logs]
    total = sum(pmf)
    cdf, acc = [], 0.0
    for p in pmf:
        acc += p / total
        cdf.append(acc)
    return cdf


def _z(p: float) -> float:
    """Standard normal quantile by bisection on erf (stdlib only)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def quantile_ci(x: list[float], q: float = 0.5, alpha: float = 0.05) -> tuple[float, float]:
    """Distribution-free confidence interval of the q-quantile from order statistics.

    Assumes independent samples. The interval [x_(j), x_(k)] covers the quantile with probability
    P(j <= B < k), B ~ Binomial(n, q); j and k are the tightest ranks keeping each tail below
    alpha/2. An end that no rank can guarantee is infinite (e.g. n < 6 for the median at 95%).
    """
    y = sorted(x)
    n = len(y)
    if n == 0:
        return (-math.inf, math.inf)
    if n > 1000:  # normal approximation of the binomial ranks; exact table is O(n) lgamma calls
        z = 1.959963984540054 if abs(alpha - 0.05) < 1e-12 else _z(1 - alpha / 2)
        half = z * math.sqrt(n * q * (1 - q))
        j, k = math.floor(n * q - half), math.ceil(n * q + half) + 1
        return (y[j - 1] if j >= 1 else -math.inf, y[k - 1] if k <= n else math.inf)
    cdf = _binom_cdf_table(n, q)
    # lower: largest j (1-based) with P(B < j) = cdf[j-1] <= alpha/2
    j = max((i + 1 for i in range(n) if cdf[i] <= alpha / 2), default=0)
    # upper: smallest k with P(B >= k) = 1 - cdf[k-1] <= alpha/2
    k = min((i + 1 for i in range(n) if 1 - cdf[i] <= alpha / 2), default=n + 1)
    lo = y[j - 1] if j >= 1 else -math.inf
    hi = y[k - 1] if k <= n else math.inf
    return (lo, hi)


@dataclass(frozen=True)
class LatencyStats:
    """Per-iteration latencies in milliseconds and their summary."""

    n: int
    mean_ms: float
    std_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    ci95_p50_ms: tuple[float, float]

    @property
    def ci95_half_width_rel(self) -> float:
        lo, hi = self.ci95_p50_ms
        return (hi - lo) / 2 / self.p50_ms if self.p50_ms > 0 else math.inf

    @classmethod
    def from_samples(cls, samples_ms: list[float]) -> "LatencyStats":
        y = sorted(samples_ms)
        n = len(y)
        mean = sum(y) / n
        std = math.sqrt(sum((v - mean) ** 2 for v in y) / (n - 1)) if n > 1 else 0.0
        return cls(n, mean, std, quantile(y, 0.5), quantile(y, 0.9), quantile(y, 0.99),
                   y[0], y[-1], quantile_ci(y, 0.5))
