"""Intervals the probes report: Wilson's for proportions, and the distribution-free interval of a
median from binomial order statistics (no assumption about the distribution of distances)."""

from __future__ import annotations

import numpy as np
from scipy.stats import binom


def wilson(p: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for a proportion."""
    if n == 0:
        return (0.0, 1.0)
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (float(centre - half), float(centre + half))


def median_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The order statistics (x_(r), x_(n-r+1)) that cover the median with probability
    1 - 2 P(B <= r-1) >= level, B ~ Binomial(n, 1/2), for the largest such r (r = 1 when n is too
    small to reach the level). Infinite values (points never flipped) stay in the sample."""
    x = np.sort(np.asarray(values, dtype=float))
    n = len(x)
    if n == 0:
        return (float("nan"), float("nan"))
    r = 1
    while r < n // 2 and 2 * binom.cdf(r, n, 0.5) <= 1 - level:
        r += 1
    return (float(x[r - 1]), float(x[n - r]))


def robustness(epsilons: list[float], rates: list[float], n: int) -> dict[str, list[float]]:
    """A robustness curve as probes report it: success rate at each budget, Wilson bounds."""
    lows, highs = zip(*(wilson(r, n) for r in rates), strict=True)
    return {"epsilon": list(epsilons), "success_rate": list(rates), "success_low": list(lows),
            "success_high": list(highs)}


def kappa(a: np.ndarray, b: np.ndarray) -> float | None:
    """Cohen's kappa of two decision vectors (scikit-learn), None where it is undefined (both
    give one and the same answer everywhere: no agreement beyond chance to measure)."""
    import warnings

    from sklearn.metrics import cohen_kappa_score
    a, b = np.asarray(a), np.asarray(b)
    if len(a) == 0 or len(np.unique(np.concatenate([a, b]))) < 2:
        return None
    with warnings.catch_warnings():   # one side constant: kappa is 0, sklearn warns about it
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(a, b))
    return None if np.isnan(value) else value


def kappa_interval(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, resamples: int = 200,
                   level: float = 0.95) -> tuple[float | None, tuple[float, float]]:
    """Cohen's kappa and its percentile bootstrap interval over the rows (resampled in pairs);
    resamples where kappa is undefined are left out, and an undefined kappa gets (nan, nan)."""
    a, b = np.asarray(a), np.asarray(b)
    value = kappa(a, b)
    if value is None:
        return None, (float("nan"), float("nan"))
    n = len(a)
    boot = [k for _ in range(resamples) if (k := kappa(a[idx := rng.integers(0, n, n)], b[idx]))
            is not None]
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(boot, [tail, 100 - tail]) if boot else (value, value)
    return value, (float(min(lo, value)), float(max(hi, value)))


def percent(share: float) -> str:
    """A share as people write it: "5%", "0.5%", "3.3%" (whole percents without a decimal)."""
    return f"{share:.0%}" if round(share * 100, 6).is_integer() else f"{share:.1%}"
