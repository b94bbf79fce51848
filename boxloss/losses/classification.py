"""Classification-side losses for the YOLO criterion: BCE (stock), focal, class-balanced, varifocal, QFL.

Classification losses take logits and (soft) targets of the same shape and return the elementwise loss;
YOLO's soft targets (task-aligned scores in [0, 1]) are allowed everywhere. Varifocal and QFL expect
IoU-aware targets (the IoU of the predicted box at the assigned class, 0 elsewhere). Also here: the
IoU-balanced weights of the positives. AP-loss, which returns a scalar, lives in ``ap_loss.py``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..registry import CLS_LOSSES
from ..param import Param


@CLS_LOSSES.register("bce", formula="−t log p − (1 − t) log(1 − p)", paper="ultralytics YOLOv8 (stock)")
def bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on logits, elementwise: ultralytics' stock classification loss."""
    return F.binary_cross_entropy_with_logits(logits, targets, reduction="none")


@CLS_LOSSES.register(
    "focal", formula="−α_t (1 − p_t)^γ log p_t", paper="Lin et al., Focal Loss for Dense Object Detection, "
    "ICCV 2017, arXiv 1708.02002",
    params={"gamma": Param(2.0, "focusing exponent γ (RetinaNet: 2)", lambda g: g >= 0, ">= 0"),
            "alpha": Param(0.25, "positive-class weight α in [0, 1]; -1 disables (RetinaNet: 0.25)",
                           lambda a: a == -1 or 0 <= a <= 1, "in [0, 1] or -1")})
def focal(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float = 0.25) -> torch.Tensor:
    """Sigmoid focal loss, elementwise: CE · (1 − p_t)^γ · α_t, with p_t = p t + (1 − p)(1 − t).

    γ = 0 and α = −1 give back BCE exactly.

    Reference: Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017, arXiv 1708.02002.
    """
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def iou_balanced_cls_weights(positive_ce: torch.Tensor, iou: torch.Tensor, eta: float = 1.5,
                             eps: float = 1e-12) -> torch.Tensor:
    """Weights of the positives' classification loss, wᵢ = IoUᵢ^η · Σ CE / Σ (IoU^η · CE), detached.

    The normaliser keeps the positives' loss sum unchanged; negatives keep weight 1 (not returned here).

    Args:
        positive_ce: (P,) classification loss of each positive.
        iou: (P,) IoU of each positive's predicted box with its target.
        eta: exponent η (paper: 1.5).

    Reference: Wu, Wang, Li, "IoU-balanced Loss Functions for Single-stage Object Detection", arXiv 1908.05641.
    """
    with torch.no_grad():
        scaled = iou.clamp(min=0).pow(eta)
        return scaled * positive_ce.sum() / (scaled * positive_ce).sum().clamp(min=eps)


def class_balanced_weights(class_counts: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-class weights w_c = (1 − β) / (1 − β^{n_c}), normalised so that Σ_c w_c = C (the number of classes).

    w_c is the inverse of the effective number of samples E_n = (1 − β^n) / (1 − β): β = 0 gives w_c = 1,
    β → 1 gives w_c ∝ 1/n_c. A class with no training box (n_c = 0: E_0 = 0, the formula divides by zero)
    gets weight 1, the mean, and stays out of the normalisation: the present classes are normalised to a
    mean of 1 among themselves, so Σ_c w_c = C still holds. Treating n = 0 as n = 1 instead would hand an
    absent class almost all of Σ w when β is near 1; weight 0 would silence its positives if the counts are
    stale. 1 − β^n is computed as −expm1(n log β), accurate for β near 1. Float64; no gradient.

    Args:
        class_counts: (C,) number of training boxes of each class, >= 0.
        beta: β in [0, 1) (paper: 0.9, 0.99, 0.999, 0.9999).

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, arXiv 1901.05555.
    """
    counts = torch.as_tensor(class_counts).detach().to(torch.float64)
    if counts.ndim != 1 or not torch.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"class_counts must be a (C,) tensor of finite counts >= 0, got {counts.tolist()}")
    if not 0 <= beta < 1:
        raise ValueError(f"beta must be in [0, 1), got {beta}")
    present = counts > 0
    weights = torch.ones_like(counts)
    if present.any():
        effective = -torch.expm1(counts[present] * math.log(beta)) if beta > 0 else torch.ones_like(counts[present])
        raw = (1 - beta) / effective
        weights[present] = raw * (present.sum() / raw.sum())
    return weights


@CLS_LOSSES.register_wrapper(
    "class_balanced", applies=lambda spec: spec.name in ("bce", "focal"), context=("class_counts",),
    fixes={"alpha": -1.0},
    formula="w_y · L, w_c = (1 − β)/(1 − β^{n_c}) with Σ_c w_c = C, y = the anchor's class (1 for background); "
            "focal without α_t (w_y replaces it)",
    paper="Cui et al., Class-Balanced Loss Based on Effective Number of Samples, CVPR 2019, arXiv 1901.05555",
    params={"beta": Param(0.999, "β of the effective number (1 − β^n)/(1 − β), in [0, 1); 0: the plain loss "
                                 "(paper: 0.9 ... 0.9999; its iNaturalist 2018 run: 0.999)",
                          lambda b: 0 <= b < 1, "in [0, 1)")})
def class_balanced(base_terms, logits: torch.Tensor, targets: torch.Tensor, beta: float = 0.999,
                   class_counts: torch.Tensor | None = None):
    """Class-balanced loss: the base loss (BCE or focal) of each anchor times the weight of its class.

    With focal, the class-balanced weight *replaces* focal's α_t, as in the paper's class-balanced focal loss
    (eq. 8: −(1 − β)/(1 − β^{n_y}) Σ_i (1 − p_i^t)^γ log p_i^t, no α) and its released code (the per-sample weight
    is passed as focal's ``alpha``): the wrapper fixes focal's ``alpha`` to −1 (off), so ``class_balanced_focal``
    has no α setting (``cls_focal_alpha`` does not act on it) and multiplies by w_y alone.

    As in the paper's sigmoid and focal versions (and its released code), the weight is per *sample*: every
    one of the C entries of an anchor (its positive entry and its C − 1 negative ones) is multiplied by
    w_y of the anchor's class y. The class of an anchor is the one with target > 0 (YOLO assigns one per
    foreground anchor; with several, the mean of their weights). Background anchors have no class and no
    n_y; they keep weight 1, the mean class weight, so the stock loss is unchanged on the >99% of entries
    that are background, and β = 0 gives back the base loss exactly. Weighting the whole class *column*
    instead (all anchors' entries of class c by w_c) is not what the paper does: it would also press the
    rare classes' scores down harder on every background anchor.

    Args:
        base_terms: the wrapped loss, ``(logits, targets) -> (loss, terms)``.
        logits, targets: (..., C), targets (soft) in [0, 1].
        beta: β in [0, 1).
        class_counts: (C,) training boxes per class (supplied by the caller; see ``class_balanced_weights``).

    Returns:
        ``(loss, terms)``, each of the shape of ``logits``.

    Reference: Cui et al., "Class-Balanced Loss Based on Effective Number of Samples", CVPR 2019, arXiv 1901.05555.
    """
    if class_counts is None:
        raise ValueError("class_balanced losses need class_counts=(C,) training box counts per class")
    weights = class_balanced_weights(class_counts, beta).to(device=logits.device)  # [C]
    if weights.numel() != targets.shape[-1]:
        raise ValueError(f"class_counts has {weights.numel()} classes, targets have {targets.shape[-1]}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    positive = (targets.detach() > 0).to(dtype)  # [..., C]
    num_positive = positive.sum(-1, keepdim=True)  # [..., 1]
    mean_weight = (positive * weights.to(dtype)).sum(-1, keepdim=True) / num_positive.clamp(min=1)
    anchor_weight = torch.where(num_positive > 0, mean_weight, torch.ones_like(mean_weight))  # [..., 1]
    loss, terms = base_terms(logits, targets)
    anchor_weight = anchor_weight.to(loss.dtype)
    return loss * anchor_weight, {name: term * anchor_weight for name, term in terms.items()}


@CLS_LOSSES.register(
    "varifocal", targets="iou", formula="−q (q log p + (1 − q) log(1 − p)) if q > 0, −α p^γ log(1 − p) if q = 0",
    paper="Zhang et al., VarifocalNet: An IoU-aware Dense Object Detector, CVPR 2021, arXiv 2008.13367",
    params={"alpha": Param(0.75, "weight α of the negatives (paper: 0.75)", lambda a: a >= 0, ">= 0"),
            "gamma": Param(2.0, "exponent γ of the negatives' modulating factor p^γ (paper: 2)",
                           lambda g: g >= 0, ">= 0")})
def varifocal(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.75, gamma: float = 2.0) -> torch.Tensor:
    """Varifocal loss, elementwise: BCE(p, q) · (q if q > 0 else α p^γ), p = sigmoid(logit).

    Positives (q > 0) are weighted by their own target q, so high-quality positives count more; only the
    negatives (q = 0) are down-weighted, by α p^γ.

    Choices, made deliberately:
    - ``targets`` are the IoU-aware targets q: the IoU of the predicted box with its ground truth at the
      assigned class, 0 elsewhere. They are detached here (VFNet computes them from the boxes and detaches
      them): no gradient reaches the boxes through the classification loss.
    - The modulating factor p^γ is *not* detached, as in the paper's formula and in the VFNet/mmdetection
      and ultralytics implementations: its gradient is part of the loss. It is computed as
      exp(γ · log σ(logit)), whose gradient stays finite for very negative logits (σ^γ with γ < 1 would give
      0 · ∞ there).

    Args:
        logits, targets: same shape, targets in [0, 1].
        alpha: weight of the negatives (0.75). gamma: exponent of p^γ (2).

    Reference: Zhang et al., "VarifocalNet: An IoU-aware Dense Object Detector", CVPR 2021, arXiv 2008.13367.
    """
    targets = targets.detach()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    negative_weight = alpha * torch.exp(gamma * F.logsigmoid(logits))  # α p^γ
    return ce * torch.where(targets > 0, targets, negative_weight)


@CLS_LOSSES.register(
    "qfl", targets="iou", formula="−|y − σ|^β ((1 − y) log(1 − σ) + y log σ)",
    paper="Li et al., Generalized Focal Loss, NeurIPS 2020, arXiv 2006.04388",
    params={"beta": Param(2.0, "exponent β of the modulating factor |y − σ|^β (paper: 2)",
                          lambda b: b >= 0, ">= 0")})
def qfl(logits: torch.Tensor, targets: torch.Tensor, beta: float = 2.0) -> torch.Tensor:
    """Quality Focal Loss, elementwise: BCE(σ, y) · |y − σ|^β, σ = sigmoid(logit).

    Focal loss extended to a continuous target y in [0, 1] (the IoU-aware quality of the assigned class, 0
    elsewhere): the loss vanishes where σ = y, for positives and negatives alike. β = 0 on 0/1 targets gives
    BCE exactly.

    Choices, made deliberately:
    - ``targets`` are detached (GFL computes the IoU target from detached boxes).
    - The factor |y − σ|^β is not detached, as in GFL's and mmdetection's implementations. Its base is
      clamped to the smallest normal float, which changes the value by less than that number to the power β
      but keeps the gradient finite where σ = y exactly (σ saturates to 1 in float32 for logits > 17; with
      β < 1 the unclamped gradient there would be 0 · ∞).

    Args:
        logits, targets: same shape, targets in [0, 1].
        beta: exponent β >= 0 (2).

    Reference: Li et al., "Generalized Focal Loss: Learning Qualified and Distributed Bounding Boxes for Dense
    Object Detection", NeurIPS 2020, arXiv 2006.04388.
    """
    targets = targets.detach()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    distance = (targets - logits.sigmoid()).abs().clamp(min=torch.finfo(ce.dtype).tiny)
    return ce * distance.pow(beta)
