"""Verdicts that survive multiple comparisons: paired t test p-values and Holm's step-down adjustment.

A report compares every config with the baseline on several metrics; at an uncorrected 95 % each of m null
comparisons reads "resolved" with probability 0.05, so about 0.05 · m of them do by chance alone. Holm's method
(Holm 1979, "A simple sequentially rejective multiple test procedure", Scand. J. Statist. 6:65-70) keeps the
family-wise error rate, the probability of even one false "resolved" among the m, at α, whatever the dependence
between the comparisons:

- p_i: the two-sided p-value of the paired t test of comparison i, t = d̄ / (s / √n) with n - 1 degrees of freedom
  (the test whose interval :mod:`.power` reports: p_i < α exactly when the t interval excludes 0);
- sort p_(1) ≤ … ≤ p_(m); the adjusted p-values are p̃_(j) = max_{i ≤ j} min(1, (m - i + 1) · p_(i));
- comparison i is resolved after Holm when p̃_i < α.

Holm is uniformly more powerful than Bonferroni (p · m) and needs no independence. A comparison with n < 2 has no
p-value and is left out of the family (it cannot be resolved either way).
"""

from __future__ import annotations

import math
import statistics
from typing import Any, Iterable, Mapping, Sequence

from scipy import stats


def paired_t_pvalue(differences: Iterable[float] | Mapping[Any, float]) -> float | None:
    """Two-sided p-value of the paired t test of mean 0; None for n < 2. Zero spread: p = 0 for a non-zero mean
    (every seed moved the same way by the same amount), 1 for a zero mean."""
    values = [float(v) for v in (differences.values() if isinstance(differences, Mapping) else differences)]
    n = len(values)
    if n < 2:
        return None
    mean, std = statistics.fmean(values), statistics.stdev(values)
    if std == 0:
        return 0.0 if mean != 0 else 1.0
    t = mean / (std / math.sqrt(n))
    return float(2 * stats.t.sf(abs(t), n - 1))


def holm_adjust(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's adjusted p-values, in the input order; None stays None and is not counted in m."""
    indexed = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(pvalues)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def holm_verdicts(pvalues: Mapping[Any, float | None], alpha: float = 0.05) -> dict[Any, dict[str, Any]]:
    """``{key: {"p", "p_holm", "resolved_holm"}}`` for one family of comparisons (keys e.g. (config, metric));
    ``resolved_holm`` None where there is no p-value."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    keys = list(pvalues)
    adjusted = holm_adjust([pvalues[key] for key in keys])
    return {key: {"p": pvalues[key], "p_holm": q, "resolved_holm": None if q is None else q < alpha}
            for key, q in zip(keys, adjusted)}
