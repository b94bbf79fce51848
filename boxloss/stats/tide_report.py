"""Where a config wins or loses AP: TIDE's ΔAP per error type over seeds, paired against the baseline.

Each result record may carry ``"tide": {split: tide.json}`` (:mod:`boxloss.evaluation.tide`: ΔAP of the Cls, Loc,
Both, Dupe, Bkg and Miss errors and of the FP and FN oracles, at foreground IoU 0.5 and 0.75). Per config and split:
mean ± std of each ΔAP over seeds; per config other than the baseline: the paired per-seed difference of each ΔAP
with the same statistics as the AP rows (:mod:`.power`: t and bootstrap intervals; :mod:`.multiplicity`: Holm over
this report's TIDE comparisons of one split, a family of its own beside the AP rows'). A negative paired ΔLoc means
the config leaves less AP on the table to localisation errors than the baseline does: its boxes are tighter.
``tide.png`` (:mod:`.plots`) draws the paired differences, one bar group per config, one panel per foreground IoU.
A pair :mod:`.pairs` leaves out is left out here too.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from ..evaluation.tide import FOREGROUND_IOUS, TIDE_ERRORS, TIDE_ORACLES, ap_key
from .multiplicity import holm_verdicts, paired_t_pvalue
from .power import mean_std, power_summary

TIDE_TYPES = (*TIDE_ERRORS, *TIDE_ORACLES)
THRESHOLDS = tuple(ap_key(t) for t in FOREGROUND_IOUS)  # "AP50", "AP75"


def _delta(record: Mapping[str, Any], split: str, threshold: str, error: str) -> float | None:
    try:
        value = record["tide"][split][threshold]["delta_ap"][error]
    except (KeyError, TypeError):
        return None
    measured = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return float(value) if measured else None


def summarize_tide(results: Sequence[Mapping[str, Any]], configs: Sequence[str], baseline: str, splits: Sequence[str],
                   left_out: Mapping[str, Mapping[int, str]] | None = None) -> dict[str, Any] | None:
    """``{split: {"stats": {cfg: {thr: {type: {mean, std, n}}}}, "paired": {cfg: {thr: {type: power + p + Holm}}},
    "holm": {"m", "resolved", "resolved_raw"}}}``; None when no result carries TIDE. ``left_out``: ``{cfg: {seed:
    why}}``, the pairs with the baseline not compared (:func:`.pairs.left_out_pairs`)."""
    left_out = left_out or {}
    if not any("tide" in result for result in results):
        return None
    by_run = {(r["cfg"], r["seed"]): r for r in results}
    seeds = sorted({r["seed"] for r in results})
    out: dict[str, Any] = {}
    for split in splits:
        def values(cfg: str, threshold: str, error: str) -> dict[int, float]:
            found = {s: _delta(by_run[cfg, s], split, threshold, error) for s in seeds if (cfg, s) in by_run}
            return {s: v for s, v in found.items() if v is not None}

        stats = {cfg: {thr: {error: mean_std(values(cfg, thr, error).values()) for error in TIDE_TYPES}
                       for thr in THRESHOLDS} for cfg in configs}
        paired: dict[str, Any] = {}
        pvalues = {}
        for cfg in configs:
            if cfg == baseline:
                continue
            paired[cfg] = {}
            for thr in THRESHOLDS:
                paired[cfg][thr] = {}
                for error in TIDE_TYPES:
                    mine, base = values(cfg, thr, error), values(baseline, thr, error)
                    differences = {s: mine[s] - base[s] for s in sorted(set(mine) & set(base))
                                   if s not in left_out.get(cfg, {})}
                    entry = {**power_summary(differences), "values": differences}
                    paired[cfg][thr][error] = entry
                    pvalues[(cfg, thr, error)] = paired_t_pvalue(differences)
        verdicts = holm_verdicts(pvalues)
        for (cfg, thr, error), verdict in verdicts.items():
            paired[cfg][thr][error].update(verdict)
        tested = [v for v in verdicts.values() if v["p"] is not None]
        out[split] = {"stats": stats, "paired": paired,
                      "holm": {"m": len(tested), "resolved": sum(bool(v["resolved_holm"]) for v in tested),
                               "resolved_raw": sum(v["p"] < 0.05 for v in tested)}}
    return out
