"""Power analysis of paired seed differences, against values derived by hand.

Quantiles used below, in closed form (Student's t with 1 and 2 degrees of freedom) or from a t table:
  t_{0.975,1} = tan(0.475 π)                     = 12.706204736174...
  t_{0.975,2} = (2p - 1) / √(2p(1 - p)), p = 0.975 = 0.95 / √0.04875 = 4.302652729749464...
  t_{0.975,5} = 2.570582, t_{0.975,6} = 2.446912, t_{0.975,16} = 2.119905, t_{0.975,17} = 2.109816 (tables: 2.571,
  2.447, 2.120, 2.110).
"""

import itertools
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from boxloss.stats.power import (paired_bootstrap_ci, power_summary, resolvable_difference, seeds_needed,
                                     t_interval, t_quantile)

T_1 = math.tan(0.475 * math.pi)
T_2 = 0.95 / math.sqrt(0.04875)
T_TABLE = {5: 2.5705818356, 6: 2.4469118511, 16: 2.1199052992, 17: 2.1098155778}  # df: t_{0.975,df}
# [0.01, 0.02, 0.03]: mean 0.02, s = √((0.01² + 0 + 0.01²) / 2) = 0.01; half-width t_{0.975,2} · 0.01 / √3
MDD_3 = T_2 * 0.01 / math.sqrt(3)  # 0.0248413771175...


def exact_bootstrap_quantiles(values, confidence):
    """Percentile interval of the exact bootstrap distribution: every one of the n^n resamples, equally likely;
    the q-quantile is the smallest resample mean whose cumulative probability reaches q."""
    means = sorted(sum(sample) / len(sample) for sample in itertools.product(values, repeat=len(values)))
    quantile = lambda q: means[math.ceil(q * len(means)) - 1]  # noqa: E731
    return quantile((1 - confidence) / 2), quantile((1 + confidence) / 2)


# ---------------------------------------------------------------------------------------------------------------
# t quantile, resolvable difference, t interval
# ---------------------------------------------------------------------------------------------------------------
def test_t_quantile_matches_closed_forms_and_table():
    assert T_1 == pytest.approx(12.706204736174, rel=1e-12)
    assert T_2 == pytest.approx(4.302652729749464, rel=1e-13)
    assert t_quantile(2) == pytest.approx(T_1, rel=1e-12)
    assert t_quantile(3) == pytest.approx(T_2, rel=1e-12)
    for df, t in T_TABLE.items():
        assert t_quantile(df + 1) == pytest.approx(t, rel=1e-9)
    # 90 %: t_{0.95,2} = 0.9 / √(2 · 0.95 · 0.05) = 2.919985580...
    assert t_quantile(3, 0.90) == pytest.approx(0.9 / math.sqrt(0.095), rel=1e-12)


def test_resolvable_difference_by_hand():
    assert resolvable_difference(0.01, 3) == pytest.approx(0.0248413771175033, rel=1e-12)
    assert resolvable_difference(0.01, 3) == pytest.approx(MDD_3, rel=1e-12)
    # n = 2: t_{0.975,1} · 0.01 / √2 = 12.7062047 · 0.00707107 = 0.0898464353...
    assert resolvable_difference(0.01, 2) == pytest.approx(T_1 * 0.01 / math.sqrt(2), rel=1e-12)
    assert resolvable_difference(0.01, 2) == pytest.approx(0.0898464353, rel=1e-9)
    # linear in s
    assert resolvable_difference(0.03, 3) == pytest.approx(3 * MDD_3, rel=1e-12)


def test_resolvable_difference_edges():
    assert resolvable_difference(None, 3) is None
    assert resolvable_difference(0.01, 1) is None
    assert resolvable_difference(0.01, 0) is None
    assert resolvable_difference(0.0, 3) == 0.0
    with pytest.raises(ValueError, match="non-negative"):
        resolvable_difference(-0.01, 3)
    with pytest.raises(ValueError, match="confidence"):
        resolvable_difference(0.01, 3, confidence=1.0)


def test_t_interval_by_hand():
    low, high = t_interval([0.01, 0.02, 0.03])
    assert low == pytest.approx(0.02 - MDD_3, rel=1e-10)  # -0.00484137...
    assert high == pytest.approx(0.02 + MDD_3, rel=1e-10)  # 0.04484137...
    assert low == pytest.approx(-0.0048413771, abs=1e-10)
    # n = 2, [0.01, 0.03]: s = |0.03 - 0.01| / √2, half-width t_{0.975,1} · s / √2 = t_{0.975,1} · 0.01 = 0.12706
    low, high = t_interval([0.01, 0.03])
    assert (low, high) == (pytest.approx(0.02 - T_1 * 0.01, rel=1e-10), pytest.approx(0.02 + T_1 * 0.01, rel=1e-10))


def test_t_interval_negative_differences_and_mapping():
    low, high = t_interval({7: -0.01, 3: -0.02, 5: -0.03})
    assert (low, high) == (pytest.approx(-0.02 - MDD_3, rel=1e-10), pytest.approx(-0.02 + MDD_3, rel=1e-10))


def test_t_interval_edges():
    assert t_interval([]) is None
    assert t_interval([0.01]) is None
    assert t_interval([0.01, 0.01, 0.01]) == (pytest.approx(0.01, abs=1e-15), pytest.approx(0.01, abs=1e-15))
    with pytest.raises(ValueError, match="finite"):
        t_interval([0.01, math.nan])


# ---------------------------------------------------------------------------------------------------------------
# Seeds needed
# ---------------------------------------------------------------------------------------------------------------
def test_seeds_needed_half_ap_by_hand():
    """s = 0.01, δ = 0.005: need t_{0.975,n-1} / √n ≤ 0.5.
    n = 17: 2.119905 / √17 = 0.514153 > 0.5; n = 18: 2.109816 / √18 = 0.497288 ≤ 0.5 → 18."""
    assert T_TABLE[16] * 0.01 / math.sqrt(17) == pytest.approx(0.0051415256, rel=1e-8)
    assert T_TABLE[17] * 0.01 / math.sqrt(18) == pytest.approx(0.0049728830, rel=1e-8)
    assert seeds_needed(0.01, 0.005) == 18
    assert resolvable_difference(0.01, 18) <= 0.005 < resolvable_difference(0.01, 17)
    assert seeds_needed(0.02, 0.01) == 18  # only s / δ matters


def test_seeds_needed_one_ap_by_hand():
    """s = 0.01, δ = 0.01: need t_{0.975,n-1} / √n ≤ 1.
    n = 6: 2.570582 / √6 = 1.049436 > 1; n = 7: 2.446912 / √7 = 0.924846 ≤ 1 → 7."""
    assert T_TABLE[5] / math.sqrt(6) == pytest.approx(1.0494356, rel=1e-7)
    assert T_TABLE[6] / math.sqrt(7) == pytest.approx(0.9248457, rel=1e-7)
    assert seeds_needed(0.01, 0.01) == 7
    # δ just above the n = 3 resolvable difference: 3 seeds do; just below: they do not
    assert seeds_needed(0.01, MDD_3 * (1 + 1e-9)) == 3
    assert seeds_needed(0.01, MDD_3 * (1 - 1e-9)) == 4


def test_seeds_needed_equals_a_search_from_two():
    """The search starts at the normal lower bound ⌈(z s / δ)²⌉; it must find the same n as counting from 2."""
    for ratio in (0.1, 0.3, 0.5, 0.9, 1.0, 1.7, 2.0, 3.3, 5.0, 8.0):
        brute = next(n for n in itertools.count(2) if resolvable_difference(ratio, n) <= 1.0)
        assert seeds_needed(ratio, 1.0) == brute, ratio
        assert seeds_needed(ratio, 1.0, confidence=0.9) == next(
            n for n in itertools.count(2) if resolvable_difference(ratio, n, 0.9) <= 1.0)


def test_seeds_needed_edges():
    assert seeds_needed(None, 0.005) is None
    assert seeds_needed(0.0, 0.005) == 2  # no spread: the smallest n with a t quantile
    assert seeds_needed(0.001, 0.5) == 2  # tiny spread: two seeds suffice
    assert seeds_needed(0.01, 0.005, max_seeds=17) is None  # 18 needed: over the cap
    assert seeds_needed(0.01, 0.005, max_seeds=18) == 18
    assert seeds_needed(0.01, 0.0005) is None  # ≈ (1.96 · 20)² ≈ 1540 > 1000
    n = seeds_needed(0.01, 0.0005, max_seeds=10000)
    assert 1537 <= n <= 1545
    assert resolvable_difference(0.01, n) <= 0.0005 < resolvable_difference(0.01, n - 1)
    for delta in (0.0, -0.005):
        with pytest.raises(ValueError, match="positive"):
            seeds_needed(0.01, delta)
    with pytest.raises(ValueError, match="non-negative"):
        seeds_needed(-0.01, 0.005)


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap
# ---------------------------------------------------------------------------------------------------------------
def test_bootstrap_two_seeds_enumerated():
    """[0.01, 0.03]: 4 resamples, means 0.01 (1/4), 0.02 (2/4), 0.03 (1/4). 95 %: the 2.5 % and 97.5 % quantiles
    are 0.01 and 0.03; 40 %: the 30 % and 70 % quantiles both fall on 0.02 (cumulative 1/4 < 0.3, 3/4 > 0.7)."""
    assert exact_bootstrap_quantiles([0.01, 0.03], 0.95) == (0.01, 0.03)
    assert paired_bootstrap_ci([0.01, 0.03]) == (pytest.approx(0.01, abs=1e-15), pytest.approx(0.03, abs=1e-15))
    assert paired_bootstrap_ci([0.01, 0.03], 0.4) == (pytest.approx(0.02, abs=1e-15), pytest.approx(0.02, abs=1e-15))


def test_bootstrap_three_seeds_enumerated():
    """[0, 0.03, 0.06]: the mean of a resample is 0.01 · k, k the sum of 3 draws from {0, 1, 2}: 27 resamples,
    k = 0..6 with counts 1, 3, 6, 7, 6, 3, 1 (cumulative 0.037, 0.148, 0.370, 0.630, 0.852, 0.963, 1).
    95 % → k = 0 and 6 (the range); 80 % → the 10 % and 90 % quantiles, k = 1 and 5; 50 % → k = 2 and 4."""
    values = [0.0, 0.03, 0.06]
    for confidence, expected in ((0.95, (0.0, 0.06)), (0.80, (0.01, 0.05)), (0.50, (0.02, 0.04))):
        assert exact_bootstrap_quantiles(values, confidence) == pytest.approx(expected, abs=1e-15)
        assert paired_bootstrap_ci(values, confidence) == pytest.approx(expected, abs=1e-15), confidence


def test_bootstrap_deterministic_and_order_free():
    rng = np.random.default_rng(1)
    values = list(rng.normal(0.002, 0.004, size=10))
    first = paired_bootstrap_ci(values, seed=3)
    assert paired_bootstrap_ci(values, seed=3) == first
    assert paired_bootstrap_ci(values[::-1], seed=3) == first
    assert paired_bootstrap_ci(dict(enumerate(values)), seed=3) == first
    assert paired_bootstrap_ci(values, seed=4) != first
    assert first[0] < float(np.mean(values)) < first[1]


def test_bootstrap_near_t_interval_for_many_seeds():
    """Many seeds: the percentile bootstrap approaches mean ± z · s · √((n - 1) / n) / √n, close to the t one."""
    values = list(np.random.default_rng(2).normal(0.01, 0.005, size=400))
    (b_low, b_high), (t_low, t_high) = paired_bootstrap_ci(values), t_interval(values)
    assert b_high - b_low == pytest.approx(t_high - t_low, rel=0.08)
    assert (b_low + b_high) / 2 == pytest.approx((t_low + t_high) / 2, abs=0.1 * (t_high - t_low))


def test_bootstrap_edges():
    assert paired_bootstrap_ci([]) is None
    assert paired_bootstrap_ci([0.01]) is None
    assert paired_bootstrap_ci([-0.02, -0.02, -0.02]) == pytest.approx((-0.02, -0.02), abs=1e-15)
    assert paired_bootstrap_ci([-0.03, -0.01]) == pytest.approx((-0.03, -0.01), abs=1e-15)
    with pytest.raises(ValueError, match="resamples"):
        paired_bootstrap_ci([0.01, 0.02], resamples=0)
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_ci([0.01, 0.02], confidence=0.0)


# ---------------------------------------------------------------------------------------------------------------
# Summary
# ---------------------------------------------------------------------------------------------------------------
def test_power_summary_three_seeds():
    summary = power_summary({0: 0.01, 1: 0.02, 2: 0.03})
    assert summary == {
        "n": 3,
        "mean": pytest.approx(0.02, abs=1e-15),
        "std": pytest.approx(0.01, rel=1e-12),
        "confidence": 0.95,
        "t_ci": [pytest.approx(0.02 - MDD_3, rel=1e-10), pytest.approx(0.02 + MDD_3, rel=1e-10)],
        "bootstrap_ci": [pytest.approx(0.01, abs=1e-15), pytest.approx(0.03, abs=1e-15)],  # 3 seeds: the range
        "resolvable": pytest.approx(MDD_3, rel=1e-10),
        "resolved": False,  # 0.02 < 0.0248
        "seeds_needed": {"0.005": 18, "0.01": 7},
        "max_seeds": 1000,
    }
    assert json.loads(json.dumps(summary)) == summary  # JSON-ready: plain types, string keys


def test_power_summary_resolved_negative():
    """[-0.030, -0.031, -0.032]: mean -0.031, s = 0.001, half-width 0.00248 → CI [-0.03348, -0.02852], below 0."""
    summary = power_summary({0: -0.030, 1: -0.031, 2: -0.032}, targets=(0.001,))
    assert summary["resolved"] is True
    half_width = MDD_3 / 10  # s = 0.001
    assert summary["t_ci"] == [pytest.approx(-0.031 - half_width, rel=1e-9),
                               pytest.approx(-0.031 + half_width, rel=1e-9)]
    assert summary["t_ci"][1] < 0
    assert summary["seeds_needed"] == {"0.001": 7}  # s / δ = 1, as in the 1 AP case
    assert summary["resolvable"] < abs(summary["mean"])


def test_power_summary_one_and_no_seed():
    one = power_summary({5: 0.01})
    assert one == {"n": 1, "mean": 0.01, "std": None, "confidence": 0.95, "t_ci": None, "bootstrap_ci": None,
                   "resolvable": None, "resolved": None, "seeds_needed": {"0.005": None, "0.01": None},
                   "max_seeds": 1000}
    none = power_summary({})
    assert none["n"] == 0 and none["mean"] is None and none["resolved"] is None


def test_power_summary_zero_spread():
    constant = power_summary({0: 0.01, 1: 0.01, 2: 0.01})
    assert constant["std"] == 0.0 and constant["resolvable"] == 0.0
    assert constant["resolved"] is True  # identical nonzero differences: the interval is the single point 0.01
    assert constant["seeds_needed"] == {"0.005": 2, "0.01": 2}
    zero = power_summary({0: 0.0, 1: 0.0, 2: 0.0})
    assert zero["resolved"] is False and zero["t_ci"] == [0.0, 0.0]


def test_power_module_is_pure():
    code = ("import sys, boxloss.stats.power; "
            "print(sorted(m for m in ('ultralytics', 'matplotlib', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
