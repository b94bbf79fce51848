"""Polygon-IoU losses on rotated boxes: exact IoU, GIoU with the convex hull, and a rotated EIoU (ours).

Every function takes predicted and target boxes, xywhr, shape (N, 5) — centre, width, height, angle in radians —
and returns the per-box loss (N,). The IoU is the exact one of the two rectangles (``_rotated_geometry``: the
prediction clipped by the target's four sides in the target's frame, Sutherland-Hodgman, differentiable almost
everywhere), so unlike the Gaussian losses these see a square's rotation. Boxes are expected with non-negative sides.
"""

from __future__ import annotations

import math

import torch

from ..param import Param
from ..registry import BOX_LOSSES
from ._geometry import EPS
from ._rotated_geometry import RotatedPairGeometry, convex_hull_area, rotated_pair_geometry
from .iou_family import FOCAL_EIOU_NORMS, _check_focal_eiou_norm, focal_weighted


def _riou_terms(pred, target, eps=EPS):
    geo = rotated_pair_geometry(pred, target, eps)
    loss = 1.0 - geo.iou
    return loss, {"iou": loss}


def _rgiou_terms(pred, target, eps=EPS):
    geo = rotated_pair_geometry(pred, target, eps)
    hull_area = convex_hull_area(geo.pred_corners, geo.target_corners) + eps
    # |H \ (A ∪ B)| / |H| >= 0; the hull and the union are summed differently, so rounding can leave −1e-8: clamped
    empty_fraction = ((hull_area - geo.union) / hull_area).clamp(min=0)
    loss = 1.0 - (geo.iou - empty_fraction)
    return loss, {"iou": 1.0 - geo.iou, "encl": empty_fraction}


def paired_sides(geo: RotatedPairGeometry) -> tuple[torch.Tensor, torch.Tensor]:
    """The prediction's (width, height) paired with the target's by orientation, (N,) each: the sides of the
    prediction's representation within π/4 of the target's angle. (w, h, θ) and (h, w, θ + π/2) are the same box; the
    one whose angle is nearest the target's (φ − kπ/2, k = ⌊φ/(π/2) + ½⌋, φ = θ_pred − θ_target) has its sides swapped
    when k is odd. ⌊· + ½⌋ breaks the tie at exactly π/4 the same way for every representation."""
    with torch.no_grad():
        quarter_turns = torch.floor(geo.frame.angle / (math.pi / 2) + 0.5)
        swapped = torch.remainder(quarter_turns, 2) == 1
    frame = geo.frame
    return torch.where(swapped, frame.pred_h, frame.pred_w), torch.where(swapped, frame.pred_w, frame.pred_h)


def _reiou_parts(pred, target, eps):
    geo = rotated_pair_geometry(pred, target, eps)
    frame = geo.frame
    # C: the smallest rectangle aligned to the target's axes that encloses both boxes, in the target's frame
    pred_x, pred_y = geo.pred_corners.unbind(-1)  # [N, 4] each
    half_w, half_h = frame.target_w / 2, frame.target_h / 2
    enclosing_w = pred_x.amax(-1).maximum(half_w) - pred_x.amin(-1).minimum(-half_w)
    enclosing_h = pred_y.amax(-1).maximum(half_h) - pred_y.amin(-1).minimum(-half_h)
    distance = (frame.offset_x.pow(2) + frame.offset_y.pow(2)) / (enclosing_w.pow(2) + enclosing_h.pow(2) + eps)
    pred_w, pred_h = paired_sides(geo)
    width = (pred_w - frame.target_w).pow(2) / (enclosing_w.pow(2) + eps)
    height = (pred_h - frame.target_h).pow(2) / (enclosing_h.pow(2) + eps)
    return geo, {"iou": 1.0 - geo.iou, "dist": distance, "w": width, "h": height}


def _reiou_terms(pred, target, eps=EPS):
    _, terms = _reiou_parts(pred, target, eps)
    return terms["iou"] + terms["dist"] + terms["w"] + terms["h"], terms


def _focal_reiou_terms(pred, target, gamma=0.5, norm="batch", eps=EPS):
    _check_focal_eiou_norm(norm)
    geo, terms = _reiou_parts(pred, target, eps)
    return focal_weighted(geo.iou, terms, gamma)


def focal_reiou_weights(pred: torch.Tensor, target: torch.Tensor, gamma: float = 0.5, norm: str = "batch",
                        eps: float = EPS) -> torch.Tensor | None:
    """The normaliser of Focal-REIoU: wᵢ = IoUᵢ^γ (exact IoU, detached) for ``norm="batch"``, None for "none"; the
    caller divides Σ sᵢ Lᵢ by Σ sᵢ wᵢ (see ``focal_eiou_weights``)."""
    _check_focal_eiou_norm(norm)
    if norm == "none":
        return None
    with torch.no_grad():
        return rotated_pair_geometry(pred.detach(), target.detach(), eps).iou.pow(gamma)


@BOX_LOSSES.register("riou", terms=_riou_terms, iou_based=True, boxes="xywhr",
                     formula="1 − IoU, the exact IoU of the two rotated rectangles",
                     paper="Yu et al., UnitBox, ACM MM 2016 (IoU loss); rotated: Zhou et al., IoU Loss for 2D/3D "
                           "Object Detection, 3DV 2019, arXiv 1908.03851")
def riou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Rotated IoU loss, 1 − IoU with the exact IoU of the two rectangles, per box.

    The intersection is the prediction's rectangle clipped by the target's four sides (in the target's frame, where
    they are |x| < w_t/2, |y| < h_t/2), its area the shoelace sum of the clipped polygon: plain, vectorised torch,
    differentiable wherever no corner lies exactly on the other box's edge (there, e.g. at identical boxes, autograd
    gives a one-sided derivative: that of a prediction just outside the edge). Union = w_p h_p + w_t h_t − |∩| + eps.
    Implementations read for the idea (not copied): lilanxiao's Rotated_IoU (github.com/lilanxiao/Rotated_IoU) and
    mmcv's ``diff_iou_rotated``, which collect corners and edge crossings and sort them; clipping needs no sort of
    points and no inside test with a tolerance.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians), non-negative sides.

    Returns:
        (N,) loss in [0, 1]; zero gradient for disjoint boxes.

    Reference: Zhou et al., "IoU Loss for 2D/3D Object Detection", 3DV 2019, arXiv 1908.03851.
    """
    return _riou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("rgiou", terms=_rgiou_terms, iou_based=True, boxes="xywhr",
                     formula="1 − IoU + |H \\ (A ∪ B)| / |H|, H the convex hull of both rectangles",
                     paper="Rezatofighi et al., Generalized Intersection over Union, CVPR 2019, arXiv 1902.09630; "
                           "rotated with the convex hull")
def rgiou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Rotated GIoU loss, 1 − IoU + |H \\ (A ∪ B)| / |H|, per box, with H the convex hull of the two rectangles.

    GIoU's enclosure C, for rotated boxes, is the convex hull of the eight corners: the smallest convex enclosure,
    rotation-equivariant (an axis-aligned enclosing box would depend on the image's axes). Disjoint boxes still get
    a gradient, through the hull.

    Choices, made deliberately:
    - Which corners make the hull, and their order, is decided without gradient; the hull's area is the shoelace
      sum of those corners, so its gradient is exact wherever the set of hull corners does not change.
    - The empty fraction is clamped at 0 (it is >= 0; the hull and the union are summed differently).

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians), non-negative sides.

    Returns:
        (N,) loss in [0, 2).

    Reference: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019, arXiv 1902.09630.
    """
    return _rgiou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("reiou", terms=_reiou_terms, iou_based=True, boxes="xywhr",
                     formula="1 − IoU + ρ²/c² + (w − w_gt)²/Cw² + (h − h_gt)²/Ch², exact IoU, C aligned to the "
                             "target's axes, sides paired by orientation",
                     paper="ours (boxloss): EIoU of Zhang et al., Neurocomputing 2022, arXiv 2101.08158, for rotated "
                           "boxes")
def reiou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """Rotated EIoU loss (defined by this project), 1 − IoU + ρ²/c² + (w − w_t)²/C_w² + (h − h_t)²/C_h², per box.

    - IoU: the exact IoU of the two rectangles (as ``riou``).
    - C: the smallest rectangle aligned to the *target's* axes that encloses both boxes, C_w and C_h its sides along
      the target's width and height, c² = C_w² + C_h²; ρ is the distance between the centres.
    - w, h: the prediction's sides paired with the target's by orientation — those of the prediction's
      representation within π/4 of the target's angle ((w, h, θ) and (h, w, θ + π/2) are one box).

    With both angles 0 this is EIoU (``eiou``) of the same boxes, to the eps terms; it does not change under
    (w, h, θ) → (h, w, θ + π/2) or θ → θ + π of either box (tested). No reference implementation exists: this is
    ours. The pairing makes the width and height terms jump where the relative angle crosses π/4 (for a prediction
    that is not square): the box it describes does not change there, only which of its sides is called the width.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians), non-negative sides.

    Returns:
        (N,) loss.

    Reference: EIoU: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022, arXiv 2101.08158.
    """
    return _reiou_terms(pred, target, eps)[0]


@BOX_LOSSES.register(
    "focal_reiou", terms=_focal_reiou_terms, normalizer=focal_reiou_weights, boxes="xywhr",
    formula="Σ IoU^γ · REIoU / Σ IoU^γ  (norm=batch), exact IoU",
    paper="ours (boxloss): Focal-EIoU of Zhang et al., Neurocomputing 2022, arXiv 2101.08158, on reiou",
    params={
        "gamma": Param(0.5, "focusing exponent γ (Focal-EIoU paper: 0.5)", lambda g: g >= 0, ">= 0"),
        "norm": Param("batch", "'batch': a weighted mean, Σ w·REIoU / Σ w (paper); 'none': no normaliser",
                      lambda n: n in FOCAL_EIOU_NORMS, "one of batch, none", choices=FOCAL_EIOU_NORMS),
    })
def focal_reiou_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float = 0.5, norm: str = "batch",
                     eps: float = EPS) -> torch.Tensor:
    """Focal rotated EIoU, wᵢ · REIoUᵢ with wᵢ = IoUᵢ^γ (exact IoU, detached), per box: ``focal_eiou`` on ``reiou``.

    As Focal-EIoU: the loss returns the numerator of the paper's weighted mean Σ wᵢ Lᵢ / Σ wᵢ and the registry's
    normaliser (:func:`focal_reiou_weights`) hands wᵢ to the caller (``norm="batch"``); the weight carries no
    gradient; disjoint boxes (IoU = 0) get no loss and no gradient; γ = 0 is ``reiou`` exactly.

    Args:
        pred, target: (N, 5) boxes, xywhr (angle in radians), non-negative sides.
        gamma: focusing exponent γ >= 0.
        norm: "batch" or "none".

    Returns:
        (N,) loss.

    Reference: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression", Neurocomputing
    2022, arXiv 2101.08158, eq. (9)-(10).
    """
    return _focal_reiou_terms(pred, target, gamma, norm, eps)[0]
