"""The simulation experiment of the DIoU paper, for any registered box loss: pure, vectorised torch.

Protocol (Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box Regression",
AAAI 2020, arXiv 1911.08287, section "Simulation Experiment"):

* 7 target boxes centred at (10, 10), area 1, aspect ratios w:h of 1:4, 1:3, 1:2, 1:1, 2:1, 3:1, 4:1;
* anchor centres drawn uniformly in the disc of radius 3 around (10, 10) (5,000 in the paper, seeded);
* at each centre, anchors of areas {0.5, 0.67, 0.75, 1, 1.33, 1.5, 2} x the same 7 aspect ratios;
* every anchor regressed to every target: centres x 7 x 7 x 7 cases (1,715,000 for 5,000 centres);
* plain gradient descent on each case's (x, y, w, h), B <- B - eta (2 - IoU) dL/dB, where
  eta = 0.1 for the first 80 % of the iterations, 0.01 up to 90 %, 0.001 after (iterations 1-160,
  161-180, 181-200 of the paper's 200) and the (2 - IoU) factor can be switched off;
* error per case |x - x_gt| + |y - y_gt| + |w - w_gt| + |h - h_gt|.

Implementation choices:

* Gradients are exact autograd gradients of *our* registered loss functions (``boxloss.get_loss``):
  (x, y, w, h) -> xyxy is part of the graph, and the per-box losses are summed so that each case gets
  its own gradient. (The paper's authors derived gradients by hand; they differ from autograd in places.)
* All cases are one batch, one loss call per iteration. This matters for ``focal_eiou`` with its default
  ``norm="batch"``: its (detached) weight IoU^gamma is divided by the mean weight over the call (the registry's
  normaliser), so a case's step size depends on the whole batch, as in the paper's normalised loss.
* (2 - IoU) uses the IoU of the box before the step (``boxloss.aligned_iou``), without gradient.
* Widths and heights are kept positive by clamping them to at least ``MIN_SIZE`` (1e-3) after every step.
* Cases are stored transposed, (4, N), so that the (N, 4) views handed to the losses have contiguous
  columns; float32 by default (coordinates near 10 resolve to ~1e-6).
* Non-overlapping boxes (IoU = 0 exactly) have zero IoU-loss gradient and zero Focal-EIoU weight: those
  losses leave them where they are. ``SimulationResult`` keeps the initial IoU so summaries can report
  the cases that start without overlap separately.

Case order: centre-major, then anchor area, anchor aspect ratio, target aspect ratio, i.e. a flat index
reshapes to (centres, 7, 7, 7).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import torch

from .losses import aligned_iou
from .registry import get_spec

__all__ = [
    "ASPECT_RATIOS", "ANCHOR_AREAS", "TARGET_CENTRE", "TARGET_AREA", "DISC_RADIUS", "MIN_SIZE", "Cases",
    "SimulationResult", "build_cases", "learning_rate", "simulate", "summarize",
]

ASPECT_RATIOS = (1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0)  # w / h: 1:4, 1:3, 1:2, 1:1, 2:1, 3:1, 4:1
ANCHOR_AREAS = (0.5, 0.67, 0.75, 1.0, 1.33, 1.5, 2.0)
TARGET_CENTRE = (10.0, 10.0)
TARGET_AREA = 1.0
DISC_RADIUS = 3.0
MIN_SIZE = 1e-3  # smallest width / height a box may reach (clamped after each step)
# What losses that need more than the boxes get (LossSpec.context): the 20 x 20 canvas the cases live in, in its own
# units (stride 1); a loss's declared state (WIoU v3's running mean) starts at its initial value, moved every step.
CONTEXT = {"image_size": (20.0, 20.0), "stride": 1.0}
LEARNING_RATES = ((0.8, 0.1), (0.9, 0.01), (1.0, 0.001))  # (up to this fraction of the iterations, eta)
SUCCESS_IOUS = (0.5, 0.9)  # the summary reports the fraction of cases that end above each


@dataclass(frozen=True)
class Cases:
    """The regression problems of the experiment; boxes are (x, y, w, h) stored as rows, shape (4, N)."""

    centres: torch.Tensor  # (C, 2) anchor centres
    anchors: torch.Tensor  # (4, N) initial boxes, N = C * 7 * 7 * 7
    targets: torch.Tensor  # (4, N) target boxes

    @property
    def num_cases(self) -> int:
        return self.anchors.shape[1]

    @property
    def num_centres(self) -> int:
        return self.centres.shape[0]


@dataclass
class SimulationResult:
    """What one loss did to every case; per-case tensors are (N,) unless noted."""

    loss: str
    params: dict  # the loss's keyword arguments (registry defaults unless overridden)
    error_curve: torch.Tensor  # (iterations + 1,) float64: total l1 error over all cases, iteration 0 first
    final_boxes: torch.Tensor  # (4, N) x, y, w, h after the last iteration
    final_error: torch.Tensor  # l1 error per case after the last iteration
    initial_iou: torch.Tensor
    final_iou: torch.Tensor
    centre_error: torch.Tensor  # (C,) summed final error of the C x 343 cases at each centre, float64
    seconds: float


def _sizes(areas: torch.Tensor, ratios: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of boxes of the given areas and aspect ratios w / h."""
    return (areas * ratios).sqrt(), (areas / ratios).sqrt()


def build_cases(num_centres: int = 5000, seed: int = 0, dtype: torch.dtype = torch.float32,
                device: torch.device | str = "cpu") -> Cases:
    """All anchor/target pairs of the experiment, centres x 7 anchor areas x 7 anchor ratios x 7 targets.

    Centres are uniform in the disc (radius ``DISC_RADIUS`` around ``TARGET_CENTRE``): r = R sqrt(u),
    theta = 2 pi v, drawn in float64 on the CPU from ``torch.Generator().manual_seed(seed)``, so the same
    seed gives the same centres on every device.
    """
    if num_centres < 1:
        raise ValueError(f"num_centres must be >= 1, got {num_centres}")
    generator = torch.Generator().manual_seed(seed)
    uniform = torch.rand(num_centres, 2, generator=generator, dtype=torch.float64)
    radius = DISC_RADIUS * uniform[:, 0].sqrt()
    angle = 2 * math.pi * uniform[:, 1]
    centres = torch.stack((TARGET_CENTRE[0] + radius * angle.cos(), TARGET_CENTRE[1] + radius * angle.sin()), 1)

    ratios = torch.tensor(ASPECT_RATIOS, dtype=torch.float64)
    anchor_w, anchor_h = _sizes(torch.tensor(ANCHOR_AREAS, dtype=torch.float64)[:, None], ratios[None, :])  # [7, 7]
    target_w, target_h = _sizes(torch.tensor(TARGET_AREA, dtype=torch.float64), ratios)  # [7]

    grid = (num_centres, len(ANCHOR_AREAS), len(ASPECT_RATIOS), len(ASPECT_RATIOS))  # [C, area, ratio, target]
    anchors = torch.stack((
        centres[:, 0, None, None, None].expand(grid),
        centres[:, 1, None, None, None].expand(grid),
        anchor_w[None, :, :, None].expand(grid),
        anchor_h[None, :, :, None].expand(grid),
    )).reshape(4, -1)
    targets = torch.stack((
        torch.full(grid, TARGET_CENTRE[0], dtype=torch.float64),
        torch.full(grid, TARGET_CENTRE[1], dtype=torch.float64),
        target_w.expand(grid),
        target_h.expand(grid),
    )).reshape(4, -1)
    to = dict(dtype=dtype, device=device)
    return Cases(centres.to(**to), anchors.to(**to).contiguous(), targets.to(**to).contiguous())


def learning_rate(iteration: int, iterations: int) -> float:
    """eta at ``iteration`` (1-based) of ``iterations``: 0.1 up to 80 %, 0.01 up to 90 %, 0.001 after.

    For 200 iterations: 0.1 for 1-160, 0.01 for 161-180, 0.001 for 181-200, as in the paper.
    """
    for fraction, eta in LEARNING_RATES:
        if iteration <= round(fraction * iterations):
            return eta
    return LEARNING_RATES[-1][1]


def _xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """(4, N) x, y, w, h -> (N, 4) x1, y1, x2, y2, a transposed view whose columns are contiguous."""
    x, y, w, h = boxes
    half_w, half_h = w / 2, h / 2
    return torch.stack((x - half_w, y - half_h, x + half_w, y + half_h)).T


def simulate(loss: str, cases: Cases, iterations: int = 200, iou_factor: bool = True,
             loss_params: Mapping | None = None,
             progress: Callable[[int, int], None] | None = None) -> SimulationResult:
    """Regress every anchor of ``cases`` onto its target by gradient descent on the registered ``loss``.

    Args:
        loss: a name from ``boxloss.list_losses()``.
        cases: from :func:`build_cases`; its dtype and device are used throughout.
        iterations: number of gradient steps (paper: 200); the learning-rate schedule scales with it.
        iou_factor: multiply each case's step by (2 - IoU) (paper: on).
        loss_params: hyper-parameters of the loss (checked by the registry); defaults for the ones not given.
        progress: called as ``progress(iteration, iterations)`` after each step.

    Returns:
        A :class:`SimulationResult`; ``error_curve[0]`` is the error before the first step.
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    bound = get_spec(loss).bind(**(loss_params or {}))
    started = time.perf_counter()
    targets = cases.targets
    target_xyxy = _xyxy(targets)  # (N, 4) view of a (4, N) tensor
    boxes = cases.anchors.clone().requires_grad_(True)  # [4, N], updated in place
    error_curve = torch.empty(iterations + 1, dtype=torch.float64, device=boxes.device)

    with torch.no_grad():
        initial_iou = aligned_iou(_xyxy(boxes), target_xyxy)
        error_curve[0] = (boxes - targets).abs().sum(dtype=torch.float64)
    context = bound.spec.call_context(CONTEXT)  # the canvas, in its own units, and the state's initial values
    for iteration in range(1, iterations + 1):
        pred_xyxy = _xyxy(boxes)
        per_box = bound(pred_xyxy, target_xyxy, **context)
        weights = bound.normalizer(pred_xyxy, target_xyxy)  # a weighted-mean loss (Focal-EIoU): Σ wL / mean w
        total = per_box.sum() if weights is None else per_box.sum() * (weights.numel() / weights.sum().clamp(min=1e-7))
        (grad,) = torch.autograd.grad(total, boxes)
        with torch.no_grad():
            step = grad.mul_(learning_rate(iteration, iterations))
            iou = aligned_iou(pred_xyxy.detach(), target_xyxy)
            if iou_factor:
                step.mul_(2 - iou)
            for state in bound.spec.state:  # e.g. WIoU v3's running mean: one update per step, as in training
                batch_mean = state.statistic(pred_xyxy.detach(), target_xyxy).mean().item()
                context[state.name] = bound.updated_state(state, context[state.name], batch_mean)
            boxes.sub_(step)
            boxes[2:].clamp_(min=MIN_SIZE)
            error_curve[iteration] = (boxes - targets).abs().sum(dtype=torch.float64)
        if progress is not None:
            progress(iteration, iterations)

    with torch.no_grad():
        final_boxes = boxes.detach()
        final_error = (final_boxes - targets).abs().sum(0)
        final_iou = aligned_iou(_xyxy(final_boxes), target_xyxy)
        centre_error = final_error.to(torch.float64).reshape(cases.num_centres, -1).sum(1)
    return SimulationResult(loss, dict(bound.kwargs), error_curve, final_boxes, final_error, initial_iou, final_iou,
                            centre_error, time.perf_counter() - started)


def _split(error: torch.Tensor, iou: torch.Tensor) -> dict:
    cases = error.numel()
    out = {"cases": cases}
    if cases == 0:
        return out
    out["mean_l1_error"] = error.to(torch.float64).mean().item()
    out["mean_iou"] = iou.to(torch.float64).mean().item()
    for threshold in SUCCESS_IOUS:
        out[f"frac_iou_above_{threshold}"] = (iou > threshold).to(torch.float64).mean().item()
    return out


def summarize(result: SimulationResult) -> dict:
    """Final metrics of one loss: over all cases, and over the cases that start without overlap (IoU = 0).

    Each split has ``cases``, ``mean_l1_error`` (per case), ``mean_iou`` and ``frac_iou_above_0.5`` /
    ``_0.9``; ``non_finite_cases`` counts boxes that ended with a NaN or infinite coordinate.
    """
    no_overlap = result.initial_iou == 0
    return {
        "loss": result.loss,
        "params": dict(result.params),
        "seconds": result.seconds,
        "initial_mean_l1_error": result.error_curve[0].item() / result.final_error.numel(),
        "all": _split(result.final_error, result.final_iou),
        "start_without_overlap": _split(result.final_error[no_overlap], result.final_iou[no_overlap]),
        "non_finite_cases": int((~result.final_boxes.isfinite().all(0)).sum()),
    }
