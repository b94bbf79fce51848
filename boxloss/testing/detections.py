"""Random COCO-like ground truth and detections (and detections imitated from real ground truth), shared by the
evaluation tests and scripts/bench_eval.py; oriented boxes likewise (:func:`random_oriented_detections`, for the
tests and scripts/bench_obb_eval.py).

One generator, so the benchmark times the backends on the kind of input the tests check them on. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class DetectionSet:
    """Ground truth and detections of ``n`` images, both as COCO dicts and as per-image arrays.

    ``gt_boxes[i]`` (G_i, 4) and ``pred_boxes[i]`` (D_i, 4) are pixel xyxy (oriented sets: (G_i, 5) and (D_i, 5)
    pixel xywhr, angles in radians, ultralytics' convention); ``gt_classes[i]`` (G_i,),
    ``pred_classes[i]`` (D_i,) are class indices (category id = index + 1); ``pred_scores[i]`` (D_i,) are sorted
    in descending order within each image.
    """

    gt: dict[str, Any]
    predictions: list[dict[str, Any]]
    gt_boxes: list[np.ndarray] = field(repr=False)
    gt_classes: list[np.ndarray] = field(repr=False)
    pred_boxes: list[np.ndarray] = field(repr=False)
    pred_scores: list[np.ndarray] = field(repr=False)
    pred_classes: list[np.ndarray] = field(repr=False)


def random_detections(n_images: int = 5000, dets_per_image: int = 100, n_classes: int = 80,
                         gt_per_image: float = 7.0, seed: int = 0, width: int = 640, height: int = 480,
                         crowd_fraction: float = 0.0) -> DetectionSet:
    """A COCO-val-like evaluation input: ~``gt_per_image`` objects and exactly ``dets_per_image`` detections per image.

    Ground truth: Poisson(``gt_per_image``) objects per image; sides log-uniform in [4, 400) px (small, medium
    and large objects), inside the image; classes drawn with a long tail (class ``c`` with weight 1 / (c + 1)).
    A ``crowd_fraction`` of the objects is marked ``iscrowd = 1``.
    Detections: 1-3 per object, jittered (centre by N(0, s·side), sides by exp(N(0, s)), s uniform in [0.02, 0.25]),
    so IoUs spread over the ten thresholds; 10 % take a wrong class; scores higher for smaller jitter, plus
    noise. The rest are background boxes of random class with low scores.
    """
    rng = np.random.default_rng(seed)
    class_weights = 1.0 / np.arange(1, n_classes + 1)
    class_weights /= class_weights.sum()
    images, annotations, predictions = [], [], []
    gt_boxes, gt_classes, pred_boxes, pred_scores, pred_classes = [], [], [], [], []

    def random_boxes(n: int, min_side: float = 4.0, max_side: float = 400.0) -> np.ndarray:  # [n, 4] xyxy
        sides = np.exp(rng.uniform(np.log(min_side), np.log(max_side), (n, 2)))
        sides = np.minimum(sides, [width, height])
        x1 = rng.uniform(0, width - sides[:, 0])
        y1 = rng.uniform(0, height - sides[:, 1])
        return np.stack([x1, y1, x1 + sides[:, 0], y1 + sides[:, 1]], 1)

    for image_id in range(1, n_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": width, "height": height})
        n_gt = int(rng.poisson(gt_per_image))
        boxes = random_boxes(n_gt)  # [G, 4]
        classes = rng.choice(n_classes, n_gt, p=class_weights)  # [G]
        crowd = rng.random(n_gt) < crowd_fraction
        for box, cls, is_crowd in zip(boxes, classes, crowd):
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                                "bbox": [float(box[0]), float(box[1]), float(w), float(h)], "area": float(w * h),
                                "iscrowd": int(is_crowd)})
        gt_boxes.append(boxes)
        gt_classes.append(classes)

        copies = rng.integers(1, 4, n_gt)  # detections per object
        source = np.repeat(np.arange(n_gt), copies)[:dets_per_image]  # [T]
        jitter = rng.uniform(0.02, 0.25, len(source))  # [T]
        side = boxes[source, 2:] - boxes[source, :2]  # [T, 2]
        shift = rng.normal(0, 1, (len(source), 2)) * jitter[:, None] * side
        centre = (boxes[source, :2] + boxes[source, 2:]) / 2 + shift
        new_side = side * np.exp(rng.normal(0, 1, (len(source), 2)) * jitter[:, None])
        true_boxes = np.concatenate([centre - new_side / 2, centre + new_side / 2], 1)
        true_classes = np.where(rng.random(len(source)) < 0.9, classes[source], rng.integers(0, n_classes, len(source)))
        true_scores = np.clip(1.0 - 2.5 * jitter + rng.normal(0, 0.15, len(source)), 0.01, 1.0)

        det_boxes, det_scores, det_classes = _with_background(
            rng, true_boxes, true_scores, true_classes, random_boxes(dets_per_image - len(source)), n_classes)
        det_boxes = det_boxes.clip([0, 0, 0, 0], [width, height, width, height])
        pred_boxes.append(det_boxes)
        pred_scores.append(det_scores)
        pred_classes.append(det_classes)
        for box, score, cls in zip(det_boxes.tolist(), det_scores.tolist(), det_classes.tolist()):
            predictions.append({"image_id": image_id, "category_id": cls + 1,
                                "bbox": [box[0], box[1], box[2] - box[0], box[3] - box[1]], "score": score})

    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(n_classes)]
    gt = {"info": {"description": f"boxloss random evaluation set (seed {seed})"}, "images": images,
          "annotations": annotations, "categories": categories}
    return DetectionSet(gt, predictions, gt_boxes, gt_classes, pred_boxes, pred_scores, pred_classes)


def random_oriented_detections(n_images: int = 500, dets_per_image: int = 100, n_classes: int = 15,
                               gt_per_image: float = 20.0, seed: int = 0, width: int = 1024, height: int = 1024,
                               crowd_fraction: float = 0.0) -> DetectionSet:
    """An aerial-like oriented-box evaluation input (DOTA has 15 classes and tens of objects per 1024-px tile).

    Ground truth: Poisson(``gt_per_image``) objects per image; the long side log-uniform in [8, 300) px, the short
    side 0.2 to 1 times it; angle uniform in [−π/4, 3π/4) (ultralytics' canonical range); centre inside the image;
    classes with the long tail of :func:`random_detections`; a ``crowd_fraction`` of them ``iscrowd = 1``; ``obb``,
    ``bbox`` (the corners' extent) and ``area`` = w·h.
    Detections: 1-3 per object, jittered (centre by N(0, s·short side), sides by exp(N(0, s)), angle by N(0, s)
    radians, s uniform in [0.02, 0.3]); a third of them written in the other form of the same rectangle, (h, w,
    θ + π/2), and any of them possibly θ + π, as a detector may output them; 10 % with a wrong class; scores higher for
    smaller jitter, plus noise. The rest are background boxes of random class with low scores.
    """
    from ..ops.rotated import xywhr_corners

    rng = np.random.default_rng(seed)
    class_weights = 1.0 / np.arange(1, n_classes + 1)
    class_weights /= class_weights.sum()
    images, annotations, predictions = [], [], []
    gt_boxes, gt_classes, pred_boxes, pred_scores, pred_classes = [], [], [], [], []

    def random_obbs(n: int) -> np.ndarray:  # [n, 5] xywhr
        long_side = np.exp(rng.uniform(np.log(8.0), np.log(300.0), n))
        short_side = long_side * rng.uniform(0.2, 1.0, n)
        centre = rng.uniform([0, 0], [width, height], (n, 2))
        angle = rng.uniform(-np.pi / 4, 3 * np.pi / 4, n)
        return np.column_stack([centre, long_side, short_side, angle])

    for image_id in range(1, n_images + 1):
        images.append({"id": image_id, "file_name": f"{image_id:06d}.png", "width": width, "height": height})
        n_gt = int(rng.poisson(gt_per_image))
        boxes = random_obbs(n_gt)  # [G, 5]
        classes = rng.choice(n_classes, n_gt, p=class_weights)  # [G]
        crowd = rng.random(n_gt) < crowd_fraction
        corners = xywhr_corners(boxes)  # [G, 4, 2]
        for box, box_corners, cls, is_crowd in zip(boxes, corners, classes, crowd):
            low, high = box_corners.min(0), box_corners.max(0)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(cls) + 1,
                                "obb": [float(v) for v in box], "bbox": [*map(float, low), *map(float, high - low)],
                                "area": float(box[2] * box[3]), "iscrowd": int(is_crowd)})
        gt_boxes.append(boxes)
        gt_classes.append(classes)

        copies = rng.integers(1, 4, n_gt)
        source = np.repeat(np.arange(n_gt), copies)[:dets_per_image]  # [T]
        jitter = rng.uniform(0.02, 0.3, len(source))  # [T]
        sides = boxes[source, 2:4] * np.exp(rng.normal(0, 1, (len(source), 2)) * jitter[:, None])  # [T, 2]
        centre = boxes[source, :2] + rng.normal(0, 1, (len(source), 2)) * (jitter * boxes[source, 3])[:, None]
        angle = boxes[source, 4] + rng.normal(0, 1, len(source)) * jitter
        swapped = rng.random(len(source)) < 1 / 3  # the same rectangle as (h, w, θ + π/2)
        sides = np.where(swapped[:, None], sides[:, ::-1], sides)
        angle = angle + swapped * np.pi / 2 + rng.integers(0, 2, len(source)) * np.pi
        true_boxes = np.column_stack([centre, sides, angle])
        true_classes = np.where(rng.random(len(source)) < 0.9, classes[source], rng.integers(0, n_classes, len(source)))
        true_scores = np.clip(1.0 - 2.5 * jitter + rng.normal(0, 0.15, len(source)), 0.01, 1.0)

        det_boxes, det_scores, det_classes = _with_background(
            rng, true_boxes, true_scores, true_classes, random_obbs(dets_per_image - len(source)), n_classes)
        pred_boxes.append(det_boxes)
        pred_scores.append(det_scores)
        pred_classes.append(det_classes)
        for box, score, cls in zip(det_boxes.tolist(), det_scores.tolist(), det_classes.tolist()):
            predictions.append({"image_id": image_id, "category_id": cls + 1, "obb": box, "score": score})

    categories = [{"id": c + 1, "name": f"class{c}"} for c in range(n_classes)]
    gt = {"info": {"description": f"boxloss random oriented-box evaluation set (seed {seed})"}, "images": images,
          "annotations": annotations, "categories": categories}
    return DetectionSet(gt, predictions, gt_boxes, gt_classes, pred_boxes, pred_scores, pred_classes)


def _with_background(rng: np.random.Generator, boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray,
                     background: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detections of objects plus ``background`` boxes (random class, score u³·0.6 + 0.001, u ~ U(0, 1)), as
    (boxes, scores, classes) by falling score (a stable sort)."""
    n = len(background)
    background_classes = rng.integers(0, n_classes, n)
    background_scores = rng.random(n) ** 3 * 0.6 + 0.001
    det_boxes = np.concatenate([boxes, background])
    det_scores = np.concatenate([scores, background_scores])
    det_classes = np.concatenate([classes, background_classes]).astype(np.int64)
    order = np.argsort(-det_scores, kind="stable")
    return det_boxes[order], det_scores[order], det_classes[order]


def detections_from_gt(gt: dict[str, Any], seed: int = 0, background_per_image: int = 10) -> list[dict[str, Any]]:
    """A detector's output imitated from real ground truth: every non-crowd object predicted once with a jitter
    and a score that falls as the jitter grows, plus ``background_per_image`` random boxes of random classes.

    Object: jitter j ~ U(0, 0.3); centre shifted by N(0, j/3 · side), sides scaled by exp(N(0, j/3)); score
    clip(1 - 2j + N(0, 0.1), 0.01, 1). Background: sides U(5, image side / 2), score U(0.001, 0.5).
    """
    rng = np.random.default_rng(seed)
    predictions = []
    sizes = {im["id"]: (im["width"], im["height"]) for im in gt["images"]}
    category_ids = [c["id"] for c in gt["categories"]]
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0):
            continue
        x, y, w, h = ann["bbox"]
        jitter = rng.uniform(0.0, 0.3)
        box = [x + rng.normal() * jitter * w / 3, y + rng.normal() * jitter * h / 3,
               w * np.exp(rng.normal() * jitter / 3), h * np.exp(rng.normal() * jitter / 3)]
        predictions.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                            "bbox": [float(v) for v in box],
                            "score": float(np.clip(1 - jitter * 2 + rng.normal() * 0.1, 0.01, 1))})
    for image_id, (width, height) in sizes.items():
        for _ in range(background_per_image):
            w, h = rng.uniform(5, width / 2), rng.uniform(5, height / 2)
            box = [float(rng.uniform(0, width - w)), float(rng.uniform(0, height - h)), float(w), float(h)]
            score = float(rng.uniform(0.001, 0.5))
            predictions.append({"image_id": image_id, "category_id": int(rng.choice(category_ids)), "bbox": box,
                                "score": score})
    return predictions
