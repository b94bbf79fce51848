"""Instance polygons and keypoints of a rendered ``shapes`` image: the labels of ``shapes-seg`` and ``shapes-pose``.

**Polygons (shapes-seg)** are the *visible* part of each object, as COCO annotates instances: the pixels the object
still owns in the final image, after later objects and occluding strokes were drawn over it (:attr:`Sample.visible`).
Its outline is traced on the mask upsampled ``POLYGON_UPSAMPLE`` times (OpenCV ``findContours``; runs of collinear
points compressed), so a pixel lies inside the polygon exactly when it belongs to the visible mask, and the polygon's
extent is the mask's pixel-edge box shrunk by ``1 / (2 · POLYGON_UPSAMPLE)`` px per side. A visible part in several
pieces (a stroke across it) or with holes (a ring, an occluder inside it) becomes one polygon: the pieces are joined
by zero-width bridges between their closest vertices, as ultralytics' COCO converter joins multi-part polygons, so
the YOLO segment format (one polygon per object) holds it. The box ultralytics derives from the polygon is therefore
the visible extent, not the full extent that ``shapes`` labels: the two differ for occluded objects.

**Keypoints (shapes-pose)** are the four extreme points of each object, in the order ``KEYPOINT_NAMES`` = (left,
top, right, bottom): the points of its outline with the smallest x, smallest y, largest x, largest y ("extreme
clicking", Papadopoulos et al., arXiv 1708.02750; ExtremeNet, arXiv 1901.08043), taken on the object as drawn (its
whole mask, sampled at pixel centres, before occlusion and the image border): the outer edge of the middle pixel of
the extreme column or row. They lie on the object and exactly on the edges of its box label, which is the pixel
extent of the same mask (an analytic vertex can lie up to a few pixels beyond the drawn pixels at an acute tip, so
the drawn shape is the one used). Visibility follows COCO: 2 when the point's pixel is visible in the image, 1 when
it is inside the image but hidden by a later object or stroke (occluded), 0 with coordinates (0, 0) when it lies
outside the image. A horizontal flip maps left <-> right and keeps top and
bottom: ``FLIP_IDX = [2, 1, 0, 3]``. ultralytics 8.4.190 applies the same ``flip_idx`` to vertical flips, which
would need top <-> bottom instead, so ``flipud`` must stay 0 (its default) on this dataset; rotations
(``degrees``) move the points off the extremes.

**Oriented boxes (shapes-obb)** are each object's exact oriented rectangle (:func:`.render.oriented_rectangle`: the
analytic shape's minimum-area rectangle, not one fitted to pixels), whole, before occlusion and the image border, so
a corner of an object cut by the border lies outside the image (the rectangle's centre never does). It is written in
ultralytics' canonical form, long side first and the angle in [-π/4, 3π/4) (``ultralytics.utils.ops.
xyxyxyxy2xywhr``'s convention), as its four corners in ``xywhr2xyxyxyxy``'s order: centre ± half the long side
± half the short side.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..yolo_format import LABEL_DECIMALS, polygon_label_line, xyxy_label_line
from .render import Sample, oriented_rectangle, rasterize

POLYGON_UPSAMPLE = 8  # outline traced at 1/8 px: the polygon's extent is within 1/16 px of the pixel-edge box
KEYPOINT_NAMES = ("left", "top", "right", "bottom")
KPT_SHAPE = [len(KEYPOINT_NAMES), 3]  # x, y, visibility
FLIP_IDX = [2, 1, 0, 3]  # horizontal flip: left <-> right


# ---------------------------------------------------------------------------------------------------- polygons
def _splice(outline: np.ndarray, piece: np.ndarray) -> np.ndarray:
    """``outline`` with the closed ``piece`` inserted at their closest vertices, through a zero-width bridge."""
    distances = ((outline[:, None, :] - piece[None, :, :]) ** 2).sum(-1)  # (n, m)
    i, j = np.unravel_index(int(distances.argmin()), distances.shape)
    loop = np.concatenate((piece[j:], piece[:j + 1]))  # around the piece, back to its bridge vertex
    return np.concatenate((outline[:i + 1], loop, outline[i:]))


def visible_polygon(mask: np.ndarray) -> np.ndarray:
    """One polygon (P, 2) of pixel-edge coordinates (x, y) covering exactly the pixels of a bool mask.

    Pixel (row r, column c) spans [c, c + 1) x [r, r + 1); its centre lies inside the polygon exactly when the mask
    holds it. Outer outlines and holes of every piece are joined into one polygon by zero-width bridges.
    """
    rows, columns = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return np.zeros((0, 2))
    top, left = int(rows[0]), int(columns[0])
    crop = mask[top: rows[-1] + 1, left: columns[-1] + 1].astype(np.uint8)
    scale = POLYGON_UPSAMPLE
    fine = cv2.resize(crop, (crop.shape[1] * scale, crop.shape[0] * scale), interpolation=cv2.INTER_NEAREST)
    contours, _ = cv2.findContours(np.pad(fine, 1), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    pieces = sorted((c.reshape(-1, 2).astype(np.float64) for c in contours), key=len, reverse=True)
    outline = pieces[0]
    for piece in pieces[1:]:
        outline = _splice(outline, piece)
    # sub-pixel index u (padded by 1) -> its centre in image pixels: left + (u - 1 + 0.5) / scale
    return (outline - 0.5) / scale + np.array([left, top], dtype=np.float64)


def segment_lines(sample: Sample, size: int) -> list[str]:
    """``cls x1 y1 x2 y2 ...`` (normalised) per object: the YOLO segment label lines of one image."""
    lines = []
    for cls, visible in zip(sample.classes, sample.visible):
        polygon = (visible_polygon(visible) / size).clip(0.0, 1.0)
        lines.append(f"{int(cls)} " + " ".join(f"{v:.{LABEL_DECIMALS}f}" for v in polygon.reshape(-1)))
    return lines


# --------------------------------------------------------------------------------------------------- keypoints
def extreme_points(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The extreme points of a bool mask: (4, 2) pixel-edge coordinates (x, y) and the (4, 2) (row, column) of the
    pixel each lies on, in the order left, top, right, bottom.

    The left point lies on the outer edge of the leftmost column, at the centre of that column's middle mask pixel
    (the ``len // 2``-th from the top); likewise for the others. It is a mask pixel's edge, so it is on the object
    and, for an object inside the image, on its box (the pixel-edge extent of the same mask).
    """
    rows, columns = np.nonzero(mask)
    points, pixels = [], []
    for axis, pick in ((1, np.min), (0, np.min), (1, np.max), (0, np.max)):  # columns: x, rows: y
        along, across = (columns, rows) if axis == 1 else (rows, columns)
        extreme = pick(along)
        middle = int(np.sort(across[along == extreme])[int((along == extreme).sum()) // 2])
        edge = extreme + (1 if pick is np.max else 0)
        points.append((edge, middle + 0.5) if axis == 1 else (middle + 0.5, edge))
        pixels.append((middle, extreme) if axis == 1 else (extreme, middle))
    return np.array(points, dtype=np.float64), np.array(pixels, dtype=np.int64)


def keypoints(sample: Sample, index: int, size: int) -> np.ndarray:
    """(4, 3) pixel keypoints (x, y, visibility 0/1/2) of object ``index`` (see the module docstring): the extreme
    points of its whole rasterised shape, image border or not; those whose pixel lies outside the image are 0."""
    mask, _, x0, y0 = rasterize(sample.shapes[index])
    points, pixels = extreme_points(mask)
    points += (x0, y0)
    pixels += (y0, x0)
    out = np.zeros((len(points), 3))
    for k, ((x, y), (row, column)) in enumerate(zip(points, pixels)):
        if 0 <= row < size and 0 <= column < size:
            out[k] = x, y, 2 if sample.visible[index][row, column] else 1
    return out


def pose_lines(sample: Sample, size: int) -> list[str]:
    """``cls cx cy w h x1 y1 v1 ... x4 y4 v4`` (normalised) per object: the YOLO pose label lines of one image."""
    lines = []
    for index, (cls, box) in enumerate(zip(sample.classes, sample.boxes)):
        points = keypoints(sample, index, size)
        values = " ".join(f"{x / size:.{LABEL_DECIMALS}f} {y / size:.{LABEL_DECIMALS}f} {int(v)}"
                          for x, y, v in points)
        lines.append(f"{xyxy_label_line(int(cls), box, size, size)} {values}")
    return lines


# ---------------------------------------------------------------------------------------------- oriented boxes
def canonical_rectangle(cx: float, cy: float, w: float, h: float, angle: float) -> tuple[float, ...]:
    """The same rectangle with the long side first and the angle in [-π/4, 3π/4) (ultralytics' xywhr form)."""
    if w < h:
        w, h, angle = h, w, angle + np.pi / 2
    angle = (angle + np.pi / 4) % np.pi - np.pi / 4
    return cx, cy, w, h, angle


def rectangle_corners(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """(4, 2) corners of an ``xywhr`` rectangle in ultralytics' ``xywhr2xyxyxyxy`` order: c + u + v, c + u - v,
    c - u - v, c - u + v, with u half the first side along ``angle`` and v half the second, across it."""
    cos, sin = np.cos(angle), np.sin(angle)
    along, across = np.array([w / 2 * cos, w / 2 * sin]), np.array([-h / 2 * sin, h / 2 * cos])
    centre = np.array([cx, cy])
    return np.stack([centre + along + across, centre + along - across, centre - along - across,
                     centre - along + across])


def obb_lines(sample: Sample, size: int) -> list[str]:
    """``cls x1 y1 x2 y2 x3 y3 x4 y4`` (normalised) per object: the YOLO-OBB label lines of one image."""
    return [polygon_label_line(int(cls), rectangle_corners(*canonical_rectangle(*oriented_rectangle(shape))) / size)
            for cls, shape in zip(sample.classes, sample.shapes)]
