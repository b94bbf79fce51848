"""How well the detection score ranks localisation quality: correlation between score and true IoU.

This is the point of the IoU-aware head (Wu, Li, Wang, arXiv 1912.05992): a score that tracks IoU makes
NMS keep the better-placed box and AP rank well-localised detections first. For every detection we take
the IoU with the best-overlapping non-crowd ground-truth box of the same class in its image; detections
with that IoU >= ``min_iou`` (the ones that found an object) are "matched", and we report the Pearson and
Spearman correlation of their scores with their IoUs. Pure numpy, on COCO-format dicts; oriented boxes
(``iou_type="obb"``) on their exact polygon IoU (:func:`boxloss.ops.rotated.rotated_iou`, which needs torchvision).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable, Mapping

import numpy as np

from ..ops.boxes import pairwise_iou, xywh_to_xyxy
from ..ops.rotated import rotated_iou

CALIBRATION_KEYS = ("score_iou_pearson", "score_iou_spearman", "matched")
SHAPE_IOU = {  # iou_type -> (the field of each object, its IoU matrix)
    "bbox": ("bbox", lambda detections, truth: pairwise_iou(xywh_to_xyxy(detections), xywh_to_xyxy(truth))),
    "obb": ("obb", rotated_iou),
}


def matched_scores_and_ious(gt: Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
                            min_iou: float = 0.5, iou_type: str = "bbox") -> tuple[np.ndarray, np.ndarray]:
    """Scores and best same-class IoUs of the detections whose best IoU >= ``min_iou``; ``iou_type`` ``bbox``
    (``bbox`` fields, top-left xywh) or ``obb`` (``obb`` fields, xywhr: the exact rotated IoU)."""
    field, iou_matrix = SHAPE_IOU[iou_type]
    truth = defaultdict(list)
    for ann in gt["annotations"]:
        if not ann.get("iscrowd", 0):
            truth[(ann["image_id"], ann["category_id"])].append(ann[field])
    detections = defaultdict(list)
    for det in predictions:
        detections[(det["image_id"], det["category_id"])].append((det["score"], det[field]))
    scores, ious = [], []
    for key, dets in detections.items():
        if key not in truth:
            continue
        gt_shapes = np.asarray(truth[key], dtype=np.float64)
        det_shapes = np.asarray([shape for _, shape in dets], dtype=np.float64)
        best = np.asarray(iou_matrix(det_shapes, gt_shapes)).max(1)
        keep = best >= min_iou
        scores.extend(np.asarray([score for score, _ in dets])[keep])
        ious.extend(best[keep])
    return np.asarray(scores, dtype=np.float64), np.asarray(ious, dtype=np.float64)


def _ranks(values: np.ndarray) -> np.ndarray:
    """Average ranks (ties share the mean of their positions), as Spearman's rho needs."""
    order = np.argsort(values, kind="mergesort")
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.arange(len(values), dtype=np.float64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def _pearson(x: np.ndarray, y: np.ndarray) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def calibration(gt: Mapping[str, Any], predictions: Iterable[Mapping[str, Any]], min_iou: float = 0.5,
                iou_type: str = "bbox") -> dict:
    """``{"score_iou_pearson", "score_iou_spearman", "matched"}`` for the detections matched at ``min_iou`` (boxes,
    or oriented boxes with ``iou_type="obb"``).

    Correlations are None (nothing to measure) when fewer than two detections match or one side is constant.
    """
    scores, ious = matched_scores_and_ious(gt, predictions, min_iou, iou_type)
    return {"score_iou_pearson": _pearson(scores, ious),
            "score_iou_spearman": _pearson(_ranks(scores), _ranks(ious)) if len(scores) else None,
            "matched": int(len(scores))}
