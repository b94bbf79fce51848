"""COCO box evaluation with AP at each IoU threshold 0.50:0.05:0.95, through pycocotools, faster-coco-eval or hotcoco.

Every backend runs the standard COCO protocol (greedy matching by descending score per image and category,
crowd regions ignored, 101-point interpolated precision, maxDets 1/10/100, COCO's area ranges) and fills the
same ``precision[T, R, K, A, M]`` / ``recall[T, K, A, M]`` arrays; :func:`summarize_arrays` reads every
metric from them exactly as ``COCOeval.summarize`` does (mean over the entries that are not -1, i.e. over
the categories with ground truth), so the backends give the same numbers: pycocotools is the reference, and
faster-coco-eval and hotcoco (Rust) are tested to agree with it within :data:`AGREEMENT_TOLERANCE`.

Metrics (area "all" and maxDets 100 unless named): ``AP50``, ``AP55``, ..., ``AP95`` (one IoU threshold each),
``AP`` (mean over the ten), ``APs``/``APm``/``APl`` (small < 32², medium < 96², large), ``AR100``.
A metric with no ground truth to measure it (e.g. ``APs`` with no small objects) is -1, as in pycocotools.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
from typing import Any, Iterable, Mapping

import numpy as np

from .coco_gt import load_coco

IOU_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))  # COCOeval params.iouThrs
AP_KEYS = tuple(f"AP{round(t * 100)}" for t in IOU_THRESHOLDS)  # AP50, AP55, ..., AP95
METRIC_KEYS = (*AP_KEYS, "AP", "APs", "APm", "APl", "AR100")
BACKENDS = ("pycocotools", "faster_coco_eval", "hotcoco")
REFERENCE_BACKEND = "pycocotools"
BACKEND_PACKAGES = {"pycocotools": "pycocotools", "faster_coco_eval": "faster-coco-eval", "hotcoco": "hotcoco"}
AGREEMENT_TOLERANCE = 1e-12  # |metric - pycocotools' metric| allowed for another backend
AREA_LABELS = ("all", "small", "medium", "large")  # COCOeval params.areaRngLbl
MAX_DETS = 100  # COCO protocol: the metrics are read at maxDets = 100


def _mean_valid(values: np.ndarray) -> float:
    """``COCOeval.summarize``: mean of the entries > -1, or -1 when there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize_arrays(precision: np.ndarray, recall: np.ndarray, iou_thresholds: Iterable[float],
                     area_labels: Iterable[str] = AREA_LABELS,
                     max_dets: Iterable[int] = (1, 10, 100)) -> dict[str, float]:
    """Every metric of :data:`METRIC_KEYS` from COCOeval's accumulated arrays.

    Args:
        precision: ``eval["precision"]``, shape ``[T, R, K, A, M]`` (IoU thresholds, 101 recall points,
            categories, area ranges, maxDets); -1 where a category has no ground truth.
        recall: ``eval["recall"]``, shape ``[T, K, A, M]``.
        iou_thresholds: ``params.iouThrs`` (must be 0.50:0.05:0.95).
        area_labels, max_dets: ``params.areaRngLbl`` and ``params.maxDets``.
    """
    thresholds = np.asarray(list(iou_thresholds), dtype=float)
    if thresholds.shape != (len(IOU_THRESHOLDS),) or not np.allclose(thresholds, IOU_THRESHOLDS):
        raise ValueError(f"expected IoU thresholds {IOU_THRESHOLDS}, got {thresholds.tolist()}")
    area_labels, max_dets = list(area_labels), list(max_dets)
    m = max_dets.index(MAX_DETS)
    area = {label: area_labels.index(label) for label in AREA_LABELS}
    metrics = {key: _mean_valid(precision[t, :, :, area["all"], m]) for t, key in enumerate(AP_KEYS)}
    metrics["AP"] = _mean_valid(precision[:, :, :, area["all"], m])
    for key, label in (("APs", "small"), ("APm", "medium"), ("APl", "large")):
        metrics[key] = _mean_valid(precision[:, :, :, area[label], m])
    metrics["AR100"] = _mean_valid(recall[:, :, area["all"], m])
    return metrics


def check_predictions(gt: Mapping[str, Any], predictions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Validated copies of ``predictions`` (``image_id``, ``category_id``, ``bbox`` [x, y, w, h], ``score``).

    An unknown ``image_id``, a malformed box or a non-finite score raises ``ValueError``. Predictions whose
    category is not in the ground truth are dropped (COCOeval never looks at them either), so every backend
    sees identical input.
    """
    image_ids = {image["id"] for image in gt["images"]}
    category_ids = {category["id"] for category in gt["categories"]}
    checked = []
    for i, prediction in enumerate(predictions):
        try:
            image_id, category_id = prediction["image_id"], prediction["category_id"]
            bbox, score = [float(v) for v in prediction["bbox"]], float(prediction["score"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"prediction {i}: needs image_id, category_id, bbox [x, y, w, h] and score ({error})") \
                from None
        if image_id not in image_ids:
            raise ValueError(f"prediction {i}: image_id {image_id!r} is not in the ground truth")
        if len(bbox) != 4 or not all(math.isfinite(v) for v in bbox) or bbox[2] < 0 or bbox[3] < 0:
            raise ValueError(f"prediction {i}: bbox {prediction['bbox']!r} is not a finite [x, y, w, h] with w, h >= 0")
        if not math.isfinite(score):
            raise ValueError(f"prediction {i}: score {score!r} is not finite")
        if category_id in category_ids:
            checked.append({"image_id": image_id, "category_id": category_id, "bbox": bbox, "score": score})
    return checked


def _run_pycocotools(gt: dict[str, Any], predictions: list[dict[str, Any]]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        if predictions:
            coco_dt = coco_gt.loadRes(predictions)
        else:  # loadRes cannot take an empty list; an empty result set is still a valid evaluation
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt["images"]), "categories": list(gt["categories"]), "annotations": []}
            coco_dt.createIndex()
        evaluator = COCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _run_faster_coco_eval(gt: dict[str, Any], predictions: list[dict[str, Any]]):
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args, **kwargs):
        return None

    coco_gt = COCO(gt, print_function=quiet)
    coco_dt = coco_gt.loadRes(predictions)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType="bbox", print_function=quiet)
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def _run_hotcoco(gt: dict[str, Any], predictions: list[dict[str, Any]]):
    from hotcoco import COCO, COCOeval

    coco_gt = COCO(gt)
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(predictions), "bbox")
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


_RUNNERS = {"pycocotools": _run_pycocotools, "faster_coco_eval": _run_faster_coco_eval, "hotcoco": _run_hotcoco}


class BackendDisagreement(RuntimeError):
    """Two backends computed different metrics for the same input (the message names the metric and both)."""


def missing_backend(backend: str) -> str | None:
    """Why ``backend`` cannot run here (unknown, or its package is not installed), or None when it can."""
    if backend not in _RUNNERS:
        return f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}"
    try:
        importlib.import_module(backend)  # each backend is named after the module it imports
    except ImportError:
        return f"backend {backend} is not installed (pip install {BACKEND_PACKAGES[backend]})"
    return None


def backend_disagreement(results: Mapping[str, Mapping[str, float]],
                         tolerance: float = AGREEMENT_TOLERANCE) -> str | None:
    """The first metric on which a backend differs from pycocotools by more than ``tolerance``, or None.

    ``results``: ``{backend: metrics}`` with pycocotools among them. E.g. ``"AP75: hotcoco 0.5 vs pycocotools
    0.6 (|difference| 1.0e-01 > 1e-12)"``.
    """
    reference = results[REFERENCE_BACKEND]
    for backend, metrics in results.items():
        for key in METRIC_KEYS:
            difference = abs(metrics[key] - reference[key])
            if not difference <= tolerance:  # NaN disagrees too
                return (f"{key}: {backend} {metrics[key]!r} vs {REFERENCE_BACKEND} {reference[key]!r} "
                        f"(|difference| {difference:.1e} > {tolerance:g})")
    return None


def run_cocoeval(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
                 backend: str = "pycocotools"):
    """The backend's evaluator after ``evaluate()`` and ``accumulate()`` (inputs are copied, never modified)."""
    if backend not in _RUNNERS:
        raise ValueError(missing_backend(backend))
    gt = load_coco(gt)
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"ground truth has no {key!r} list")
    return _RUNNERS[backend](gt, check_predictions(gt, predictions))


def evaluate(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
             backend: str = "pycocotools") -> dict[str, float]:
    """COCO box metrics of ``predictions`` against ``gt``.

    Args:
        gt: COCO ground truth, a JSON path or a dict (``images``, ``annotations`` with ``iscrowd``, ``categories``).
            Every image listed is evaluated (an image with no prediction counts its objects as missed).
        predictions: COCO results, ``{"image_id", "category_id", "bbox": [x, y, w, h] pixels, "score"}`` each.
            COCOeval keeps at most 100 per image and category; callers limit them per image (COCO's rule).
        backend: ``"pycocotools"`` (the reference), ``"faster_coco_eval"`` or ``"hotcoco"``.

    Returns:
        ``{key: value}`` for every key of :data:`METRIC_KEYS`, values in [0, 1] or -1 (nothing to measure).
    """
    evaluator = run_cocoeval(gt, predictions, backend)
    params = evaluator.params
    return summarize_arrays(np.asarray(evaluator.eval["precision"]), np.asarray(evaluator.eval["recall"]),
                            params.iouThrs, params.areaRngLbl, params.maxDets)
