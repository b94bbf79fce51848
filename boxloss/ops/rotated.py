"""Oriented boxes in ultralytics' ``xywhr`` convention: corners, the exact polygon IoU matrix, and the minimum-area
rectangle around a polygon.

The convention (ultralytics 8.4 ``ops.xywhr2xyxyxyxy``; hotcoco's ``"obb"`` fields use the same one): a box is
``(cx, cy, w, h, θ)`` in pixels, θ in radians, and its corners are c + R(θ)·(±w/2, ±h/2) with
R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]] in image coordinates (x to the right, y down). A positive θ turns the width
axis from +x towards +y, i.e. clockwise as the image is seen. torchvision's rotated formats
(``box_iou(fmt="cxcywhr")``, the ``box_iou_rotated`` kernel that came from detectron2) take the angle in degrees and
turn the other way on screen (width axis (cos r, −sin r)), so r = −θ·180/π: :func:`rotated_iou` is the one place
that converts.

Numpy; :func:`rotated_iou` imports torch and torchvision and :func:`min_area_rectangle` OpenCV when they are called.
Nothing here imports ultralytics or any other part of boxloss.
"""

from __future__ import annotations

import numpy as np

__all__ = ["min_area_rectangle", "rotated_iou", "xywhr_corners"]


def xywhr_corners(boxes: np.ndarray) -> np.ndarray:
    """The four corners of each box, (N, 5) xywhr -> (N, 4, 2), in ultralytics' ``xywhr2xyxyxyxy`` order:
    c + a + b, c + a − b, c − a − b, c − a + b with a = (w/2)(cos θ, sin θ), b = (h/2)(−sin θ, cos θ)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 5)
    centre = boxes[:, None, :2]  # [N, 1, 2]
    cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])  # [N]
    half_width_axis = (boxes[:, 2] / 2)[:, None] * np.stack([cos, sin], 1)  # [N, 2]
    half_height_axis = (boxes[:, 3] / 2)[:, None] * np.stack([-sin, cos], 1)  # [N, 2]
    signs = np.array([[1, 1], [1, -1], [-1, -1], [-1, 1]], dtype=np.float64)  # [4, 2]: (a, b) per corner
    return centre + signs[None, :, :1] * half_width_axis[:, None] + signs[None, :, 1:] * half_height_axis[:, None]


def rotated_iou(boxes1, boxes2):
    """Exact IoU matrix of oriented boxes: area of the intersection polygon over the area of the union.

    torchvision's ``box_iou(fmt="cxcywhr")`` (the ``box_iou_rotated`` kernel: both rectangles clipped against each
    other, on the CPU or CUDA) after converting ultralytics' angle to torchvision's (module docstring). The kernel
    computes in the input's precision and returns float32, so values are exact to float32 rounding (~6e-8).
    Two boxes with no area give IoU 0.

    Args:
        boxes1: (N, 5) xywhr, radians (ultralytics' convention), a torch tensor or a numpy array.
        boxes2: (M, 5), the same.

    Returns:
        (N, M) IoU: a float32 tensor on ``boxes1``'s device for tensor input (half and bfloat16 are computed in
        float32, float64 stays float64 inside the kernel), a float64 numpy array for numpy input.
    """
    import torch

    numpy_input = not isinstance(boxes1, torch.Tensor)
    first, second = torch.as_tensor(boxes1), torch.as_tensor(boxes2)
    for name, boxes in (("boxes1", first), ("boxes2", second)):
        if boxes.ndim != 2 or boxes.shape[-1] != 5:
            raise ValueError(f"expected {name} of shape (N, 5) xywhr, got {tuple(boxes.shape)}")
    dtype = torch.float64 if torch.float64 in (first.dtype, second.dtype) else torch.float32
    second = second.to(device=first.device)
    iou = _box_iou_rotated()(_torchvision_cxcywhr(first.to(dtype)), _torchvision_cxcywhr(second.to(dtype)))  # [N, M]
    return iou.double().cpu().numpy() if numpy_input else iou


def _torchvision_cxcywhr(boxes):
    """ultralytics' (cx, cy, w, h, θ radians) -> torchvision's (cx, cy, w, h, r degrees), r = −θ·180/π."""
    import torch

    return torch.cat((boxes[:, :4], -torch.rad2deg(boxes[:, 4:])), dim=1)


def _box_iou_rotated():
    """torchvision's rotated IoU kernel; an ImportError naming the problem where this torchvision lacks it."""
    import torch
    import torchvision  # noqa: F401  (registers torch.ops.torchvision)

    if not hasattr(torch.ops.torchvision, "box_iou_rotated"):
        raise ImportError(f"torchvision {torchvision.__version__} has no rotated box IoU (box_iou(fmt='cxcywhr')); "
                          "the pinned torchvision 0.29.1 has it")
    return torch.ops.torchvision.box_iou_rotated


def min_area_rectangle(points: np.ndarray) -> tuple[float, float, float, float, float]:
    """The smallest-area rectangle containing ``points`` (P, 2), as xywhr: ultralytics' ``xyxyxyxy2xywhr`` of one
    polygon, done the same way so that evaluation and training see the same rectangle.

    ``cv2.minAreaRect`` on the points in float32 (rotating calipers on the convex hull: one side of a minimum-area
    rectangle lies on a hull edge; Freeman & Shapira, CACM 1975), then ultralytics' canonical form: w >= h, θ in
    radians in [−π/4, 3π/4). Where several rectangles have the least area (a quadrilateral far from a rectangle can
    have two), cv2 chooses, as it does for ultralytics. Collinear points give h = 0, a single point w = h = 0.
    """
    import cv2

    points = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(points) == 0 or not np.isfinite(points).all():
        raise ValueError(f"min_area_rectangle needs finite points, got {points.tolist()!r}")
    (cx, cy), (width, height), degrees = cv2.minAreaRect(points.astype(np.float32))
    angle = degrees / 180 * np.pi
    if width < height:
        width, height, angle = height, width, angle + np.pi / 2
    while angle >= 3 * np.pi / 4:
        angle -= np.pi
    while angle < -np.pi / 4:
        angle += np.pi
    return float(cx), float(cy), float(width), float(height), float(angle)
