"""Shared geometry of aligned box pairs (pred[i] against target[i]), xyxy, computed once per call.

The arithmetic (eps on the heights, on the union and on the squared diagonal, the order of operations)
follows ultralytics' ``bbox_iou`` exactly, so that our CIoU reproduces the stock YOLOv8 criterion
bit for bit. Half-precision input is promoted to float32; float64 stays float64 (for gradcheck).

Half precision (:func:`promote`). A degenerate box has gradients of order 1/eps (eps = 1e-7 on the heights, the
union, the enclosing area): finite in float32, far beyond float16's largest value, 65504, so the cast back to the
half-precision input would make them ±inf. The promotion therefore hands a half/bfloat16 input its gradient
saturated at that dtype's largest finite value (same sign), and leaves float32 and float64 inputs untouched (no
extra graph node: the float32 path, values and gradients, is exactly as before).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch

EPS = 1e-7


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32 for half/bfloat16/float32 input, float64 when any input is float64."""
    return torch.float64 if any(t.dtype == torch.float64 for t in tensors) else torch.float32


class _SaturatingCast(torch.autograd.Function):
    """``x.to(dtype)``, whose backward returns the gradient in ``x``'s dtype clamped to its finite range."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        ctx.input_dtype = x.dtype
        return x.to(dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        limit = torch.finfo(ctx.input_dtype).max
        return grad.clamp(-limit, limit).to(ctx.input_dtype), None


def promote(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``tensors`` in the compute dtype; a lower-precision input's gradient saturates at its dtype's largest finite
    value instead of overflowing to ±inf (module docstring); same-dtype inputs are returned as they are."""
    dtype = compute_dtype(*tensors)
    return tuple(t if t.dtype == dtype else _SaturatingCast.apply(t, dtype) if t.requires_grad else t.to(dtype)
                 for t in tensors)


@dataclass
class PairGeometry:
    """Per-pair quantities, each of shape (N,); coordinates kept so later terms reuse one graph node."""

    pred: tuple  # (x1, y1, x2, y2) of the predictions, compute dtype
    target: tuple
    pred_w: torch.Tensor  # x2 - x1
    pred_h: torch.Tensor  # y2 - y1 + eps
    target_w: torch.Tensor
    target_h: torch.Tensor
    inter: torch.Tensor  # |A ∩ B|
    union: torch.Tensor  # |A ∪ B| + eps
    iou: torch.Tensor
    enclosing_w: torch.Tensor  # width of the smallest box enclosing both
    enclosing_h: torch.Tensor


def pair_geometry(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> PairGeometry:
    """Intersection, union, IoU and enclosing box of aligned pairs; pred, target: (N, 4) xyxy.

    Operations are created in ultralytics' order: autograd accumulates gradients in that order, which
    makes gradients, not just values, bit-identical to the stock CIoU.
    """
    _check_boxes(pred, target)
    pred, target = promote(pred, target)
    px1, py1, px2, py2 = pred.unbind(-1)
    tx1, ty1, tx2, ty2 = target.unbind(-1)
    pred_w, pred_h = px2 - px1, py2 - py1 + eps
    target_w, target_h = tx2 - tx1, ty2 - ty1 + eps
    inter = (px2.minimum(tx2) - px1.maximum(tx1)).clamp(0) * (py2.minimum(ty2) - py1.maximum(ty1)).clamp(0)
    union = pred_w * pred_h + target_w * target_h - inter + eps
    iou = inter / union
    enclosing_w = px2.maximum(tx2) - px1.minimum(tx1)
    enclosing_h = py2.maximum(ty2) - py1.minimum(ty1)
    return PairGeometry((px1, py1, px2, py2), (tx1, ty1, tx2, ty2), pred_w, pred_h, target_w, target_h, inter,
                        union, iou, enclosing_w, enclosing_h)


def centre_distance_ratio(geo: PairGeometry, eps: float = EPS) -> torch.Tensor:
    """ρ²(b, b_gt) / c²: squared centre distance over the squared diagonal of the enclosing box."""
    px1, py1, px2, py2 = geo.pred
    tx1, ty1, tx2, ty2 = geo.target
    diagonal_squared = geo.enclosing_w.pow(2) + geo.enclosing_h.pow(2) + eps
    centres_distance_squared = ((tx1 + tx2 - px1 - px2).pow(2) + (ty1 + ty2 - py1 - py2).pow(2)) / 4
    return centres_distance_squared / diagonal_squared


def aligned_iou(pred: torch.Tensor, target: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """IoU of aligned pairs, (N,)."""
    return pair_geometry(pred, target, eps).iou


def _check_boxes(pred: torch.Tensor, target: torch.Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 2 or pred.shape[-1] != 4:
        raise ValueError(f"expected pred and target of the same shape (N, 4), got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")


def is_number(value: Any) -> bool:
    """A finite real number (not a bool)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def is_positive_number(value: Any) -> bool:
    return is_number(value) and value > 0


def as_per_box(value: Any, name: str, like: torch.Tensor) -> torch.Tensor | float:
    """A positive number, or a tensor of 1 or N values (any shape, e.g. (N, 1)) as (N,) or 0-dim."""
    if isinstance(value, torch.Tensor):
        value = value.detach().to(device=like.device, dtype=like.dtype)
        if value.numel() == 1:
            return value.reshape(())
        if value.numel() != like.numel():
            raise ValueError(f"{name} must be a number or hold 1 or N = {like.numel()} values, got shape "
                             f"{tuple(value.shape)}")
        return value.reshape(like.shape)
    if not is_positive_number(value):
        raise ValueError(f"{name} must be a finite number > 0 or a tensor, got {value!r}")
    return float(value)
