"""Coordinate losses: Smooth L1 and Focal L1, on the box distances the YOLO head regresses.

YOLOv8 regresses distances (l, t, r, b) from an anchor point to the four box sides. For a prediction and
a target at the same anchor point, the difference of distances equals the difference of xyxy
coordinates up to sign (l − l_gt = −(x1 − x1_gt), r − r_gt = x2 − x2_gt), so a loss of |Δ| per coordinate
is the same on xyxy boxes as on ltrb distances. The functions therefore take the common (N, 4) xyxy
signature.

Units (``l1_units``, one key for both losses): ``grid`` takes the errors as they come (in the YOLO criterion:
grid units, pixels / stride, so β is a fixed fraction of a stride whatever the object's size); ``box`` divides the
x errors by the target's width and the y errors by its height, the scale-free offsets of the papers (Fast R-CNN's
t = Δ/w; the Focal L1 of the EIoU paper acts on such normalised offsets), so β is a fraction of the object.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import BOX_LOSSES
from ..param import Param
from ._geometry import EPS, _check_boxes, promote

L1_UNITS = ("grid", "box")
UNITS_PARAM = Param("box", "'box': x errors / target width, y errors / target height (the papers' normalised offsets; "
                    "starts at CIoU's scale, see the README); 'grid': errors as given (YOLO: grid units)",
                    choices=L1_UNITS, key="l1_units")


def coordinate_errors(pred: torch.Tensor, target: torch.Tensor, units: str = "box") -> torch.Tensor:
    """pred − target per coordinate, (N, 4), in the compute dtype; ``box`` units divide by the target's w, h."""
    if units not in L1_UNITS:
        raise ValueError(f"l1 units must be one of {L1_UNITS}, got {units!r}")
    pred, target = promote(pred, target)
    error = pred - target
    if units == "box":
        size = (target[:, 2:] - target[:, :2]).clamp(min=0) + EPS  # (N, 2): w, h
        error = error / size.repeat(1, 2)
    return error


@BOX_LOSSES.register(
    "smooth_l1", formula="Σ 0.5 x²/β if |x| < β else |x| − 0.5 β, x = coordinate error",
    paper="Girshick, Fast R-CNN, ICCV 2015, arXiv 1504.08083",
    params={"beta": Param(1.0, "transition point β between the quadratic and linear parts, in l1_units",
                          lambda b: b > 0, "> 0"),
            "units": UNITS_PARAM})
def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0, units: str = "box") -> torch.Tensor:
    """Smooth L1 loss, Σ over the 4 coordinates of 0.5 x²/β if |x| < β else |x| − 0.5 β.

    Args:
        pred, target: (N, 4) boxes, xyxy (equivalently ltrb distances, see the module docstring).
        beta: transition point β > 0 (Fast R-CNN: 1).
        units: ``box`` (normalised by the target's width and height; default) or ``grid`` (errors as given).

    Returns:
        (N,) loss.

    Reference: Girshick, "Fast R-CNN", ICCV 2015, arXiv 1504.08083.
    """
    _check_boxes(pred, target)
    error = coordinate_errors(pred, target, units)
    return F.smooth_l1_loss(error, torch.zeros_like(error), reduction="none", beta=beta).sum(-1)


def _check_focal_l1_beta(beta: float) -> bool:
    return 1 / math.e <= beta <= 1


@BOX_LOSSES.register(
    "focal_l1", formula="Σ −α x² (2 ln(βx) − 1)/4 for x ≤ 1, −α ln β · x + C above; α = e β",
    paper="Zhang et al., Focal and Efficient IOU Loss, Neurocomputing 2022, arXiv 2101.08158",
    params={"beta": Param(0.8, "shape β of the focal L1 gradient, 1/e <= β <= 1 (paper: 0.8)",
                          _check_focal_l1_beta, "in [1/e, 1]"),
            "units": UNITS_PARAM})
def focal_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 0.8, units: str = "box") -> torch.Tensor:
    """Focal L1 loss, Σ over the 4 coordinates of the paper's integrated gradient.

    With x = |coordinate error| and α = e β, the gradient is −α x ln(β x) for x ≤ 1 (small for both tiny and
    large errors below 1, promoting the many already-good regressions less) and the constant −α ln β for
    x > 1. Integrated: L(x) = −α x² (2 ln(β x) − 1) / 4 for x ≤ 1 and L(x) = −α ln β · x + C for x > 1, with
    C = α (2 ln β + 1) / 4 so that L is continuous at x = 1. L(0) = 0. The branch is chosen on x < 1, so at x = 1
    exactly the gradient is the outer one, −α ln β, which is also the inner branch's limit (a clamp at the
    boundary would give 0 there).

    Args:
        pred, target: (N, 4) boxes, xyxy (equivalently ltrb distances, see the module docstring).
        beta: 1/e <= β <= 1 (paper: 0.8).
        units: ``box`` (normalised by the target's width and height; default) or ``grid`` (errors as given).

    Returns:
        (N,) loss.

    Reference: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022, arXiv 2101.08158, eq. (7)-(8).
    """
    _check_boxes(pred, target)
    x = coordinate_errors(pred, target, units).abs()
    alpha = math.e * beta
    inside = x < 1.0
    near = torch.where(inside, x, torch.zeros_like(x))  # the inner branch only sees x < 1: no clamp at the boundary
    # x² ln(βx) -> 0 as x -> 0; clamping the log's argument keeps value and gradient finite at x = 0
    log_term = torch.log((beta * near).clamp(min=torch.finfo(x.dtype).tiny))
    inner = -alpha * near.pow(2) * (2 * log_term - 1) / 4
    outer = -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4
    return torch.where(inside, inner, outer).sum(-1)
