"""One evaluation's detections matched per image, and COCO AP recomputed from them on re-weighted images.

The COCO protocol (pycocotools' ``evaluate``) decides, per image and category, which detection matches which
ground-truth box at each IoU threshold. After that, AP only needs, per category, every detection's score and its
matched/ignored flags, and the number of ground-truth boxes that count: ``accumulate`` sorts the detections by
descending score, takes cumulative true and false positives, and reads the interpolated precision at 101 recall
points. A :class:`MatchTable` keeps exactly those inputs (area "all", 100 detections per image: the protocol of
``AP50``…``AP95`` and ``AP``), so AP can be recomputed for a bootstrap resample of the images without matching again:
an image drawn w times contributes its detections and its ground truth w times, i.e. weight w in the cumulative
sums (:func:`ap_per_threshold`). With every weight 1 the result is COCO's own AP at each threshold (tested against
pycocotools to 1e-12); with integer weights it equals pycocotools on the dataset with those images repeated
(tested; up to the order of equal scores from different images, which COCO leaves to the image order).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .coco_eval import IOU_THRESHOLDS, MAX_DETS, check_predictions
from .coco_gt import load_coco

RECALL_POINTS = np.linspace(0.0, 1.0, 101)  # COCOeval params.recThrs


@dataclass(frozen=True)
class MatchTable:
    """Per-detection COCO matches of one evaluation (area "all", maxDets 100), detections grouped by category and
    sorted by descending score within it (the order ``accumulate`` uses).

    Arrays: ``image_ids`` (I,) the evaluated images; ``category_ids`` (K,); ``gt_count`` (I, K) the ground-truth
    boxes that count (not crowd) per image and category; ``det_image`` (D,) index into ``image_ids``;
    ``det_category`` (D,) index into ``category_ids``; ``det_score`` (D,); ``det_matched`` and ``det_ignored``
    (T, D) per IoU threshold 0.50:0.05:0.95 (ignored: matched to a crowd region).
    """

    image_ids: np.ndarray
    category_ids: np.ndarray
    gt_count: np.ndarray
    det_image: np.ndarray
    det_category: np.ndarray
    det_score: np.ndarray
    det_matched: np.ndarray
    det_ignored: np.ndarray

    def save(self, path: str | os.PathLike) -> None:
        """A compressed ``.npz`` (written through a temporary file and a rename)."""
        from .._io import atomic_write

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **self.__dict__)

        atomic_write(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "MatchTable":
        with np.load(path) as data:
            return cls(**{name: data[name] for name in cls.__dataclass_fields__})


def match_table(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]]) -> MatchTable:
    """The :class:`MatchTable` of ``predictions`` against ``gt`` (COCO dicts or JSON paths), matched by pycocotools."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = load_coco(gt)
    predictions = check_predictions(gt, predictions)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(predictions) if predictions else COCO()
        if not predictions:
            coco_dt.dataset = {"images": list(gt["images"]), "categories": list(gt["categories"]), "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.params.areaRng, evaluator.params.areaRngLbl = [[0, 1e5 ** 2]], ["all"]
        evaluator.params.maxDets = [MAX_DETS]
        evaluator.evaluate()
    params = evaluator.params
    if not np.allclose(params.iouThrs, IOU_THRESHOLDS):
        raise ValueError(f"unexpected IoU thresholds {params.iouThrs}")
    image_ids, category_ids = np.asarray(params.imgIds), np.asarray(params.catIds)
    n_images, thresholds = len(image_ids), len(IOU_THRESHOLDS)
    gt_count = np.zeros((n_images, len(category_ids)), dtype=np.int64)
    columns: dict[str, list] = {"image": [], "category": [], "score": [], "matched": [], "ignored": []}
    for k in range(len(category_ids)):
        per_category: dict[str, list] = {name: [] for name in columns}
        for i in range(n_images):
            e = evaluator.evalImgs[k * n_images + i]  # evalImgs is [category][area][image], one area here
            if e is None:
                continue
            gt_count[i, k] = int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0))
            scores = np.asarray(e["dtScores"][:MAX_DETS], dtype=float)
            per_category["image"].append(np.full(len(scores), i))
            per_category["category"].append(np.full(len(scores), k))
            per_category["score"].append(scores)
            per_category["matched"].append(np.asarray(e["dtMatches"])[:, :MAX_DETS].reshape(thresholds, -1) != 0)
            per_category["ignored"].append(np.asarray(e["dtIgnore"])[:, :MAX_DETS].reshape(thresholds, -1) != 0)
        if not per_category["score"]:
            continue
        scores = np.concatenate(per_category["score"])
        order = np.argsort(-scores, kind="mergesort")  # accumulate's order: stable over the image order
        columns["score"].append(scores[order])
        for name in ("image", "category"):
            columns[name].append(np.concatenate(per_category[name])[order])
        for name in ("matched", "ignored"):
            columns[name].append(np.concatenate(per_category[name], axis=1)[:, order])
    empty = np.zeros(0, dtype=np.int64)
    return MatchTable(
        image_ids=image_ids, category_ids=category_ids, gt_count=gt_count,
        det_image=np.concatenate(columns["image"]) if columns["image"] else empty,
        det_category=np.concatenate(columns["category"]) if columns["category"] else empty,
        det_score=np.concatenate(columns["score"]) if columns["score"] else np.zeros(0),
        det_matched=np.concatenate(columns["matched"], axis=1) if columns["matched"]
        else np.zeros((thresholds, 0), dtype=bool),
        det_ignored=np.concatenate(columns["ignored"], axis=1) if columns["ignored"]
        else np.zeros((thresholds, 0), dtype=bool))


def ap_per_threshold(table: MatchTable, image_weights: np.ndarray | None = None) -> np.ndarray:
    """COCO AP at each IoU threshold (T,) with image i counted ``image_weights[i]`` times (default: once each).

    Per category with ground truth: weighted cumulative true positives (matched, not ignored) and false
    positives (unmatched, not ignored) down the score order, recall = TP / Σ_i w_i · n_i, precision =
    TP / (TP + FP), made monotone from the right, read at 101 recall points (0 beyond the last recall
    reached); AP_t is the mean over the categories with ground truth (-1 when there are none), as
    ``COCOeval.accumulate`` and ``summarize`` compute it.
    """
    weights = np.ones(len(table.image_ids)) if image_weights is None else np.asarray(image_weights, dtype=float)
    return ap_per_threshold_batch(table, weights[None])[0]


def ap_per_threshold_batch(table: MatchTable, image_weights: np.ndarray, chunk: int = 256) -> np.ndarray:
    """:func:`ap_per_threshold` for B weightings: ``image_weights`` (B, I) -> AP (B, T).

    Only the true positives' positions matter: recall rises only there, so the first position reaching a recall
    point is a true positive, and the precision at a false positive is below that of the true positive before it,
    so the right-to-left maximum is a maximum over true positives. At true positive j of a category, the weighted
    counts are TP_j = Σ_{true positives j' ≤ j} w(image(j')) and FP_j = Σ_i w_i · F[j, i], F[j, i] the false
    positives of image i ranked above j: one matrix product per category and threshold serves all B weightings.
    A detection of weight 0 changes no precision read at a recall point, so every weighting walks the same list.
    """
    weights = np.asarray(image_weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != len(table.image_ids) or (weights < 0).any() \
            or not np.isfinite(weights).all():
        raise ValueError(f"image_weights must be (B, {len(table.image_ids)}) finite non-negative numbers")
    thresholds, n_images = table.det_matched.shape[0], len(table.image_ids)
    curves = []  # per category with detections: per threshold, the true positives' images and F (n_tp, I)
    for k in range(len(table.category_ids)):
        selected = np.flatnonzero(table.det_category == k)
        images = table.det_image[selected]
        per_threshold = []
        for t in range(thresholds):
            matched, ignored = table.det_matched[t, selected], table.det_ignored[t, selected]
            true_at = np.flatnonzero(matched & ~ignored)
            false_at = np.flatnonzero(~matched & ~ignored)
            false_before = np.zeros((len(true_at), n_images))
            for i in np.unique(images[false_at]):
                false_before[:, i] = np.searchsorted(false_at[images[false_at] == i], true_at)
            per_threshold.append((images[true_at], false_before))
        curves.append((k, per_threshold))
    result = np.empty((len(weights), thresholds))
    for start in range(0, len(weights), chunk):
        w = weights[start:start + chunk]
        positives = w @ table.gt_count  # (B, K)
        total, counted = np.zeros((len(w), thresholds)), np.zeros(len(w))
        for k, per_threshold in curves:
            has_gt = positives[:, k] > 0
            for t, (true_images, false_before) in enumerate(per_threshold):
                total[:, t] += np.where(has_gt, _mean_interpolated_precision(w, true_images, false_before,
                                                                             positives[:, k]), 0.0)
            counted += has_gt
        for k in range(len(table.category_ids)):  # categories with ground truth but no detection: AP 0
            if k not in {c for c, _ in curves}:
                counted += positives[:, k] > 0
        result[start:start + chunk] = np.where(counted[:, None] > 0, total / np.maximum(counted, 1)[:, None], -1.0)
    return result


def _mean_interpolated_precision(weights: np.ndarray, true_images: np.ndarray, false_before: np.ndarray,
                                 positives: np.ndarray) -> np.ndarray:
    """Per weighting (B,): the mean over the 101 recall points of the precision envelope, read at the first true
    positive whose recall reaches the point (0 where none does)."""
    count = len(true_images)
    if count == 0:
        return np.zeros(len(weights))
    tp = np.cumsum(weights[:, true_images], axis=1)  # (B, n_tp)
    fp = weights @ false_before.T
    precision = np.maximum.accumulate((tp / (fp + tp + np.spacing(1)))[:, ::-1], axis=1)[:, ::-1]
    recall = tp / np.where(positives > 0, positives, 1.0)[:, None]
    index = np.stack([np.searchsorted(row, RECALL_POINTS, side="left") for row in recall])  # (B, 101), exact
    q = np.where(index < count, np.take_along_axis(precision, np.minimum(index, count - 1), axis=1), 0.0)
    return q.mean(axis=1)
