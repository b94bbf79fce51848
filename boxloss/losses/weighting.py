"""IoU-balanced weighting of the localisation loss (wraps any registered box loss)."""

from __future__ import annotations

from typing import Callable

import torch

from ._geometry import EPS, aligned_iou


def iou_balanced_weights(iou: torch.Tensor, lam: float = 1.5, w_loc: float = 1.0) -> torch.Tensor:
    """wᵢ = w_loc · IoUᵢ^λ, detached: positives that are already well localised get more weight.

    Reference: Wu, Wang, Li, "IoU-balanced Loss Functions for Single-stage Object Detection",
    arXiv 1908.05641 (λ = 1.5 best; w_loc kept constant, batch normalisation of w was worse).
    """
    return w_loc * iou.detach().clamp(min=0).pow(lam)


def iou_balanced(loss_fn: Callable, lam: float = 1.5, w_loc: float = 1.0) -> Callable:
    """Wrap a per-box loss ``fn(pred, target, **kw) -> (N,)`` into ``w_loc · IoU^λ · fn(...)``.

    The weight carries no gradient; λ = 0 and w_loc = 1 give back ``loss_fn`` exactly.

    Reference: Wu, Wang, Li, "IoU-balanced Loss Functions for Single-stage Object Detection", arXiv 1908.05641.
    """

    def weighted(pred: torch.Tensor, target: torch.Tensor, **kwargs) -> torch.Tensor:
        weight = iou_balanced_weights(aligned_iou(pred.detach(), target.detach(), EPS), lam, w_loc)
        return weight * loss_fn(pred, target, **kwargs)

    weighted.__name__ = f"iou_balanced_{getattr(loss_fn, '__name__', 'loss')}"
    return weighted
