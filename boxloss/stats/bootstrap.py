"""How much of a paired difference's uncertainty is seed noise and how much is the small evaluated split.

A config's AP on a split varies with the training seed *and* with which images the split happens to hold: a test
set of 72 images is itself a sample. The paired t interval of :mod:`.power` sees only the seeds (every seed is
evaluated on the same images). The two-stage bootstrap here resamples both: B times,

1. draw n seeds with replacement from the n paired seeds, and
2. draw the split's I images with replacement (one draw per replicate, shared by every run: the split is the same
   set of images for every seed and config, so seeds and images are crossed factors, and the pairing of config and
   baseline on the same images is kept),

then recompute COCO AP of every run on the resampled images from its :class:`~boxloss.evaluation.matches.MatchTable`
(an image drawn w times counts w times) and average config - baseline over the drawn seeds. Three versions:

- ``seeds``: step 1 only (images as evaluated): the paired bootstrap over seeds of :mod:`.power`;
- ``images``: step 2 only (every paired seed once): the uncertainty a single fixed set of seeds has from the split;
- ``both``: steps 1 and 2: the total.

For each: the standard deviation of the replicate means and the percentile interval. ``images_share`` =
var(images) / var(both) says how much of the total the split contributes (about var(seeds) + var(images) ≈
var(both) when the two are independent; the share is a guide, not a decomposition theorem). Deterministic for a
given ``seed``. Reference: Davison & Hinkley, *Bootstrap Methods and their Application* (1997), section 3.8
(multi-stage sampling).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from ..evaluation import AP_KEYS
from ..evaluation.matches import MatchTable, ap_per_threshold_batch

METRIC_COLUMNS = {"AP": None, **{key: i for i, key in enumerate(AP_KEYS)}}  # None: the mean over thresholds
RESAMPLES = 1000


def image_weights(images: int, resamples: int, rng: np.random.Generator) -> np.ndarray:
    """``resamples`` bootstrap draws of ``images`` images: how often each image was drawn, (B, I)."""
    return rng.multinomial(images, np.full(images, 1.0 / images), size=resamples).astype(float)


def replicate_ap(tables: Mapping[Any, MatchTable], weights: np.ndarray) -> dict[Any, np.ndarray]:
    """Every run's AP per threshold on every image draw: ``{run: (B, T)}``. The tables must hold the same images
    in the same order (one split)."""
    reference = None
    out = {}
    for run, table in tables.items():
        if reference is None:
            reference = table.image_ids
        elif not np.array_equal(reference, table.image_ids):
            raise ValueError(f"{run}: its evaluated images differ from the other runs' (not the same split)")
        out[run] = ap_per_threshold_batch(table, weights)
    return out


def metric(ap: np.ndarray, key: str) -> np.ndarray:
    """A metric from AP per threshold (..., T): ``AP`` the mean, ``AP50`` … one column."""
    column = METRIC_COLUMNS[key]
    return ap.mean(axis=-1) if column is None else ap[..., column]


def _summary(values: np.ndarray, confidence: float) -> dict[str, Any]:
    low, high = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return {"std": float(np.std(values, ddof=1)), "ci": [float(low), float(high)]}


def two_stage(config: Mapping[int, tuple[np.ndarray, np.ndarray]], baseline: Mapping[int, tuple[np.ndarray, np.ndarray]],
              keys: Sequence[str] = ("AP", "AP50", "AP75", "AP90"), confidence: float = 0.95,
              seed: int = 0) -> dict[str, Any]:
    """The three bootstraps of the paired difference config - baseline, per metric.

    ``config`` and ``baseline``: ``{seed: (ap, replicates)}`` with ``ap`` (T,) the run's AP per threshold on the
    split as evaluated and ``replicates`` (B, T) on the B image draws (:func:`replicate_ap`, the same draws for
    every run). Returns ``{"n", "resamples", key: {"mean", "seeds", "images", "both", "images_share"}}`` over the
    seeds both have; n < 2 gives only ``n`` (the seed stages need two seeds).
    """
    seeds = sorted(set(config) & set(baseline))
    n = len(seeds)
    if n < 2:
        return {"n": n}
    resamples = len(next(iter(config.values()))[1])
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(resamples, n))  # step 1: seed draws (indices into `seeds`)
    result: dict[str, Any] = {"n": n, "resamples": resamples, "confidence": confidence}
    for key in keys:
        evaluated = np.array([metric(config[s][0], key) - metric(baseline[s][0], key) for s in seeds])  # (n,)
        on_draws = np.stack([metric(config[s][1], key) - metric(baseline[s][1], key) for s in seeds], axis=1)  # (B, n)
        seeds_only = evaluated[draws].mean(axis=1)
        images_only = on_draws.mean(axis=1)
        both = np.take_along_axis(on_draws, draws, axis=1).mean(axis=1)
        variances = [float(np.var(x, ddof=1)) for x in (images_only, both)]
        result[key] = {"mean": float(evaluated.mean()), "seeds": _summary(seeds_only, confidence),
                       "images": _summary(images_only, confidence), "both": _summary(both, confidence),
                       "images_share": variances[0] / variances[1] if variances[1] > 0 else None}
    return result
