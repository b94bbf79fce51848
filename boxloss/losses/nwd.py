"""Normalized Gaussian Wasserstein Distance (NWD) loss, for tiny objects; not an IoU-type loss.

Each box is the 2-D Gaussian N((cx, cy), diag(w²/4, h²/4)); the 2-Wasserstein distance between two such
Gaussians is the Euclidean distance between (cx, cy, w/2, h/2) vectors, and NWD = exp(−W₂ / C) turns it into
a similarity in (0, 1] that, unlike IoU, still varies smoothly when tiny boxes do not overlap.
"""

from __future__ import annotations

from typing import Any

import torch

from ..registry import BOX_LOSSES
from ..param import Param
from ._geometry import EPS, _check_boxes, as_per_box, promote


def _nwd_terms(pred, target, constant=12.8, eps=EPS, *, stride=1.0):
    _check_boxes(pred, target)
    pred, target = promote(pred, target)
    px1, py1, px2, py2 = pred.unbind(-1)
    tx1, ty1, tx2, ty2 = target.unbind(-1)
    # differences of corresponding coordinates first: exactly 0 for identical boxes, also in float32
    centres_x, centres_y = ((px1 - tx1) + (px2 - tx2)) / 2, ((py1 - ty1) + (py2 - ty2)) / 2
    half_widths, half_heights = ((px2 - tx2) - (px1 - tx1)) / 2, ((py2 - ty2) - (py1 - ty1)) / 2
    wasserstein_squared = centres_x.pow(2) + centres_y.pow(2) + half_widths.pow(2) + half_heights.pow(2)
    # W₂ >= eps: √ has an infinite derivative at 0 (identical boxes); below the floor the gradient is 0
    wasserstein = wasserstein_squared.clamp(min=eps * eps).sqrt()
    constant_in_box_units = constant / as_per_box(stride, "stride", wasserstein)
    loss = -torch.expm1(-wasserstein / constant_in_box_units)  # 1 − NWD
    return loss, {"nwd": loss}


@BOX_LOSSES.register(
    "nwd", terms=_nwd_terms, context=("stride",),
    formula="1 − exp(−W₂ / C), W₂ = ‖(cx, cy, w/2, h/2) − (cx, cy, w/2, h/2)_gt‖, C in pixels",
    paper="Wang et al., A Normalized Gaussian Wasserstein Distance for Tiny Object Detection, arXiv 2110.13389",
    params={"constant": Param(12.8, "C in pixels: the dataset's average absolute object size (paper, AI-TOD: "
                              "12.8)", lambda c: c > 0, "> 0")})
def nwd_loss(pred: torch.Tensor, target: torch.Tensor, constant: float = 12.8, eps: float = EPS, *,
             stride: Any = 1.0) -> torch.Tensor:
    """NWD loss, 1 − NWD = 1 − exp(−√(W₂²) / C), per box.

    W₂² = ‖(cx_a, cy_a, w_a/2, h_a/2) − (cx_b, cy_b, w_b/2, h_b/2)‖².

    Choices, made deliberately:
    - C (``constant``) is in pixels, as in the paper (C = 12.8 px, AI-TOD's average absolute object size;
      the authors' ``wasserstein_loss``, github.com/jwwangchn/mmdet-aitod, hard-codes 12.8 on pixel boxes).
      NWD is not scale invariant, so the boxes' unit matters: with ``stride`` pixels per box unit, C in box
      units is C / stride. In YOLO's grid units the same 12.8 px is 1.6 units at stride 8, 0.8 at 16, 0.4 at 32: the
      criterion passes each anchor's stride, which makes the loss that of the pixel boxes.
    - W₂ is floored at eps before the square root (its derivative is infinite at identical boxes): the
      value changes by less than eps / C, the gradient is 0 below the floor. (The authors add eps inside the
      root, which leaves 1 − e^{−√eps / C} ≈ 2.5e-5 at identical boxes.)
    - NWD is registered without ``iou_based``: it is not 1 − IoU plus penalties, so the IoU wrappers do not
      apply to it.

    Args:
        pred, target: (N, 4) boxes, xyxy.
        constant: C > 0 in pixels (paper: 12.8 for AI-TOD).
        stride: pixels per box unit: a number, or a tensor of N values (any shape holding N, e.g. (N, 1)).

    Returns:
        (N,) loss in [0, 1).

    Reference: Wang, Xu, Yang, Yu, "A Normalized Gaussian Wasserstein Distance for Tiny Object Detection",
    arXiv 2110.13389 (2021).
    """
    return _nwd_terms(pred, target, constant, eps, stride=stride)[0]
