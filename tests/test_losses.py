"""Tests for the box-regression losses (boxloss.losses: iou_family, l1_family, weighting).

Four kinds of evidence, each able to fail on its own:
1. independent implementations: torchvision's GIoU/DIoU/CIoU losses and box_iou, and ultralytics'
   ``bbox_iou(..., CIoU=True)`` (bit-exact, values and gradients);
2. cases derived by hand, with the derivation next to the numbers, for every registered box loss;
3. float64 ``gradcheck`` for every registered box loss (detached factors handled, see ``test_gradcheck``);
4. one contract every registered loss must meet (shape, zero at identical boxes, finite values and gradients
   on degenerate boxes, half precision, empty input, non-negativity), parametrized over ``list_losses()`` so
   a newly registered loss is tested with no edit here; plus the distance-awareness properties.
Rotated losses (``boxes="xywhr"``) meet the same contract on (N, 5) boxes (``_random_pairs``, ``DEGENERATE_ROTATED``);
their independent references and the rest of their evidence are in test_losses_rotated.py.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torchvision.ops as tvops
from ultralytics.utils.metrics import bbox_iou

from boxloss import aligned_iou, get_loss, get_spec, iou_balanced, list_losses
from boxloss.losses import aligned_rotated_iou, diou_loss, eiou_loss, iou_balanced_weights, reiou_loss
from boxloss.registry import BOX_LOSSES
from boxloss.testing.boxes import random_boxes, random_rotated_boxes  # the generators the speed benchmark uses too

REPO = Path(__file__).resolve().parents[1]
EPS = 1e-7  # the losses' default eps (ultralytics' placement: heights, union, c², enclosing area)





def _variants() -> list[tuple[str, dict]]:
    """(name, kwargs) for every registered box loss: its defaults, plus each non-default choice of a param."""
    variants = []
    for name in list_losses():
        variants.append((name, {}))
        for param, spec in get_spec(name).params.items():
            variants += [(name, {param: choice}) for choice in spec.choices if choice != spec.default]
    return variants


VARIANTS = _variants()
VARIANT_IDS = [name + "".join(f"[{k}={v}]" for k, v in kw.items()) for name, kw in VARIANTS]

# Example per-call context (LossSpec.context) for the losses that take it: a 640 × 640 input image, boxes in
# grid units of stride 8 (random_boxes' scale), and a running mean of 1 − IoU for WIoU v3.
EXAMPLE_CONTEXT = {"image_size": (640.0, 640.0), "stride": 8.0, "iou_mean": 0.5}


def _context(name: str) -> dict:
    """The example context values a registered loss takes (empty for most)."""
    return {key: EXAMPLE_CONTEXT[key] for key in get_spec(name).context}


def _boxes(rows, dtype=torch.float64, requires_grad=False):
    return torch.tensor(rows, dtype=dtype, requires_grad=requires_grad)


def _rotated(name: str) -> bool:
    """The loss takes rotated (N, 5) xywhr boxes (LossSpec.boxes)."""
    return get_spec(name).boxes == "xywhr"


def _random_pairs(name: str, n: int, seed: int, **kwargs) -> tuple[torch.Tensor, torch.Tensor]:
    """Random pairs of the kind of box the loss takes: random_boxes (xyxy) or random_rotated_boxes (xywhr)."""
    return (random_rotated_boxes if _rotated(name) else random_boxes)(n, seed, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# 1. Independent implementations
# ---------------------------------------------------------------------------------------------------------

def _eps_tolerance(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Bound on |ours − torchvision| that comes only from where eps = 1e-7 is added.

    Ours (ultralytics' arithmetic) adds eps to both heights, the union, c² and the enclosing area;
    torchvision adds eps to the union (IoU), c² and, for GIoU, the enclosing area in the denominator only.
    Adding eps to a height changes that box's area by the relative amount eps/h, and to a union, c² or an
    enclosing area by at most eps/(that quantity); every term of the losses is a ratio of such quantities
    with magnitude <= 1, so each term moves by a few eps / (smallest side or area), and the loss (at most
    four terms) by less than 10 eps / min side. In float64 the rounding error (~1e-16) is negligible next
    to that, so the bound is the tolerance.
    """
    sides = torch.cat((pred[:, 2:] - pred[:, :2], target[:, 2:] - target[:, :2]))
    return 10 * EPS / min(sides.min().item(), 1.0)


@pytest.fixture(scope="module")
def mixed_boxes():
    """Seeded float64 pairs, a quarter disjoint, the rest mostly overlapping (both kinds asserted present)."""
    pred, target = random_boxes(2000, seed=0, dtype=torch.float64)
    iou = tvops.box_iou(pred, target).diagonal()
    assert (iou == 0).sum() >= 400 and (iou > 0).sum() >= 1000
    return pred, target


@pytest.mark.parametrize("ours, reference", [
    ("giou", tvops.generalized_box_iou_loss),
    ("diou", tvops.distance_box_iou_loss),
    ("ciou", tvops.complete_box_iou_loss),
])
def test_matches_torchvision(mixed_boxes, ours, reference):
    pred, target = mixed_boxes
    expected = reference(pred, target, reduction="none")
    torch.testing.assert_close(get_loss(ours)(pred, target), expected, rtol=0, atol=_eps_tolerance(pred, target))


def test_iou_matches_torchvision_box_iou(mixed_boxes):
    pred, target = mixed_boxes
    expected = 1 - tvops.box_iou(pred, target).diagonal()
    torch.testing.assert_close(get_loss("iou")(pred, target), expected, rtol=0, atol=_eps_tolerance(pred, target))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_ciou_bit_exact_with_ultralytics_values_and_gradients(dtype):
    """Our CIoU is the stock YOLOv8 box loss operation for operation: values and gradients torch.equal."""
    pred, target = random_boxes(5000, seed=1, dtype=dtype)
    upstream = torch.rand(len(pred), generator=torch.Generator().manual_seed(2), dtype=dtype)  # non-uniform dL/dloss

    ours_p, ours_t = pred.clone().requires_grad_(), target.clone().requires_grad_()
    ours = get_loss("ciou")(ours_p, ours_t)
    ours.backward(upstream)

    ref_p, ref_t = pred.clone().requires_grad_(), target.clone().requires_grad_()
    ref = 1.0 - bbox_iou(ref_p, ref_t, xywh=False, CIoU=True).squeeze(-1)
    ref.backward(upstream)

    assert ours.dtype == ref.dtype == dtype
    assert torch.equal(ours, ref)
    assert torch.equal(ours_p.grad, ref_p.grad)
    assert torch.equal(ours_t.grad, ref_t.grad)


# ---------------------------------------------------------------------------------------------------------
# 2. Hand-derived cases
# ---------------------------------------------------------------------------------------------------------

# Case A: pred (0,0,2,2), target (1,1,3,3). Intersection (1,1)-(2,2) = 1, union 4 + 4 − 1 = 7, IoU = 1/7.
#   Enclosing box (0,0)-(3,3): Cw = Ch = 3, |C| = 9, c² = 9 + 9 = 18. Centres (1,1), (2,2): ρ² = 2.
#   Same size and aspect: width/height terms 0, v = 0.
A = ([[0, 0, 2, 2]], [[1, 1, 3, 3]])
A_IOU = 1 / 7
A_EIOU = 1 - A_IOU + 2 / 18  # + 0 + 0
# Case B (width-only mismatch): pred (0,0,4,2), target (0,0,2,2). Intersection 4, union 8 + 4 − 4 = 8,
#   IoU = 1/2. Enclosing box = pred: Cw = 4, Ch = 2, |C| = 8 = union, c² = 20. Centres (2,1), (1,1): ρ² = 1.
#   EIoU width term (4 − 2)²/4² = 1/4, height term 0.
#   CIoU: v = 4/π² (atan(2/2) − atan(4/2))², α = v / (1 − 1/2 + v).
B = ([[0, 0, 4, 2]], [[0, 0, 2, 2]])
B_IOU = 1 / 2
B_EIOU = 1 - B_IOU + 1 / 20 + 1 / 4
B_V = 4 / math.pi**2 * (math.atan(1) - math.atan(2)) ** 2
B_CIOU = 1 - B_IOU + 1 / 20 + B_V / (1 - B_IOU + B_V) * B_V
# Case B' (height-only mismatch): pred (0,0,2,4), the transpose of B: EIoU's height term (4 − 2)²/4² = 1/4.
#   CIoU: atan(1/2) = π/2 − atan 2, so (atan 1 − atan(1/2))² = (atan 2 − atan 1)²: same v, same loss as B.
B_T = ([[0, 0, 2, 4]], [[0, 0, 2, 2]])
# Case D (disjoint, side by side): pred (0,0,1,1), target (2,0,3,1). IoU = 0, union 2. Enclosing (0,0)-(3,1):
#   |C| = 3, c² = 9 + 1 = 10. Centres (0.5,0.5), (2.5,0.5): ρ² = 4. Same size and aspect.
D = ([[0, 0, 1, 1]], [[2, 0, 3, 1]])
# Focal-EIoU over A and B: lossᵢ = wᵢ EIoUᵢ, wᵢ = IoUᵢ^γ (the normaliser Σ w is applied by the caller).
AB = (A[0] + B[0], A[1] + B[1])

# Coordinate losses. Case L: pred (0, 0, 10.5, 12), target (0.5, 0, 10, 10): per-coordinate errors
#   x = |Δ| = (0.5, 0, 0.5, 2): two below 1, one zero, one above 1 (both branches of both losses).
L = ([[0, 0, 10.5, 12]], [[0.5, 0, 10, 10]])
# Smooth L1, β = 1: 0.5·0.5²/1 twice + 0 + (2 − 0.5) = 0.125 + 0.125 + 1.5 = 1.75.
#   β = 0.5: |0.5| is not < β, so linear: (0.5 − 0.25) twice + (2 − 0.25) = 0.25 + 0.25 + 1.75 = 2.25.
# Case L2: errors (0.3, 0.2, 0, 0), β = 0.25: 0.3 ≥ β → 0.3 − 0.125 = 0.175; 0.2 < β → 0.5·0.04/0.25 = 0.08.
L2 = ([[0, 0, 10, 10]], [[0.3, -0.2, 10, 10]])
# Focal L1, β = 0.8, α = e β: inner(x) = −α x² (2 ln(βx) − 1)/4, outer(x) = −α ln β · x + C with
#   C = α (2 ln β + 1)/4 (continuity at x = 1). Case L: 2·inner(0.5) + inner(0) + outer(2), inner(0) = 0.
_BETA = 0.8
_ALPHA = math.e * _BETA


def _focal_l1_inner(x, beta=_BETA):
    return -math.e * beta * x**2 * (2 * math.log(beta * x) - 1) / 4


def _focal_l1_outer(x, beta=_BETA):
    alpha = math.e * beta
    return -alpha * math.log(beta) * x + alpha * (2 * math.log(beta) + 1) / 4


# SIoU, WIoU, MPDIoU, Shape-IoU, PIoU v2, NWD (boxloss.losses.iou_variants, nwd); context in the kwargs.
# Case A: centre offset (Δx, Δy) = (1, 1), α = 45°: Λ = sin 2α = 1, γ = 2 − Λ = 1; ρ_x = ρ_y = (1/3)² = 1/9;
#   same sizes: Ω = 0. SIoU = 1 − 1/7 + (Δ + Ω)/2, Δ = 2 (1 − e^{−1/9}).
A_SIOU = 1 - A_IOU + (1 - math.exp(-1 / 9))
# Case B: offset (−1, 0): Λ = 0, γ = 2; ρ_x = (1/4)², ρ_y = 0: Δ = 1 − e^{−2/16}. ω_w = |4 − 2|/4 = 1/2, ω_h = 0.
B_SIOU = 1 - B_IOU + ((1 - math.exp(-1 / 8)) + (1 - math.exp(-1 / 2)) ** 4) / 2
# Case G (generic angle, disjoint): pred (0,0,2,2), target (1,3,3,5). IoU = 0 (y ranges [0,2], [3,5]). Centres
#   (1,1), (2,4): offset (1, 3), σ² = 10. The paper: x = c_h/σ = 3/√10, arcsin x = 71.57°,
#   Λ = 1 − 2 sin²(71.57° − 45°) = 1 − 2 · 0.2 = 3/5 (tan 26.57° = 1/2, sin² = 1/5); the smaller angle 18.43°
#   gives sin(2 · 18.43°) = 3/5 too. γ = 7/5. Enclosing (0,0)-(3,5): ρ_x = 1/9, ρ_y = 9/25. Same sizes: Ω = 0.
G = ([[0, 0, 2, 2]], [[1, 3, 3, 5]])
G_SIOU = 1 + ((1 - math.exp(-7 / 5 / 9)) + (1 - math.exp(-7 / 5 * 9 / 25))) / 2
# Case S (non-square target): pred (1,1,3,3), target (0,0,4,2). Intersection (1,1)-(3,2) = 2, union
#   4 + 8 − 2 = 10, IoU = 1/5. Enclosing (0,0)-(4,3): c² = 25. Centres (2,2), (2,1): offset (0, −1).
#   SIoU: Λ = 0, γ = 2, ρ_y = (1/3)²: Δ = 1 − e^{−2/9}; ω_w = |2 − 4|/4 = 1/2, ω_h = 0.
S = ([[1, 1, 3, 3]], [[0, 0, 4, 2]])
S_SIOU = 1 - 1 / 5 + ((1 - math.exp(-2 / 9)) + (1 - math.exp(-1 / 2)) ** 4) / 2
#   Shape-IoU, scale 1: ww = 2·4/(4 + 2) = 4/3, hh = 2·2/6 = 2/3; distance = (hh · 0² + ww · 1²)/25 = 4/75;
#   ω_w = hh |2 − 4|/4 = 1/3, ω_h = ww |2 − 2|/2 = 0: L = 4/5 + 4/75 + 0.5 (1 − e^{−1/3})⁴. (ww and hh swapped
#   would give 4/5 + 2/75 + 0.5 (1 − e^{−2/3})⁴.) Scale 0: ww = hh = 1: L = 4/5 + 1/25 + 0.5 (1 − e^{−1/2})⁴.
S_SHAPE_IOU_1 = 1 - 1 / 5 + 4 / 75 + 0.5 * (1 - math.exp(-1 / 3)) ** 4
S_SHAPE_IOU_0 = 1 - 1 / 5 + 1 / 25 + 0.5 * (1 - math.exp(-1 / 2)) ** 4
# WIoU v1 = exp(ρ²/c²) (1 − IoU): A: e^{2/18} · 6/7; B: e^{1/20} · 1/2; G: c² = 9 + 25, ρ² = 10: e^{10/34}.
# WIoU v3 = r · WIoU v1, r = β / (δ α^(β − δ)), α = 1.9, δ = 3. One box with iou_mean=None: β = 1, r = 1.9²/3.
#   iou_mean = 0.5 on A: β = (6/7)/0.5 = 12/7. A and B together, iou_mean=None: mean = (6/7 + 1/2)/2 = 19/28,
#   β_A = 24/19, β_B = 14/19.


def _wiou_v3_r(beta, alpha=1.9, delta=3.0):
    return beta / (delta * alpha ** (beta - delta))


A_WIOU, B_WIOU = math.exp(2 / 18) * (1 - A_IOU), math.exp(1 / 20) * (1 - B_IOU)
# MPDIoU with image_size (8, 6): w² + h² = 100. A: d1² = 1 + 1, d2² = 1 + 1: 6/7 + 4/100. B: d1 = 0,
#   d2² = (4 − 2)²: 1/2 + 4/100. G: d1² = 1 + 9, d2² = 1 + 9: 1 + 20/100. A with stride 2 (2 px per box unit):
#   each d² is 4 × 2 = 8 px²: 6/7 + 16/100.
IMAGE = {"image_size": (8, 6)}
A_MPDIOU = 1 - A_IOU + 4 / 100
# Shape-IoU on A: square target, ww = hh = 1 for any scale; same sizes: DIoU's 6/7 + 2/18.
A_SHAPE_IOU = 1 - A_IOU + 2 / 18
# PIoU v2 = u(λ e^{−P}) (2 − IoU − e^{−P²}), u(x) = 3x e^{−x²}, λ = 1.3. A: edges (|0 − 1| + |2 − 3|)/w_gt = 1 in x
#   and in y: P = (1 + 1)/4 = 1/2. B: x edges (0 + 2)/2 = 1, y edges 0: P = 1/4.


def _piou_v2(iou, p, lam=1.3):
    x = lam * math.exp(-p)
    return 3 * x * math.exp(-x * x) * (1 - iou + 1 - math.exp(-p * p))


# NWD = 1 − exp(−W₂/C), W₂² = Δcx² + Δcy² + (Δw/2)² + (Δh/2)², C = 12.8 / stride. A: W₂² = 1 + 1 = 2.
#   L (above): centres (5.25, 6), (5.25, 5); widths 10.5, 9.5; heights 12, 10: W₂² = 0 + 1 + 0.5² + 1² = 2.25.
A_NWD = 1 - math.exp(-math.sqrt(2) / 12.8)
# Wrappers on case A. Inner (ratio 0.7): auxiliary boxes (0.3,0.3)-(1.7,1.7) and (1.3,1.3)-(2.7,2.7): intersection
#   0.4² = 0.16, areas 1.4² = 1.96, union 3.76: IoU_inner = 0.16/3.76 = 2/47; ratio 0.5: (0.5,0.5)-(1.5,1.5) and
#   (1.5,1.5)-(2.5,2.5) touch at a corner, IoU_inner = 0; ratio 1.5: (−0.5,−0.5)-(2.5,2.5), (0.5,0.5)-(3.5,3.5):
#   intersection 4, union 9 + 9 − 4 = 14, IoU_inner = 2/7. L_Inner = L + IoU − IoU_inner.
A_INNER_IOU = 0.16 / 3.76
# Focaler (d = 0, u = 0.95): IoU^focaler = (1/7)/0.95. d = 0.1, u = 0.5: (1/7 − 0.1)/0.4 = 3/28. L + IoU − IoU^focaler.
A_FOCALER_IOU = A_IOU / 0.95
# Hand values on case A of every loss the Inner and Focaler wrappers apply to.
A_ADDITIVE = {"iou": 1 - A_IOU, "giou": 1 - A_IOU + 2 / 9, "diou": 1 - A_IOU + 2 / 18, "ciou": 1 - A_IOU + 2 / 18,
              "eiou": A_EIOU, "siou": A_SIOU, "mpdiou": A_MPDIOU, "shape_iou": A_SHAPE_IOU}
A_CONTEXT = {"mpdiou": IMAGE}
# Alpha (power 3): 1 − IoU³ + Σ term³. A: GIoU's empty fraction 2/9, DIoU's ρ²/c² = 1/9, v = 0, EIoU's w, h 0.
#   B: ρ²/c² = 1/20, CIoU's αv = B_V²/(1/2 + B_V), EIoU's width term 1/4. D: IoU 0, GIoU's (3 − 2)/3.

HAND_CASES = [
    # (loss, kwargs, (pred, target), expected per box)
    ("iou", {}, A, [1 - A_IOU]),
    ("iou", {}, B, [1 - B_IOU]),
    ("iou", {}, D, [1.0]),
    ("giou", {}, A, [1 - A_IOU + 2 / 9]),  # |C \ (A ∪ B)| / |C| = (9 − 7)/9
    ("giou", {}, B, [1 - B_IOU]),  # C = A ∪ B: no empty part
    ("giou", {}, D, [1 + 1 / 3]),  # (3 − 2)/3
    ("diou", {}, A, [1 - A_IOU + 2 / 18]),
    ("diou", {}, B, [1 - B_IOU + 1 / 20]),
    ("diou", {}, D, [1 + 4 / 10]),
    ("ciou", {}, A, [1 - A_IOU + 2 / 18]),  # v = 0: CIoU = DIoU
    ("ciou", {}, B, [B_CIOU]),
    ("ciou", {}, B_T, [B_CIOU]),
    ("ciou", {}, D, [1 + 4 / 10]),
    ("eiou", {}, A, [A_EIOU]),  # 1 − 1/7 + 2/18 + 0 + 0
    ("eiou", {}, B, [B_EIOU]),  # 1/2 + 1/20 + 1/4 = 0.8
    ("eiou", {}, B_T, [B_EIOU]),  # height term instead of width term
    ("eiou", {}, D, [1 + 4 / 10]),
    ("focal_eiou", {"norm": "none"}, A, [A_IOU**0.5 * A_EIOU]),  # IoU^γ · EIoU
    ("focal_eiou", {"norm": "none", "gamma": 2.0}, B, [B_IOU**2 * B_EIOU]),
    ("focal_eiou", {"norm": "none"}, D, [0.0]),  # IoU = 0: weight 0
    ("focal_eiou", {"norm": "batch"}, AB, [A_IOU**0.5 * A_EIOU, B_IOU**0.5 * B_EIOU]),  # wᵢ Lᵢ: the numerator
    ("focal_eiou", {}, A, [A_IOU**0.5 * A_EIOU]),  # the normaliser w is the caller's (see the next test)
    ("smooth_l1", {"units": "grid"}, L, [1.75]),
    ("smooth_l1", {"units": "grid", "beta": 0.5}, L, [2.25]),
    ("smooth_l1", {"units": "grid", "beta": 0.25}, L2, [0.175 + 0.08]),
    # box units: the x errors over the target width 9.5, the y errors over its height 10 (+ eps), all below β = 1
    ("smooth_l1", {}, L, [0.5 * ((0.5 / (9.5 + EPS)) ** 2 * 2 + (2 / (10 + EPS)) ** 2)]),
    ("focal_l1", {"units": "grid"}, L, [2 * _focal_l1_inner(0.5) + _focal_l1_outer(2.0)]),
    ("focal_l1", {"units": "grid"}, A, [4 * _focal_l1_inner(1.0)]),  # x = 1: inner branch, = outer(1)
    ("focal_l1", {"units": "grid", "beta": 1.0}, L, [2 * _focal_l1_inner(0.5, 1.0) + _focal_l1_outer(2.0, 1.0)]),
    ("focal_l1", {}, L, [2 * _focal_l1_inner(0.5 / (9.5 + EPS)) + _focal_l1_inner(2 / (10 + EPS))]),
    ("siou", {}, A, [A_SIOU]),
    ("siou", {}, B, [B_SIOU]),
    ("siou", {}, G, [G_SIOU]),
    ("siou", {}, S, [S_SIOU]),
    ("siou", {"theta": 2.0}, B, [1 - B_IOU + ((1 - math.exp(-1 / 8)) + (1 - math.exp(-1 / 2)) ** 2) / 2]),
    ("wiou", {}, A, [A_WIOU]),
    ("wiou", {}, B, [B_WIOU]),
    ("wiou", {}, G, [math.exp(10 / 34)]),
    ("wiou", {}, D, [math.exp(4 / 10)]),  # ρ² = 4, c² = 10, IoU = 0
    ("wiou_v3", {}, A, [_wiou_v3_r(1.0) * A_WIOU]),
    ("wiou_v3", {"iou_mean": 0.5}, A, [_wiou_v3_r(12 / 7) * A_WIOU]),
    ("wiou_v3", {"iou_mean": 0.5, "alpha": 1.5, "delta": 2.0}, A, [_wiou_v3_r(12 / 7, 1.5, 2.0) * A_WIOU]),
    ("wiou_v3", {}, AB, [_wiou_v3_r(24 / 19) * A_WIOU, _wiou_v3_r(14 / 19) * B_WIOU]),
    ("mpdiou", IMAGE, A, [A_MPDIOU]),
    ("mpdiou", IMAGE, B, [1 - B_IOU + 4 / 100]),
    ("mpdiou", IMAGE, G, [1 + 20 / 100]),
    ("mpdiou", {**IMAGE, "stride": 2.0}, A, [1 - A_IOU + 16 / 100]),
    ("shape_iou", {}, A, [A_SHAPE_IOU]),
    ("shape_iou", {"scale": 1.0}, A, [A_SHAPE_IOU]),
    ("shape_iou", {}, S, [S_SHAPE_IOU_0]),
    ("shape_iou", {"scale": 1.0}, S, [S_SHAPE_IOU_1]),
    ("piou_v2", {}, A, [_piou_v2(A_IOU, 1 / 2)]),
    ("piou_v2", {}, B, [_piou_v2(B_IOU, 1 / 4)]),
    ("piou_v2", {"lam": 1.0}, B, [_piou_v2(B_IOU, 1 / 4, 1.0)]),
    ("nwd", {}, A, [A_NWD]),
    ("nwd", {"stride": 2.0}, A, [1 - math.exp(-math.sqrt(2) / 6.4)]),  # C = 12.8 px = 6.4 units of 2 px
    ("nwd", {"constant": 3.0}, L, [1 - math.exp(-1.5 / 3.0)]),
    ("inner_iou", {"ratio": 0.5}, A, [1.0]),  # 6/7 + 1/7 − 0
    ("inner_iou", {"ratio": 1.5}, A, [5 / 7]),  # 6/7 + 1/7 − 2/7
    ("focaler_iou", {"d": 0.1, "u": 0.5}, A, [1 - 3 / 28]),
    ("focaler_iou", {"u": 0.4}, B, [0.0]),  # IoU = 1/2 > u: IoU^focaler = 1, L = 1/2 + 1/2 − 1
    ("focaler_iou", {"d": 0.1}, D, [1.0]),  # IoU = 0 < d: IoU^focaler = 0
    ("alpha_iou", {}, A, [1 - A_IOU**3]),
    ("alpha_iou", {"power": 2.0}, B, [1 - B_IOU**2]),
    ("alpha_giou", {}, A, [1 - A_IOU**3 + (2 / 9) ** 3]),
    ("alpha_giou", {}, D, [1 + (1 / 3) ** 3]),
    ("alpha_diou", {}, A, [1 - A_IOU**3 + (1 / 9) ** 3]),
    ("alpha_diou", {}, B, [1 - B_IOU**3 + (1 / 20) ** 3]),
    ("alpha_ciou", {}, A, [1 - A_IOU**3 + (1 / 9) ** 3]),  # v = 0
    ("alpha_ciou", {}, B, [1 - B_IOU**3 + (1 / 20) ** 3 + (B_V / (1 - B_IOU + B_V) * B_V) ** 3]),
    ("alpha_eiou", {}, A, [1 - A_IOU**3 + (1 / 9) ** 3]),
    ("alpha_eiou", {}, B, [1 - B_IOU**3 + (1 / 20) ** 3 + (1 / 4) ** 3]),
]
# Every Inner- and Focaler- loss on case A, from the base's hand value above.
HAND_CASES += [(f"inner_{base}", A_CONTEXT.get(base, {}), A, [value + A_IOU - A_INNER_IOU])
               for base, value in A_ADDITIVE.items()]
HAND_CASES += [(f"focaler_{base}", A_CONTEXT.get(base, {}), A, [value + A_IOU - A_FOCALER_IOU])
               for base, value in A_ADDITIVE.items()]

# Rotated boxes, xywhr (centre x, y, width, height, angle in radians; ultralytics' convention).
# Case RS (shifted along the width): pred (0, 0, 4, 2, 0), target (2, 0, 4, 2, 0). Same size and angle.
#   ProbIoU: Σp = Σt = diag(a, b), a = 4²/12 + 0.01, b = 2²/12 + 0.01 (floor 0.01). The Bhattacharyya distance's
#   log-det term is ½ ln(det Σ̄ / √(det Σp det Σt)) = 0 (Σ̄ = (Σp + Σt)/2 = Σp), its centre term
#   Δμᵀ Σ̄⁻¹ Δμ / 8 = 2²/(8a): 1 − ProbIoU = √(1 − e^{−B}), B = 1/(2a).
# Case RT: RS with both boxes turned by 0.7 rad about the origin (the centres too): every loss is unchanged.
# Case SQ45: a 4 × 4 square at (5, 5) turned by π/4 against itself. The Gaussians coincide (isotropic): ProbIoU's
#   B = 0 is clamped to eps, 1 − ProbIoU = √(1 − e^{−eps} + eps) ≈ √(2 eps).
RS = ([[0, 0, 4, 2, 0]], [[2, 0, 4, 2, 0]])
RT = ([[0, 0, 4, 2, 0.7]], [[2 * math.cos(0.7), 2 * math.sin(0.7), 4, 2, 0.7]])
SQ45 = ([[5, 5, 4, 4, math.pi / 4]], [[5, 5, 4, 4, 0]])
RS_PROBIOU = math.sqrt(1 - math.exp(-1 / (2 * (16 / 12 + 0.01))))
# Case R90: pred (0, 0, 4, 2, π/2), target (0, 0, 4, 2, 0): the same centre, the box turned by a quarter.
#   ProbIoU: Σp = diag(b, a), Σt = diag(a, b) (a, b as in RS): Σ̄ = (a + b)/2 · I, no centre term,
#   B = ½ ln(det Σ̄ / √(det Σp det Σt)) = ln((a + b) / (2√(ab))): 1 − ProbIoU = √(1 − 2√(ab)/(a + b)).
R90 = ([[0, 0, 4, 2, math.pi / 2]], [[0, 0, 4, 2, 0]])
_A, _B = 16 / 12 + 0.01, 4 / 12 + 0.01
R90_PROBIOU = math.sqrt(1 - 2 * math.sqrt(_A * _B) / (_A + _B))
# KLD (k = 4: Σ = R diag(w²/4, h²/4) Rᵀ), D = Δμᵀ Σt⁻¹ Δμ + tr(Σt⁻¹ Σp) + ln(|Σt|/|Σp|) − 2, loss 1 − 1/(τ + ln(1 + D)):
#   RS: Σp = Σt = diag(4, 1): D = 2²/4 + 2 + 0 − 2 = 1. R90: Σp = diag(1, 4), Σt = diag(4, 1): D = 1/4 + 4 − 2 = 9/4.
#   SQ45 (and identical boxes): D = 0, clamped at 1e-6.
# GWD (normalised, log1p): W₂² = ‖Δμ‖² + ‖Σp^½ − Σt^½‖²_F when the covariances commute (both cases here), over
#   s² = √(w_p h_p w_t h_t) = √64 = 8. RS: W₂² = 4: log1p(√(4/8)). R90: Σp^½ = diag(1, 2), Σt^½ = diag(2, 1): W₂² = 2,
#   log1p(1/2); α = 2: W₂² = 4 · 2 = 8, log1p(1). Unnormalised RS: log1p(2). τ = 1: 1 − 1/(1 + log1p(·)).
# KFIoU: V = 4√|Σ| = w h = 8 for both; Σ∩ = (Σp⁻¹ + Σt⁻¹)⁻¹. RS: Σ∩ = Σ/2, V∩ = 4, KFIoU = 4/(16 − 4) = 1/3. R90:
#   Σ∩ = diag(1/(1 + 1/4), 1/(1/4 + 1)) = 0.8 I, V∩ = 3.2, KFIoU = 3.2/12.8 = 1/4. Centre term (smooth L1, β = 1/9) of
#   the offset over the target's sides: RS (2/4, 0): 0.5 − β/2 (β = 1: 0.5 · 0.5² / 1); R90: 0.
# Polygon losses. RS: [−2, 2] × [−1, 1] against [0, 4] × [−1, 1]: intersection 4, union 12, IoU 1/3; the hull is
#   [−2, 4] × [−1, 1] = the union (GIoU term 0); C (aligned to the target) = the hull: c² = 36 + 4, ρ² = 4, same sides:
#   REIoU = 2/3 + 4/40 = EIoU of the xyxy boxes. RT: the same numbers (C turns with the target).
# SQ45: intersection the regular octagon 2(√2 − 1) s², union 2 s² − that, IoU = 1/√2; hull the octagon of
#   circumradius s/√2, area √2 s²: (hull − union)/hull = 3 − 2√2; C (target-aligned) has side s√2 around the same
#   centre and the sides pair (a square): REIoU = 1 − 1/√2.
# RP (pairing by orientation): pred (0, 0, 2, 4, π/2) is the box 4 × 2 at angle 0, target (1, 0, 4, 2, 0):
#   intersection 3 × 2 = 6, union 16 − 6 = 10, IoU 3/5; C = [−2, 3] × [−1, 1]: c² = 25 + 4, ρ² = 1; the prediction's
#   sides paired with the target's are (4, 2): REIoU = 2/5 + 1/29 + 0 + 0 (unpaired, (2, 4): + 4/25 + 4/4).
# D_ROT: the xyxy case D as xywhr, (0.5, 0.5, 1, 1, 0) and (2.5, 0.5, 1, 1, 0): IoU 0, hull = C = [0, 3] × [0, 1]:
#   RGIoU = 1 + 1/3, REIoU = 1 + 4/10.
RP = ([[0, 0, 2, 4, math.pi / 2]], [[1, 0, 4, 2, 0]])
D_ROT = ([[0.5, 0.5, 1, 1, 0]], [[2.5, 0.5, 1, 1, 0]])
RS_REIOU = 2 / 3 + 4 / 40
SQ45_IOU = 1 / math.sqrt(2)
HAND_CASES += [
    ("probiou", {}, RS, [RS_PROBIOU]),
    ("probiou", {}, RT, [RS_PROBIOU]),
    ("probiou", {"floor": 0.0}, RS, [math.sqrt(1 - math.exp(-1 / (2 * 16 / 12)))]),
    ("probiou", {}, SQ45, [math.sqrt(1 - math.exp(-EPS) + EPS)]),
    ("probiou", {}, R90, [R90_PROBIOU]),
    ("kld", {}, RS, [1 - 1 / (1 + math.log(2))]),
    ("kld", {}, RT, [1 - 1 / (1 + math.log(2))]),
    ("kld", {}, R90, [1 - 1 / (1 + math.log(1 + 9 / 4))]),
    ("kld", {"tau": 2.0}, RS, [1 - 1 / (2 + math.log(2))]),
    ("kld", {}, SQ45, [1 - 1 / (1 + math.log1p(1e-6))]),
    ("gwd", {}, RS, [math.log1p(math.sqrt(1 / 2))]),
    ("gwd", {}, RT, [math.log1p(math.sqrt(1 / 2))]),
    ("gwd", {}, R90, [math.log1p(1 / 2)]),
    ("gwd", {"alpha": 2.0}, R90, [math.log1p(1)]),
    ("gwd", {"normalize": False}, RS, [math.log1p(2)]),
    ("gwd", {"fun": "none"}, RS, [math.sqrt(1 / 2)]),
    ("gwd", {"tau": 1.0}, RS, [1 - 1 / (1 + math.log1p(math.sqrt(1 / 2)))]),
    ("gwd", {}, SQ45, [EPS]),  # W₂ = 0, floored at eps: log1p(eps)
    ("kfiou", {}, RS, [0.5 - 1 / 18 + 2 / 3]),
    ("kfiou", {}, RT, [0.5 - 1 / 18 + 2 / 3]),
    ("kfiou", {"beta": 1.0}, RS, [0.125 + 2 / 3]),
    ("kfiou", {}, R90, [0.75]),
    ("kfiou", {"fun": "ln"}, R90, [-math.log(0.25 + 1e-6)]),
    ("kfiou", {"fun": "exp"}, R90, [math.exp(0.75) - 1]),
    ("kfiou", {}, SQ45, [2 / 3]),  # KFIoU = 1/3 at coinciding Gaussians, as in mmrotate
    ("riou", {}, RS, [2 / 3]),
    ("riou", {}, RT, [2 / 3]),
    ("riou", {}, SQ45, [1 - SQ45_IOU]),
    ("riou", {}, RP, [2 / 5]),
    ("riou", {}, D_ROT, [1.0]),
    ("rgiou", {}, RS, [2 / 3]),
    ("rgiou", {}, RT, [2 / 3]),
    ("rgiou", {}, SQ45, [1 - SQ45_IOU + 3 - 2 * math.sqrt(2)]),
    ("rgiou", {}, D_ROT, [1 + 1 / 3]),
    ("reiou", {}, RS, [RS_REIOU]),
    ("reiou", {}, RT, [RS_REIOU]),
    ("reiou", {}, SQ45, [1 - SQ45_IOU]),
    ("reiou", {}, RP, [2 / 5 + 1 / 29]),
    ("reiou", {}, D_ROT, [1 + 4 / 10]),
    ("focal_reiou", {"norm": "none"}, RS, [(1 / 3) ** 0.5 * RS_REIOU]),
    ("focal_reiou", {"norm": "none", "gamma": 2.0}, RP, [(3 / 5) ** 2 * (2 / 5 + 1 / 29)]),
    ("focal_reiou", {}, D_ROT, [0.0]),  # IoU = 0: weight 0
    ("focal_reiou", {}, (RS[0] + RP[0], RS[1] + RP[1]), [(1 / 3) ** 0.5 * RS_REIOU, (3 / 5) ** 0.5 * (2 / 5 + 1 / 29)]),
    ("focaler_riou", {}, RS, [2 / 3 + 1 / 3 - (1 / 3) / 0.95]),
    ("focaler_rgiou", {}, RS, [2 / 3 + 1 / 3 - (1 / 3) / 0.95]),
    ("focaler_reiou", {}, RS, [RS_REIOU + 1 / 3 - (1 / 3) / 0.95]),
    ("focaler_riou", {"d": 0.1, "u": 0.5}, RP, [2 / 5 + 3 / 5 - 1]),  # IoU 3/5 > u: IoU^focaler = 1
]


def test_every_registered_box_loss_has_a_hand_derived_case():
    assert set(list_losses()) <= {name for name, *_ in HAND_CASES}


@pytest.mark.parametrize("name, kwargs, boxes, expected", HAND_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(HAND_CASES)])
def test_hand_derived(name, kwargs, boxes, expected):
    """Values derived by hand above. Tolerance 1e-6: eps = 1e-7 on heights, union and c² moves unit-scale
    boxes' terms by a few 1e-7 (see _eps_tolerance); the L1 losses have no eps and hold to float64 rounding."""
    pred, target = _boxes(boxes[0]), _boxes(boxes[1])
    loss = get_loss(name)(pred, target, **kwargs)
    atol = 1e-12 if name in ("smooth_l1", "focal_l1") else 1e-6
    torch.testing.assert_close(loss, torch.tensor(expected, dtype=torch.float64), rtol=0, atol=atol)


def test_ciou_width_mismatch_gradient_treats_alpha_as_constant():
    """Case B. With α held constant, ∂(αv)/∂x2 = α ∂v/∂w; v = k (atan 1 − atan(w/h))², k = 4/π², so
    ∂v/∂w = −2k (atan 1 − atan(w/h)) · (1/h) / (1 + (w/h)²); w = 4, h = 2: −2k (π/4 − atan 2) · 0.5/5.
    The rest of ∂L/∂x2 is DIoU's, which autograd of diou_loss gives (gradchecked below)."""
    pred = _boxes(B[0], requires_grad=True)
    get_loss("ciou")(pred, _boxes(B[1])).sum().backward()
    diou_pred = _boxes(B[0], requires_grad=True)
    diou_loss(diou_pred, _boxes(B[1])).sum().backward()
    k = 4 / math.pi**2
    dv_dw = -2 * k * (math.atan(1) - math.atan(2)) * 0.5 / 5
    alpha = B_V / (1 - B_IOU + B_V)
    assert pred.grad[0, 2].item() == pytest.approx(diou_pred.grad[0, 2].item() + alpha * dv_dw, abs=1e-6)


def test_focal_eiou_gamma_zero_is_eiou():
    pred, target = random_boxes(64, seed=3, dtype=torch.float64)
    for norm in ("batch", "none"):
        assert torch.equal(get_loss("focal_eiou")(pred, target, gamma=0.0, norm=norm), eiou_loss(pred, target))


def test_focal_eiou_batch_norm_is_the_paper_normalisation_through_the_normaliser():
    """norm=batch: the loss returns wᵢ Lᵢ and the registry's normaliser wᵢ = IoUᵢ^γ, so Σ loss / Σ w is the
    paper's Σ wᵢ Lᵢ / Σ wᵢ; norm=none has no normaliser."""
    pred, target = random_boxes(64, seed=4, dtype=torch.float64)
    weight = aligned_iou(pred, target) ** 0.5
    paper = (weight * eiou_loss(pred, target)).sum() / weight.sum()
    bound = get_spec("focal_eiou").bind()
    normaliser = bound.normalizer(pred, target)
    torch.testing.assert_close(normaliser, weight, rtol=1e-12, atol=0)
    torch.testing.assert_close(bound(pred, target).sum() / normaliser.sum(), paper, rtol=1e-12, atol=0)
    assert get_spec("focal_eiou").bind(norm="none").normalizer(pred, target) is None
    assert get_spec("eiou").bind().normalizer(pred, target) is None


def _focal_l1_at(x: float, beta: float = _BETA) -> tuple[float, float]:
    """Focal L1 value and dL/dx for a single coordinate error x ≥ 0 (pred x2 = 10 + x, target x2 = 10)."""
    pred = _boxes([[0, 0, 10 + x, 10]], requires_grad=True)
    loss = get_loss("focal_l1")(pred, _boxes([[0, 0, 10, 10]]), beta=beta, units="grid")
    loss.sum().backward()
    return loss.item(), pred.grad[0, 2].item()


def test_focal_l1_branches_gradients_and_continuity():
    # x = 0.5 (inner): L = −α x² (2 ln(βx) − 1)/4, dL/dx = −α x ln(βx)
    value, grad = _focal_l1_at(0.5)
    assert value == pytest.approx(-_ALPHA * 0.25 * (2 * math.log(0.4) - 1) / 4, rel=1e-12)
    assert grad == pytest.approx(-_ALPHA * 0.5 * math.log(0.4), rel=1e-9)
    # x = 2 (outer): L = −α ln β · 2 + α (2 ln β + 1)/4, dL/dx = −α ln β
    value, grad = _focal_l1_at(2.0)
    assert value == pytest.approx(-_ALPHA * math.log(_BETA) * 2 + _ALPHA * (2 * math.log(_BETA) + 1) / 4, rel=1e-12)
    assert grad == pytest.approx(-_ALPHA * math.log(_BETA), rel=1e-9)
    # continuity of the value (and of the gradient, −α ln β on both sides) at x = 1
    below, grad_below = _focal_l1_at(1 - 1e-9)
    above, grad_above = _focal_l1_at(1 + 1e-9)
    assert below == pytest.approx(above, abs=1e-8)
    assert below == pytest.approx(-_ALPHA * (2 * math.log(_BETA) - 1) / 4, abs=1e-8)
    assert grad_below == pytest.approx(grad_above, abs=1e-6)
    # x = 0: loss 0, gradient 0 (x² ln x → 0)
    assert _focal_l1_at(0.0) == (0.0, 0.0)


@pytest.mark.parametrize("beta", [0.8, 1 / math.e])
def test_focal_l1_gradient_at_exactly_one_and_on_both_sides(beta):
    """dL/dx = −α ln β at x = 1 exactly (0.485 at β = 0.8, 1 at β = 1/e), the limit from inside, −α x ln(βx)
    just below, −α ln β just above; a clamp at the boundary gave 0 at x = 1."""
    alpha = math.e * beta
    at_one = -alpha * math.log(beta)
    assert at_one == pytest.approx({0.8: 0.4852536, 1 / math.e: 1.0}[beta], rel=1e-6)
    assert _focal_l1_at(1.0, beta)[1] == pytest.approx(at_one, rel=1e-12)
    below = 1 - 1e-3
    assert _focal_l1_at(below, beta)[1] == pytest.approx(-alpha * below * math.log(beta * below), rel=1e-9)
    assert _focal_l1_at(1 + 1e-3, beta)[1] == pytest.approx(at_one, rel=1e-12)


def test_smooth_l1_gradient_both_sides_of_beta():
    """dL/dx = x/β below β, sign(x) above: errors 0.5 and 2 (β = 1) give 0.5 and 1."""
    pred = _boxes(L[0], requires_grad=True)
    get_loss("smooth_l1")(pred, _boxes(L[1]), units="grid").sum().backward()
    # pred − target = (−0.5, 0, 0.5, 2)
    torch.testing.assert_close(pred.grad, _boxes([[-0.5, 0.0, 0.5, 1.0]]), rtol=0, atol=1e-12)


def test_iou_balanced_wrapper_value_and_gradient():
    """wrapped = w_loc · IoU^λ · L with the weight constant: value and gradient are w · (L, ∂L)."""
    lam, w_loc = 1.5, 2.0
    wrapped = iou_balanced(eiou_loss, lam=lam, w_loc=w_loc)
    pred = _boxes(AB[0], requires_grad=True)
    target = _boxes(AB[1], requires_grad=True)
    loss = wrapped(pred, target)
    loss.backward(torch.tensor([1.0, 3.0], dtype=torch.float64))

    ref_pred = _boxes(AB[0], requires_grad=True)
    ref_target = _boxes(AB[1], requires_grad=True)
    plain = eiou_loss(ref_pred, ref_target)
    weight = torch.tensor([w_loc * A_IOU**lam, w_loc * B_IOU**lam], dtype=torch.float64)  # by hand
    plain.backward(torch.tensor([1.0, 3.0], dtype=torch.float64) * weight)  # grad = w · ∂L

    torch.testing.assert_close(loss, weight * plain.detach(), rtol=1e-6, atol=0)
    torch.testing.assert_close(pred.grad, ref_pred.grad, rtol=1e-6, atol=1e-12)
    torch.testing.assert_close(target.grad, ref_target.grad, rtol=1e-6, atol=1e-12)


def test_iou_balanced_identity_and_detached_weights():
    pred, target = random_boxes(32, seed=5, dtype=torch.float64)
    assert torch.equal(iou_balanced(eiou_loss, lam=0.0, w_loc=1.0)(pred, target), eiou_loss(pred, target))
    iou = aligned_iou(pred, target).requires_grad_()
    weights = iou_balanced_weights(iou, lam=1.5, w_loc=3.0)
    assert not weights.requires_grad
    torch.testing.assert_close(weights, 3.0 * iou.detach() ** 1.5)


# ---------------------------------------------------------------------------------------------------------
# 3. gradcheck in float64
# ---------------------------------------------------------------------------------------------------------

def _generic_pairs(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping float64 pairs in generic position: no tie in any min/max (every pred coordinate at least
    0.05 from the target's and from the other box's opposite side), IoU > 0.05, every coordinate error away
    from 0 and from 1 (the L1 losses' kinks at β = 1), so every loss is smooth in a neighbourhood far larger
    than gradcheck's step (1e-6)."""
    pred, target = random_boxes(400, seed=6, disjoint_fraction=0.0, dtype=torch.float64)
    # shrink every other pair tenfold (IoU unchanged) so that both sides of the L1 kinks at 1 occur
    scale = torch.where(torch.arange(400) % 2 == 0, 0.1, 1.0).to(torch.float64).unsqueeze(1)
    pred, target = pred * scale, target * scale
    error = (pred - target).abs()
    cross = torch.cat(((pred[:, 2:] - target[:, :2]).abs(), (target[:, 2:] - pred[:, :2]).abs()), 1)
    keep = ((error > 0.05).all(1) & ((error - 1).abs() > 0.05).all(1) & (cross > 0.05).all(1)
            & (aligned_iou(pred, target) > 0.05))
    pred, target = pred[keep][:n].clone(), target[keep][:n].clone()
    assert len(pred) == n and (((pred - target).abs() < 1).any()) and (((pred - target).abs() > 1).any())
    return pred, target


def _generic_rotated_pairs(n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Overlapping float64 rotated pairs in generic position: exact IoU > 0.05 (torchvision's rotated box_iou, which
    takes degrees counter-clockwise: ultralytics' angle negated), the relative angle at least 0.05 rad from every odd
    multiple of π/4 (where rotated EIoU re-pairs the sides) and every centre offset, in the target's frame over its
    side, at least 0.01 from KFIoU's smooth-L1 kink at 1/9 and from 0. Random float64 boxes put no corner on an edge."""
    pred, target = random_rotated_boxes(400, seed=6, disjoint_fraction=0.0, dtype=torch.float64)
    to_degrees = torch.tensor([1, 1, 1, 1, -180 / math.pi], dtype=torch.float64)
    iou = tvops.box_iou(pred * to_degrees, target * to_degrees, fmt="cxcywhr").diagonal()
    relative = pred[:, 4] - target[:, 4]
    quarter_turns = torch.remainder(relative / (math.pi / 2), 1.0)  # the kink is at 0.5
    cos, sin = target[:, 4].cos(), target[:, 4].sin()
    dx, dy = pred[:, 0] - target[:, 0], pred[:, 1] - target[:, 1]
    scaled = torch.stack(((cos * dx + sin * dy) / target[:, 2], (cos * dy - sin * dx) / target[:, 3]), 1).abs()
    keep = ((iou > 0.05) & ((quarter_turns - 0.5).abs() > 0.05 / (math.pi / 2))
            & ((scaled - 1 / 9).abs() > 0.01).all(1) & (scaled > 0.01).all(1))
    pred, target = pred[keep][:n].clone(), target[keep][:n].clone()
    assert len(pred) == n
    return pred, target


def _generic_pairs_for(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    return _generic_rotated_pairs() if _rotated(name) else _generic_pairs()


def _ciou_alpha_frozen(pred0, target0, **kwargs):
    """CIoU with α fixed at its value at (pred0, target0): DIoU + α₀ v, v written out independently
    (ultralytics' eps on the heights)."""

    def aspect_v(pred, target):
        w, h = pred[:, 2] - pred[:, 0], pred[:, 3] - pred[:, 1] + EPS
        w_gt, h_gt = target[:, 2] - target[:, 0], target[:, 3] - target[:, 1] + EPS
        return 4 / math.pi**2 * (torch.atan(w_gt / h_gt) - torch.atan(w / h)) ** 2

    v0 = aspect_v(pred0, target0)
    alpha0 = v0 / (1 - aligned_iou(pred0, target0) + v0 + EPS)
    return lambda pred, target: diou_loss(pred, target) + alpha0 * aspect_v(pred, target)


def _focal_eiou_weight_frozen(pred0, target0, gamma=0.5, norm="batch"):
    """Focal-EIoU, weight fixed at (pred0, target0): w₀ · EIoU, w₀ = IoU₀^γ (· N / Σ w₀ for norm=batch)."""
    weight0 = aligned_iou(pred0, target0) ** gamma  # the normaliser (norm=batch) is applied by the caller
    return lambda pred, target: weight0 * eiou_loss(pred, target)


def _wiou_diagonal_frozen(pred0, target0):
    """WIoU v1 with the enclosing box's squared diagonal (+ eps) fixed at (pred0, target0): exp(ρ²/c₀²) (1 − IoU)."""
    enclosing = torch.cat((torch.minimum(pred0[:, :2], target0[:, :2]), torch.maximum(pred0[:, 2:], target0[:, 2:])), 1)
    diagonal0 = (enclosing[:, 2:] - enclosing[:, :2]).pow(2).sum(1) + EPS

    def wiou(pred, target):
        centres = (target[:, :2] + target[:, 2:] - pred[:, :2] - pred[:, 2:]) / 2
        return torch.exp(centres.pow(2).sum(1) / diagonal0) * (1 - aligned_iou(pred, target))

    return wiou


def _wiou_v3_frozen(pred0, target0, alpha=1.9, delta=3.0, iou_mean=None, **unused):
    """WIoU v3 with r = β/(δ α^(β−δ)) fixed at (pred0, target0), β₀ = (1 − IoU₀)/iou_mean, and c² frozen as v1
    (``momentum`` is the caller's, unused by the loss)."""
    loss0 = 1 - aligned_iou(pred0, target0)
    beta0 = loss0 / (loss0.mean() if iou_mean is None else iou_mean)
    r0 = beta0 / (delta * alpha ** (beta0 - delta))
    wiou = _wiou_diagonal_frozen(pred0, target0)
    return lambda pred, target: r0 * wiou(pred, target)


def _inner_iou_reference(pred, target, ratio):
    """IoU of the boxes scaled by ratio about their centres (centre ± ratio · half size), eps as aligned_iou."""
    def scaled(boxes):
        centre, half = (boxes[:, :2] + boxes[:, 2:]) / 2, (boxes[:, 2:] - boxes[:, :2]) / 2 * ratio
        return torch.cat((centre - half, centre + half), 1)

    return aligned_iou(scaled(pred), scaled(target))


def _inner_ciou_frozen(pred0, target0, ratio=0.7):
    """Inner-CIoU = CIoU (α frozen) + IoU − IoU_inner."""
    ciou = _ciou_alpha_frozen(pred0, target0)

    def inner_ciou(pred, target):
        return ciou(pred, target) + aligned_iou(pred, target) - _inner_iou_reference(pred, target, ratio)

    return inner_ciou


def _focaler_ciou_frozen(pred0, target0, d=0.0, u=0.95):
    """Focaler-CIoU = CIoU (α frozen) + IoU − clamp((IoU − d)/(u − d), 0, 1)."""
    ciou = _ciou_alpha_frozen(pred0, target0)

    def focaler_ciou(pred, target):
        iou = aligned_iou(pred, target)
        return ciou(pred, target) + iou - ((iou - d) / (u - d)).clamp(0, 1)

    return focaler_ciou


# Losses with a factor detached by design: gradcheck compares autograd against finite differences, and the
# finite differences would also see the detached factor vary. For these, the finite differences are taken of
# the same loss with that factor frozen at the checked point (an independent reference), and the analytic
# gradient is the registered loss's own autograd gradient: _NumericOfFrozen splices the two.
def _focal_reiou_weight_frozen(pred0, target0, gamma=0.5, norm="batch"):
    """Focal-REIoU, weight fixed at (pred0, target0): w₀ · REIoU, w₀ = IoU₀^γ (exact IoU)."""
    weight0 = aligned_rotated_iou(pred0, target0) ** gamma
    return lambda pred, target: weight0 * reiou_loss(pred, target)


FROZEN_REFERENCES = {"ciou": _ciou_alpha_frozen, "focal_eiou": _focal_eiou_weight_frozen,
                     "focal_reiou": _focal_reiou_weight_frozen,
                     "wiou": _wiou_diagonal_frozen, "wiou_v3": _wiou_v3_frozen, "inner_ciou": _inner_ciou_frozen,
                     "focaler_ciou": _focaler_ciou_frozen}
# alpha_ciou's detached α enters as (α v)³: too weakly for plain gradcheck to see (tested with a frozen reference
# in test_losses_variants.py).


class _NumericOfFrozen(torch.autograd.Function):
    """Forward: the frozen reference's value (what gradcheck differentiates numerically). Backward: the
    gradient autograd gives for the loss under test (what gradcheck calls the analytic gradient)."""

    @staticmethod
    def forward(ctx, pred, target, frozen, loss_fn):
        ctx.save_for_backward(pred, target)
        ctx.loss_fn = loss_fn
        return frozen(pred, target)

    @staticmethod
    def backward(ctx, grad_output):
        pred, target = ctx.saved_tensors
        with torch.enable_grad():
            pred, target = pred.detach().requires_grad_(), target.detach().requires_grad_()
            grads = torch.autograd.grad(ctx.loss_fn(pred, target), (pred, target), grad_output)
        return *grads, None, None


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_gradcheck(name, kwargs):
    pred, target = _generic_pairs_for(name)
    pred.requires_grad_(), target.requires_grad_()
    loss_fn = lambda p, t: get_loss(name)(p, t, **kwargs, **_context(name))  # noqa: E731
    if name in FROZEN_REFERENCES:
        frozen = FROZEN_REFERENCES[name](pred.detach(), target.detach(), **kwargs, **_context(name))
        torch.testing.assert_close(frozen(pred, target), loss_fn(pred, target), rtol=1e-12, atol=0)
        function = lambda p, t: _NumericOfFrozen.apply(p, t, frozen, loss_fn)  # noqa: E731
    else:
        function = loss_fn
    assert torch.autograd.gradcheck(function, (pred, target), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_frozen_reference_is_needed_for_detached_factors():
    """Plain gradcheck of CIoU and Focal-EIoU fails (their detached factors vary in the finite differences):
    evidence that FROZEN_REFERENCES is necessary, and that the detach is really there."""
    for name in FROZEN_REFERENCES:
        pred, target = _generic_pairs_for(name)
        pred.requires_grad_(), target.requires_grad_()
        loss_fn = lambda p, t: get_loss(name)(p, t, **_context(name))  # noqa: E731
        assert not torch.autograd.gradcheck(loss_fn, (pred, target), eps=1e-6, atol=1e-7, rtol=1e-5,
                                            raise_exception=False)


# ---------------------------------------------------------------------------------------------------------
# 4. The contract every registered box loss meets
# ---------------------------------------------------------------------------------------------------------

# Registered losses whose formula is not 0 at identical boxes: (their value there, the tolerance). ProbIoU's Hellinger
# distance keeps ultralytics' eps under its square root (B ≈ eps: √(1 − e^−eps + eps) ≈ √(2 eps) ≈ 4.5e-4, within
# float32's rounding of B, a hand case above); KFIoU is at most 1/3 at identical boxes, so its loss is 1 − 1/3 (fun
# none), −ln(1/3) (ln) or e^(1 − 1/3) − 1 (exp), the centre term 0.
KFIOU_AT_ONE_THIRD = {"none": 2 / 3, "ln": -math.log(1 / 3), "exp": math.exp(2 / 3) - 1}
AT_IDENTICAL = {"probiou": lambda kwargs: (math.sqrt(2e-7), 5e-5),
                "kfiou": lambda kwargs: (KFIOU_AT_ONE_THIRD[kwargs.get("fun", "none")], 1e-5)}  # eps = 1e-6 in ln

DEGENERATE = {  # name: (pred rows, target rows), xyxy
    "zero_width": ([[1, 1, 1, 3], [0, 0, 2, 2]], [[0, 0, 2, 2], [1, 1, 1, 3]]),
    "zero_height": ([[1, 1, 3, 1], [0, 0, 2, 2]], [[0, 0, 2, 2], [1, 1, 3, 1]]),
    "zero_width_identical": ([[1, 1, 1, 3]], [[1, 1, 1, 3]]),
    "point": ([[1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 2, 2]], [[1, 1, 1, 1], [0, 0, 2, 2], [1, 1, 1, 1]]),
    "identical": ([[1, 2, 5, 7]], [[1, 2, 5, 7]]),
    "nested": ([[2, 2, 3, 3], [0, 0, 10, 10]], [[0, 0, 10, 10], [2, 2, 3, 3]]),
    "disjoint_far": ([[0, 0, 1, 1]], [[9000, 9000, 9001, 9002]]),
    "large_coordinates": ([[0, 0, 1e4, 1e4], [0, 0, 1, 1]], [[10, 20, 9990, 9995], [9998, 9997, 1e4, 1e4]]),
}
DEGENERATE_ROTATED = {  # the same cases for the rotated losses: (pred rows, target rows), xywhr
    "zero_width": ([[2, 2, 0, 2, 0.3], [1, 1, 2, 2, 0.2]], [[1, 1, 2, 2, 0.2], [2, 2, 0, 2, 0.3]]),
    "zero_height": ([[2, 2, 2, 0, 0.3], [1, 1, 2, 2, -0.4]], [[1, 1, 2, 2, -0.4], [2, 2, 2, 0, 0.3]]),
    "zero_width_identical": ([[1, 2, 0, 2, 0.5]], [[1, 2, 0, 2, 0.5]]),
    "point": ([[1, 1, 0, 0, 0.3], [1, 1, 0, 0, 0], [1, 1, 2, 2, 0.6]],
              [[1, 1, 0, 0, 0.3], [1, 1, 2, 2, 0.6], [1, 1, 0, 0, 0]]),
    "identical": ([[3, 4.5, 4, 5, 0.4]], [[3, 4.5, 4, 5, 0.4]]),
    "nested": ([[5, 5, 1, 1, 0.3], [5, 5, 10, 10, 0]], [[5, 5, 10, 10, 0], [5, 5, 1, 1, 0.3]]),
    "disjoint_far": ([[0.5, 0.5, 1, 1, 0]], [[9000.5, 9001, 1, 2, 1.2]]),
    "large_coordinates": ([[5e3, 5e3, 1e4, 1e4, 0], [0.5, 0.5, 1, 1, 0.1]],
                          [[5e3, 5007.5, 9980, 9975, 0.02], [9999, 9998.5, 2, 1, 1.0]]),
}


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_shape_dtype_and_non_negative(name, kwargs):
    pred, target = _random_pairs(name, 37, seed=7)
    loss = get_loss(name)(pred, target, **kwargs, **_context(name))
    assert loss.shape == (37,) and loss.dtype == torch.float32
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert get_loss(name)(pred.double(), target.double(), **kwargs, **_context(name)).dtype == torch.float64


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_zero_at_identical_boxes(name, kwargs):
    """Tolerance 1e-6: with eps on the heights and the union, 1 − IoU of a w×h box with itself is about
    (2w + 1)·eps / (w h) ≤ 1e-6 for the generator's sides ≥ 1 (the stock ultralytics arithmetic). The losses of
    :data:`AT_IDENTICAL` take their formula's own value there instead of 0."""
    _, target = _random_pairs(name, 37, seed=8)
    value, tolerance = AT_IDENTICAL[name](kwargs) if name in AT_IDENTICAL else (0.0, 1e-6)
    torch.testing.assert_close(get_loss(name)(target, target.clone(), **kwargs, **_context(name)),
                               torch.full((37,), value), rtol=0, atol=tolerance)


@pytest.mark.parametrize("case", DEGENERATE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_degenerate_boxes_finite(name, kwargs, dtype, case):
    """Finite loss and input gradients in every precision. A zero-size box has float32 gradients of order 1/eps
    (1e7), beyond float16's 65504: a half input gets them saturated at its largest finite value, same sign."""
    rows = (DEGENERATE_ROTATED if _rotated(name) else DEGENERATE)[case]
    pred = _boxes(rows[0], dtype=dtype, requires_grad=True)
    target = _boxes(rows[1], dtype=dtype, requires_grad=True)
    loss = get_loss(name)(pred, target, **kwargs, **_context(name))
    loss.sum().backward()
    assert loss.shape == (len(pred),)
    assert torch.isfinite(loss).all() and (loss >= 0).all(), loss
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all(), (pred.grad, target.grad)
    if dtype in (torch.float16, torch.bfloat16):
        wide_pred, wide_target = pred.detach().float().requires_grad_(), target.detach().float().requires_grad_()
        wide = get_loss(name)(wide_pred, wide_target, **kwargs, **_context(name))
        wide.sum().backward()
        assert torch.equal(loss, wide)  # the value is the float32 one
        limit = torch.finfo(dtype).max
        assert torch.equal(pred.grad.float(), wide_pred.grad.clamp(-limit, limit).to(dtype).float())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_half_precision_input(name, kwargs, dtype):
    """Half inputs are computed in float32: the result is float32, finite and close to the float32 loss of
    the same (rounded) boxes; gradients come back finite in the input's dtype."""
    pred, target = _random_pairs(name, 37, seed=9, dtype=dtype)
    pred.requires_grad_(), target.requires_grad_()
    loss = get_loss(name)(pred, target, **kwargs, **_context(name))
    loss.sum().backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    plain = get_loss(name)(pred.detach().float(), target.detach().float(), **kwargs, **_context(name))
    assert torch.equal(loss, plain)
    assert pred.grad.dtype == dtype and torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_empty_input(name, kwargs):
    width = 5 if _rotated(name) else 4
    pred = torch.zeros(0, width, requires_grad=True)
    loss = get_loss(name)(pred, torch.zeros(0, width), **kwargs, **_context(name))
    assert loss.shape == (0,)
    loss.sum().backward()
    assert pred.grad.shape == (0, width)


@pytest.mark.parametrize("name", list_losses())
def test_contract_rejects_mismatched_shapes(name):
    width = 5 if _rotated(name) else 4
    with pytest.raises(ValueError, match=f"N, {width}"):
        get_loss(name)(torch.zeros(3, width), torch.zeros(2, width), **_context(name))
    with pytest.raises(ValueError, match=f"N, {width}"):  # the other box format
        get_loss(name)(torch.zeros(3, 9 - width), torch.zeros(3, 9 - width), **_context(name))


@pytest.mark.parametrize("name", list_losses())
def test_contract_registered_params_match_signature_defaults(name):
    import inspect

    base = get_spec(name).wraps  # a wrapped loss: the base's parameters, and the wrapper function's own
    signature = dict(inspect.signature(get_loss(base or name)).parameters)
    if base:
        signature.update(inspect.signature(BOX_LOSSES.wrappers()[name[:-len(base) - 1]].fn).parameters)
    for param, spec in get_spec(name).params.items():
        assert signature[param].default == spec.default and spec.check(spec.default)


# ---------------------------------------------------------------------------------------------------------
# Properties (fvcore-style): distance awareness for non-overlapping boxes
# ---------------------------------------------------------------------------------------------------------

# Disjoint pairs in generic position: the target lies to the right of (and above / below) the prediction.
DISJOINT = ([[0, 0, 1, 1.5], [0, 0, 2, 1]], [[2.5, 0.5, 3.2, 2.0], [3, -3, 4, -2]])


@pytest.mark.parametrize("name", ["giou", "diou", "ciou", "eiou"])
def test_distance_aware_losses_pull_disjoint_boxes_together(name):
    pred = _boxes(DISJOINT[0], requires_grad=True)
    get_loss(name)(pred, _boxes(DISJOINT[1])).sum().backward()
    assert (pred.grad.abs().sum(1) > 1e-3).all()
    # a descent step moves each prediction's centre towards its target's centre
    step = -pred.grad
    centre_step = torch.stack(((step[:, 0] + step[:, 2]) / 2, (step[:, 1] + step[:, 3]) / 2), 1)
    to_target = (_boxes(DISJOINT[1])[:, :2] + _boxes(DISJOINT[1])[:, 2:] - pred[:, :2] - pred[:, 2:]).detach() / 2
    assert ((centre_step * to_target).sum(1) > 0).all()


def test_iou_loss_has_no_gradient_for_disjoint_boxes():
    pred = _boxes(DISJOINT[0], requires_grad=True)
    loss = get_loss("iou")(pred, _boxes(DISJOINT[1]))
    loss.sum().backward()
    assert torch.equal(loss, torch.ones(2, dtype=torch.float64))
    assert torch.equal(pred.grad, torch.zeros_like(pred))


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_focal_eiou_ignores_disjoint_boxes(norm):
    """Documented: IoU = 0 gives weight IoU^γ = 0, so zero loss and zero gradient; overlapping pairs in the
    same call are unaffected in kind (positive loss, non-zero gradient)."""
    pred = _boxes(DISJOINT[0] + A[0], requires_grad=True)
    loss = get_loss("focal_eiou")(pred, _boxes(DISJOINT[1] + A[1]), norm=norm)
    loss.sum().backward()
    assert torch.equal(loss[:2].detach(), torch.zeros(2, dtype=torch.float64)) and loss[2] > 0
    assert torch.equal(pred.grad[:2], torch.zeros(2, 4, dtype=torch.float64)) and pred.grad[2].abs().sum() > 0
