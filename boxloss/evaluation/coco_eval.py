"""COCO evaluation with AP at each threshold 0.50:0.05:0.95 of box IoU, mask IoU, keypoint OKS or the exact IoU of
oriented boxes, through pycocotools, faster-coco-eval or hotcoco.

Every backend runs the standard COCO protocol (greedy matching by descending score per image and category,
crowd regions ignored, 101-point interpolated precision, COCO's area ranges and maxDets) and fills the
same ``precision[T, R, K, A, M]`` / ``recall[T, K, A, M]`` arrays; :func:`summarize_arrays` reads every
metric from them exactly as ``COCOeval.summarize`` does (mean over the entries that are not -1, i.e. over
the categories with ground truth), so the backends give the same numbers: pycocotools is the reference, and
faster-coco-eval and hotcoco (Rust) are tested to agree with it within :data:`AGREEMENT_TOLERANCE`.

Four families (:data:`FAMILIES`), each an ``iouType`` with its own defaults:

- ``box`` (``bbox``) and ``mask`` (``segm``: IoU of the run-length-encoded masks): ``AP50``, ``AP55``, ..., ``AP95``
  (one threshold each), ``AP`` (mean over the ten), ``APs``/``APm``/``APl`` (area small < 32², medium < 96²,
  large), ``AR100``; area "all" and 100 detections per image and category unless named.
- ``pose`` (``keypoints``: OKS, :mod:`.keypoints`): COCO's keypoint protocol has no small range and reads at 20
  detections per image and category: ``AP50`` ... ``AP95``, ``AP``, ``APm``, ``APl``, ``AR20``.
- ``obb`` (hotcoco's ``obb``: oriented boxes ``[cx, cy, w, h, angle]`` in pixels and radians, ultralytics' xywhr
  convention, :mod:`boxloss.ops.rotated`): the exact IoU of the two rectangles (area of their intersection polygon
  over the area of their union), not ultralytics' ProbIoU; the keys of ``box``. An object's size range is read from
  its ``area``, which is w·h for an oriented box (hotcoco's own value where ``area`` is absent, and what its
  ``loadRes`` gives a prediction). A crowd region (``iscrowd: 1``, e.g. a DOTA ``difficult`` object kept as a region
  to ignore) matches as in COCO: by the intersection over the detection's own area, and a detection it matches is
  ignored. pycocotools and faster-coco-eval have no oriented IoU, so this family is hotcoco's alone
  (:data:`IOU_TYPE_BACKENDS`), checked in the tests against torchvision's rotated IoU and pycocotools' matching.

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
METRIC_KEYS = (*AP_KEYS, "AP", "APs", "APm", "APl", "AR100")  # box and mask
KEYPOINT_METRIC_KEYS = (*AP_KEYS, "AP", "APm", "APl", "AR20")  # COCO's keypoint protocol
FAMILIES = {"box": "bbox", "mask": "segm", "pose": "keypoints", "obb": "obb"}  # family -> the evaluators' iouType
FAMILY_KEYS = {"box": METRIC_KEYS, "mask": METRIC_KEYS, "pose": KEYPOINT_METRIC_KEYS, "obb": METRIC_KEYS}
TASK_FAMILIES = {"detect": ("box",), "segment": ("box", "mask"), "pose": ("box", "pose"),
                 "obb": ("obb",)}  # by the model's task: the first is its boxes' own
BACKENDS = ("pycocotools", "faster_coco_eval", "hotcoco")
REFERENCE_BACKEND = "pycocotools"
BACKEND_PACKAGES = {"pycocotools": "pycocotools", "faster_coco_eval": "faster-coco-eval", "hotcoco": "hotcoco"}
IOU_TYPE_BACKENDS = {"obb": ("hotcoco",)}  # iouTypes that not every backend evaluates: the ones that do
AGREEMENT_TOLERANCE = 1e-12  # |metric - pycocotools' metric| allowed for another backend
AREA_LABELS = ("all", "small", "medium", "large")  # COCOeval params.areaRngLbl
AREA_KEYS = {"small": "APs", "medium": "APm", "large": "APl"}
MAX_DETS = 100  # COCO protocol: box and mask metrics are read at maxDets = 100 (keypoints: 20, its only maxDets)


def _mean_valid(values: np.ndarray) -> float:
    """``COCOeval.summarize``: mean of the entries > -1, or -1 when there are none."""
    valid = values[values > -1]
    return float(np.mean(valid)) if valid.size else -1.0


def summarize_arrays(precision: np.ndarray, recall: np.ndarray, iou_thresholds: Iterable[float],
                     area_labels: Iterable[str] = AREA_LABELS,
                     max_dets: Iterable[int] = (1, 10, 100)) -> dict[str, float]:
    """Every metric of the family from COCOeval's accumulated arrays, read at the largest maxDets as
    ``COCOeval.summarize`` reads its headline numbers: :data:`METRIC_KEYS` for box and mask (area ranges all, small,
    medium, large; maxDets 1, 10, 100), :data:`KEYPOINT_METRIC_KEYS` for keypoints (all, medium, large; 20).

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
    area_labels, max_dets = list(area_labels), [int(m) for m in max_dets]
    m = max_dets.index(max(max_dets))
    area = {label: area_labels.index(label) for label in area_labels}
    metrics = {key: _mean_valid(precision[t, :, :, area["all"], m]) for t, key in enumerate(AP_KEYS)}
    metrics["AP"] = _mean_valid(precision[:, :, :, area["all"], m])
    for label, key in AREA_KEYS.items():
        if label in area:
            metrics[key] = _mean_valid(precision[:, :, :, area[label], m])
    metrics[f"AR{max_dets[m]}"] = _mean_valid(recall[:, :, area["all"], m])
    return metrics


PREDICTION_FIELDS = {"bbox": "bbox [x, y, w, h]", "segm": "segmentation (a compressed RLE {size, counts})",
                     "keypoints": "keypoints [x1, y1, v1, ...]", "obb": "obb [cx, cy, w, h, angle]"}
GROUND_TRUTH_FIELDS = {"bbox": ("bbox",), "segm": ("segmentation",), "keypoints": ("keypoints", "num_keypoints"),
                       "obb": ("obb",)}
CROWD_SHAPED = {"obb"}  # iouTypes whose crowd regions are matched by their own shape, so need it too


def _checked_shape(iou_type: str, value: Any, image: Mapping[str, Any]) -> Any:
    """A prediction's box, mask or keypoints, copied; ValueError naming what is wrong."""
    if iou_type == "segm":
        size, counts = value["size"], value["counts"]
        if [int(v) for v in size] != [image.get("height"), image.get("width")]:
            raise ValueError(f"mask size {size!r} is not the image's [height, width]")
        if not isinstance(counts, str):
            raise ValueError(f"mask counts must be a compressed RLE string, got {type(counts).__name__}")
        return {"size": [int(v) for v in size], "counts": counts}
    numbers = [float(v) for v in value]
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{iou_type} {value!r} is not finite")
    if iou_type == "bbox" and (len(numbers) != 4 or numbers[2] < 0 or numbers[3] < 0):
        raise ValueError(f"bbox {value!r} is not a finite [x, y, w, h] with w, h >= 0")
    if iou_type == "obb" and (len(numbers) != 5 or numbers[2] < 0 or numbers[3] < 0):
        raise ValueError(f"obb {value!r} is not a finite [cx, cy, w, h, angle] with w, h >= 0")
    if iou_type == "keypoints" and (not numbers or len(numbers) % 3):
        raise ValueError(f"keypoints hold {len(numbers)} numbers, not x, y, v per keypoint")
    return numbers


def check_predictions(gt: Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
                      iou_type: str = "bbox") -> list[dict[str, Any]]:
    """Validated copies of ``predictions``: ``image_id``, ``category_id``, ``score`` and the family's shape
    (``bbox`` [x, y, w, h]; ``segmentation``, an RLE of the image's size; ``keypoints`` [x1, y1, v1, ...]; ``obb``
    [cx, cy, w, h, angle]).

    An unknown ``image_id``, a malformed shape or a non-finite score raises ``ValueError``. Predictions whose
    category is not in the ground truth are dropped (COCOeval never looks at them either), so every backend
    sees identical input. Only the family's shape is kept: pycocotools derives a mask's or keypoints' box and area
    from the shape itself, as for COCO's own result files.
    """
    if iou_type not in PREDICTION_FIELDS:
        raise ValueError(f"unknown iou_type {iou_type!r}: expected one of {', '.join(PREDICTION_FIELDS)}")
    field = "segmentation" if iou_type == "segm" else iou_type
    images = {image["id"]: image for image in gt["images"]}
    category_ids = {category["id"] for category in gt["categories"]}
    checked = []
    for i, prediction in enumerate(predictions):
        try:
            image_id, category_id = prediction["image_id"], prediction["category_id"]
            value, score = prediction[field], float(prediction["score"])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"prediction {i}: needs image_id, category_id, {PREDICTION_FIELDS[iou_type]} and score "
                             f"({error})") from None
        if image_id not in images:
            raise ValueError(f"prediction {i}: image_id {image_id!r} is not in the ground truth")
        try:
            shape = _checked_shape(iou_type, value, images[image_id])
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"prediction {i}: {error}") from None
        if not math.isfinite(score):
            raise ValueError(f"prediction {i}: score {score!r} is not finite")
        if category_id in category_ids:
            checked.append({"image_id": image_id, "category_id": category_id, field: shape, "score": score})
    return checked


def check_ground_truth(gt: Mapping[str, Any], iou_type: str) -> None:
    """Every non-crowd object has what the family compares (a segmentation; keypoints and num_keypoints; an obb,
    which crowd regions need too, and which must be a finite [cx, cy, w, h, angle] with w, h >= 0); ValueError naming
    the first that does not."""
    for ann in gt["annotations"]:
        missing = [key for key in GROUND_TRUTH_FIELDS[iou_type] if key not in ann]
        if missing and (not ann.get("iscrowd", 0) or iou_type in CROWD_SHAPED):
            raise ValueError(f"ground-truth annotation {ann.get('id')!r} has no {' or '.join(missing)}: "
                             f"{iou_type} evaluation needs it for every "
                             f"{'annotation, crowd regions included' if iou_type in CROWD_SHAPED else 'object'}")
        if iou_type == "obb":
            try:
                _checked_shape(iou_type, ann["obb"], {})
            except (TypeError, ValueError) as error:
                raise ValueError(f"ground-truth annotation {ann.get('id')!r}: {error}") from None


def _run_pycocotools(gt: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str,
                     sigmas: list[float] | None):
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
        evaluator = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
        evaluator.evaluate()
        evaluator.accumulate()
    return evaluator


def _run_faster_coco_eval(gt: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str,
                          sigmas: list[float] | None):
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args, **kwargs):
        return None

    coco_gt = COCO(gt, print_function=quiet)
    coco_dt = coco_gt.loadRes(predictions)
    evaluator = COCOeval_faster(coco_gt, coco_dt, iouType=iou_type, print_function=quiet)
    if sigmas is not None:
        evaluator.params.kpt_oks_sigmas = np.asarray(sigmas, dtype=np.float64)
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


def _run_hotcoco(gt: dict[str, Any], predictions: list[dict[str, Any]], iou_type: str, sigmas: list[float] | None):
    from hotcoco import COCO, COCOeval

    coco_gt = COCO(gt)
    evaluator = COCOeval(coco_gt, coco_gt.loadRes(predictions), iou_type)
    if sigmas is not None:
        evaluator.params.kpt_oks_sigmas = [float(s) for s in sigmas]  # params hands out copies: assign whole
    evaluator.evaluate()
    evaluator.accumulate()
    return evaluator


_RUNNERS = {"pycocotools": _run_pycocotools, "faster_coco_eval": _run_faster_coco_eval, "hotcoco": _run_hotcoco}


class BackendDisagreement(RuntimeError):
    """Two backends computed different metrics for the same input (the message names the metric and both)."""


def backends_of(iou_type: str) -> tuple[str, ...]:
    """The backends that evaluate ``iou_type`` (all of :data:`BACKENDS` but for ``obb``: hotcoco)."""
    return IOU_TYPE_BACKENDS.get(iou_type, BACKENDS)


def default_backend(iou_type: str = "bbox") -> str:
    """The evaluator :func:`evaluate` uses when none is named: pycocotools (the reference) where it can, else the
    first backend that evaluates ``iou_type``."""
    capable = backends_of(iou_type)
    return REFERENCE_BACKEND if REFERENCE_BACKEND in capable else capable[0]


def missing_backend(backend: str, iou_type: str = "bbox") -> str | None:
    """Why ``backend`` cannot evaluate ``iou_type`` here (unknown; no such evaluation, e.g. pycocotools on oriented
    boxes; or its package is not installed), or None when it can."""
    if backend not in _RUNNERS:
        return f"unknown backend {backend!r}: expected one of {', '.join(BACKENDS)}"
    if backend not in backends_of(iou_type):
        return (f"backend {backend} has no {iou_type!r} IoU: iou_type {iou_type!r} is evaluated by "
                f"{' or '.join(backends_of(iou_type))} alone")
    try:
        importlib.import_module(backend)  # each backend is named after the module it imports
    except ImportError:
        return f"backend {backend} is not installed (pip install {BACKEND_PACKAGES[backend]})"
    return None


def backend_disagreement(results: Mapping[str, Mapping[str, float]],
                         tolerance: float = AGREEMENT_TOLERANCE, keys: Iterable[str] = METRIC_KEYS) -> str | None:
    """The first metric of ``keys`` on which a backend differs from pycocotools by more than ``tolerance``, or None.

    ``results``: ``{backend: metrics}`` with pycocotools among them. E.g. ``"AP75: hotcoco 0.5 vs pycocotools
    0.6 (|difference| 1.0e-01 > 1e-12)"``.
    """
    reference = results[REFERENCE_BACKEND]
    for backend, metrics in results.items():
        for key in keys:
            difference = abs(metrics[key] - reference[key])
            if not difference <= tolerance:  # NaN disagrees too
                return (f"{key}: {backend} {metrics[key]!r} vs {REFERENCE_BACKEND} {reference[key]!r} "
                        f"(|difference| {difference:.1e} > {tolerance:g})")
    return None


def run_cocoeval(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
                 backend: str | None = None, iou_type: str = "bbox", kpt_oks_sigmas: Iterable[float] | None = None):
    """The backend's evaluator after ``evaluate()`` and ``accumulate()`` (inputs are copied, never modified);
    ``backend`` None is :func:`default_backend`."""
    if iou_type not in PREDICTION_FIELDS:
        raise ValueError(f"unknown iou_type {iou_type!r}: expected one of {', '.join(PREDICTION_FIELDS)}")
    backend = default_backend(iou_type) if backend is None else backend
    if backend not in backends_of(iou_type):
        raise ValueError(missing_backend(backend, iou_type))
    gt = load_coco(gt)
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"ground truth has no {key!r} list")
    predictions = check_predictions(gt, predictions, iou_type)
    check_ground_truth(gt, iou_type)
    sigmas = None
    if iou_type == "keypoints" and kpt_oks_sigmas is not None:
        sigmas = [float(s) for s in kpt_oks_sigmas]
        counts = {len(a["keypoints"]) // 3 for a in gt["annotations"] if "keypoints" in a}
        counts |= {len(p["keypoints"]) // 3 for p in predictions}
        if counts - {len(sigmas)}:
            raise ValueError(f"{len(sigmas)} OKS sigmas for keypoint sets of {sorted(counts)} points")
    return _RUNNERS[backend](gt, predictions, iou_type, sigmas)


def evaluate(gt: str | os.PathLike | Mapping[str, Any], predictions: Iterable[Mapping[str, Any]],
             backend: str | None = None, iou_type: str = "bbox",
             kpt_oks_sigmas: Iterable[float] | None = None) -> dict[str, float]:
    """COCO metrics of ``predictions`` against ``gt``: box, mask, keypoint or oriented-box AP.

    Args:
        gt: COCO ground truth, a JSON path or a dict (``images``, ``annotations`` with ``iscrowd``, ``categories``;
            ``segmentation`` for masks, ``keypoints`` and ``num_keypoints`` for keypoints, ``obb`` for oriented
            boxes, crowd regions included). Every image listed is evaluated (an image with no prediction counts its
            objects as missed).
        predictions: COCO results, ``{"image_id", "category_id", "score"}`` and ``"bbox": [x, y, w, h]`` pixels,
            ``"segmentation": {"size": [h, w], "counts"}`` (RLE), ``"keypoints": [x1, y1, v1, ...]`` pixels or
            ``"obb": [cx, cy, w, h, angle]`` (pixels, radians, ultralytics' xywhr: the ``bboxes`` of its OBB results
            as they are). COCOeval keeps at most 100 (keypoints: 20) per image and category; callers limit them per
            image.
        backend: ``"pycocotools"`` (the reference), ``"faster_coco_eval"`` or ``"hotcoco"``; None: pycocotools, or
            hotcoco for ``"obb"``, which the other two cannot evaluate (naming one of them is a ValueError).
        iou_type: ``"bbox"``, ``"segm"``, ``"keypoints"`` (pycocotools' names) or ``"obb"`` (hotcoco's).
        kpt_oks_sigmas: keypoints only: the σ of OKS (default pycocotools' 17 COCO sigmas).

    Returns:
        ``{key: value}`` for every key of the family (:data:`FAMILY_KEYS`), values in [0, 1] or -1 (nothing to
        measure).
    """
    evaluator = run_cocoeval(gt, predictions, backend, iou_type, kpt_oks_sigmas)
    params = evaluator.params
    return summarize_arrays(np.asarray(evaluator.eval["precision"]), np.asarray(evaluator.eval["recall"]),
                            params.iouThrs, params.areaRngLbl, params.maxDets)
