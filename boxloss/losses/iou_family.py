"""The IoU family of box-regression losses: IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU.

Every function takes predicted and target boxes, xyxy, shape (N, 4), and returns the per-box loss (N,);
the YOLO criterion does the weighting and the reduction. Each loss also has a ``_*_terms`` function that
returns ``(loss, {term: (N,)})`` with the parts of the loss (IoU term, centre distance, aspect, width,
height) for logging; the parts add up to the loss.
"""

from __future__ import annotations

import math

import torch

from ..registry import BOX_LOSSES
from ..param import Param
from ._geometry import EPS, PairGeometry, centre_distance_ratio, pair_geometry


def _iou_terms(pred, target, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    loss = 1.0 - geo.iou
    return loss, {"iou": loss}


def _giou_terms(pred, target, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    enclosing_area = geo.enclosing_w * geo.enclosing_h + eps
    empty_fraction = (enclosing_area - geo.union) / enclosing_area  # |C \ (A ∪ B)| / |C|
    loss = 1.0 - (geo.iou - empty_fraction)
    return loss, {"iou": 1.0 - geo.iou, "encl": empty_fraction}


def _diou_terms(pred, target, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    distance = centre_distance_ratio(geo, eps)
    loss = 1.0 - (geo.iou - distance)
    return loss, {"iou": 1.0 - geo.iou, "dist": distance}


def _aspect_penalty(geo: PairGeometry, eps: float) -> torch.Tensor:
    """α v with v = 4/π² (atan(w_gt/h_gt) − atan(w/h))², α = v / (1 − IoU + v) held constant."""
    v = (4 / math.pi**2) * ((geo.target_w / geo.target_h).atan() - (geo.pred_w / geo.pred_h).atan()).pow(2)
    with torch.no_grad():
        alpha = v / (1 - geo.iou + v + eps)
    return v * alpha


def _ciou_terms(pred, target, eps=EPS):
    geo = pair_geometry(pred, target, eps)
    distance = centre_distance_ratio(geo, eps)
    aspect = _aspect_penalty(geo, eps)
    loss = 1.0 - (geo.iou - (distance + aspect))  # the stock ultralytics order of operations
    return loss, {"iou": 1.0 - geo.iou, "dist": distance, "aspect": aspect}


def _eiou_parts(pred, target, eps):
    geo = pair_geometry(pred, target, eps)
    distance = centre_distance_ratio(geo, eps)
    width = (geo.pred_w - geo.target_w).pow(2) / (geo.enclosing_w.pow(2) + eps)
    height = (geo.pred_h - geo.target_h).pow(2) / (geo.enclosing_h.pow(2) + eps)  # the eps on h cancels
    return geo, {"iou": 1.0 - geo.iou, "dist": distance, "w": width, "h": height}


def _eiou_terms(pred, target, eps=EPS):
    _, terms = _eiou_parts(pred, target, eps)
    return terms["iou"] + terms["dist"] + terms["w"] + terms["h"], terms


FOCAL_EIOU_NORMS = ("batch", "none")


def _check_focal_eiou_norm(norm: str) -> None:
    if norm not in FOCAL_EIOU_NORMS:
        raise ValueError(f"focal_eiou norm must be one of {FOCAL_EIOU_NORMS}, got {norm!r}")


def focal_weighted(iou: torch.Tensor, terms: dict[str, torch.Tensor], gamma: float):
    """Focal-EIoU's weighting of EIoU's terms (iou, dist, w, h): each times IoU^γ, no gradient through the weight
    (see focal_eiou); returns (loss, terms). Shared with the rotated Focal-REIoU."""
    weight = iou.detach().pow(gamma)
    terms = {name: weight * term for name, term in terms.items()}
    return terms["iou"] + terms["dist"] + terms["w"] + terms["h"], terms


def _focal_eiou_terms(pred, target, gamma=0.5, norm="batch", eps=EPS):
    _check_focal_eiou_norm(norm)
    geo, terms = _eiou_parts(pred, target, eps)
    return focal_weighted(geo.iou, terms, gamma)


def focal_eiou_weights(pred: torch.Tensor, target: torch.Tensor, gamma: float = 0.5, norm: str = "batch",
                       eps: float = EPS) -> torch.Tensor | None:
    """The normaliser of Focal-EIoU: wᵢ = IoUᵢ^γ (detached) for ``norm="batch"``, None for ``norm="none"``.

    The paper's loss is the weighted mean Σ wᵢ EIoUᵢ / Σ wᵢ; :func:`focal_eiou_loss` returns wᵢ EIoUᵢ and the
    caller divides by Σ wᵢ, or, when it weights boxes itself (YOLO: target scores sᵢ), by Σ sᵢ wᵢ.
    """
    _check_focal_eiou_norm(norm)
    if norm == "none":
        return None
    return pair_geometry(pred.detach(), target.detach(), eps).iou.pow(gamma)


@BOX_LOSSES.register("iou", terms=_iou_terms, iou_based=True, formula="1 − IoU",
                     paper="Yu et al., UnitBox: An Advanced Object Detection Network, ACM MM 2016")
def iou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """IoU loss, 1 − IoU, per box.

    Args:
        pred, target: (N, 4) boxes, xyxy.
        eps: added to heights and union, as in ultralytics.

    Returns:
        (N,) loss. Zero gradient for non-overlapping pairs.

    Reference: Yu et al., "UnitBox: An Advanced Object Detection Network", ACM MM 2016.
    """
    return _iou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("giou", terms=_giou_terms, iou_based=True, formula="1 − IoU + |C \\ (A ∪ B)| / |C|",
                     paper="Rezatofighi et al., Generalized Intersection over Union, CVPR 2019, arXiv 1902.09630")
def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """GIoU loss, 1 − IoU + |C \\ (A ∪ B)| / |C|, with C the smallest box enclosing both, per box.

    Args:
        pred, target: (N, 4) boxes, xyxy.

    Returns:
        (N,) loss in [0, 2].

    Reference: Rezatofighi et al., "Generalized Intersection over Union", CVPR 2019, arXiv 1902.09630.
    """
    return _giou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("diou", terms=_diou_terms, iou_based=True, formula="1 − IoU + ρ²/c²",
                     paper="Zheng et al., Distance-IoU Loss, AAAI 2020, arXiv 1911.08287")
def diou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """DIoU loss, 1 − IoU + ρ²/c², per box.

    ρ is the distance between the box centres, c the diagonal of the smallest enclosing box.

    Args:
        pred, target: (N, 4) boxes, xyxy.

    Returns:
        (N,) loss in [0, 2).

    Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box Regression",
    AAAI 2020, arXiv 1911.08287.
    """
    return _diou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("ciou", terms=_ciou_terms, iou_based=True, formula="1 − IoU + ρ²/c² + α v",
                     paper="Zheng et al., Distance-IoU Loss, AAAI 2020, arXiv 1911.08287")
def ciou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """CIoU loss, 1 − IoU + ρ²/c² + α v, per box: ultralytics' stock YOLOv8 box loss.

    v = 4/π² (atan(w_gt/h_gt) − atan(w/h))² measures aspect-ratio disagreement and α = v / ((1 − IoU) + v)
    is treated as a constant (no gradient), as in the paper and in ultralytics. The arithmetic matches
    ``ultralytics.utils.metrics.bbox_iou(..., CIoU=True)`` operation for operation.

    Args:
        pred, target: (N, 4) boxes, xyxy.

    Returns:
        (N,) loss.

    Reference: Zheng et al., "Distance-IoU Loss", AAAI 2020, arXiv 1911.08287.
    """
    return _ciou_terms(pred, target, eps)[0]


@BOX_LOSSES.register("eiou", terms=_eiou_terms, iou_based=True,
                     formula="1 − IoU + ρ²/c² + (w − w_gt)²/Cw² + (h − h_gt)²/Ch²",
                     paper="Zhang et al., Focal and Efficient IOU Loss, Neurocomputing 2022, arXiv 2101.08158")
def eiou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """EIoU loss, 1 − IoU + ρ²/c² + (w − w_gt)²/Cw² + (h − h_gt)²/Ch², per box.

    Replaces CIoU's aspect-ratio term by separate width and height terms, each normalised by the
    enclosing box's width Cw or height Ch, so width and height are regressed directly.

    Args:
        pred, target: (N, 4) boxes, xyxy.

    Returns:
        (N,) loss.

    Reference: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022, arXiv 2101.08158.
    """
    return _eiou_terms(pred, target, eps)[0]


@BOX_LOSSES.register(
    "focal_eiou", terms=_focal_eiou_terms, normalizer=focal_eiou_weights,
    formula="Σ IoU^γ · EIoU / Σ IoU^γ  (norm=batch)",
    paper="Zhang et al., Focal and Efficient IOU Loss, Neurocomputing 2022, arXiv 2101.08158",
    params={
        "gamma": Param(0.5, "focusing exponent γ (paper: 0.5 best, 2 worse than EIoU)", lambda g: g >= 0, ">= 0"),
        "norm": Param("batch", "'batch': a weighted mean, Σ w·EIoU / Σ w (paper); 'none': no normaliser (forks)",
                      lambda n: n in FOCAL_EIOU_NORMS, "one of batch, none", choices=FOCAL_EIOU_NORMS),
    })
def focal_eiou_loss(pred: torch.Tensor, target: torch.Tensor, gamma: float = 0.5, norm: str = "batch",
                    eps: float = EPS) -> torch.Tensor:
    """Focal-EIoU loss, wᵢ · EIoUᵢ with wᵢ = IoUᵢ^γ, per box (the numerator of the paper's weighted mean).

    Choices, made deliberately:
    - The weight IoU^γ carries no gradient. With a gradient, d(IoU^γ · L)/dIoU = γ IoU^(γ−1) L > 0, so
      descent could lower the loss by *shrinking* IoU; the weight is a re-weighting, not a target.
    - ``norm="batch"`` (default) follows the paper, Σ wᵢ Lᵢ / Σ wᵢ: the registry's normaliser
      (:func:`focal_eiou_weights`) hands wᵢ to the caller, which divides by Σ wᵢ -- the YOLO criterion by
      Σ sᵢ wᵢ, since it weights each positive by its target score sᵢ -- so the trained loss is the weighted
      mean over positives and stays on EIoU's scale (γ = 0, or equal IoUs, give EIoU exactly), keeping YOLO's box
      gain (tuned for CIoU) meaningful. ``norm="none"`` is the common forks' variant (detached IoU^γ, no
      normalisation), whose magnitude shrinks when IoUs are low (early training).
    - Non-overlapping pairs have IoU = 0, so IoU^γ = 0 (γ > 0): they get zero loss and **no gradient**.
      The loss only refines boxes that already overlap; with γ = 0 it is exactly EIoU.

    Args:
        pred, target: (N, 4) boxes, xyxy.
        gamma: focusing exponent γ >= 0 (0.5 in the paper).
        norm: "batch" or "none".

    Returns:
        (N,) loss.

    Reference: Zhang et al., "Focal and Efficient IOU Loss for Accurate Bounding Box Regression",
    Neurocomputing 2022, arXiv 2101.08158, eq. (9)-(10).
    """
    return _focal_eiou_terms(pred, target, gamma, norm, eps)[0]
