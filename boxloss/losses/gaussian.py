"""Gaussian losses on rotated boxes: ProbIoU (ultralytics' OBB loss).

Every function takes predicted and target boxes, xywhr, shape (N, 5) — centre, width, height, angle in radians —
and returns the per-box loss (N,). A rotated box becomes a 2-D Gaussian (see ``_rotated_geometry``), which makes the
loss smooth in the angle; the price is that a square's Gaussian is isotropic, so a square turned by 45° against
itself is, to every Gaussian loss, the same box (its exact IoU is 1/√2 ≈ 0.707).
"""

from __future__ import annotations

import torch

from ..param import Param
from ..registry import BOX_LOSSES
from ._geometry import EPS, promote
from ._rotated_geometry import check_rotated_boxes, covariance

PROBIOU_FLOOR = 0.01  # ultralytics' RotatedBboxLoss.floor


def _probiou_terms(pred, target, floor=PROBIOU_FLOOR, eps=EPS):
    """1 − ProbIoU, operation for operation ``ultralytics.utils.metrics.probiou(pred, target, floor=floor)``: every
    sum is recomputed where ultralytics recomputes it, so autograd accumulates the gradients in the same order."""
    check_rotated_boxes(pred, target)
    pred, target = promote(pred, target)
    x_p, y_p = pred[..., :2].split(1, dim=-1)  # [N, 1] each
    x_t, y_t = target[..., :2].split(1, dim=-1)
    a_p, b_p, c_p = covariance(pred, 12, floor)  # Σ = [[a, c], [c, b]], [N, 1] each
    a_t, b_t, c_t = covariance(target, 12, floor)
    # Bhattacharyya distance of the two Gaussians, Σ = (Σp + Σt)/2: the centre term (two parts) and the log-det term
    centre_term = (((a_p + a_t) * (y_p - y_t).pow(2) + (b_p + b_t) * (x_p - x_t).pow(2))
                   / ((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2) + eps)) * 0.25
    cross_term = (((c_p + c_t) * (x_t - x_p) * (y_p - y_t))
                  / ((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2) + eps)) * 0.5
    log_det_term = (((a_p + a_t) * (b_p + b_t) - (c_p + c_t).pow(2))
                    / (4 * ((a_p * b_p - c_p.pow(2)).clamp_(0) * (a_t * b_t - c_t.pow(2)).clamp_(0)).sqrt() + eps)
                    + eps).log() * 0.5
    bhattacharyya = (centre_term + cross_term + log_det_term).clamp(eps, 100.0)
    hellinger = (1.0 - (-bhattacharyya).exp() + eps).sqrt()
    probiou = 1 - hellinger
    loss = (1.0 - probiou).squeeze(-1)
    return loss, {"iou": loss}


@BOX_LOSSES.register(
    "probiou", terms=_probiou_terms, iou_based=True, boxes="xywhr",
    formula="1 − ProbIoU, ProbIoU = 1 − √(1 − e^{−B}), B the Bhattacharyya distance of N(μ, R diag(w²/12, h²/12) Rᵀ "
            "+ floor)",
    paper="Llerena et al., Gaussian Bounding Boxes and Probabilistic Intersection-over-Union for Object Detection, "
          "arXiv 2106.06072",
    params={"floor": Param(PROBIOU_FLOOR, "added to each variance w²/12, h²/12 (ultralytics: 0.01, bounds the "
                           "gradients of sub-stride boxes)", lambda f: f >= 0, ">= 0")})
def probiou_loss(pred: torch.Tensor, target: torch.Tensor, floor: float = PROBIOU_FLOOR,
                 eps: float = EPS) -> torch.Tensor:
    """ProbIoU loss, 1 − ProbIoU, per box: ultralytics' stock OBB box loss.

    Each box is the Gaussian N((cx, cy), Σ), Σ = R(θ) diag(w²/12 + floor, h²/12 + floor) R(θ)ᵀ (a uniform
    distribution over the box). B = ⅛ Δμᵀ Σ⁻¹ Δμ + ½ ln(det Σ / √(det Σp det Σt)) with Σ = (Σp + Σt)/2 is their
    Bhattacharyya distance, clamped to [eps, 100]; the Hellinger distance √(1 − e^{−B} + eps) is 1 − ProbIoU.

    Choices, made deliberately:
    - The arithmetic is ``ultralytics.utils.metrics.probiou(pred, target, floor=0.01)`` (8.4.190) operation for
      operation, as ``RotatedBboxLoss`` calls it (prediction first), so values and gradients are bit-identical
      (tested) and ``box_loss: probiou`` reproduces stock OBB training.
    - Because B >= eps and eps sits under the square root, identical boxes give 1 − ProbIoU = √(2 eps) ≈ 4.5e-4,
      not 0 — ultralytics' value, kept.
    - A Gaussian cannot tell a square's rotation: a square turned by 45° against itself scores ProbIoU ≈ 1.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians).
        floor: added to each variance (ultralytics' ``RotatedBboxLoss.floor`` = 0.01).
        eps: ultralytics' 1e-7.

    Returns:
        (N,) loss in [0, 1].

    Reference: Llerena, Zeni, Kristen, Jung, "Gaussian Bounding Boxes and Probabilistic Intersection-over-Union for
    Object Detection", arXiv 2106.06072; ultralytics ``probiou`` (8.4.190).
    """
    return _probiou_terms(pred, target, floor, eps)[0]
