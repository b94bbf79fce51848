"""Embedded, deterministic synthetic detection dataset ("shapes") in YOLO format.

Why: default configs must train on a fresh machine with no download, and the data must test
*localisation quality*, so that box-regression losses (CIoU, EIoU, ...) can be told apart.
A few minutes of CPU training reach clearly non-trivial AP, while AP at IoU 0.9 stays far from
saturated because the boxes are tight, many objects are small, edges are blurred and noisy, and
objects overlap.

What each image contains:

* five classes of distinct shapes (``CLASS_NAMES``): filled rectangle (aspect 1-3, sometimes
  rotated), filled ellipse (aspect 1-3, sometimes rotated), thin bar (aspect 4-10, horizontal or
  vertical, sometimes tilted by a few degrees -- the regime where EIoU and CIoU differ), ring
  (elliptical outline) and triangle; object long sides range from 6 px to 40 % of the image;
* clutter: a coloured, low-frequency background with grain or stripe texture, unlabeled curved
  strokes and jagged blobs (some strokes drawn over objects), colour variation, and a final mild
  Gaussian blur plus pixel noise;
* overlap and partial occlusion: objects are drawn in sequence, later ones on top.

Labels are exact and tight. Each object is rasterised to a binary mask (a pixel belongs to the
shape when its centre lies inside the analytic shape); its box is the pixel extent of that full
mask inside the image (before occlusion): ``x1 = min column``, ``x2 = max column + 1`` (pixel-edge
convention), likewise for y, so boxes are clipped to the image. Placement is rejection-sampled so
that every labeled object keeps at least ``min_visible`` (default 40 %) of its full mask area
visible (truncation by the image border and occlusion by later objects or strokes both count), and
no box is smaller than 2 px in width or height; a final check drops any object that violates this
(none do by construction).

Determinism: image ``i`` of split ``s`` is drawn with ``numpy.random.default_rng([seed, s, i])``,
so it does not depend on generation order; the same arguments give byte-identical label files
and identical (lossless PNG) pixels. The generator uses only numpy and OpenCV.

Layout written by :func:`generate` (ultralytics data-yaml format)::

    <root>/images/{train,val}/NNNNNN.png
    <root>/labels/{train,val}/NNNNNN.txt     # "cls cx cy w h", normalised, 6 decimals
    <root>/data.yaml                          # path (absolute), train, val, names
    <root>/manifest.json                      # generator name, VERSION, parameters, counts

Use :func:`ensure_dataset` to obtain a ``data.yaml`` path, generating the dataset on first use.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "VERSION",
    "NAME",
    "CLASS_NAMES",
    "DEFAULT_SEED",
    "DEFAULT_TRAIN",
    "DEFAULT_VAL",
    "DEFAULT_IMGSZ",
    "DEFAULT_MIN_OBJECTS",
    "DEFAULT_MAX_OBJECTS",
    "DEFAULT_MIN_VISIBLE",
    "MIN_BOX_PX",
    "THIN_ASPECT",
    "Sample",
    "render_sample",
    "generate",
    "ensure_dataset",
    "default_root",
    "describe",
    "main",
]

VERSION = 1  # bump whenever the pixels or labels produced for given parameters change
NAME = "shapes"
CLASS_NAMES = ("rectangle", "ellipse", "bar", "ring", "triangle")
RECTANGLE, ELLIPSE, BAR, RING, TRIANGLE = range(5)

DEFAULT_SEED = 0
DEFAULT_TRAIN = 400
DEFAULT_VAL = 100
DEFAULT_IMGSZ = 256
DEFAULT_MIN_OBJECTS = 2
DEFAULT_MAX_OBJECTS = 10
DEFAULT_MIN_VISIBLE = 0.4  # fraction of an object's full mask area that must stay visible
MIN_BOX_PX = 2  # boxes narrower or lower than this are never emitted
THIN_ASPECT = 4.0  # "thin" box: max(w, h) / min(w, h) >= THIN_ASPECT

MIN_SIZE_PX = 6.0  # smallest object long side
MAX_SIZE_FRAC = 0.4  # largest object long side, as a fraction of imgsz

SPLITS = ("train", "val")
_SPLIT_ID = {"train": 0, "val": 1}
_TRIES_PER_OBJECT = 15


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------
@dataclass
class Sample:
    """One rendered image with its labels.

    ``image``: HxWx3 uint8 (BGR). ``classes``: (N,) int. ``boxes``: (N, 4) float pixel xyxy, pixel
    -edge convention. ``masks``: (N, H, W) bool, each object's full mask in the image as drawn
    (before occlusion). ``visible``: (N, H, W) bool, the part still visible in the final image.
    ``visible_frac``: (N,) visible pixels / full mask area (including any part outside the image).
    """

    image: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    visible: np.ndarray
    visible_frac: np.ndarray = field(default_factory=lambda: np.zeros(0))


@dataclass
class _Shape:
    cls: int
    cx: float
    cy: float
    angle: float  # radians
    a: float  # half length along the shape's local u axis
    b: float  # half length along the local v axis
    t: float = 0.0  # ring thickness
    verts: np.ndarray | None = None  # triangle vertices in local (u, v) coordinates

    def half_extent(self) -> tuple[float, float]:
        c, s = abs(np.cos(self.angle)), abs(np.sin(self.angle))
        if self.cls in (ELLIPSE, RING):
            return float(np.hypot(self.a * c, self.b * s)), float(np.hypot(self.a * s, self.b * c))
        pts = self._local_polygon()
        x = pts[:, 0] * np.cos(self.angle) - pts[:, 1] * np.sin(self.angle)
        y = pts[:, 0] * np.sin(self.angle) + pts[:, 1] * np.cos(self.angle)
        return float(np.abs(x).max()), float(np.abs(y).max())

    def _local_polygon(self) -> np.ndarray:
        if self.cls == TRIANGLE:
            return self.verts
        return np.array([[-self.a, -self.b], [self.a, -self.b], [self.a, self.b], [-self.a, self.b]])


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(max(hi, lo)))))


def _sample_shape(rng: np.random.Generator, cls: int, imgsz: int) -> _Shape:
    """Draw the analytic parameters of one object (position is set later)."""
    smax = MAX_SIZE_FRAC * imgsz
    if cls == BAR:
        ar = rng.uniform(THIN_ASPECT, 10.0)
        length = _loguniform(rng, max(MIN_SIZE_PX, 2.2 * ar), smax)
        angle = 0.0 if rng.random() < 0.5 else np.pi / 2
        if rng.random() < 0.35:
            angle += np.deg2rad(rng.uniform(-4.0, 4.0))
        return _Shape(cls, 0.0, 0.0, angle, length / 2, length / ar / 2)
    if cls == RECTANGLE:
        ar = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, MIN_SIZE_PX, smax)
        angle = 0.0 if rng.random() < 0.6 else np.deg2rad(rng.uniform(-20.0, 20.0))
        if rng.random() < 0.5:
            angle += np.pi / 2
        return _Shape(cls, 0.0, 0.0, angle, length / 2, length / ar / 2)
    if cls == ELLIPSE:
        ar = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, MIN_SIZE_PX, smax)
        angle = (0.0 if rng.random() < 0.5 else np.pi / 2) if rng.random() < 0.6 else rng.uniform(0, np.pi)
        return _Shape(cls, 0.0, 0.0, angle, length / 2, length / ar / 2)
    if cls == RING:
        ar = _loguniform(rng, 1.0, 2.2)
        length = _loguniform(rng, 2 * MIN_SIZE_PX, smax)
        angle = (0.0 if rng.random() < 0.5 else np.pi / 2) if rng.random() < 0.6 else rng.uniform(0, np.pi)
        a, b = length / 2, length / ar / 2
        t = max(1.6, rng.uniform(0.15, 0.4) * b)
        return _Shape(cls, 0.0, 0.0, angle, a, b, t=t)
    if cls == TRIANGLE:
        ar = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, 1.5 * MIN_SIZE_PX, smax)
        w, h = length, length / ar
        if rng.random() < 0.5:
            w, h = h, w
        u = rng.uniform(0.0, 1.0, 3)
        verts = np.array([[u[0] * w, 0.0], [0.0, h * (1 - 0.4 * u[1])], [w, h * (1 - 0.4 * u[2])]])
        if rng.random() < 0.5:
            verts[:, 1] = h - verts[:, 1]
        verts -= verts.mean(0)
        angle = 0.0 if rng.random() < 0.5 else rng.uniform(0, 2 * np.pi)
        return _Shape(cls, 0.0, 0.0, angle, 0.0, 0.0, verts=verts)
    raise ValueError(f"unknown class {cls}")


def _rasterize(shape: _Shape) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Binary mask of ``shape`` on a local patch: pixel (r, c) is inside when its centre is.

    Returns (mask, u, x0, y0): the patch covers global columns x0.. and rows y0..; ``u`` is the
    local coordinate along the shape's main axis (for shading).
    """
    hx, hy = shape.half_extent()
    x0, y0 = int(np.floor(shape.cx - hx)) - 1, int(np.floor(shape.cy - hy)) - 1
    x1, y1 = int(np.ceil(shape.cx + hx)) + 2, int(np.ceil(shape.cy + hy)) + 2
    xs = np.arange(x0, x1, dtype=np.float64) + 0.5 - shape.cx
    ys = np.arange(y0, y1, dtype=np.float64) + 0.5 - shape.cy
    dx, dy = xs[None, :], ys[:, None]
    c, s = np.cos(shape.angle), np.sin(shape.angle)
    u = dx * c + dy * s
    v = -dx * s + dy * c
    if shape.cls in (RECTANGLE, BAR):
        m = (np.abs(u) <= shape.a) & (np.abs(v) <= shape.b)
    elif shape.cls == ELLIPSE:
        m = (u / shape.a) ** 2 + (v / shape.b) ** 2 <= 1.0
    elif shape.cls == RING:
        ai, bi = shape.a - shape.t, shape.b - shape.t
        m = (u / shape.a) ** 2 + (v / shape.b) ** 2 <= 1.0
        if ai > 0 and bi > 0:
            m &= (u / ai) ** 2 + (v / bi) ** 2 > 1.0
    else:  # TRIANGLE: convex polygon, inside when all edge cross products share a sign
        p = shape.verts
        cr = []
        for i in range(3):
            (ax, ay), (bx, by) = p[i], p[(i + 1) % 3]
            cr.append((bx - ax) * (v - ay) - (by - ay) * (u - ax))
        cr = np.stack(cr)
        m = (cr >= 0).all(0) | (cr <= 0).all(0)
    return m, np.broadcast_to(u, m.shape), x0, y0


def _crop(mask: np.ndarray, x0: int, y0: int, size: int):
    """Intersect a patch with the image: returns (cropped mask, (slice_y, slice_x), (oy, ox))."""
    h, w = mask.shape
    cx0, cy0 = max(x0, 0), max(y0, 0)
    cx1, cy1 = min(x0 + w, size), min(y0 + h, size)
    if cx1 <= cx0 or cy1 <= cy0:
        return None, None, (0, 0)
    sub = mask[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    return sub, (slice(cy0, cy1), slice(cx0, cx1)), (cy0 - y0, cx0 - x0)


def _extent(mask: np.ndarray, ox: int = 0, oy: int = 0) -> tuple[int, int, int, int] | None:
    """Pixel-edge box (x1, y1, x2, y2) of a bool mask: min column .. max column + 1."""
    cols = np.flatnonzero(mask.any(0))
    rows = np.flatnonzero(mask.any(1))
    if cols.size == 0:
        return None
    return ox + int(cols[0]), oy + int(rows[0]), ox + int(cols[-1]) + 1, oy + int(rows[-1]) + 1


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(30, 225, 3)
    g = int(rng.integers(2, 7))
    low = cv2.resize(rng.uniform(-1, 1, (g, g, 3)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    img = base[None, None, :] + low * rng.uniform(10, 40)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(3)
    if kind in (0, 2):  # mottled grain
        grain = rng.normal(0, rng.uniform(5, 14), (size, size)).astype(np.float32)
        grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.7, 2.0))
        img += grain[..., None] * rng.uniform(0.6, 1.4, 3)[None, None, :]
    if kind in (1, 2):  # faint stripes
        th, period = rng.uniform(0, np.pi), rng.uniform(5, 30)
        stripes = np.sin(2 * np.pi * (xx * np.cos(th) + yy * np.sin(th)) / period + rng.uniform(0, 2 * np.pi))
        img += stripes[..., None] * rng.uniform(4, 14)
    return img.astype(np.float32)


def _stroke_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased curved polyline (random walk with smooth heading), as a uint8 alpha map."""
    alpha = np.zeros((size, size), np.uint8)
    n = int(rng.integers(3, 10))
    p = rng.uniform(0, size, 2)
    heading = rng.uniform(0, 2 * np.pi)
    pts = [p.copy()]
    for _ in range(n - 1):
        heading += rng.normal(0, 0.6)
        p = p + rng.uniform(4, 0.1 * size + 4) * np.array([np.cos(heading), np.sin(heading)])
        pts.append(p.copy())
    pts = np.round(np.array(pts) * 16).astype(np.int32)
    cv2.polylines(alpha, [pts], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    return alpha


def _blob_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased jagged star-shaped polygon, as a uint8 alpha map."""
    alpha = np.zeros((size, size), np.uint8)
    k = int(rng.integers(9, 19))
    r = rng.uniform(3, 0.08 * size + 3)
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = r * rng.uniform(0.35, 1.0, k)
    c = rng.uniform(0, size, 2)
    pts = np.stack([c[0] + rad * np.cos(ang), c[1] + rad * np.sin(ang)], 1)
    cv2.fillPoly(alpha, [np.round(pts * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return alpha


def _blend(img: np.ndarray, alpha: np.ndarray, colour: np.ndarray, opacity: float = 1.0) -> None:
    """In place: img = (1 - a) * img + a * colour with a = opacity * alpha / 255 (uint8 alpha)."""
    x, y, w, h = cv2.boundingRect(alpha)
    if w == 0 or h == 0:
        return
    a = alpha[y : y + h, x : x + w, None].astype(np.float32) * np.float32(opacity / 255.0)
    sub = img[y : y + h, x : x + w]
    sub *= 1 - a
    sub += a * colour.astype(np.float32)[None, None, :]


def _pick_colour(rng: np.random.Generator, under_mean: np.ndarray, min_dist: float = 50.0) -> np.ndarray:
    best, best_d = None, -1.0
    for _ in range(12):
        col = rng.uniform(0, 255, 3)
        d = float(np.linalg.norm(col - under_mean))
        if d >= min_dist:
            return col
        if d > best_d:
            best, best_d = col, d
    return best


def render_sample(
    seed: int = DEFAULT_SEED,
    split: str = "train",
    index: int = 0,
    imgsz: int = DEFAULT_IMGSZ,
    *,
    min_objects: int = DEFAULT_MIN_OBJECTS,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    min_visible: float = DEFAULT_MIN_VISIBLE,
    occlusion: bool = True,
) -> Sample:
    """Render image ``index`` of ``split`` deterministically from ``(seed, split, index)``.

    With ``occlusion=False`` object masks never overlap each other and no clutter is drawn over
    objects, so every object is fully visible (useful to test tightness).
    """
    rng = np.random.default_rng([int(seed), _SPLIT_ID[split], int(index)])
    size = int(imgsz)
    img = _background(rng, size)

    # unlabeled clutter below the objects
    for _ in range(int(rng.integers(2, 8))):
        a = _stroke_alpha(rng, size)
        _blend(img, a, rng.uniform(0, 255, 3), rng.uniform(0.5, 1.0))
    for _ in range(int(rng.integers(1, 5))):
        a = _blob_alpha(rng, size)
        _blend(img, a, rng.uniform(0, 255, 3), rng.uniform(0.35, 0.9))

    owner = np.full((size, size), -1, np.int32)  # index of the object owning each pixel
    shapes: list[_Shape] = []
    areas: list[int] = []  # full mask area, including any part outside the image
    vis: list[int] = []  # currently visible pixels
    boxes: list[tuple[int, int, int, int]] = []
    n_target = int(rng.integers(min_objects, max_objects + 1))
    tries = 0
    while len(shapes) < n_target and tries < _TRIES_PER_OBJECT * max(n_target, 1):
        tries += 1
        cls = int(rng.integers(len(CLASS_NAMES)))
        sh = _sample_shape(rng, cls, size)
        hx, hy = sh.half_extent()
        if shapes and rng.random() < 0.35:  # next to an existing object, to create overlaps
            ref = shapes[int(rng.integers(len(shapes)))]
            rhx, rhy = ref.half_extent()
            sh.cx = ref.cx + rng.uniform(-1, 1) * (rhx + hx)
            sh.cy = ref.cy + rng.uniform(-1, 1) * (rhy + hy)
        else:  # anywhere, at most half of the object outside the image
            sh.cx = rng.uniform(min(0.5 * hx, size / 2), max(size - 0.5 * hx, size / 2))
            sh.cy = rng.uniform(min(0.5 * hy, size / 2), max(size - 0.5 * hy, size / 2))
        m, u, x0, y0 = _rasterize(sh)
        area = int(m.sum())
        mc, reg, (oy, ox) = _crop(m, x0, y0, size)
        if mc is None or area == 0:
            continue
        n_in = int(mc.sum())
        if n_in < min_visible * area:
            continue
        box = _extent(mc, reg[1].start, reg[0].start)
        if box is None or box[2] - box[0] < MIN_BOX_PX or box[3] - box[1] < MIN_BOX_PX:
            continue
        under = owner[reg][mc]
        under = under[under >= 0]
        if under.size and not occlusion:
            continue
        hidden = np.bincount(under, minlength=len(shapes))
        if any(vis[k] - hidden[k] < min_visible * areas[k] for k in range(len(shapes))):
            continue
        # draw: colour contrasting with what lies below, linear shading and texture noise
        region = img[reg]
        col = _pick_colour(rng, region[mc].mean(0))
        uc = u[oy : oy + mc.shape[0], ox : ox + mc.shape[1]][mc]
        shade = 1.0 + rng.uniform(-0.2, 0.2) * uc / max(sh.a, hx, 1.0)
        fill = col[None, :] * shade[:, None] + rng.normal(0, rng.uniform(1, 8), (n_in, 3))
        region[mc] = fill.astype(np.float32)
        owner[reg][mc] = len(shapes)
        for k in range(len(shapes)):
            vis[k] -= int(hidden[k])
        shapes.append(sh)
        areas.append(area)
        vis.append(n_in)
        boxes.append(box)

    # unlabeled strokes over the objects (occluders), never hiding too much of any object
    if occlusion:
        for _ in range(int(rng.integers(0, 4))):
            a = _stroke_alpha(rng, size)
            occ = a >= 128
            hid = owner[occ]
            hidden = np.bincount(hid[hid >= 0], minlength=len(shapes))
            if any(vis[k] - hidden[k] < min_visible * areas[k] for k in range(len(shapes))):
                continue
            _blend(img, a, rng.uniform(0, 255, 3))
            owner[occ] = -2
            for k in range(len(shapes)):
                vis[k] -= int(hidden[k])

    # mild blur and noise so edges are not trivially sharp
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.1))
    img += rng.normal(0, rng.uniform(2, 7), img.shape).astype(np.float32)
    image = np.clip(np.round(img), 0, 255).astype(np.uint8)

    masks = np.zeros((len(shapes), size, size), bool)
    for k, sh in enumerate(shapes):
        m, _, x0, y0 = _rasterize(sh)
        mc, reg, _ = _crop(m, x0, y0, size)
        masks[k][reg] = mc
    visible = np.stack([owner == k for k in range(len(shapes))]) if shapes else masks.copy()
    vfrac = np.array([vis[k] / areas[k] for k in range(len(shapes))], dtype=np.float64)
    keep = np.flatnonzero(vfrac >= min_visible)  # safety net; placement already guarantees it
    return Sample(
        image=image,
        classes=np.array([shapes[k].cls for k in keep], dtype=np.int64),
        boxes=np.array([boxes[k] for k in keep], dtype=np.float64).reshape(-1, 4),
        masks=masks[keep],
        visible=visible[keep],
        visible_frac=vfrac[keep],
    )


def _label_text(sample: Sample, size: int) -> str:
    lines = []
    for c, (x1, y1, x2, y2) in zip(sample.classes, sample.boxes):
        cx, cy = (x1 + x2) / 2 / size, (y1 + y2) / 2 / size
        w, h = (x2 - x1) / size, (y2 - y1) / size
        lines.append(f"{int(c)} {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n")
    return "".join(lines)


# --------------------------------------------------------------------------------------------
# Dataset on disk
# --------------------------------------------------------------------------------------------
def _params(
    seed: int = DEFAULT_SEED,
    n_train: int = DEFAULT_TRAIN,
    n_val: int = DEFAULT_VAL,
    imgsz: int = DEFAULT_IMGSZ,
    min_objects: int = DEFAULT_MIN_OBJECTS,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    min_visible: float = DEFAULT_MIN_VISIBLE,
    occlusion: bool = True,
) -> dict:
    if not (0 <= min_objects <= max_objects):
        raise ValueError("need 0 <= min_objects <= max_objects")
    if imgsz < 32 or n_train < 0 or n_val < 0:
        raise ValueError("need imgsz >= 32 and non-negative image counts")
    return {
        "seed": int(seed),
        "n_train": int(n_train),
        "n_val": int(n_val),
        "imgsz": int(imgsz),
        "min_objects": int(min_objects),
        "max_objects": int(max_objects),
        "min_visible": float(min_visible),
        "occlusion": bool(occlusion),
    }


def _yaml_text(root: Path) -> str:
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(CLASS_NAMES))
    return (
        f"# boxloss synthetic '{NAME}' dataset v{VERSION} (generated; see manifest.json)\n"
        f"path: {json.dumps(str(root))}\n"
        "train: images/train\n"
        "val: images/val\n"
        f"names:\n{names}"
    )


def generate(
    root: str | os.PathLike,
    seed: int = DEFAULT_SEED,
    n_train: int = DEFAULT_TRAIN,
    n_val: int = DEFAULT_VAL,
    imgsz: int = DEFAULT_IMGSZ,
    *,
    min_objects: int = DEFAULT_MIN_OBJECTS,
    max_objects: int = DEFAULT_MAX_OBJECTS,
    min_visible: float = DEFAULT_MIN_VISIBLE,
    occlusion: bool = True,
) -> Path:
    """Write the dataset to ``root`` (replacing whatever is there) and return its data.yaml path.

    Everything is written into a temporary sibling directory ``.<name>.tmp-*`` that is renamed
    to ``root`` only once complete (manifest written last), so an interrupted run never leaves
    a dataset that looks complete.
    """
    params = _params(seed, n_train, n_val, imgsz, min_objects, max_objects, min_visible, occlusion)
    root = Path(root).expanduser().absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        counts, digest = {}, hashlib.sha256()
        for split, n in (("train", params["n_train"]), ("val", params["n_val"])):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            nbox = 0
            for i in range(n):
                s = render_sample(
                    params["seed"], split, i, params["imgsz"],
                    min_objects=params["min_objects"], max_objects=params["max_objects"],
                    min_visible=params["min_visible"], occlusion=params["occlusion"],
                )  # fmt: skip
                if not cv2.imwrite(str(tmp / "images" / split / f"{i:06d}.png"), s.image):
                    raise OSError(f"could not write image {split}/{i}")
                text = _label_text(s, params["imgsz"])
                (tmp / "labels" / split / f"{i:06d}.txt").write_bytes(text.encode())
                digest.update(f"{split}/{i:06d}\n{text}".encode())
                nbox += len(s.classes)
            counts[split] = {"images": n, "boxes": nbox}
        (tmp / "data.yaml").write_text(_yaml_text(root))
        manifest = {
            "name": NAME,
            "generator": "boxloss.data.synthetic",
            "version": VERSION,
            "params": params,
            "class_names": list(CLASS_NAMES),
            "counts": counts,
            "labels_sha256": digest.hexdigest(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        old = None
        if root.exists() or root.is_symlink():
            old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(root, old)
        os.rename(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root / "data.yaml"


def _is_complete(root: Path, params: dict) -> bool:
    """True when ``root`` holds a finished dataset generated by this VERSION with ``params``."""
    try:
        man = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if man.get("name") != NAME or man.get("version") != VERSION or man.get("params") != params:
        return False
    if not (root / "data.yaml").is_file():
        return False
    for split, key in (("train", "n_train"), ("val", "n_val")):
        n = params[key]
        try:
            imgs = sum(1 for p in (root / "images" / split).iterdir() if p.suffix == ".png")
            lbls = sum(1 for p in (root / "labels" / split).iterdir() if p.suffix == ".txt")
        except OSError:
            return False
        if imgs != n or lbls != n:
            return False
    return True


def default_root(**params) -> Path:
    """Default dataset directory: ``<base>/shapes-v<VERSION>``, with a short parameter hash appended when
    ``params`` differ from the defaults so different variants never overwrite each other. ``<base>`` is
    ``$BOXLOSS_DATA_DIR`` if set, else ``~/.cache/boxloss/datasets``."""
    base = os.environ.get("BOXLOSS_DATA_DIR")
    base = Path(base).expanduser().absolute() if base else Path.home() / ".cache" / "boxloss" / "datasets"
    p = _params(**params)
    name = f"{NAME}-v{VERSION}"
    if p != _params():
        name += "-" + hashlib.sha256(json.dumps(p, sort_keys=True).encode()).hexdigest()[:8]
    return base / name


def ensure_dataset(root: str | os.PathLike | None = None, **params) -> Path:
    """Return the data.yaml path of the dataset, generating it only if ``root`` does not already
    hold a complete dataset whose manifest matches ``params`` (same keywords as :func:`generate`).
    """
    p = _params(**params)
    root = Path(root).expanduser().absolute() if root is not None else default_root(**params)
    if not _is_complete(root, p):
        try:
            generate(root, **p)
        except OSError:
            if not _is_complete(root, p):  # tolerate a concurrent generator winning the rename
                raise
    yaml = root / "data.yaml"
    if yaml.read_text() != _yaml_text(root):  # dataset was moved: refresh the absolute path
        tmp = root / f".data.yaml.tmp-{os.getpid()}"
        tmp.write_text(_yaml_text(root))
        os.replace(tmp, yaml)
    return yaml


# --------------------------------------------------------------------------------------------
# Statistics
# --------------------------------------------------------------------------------------------
def _iou_matrix(b: np.ndarray) -> np.ndarray:
    x1 = np.maximum(b[:, None, 0], b[None, :, 0])
    y1 = np.maximum(b[:, None, 1], b[None, :, 1])
    x2 = np.minimum(b[:, None, 2], b[None, :, 2])
    y2 = np.minimum(b[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return inter / (area[:, None] + area[None, :] - inter)


def _quantiles(x: np.ndarray) -> dict:
    if x.size == 0:
        return {}
    qs = {"min": 0.0, "p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95, "max": 1.0}
    return {k: round(float(np.quantile(x, q)), 2) for k, q in qs.items()}


def describe(root: str | os.PathLike) -> dict:
    """Summary statistics of a dataset directory (or its data.yaml): image and box counts, boxes
    per class, box width/height (px) and aspect (long/short side) quantiles, fraction of thin
    boxes (aspect >= THIN_ASPECT), of small (long side < 16 px) and large (long side >= 30 % of
    the image) boxes, mean/max objects per image, and the fraction of boxes overlapping another
    box of the same image with IoU > 0.1."""
    root = Path(root)
    if root.is_file():
        root = root.parent
    try:
        imgsz = int(json.loads((root / "manifest.json").read_text())["params"]["imgsz"])
    except (OSError, ValueError, KeyError):
        first = next(iter(sorted((root / "images").rglob("*.png"))))
        imgsz = int(cv2.imread(str(first)).shape[1])
    per_img, cls_all, wh_all, overl = [], [], [], []
    images = {}
    for split in SPLITS:
        d = root / "labels" / split
        files = sorted(d.glob("*.txt")) if d.is_dir() else []
        images[split] = len(files)
        for f in files:
            rows = [list(map(float, ln.split())) for ln in f.read_text().splitlines() if ln.strip()]
            a = np.array(rows, dtype=np.float64).reshape(-1, 5)
            per_img.append(len(a))
            if not len(a):
                continue
            cls_all.append(a[:, 0].astype(int))
            wh = a[:, 3:5] * imgsz
            wh_all.append(wh)
            xy = a[:, 1:3] * imgsz
            b = np.concatenate([xy - wh / 2, xy + wh / 2], 1)
            iou = _iou_matrix(b)
            np.fill_diagonal(iou, 0)
            overl.append((iou > 0.1).any(1))
    cls = np.concatenate(cls_all) if cls_all else np.zeros(0, int)
    wh = np.concatenate(wh_all) if wh_all else np.zeros((0, 2))
    long, short = wh.max(1) if len(wh) else wh[:, 0], wh.min(1) if len(wh) else wh[:, 0]
    aspect = long / np.maximum(short, 1e-9)
    n = max(len(cls), 1)
    return {
        "root": str(root),
        "imgsz": imgsz,
        "images": {**images, "total": sum(images.values())},
        "boxes": int(len(cls)),
        "boxes_per_class": {name: int((cls == i).sum()) for i, name in enumerate(CLASS_NAMES)},
        "objects_per_image_mean": round(float(np.mean(per_img)), 3) if per_img else 0.0,
        "objects_per_image_max": int(max(per_img)) if per_img else 0,
        "width_px": _quantiles(wh[:, 0]),
        "height_px": _quantiles(wh[:, 1]),
        "aspect": _quantiles(aspect),
        "thin_fraction": round(float((aspect >= THIN_ASPECT).sum()) / n, 4),
        "small_fraction": round(float((long < 16).sum()) / n, 4),
        "large_fraction": round(float((long >= 0.3 * imgsz).sum()) / n, 4),
        "overlap_fraction": round(float(np.concatenate(overl).sum()) / n, 4) if overl else 0.0,
    }


def _format_description(d: dict) -> str:
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
        f"large (>=30% img) {d['large_fraction']:.1%}, overlapping (IoU>0.1) {d['overlap_fraction']:.1%}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """CLI: ``python -m boxloss.data.synthetic --out DIR [--seed S --train N --val N --imgsz S]``."""
    ap = argparse.ArgumentParser(prog="python -m boxloss.data.synthetic", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="dataset directory to (re)write")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--train", type=int, default=DEFAULT_TRAIN, help="number of train images")
    ap.add_argument("--val", type=int, default=DEFAULT_VAL, help="number of val images")
    ap.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ)
    ap.add_argument("--max-objects", type=int, default=DEFAULT_MAX_OBJECTS)
    ap.add_argument("--no-occlusion", action="store_true", help="objects never overlap")
    ap.add_argument("--reuse", action="store_true", help="keep an existing matching dataset")
    args = ap.parse_args(argv)
    kw = dict(
        seed=args.seed, n_train=args.train, n_val=args.val, imgsz=args.imgsz,
        min_objects=min(DEFAULT_MIN_OBJECTS, args.max_objects), max_objects=args.max_objects,
        occlusion=not args.no_occlusion,
    )  # fmt: skip
    t0 = time.perf_counter()
    yaml = ensure_dataset(args.out, **kw) if args.reuse else generate(args.out, **kw)
    dt = time.perf_counter() - t0
    print(f"wrote {yaml} in {dt:.1f} s")
    print(_format_description(describe(yaml.parent)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
