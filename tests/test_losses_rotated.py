"""Tests for the rotated-box losses (boxloss.losses.gaussian, rotated_iou; boxes xywhr, angle in radians).

Evidence, each able to fail on its own:
1. ProbIoU is ultralytics' ``probiou(pred, target, floor=0.01)``, values and gradients bit for bit (float32), and
   matches the paper's Bhattacharyya/Hellinger equations recomputed per box in float64;
2. an independent float64 recomputation of every other rotated loss from its paper's equations (plain Python, no
   project helpers), and for the polygon IoU an independent exact IoU (torchvision's rotated ``box_iou``, whose
   angle convention is checked by hand here);
3. hand cases and properties: identical boxes, a square turned by 45° against itself (every Gaussian loss is blind,
   the polygon losses are not), the (h, w, θ + π/2) and θ + π forms of a box, disjoint boxes;
4. the wrappers apply to a rotated loss only where their mathematics holds.
The contract every registered loss meets (shape, degenerate and half-precision input, empty input, gradcheck, a hand
case per loss) is in test_losses.py, which runs the rotated losses on (N, 5) boxes.
"""

from __future__ import annotations

import math

import pytest
import torch
from ultralytics.utils.metrics import probiou

from boxloss import get_loss, get_spec, list_losses
from boxloss.testing.boxes import random_rotated_boxes

ROTATED = ("probiou",)


# ---------------------------------------------------------------------------------------------------------
# The registry: which boxes a loss takes
# ---------------------------------------------------------------------------------------------------------

def test_the_rotated_losses_are_registered_for_xywhr_boxes():
    assert set(ROTATED) <= set(list_losses(boxes="xywhr"))
    assert not set(list_losses(boxes="xywhr")) & set(list_losses(boxes="xyxy"))
    assert set(list_losses(boxes="xywhr")) | set(list_losses(boxes="xyxy")) == set(list_losses())
    assert {get_spec(name).boxes for name in list_losses(boxes="xyxy")} == {"xyxy"}
    assert "ciou" in list_losses(boxes="xyxy")


def test_an_unknown_box_format_is_refused():
    with pytest.raises(ValueError, match="unknown box format 'obb'"):
        list_losses(boxes="obb")


# ---------------------------------------------------------------------------------------------------------
# 1. ProbIoU: ultralytics, bit for bit, and the paper's equations
# ---------------------------------------------------------------------------------------------------------

def _pairs_with_tiny_boxes(n: int, seed: int, dtype=torch.float32):
    """random_rotated_boxes, with a quarter of the predictions shrunk to sub-pixel sizes (down to 1e-3), as early
    OBB training produces: the floor 0.01 matters there."""
    pred, target = random_rotated_boxes(n, seed, dtype=torch.float64)
    g = torch.Generator().manual_seed(seed + 1)
    tiny = torch.rand(n, generator=g, dtype=torch.float64) < 0.25
    pred[tiny, 2:4] = 10 ** (-3 * torch.rand(int(tiny.sum()), 2, generator=g, dtype=torch.float64))
    return pred.to(dtype), target.to(dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_probiou_bit_exact_with_ultralytics_values_and_gradients(dtype):
    """1 − ProbIoU as ``RotatedBboxLoss`` computes it (``probiou(pred, target, floor=0.01)``, prediction first):
    values and gradients torch.equal, with a non-uniform upstream gradient."""
    pred, target = _pairs_with_tiny_boxes(5000, seed=1, dtype=dtype)
    upstream = torch.rand(len(pred), generator=torch.Generator().manual_seed(2), dtype=dtype)

    ours_p, ours_t = pred.clone().requires_grad_(), target.clone().requires_grad_()
    ours = get_loss("probiou")(ours_p, ours_t)
    ours.backward(upstream)

    ref_p, ref_t = pred.clone().requires_grad_(), target.clone().requires_grad_()
    ref = (1.0 - probiou(ref_p, ref_t, floor=0.01)).squeeze(-1)
    ref.backward(upstream)

    assert ours.dtype == ref.dtype == dtype
    assert torch.equal(ours, ref)
    assert torch.equal(ours_p.grad, ref_p.grad)
    assert torch.equal(ours_t.grad, ref_t.grad)


def test_probiou_floor_is_ultralytics_floor():
    pred, target = _pairs_with_tiny_boxes(500, seed=3)
    for floor in (0.0, 0.5):
        expected = (1.0 - probiou(pred, target, floor=floor)).squeeze(-1)
        assert torch.equal(get_loss("probiou")(pred, target, floor=floor), expected)
    assert get_spec("probiou").bind().kwargs == {"floor": 0.01}
    assert get_spec("probiou").keys == {"floor": "probiou_floor"}


def _gaussian(box, divisor, floor=0.0):
    """(μ, Σ) of a box: Σ = R diag(w²/divisor + floor, h²/divisor + floor) Rᵀ, as 2 × 2 nested lists."""
    x, y, w, h, angle = box
    cos, sin = math.cos(angle), math.sin(angle)
    var_w, var_h = w * w / divisor + floor, h * h / divisor + floor
    return (x, y), [[var_w * cos * cos + var_h * sin * sin, (var_w - var_h) * cos * sin],
                    [(var_w - var_h) * cos * sin, var_w * sin * sin + var_h * cos * cos]]


def _det(m):
    return m[0][0] * m[1][1] - m[0][1] * m[1][0]


def _inverse(m):
    d = _det(m)
    return [[m[1][1] / d, -m[0][1] / d], [-m[1][0] / d, m[0][0] / d]]


def _quadratic(m, v):
    """vᵀ M v."""
    return sum(v[i] * m[i][j] * v[j] for i in range(2) for j in range(2))


def probiou_reference(p, t, floor=0.01):
    """Llerena et al. 2021: B = ⅛ Δμᵀ Σ⁻¹ Δμ + ½ ln(det Σ / √(det Σp det Σt)), Σ = (Σp + Σt)/2;
    1 − ProbIoU = Hellinger distance √(1 − e^{−B}); no eps (the boxes below keep B well above it)."""
    (mp, sp), (mt, st) = _gaussian(p, 12, floor), _gaussian(t, 12, floor)
    mean = [[(sp[i][j] + st[i][j]) / 2 for j in range(2)] for i in range(2)]
    delta = (mp[0] - mt[0], mp[1] - mt[1])
    b = _quadratic(_inverse(mean), delta) / 8 + 0.5 * math.log(_det(mean) / math.sqrt(_det(sp) * _det(st)))
    return math.sqrt(1 - math.exp(-b))


def _rows(boxes):
    return boxes.tolist()


def test_probiou_matches_the_papers_equations():
    """Away from the clamp B >= eps (pairs with B > 1e-3), the two agree to the eps terms: |Δ| < 1e-6."""
    pred, target = random_rotated_boxes(500, seed=4, dtype=torch.float64)
    expected = torch.tensor([probiou_reference(p, t) for p, t in zip(_rows(pred), _rows(target))],
                            dtype=torch.float64)
    keep = expected > math.sqrt(1 - math.exp(-1e-3))
    assert keep.sum() > 400
    torch.testing.assert_close(get_loss("probiou")(pred, target)[keep], expected[keep], rtol=0, atol=1e-6)
