"""Special functions the intervals need (Student's t, the digamma and trigamma functions): standard library
only, so that bench/ and scripts/ read the same figures (common/reference.py builds the intervals with them).
"""

from __future__ import annotations

import functools
import math
import statistics


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz's method)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for aa in (m * (b - m) * x / ((qam + m2) * (a + m2)), -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return h


def betai(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile (0.5 < p < 1) of Student's t with ``df`` degrees of freedom (the normal's for df = ∞)."""
    if math.isinf(df):
        return statistics.NormalDist().inv_cdf(p)
    tail = 2 * (1.0 - p)  # t with P(|T| > t) = tail: I_{df/(df+t²)}(df/2, 1/2) = tail
    lo, hi = 0.0, 1.0
    while betai(df / 2, 0.5, df / (df + hi * hi)) > tail:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        if betai(df / 2, 0.5, df / (df + mid * mid)) > tail:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def digamma(x: float) -> float:
    """ψ(x) for x > 0: the recurrence ψ(x) = ψ(x + 1) − 1/x up to x ≥ 10, then its asymptotic series."""
    out = 0.0
    while x < 10.0:
        out -= 1.0 / x
        x += 1.0
    inv2 = 1.0 / (x * x)
    return out + math.log(x) - 0.5 / x - inv2 * (1 / 12 - inv2 * (1 / 120 - inv2 / 252))


def trigamma(x: float) -> float:
    """ψ′(x) for x > 0: the recurrence ψ′(x) = ψ′(x + 1) + 1/x² up to x ≥ 10, then its asymptotic series."""
    out = 0.0
    while x < 10.0:
        out += 1.0 / (x * x)
        x += 1.0
    inv2 = 1.0 / (x * x)
    return out + 1.0 / x + inv2 / 2 + inv2 / x * (1 / 6 - inv2 * (1 / 30 - inv2 * (1 / 42 - inv2 / 30)))


def trigamma_inverse(y: float) -> float:
    """The x > 0 with ψ′(x) = y (y > 0): Newton's method on 1/ψ′ as in Smyth (2004), limma's ``trigammaInverse``."""
    if y > 1e7:
        return 1.0 / math.sqrt(y)
    if y < 1e-6:
        return 1.0 / y
    x = 0.5 + 1.0 / y
    for _ in range(100):
        tri = trigamma(x)
        h = 1e-5 * x
        tetra = (trigamma(x + h) - trigamma(x - h)) / (2 * h)  # ψ″, numerically: ample for a prior's weight
        step = tri * (1.0 - tri / y) / tetra
        x += step
        if -step / x < 1e-8:
            break
    return x
