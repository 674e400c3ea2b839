"""Statistics over seeds, in float64: a sample's mean, standard deviation and Student-t 95%
confidence interval, and Welch's 95% interval for the difference of two means."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95  # of every interval dlexp reports


def t_quantile(df: float) -> float:
    """The two-sided 95% quantile of Student's t with `df` degrees of freedom (2.776 for 4)."""
    from scipy import stats  # scipy.stats takes a second to import: only once an interval is due

    return float(stats.t.ppf(0.5 + CONFIDENCE / 2, df))


@dataclass(frozen=True)
class Estimate:
    """A metric over n seeds; `sd` (ddof 1) and `half` (the CI's half-width) are None for n = 1."""

    n: int
    mean: float
    sd: float | None
    half: float | None

    @property
    def low(self) -> float | None:
        return None if self.half is None else self.mean - self.half

    @property
    def high(self) -> float | None:
        return None if self.half is None else self.mean + self.half


def estimate(values: Iterable[float]) -> Estimate:
    """Mean, sd and the t interval mean ± t(0.975, n-1)·sd/√n of at least one value."""
    x = np.asarray(list(values), dtype=np.float64)
    if x.size == 0:
        raise ValueError("an estimate needs at least one value")
    mean = float(x.mean())
    if x.size == 1:
        return Estimate(1, mean, None, None)
    sd = float(x.std(ddof=1))
    return Estimate(int(x.size), mean, sd, t_quantile(x.size - 1) * sd / math.sqrt(x.size))


@dataclass(frozen=True)
class Difference:
    """mean(b) − mean(a), with Welch's 95% interval; `half` is None when a side has n = 1."""

    delta: float
    half: float | None
    df: float | None  # Welch–Satterthwaite degrees of freedom

    @property
    def spans_zero(self) -> bool:
        return self.half is None or abs(self.delta) <= self.half


def welch_difference(a: Estimate, b: Estimate) -> Difference:
    """Welch's interval for mean(b) − mean(a): unequal variances, Satterthwaite's df."""
    delta = b.mean - a.mean
    if a.sd is None or b.sd is None:
        return Difference(delta, None, None)
    var_a, var_b = a.sd**2 / a.n, b.sd**2 / b.n  # squared standard errors
    se2 = var_a + var_b
    if se2 == 0.0:  # both sides without spread (bitwise-deterministic runs): no uncertainty
        return Difference(delta, 0.0, None)
    df = se2**2 / (var_a**2 / (a.n - 1) + var_b**2 / (b.n - 1))
    return Difference(delta, t_quantile(df) * math.sqrt(se2), df)
