"""Statistics of a YOLO dataset folder of the ``shapes`` layout: counts, box sizes, aspect, overlap."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np

from ...ops.boxes import pairwise_iou
from ..._io import read_yaml_mapping
from ..yolo_format import read_labels
from .render import CLASS_NAMES, SPLITS, THIN_ASPECT


def _quantiles(values: np.ndarray) -> dict:
    if values.size == 0:
        return {}
    levels = {"min": 0.0, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}
    return {key: round(float(np.quantile(values, q)), 2) for key, q in levels.items()}


def describe(root: str | os.PathLike) -> dict:
    """Summary statistics of a dataset directory (or its data.yaml): image and box counts, boxes per class, box
    width/height (px) and aspect (long/short side) quantiles, fraction of thin boxes (aspect >= THIN_ASPECT), of
    small (long side < 16 px) and large (long side >= 30 % of the image) boxes, mean/max objects per image, and the
    fraction of boxes overlapping another box of the same image with IoU > 0.1."""
    root = Path(root)
    if root.is_file():
        root = root.parent
    try:
        imgsz = int(json.loads((root / "manifest.json").read_text())["params"]["imgsz"])
    except (OSError, ValueError, KeyError):
        first = next(iter(sorted((root / "images").rglob("*.png"))))
        imgsz = int(cv2.imread(str(first)).shape[1])
    kpt_shape = read_yaml_mapping(root / "data.yaml", "dataset").get("kpt_shape") \
        if (root / "data.yaml").is_file() else None  # pose lines: the box, then the keypoints
    objects_per_image, classes, sizes, overlapping = [], [], [], []
    images = {}
    for split in SPLITS:
        folder = root / "labels" / split
        files = sorted(folder.glob("*.txt")) if folder.is_dir() else []
        images[split] = len(files)
        for file in files:
            rows = np.array(read_labels(file, kpt_shape), dtype=np.float64).reshape(-1, 5)
            objects_per_image.append(len(rows))
            if not len(rows):
                continue
            classes.append(rows[:, 0].astype(int))
            wh = rows[:, 3:5] * imgsz
            sizes.append(wh)
            centres = rows[:, 1:3] * imgsz
            boxes = np.concatenate([centres - wh / 2, centres + wh / 2], 1)
            iou = pairwise_iou(boxes, boxes)
            np.fill_diagonal(iou, 0)
            overlapping.append((iou > 0.1).any(1))
    cls = np.concatenate(classes) if classes else np.zeros(0, int)
    wh = np.concatenate(sizes) if sizes else np.zeros((0, 2))
    long_side, short_side = (wh.max(1), wh.min(1)) if len(wh) else (wh[:, 0], wh[:, 0])
    aspect = long_side / np.maximum(short_side, 1e-9)
    n = max(len(cls), 1)
    return {
        "root": str(root),
        "imgsz": imgsz,
        "images": {**images, "total": sum(images.values())},
        "boxes": int(len(cls)),
        "boxes_per_class": {name: int((cls == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        "objects_per_image_mean": round(float(np.mean(objects_per_image)), 3) if objects_per_image else 0.0,
        "objects_per_image_max": int(max(objects_per_image)) if objects_per_image else 0,
        "width_px": _quantiles(wh[:, 0]),
        "height_px": _quantiles(wh[:, 1]),
        "aspect": _quantiles(aspect),
        "thin_fraction": round(float((aspect >= THIN_ASPECT).sum()) / n, 4),
        "small_fraction": round(float((long_side < 16).sum()) / n, 4),
        "large_fraction": round(float((long_side >= 0.3 * imgsz).sum()) / n, 4),
        "overlap_fraction": round(float(np.concatenate(overlapping).sum()) / n, 4) if overlapping else 0.0,
    }


def format_description(description: dict) -> str:
    d = description
    lines = [
        f"dataset {d['root']} (imgsz {d['imgsz']})",
        f"images: train {d['images']['train']}, val {d['images']['val']}; boxes: {d['boxes']}, "
        f"objects/image mean {d['objects_per_image_mean']} max {d['objects_per_image_max']}",
        "boxes per class: " + ", ".join(f"{k} {v}" for k, v in d["boxes_per_class"].items()),
    ]
    for key in ("width_px", "height_px", "aspect"):
        lines.append(f"{key:10s} " + " ".join(f"{k}={v}" for k, v in d[key].items()))
    lines.append(
        f"thin (aspect>={THIN_ASPECT:g}) {d['thin_fraction']:.1%}, small (<16 px) {d['small_fraction']:.1%}, "
        f"large (>=30% img) {d['large_fraction']:.1%}, overlapping (IoU>0.1) {d['overlap_fraction']:.1%}")
    return "\n".join(lines)
