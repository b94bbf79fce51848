"""Rendering one image of the embedded ``shapes`` dataset: objects, clutter, occlusion, and exact boxes.

Each object is an analytic shape (:class:`Shape`) rasterised to a binary mask (a pixel belongs to the shape when
its centre lies inside it); its box is the pixel extent of that full mask inside the image, before occlusion:
``x1 = min column``, ``x2 = max column + 1`` (pixel-edge convention), likewise for y. Placement is
rejection-sampled so that every labelled object keeps at least ``min_visible`` of its full mask area visible
(truncation by the border and occlusion by later objects or strokes both count) and no box is smaller than
``MIN_BOX_PX``. Image ``index`` of ``split`` is drawn from ``numpy.random.default_rng([seed, split, index])``,
so it does not depend on generation order; only numpy and OpenCV are used. With ``any_angle`` (the images of
``shapes-obb``) every object is turned to an angle drawn uniformly from [0, 2π) and its oriented rectangle
(:func:`oriented_rectangle`) keeps its centre inside the image, so that it is a valid YOLO-OBB label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

CLASS_NAMES = ("rectangle", "ellipse", "bar", "ring", "triangle")
RECTANGLE, ELLIPSE, BAR, RING, TRIANGLE = range(5)

DEFAULT_SEED = 0
DEFAULT_IMGSZ = 256
DEFAULT_MIN_OBJECTS = 2
DEFAULT_MAX_OBJECTS = 10
DEFAULT_MIN_VISIBLE = 0.4  # fraction of an object's full mask area that must stay visible
MIN_BOX_PX = 2  # boxes narrower or lower than this are never emitted
THIN_ASPECT = 4.0  # "thin" box: max(w, h) / min(w, h) >= THIN_ASPECT

MIN_SIZE_PX = 6.0  # smallest object long side
MAX_SIZE_FRACTION = 0.4  # largest object long side, as a fraction of the image size

SPLITS = ("train", "val")
SPLIT_ID = {"train": 0, "val": 1}
TRIES_PER_OBJECT = 15
NEAR_EXISTING = 0.35  # probability that a new object is placed next to an existing one (overlaps)


@dataclass
class Sample:
    """One rendered image with its labels.

    ``image``: HxWx3 uint8 (BGR). ``classes``: (N,) int. ``boxes``: (N, 4) float pixel xyxy, pixel-edge
    convention. ``masks``: (N, H, W) bool, each object's full mask in the image as drawn (before occlusion).
    ``visible``: (N, H, W) bool, the part still visible in the final image. ``visible_frac``: (N,) visible
    pixels / full mask area (including any part outside the image). ``shapes``: each object's analytic geometry.
    """

    image: np.ndarray
    classes: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    visible: np.ndarray
    visible_frac: np.ndarray = field(default_factory=lambda: np.zeros(0))
    shapes: list[Shape] = field(default_factory=list)


@dataclass
class Shape:
    """The analytic parameters of one object, in its own (u, v) frame rotated by ``angle`` about the centre."""

    cls: int
    cx: float
    cy: float
    angle: float  # radians
    half_length: float  # half size along the local u axis
    half_width: float  # half size along the local v axis
    thickness: float = 0.0  # ring thickness
    vertices: np.ndarray | None = None  # triangle vertices in local (u, v) coordinates

    def half_extent(self) -> tuple[float, float]:
        """Half width and half height of the shape's axis-aligned bounding box."""
        cos, sin = abs(np.cos(self.angle)), abs(np.sin(self.angle))
        if self.cls in (ELLIPSE, RING):
            return (float(np.hypot(self.half_length * cos, self.half_width * sin)),
                    float(np.hypot(self.half_length * sin, self.half_width * cos)))
        corners = self._local_polygon()
        x = corners[:, 0] * np.cos(self.angle) - corners[:, 1] * np.sin(self.angle)
        y = corners[:, 0] * np.sin(self.angle) + corners[:, 1] * np.cos(self.angle)
        return float(np.abs(x).max()), float(np.abs(y).max())

    def _local_polygon(self) -> np.ndarray:
        if self.cls == TRIANGLE:
            return self.vertices
        u, v = self.half_length, self.half_width
        return np.array([[-u, -v], [u, -v], [u, v], [-u, v]])


def _loguniform(rng: np.random.Generator, low: float, high: float) -> float:
    return float(np.exp(rng.uniform(np.log(low), np.log(max(high, low)))))


def sample_shape(rng: np.random.Generator, cls: int, size: int) -> Shape:
    """Draw the analytic parameters of one object of class ``cls`` (its position is set by the caller)."""
    max_length = MAX_SIZE_FRACTION * size
    if cls == BAR:
        aspect = rng.uniform(THIN_ASPECT, 10.0)
        length = _loguniform(rng, max(MIN_SIZE_PX, 2.2 * aspect), max_length)
        angle = 0.0 if rng.random() < 0.5 else np.pi / 2
        if rng.random() < 0.35:
            angle += np.deg2rad(rng.uniform(-4.0, 4.0))
        return Shape(cls, 0.0, 0.0, angle, length / 2, length / aspect / 2)
    if cls == RECTANGLE:
        aspect = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, MIN_SIZE_PX, max_length)
        angle = 0.0 if rng.random() < 0.6 else np.deg2rad(rng.uniform(-20.0, 20.0))
        if rng.random() < 0.5:
            angle += np.pi / 2
        return Shape(cls, 0.0, 0.0, angle, length / 2, length / aspect / 2)
    if cls == ELLIPSE:
        aspect = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, MIN_SIZE_PX, max_length)
        angle = (0.0 if rng.random() < 0.5 else np.pi / 2) if rng.random() < 0.6 else rng.uniform(0, np.pi)
        return Shape(cls, 0.0, 0.0, angle, length / 2, length / aspect / 2)
    if cls == RING:
        aspect = _loguniform(rng, 1.0, 2.2)
        length = _loguniform(rng, 2 * MIN_SIZE_PX, max_length)
        angle = (0.0 if rng.random() < 0.5 else np.pi / 2) if rng.random() < 0.6 else rng.uniform(0, np.pi)
        half_length, half_width = length / 2, length / aspect / 2
        thickness = max(1.6, rng.uniform(0.15, 0.4) * half_width)
        return Shape(cls, 0.0, 0.0, angle, half_length, half_width, thickness=thickness)
    if cls == TRIANGLE:
        aspect = _loguniform(rng, 1.0, 3.0)
        length = _loguniform(rng, 1.5 * MIN_SIZE_PX, max_length)
        width, height = length, length / aspect
        if rng.random() < 0.5:
            width, height = height, width
        jitter = rng.uniform(0.0, 1.0, 3)
        vertices = np.array([[jitter[0] * width, 0.0], [0.0, height * (1 - 0.4 * jitter[1])],
                             [width, height * (1 - 0.4 * jitter[2])]])
        if rng.random() < 0.5:
            vertices[:, 1] = height - vertices[:, 1]
        vertices -= vertices.mean(0)
        angle = 0.0 if rng.random() < 0.5 else rng.uniform(0, 2 * np.pi)
        return Shape(cls, 0.0, 0.0, angle, 0.0, 0.0, vertices=vertices)
    raise ValueError(f"unknown class {cls}")


def oriented_rectangle(shape: Shape) -> tuple[float, float, float, float, float]:
    """The exact oriented rectangle of a shape, ``(cx, cy, w, h, angle)`` in pixels and radians (``w`` along the
    direction ``angle``): a smallest-area rectangle holding the analytic shape.

    A rectangle or bar is its own; an ellipse or ring has its axis-aligned (in its own frame) bounding rectangle,
    ``2a x 2b``, the least of every rectangle around it (the product of the sides of one turned by φ is
    ``4 sqrt((a²cos²φ + b²sin²φ)(a²sin²φ + b²cos²φ)) >= 4ab``). A triangle of area A fits no rectangle smaller than
    2A (a triangle inside a rectangle covers at most half of it), and the rectangle with a side along its longest
    edge has exactly 2A (the angles at that edge's ends are acute, so the third vertex projects inside it): that
    one, since an acute triangle has three such rectangles of equal area.
    """
    if shape.cls != TRIANGLE:
        return shape.cx, shape.cy, 2 * shape.half_length, 2 * shape.half_width, float(shape.angle)
    cos, sin = np.cos(shape.angle), np.sin(shape.angle)
    points = shape.vertices @ np.array([[cos, sin], [-sin, cos]]) + (shape.cx, shape.cy)  # (3, 2) image x, y
    edges = np.roll(points, -1, axis=0) - points  # (3, 2): vertex k to vertex k + 1
    longest = edges[int(np.argmax(np.hypot(edges[:, 0], edges[:, 1])))]
    along = longest / np.hypot(*longest)
    across = np.array([-along[1], along[0]])
    u, v = points @ along, points @ across  # (3,), (3,): the vertices in the rectangle's frame
    centre = along * (u.max() + u.min()) / 2 + across * (v.max() + v.min()) / 2
    return (float(centre[0]), float(centre[1]), float(np.ptp(u)), float(np.ptp(v)),
            float(np.arctan2(along[1], along[0])))


def rasterize(shape: Shape) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Binary mask of ``shape`` on a local patch: pixel (row, column) is inside when its centre is.

    Returns ``(mask, along, x0, y0)``: the patch covers global columns ``x0..`` and rows ``y0..``; ``along`` is
    each pixel's local coordinate along the shape's main axis (for shading).
    """
    half_w, half_h = shape.half_extent()
    x0, y0 = int(np.floor(shape.cx - half_w)) - 1, int(np.floor(shape.cy - half_h)) - 1
    x1, y1 = int(np.ceil(shape.cx + half_w)) + 2, int(np.ceil(shape.cy + half_h)) + 2
    dx = (np.arange(x0, x1, dtype=np.float64) + 0.5 - shape.cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float64) + 0.5 - shape.cy)[:, None]
    cos, sin = np.cos(shape.angle), np.sin(shape.angle)
    along = dx * cos + dy * sin
    across = -dx * sin + dy * cos
    if shape.cls in (RECTANGLE, BAR):
        mask = (np.abs(along) <= shape.half_length) & (np.abs(across) <= shape.half_width)
    elif shape.cls == ELLIPSE:
        mask = (along / shape.half_length) ** 2 + (across / shape.half_width) ** 2 <= 1.0
    elif shape.cls == RING:
        inner_length, inner_width = shape.half_length - shape.thickness, shape.half_width - shape.thickness
        mask = (along / shape.half_length) ** 2 + (across / shape.half_width) ** 2 <= 1.0
        if inner_length > 0 and inner_width > 0:
            mask &= (along / inner_length) ** 2 + (across / inner_width) ** 2 > 1.0
    else:  # TRIANGLE: convex polygon, inside when all edge cross products share a sign
        corners = shape.vertices
        crosses = []
        for i in range(3):
            (ax, ay), (bx, by) = corners[i], corners[(i + 1) % 3]
            crosses.append((bx - ax) * (across - ay) - (by - ay) * (along - ax))
        crosses = np.stack(crosses)
        mask = (crosses >= 0).all(0) | (crosses <= 0).all(0)
    return mask, np.broadcast_to(along, mask.shape), x0, y0


def crop_to_image(mask: np.ndarray, x0: int, y0: int, size: int):
    """Intersect a patch with the image: ``(cropped mask, (rows, columns) slices, (row, column) offset)``."""
    height, width = mask.shape
    left, top = max(x0, 0), max(y0, 0)
    right, bottom = min(x0 + width, size), min(y0 + height, size)
    if right <= left or bottom <= top:
        return None, None, (0, 0)
    inside = mask[top - y0: bottom - y0, left - x0: right - x0]
    return inside, (slice(top, bottom), slice(left, right)), (top - y0, left - x0)


def mask_extent(mask: np.ndarray, x_offset: int = 0, y_offset: int = 0) -> tuple[int, int, int, int] | None:
    """Pixel-edge box (x1, y1, x2, y2) of a bool mask: min column .. max column + 1."""
    columns = np.flatnonzero(mask.any(0))
    rows = np.flatnonzero(mask.any(1))
    if columns.size == 0:
        return None
    return (x_offset + int(columns[0]), y_offset + int(rows[0]), x_offset + int(columns[-1]) + 1,
            y_offset + int(rows[-1]) + 1)


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    base = rng.uniform(30, 225, 3)
    grid = int(rng.integers(2, 7))
    low = cv2.resize(rng.uniform(-1, 1, (grid, grid, 3)).astype(np.float32), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    image = base[None, None, :] + low * rng.uniform(10, 40)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    kind = rng.integers(3)
    if kind in (0, 2):  # mottled grain
        grain = rng.normal(0, rng.uniform(5, 14), (size, size)).astype(np.float32)
        grain = cv2.GaussianBlur(grain, (0, 0), rng.uniform(0.7, 2.0))
        image += grain[..., None] * rng.uniform(0.6, 1.4, 3)[None, None, :]
    if kind in (1, 2):  # faint stripes
        theta, period = rng.uniform(0, np.pi), rng.uniform(5, 30)
        stripes = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period + rng.uniform(0, 2 * np.pi))
        image += stripes[..., None] * rng.uniform(4, 14)
    return image.astype(np.float32)


def _stroke_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased curved polyline (random walk with smooth heading), as a uint8 alpha map."""
    alpha = np.zeros((size, size), np.uint8)
    points = int(rng.integers(3, 10))
    position = rng.uniform(0, size, 2)
    heading = rng.uniform(0, 2 * np.pi)
    path = [position.copy()]
    for _ in range(points - 1):
        heading += rng.normal(0, 0.6)
        position = position + rng.uniform(4, 0.1 * size + 4) * np.array([np.cos(heading), np.sin(heading)])
        path.append(position.copy())
    path = np.round(np.array(path) * 16).astype(np.int32)
    cv2.polylines(alpha, [path], False, 255, int(rng.integers(1, 3)), cv2.LINE_AA, shift=4)
    return alpha


def _blob_alpha(rng: np.random.Generator, size: int) -> np.ndarray:
    """Anti-aliased jagged star-shaped polygon, as a uint8 alpha map."""
    alpha = np.zeros((size, size), np.uint8)
    corners = int(rng.integers(9, 19))
    radius = rng.uniform(3, 0.08 * size + 3)
    angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
    radii = radius * rng.uniform(0.35, 1.0, corners)
    centre = rng.uniform(0, size, 2)
    polygon = np.stack([centre[0] + radii * np.cos(angles), centre[1] + radii * np.sin(angles)], 1)
    cv2.fillPoly(alpha, [np.round(polygon * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return alpha


def _blend(image: np.ndarray, alpha: np.ndarray, colour: np.ndarray, opacity: float = 1.0) -> None:
    """In place: image = (1 - a) * image + a * colour with a = opacity * alpha / 255 (uint8 alpha)."""
    x, y, width, height = cv2.boundingRect(alpha)
    if width == 0 or height == 0:
        return
    a = alpha[y: y + height, x: x + width, None].astype(np.float32) * np.float32(opacity / 255.0)
    patch = image[y: y + height, x: x + width]
    patch *= 1 - a
    patch += a * colour.astype(np.float32)[None, None, :]


def _pick_colour(rng: np.random.Generator, under_mean: np.ndarray, min_distance: float = 50.0) -> np.ndarray:
    best, best_distance = None, -1.0
    for _ in range(12):
        colour = rng.uniform(0, 255, 3)
        distance = float(np.linalg.norm(colour - under_mean))
        if distance >= min_distance:
            return colour
        if distance > best_distance:
            best, best_distance = colour, distance
    return best


@dataclass
class _Layout:
    """The objects placed so far on one image, and which object owns each pixel (-1 none, -2 an occluder)."""

    owner: np.ndarray
    shapes: list[Shape] = field(default_factory=list)
    full_areas: list[int] = field(default_factory=list)  # full mask area, including any part outside the image
    visible_pixels: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)

    def stays_visible(self, hidden: np.ndarray, min_visible: float) -> bool:
        """Whether every placed object keeps ``min_visible`` of its area when ``hidden[k]`` of its pixels go."""
        return all(self.visible_pixels[k] - hidden[k] >= min_visible * self.full_areas[k]
                   for k in range(len(self.shapes)))

    def hide(self, hidden: np.ndarray) -> None:
        for k in range(len(self.shapes)):
            self.visible_pixels[k] -= int(hidden[k])


def _draw_clutter(rng: np.random.Generator, image: np.ndarray, size: int) -> None:
    """Unlabelled strokes and blobs below the objects."""
    for _ in range(int(rng.integers(2, 8))):
        alpha = _stroke_alpha(rng, size)
        _blend(image, alpha, rng.uniform(0, 255, 3), rng.uniform(0.5, 1.0))
    for _ in range(int(rng.integers(1, 5))):
        alpha = _blob_alpha(rng, size)
        _blend(image, alpha, rng.uniform(0, 255, 3), rng.uniform(0.35, 0.9))


def _position(rng: np.random.Generator, shape: Shape, layout: _Layout, size: int) -> None:
    """Next to an existing object (to create overlaps) or anywhere with at most half of it outside the image."""
    half_w, half_h = shape.half_extent()
    if layout.shapes and rng.random() < NEAR_EXISTING:
        neighbour = layout.shapes[int(rng.integers(len(layout.shapes)))]
        neighbour_half_w, neighbour_half_h = neighbour.half_extent()
        shape.cx = neighbour.cx + rng.uniform(-1, 1) * (neighbour_half_w + half_w)
        shape.cy = neighbour.cy + rng.uniform(-1, 1) * (neighbour_half_h + half_h)
    else:
        shape.cx = rng.uniform(min(0.5 * half_w, size / 2), max(size - 0.5 * half_w, size / 2))
        shape.cy = rng.uniform(min(0.5 * half_h, size / 2), max(size - 0.5 * half_h, size / 2))


def _paint(rng: np.random.Generator, region: np.ndarray, inside: np.ndarray, along: np.ndarray, shape: Shape) -> None:
    """Fill the object's pixels: a colour contrasting with what lies below, linear shading and texture noise."""
    colour = _pick_colour(rng, region[inside].mean(0))
    half_w, _ = shape.half_extent()
    shade = 1.0 + rng.uniform(-0.2, 0.2) * along[inside] / max(shape.half_length, half_w, 1.0)
    fill = colour[None, :] * shade[:, None] + rng.normal(0, rng.uniform(1, 8), (int(inside.sum()), 3))
    region[inside] = fill.astype(np.float32)


def _place_objects(rng: np.random.Generator, image: np.ndarray, size: int, min_objects: int, max_objects: int,
                   min_visible: float, occlusion: bool, any_angle: bool = False) -> _Layout:
    layout = _Layout(owner=np.full((size, size), -1, np.int32))
    wanted = int(rng.integers(min_objects, max_objects + 1))
    tries = 0
    while len(layout.shapes) < wanted and tries < TRIES_PER_OBJECT * max(wanted, 1):
        tries += 1
        shape = sample_shape(rng, int(rng.integers(len(CLASS_NAMES))), size)
        if any_angle:
            shape.angle = float(rng.uniform(0.0, 2 * np.pi))
        _position(rng, shape, layout, size)
        if any_angle and not all(0 <= centre <= size for centre in oriented_rectangle(shape)[:2]):
            continue  # an oriented box whose centre leaves the image is no valid label
        mask, along, x0, y0 = rasterize(shape)
        full_area = int(mask.sum())
        inside, region, (row_offset, column_offset) = crop_to_image(mask, x0, y0, size)
        if inside is None or full_area == 0:
            continue
        pixels_inside = int(inside.sum())
        if pixels_inside < min_visible * full_area:
            continue
        box = mask_extent(inside, region[1].start, region[0].start)
        if box is None or box[2] - box[0] < MIN_BOX_PX or box[3] - box[1] < MIN_BOX_PX:
            continue
        below = layout.owner[region][inside]
        below = below[below >= 0]
        if below.size and not occlusion:
            continue
        hidden = np.bincount(below, minlength=len(layout.shapes))
        if not layout.stays_visible(hidden, min_visible):
            continue
        along = along[row_offset: row_offset + inside.shape[0], column_offset: column_offset + inside.shape[1]]
        _paint(rng, image[region], inside, along, shape)
        layout.owner[region][inside] = len(layout.shapes)
        layout.hide(hidden)
        layout.shapes.append(shape)
        layout.full_areas.append(full_area)
        layout.visible_pixels.append(pixels_inside)
        layout.boxes.append(box)
    return layout


def _draw_occluders(rng: np.random.Generator, image: np.ndarray, layout: _Layout, size: int,
                    min_visible: float) -> None:
    """Unlabelled strokes over the objects, never hiding too much of any object."""
    for _ in range(int(rng.integers(0, 4))):
        alpha = _stroke_alpha(rng, size)
        covered = alpha >= 128
        owners = layout.owner[covered]
        hidden = np.bincount(owners[owners >= 0], minlength=len(layout.shapes))
        if not layout.stays_visible(hidden, min_visible):
            continue
        _blend(image, alpha, rng.uniform(0, 255, 3))
        layout.owner[covered] = -2
        layout.hide(hidden)


def _blur_and_noise(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Mild blur and pixel noise so edges are not trivially sharp; uint8."""
    image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.1))
    image += rng.normal(0, rng.uniform(2, 7), image.shape).astype(np.float32)
    return np.clip(np.round(image), 0, 255).astype(np.uint8)


def render_sample(seed: int = DEFAULT_SEED, split: str = "train", index: int = 0, imgsz: int = DEFAULT_IMGSZ, *,
                  min_objects: int = DEFAULT_MIN_OBJECTS, max_objects: int = DEFAULT_MAX_OBJECTS,
                  min_visible: float = DEFAULT_MIN_VISIBLE, occlusion: bool = True,
                  any_angle: bool = False) -> Sample:
    """Render image ``index`` of ``split`` deterministically from ``(seed, split, index)``.

    With ``occlusion=False`` object masks never overlap each other and no clutter is drawn over objects, so
    every object is fully visible (useful to test tightness). With ``any_angle`` every object is turned to a
    uniform angle and its oriented rectangle keeps its centre in the image (the images of ``shapes-obb``; other
    images than without).
    """
    rng = np.random.default_rng([int(seed), SPLIT_ID[split], int(index)])
    size = int(imgsz)
    image = _background(rng, size)
    _draw_clutter(rng, image, size)
    layout = _place_objects(rng, image, size, min_objects, max_objects, min_visible, occlusion, any_angle)
    if occlusion:
        _draw_occluders(rng, image, layout, size, min_visible)
    pixels = _blur_and_noise(rng, image)

    masks = np.zeros((len(layout.shapes), size, size), bool)
    for k, shape in enumerate(layout.shapes):
        mask, _, x0, y0 = rasterize(shape)
        inside, region, _ = crop_to_image(mask, x0, y0, size)
        masks[k][region] = inside
    visible = np.stack([layout.owner == k for k in range(len(layout.shapes))]) if layout.shapes else masks.copy()
    visible_frac = np.array([layout.visible_pixels[k] / layout.full_areas[k] for k in range(len(layout.shapes))],
                            dtype=np.float64)
    keep = np.flatnonzero(visible_frac >= min_visible)  # safety net; placement already guarantees it
    return Sample(
        image=pixels,
        classes=np.array([layout.shapes[k].cls for k in keep], dtype=np.int64),
        boxes=np.array([layout.boxes[k] for k in keep], dtype=np.float64).reshape(-1, 4),
        masks=masks[keep],
        visible=visible[keep],
        visible_frac=visible_frac[keep],
        shapes=[layout.shapes[k] for k in keep],
    )
