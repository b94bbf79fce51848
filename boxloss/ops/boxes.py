"""Numpy box operations shared by the evaluation and the dataset statistics (the losses have their own, in torch)."""

from __future__ import annotations

import numpy as np


def pairwise_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of xyxy boxes; 0 where both boxes have no area."""
    top_left = np.maximum(a[:, None, :2], b[None, :, :2])  # [A, B, 2]
    bottom_right = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(bottom_right - top_left, 0, None).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).prod(-1)
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


def xywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """Top-left (x, y, w, h) -> (x1, y1, x2, y2), (N, 4)."""
    return np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], axis=1)
