"""How large a paired difference the benchmark's seeds can resolve, and how many seeds a smaller one would need.

Input: the paired per-seed differences d_s = config_s - baseline_s of one metric (AP values in [0, 1], so
"0.5 AP" is 0.005), n seeds, mean d̄ and sample standard deviation s (n - 1 in the denominator), as in
:mod:`boxloss.stats.summary`. With t = t_{(1+c)/2, n-1}, the two-sided quantile of Student's t:

- t interval of the mean difference: d̄ ± t · s / √n (the confidence interval of a paired t test).
- resolvable difference (minimum detectable difference): t · s / √n, the interval's half-width. A measured mean
  beyond it gives an interval that excludes zero: the difference is *resolved at confidence c*.
- seeds needed for a target δ: the smallest n ≥ 2 with t_{(1+c)/2, n-1} · s / √n ≤ δ, s as measured.
- percentile bootstrap interval of the mean: resampling the seeds with replacement; a cross-check only.

How to read them. "Resolves 0.005 at 95 %" means: had the config and the baseline the same expected AP, the 95 %
t interval of n paired seeds would contain zero in 95 % of repetitions of the benchmark, and a mean difference of
0.005 would lie just outside it. Differences smaller than the resolvable one cannot be told from seed noise with
these seeds; they may still be real. Both the interval and the seed count assume that the paired differences are
roughly normal and that their seed-to-seed spread stays as measured. s from 3 seeds is itself uncertain (the
true spread lies between 0.52 s and 6.3 s with 95 % confidence), so the seed counts are an order of magnitude,
not a promise. The "within seed noise" rule of the summary, |d̄| ≤ s, is a 1-std rule: with 3 seeds |d̄| = s is
only about 77 % two-sided confidence, whereas resolving at 95 % needs |d̄| > t_{0.975,2} / √3 · s ≈ 2.48 s.

With 3 seeds the bootstrap interval is crude: there are only 10 distinct resample means, and the 95 % percentile
interval is the range [min, max] of the three differences (each extreme is drawn three times with probability
1/27 > 2.5 %), which covers the true median only 75 % of the time. Read the t interval; the bootstrap becomes
useful from about 10 seeds on.
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

TARGETS = (0.005, 0.01)  # 0.5 AP and 1 AP


def mean_std(values: Iterable[float]) -> dict[str, Any]:
    """``{"mean", "std", "n"}``: sample standard deviation (n - 1); mean None for n = 0, std None for n < 2."""
    values = [float(v) for v in values]
    n = len(values)
    return {"mean": statistics.fmean(values) if n else None, "std": statistics.stdev(values) if n >= 2 else None,
            "n": n}


def t_quantile(n: int, confidence: float = 0.95) -> float:
    """t_{(1+c)/2, n-1}: the two-sided quantile of Student's t with n - 1 degrees of freedom (n ≥ 2)."""
    _check_confidence(confidence)
    if n < 2:
        raise ValueError(f"the t quantile needs n >= 2 seeds, got {n}")
    return float(stats.t.ppf((1 + confidence) / 2, n - 1))


def resolvable_difference(std: float | None, n: int, confidence: float = 0.95) -> float | None:
    """t_{(1+c)/2, n-1} · s / √n: the smallest |mean paired difference| that n seeds resolve (its t interval then
    excludes zero); None when n < 2 or std is None."""
    if std is None or n < 2:
        return None
    _check_std(std)
    return t_quantile(n, confidence) * std / math.sqrt(n)


def seeds_needed(std: float | None, delta: float, confidence: float = 0.95, max_seeds: int = 1000) -> int | None:
    """Smallest n ≥ 2 with t_{(1+c)/2, n-1} · s / √n ≤ δ, the per-seed std s staying as measured.

    None when std is None, and None when more than ``max_seeds`` seeds would be needed. std = 0 gives 2: any two
    seeds resolve any δ > 0. δ ≤ 0 is a ValueError. The half-width decreases with n (t falls, √n grows), and t > z
    (the normal quantile), so the search starts at the lower bound ⌈(z · s / δ)²⌉ and takes a few steps.
    """
    if std is None:
        return None
    _check_std(std)
    if not delta > 0:
        raise ValueError(f"the target difference must be positive, got {delta}")
    z = float(stats.norm.ppf((1 + confidence) / 2))
    n = max(2, math.ceil((z * std / delta) ** 2))
    while n <= max_seeds:
        if resolvable_difference(std, n, confidence) <= delta:
            return n
        n += 1
    return None


def t_interval(differences: Iterable[float] | Mapping[Any, float],
               confidence: float = 0.95) -> tuple[float, float] | None:
    """(d̄ - t · s / √n, d̄ + t · s / √n), the t confidence interval of the mean difference; None for n < 2."""
    values = _values(differences)
    if len(values) < 2:
        return None
    mean, half_width = statistics.fmean(values), resolvable_difference(statistics.stdev(values), len(values),
                                                                        confidence)
    return mean - half_width, mean + half_width


def paired_bootstrap_ci(differences: Iterable[float] | Mapping[Any, float], confidence: float = 0.95,
                        resamples: int = 10000, seed: int = 0) -> tuple[float, float] | None:
    """Percentile bootstrap interval of the mean difference; None for n < 2.

    ``resamples`` times, n seeds are drawn with replacement and their differences averaged; the interval is the
    (1 - c)/2 and (1 + c)/2 quantiles of those means (numpy's linear interpolation). Deterministic for a given
    ``seed`` and independent of the order of the differences (they are sorted first). Crude for few seeds: with
    n = 3 there are only 10 distinct resample means and the 95 % interval is [min, max]; read the t interval.
    """
    _check_confidence(confidence)
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    values = np.sort(np.asarray(_values(differences), dtype=np.float64))
    if len(values) < 2:
        return None
    indices = np.random.default_rng(seed).integers(0, len(values), size=(resamples, len(values)))
    low, high = np.quantile(values[indices].mean(axis=1), [(1 - confidence) / 2, (1 + confidence) / 2])
    return float(low), float(high)


def power_summary(differences: Mapping[Any, float], targets: Sequence[float] = TARGETS, confidence: float = 0.95,
                  resamples: int = 10000, seed: int = 0, max_seeds: int = 1000) -> dict[str, Any]:
    """JSON-ready statistics of one metric's paired differences ``{seed: config - baseline}``.

    ``{"n", "mean", "std", "confidence", "t_ci": [low, high], "bootstrap_ci": [low, high], "resolvable",
    "resolved", "seeds_needed": {"0.005": n, "0.01": n}, "max_seeds"}``. ``resolvable``: the resolvable difference
    with these n seeds; ``resolved``: whether the t interval excludes zero (|mean| > resolvable); ``seeds_needed``:
    per target (key ``f"{target:g}"``), the seeds that would resolve it, null when more than ``max_seeds``. For
    n < 2 everything but n and mean is null (mean too for n = 0).
    """
    values = _values(differences)
    n = len(values)
    mean = statistics.fmean(values) if n else None
    std = statistics.stdev(values) if n >= 2 else None
    t_ci = t_interval(values, confidence)
    bootstrap_ci = paired_bootstrap_ci(values, confidence, resamples, seed)
    return {
        "n": n,
        "mean": mean,
        "std": std,
        "confidence": confidence,
        "t_ci": list(t_ci) if t_ci else None,
        "bootstrap_ci": list(bootstrap_ci) if bootstrap_ci else None,
        "resolvable": resolvable_difference(std, n, confidence),
        "resolved": (t_ci[0] > 0 or t_ci[1] < 0) if t_ci else None,
        "seeds_needed": {f"{target:g}": seeds_needed(std, target, confidence, max_seeds) for target in targets},
        "max_seeds": max_seeds,
    }


def _values(differences: Iterable[float] | Mapping[Any, float]) -> list[float]:
    values = [float(v) for v in (differences.values() if isinstance(differences, Mapping) else differences)]
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"paired differences must be finite, got {values}")
    return values


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def _check_std(std: float) -> None:
    if not (math.isfinite(std) and std >= 0):
        raise ValueError(f"the standard deviation must be finite and non-negative, got {std}")
