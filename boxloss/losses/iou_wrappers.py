"""IoU wrappers: Inner-, Focaler- and Alpha- versions of the registered IoU-type losses, one registration each.

A wrapper is ``wrap(base_terms, pred, target, **params) -> (loss, terms)`` (see ``Registry.register_wrapper``);
the registry names each combination ``<prefix>_<loss>`` (``inner_ciou``, ``focaler_siou``, ``alpha_giou``,
...) and the wrapper's params become config keys ``inner_ratio``, ``focaler_d``, ``focaler_u``, ``alpha_power``.

The wrappers read the IoU from the base loss's terms: every IoU-type loss's ``terms["iou"]`` is exactly
``1 − IoU`` (tested for every registered one), so no wrapper recomputes the pair geometry. Each wrapper with
its identity parameters (ratio = 1, [d, u] = [0, 1], power = 1) returns the wrapped loss bit for bit.

Rotated losses (``LossSpec.boxes == "xywhr"``) take a wrapper only where its mathematics holds for them: Focaler-
reads nothing but the IoU, so it applies to the rotated losses on the exact polygon IoU (riou, rgiou, reiou), not to
ProbIoU, a similarity of two Gaussians that reads 0.66-0.69 where the boxes' IoU is 0.50-0.55 (the interval [d, u]
would mean something else); Inner-IoU scales boxes with xyxy arithmetic and Alpha-IoU is defined for the paper's
axis-aligned family, so both apply to xyxy losses only.
"""

from __future__ import annotations

import torch

from ..registry import BOX_LOSSES, LossSpec
from ..param import Param
from ._geometry import EPS, promote
from .iou_variants import FOCUSED_LOSSES

ALPHA_BASES = ("iou", "giou", "diou", "ciou", "eiou")  # the paper's four, and EIoU by the same rule
FOCALER_ROTATED_BASES = ("riou", "rgiou", "reiou")  # rotated losses 1 − the exact polygon IoU + penalties


def _additive(spec: LossSpec) -> bool:
    """IoU-type losses of the form 1 − IoU + penalties, to which Inner- and Focaler- add IoU − IoU'."""
    return spec.iou_based and spec.name not in FOCUSED_LOSSES


def _inner_applies(spec: LossSpec) -> bool:
    """Additive axis-aligned losses: the auxiliary boxes' IoU is computed on xyxy boxes."""
    return _additive(spec) and spec.boxes == "xyxy"


def _focaler_applies(spec: LossSpec) -> bool:
    """Additive losses whose ``terms["iou"]`` is 1 − the boxes' IoU: every axis-aligned one, and the rotated ones on
    the exact polygon IoU (named: a new rotated loss gets no wrapper until its IoU is known to be the boxes')."""
    return _additive(spec) and (spec.boxes == "xyxy" or spec.name in FOCALER_ROTATED_BASES)


def _alpha_applies(spec: LossSpec) -> bool:
    """The paper's IoU, GIoU, DIoU, CIoU, and EIoU by the same rule (axis-aligned)."""
    return spec.name in ALPHA_BASES and spec.boxes == "xyxy"


def _inner_iou(pred: torch.Tensor, target: torch.Tensor, ratio: float, eps: float = EPS) -> torch.Tensor:
    """IoU of the boxes scaled by ``ratio`` about their centres, (N,).

    The arithmetic after scaling is ``pair_geometry``'s, operation for operation, and scaling by 1 leaves the
    coordinates bit for bit (x1 + 0·w), so ratio = 1 gives exactly the IoU of the base loss.
    """
    pred, target = promote(pred, target)
    px1, py1, px2, py2 = pred.unbind(-1)
    tx1, ty1, tx2, ty2 = target.unbind(-1)
    shrink = (1.0 - ratio) / 2  # each side moves inwards by shrink × the box's width or height
    pdw, pdh, tdw, tdh = shrink * (px2 - px1), shrink * (py2 - py1), shrink * (tx2 - tx1), shrink * (ty2 - ty1)
    px1, py1, px2, py2 = px1 + pdw, py1 + pdh, px2 - pdw, py2 - pdh
    tx1, ty1, tx2, ty2 = tx1 + tdw, ty1 + tdh, tx2 - tdw, ty2 - tdh
    pred_w, pred_h = px2 - px1, py2 - py1 + eps
    target_w, target_h = tx2 - tx1, ty2 - ty1 + eps
    inter = (px2.minimum(tx2) - px1.maximum(tx1)).clamp(0) * (py2.minimum(ty2) - py1.maximum(ty1)).clamp(0)
    union = pred_w * pred_h + target_w * target_h - inter + eps
    return inter / union


@BOX_LOSSES.register_wrapper(
    "inner", applies=_inner_applies, formula="L + IoU − IoU_inner, IoU_inner = IoU of the boxes scaled by ratio",
    paper="Zhang, Xu, Zhang, Inner-IoU: More Effective Intersection over Union Loss with Auxiliary Bounding Box, "
          "arXiv 2311.02877",
    params={"ratio": Param(0.7, "scale of the auxiliary boxes about their centres (paper: 0.5 to 1.5; < 1 for "
                           "high-IoU data)", lambda r: 0.5 <= r <= 1.5, "in [0.5, 1.5]")})
def inner_terms(base_terms, pred: torch.Tensor, target: torch.Tensor, ratio: float = 0.7):
    """Inner-IoU version of a loss L: L_Inner = L + IoU − IoU_inner, per box.

    IoU_inner is the IoU of the auxiliary boxes: each box scaled by ``ratio`` about its own centre (both
    prediction and target). ratio < 1 raises the gradient for high-IoU pairs, ratio > 1 widens the range
    where low-IoU pairs get one. Written (1 − IoU_inner) − (1 − IoU) with the base's ``1 − IoU`` term and
    IoU_inner from ``pair_geometry``'s arithmetic (eps = EPS), so ratio = 1 adds exactly 0.

    Choices, made deliberately:
    - Default ratio 0.7: the paper gives no single default, only the range [0.5, 1.5], with ratio < 1
      (smaller auxiliary boxes) for data dominated by high-IoU samples, as detection positives are; the
      authors' code defaults to 1.0, which is the plain loss.
    - Applies to the losses of the form 1 − IoU + penalties (``iou_based``, not the focused WIoU / WIoU v3 /
      PIoU v2, where the paper's additive rule is undefined and forks disagree).
    - The sum is clamped at 0: it is >= 0 mathematically, eps on the heights and rounding can make it -1e-8.

    Reference: Zhang, Xu, Zhang, "Inner-IoU: More Effective Intersection over Union Loss with Auxiliary
    Bounding Box", arXiv 2311.02877 (2023).
    """
    pred, target = promote(pred, target)  # once: both parts then share one (saturating) cast of a half input
    loss, terms = base_terms(pred, target)
    penalty = (1.0 - _inner_iou(pred, target, ratio)) - terms["iou"]  # IoU − IoU_inner
    return (loss + penalty).clamp(min=0), {**terms, "inner": penalty}


@BOX_LOSSES.register_wrapper(
    "focaler", applies=_focaler_applies, formula="L + IoU − IoU^focaler, IoU^focaler = clamp((IoU − d)/(u − d), 0, 1)",
    paper="Zhang, Zhang, Focaler-IoU: More Focused Intersection over Union Loss, arXiv 2401.10525",
    params={
        "d": Param(0.0, "lower end d of the IoU interval mapped linearly onto [0, 1] (authors' code: 0); needs "
                   "d < u", lambda d: 0 <= d < 1, "in [0, 1)"),
        "u": Param(0.95, "upper end u of that interval (authors' code: 0.95); needs d < u", lambda u: 0 < u <= 1,
                   "in (0, 1]"),
    },
    check=lambda kw: None if kw["d"] < kw["u"] else "d must be below u (the IoU interval [d, u] maps onto [0, 1])")
def focaler_terms(base_terms, pred: torch.Tensor, target: torch.Tensor, d: float = 0.0, u: float = 0.95):
    """Focaler-IoU version of a loss L: L_Focaler = L + IoU − IoU^focaler, per box.

    IoU^focaler = 0 for IoU < d, (IoU − d)/(u − d) for d <= IoU <= u, 1 above u: the linear interval
    [d, u] chooses which samples the IoU term focuses on (d > 0: hard ones, u < 1: easy ones). [d, u] = [0, 1]
    is the plain loss, exactly.

    Choices, made deliberately:
    - Defaults d = 0, u = 0.95 from the authors' code (github.com/malagoutou/Focaler-IoU).
    - d < u is checked across the two parameters by the registry when the loss is bound (a configuration error
      names both keys), and again here, on every direct call.
    - Applies to the losses of the form 1 − IoU + penalties, as Inner-IoU; the sum is clamped at 0 (above u the
      exact result L − (1 − IoU) can come out at −1e-8 by rounding).

    Reference: Zhang, Zhang, "Focaler-IoU: More Focused Intersection over Union Loss", arXiv 2401.10525 (2024),
    the piecewise-linear IoU^focaler and the L_Focaler-X definitions.
    """
    if not d < u:
        raise ValueError(f"focaler needs d < u (focaler_d < focaler_u), got d={d!r}, u={u!r}")
    loss, terms = base_terms(pred, target)
    iou = 1.0 - terms["iou"]
    focaler_iou = ((iou - d) / (u - d)).clamp(0, 1)
    penalty = iou - focaler_iou
    return (loss + penalty).clamp(min=0), {**terms, "focaler": penalty}


@BOX_LOSSES.register_wrapper(
    "alpha", applies=_alpha_applies, formula="1 − IoU^α + Σ penalty^α",
    paper="He et al., Alpha-IoU: A Family of Power Intersection over Union Losses for Bounding Box Regression, "
          "NeurIPS 2021, arXiv 2110.13675",
    params={"power": Param(3.0, "exponent α on every term (paper: 3)", lambda a: a > 0, "> 0")})
def alpha_terms(base_terms, pred: torch.Tensor, target: torch.Tensor, power: float = 3.0):
    """Alpha-IoU version of a loss: 1 − IoU^α + Σ_{penalty terms} term^α, per box.

    α-IoU = 1 − IoU^α, α-GIoU = 1 − IoU^α + (|C \\ (A ∪ B)| / |C|)^α, α-DIoU = 1 − IoU^α + (ρ²/c²)^α,
    α-CIoU = 1 − IoU^α + (ρ²/c²)^α + (β v)^α with β = v / (1 − IoU + v) from the plain IoU, detached (the
    authors' code), α-EIoU = 1 − IoU^α + (ρ²/c²)^α + (Δw²/C_w²)^α + (Δh²/C_h²)^α by the same rule.

    Choices, made deliberately:
    - Every penalty is raised as a whole, (ρ²/c²)^α as in the paper's equations; the authors' code
      (github.com/Jacobi93/Alpha-IoU) computes α-DIoU's term as (|Δx|^{2α} + |Δy|^{2α}) / (c_w^{2α} + c_h^{2α}),
      which differs for α != 1.
    - Each base is clamped at the dtype's smallest normal number before the power (no eps added, unlike the
      authors' (x + eps)^α), so α < 1 keeps finite gradients at 0 and no term goes negative (GIoU's empty
      fraction is about −2 eps / h at identical boxes).
    - α = 1 returns the wrapped loss and its terms unchanged: the formula there is the wrapped loss, and
      1 − (1 − (1 − IoU)) would differ from it by rounding.

    Reference: He, Erfani, Ma, Bailey, Chi, Hua, "Alpha-IoU: A Family of Power Intersection over Union Losses
    for Bounding Box Regression", NeurIPS 2021, arXiv 2110.13675.
    """
    loss, terms = base_terms(pred, target)
    if power == 1:
        return loss, terms
    tiny = torch.finfo(loss.dtype).tiny
    powered = {"iou": 1.0 - (1.0 - terms["iou"]).clamp(min=tiny).pow(power)}
    powered.update({name: term.clamp(min=tiny).pow(power) for name, term in terms.items() if name != "iou"})
    return sum(powered.values()), powered
