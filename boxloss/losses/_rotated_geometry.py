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

from ._geometry import promote


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
