"""Shared geometry of aligned rotated box pairs (pred[i] against target[i]), xywhr, for the rotated losses.

A rotated box is (cx, cy, w, h, θ): centre, width, height and angle in radians, ultralytics' OBB convention — the
box's corners are the centre plus R(θ) (±w/2, ±h/2) with R(θ) = [[cos θ, −sin θ], [sin θ, cos θ]] (in image
coordinates, y pointing down, a positive θ turns the box clockwise on screen). As a 2-D Gaussian the box is
N((cx, cy), Σ) with Σ = R(θ) diag(w²/k, h²/k) R(θ)ᵀ: k = 12 for a uniform distribution over the box (ProbIoU), k = 4
for the Gaussian of the inscribed ellipse (GWD, KLD, KFIoU).

Everything but ProbIoU is computed in the *target's frame*: origin at the target's centre, axes along its width and
height. All the losses are invariant under a rigid motion of both boxes, and in that frame the target is
[−w/2, w/2] × [−h/2, h/2] and its covariance diagonal, which makes the polygon clipping a comparison of coordinates
and keeps the Gaussian formulas free of cancellation (a determinant is w²h²/16, not ac − b²). Half-precision input
is promoted to float32 (``promote``), float64 stays float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._geometry import EPS, promote

# (±w/2, ±h/2) counter-clockwise in x-right, y-up terms (a positive shoelace area; on screen, y down, clockwise)
CORNER_SIGNS = ((-1.0, -1.0), (1.0, -1.0), (1.0, 1.0), (-1.0, 1.0))


def check_rotated_boxes(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[-1] != 5:
        raise ValueError(f"expected pred and target of the same shape (N, 5), xywhr, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")


def covariance(boxes: torch.Tensor, divisor: float, floor: float = 0.0) -> tuple[torch.Tensor, ...]:
    """(a, b, c), each (N, 1), of Σ = R(θ) diag(w²/divisor + floor, h²/divisor + floor) R(θ)ᵀ = [[a, c], [c, b]].

    Operation for operation ultralytics' ``_get_covariance_matrix`` (``ultralytics.utils.metrics``), so that
    ProbIoU built on it has ultralytics' values and gradients bit for bit; boxes: (N, 5) xywhr.
    """
    variances_and_angle = torch.cat((boxes[:, 2:4].pow(2) / divisor + floor, boxes[:, 4:]), dim=-1)  # [N, 3]
    var_w, var_h, angle = variances_and_angle.split(1, dim=-1)
    cos, sin = angle.cos(), angle.sin()
    cos2, sin2 = cos.pow(2), sin.pow(2)
    return var_w * cos2 + var_h * sin2, var_w * sin2 + var_h * cos2, (var_w - var_h) * cos * sin


@dataclass
class TargetFrame:
    """The prediction in the target's frame (origin at the target's centre, x along the target's width), (N,) each.

    Sizes are the boxes' own (not reordered); ``cos``/``sin`` are those of the relative angle φ = θ_pred − θ_target.
    """

    offset_x: torch.Tensor  # prediction centre − target centre, along the target's width axis
    offset_y: torch.Tensor  # ... along the target's height axis
    angle: torch.Tensor  # φ = θ_pred − θ_target
    cos: torch.Tensor
    sin: torch.Tensor
    pred_w: torch.Tensor
    pred_h: torch.Tensor
    target_w: torch.Tensor
    target_h: torch.Tensor


def target_frame(pred: torch.Tensor, target: torch.Tensor) -> TargetFrame:
    """Both boxes in the target's frame; pred, target: (N, 5) xywhr (promoted here)."""
    check_rotated_boxes(pred, target)
    pred, target = promote(pred, target)
    px, py, pred_w, pred_h, pred_angle = pred.unbind(-1)
    tx, ty, target_w, target_h, target_angle = target.unbind(-1)
    cos_t, sin_t = target_angle.cos(), target_angle.sin()
    dx, dy = px - tx, py - ty
    angle = pred_angle - target_angle
    return TargetFrame(cos_t * dx + sin_t * dy, cos_t * dy - sin_t * dx, angle, angle.cos(), angle.sin(),
                       pred_w, pred_h, target_w, target_h)


def corners(frame: TargetFrame) -> tuple[torch.Tensor, torch.Tensor]:
    """The prediction's and the target's corners in the target's frame, (N, 4, 2) each, counter-clockwise (for
    non-negative sides): the prediction's are offset + R(φ) (±w/2, ±h/2), the target's (±w/2, ±h/2)."""
    signs = torch.tensor(CORNER_SIGNS, dtype=frame.cos.dtype, device=frame.cos.device)  # [4, 2]
    half_w, half_h = (frame.pred_w / 2).unsqueeze(-1) * signs[:, 0], (frame.pred_h / 2).unsqueeze(-1) * signs[:, 1]
    cos, sin = frame.cos.unsqueeze(-1), frame.sin.unsqueeze(-1)  # [N, 1]
    pred = torch.stack((frame.offset_x.unsqueeze(-1) + cos * half_w - sin * half_h,
                        frame.offset_y.unsqueeze(-1) + sin * half_w + cos * half_h), -1)  # [N, 4, 2]
    target = torch.stack(((frame.target_w / 2).unsqueeze(-1) * signs[:, 0],
                          (frame.target_h / 2).unsqueeze(-1) * signs[:, 1]), -1)  # [N, 4, 2]
    return pred, target


def polygon_area(points: torch.Tensor) -> torch.Tensor:
    """Signed area of closed polygons (N, K, 2), vertices in order (positive counter-clockwise): the shoelace sum.
    Repeated vertices add nothing, which is how polygons with fewer than K vertices are written."""
    x, y = points.unbind(-1)
    return 0.5 * (x * y.roll(-1, dims=1) - x.roll(-1, dims=1) * y).sum(-1)


def _compact(points: torch.Tensor, keep: torch.Tensor, size: int) -> torch.Tensor:
    """The kept points (N, M, 2), in order, padded to ``size`` by repeating the last kept one (none kept: the first
    point, repeated: a polygon of area 0)."""
    rank = keep.cumsum(1) - 1  # [N, M]: the slot of each kept point
    slot_of = torch.where(keep & (rank < size), rank, size)  # the rest to a spare slot, dropped below
    source = torch.arange(points.shape[1], device=points.device).expand_as(keep)
    order = torch.zeros(len(points), size + 1, dtype=source.dtype, device=points.device).scatter_(1, slot_of, source)
    last = (rank[:, -1:]).clamp(min=0)  # the last kept one's slot
    slots = torch.arange(size, device=points.device).expand(len(points), size)
    order = order.gather(1, torch.minimum(slots, last))
    return points.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))


def _clip(polygon: torch.Tensor, distance: torch.Tensor) -> torch.Tensor:
    """One Sutherland-Hodgman step: the part of the convex polygon (N, K, 2) where ``distance`` > 0, ``distance`` (N, K)
    being an affine function of the vertex (a half-plane). Each edge contributes its start if inside and its crossing
    point if it crosses; the result is padded to K + 4 vertices (a convex polygon gains at most one vertex per
    half-plane; the margin absorbs the extra crossings rounding can make along an edge lying on the line)."""
    following = polygon.roll(-1, dims=1)
    following_distance = distance.roll(-1, dims=1)
    inside = distance > 0
    crossing = inside != (following_distance > 0)
    # the division only where the edge crosses (its ends' distances differ in sign there): no 0/0 in the graph
    denominator = torch.where(crossing, distance - following_distance, torch.ones_like(distance))
    fraction = torch.where(crossing, distance / denominator, torch.zeros_like(distance))
    crossing_point = polygon + fraction.unsqueeze(-1) * (following - polygon)
    candidates = torch.stack((polygon, crossing_point), 2).flatten(1, 2)  # [N, 2K, 2]: start, crossing, start, ...
    keep = torch.stack((inside, crossing), 2).flatten(1, 2)  # [N, 2K]
    return _compact(candidates, keep, polygon.shape[1] + 4)


def intersection_area(pred_corners: torch.Tensor, frame: TargetFrame) -> torch.Tensor:
    """Area of the prediction ∩ the target, (N,): the prediction's rectangle (N, 4, 2) in the target's frame clipped
    by the target's four sides, |x| < w_t/2 and |y| < h_t/2 (a zero-size target leaves nothing)."""
    polygon = pred_corners
    half_sizes = (frame.target_w / 2, frame.target_h / 2)
    for axis, sign in ((0, 1.0), (0, -1.0), (1, 1.0), (1, -1.0)):  # x < w/2, x > −w/2, y < h/2, y > −h/2
        polygon = _clip(polygon, half_sizes[axis].unsqueeze(-1) - sign * polygon[..., axis])
    return polygon_area(polygon).clamp(min=0)


def _cross(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a × b of 2-D vectors (..., 2) -> (...)."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _on_hull(own: torch.Tensor, other: torch.Tensor, tolerance: torch.Tensor) -> torch.Tensor:
    """Which corners of the convex polygons ``own`` (N, K, 2, counter-clockwise) lie on the convex hull of own ∪ other
    (``other``: (N, M, 2), counter-clockwise), (N, K) bool.

    A corner is on the hull when the hull's next edge (counter-clockwise) leaves from it: either its own polygon's
    next edge, with every point of ``other`` on its left, or a bridge to a corner of ``other`` with both polygons on
    its left. Both are convex, so a polygon lies left of a line through one of its corners when that corner's two
    neighbours do: 2 cross products per polygon, not one per point. "Left" allows ``tolerance`` (N,) of distance;
    zero-length edges and bridges support nothing.
    """
    tolerance = tolerance.unsqueeze(-1)  # [N, 1]
    following, preceding = own.roll(-1, dims=1) - own, own.roll(1, dims=1) - own  # [N, K, 2] own edges at each corner
    length = following.norm(dim=-1)  # [N, K]
    seen_from = other.unsqueeze(1) - own.unsqueeze(2)  # [N, K, M, 2]: other corners from each own corner
    own_edge = (length > tolerance) & (_cross(following.unsqueeze(2), seen_from)
                                      >= -(tolerance * length).unsqueeze(-1)).all(-1)  # [N, K]
    bridge_length = seen_from.norm(dim=-1)  # [N, K, M]
    allowed = -(tolerance.unsqueeze(-1) * bridge_length)
    other_following = (other.roll(-1, dims=1) - other).unsqueeze(1)  # [N, 1, M, 2]
    other_preceding = (other.roll(1, dims=1) - other).unsqueeze(1)
    bridge = ((bridge_length > tolerance.unsqueeze(-1))
              & (_cross(seen_from, following.unsqueeze(2)) >= allowed)
              & (_cross(seen_from, preceding.unsqueeze(2)) >= allowed)
              & (_cross(seen_from, other_following) >= allowed)
              & (_cross(seen_from, other_preceding) >= allowed))  # [N, K, M]
    return own_edge | bridge.any(-1)


def _hull_order(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Indices (N, K + M) into cat(first, second) of the corners on the convex hull of the two convex polygons (N, K, 2)
    and (N, M, 2), counter-clockwise, padded by repeating the last one. The tolerance of "on the hull" is 64 machine
    epsilons of the corners' scale (a corner that close inside the hull adds a sliver of that width at most); the hull
    corners are sorted by angle about their mean."""
    points = torch.cat((first, second), 1)  # [N, K + M, 2]
    tolerance = 16 * torch.finfo(points.dtype).eps * points.abs().amax(dim=(1, 2)).clamp(min=1)  # [N]
    on_hull = torch.cat((_on_hull(first, second, tolerance), _on_hull(second, first, tolerance)), 1)  # [N, K + M]
    weight = on_hull.to(points.dtype).unsqueeze(-1)
    centre = (points * weight).sum(1, keepdim=True) / weight.sum(1, keepdim=True).clamp(min=1)  # [N, 1, 2]
    offsets = points - centre
    angle = torch.atan2(offsets[..., 1], offsets[..., 0]).masked_fill(~on_hull, 4.0)  # off the hull: last
    order = angle.argsort(dim=1)
    last = (on_hull.sum(1, keepdim=True) - 1).clamp(min=0)
    slots = torch.arange(points.shape[1], device=points.device).expand_as(order)
    return order.gather(1, torch.minimum(slots, last))


def convex_hull_area(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Area of the convex hull of two convex polygons (N, K, 2) and (N, M, 2), corners counter-clockwise, (N,). Which
    corners make the hull, and their order, is chosen without gradient; the area of the chosen corners (the shoelace
    sum) is differentiable."""
    with torch.no_grad():
        order = _hull_order(first.detach(), second.detach())
    points = torch.cat((first, second), 1)
    return polygon_area(points.gather(1, order.unsqueeze(-1).expand(-1, -1, 2)))


@dataclass
class RotatedPairGeometry:
    """Per-pair quantities of rotated boxes, (N,) each unless said; coordinates in the target's frame."""

    frame: TargetFrame
    pred_corners: torch.Tensor  # [N, 4, 2]
    target_corners: torch.Tensor  # [N, 4, 2]
    inter: torch.Tensor  # |A ∩ B|, exact (polygon clipping)
    union: torch.Tensor  # |A ∪ B| + eps
    iou: torch.Tensor


def rotated_pair_geometry(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> RotatedPairGeometry:
    """Exact intersection, union and IoU of aligned rotated pairs; pred, target: (N, 5) xywhr."""
    frame = target_frame(pred, target)
    pred_corners, target_corners = corners(frame)
    inter = intersection_area(pred_corners, frame)
    union = frame.pred_w * frame.pred_h + frame.target_w * frame.target_h - inter + eps
    return RotatedPairGeometry(frame, pred_corners, target_corners, inter, union, inter / union)


def aligned_rotated_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Exact (polygon) IoU of aligned rotated pairs, (N,), differentiable; pred, target: (N, 5) xywhr, angle in
    radians. (The IoU matrix of two sets of boxes, without gradient, is ``boxloss.ops.rotated.rotated_iou``.)"""
    return rotated_pair_geometry(pred, target, eps).iou
