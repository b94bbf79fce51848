"""Tests for the box-regression losses (boxloss.losses: iou_family, l1_family, weighting).

Four kinds of evidence, each able to fail on its own:
1. independent implementations: torchvision's GIoU/DIoU/CIoU losses and box_iou, and ultralytics'
   ``bbox_iou(..., CIoU=True)`` (bit-exact, values and gradients);
2. cases derived by hand, with the derivation next to the numbers, for every registered box loss;
3. float64 ``gradcheck`` for every registered box loss (detached factors handled, see ``test_gradcheck``);
4. one contract every registered loss must meet (shape, zero at identical boxes, finite values and gradients
   on degenerate boxes, half precision, empty input, non-negativity), parametrized over ``list_losses()`` so
   a newly registered loss is tested with no edit here; plus the distance-awareness properties.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest
import torch
import torchvision.ops as tvops
from ultralytics.utils.metrics import bbox_iou

from boxloss import aligned_iou, get_loss, get_spec, iou_balanced, list_losses
from boxloss.losses import diou_loss, eiou_loss, iou_balanced_weights

REPO = Path(__file__).resolve().parents[1]
EPS = 1e-7  # the losses' default eps (ultralytics' placement: heights, union, c², enclosing area)


def _load_bench_common():
    """The random-box generator the benchmark uses (scripts/_bench_common.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("_bench_common", REPO / "scripts" / "_bench_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


random_boxes = _load_bench_common().random_boxes


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


def _boxes(rows, dtype=torch.float64, requires_grad=False):
    return torch.tensor(rows, dtype=dtype, requires_grad=requires_grad)


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
# Focal-EIoU batch normalisation over A and B: wᵢ = IoUᵢ^γ, lossᵢ = wᵢ EIoUᵢ · N / Σ w with N = 2.
AB = (A[0] + B[0], A[1] + B[1])
_W_AB = [A_IOU**0.5, B_IOU**0.5]
FOCAL_EIOU_BATCH_AB = [w * loss * 2 / sum(_W_AB) for w, loss in zip(_W_AB, (A_EIOU, B_EIOU))]

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
    ("focal_eiou", {"norm": "batch"}, AB, FOCAL_EIOU_BATCH_AB),  # wᵢ Lᵢ · N / Σ w
    ("focal_eiou", {}, A, [A_EIOU]),  # one box, batch norm: w · L · 1/w = L
    ("smooth_l1", {}, L, [1.75]),
    ("smooth_l1", {"beta": 0.5}, L, [2.25]),
    ("smooth_l1", {"beta": 0.25}, L2, [0.175 + 0.08]),
    ("focal_l1", {}, L, [2 * _focal_l1_inner(0.5) + _focal_l1_outer(2.0)]),
    ("focal_l1", {}, A, [4 * _focal_l1_inner(1.0)]),  # x = 1: inner branch, = outer(1) by construction
    ("focal_l1", {"beta": 1.0}, L, [2 * _focal_l1_inner(0.5, 1.0) + _focal_l1_outer(2.0, 1.0)]),
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


def test_focal_eiou_batch_norm_keeps_mean_equal_to_paper_normalisation():
    """norm=batch returns wᵢ Lᵢ · N / Σ w, so its mean is the paper's Σ wᵢ Lᵢ / Σ wᵢ."""
    pred, target = random_boxes(64, seed=4, dtype=torch.float64)
    weight = aligned_iou(pred, target) ** 0.5
    paper = (weight * eiou_loss(pred, target)).sum() / weight.sum()
    torch.testing.assert_close(get_loss("focal_eiou")(pred, target).mean(), paper, rtol=1e-12, atol=0)


def _focal_l1_at(x: float, beta: float = _BETA) -> tuple[float, float]:
    """Focal L1 value and dL/dx for a single coordinate error x ≥ 0 (pred x2 = 10 + x, target x2 = 10)."""
    pred = _boxes([[0, 0, 10 + x, 10]], requires_grad=True)
    loss = get_loss("focal_l1")(pred, _boxes([[0, 0, 10, 10]]), beta=beta)
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


def test_smooth_l1_gradient_both_sides_of_beta():
    """dL/dx = x/β below β, sign(x) above: errors 0.5 and 2 (β = 1) give 0.5 and 1."""
    pred = _boxes(L[0], requires_grad=True)
    get_loss("smooth_l1")(pred, _boxes(L[1])).sum().backward()
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
    weight0 = aligned_iou(pred0, target0) ** gamma
    if norm == "batch":
        weight0 = weight0 * len(weight0) / weight0.sum()
    return lambda pred, target: weight0 * eiou_loss(pred, target)


# Losses with a factor detached by design: gradcheck compares autograd against finite differences, and the
# finite differences would also see the detached factor vary. For these, the finite differences are taken of
# the same loss with that factor frozen at the checked point (an independent reference), and the analytic
# gradient is the registered loss's own autograd gradient: _NumericOfFrozen splices the two.
FROZEN_REFERENCES = {"ciou": _ciou_alpha_frozen, "focal_eiou": _focal_eiou_weight_frozen}


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
    pred, target = _generic_pairs()
    pred.requires_grad_(), target.requires_grad_()
    loss_fn = lambda p, t: get_loss(name)(p, t, **kwargs)  # noqa: E731
    if name in FROZEN_REFERENCES:
        frozen = FROZEN_REFERENCES[name](pred.detach(), target.detach(), **kwargs)
        torch.testing.assert_close(frozen(pred, target), loss_fn(pred, target), rtol=1e-12, atol=0)
        function = lambda p, t: _NumericOfFrozen.apply(p, t, frozen, loss_fn)  # noqa: E731
    else:
        function = loss_fn
    assert torch.autograd.gradcheck(function, (pred, target), eps=1e-6, atol=1e-7, rtol=1e-5)


def test_frozen_reference_is_needed_for_detached_factors():
    """Plain gradcheck of CIoU and Focal-EIoU fails (their detached factors vary in the finite differences):
    evidence that FROZEN_REFERENCES is necessary, and that the detach is really there."""
    pred, target = _generic_pairs()
    pred.requires_grad_(), target.requires_grad_()
    for name in FROZEN_REFERENCES:
        assert not torch.autograd.gradcheck(get_loss(name), (pred, target), eps=1e-6, atol=1e-7, rtol=1e-5,
                                            raise_exception=False)


# ---------------------------------------------------------------------------------------------------------
# 4. The contract every registered box loss meets
# ---------------------------------------------------------------------------------------------------------

NONZERO_AT_IDENTICAL: set[str] = set()  # registered losses whose formula is not 0 at identical boxes (none yet)

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


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_shape_dtype_and_non_negative(name, kwargs):
    pred, target = random_boxes(37, seed=7)
    loss = get_loss(name)(pred, target, **kwargs)
    assert loss.shape == (37,) and loss.dtype == torch.float32
    assert torch.isfinite(loss).all() and (loss >= 0).all()
    assert get_loss(name)(pred.double(), target.double(), **kwargs).dtype == torch.float64


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_zero_at_identical_boxes(name, kwargs):
    """Tolerance 1e-6: with eps on the heights and the union, 1 − IoU of a w×h box with itself is about
    (2w + 1)·eps / (w h) ≤ 1e-6 for the generator's sides ≥ 1 (the stock ultralytics arithmetic)."""
    if name in NONZERO_AT_IDENTICAL:
        pytest.skip(f"{name}'s formula is not 0 at identical boxes")
    _, target = random_boxes(37, seed=8)
    torch.testing.assert_close(get_loss(name)(target, target.clone(), **kwargs), torch.zeros(37), rtol=0, atol=1e-6)


@pytest.mark.parametrize("case", DEGENERATE)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_degenerate_boxes_finite(name, kwargs, dtype, case):
    pred = _boxes(DEGENERATE[case][0], dtype=dtype, requires_grad=True)
    target = _boxes(DEGENERATE[case][1], dtype=dtype, requires_grad=True)
    loss = get_loss(name)(pred, target, **kwargs)
    loss.sum().backward()
    assert loss.shape == (len(pred),)
    assert torch.isfinite(loss).all() and (loss >= 0).all(), loss
    assert torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all(), (pred.grad, target.grad)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_half_precision_input(name, kwargs, dtype):
    """Half inputs are computed in float32: the result is float32, finite and close to the float32 loss of
    the same (rounded) boxes; gradients come back finite in the input's dtype."""
    pred, target = random_boxes(37, seed=9, dtype=dtype)
    pred.requires_grad_(), target.requires_grad_()
    loss = get_loss(name)(pred, target, **kwargs)
    loss.sum().backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss).all()
    assert torch.equal(loss, get_loss(name)(pred.detach().float(), target.detach().float(), **kwargs))
    assert pred.grad.dtype == dtype and torch.isfinite(pred.grad).all() and torch.isfinite(target.grad).all()


@pytest.mark.parametrize("name, kwargs", VARIANTS, ids=VARIANT_IDS)
def test_contract_empty_input(name, kwargs):
    pred = torch.zeros(0, 4, requires_grad=True)
    loss = get_loss(name)(pred, torch.zeros(0, 4), **kwargs)
    assert loss.shape == (0,)
    loss.sum().backward()
    assert pred.grad.shape == (0, 4)


@pytest.mark.parametrize("name", list_losses())
def test_contract_rejects_mismatched_shapes(name):
    with pytest.raises(ValueError, match="N, 4"):
        get_loss(name)(torch.zeros(3, 4), torch.zeros(2, 4))


@pytest.mark.parametrize("name", list_losses())
def test_contract_registered_params_match_signature_defaults(name):
    import inspect

    signature = inspect.signature(get_loss(name)).parameters
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
