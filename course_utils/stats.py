"""Statistics for comparing trained runs: seeds, paired differences, intervals, chance.

A trained comparison is never one run. Each compared configuration runs with several
seeds; seed s of every configuration shares its data order and initial weights where the
architectures allow (the engine seeds both from s), so runs are compared in pairs:

    diffs = paired_differences(baseline_by_seed, variant_by_seed)
    iv = t_interval(diffs)                       # mean difference, 95% Student t interval
    print(verdict(iv, "Dense2Net - DenseNet", unit=" points"))
    # Dense2Net - DenseNet: -1.30 points, 95% interval [-4.10, +1.50] (t, 3 seeds):
    # the interval contains 0: this budget cannot tell the two apart.

The interval is Student's t on the paired differences (exact for normal differences;
with 3 seeds it is wide, which is the honest answer). `control` is the same comparison
for two groups of seeds of one configuration: the noise floor. Pure Python, no SciPy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence


def _check_values(name: str, values) -> list[float]:
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ValueError(f"{name}: {values!r} is not a sequence of numbers") from None
    if any(not math.isfinite(v) for v in out):
        raise ValueError(f"{name}: {values!r} holds a non-finite value; allowed: finite numbers")
    return out


def mean_std(values: Sequence[float]) -> tuple[Optional[float], Optional[float]]:
    """Mean and sample standard deviation (n - 1); std is None for fewer than 2 values,
    both None for none."""
    xs = _check_values("values", values)
    if not xs:
        return None, None
    m = sum(xs) / len(xs)
    if len(xs) < 2:
        return m, None
    return m, math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))


# ---- Student's t quantile from the regularised incomplete beta function --------------
def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
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
        if abs(delta - 1.0) < eps:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with df degrees of freedom."""
    x = df / (df + t * t)
    tail = 0.5 * _betainc(df / 2.0, 0.5, x)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t (bisection on t_cdf; |error| < 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"p: {p!r}; allowed: 0 < p < 1")
    if not df > 0:
        raise ValueError(f"df: {df!r}; allowed: df > 0")
    if p == 0.5:
        return 0.0
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
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


@dataclass(frozen=True)
class Interval:
    """A mean (of values or of paired differences) with its confidence interval."""
    mean: float
    low: Optional[float]
    high: Optional[float]
    n: int
    level: float = 0.95
    method: str = "t"

    @property
    def excludes_zero(self) -> Optional[bool]:
        if self.low is None:
            return None
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n,
                "level": self.level, "method": self.method,
                "excludes_zero": self.excludes_zero}


def t_interval(values: Sequence[float], level: float = 0.95) -> Interval:
    """Mean with a two-sided Student t interval (n - 1 degrees of freedom). With one value
    the interval is unknown (low = high = None); with n values all equal it has width 0."""
    xs = _check_values("values", values)
    if not xs:
        raise ValueError("values: empty; allowed: at least one number")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: {level!r}; allowed: 0 < level < 1")
    m, s = mean_std(xs)
    if s is None:
        return Interval(m, None, None, 1, level)
    half = t_quantile(0.5 + level / 2.0, len(xs) - 1) * s / math.sqrt(len(xs))
    return Interval(m, m - half, m + half, len(xs), level)


def paired_differences(baseline: Mapping, variant: Mapping) -> list[float]:
    """variant[s] - baseline[s] for every seed s that both have (sorted by seed)."""
    common = sorted(set(baseline) & set(variant))
    if not common:
        raise ValueError(f"seeds: baseline has {sorted(baseline)}, variant {sorted(variant)}; "
                         "allowed: at least one seed in common")
    return [float(variant[s]) - float(baseline[s]) for s in common]


def paired_interval(baseline: Mapping, variant: Mapping, level: float = 0.95) -> Interval:
    return t_interval(paired_differences(baseline, variant), level)


def control(values: Sequence[float], level: float = 0.95) -> Interval:
    """The noise floor: one configuration's seeds split in two halves (first against
    second, paired in order), the interval of their differences. Needs 4 or more values."""
    xs = _check_values("values", values)
    if len(xs) < 4:
        raise ValueError(f"values: {len(xs)} runs; allowed: at least 4 (two halves of 2)")
    half = len(xs) // 2
    return t_interval([b - a for a, b in zip(xs[:half], xs[half:2 * half])], level)


def _fmt(x: float, digits: int) -> str:
    return f"{round(x, digits) + 0.0:+.{digits}f}"   # + 0.0: a rounded -0.0 prints as +0.00


def verdict(iv: Interval, what: str, unit: str = "", digits: int = 2) -> str:
    """The sentence a lesson prints for a difference: its size, interval and what the
    interval can and cannot resolve, computed from it."""
    head = f"{what}: {_fmt(iv.mean, digits)}{unit}"
    if iv.low is None:
        return (head + f" from {iv.n} seed: no interval (needs 2 or more seeds), so this "
                "run cannot tell signal from noise.")
    head += (f", {iv.level:.0%} interval [{_fmt(iv.low, digits)}, {_fmt(iv.high, digits)}]"
             f" ({iv.method}, {iv.n} seeds)")
    if iv.excludes_zero:
        side = "higher" if iv.mean > 0 else "lower"
        return head + f": the interval excludes 0: the variant is {side} at this budget."
    return head + ": the interval contains 0: this budget cannot tell the two apart."


def finding(iv: Interval, expected_sign: int) -> str:
    """How a measured difference stands to a paper's finding of sign `expected_sign` (+1: the
    variant is higher, -1: lower): "reproduces" where the interval excludes 0 on that side,
    "contradicts" where it excludes 0 on the other, otherwise "cannot resolve" (also
    without an interval)."""
    if expected_sign not in (1, -1):
        raise ValueError(f"expected_sign: {expected_sign!r}; allowed: 1 or -1")
    if iv.low is None or not iv.excludes_zero:
        return "cannot resolve"
    return "reproduces" if (iv.mean > 0) == (expected_sign > 0) else "contradicts"


def pair_agreement(a: Sequence[float], b: Sequence[float]) -> Optional[float]:
    """Fraction of pairs i < j that a and b order the same way, strictly (a pair tied in
    either does not agree). None for fewer than two items."""
    xs, ys = _check_values("a", a), _check_values("b", b)
    if len(xs) != len(ys):
        raise ValueError(f"b: {len(ys)} scores for {len(xs)} rows; allowed: as many as a")
    pairs = [(i, j) for i in range(len(xs)) for j in range(i + 1, len(xs))]
    if not pairs:
        return None
    agree = sum((xs[i] - xs[j]) * (ys[i] - ys[j]) > 0 for i, j in pairs)
    return agree / len(pairs)


def pair_agreement_chance(a: Sequence[float]) -> Optional[float]:
    """The expected pair agreement of a random ordering (every permutation equally likely,
    no ties) against a: the fraction of a's pairs that are not tied, halved."""
    xs = _check_values("a", a)
    pairs = [(i, j) for i in range(len(xs)) for j in range(i + 1, len(xs))]
    if not pairs:
        return None
    return 0.5 * sum(xs[i] != xs[j] for i, j in pairs) / len(pairs)
