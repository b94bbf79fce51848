"""What COCO keypoint AP needs beyond the points: the per-keypoint sigmas and the object area of OKS.

Object keypoint similarity of a detection d with a ground-truth object g (COCO; Ruggero Ronchi & Perona, "Benchmarking
and Error Diagnosis in Multi-Instance Pose Estimation", ICCV 2017, arXiv 1707.05388), over g's labelled keypoints
(visibility v_i > 0)::

    OKS = mean_i exp(-d_i² / (2 s² k_i²)),   k_i = 2 σ_i,   s² = area(g)

with d_i the distance between the two i-th points in pixels. pycocotools computes exactly this
(``COCOeval.computeOks``: ``e = d² / (2σ)² / (area + eps) / 2``), and so does ultralytics' ``kpt_iou``.

- **σ** (:func:`oks_sigmas`), as ultralytics' ``PoseValidator`` chooses them: the dataset's ``kpt_oks_sigmas`` when
  its YAML has them; COCO's 17 person sigmas for ``kpt_shape: [17, 3]``; else ``1 / K`` for each of the K points.
- **area(g)** of an object labelled only by its box (a YOLO pose line) is ``POSE_AREA_FACTOR · w · h``, the
  estimate of the segment area that ultralytics' ``PoseValidator`` uses for OKS (0.53, taken from xtcocotools); an
  official COCO JSON keeps its own ``area`` (the segment's). The same area sets the object's COCO size range.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

# pycocotools' COCOeval Params.kpt_oks_sigmas (nose, eyes, ears, shoulders, elbows, wrists, hips, knees, ankles)
COCO_KEYPOINT_SIGMAS = tuple(s / 10.0 for s in (.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07,
                                                 .87, .87, .89, .89))
COCO_KPT_SHAPE = (17, 3)
POSE_AREA_FACTOR = 0.53  # ultralytics PoseValidator._process_batch: OKS area = 0.53 · box area


def oks_sigmas(kpt_shape: Sequence[int], dataset_sigmas: Any = None) -> tuple[list[float], str]:
    """The per-keypoint σ of OKS and where they come from (the rule in the module docstring).

    Raises ValueError when ``dataset_sigmas`` is not K positive finite numbers (ultralytics refuses them too).
    """
    count = int(kpt_shape[0])
    if dataset_sigmas is not None:
        try:
            sigmas = [float(s) for s in dataset_sigmas]
        except (TypeError, ValueError):
            sigmas = []
        if len(sigmas) != count or not all(math.isfinite(s) and s > 0 for s in sigmas):
            raise ValueError(f"'kpt_oks_sigmas' must be {count} positive numbers, got {dataset_sigmas!r}")
        return sigmas, "the dataset's kpt_oks_sigmas"
    if tuple(kpt_shape) == COCO_KPT_SHAPE:
        return list(COCO_KEYPOINT_SIGMAS), "COCO's 17 person keypoint sigmas (kpt_shape [17, 3], as ultralytics)"
    return [1.0 / count] * count, f"1/K for each of the K = {count} keypoints (ultralytics' default without " \
                                  "kpt_oks_sigmas)"
