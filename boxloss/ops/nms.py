"""DIoU-NMS: greedy non-maximum suppression with the Distance-IoU criterion, class-agnostic and class-aware.

Pure torch (no torchvision, no ultralytics); same contract as ``torchvision.ops.nms``: xyxy boxes and scores
in, the indices of the kept boxes out, in descending score order.

Reference: Zheng et al., "Distance-IoU Loss: Faster and Better Learning for Bounding Box Regression",
AAAI 2020, arXiv 1911.08287, section "Non-Maximum Suppression using DIoU".
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["EVALUATION_NMS", "NMS_BOXES", "NMS_METHODS", "batched_diou_nms", "diou_nms"]

# The names of the NMS methods, for every key that chooses one (nms_method of a config, nms= of val.py and of the
# benchmark): ultralytics' ``non_max_suppression`` (standard), :func:`diou_nms` (axis-aligned boxes) or, for oriented
# boxes, ultralytics' rotated Fast-NMS on the exact polygon IoU instead of ProbIoU (exact; boxloss.yolo.postprocess);
# an evaluation may also take an end-to-end head's NMS-free output as it is (none).
NMS_METHODS = ("standard", "diou", "exact")
NMS_BOXES = {"diou": "xyxy", "exact": "xywhr"}  # the methods for one kind of box only (standard: both)
EVALUATION_NMS = (*NMS_METHODS, "none")

# Boxes are processed in score order, this many at a time: each block is compared with the boxes kept so far
# (K × block pairs) and then within itself (block² pairs). Larger blocks mean fewer Python steps and
# device syncs (good on a GPU), smaller ones less work on boxes already suppressed (good on a CPU).
_BLOCK = {"cpu": 512}
_DEFAULT_BLOCK = 4096
_KEPT_SLAB = 512  # kept boxes compared with a block at once: suppressed candidates drop out after each slab


def diou_nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float, beta: float = 1.0,
             max_keep: int | None = None) -> torch.Tensor:
    """Greedy DIoU-NMS: keep the highest-scored box M, suppress every B_i with IoU(M, B_i) − (ρ²/c²)^β >= ε.

    ρ is the distance between the centres of M and B_i, c the diagonal of the smallest box enclosing both,
    ε = ``iou_threshold``. The centre-distance penalty spares a box that overlaps M but is centred away from
    it (an occluded neighbour) where plain NMS would remove it. β = 1 is the paper's criterion; the β of
    YOLOv4's ``beta_nms`` (darknet ``box_diounms``) generalises it; as β → ∞ the penalty vanishes
    (ρ < c for any two boxes with area) and DIoU-NMS becomes plain NMS.

    Choices, made deliberately:
    - Suppression at ``>= ε``, as in the paper's rule (s_i = 0 if IoU − R_DIoU >= ε); torchvision's plain
      NMS suppresses at IoU ``> ε``. The two differ only on exact equality.
    - Ties in score are broken by index: of two equal scores, the box with the lower index comes first
      (a stable sort), and the output lists the kept boxes in that order.
    - A pair with no union area (two degenerate boxes) has IoU 0; two boxes reduced to the same point have
      ρ = c = 0 and penalty 0.
    - Computed in float32 (float64 if the boxes are float64).

    The result is exactly greedy NMS, computed without an N × N matrix: boxes are taken in score order in
    blocks; a block is first compared with the boxes kept so far, then its surviving boxes are resolved
    among themselves by rounds of parallel decisions (a box with a kept suppressor is suppressed; a box
    whose possible suppressors are all suppressed is kept; each round decides at least the first undecided
    box). For ε > 0 only overlapping pairs can suppress, so the quadratic part is a coordinate comparison;
    IoU and penalty are evaluated for the overlapping pairs only.

    Args:
        boxes: (N, 4) xyxy, x1 <= x2 and y1 <= y2.
        scores: (N,).
        iou_threshold: ε.
        beta: exponent β > 0 of the penalty (ρ²/c²)^β.
        max_keep: stop after this many kept boxes (the result is then the first ``max_keep`` of the full one).

    Returns:
        (K,) int64 indices into ``boxes``, in descending score order.

    Reference: Zheng et al., "Distance-IoU Loss", AAAI 2020, arXiv 1911.08287.
    """
    return _greedy_diou_nms(boxes, scores, None, iou_threshold, beta, max_keep)


def batched_diou_nms(boxes: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, iou_threshold: float,
                     beta: float = 1.0, max_keep: int | None = None) -> torch.Tensor:
    """Class-aware DIoU-NMS: as :func:`diou_nms`, but a box only suppresses boxes of its own class.

    The class test is part of the suppression rule (pairs of different classes are never suppression
    candidates), not the coordinate offset of ``torchvision.ops.batched_nms`` or ultralytics' ``max_wh``
    trick: offsets of thousands of pixels cost float32 precision (the ulp at 600,000 is 1/16 pixel), and an
    offset only keeps classes apart while the penalty is nonzero (for ε <= 0, disjoint boxes with an
    underflowing penalty (huge β) would suppress each other). Here within-class geometry is the boxes'
    own, and a box of one class cannot be suppressed by a box of another for any ε and β.

    Args:
        boxes: (N, 4) xyxy. scores: (N,). classes: (N,) class of each box, compared for equality (an
            integer tensor, or ultralytics' float class column).
        iou_threshold, beta, max_keep: as in :func:`diou_nms`.

    Returns:
        (K,) int64 indices into ``boxes``, in descending score order over all classes.
    """
    if classes.shape != scores.shape:
        raise ValueError(f"expected classes of shape {tuple(scores.shape)}, got {tuple(classes.shape)}")
    return _greedy_diou_nms(boxes, scores, classes, iou_threshold, beta, max_keep)


@dataclass
class _Boxes:
    """The boxes in score order: coordinates (N,) each, for the R × C comparisons, and one (N, 7) table of
    x1, y1, x2, y2, area, centre x, centre y, gathered with one indexing per list of pairs."""

    x1: torch.Tensor
    y1: torch.Tensor
    x2: torch.Tensor
    y2: torch.Tensor
    packed: torch.Tensor
    classes: torch.Tensor | None


def _greedy_diou_nms(boxes, scores, classes, iou_threshold, beta, max_keep):
    _check(boxes, scores, beta, max_keep)
    device = boxes.device
    n = boxes.shape[0]
    if n == 0 or max_keep == 0:
        return torch.empty(0, dtype=torch.int64, device=device)
    order = torch.sort(scores, descending=True, stable=True).indices  # ties: lower index first
    dtype = torch.float64 if boxes.dtype == torch.float64 else torch.float32
    x1, y1, x2, y2 = boxes[order].to(dtype).unbind(1)
    packed = torch.stack((x1, y1, x2, y2, (x2 - x1) * (y2 - y1), (x1 + x2) / 2, (y1 + y2) / 2), 1)  # [N, 7]
    geo = _Boxes(x1, y1, x2, y2, packed, None if classes is None else classes[order].to(device))

    block = _BLOCK.get(device.type, _DEFAULT_BLOCK)
    kept = torch.empty(0, dtype=torch.int64, device=device)  # positions in score order
    for start in range(0, n, block):
        candidates = torch.arange(start, min(start + block, n), device=device)
        for slab in kept.split(_KEPT_SLAB) if kept.numel() else ():  # suppressed by a box kept earlier
            if candidates.numel() == 0:
                break
            _, suppressed = _suppressing_pairs(geo, slab, candidates, iou_threshold, beta, upper=False)
            alive = torch.ones_like(candidates, dtype=torch.bool)
            alive[suppressed] = False
            candidates = candidates[alive]
        if candidates.numel():
            kept = torch.cat((kept, _resolve_block(geo, candidates, iou_threshold, beta)))
        if max_keep is not None and kept.numel() >= max_keep:
            break
    return order[kept[:max_keep]]


def _resolve_block(geo: _Boxes, candidates: torch.Tensor, iou_threshold: float, beta: float) -> torch.Tensor:
    """The greedy NMS result within ``candidates`` (positions in score order, ascending), by parallel rounds.

    State per box: undecided, kept or suppressed. Each round, an undecided box with a kept suppressor is
    suppressed, and one with no suppressor left undecided or kept is kept; edges from suppressed boxes and
    into decided ones are then dropped. The first undecided box has only decided suppressors, so every
    round decides at least one box: at most len(candidates) rounds, in practice a handful.
    """
    source, target = _suppressing_pairs(geo, candidates, candidates, iou_threshold, beta, upper=True)
    count = candidates.numel()
    undecided, kept, suppressed = 0, 1, 2
    state = torch.zeros(count, dtype=torch.int8, device=candidates.device)
    while True:
        is_undecided = state == undecided
        if not bool(is_undecided.any()):
            break
        source_state = state[source]
        hit = torch.zeros(count, dtype=torch.bool, device=state.device)
        hit[target[source_state == kept]] = True
        waiting = torch.zeros_like(hit)
        waiting[target[source_state == undecided]] = True
        state[is_undecided & hit] = suppressed
        state[is_undecided & ~hit & ~waiting] = kept
        live = (state[target] == undecided) & (state[source] != suppressed)
        source, target = source[live], target[live]
    return candidates[state == kept]


def _suppressing_pairs(geo: _Boxes, rows: torch.Tensor, cols: torch.Tensor, iou_threshold: float, beta: float,
                       upper: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Local index pairs (r, c) such that box rows[r] suppresses box cols[c]: DIoU >= ε, same class.

    ``upper``: rows and cols are the same boxes and only r < c counts (an earlier box suppresses a later
    one). For ε > 0 a suppressing pair must overlap (IoU >= ε > 0 needs a positive intersection), so the
    R × C work is four comparisons of coordinates; IoU and penalty are then computed only for the
    overlapping pairs, with the same arithmetic as for any pair. For ε <= 0 every pair is a candidate.
    """
    if iou_threshold > 0:
        candidate = ((geo.x1[rows, None] < geo.x2[None, cols]) & (geo.x1[None, cols] < geo.x2[rows, None])
                     & (geo.y1[rows, None] < geo.y2[None, cols]) & (geo.y1[None, cols] < geo.y2[rows, None]))
    else:
        candidate = torch.ones(rows.numel(), cols.numel(), dtype=torch.bool, device=rows.device)
    if upper:
        candidate.triu_(1)
    if geo.classes is not None:
        candidate &= geo.classes[rows, None] == geo.classes[None, cols]
    r, c = candidate.nonzero(as_tuple=True)  # [E]
    x1, y1, x2, y2, area, centre_x, centre_y = geo.packed[rows][r].unbind(1)  # [E] each, the suppressors
    u1, v1, u2, v2, other_area, other_x, other_y = geo.packed[cols][c].unbind(1)  # [E] each, the others
    inter = (x2.minimum(u2) - x1.maximum(u1)).clamp(min=0) * (y2.minimum(v2) - y1.maximum(v1)).clamp(min=0)
    union = area + other_area - inter
    iou = inter / union.clamp(min=torch.finfo(union.dtype).tiny)  # no union area: IoU 0
    centres_distance_squared = (centre_x - other_x).pow(2) + (centre_y - other_y).pow(2)
    diagonal_squared = (x2.maximum(u2) - x1.minimum(u1)).pow(2) + (y2.maximum(v2) - y1.minimum(v1)).pow(2)
    ratio = centres_distance_squared / diagonal_squared.clamp(min=torch.finfo(diagonal_squared.dtype).tiny)
    penalty = ratio if beta == 1 else ratio.pow(beta)
    suppress = iou - penalty >= iou_threshold
    return r[suppress], c[suppress]


def _check(boxes: torch.Tensor, scores: torch.Tensor, beta: float, max_keep: int | None) -> None:
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"expected boxes of shape (N, 4), got {tuple(boxes.shape)}")
    if scores.shape != boxes.shape[:1]:
        raise ValueError(f"expected scores of shape ({boxes.shape[0]},), got {tuple(scores.shape)}")
    if not (isinstance(beta, (int, float)) and beta > 0) or math.isnan(beta):
        raise ValueError(f"beta must be a number > 0, got {beta!r}")
    if max_keep is not None and (isinstance(max_keep, bool) or not isinstance(max_keep, int) or max_keep < 0):
        raise ValueError(f"max_keep must be None or an int >= 0, got {max_keep!r}")
