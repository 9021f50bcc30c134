"""Trial statistics: mean, median, sample std, 95% Student-t interval, coefficient of variation.

The Student-t quantile is computed from the regularised incomplete beta function (continued
fraction, Lentz's method) and bisection, so neither side needs SciPy.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import cache


@dataclass(frozen=True)
class Summary:
    mean: float
    median: float
    std: float
    ci95_low: float
    ci95_high: float
    cv: float
    n_trials: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def _betacf(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(ln_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: int) -> float:
    """CDF of Student's t distribution with ``df`` degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t >= 0 else tail


@cache
def t_quantile(p: float, df: int) -> float:
    """Inverse CDF of Student's t (for 0.5 <= p < 1), by bisection to 1e-12."""
    if not 0.5 <= p < 1.0:
        raise ValueError("p must be in [0.5, 1)")
    if df < 1:
        raise ValueError("df must be >= 1")
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    for _ in range(200):
        mid = (lo + hi) / 2.0
        if t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-12:
            break
    return (lo + hi) / 2.0


def summarize(values: Sequence[float]) -> Summary:
    """Statistics over per-trial values; needs at least two trials."""
    n = len(values)
    if n < 2:
        raise ValueError("at least two trials are needed for a confidence interval")
    mean = math.fsum(values) / n
    # float arithmetic (statistics.stdev works in exact fractions: slow, and no more useful here)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half_width = t_quantile(0.975, n - 1) * std / math.sqrt(n)
    return Summary(
        mean=mean,
        median=statistics.median(values),
        std=std,
        ci95_low=mean - half_width,
        ci95_high=mean + half_width,
        cv=std / mean if mean > 0 else 0.0,
        n_trials=n,
    )
