"""Classification-side losses for the YOLO criterion: BCE (stock), focal loss, IoU-balanced weights.

Classification losses take logits and (soft) targets of the same shape and return the elementwise loss;
YOLO's soft targets (task-aligned scores in [0, 1]) are allowed everywhere.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..registry import CLS_LOSSES, Param


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
