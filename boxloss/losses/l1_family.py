"""Coordinate losses: Smooth L1 and Focal L1, on the box distances the YOLO head regresses.

YOLOv8 regresses distances (l, t, r, b) from an anchor point to the four box sides. For a prediction and
a target at the same anchor point, the difference of distances equals the difference of xyxy
coordinates up to sign (l − l_gt = −(x1 − x1_gt), r − r_gt = x2 − x2_gt), so a loss of |Δ| per coordinate
is the same on xyxy boxes as on ltrb distances. The functions therefore take the common (N, 4) xyxy
signature; in the YOLO criterion both are in grid units (pixels / stride), which fixes the scale of β.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import BOX_LOSSES, Param
from ._geometry import _check_boxes, compute_dtype


@BOX_LOSSES.register(
    "smooth_l1", formula="Σ 0.5 x²/β if |x| < β else |x| − 0.5 β, x = coordinate error",
    paper="Girshick, Fast R-CNN, ICCV 2015, arXiv 1504.08083",
    params={"beta": Param(1.0, "transition point β between the quadratic and linear parts, in grid units",
                          lambda b: b > 0, "> 0")})
def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth L1 loss, Σ over the 4 coordinates of 0.5 x²/β if |x| < β else |x| − 0.5 β.

    Args:
        pred, target: (N, 4) boxes, xyxy (equivalently ltrb distances, see the module docstring).
        beta: transition point β > 0 (Fast R-CNN: 1).

    Returns:
        (N,) loss.

    Reference: Girshick, "Fast R-CNN", ICCV 2015, arXiv 1504.08083.
    """
    _check_boxes(pred, target)
    dtype = compute_dtype(pred, target)
    return F.smooth_l1_loss(pred.to(dtype), target.to(dtype), reduction="none", beta=beta).sum(-1)


def _check_focal_l1_beta(beta: float) -> bool:
    return 1 / math.e <= beta <= 1


@BOX_LOSSES.register(
    "focal_l1", formula="Σ −α x² (2 ln(βx) − 1)/4 for x ≤ 1, −α ln β · x + C above; α = e β",
    paper="Zhang et al., Focal and Efficient IOU Loss, Neurocomputing 2022, arXiv 2101.08158",
    params={"beta": Param(0.8, "shape β of the focal L1 gradient, 1/e <= β <= 1 (paper: 0.8)",
                          _check_focal_l1_beta, "in [1/e, 1]")})
def focal_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.8) -> torch.Tensor:
    """Focal L1 loss, Σ over the 4 coordinates of the paper's integrated gradient.

    With x = |coordinate error| and α = e β, the gradient is −α x ln(β x) for x ≤ 1 (small for both tiny and
    large errors below 1, promoting the many already-good regressions less) and the constant −α ln β for
    x > 1. Integrated: L(x) = −α x² (2 ln(β x) − 1) / 4 for x ≤ 1 and L(x) = −α ln β · x + C for x > 1, with
    C = α (2 ln β + 1) / 4 so that L is continuous at x = 1. L(0) = 0.

    Args:
        pred, target: (N, 4) boxes, xyxy (equivalently ltrb distances, see the module docstring).
        beta: 1/e <= β <= 1 (paper: 0.8).

    Returns:
        (N,) loss.

    Reference: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022, arXiv 2101.08158, eq. (7)-(8).
    """
    _check_boxes(pred, target)
    dtype = compute_dtype(pred, target)
    x = (pred.to(dtype) - target.to(dtype)).abs()
    alpha = math.e * beta
    near = x.clamp(max=1.0)
    # x² ln(βx) -> 0 as x -> 0; clamping the log's argument keeps value and gradient finite at x = 0
    log_term = torch.log((beta * near).clamp(min=torch.finfo(dtype).tiny))
    inner = -alpha * near.pow(2) * (2 * log_term - 1) / 4
    outer = -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4
    return torch.where(x <= 1.0, inner, outer).sum(-1)
