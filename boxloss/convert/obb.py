"""Oriented boxes for the converters: a polygon's minimum-area rectangle, a quadrilateral's corners in one order, and
the YOLO-OBB label line of either, checked as the dataset check reads it.

The rectangle fitting is ultralytics' own (``ultralytics.utils.ops.xyxyxyxy2xywhr``: OpenCV's ``minAreaRect`` on
float32 points, long side first, the angle in [-π/4, 3π/4)) and the corners are its ``xywhr2xyxyxyxy``, so a
fitted rectangle is written exactly as ultralytics will read it back. ultralytics is imported only when a rectangle
is fitted (``convert.py coco task=obb``).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from ..data.yolo_format import parse_obb_line, polygon_label_line

__all__ = ["clockwise_corners", "minimum_area_rectangle", "obb_label_line"]


def minimum_area_rectangle(points: np.ndarray,
                           bounds: Optional[tuple[float, float]] = None) -> tuple[np.ndarray, bool]:
    """``(corners, fitted)``: the (4, 2) corners of the minimum-area rectangle holding the (P, 2) ``points``, in
    ``xywhr2xyxyxyxy``'s order (centre ± half the long side ± half the short side), by ultralytics'
    ``xyxyxyxy2xywhr``; ``fitted`` is False.

    With ``bounds`` (the image's width and height, the points inside it), a rectangle the label check refuses -- a
    large object's rectangle turned against the image's edges, whose extent is larger than the image (ultralytics'
    own check refuses it too) -- is replaced by the least-area rectangle holding the points whose extent stays in
    the image, and ``fitted`` is True. Its candidates are the rectangles with a side along an edge of the points'
    convex hull (where every minimum-area rectangle has one) and the axis-aligned one, which always fits.
    """
    from ultralytics.utils.ops import xywhr2xyxyxyxy, xyxyxyxy2xywhr

    def canonical(corners: np.ndarray) -> np.ndarray:  # (P, 2) -> (4, 2), ultralytics' fit of the points
        rectangle = xyxyxyxy2xywhr(np.asarray(corners, dtype=np.float64).reshape(1, -1, 2))  # (1, 5) xywhr
        return np.asarray(xywhr2xyxyxyxy(rectangle)[0], dtype=np.float64)

    best = canonical(points)
    if bounds is None or _extent_inside(best, bounds):
        return best, False
    hull = _hull(np.asarray(points, dtype=np.float64))  # (H, 2)
    edges = np.roll(hull, -1, axis=0) - hull
    fitting = []
    for angle in [0.0, *np.arctan2(edges[:, 1], edges[:, 0])]:
        area, corners = _rectangle_along(hull, angle)
        if _extent_inside(corners, bounds):
            fitting.append((area, corners))
    area, corners = min(fitting, key=lambda candidate: candidate[0])
    return canonical(corners), True


def _hull(points: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)


def _rectangle_along(points: np.ndarray, angle: float) -> tuple[float, np.ndarray]:
    """``(area, (4, 2) corners)`` of the smallest rectangle holding ``points`` with a side in the direction
    ``angle``."""
    along = np.array([np.cos(angle), np.sin(angle)])
    across = np.array([-along[1], along[0]])
    u, v = points @ along, points @ across  # (P,), (P,)
    corners = [along * a + across * b for a, b in ((u.min(), v.min()), (u.max(), v.min()), (u.max(), v.max()),
                                                   (u.min(), v.max()))]
    return float(np.ptp(u) * np.ptp(v)), np.array(corners)


def _extent_inside(corners: np.ndarray, bounds: tuple[float, float]) -> bool:
    """Whether the label check takes the corners: their extent's centre and size within the image."""
    try:
        parse_obb_line(polygon_label_line(0, np.asarray(corners) / bounds))
    except ValueError:
        return False
    return True


def clockwise_corners(corners: np.ndarray) -> np.ndarray:
    """The (4, 2) corners of a quadrilateral in one order: clockwise on the screen (x right, y down), as DOTA
    specifies them, starting from the corner written first (DOTA's "head" corner).

    The corners are sorted by their angle about the centroid (``atan2(dy, dx)`` grows clockwise when y points down),
    so a counter-clockwise quadrilateral is walked the other way and a crossed order (a "bowtie", which is no walk
    around the shape and whose polygon area is wrong) becomes the walk around it.
    """
    corners = np.asarray(corners, dtype=np.float64).reshape(4, 2)
    offsets = corners - corners.mean(0)
    order = np.argsort(np.arctan2(offsets[:, 1], offsets[:, 0]), kind="stable")
    start = int(np.flatnonzero(order == 0)[0])
    return corners[np.roll(order, -start)]


def obb_label_line(cls: int, corners: np.ndarray, width: float, height: float) -> tuple[Optional[str], str]:
    """``(line, "")``: the YOLO-OBB label line of (4, 2) pixel ``corners`` in a ``width`` x ``height`` image; or
    ``(None, reason)`` when the dataset check would refuse it: ``degenerate`` (the corners enclose no area) or
    ``outside_image`` (their extent's centre or size is not within the image)."""
    line = polygon_label_line(cls, np.asarray(corners, dtype=np.float64) / (width, height))
    try:
        parse_obb_line(line)
    except ValueError as error:
        return None, "degenerate" if "degenerate" in str(error) else "outside_image"
    return line, ""
