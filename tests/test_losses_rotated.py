"""Tests for the rotated-box losses (boxloss.losses: gaussian, rotated_iou; boxes xywhr, angle in radians).

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
import torchvision.ops as tvops
from ultralytics.utils.metrics import probiou

from boxloss import get_loss, get_spec, list_losses
from boxloss.losses import aligned_rotated_iou, eiou_loss
from boxloss.testing.boxes import random_boxes, random_rotated_boxes

from test_losses import EPS, _eps_tolerance

GAUSSIAN = ("probiou", "kld", "gwd", "kfiou")
POLYGON = ("riou", "rgiou", "reiou", "focal_reiou")
ROTATED = GAUSSIAN + POLYGON
FOCALER = ("focaler_riou", "focaler_rgiou", "focaler_reiou")


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
    from boxloss.registry import Registry

    with pytest.raises(ValueError, match="unknown box format 'obb'"):
        list_losses(boxes="obb")
    with pytest.raises(ValueError, match="boxes='obb' is not one of xyxy, xywhr"):
        Registry("box").register("a", boxes="obb")(lambda pred, target: pred)


def test_a_wrapped_loss_takes_its_bases_boxes():
    assert get_spec("focaler_riou").boxes == "xywhr" and get_spec("focaler_ciou").boxes == "xyxy"


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



# ---------------------------------------------------------------------------------------------------------
# 2. Independent float64 references, per box, in plain Python
# ---------------------------------------------------------------------------------------------------------

def box_corners(box):
    """Corners of (x, y, w, h, θ): centre + R(θ)(±w/2, ±h/2), counter-clockwise (ultralytics' xywhr2xyxyxyxy)."""
    x, y, w, h, angle = box
    cos, sin = math.cos(angle), math.sin(angle)
    return [(x + cos * sx * w / 2 - sin * sy * h / 2, y + sin * sx * w / 2 + cos * sy * h / 2)
            for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _inside(point, polygon):
    """In the closed convex counter-clockwise polygon (on its boundary counts)."""
    scale = max(1.0, *(abs(c) for p in polygon for c in p))
    return all(_cross(polygon[i], polygon[(i + 1) % len(polygon)], point) >= -1e-12 * scale * scale
               for i in range(len(polygon)))


def _segment_crossing(p1, p2, q1, q2):
    denominator = (p2[0] - p1[0]) * (q2[1] - q1[1]) - (p2[1] - p1[1]) * (q2[0] - q1[0])
    if denominator == 0:
        return None
    t = ((q1[0] - p1[0]) * (q2[1] - q1[1]) - (q1[1] - p1[1]) * (q2[0] - q1[0])) / denominator
    u = ((q1[0] - p1[0]) * (p2[1] - p1[1]) - (q1[1] - p1[1]) * (p2[0] - p1[0])) / denominator
    return (p1[0] + t * (p2[0] - p1[0]), p1[1] + t * (p2[1] - p1[1])) if 0 <= t <= 1 and 0 <= u <= 1 else None


def _area_by_angle(points):
    """Area of the convex polygon with these vertices (any order, repeats allowed): sorted about their mean."""
    if len(points) < 3:
        return 0.0
    cx, cy = sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points)
    ring = sorted(points, key=lambda p: math.atan2(p[1] - cy, p[0] - cx))
    return abs(sum(ring[i][0] * ring[i - 1][1] - ring[i - 1][0] * ring[i][1] for i in range(len(ring)))) / 2


def intersection_reference(p, t):
    """Vertex enumeration (not clipping): the corners of each box inside the other and the crossings of their edges
    are the intersection's vertices."""
    a, b = box_corners(p), box_corners(t)
    points = [v for v in a if _inside(v, b)] + [v for v in b if _inside(v, a)]
    points += [x for i in range(4) for j in range(4)
               if (x := _segment_crossing(a[i], a[(i + 1) % 4], b[j], b[(j + 1) % 4])) is not None]
    return _area_by_angle(points)


def iou_reference(p, t):
    inter = intersection_reference(p, t)
    return inter / (p[2] * p[3] + t[2] * t[3] - inter)


def hull_reference(points):
    """Andrew's monotone chain."""
    points = sorted(set(points))
    if len(points) < 3:
        return 0.0
    chains = []
    for sequence in (points, points[::-1]):
        chain = []
        for point in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
        chains += chain[:-1]
    return abs(sum(chains[i][0] * chains[i - 1][1] - chains[i - 1][0] * chains[i][1] for i in range(len(chains)))) / 2


def _to_target_frame(point, t):
    cos, sin = math.cos(t[4]), math.sin(t[4])
    dx, dy = point[0] - t[0], point[1] - t[1]
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _paired_sides(p, t):
    """Of the prediction's two descriptions (w, h, θ) and (h, w, θ + π/2), the one whose angle is within π/4 of the
    target's (angles of a box taken modulo π)."""
    def off(angle):
        return abs((angle - t[4] + math.pi / 2) % math.pi - math.pi / 2)

    return min(((p[2], p[3], off(p[4])), (p[3], p[2], off(p[4] + math.pi / 2))), key=lambda c: c[2])[:2]


def riou_reference(p, t):
    return 1 - iou_reference(p, t)


def rgiou_reference(p, t):
    inter = intersection_reference(p, t)
    union = p[2] * p[3] + t[2] * t[3] - inter
    hull = hull_reference(box_corners(p) + box_corners(t))
    return 1 - inter / union + (hull - union) / hull


def reiou_reference(p, t):
    """The issue's definition: C aligned to the target's axes, sides paired by orientation."""
    corners = [_to_target_frame(c, t) for c in box_corners(p)]
    xs, ys = [c[0] for c in corners] + [-t[2] / 2, t[2] / 2], [c[1] for c in corners] + [-t[3] / 2, t[3] / 2]
    cw, ch = max(xs) - min(xs), max(ys) - min(ys)
    rho2 = (p[0] - t[0]) ** 2 + (p[1] - t[1]) ** 2
    w, h = _paired_sides(p, t)
    return 1 - iou_reference(p, t) + rho2 / (cw**2 + ch**2) + (w - t[2]) ** 2 / cw**2 + (h - t[3]) ** 2 / ch**2


def focal_reiou_reference(p, t, gamma=0.5, norm="batch"):
    """The numerator wᵢ Lᵢ of the weighted mean (norm=batch divides by Σ w in the caller)."""
    return iou_reference(p, t) ** gamma * reiou_reference(p, t)


def _mmrotate_sigma(box):
    """mmrotate's xy_wh_r_2_xy_sigma: w, h clamped to [1e-7, 1e7], Σ = R diag(w/2, h/2)² Rᵀ."""
    x, y, w, h, angle = box
    w, h = min(max(w, 1e-7), 1e7), min(max(h, 1e-7), 1e7)
    return _gaussian((x, y, w, h, angle), 4)


def _matmul(a, b):
    return [[sum(a[i][k] * b[k][j] for k in range(2)) for j in range(2)] for i in range(2)]


def _trace(m):
    return m[0][0] + m[1][1]


def kld_reference(p, t, tau=1.0):
    """mmrotate gaussian_dist_loss_v1.kld_loss (fun=log1p): D = Δᵀ Σt⁻¹ Δ + tr(Σt⁻¹ Σp) + ln(|Σt|/|Σp|) − 2."""
    (mp, sp), (mt, st) = _mmrotate_sigma(p), _mmrotate_sigma(t)
    inverse = _inverse(st)
    delta = (mp[0] - mt[0], mp[1] - mt[1])
    d = _quadratic(inverse, delta) + _trace(_matmul(inverse, sp)) + math.log(_det(st) / _det(sp)) - 2
    return 1 - 1 / (tau + math.log1p(max(d, 1e-6)))


def gwd_reference(p, t, fun="log1p", tau=0.0, alpha=1.0, normalize=True):
    """mmrotate gaussian_dist_loss.gwd_loss, as written: tr Σp + tr Σt − 2 √(tr(Σp Σt) + 2 √(|Σp| |Σt|))."""
    (mp, sp), (mt, st) = _mmrotate_sigma(p), _mmrotate_sigma(t)
    xy = (mp[0] - mt[0]) ** 2 + (mp[1] - mt[1]) ** 2
    det_sqrt = math.sqrt(max(_det(sp) * _det(st), 0))
    shape = _trace(sp) + _trace(st) - 2 * math.sqrt(max(_trace(_matmul(sp, st)) + 2 * det_sqrt, 0))
    distance = math.sqrt(max(xy + alpha * alpha * shape, 0))
    if normalize:
        distance /= max(2 * math.sqrt(math.sqrt(det_sqrt)), 1e-7)
    value = math.log1p(distance) if fun == "log1p" else distance
    return 1 - 1 / (tau + value) if tau >= 1 else value


def kfiou_reference(p, t, fun="none", beta=1 / 9, eps=1e-6):
    """mmrotate kf_iou_loss.kfiou_loss's overlap term (Σ = Σp − Σp (Σp + Σt)⁻¹ Σp) plus the paper's centre term:
    smooth L1 of the centre offset in the target's frame over the target's width and height."""
    (_, sp), (_, st) = _mmrotate_sigma(p), _mmrotate_sigma(t)
    gain = _matmul(sp, _inverse([[sp[i][j] + st[i][j] for j in range(2)] for i in range(2)]))
    correction = _matmul(gain, sp)
    overlap = 4 * math.sqrt(max(_det([[sp[i][j] - correction[i][j] for j in range(2)] for i in range(2)]), 0))
    kfiou = overlap / (4 * math.sqrt(_det(sp)) + 4 * math.sqrt(_det(st)) - overlap + eps)
    term = {"none": 1 - kfiou, "ln": -math.log(kfiou + eps), "exp": math.exp(1 - kfiou) - 1}[fun]
    offset = _to_target_frame(p, t)
    scaled = (abs(offset[0]) / max(t[2], 1e-7), abs(offset[1]) / max(t[3], 1e-7))
    return term + sum(0.5 * x * x / beta if x < beta else x - 0.5 * beta for x in scaled)


REFERENCES = {"probiou": probiou_reference, "kld": kld_reference, "gwd": gwd_reference, "kfiou": kfiou_reference,
              "riou": riou_reference, "rgiou": rgiou_reference, "reiou": reiou_reference,
              "focal_reiou": focal_reiou_reference}
# every non-default value a parameter is checked at (besides the defaults)
REFERENCE_KWARGS = {"probiou": [{"floor": 0.0}], "kld": [{"tau": 2.0}],
                    "gwd": [{"fun": "none"}, {"tau": 1.0}, {"alpha": 2.0}, {"normalize": False}],
                    "kfiou": [{"fun": "ln"}, {"fun": "exp"}, {"beta": 0.5}],
                    "focal_reiou": [{"gamma": 2.0}, {"norm": "none"}]}
REFERENCE_CASES = [(name, {}) for name in REFERENCES] + [(name, kwargs) for name, variants in REFERENCE_KWARGS.items()
                                                         for kwargs in variants]


def test_every_rotated_loss_has_a_reference():
    unwrapped = {name for name in list_losses(boxes="xywhr") if not get_spec(name).wraps}
    assert unwrapped == set(REFERENCES) == set(ROTATED)


@pytest.fixture(scope="module")
def rotated_pairs():
    """Seeded float64 pairs, a quarter disjoint, with every angle (random_rotated_boxes)."""
    pred, target = random_rotated_boxes(400, seed=11, dtype=torch.float64)
    iou = aligned_rotated_iou(pred, target)
    assert (iou == 0).sum() >= 100 and (iou > 0).sum() >= 250
    return pred, target


@pytest.mark.parametrize("name, kwargs", REFERENCE_CASES,
                         ids=[name + "".join(f"[{k}={v}]" for k, v in kw.items()) for name, kw in REFERENCE_CASES])
def test_rotated_losses_match_their_references(rotated_pairs, name, kwargs):
    """Tolerance 1e-6: the losses' eps = 1e-7 on the union, c² and the enclosures (unit-scale boxes) and ProbIoU's eps
    terms; the references have none. (GWD floors its distance at eps: |log1p(eps) − log1p(0)| < 1e-6.)"""
    pred, target = rotated_pairs
    if name == "probiou":  # away from the clamp B >= eps that the reference does not have
        keep = torch.tensor([probiou_reference(p, t, **kwargs) > 0.05 for p, t in zip(_rows(pred), _rows(target))])
        pred, target = pred[keep], target[keep]
    expected = [REFERENCES[name](p, t, **kwargs) for p, t in zip(_rows(pred), _rows(target))]
    torch.testing.assert_close(get_loss(name)(pred, target, **kwargs), torch.tensor(expected, dtype=torch.float64),
                               rtol=0, atol=1e-6)


def test_focal_reiou_batch_norm_is_the_weighted_mean(rotated_pairs):
    """norm=batch: Σ loss / Σ w is the paper's Σ wᵢ Lᵢ / Σ wᵢ with wᵢ = IoUᵢ^γ; γ = 0 is reiou exactly."""
    pred, target = rotated_pairs
    weight = torch.tensor([iou_reference(p, t) ** 0.5 for p, t in zip(_rows(pred), _rows(target))],
                          dtype=torch.float64)
    reiou = torch.tensor([reiou_reference(p, t) for p, t in zip(_rows(pred), _rows(target))], dtype=torch.float64)
    bound = get_spec("focal_reiou").bind()
    normaliser = bound.normalizer(pred, target)
    assert not normaliser.requires_grad
    torch.testing.assert_close(normaliser, weight, rtol=0, atol=1e-6)
    torch.testing.assert_close(bound(pred, target).sum() / normaliser.sum(), (weight * reiou).sum() / weight.sum(),
                               rtol=1e-6, atol=0)
    assert get_spec("focal_reiou").bind(norm="none").normalizer(pred, target) is None
    for norm in ("batch", "none"):
        assert torch.equal(get_loss("focal_reiou")(pred, target, gamma=0.0, norm=norm), get_loss("reiou")(pred, target))


def test_polygon_iou_matches_an_independent_exact_iou_and_torchvision(rotated_pairs):
    """Two independent exact IoUs: vertex enumeration in float64 (to rounding), and torchvision's rotated box_iou,
    which takes (cx, cy, w, h, degrees counter-clockwise) and computes in float32 (to 1e-5)."""
    pred, target = rotated_pairs
    ours = aligned_rotated_iou(pred, target, eps=0.0)
    expected = torch.tensor([iou_reference(p, t) for p, t in zip(_rows(pred), _rows(target))], dtype=torch.float64)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-10)
    degrees = torch.tensor([1, 1, 1, 1, -180 / math.pi], dtype=torch.float64)  # ultralytics' radians, negated
    torchvision_iou = tvops.box_iou(pred * degrees, target * degrees, fmt="cxcywhr").diagonal().double()
    torch.testing.assert_close(ours, torchvision_iou, rtol=0, atol=1e-5)


def test_torchvision_takes_degrees_with_the_opposite_sign():
    """By hand: a 4 × 1 box at the origin turned by +π/4 in ultralytics' convention lies along (1, 1) (its corners are
    R(θ)(±2, ±0.5)), so it contains the 0.5 × 0.5 square centred at (1, 1) — (1 ± 0.25, 1 ± 0.25) is within 2 along
    (1, 1)/√2 and within 0.5 across — and misses the one at (1, −1): IoU 0.25/4 = 1/16 and 0. torchvision gives these
    at −45 degrees, and the mirror image at +45."""
    long_box = torch.tensor([[0, 0, 4, 1, math.pi / 4]] * 2, dtype=torch.float64)
    squares = torch.tensor([[1, 1, 0.5, 0.5, 0], [1, -1, 0.5, 0.5, 0]], dtype=torch.float64)
    torch.testing.assert_close(aligned_rotated_iou(long_box, squares, eps=0.0),
                               torch.tensor([1 / 16, 0], dtype=torch.float64))
    degrees = torch.tensor([1, 1, 1, 1, 180 / math.pi], dtype=torch.float64)
    minus = tvops.box_iou(long_box * degrees * torch.tensor([1, 1, 1, 1, -1]), squares, fmt="cxcywhr").diagonal()
    plus = tvops.box_iou(long_box * degrees, squares, fmt="cxcywhr").diagonal()
    torch.testing.assert_close(minus.double(), torch.tensor([1 / 16, 0], dtype=torch.float64), rtol=0, atol=1e-6)
    torch.testing.assert_close(plus.double(), torch.tensor([0, 1 / 16], dtype=torch.float64), rtol=0, atol=1e-6)


# Hull cases with repeated and collinear corners, and the hull's area by hand: side by side (4 × 2); identical (2 × 2);
# diagonal neighbours (3 × 3 − 2 · ½); stacked halves (2 × 2); an L of unit squares sharing a corner that is inside
# the hull (2 × 2 − 2 · ½); nested (the outer box); a segment and a box (a pentagon: 2 × 2 + ½ · 2 · 1); two points.
HULL_CASES = ([[0, 0, 2, 2, 0], [0, 0, 2, 2, 0], [1, 1, 2, 2, 0], [0, 0, 2, 1, 0], [0.5, 0.5, 1, 1, 0],
               [0, 0, 1, 1, 0.3], [0, 1.5, 1, 0, math.pi / 2], [3, 3, 0, 0, 0]],
              [[2, 0, 2, 2, 0], [0, 0, 2, 2, 0], [2, 2, 2, 2, 0], [0, 1, 2, 1, 0], [1.5, 1.5, 1, 1, 0],
               [0, 0, 5, 4, 0], [0, 0, 2, 2, 0], [3, 3, 0, 0, 0.5]])
HULL_AREAS = [8.0, 4.0, 8.0, 4.0, 3.0, 20.0, 5.0, 0.0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_convex_hull_area_matches_the_monotone_chain(dtype):
    """Random pairs, the same pairs with the prediction moved onto its target (up to 1e-5: nearly repeated and
    collinear corners), and HULL_CASES."""
    from boxloss.losses._rotated_geometry import convex_hull_area, corners, target_frame

    pred, target = random_rotated_boxes(300, seed=12, dtype=torch.float64)
    nearly = target + 1e-5 * torch.randn(target.shape, generator=torch.Generator().manual_seed(15), dtype=torch.float64)
    pred = torch.cat((pred, nearly, torch.tensor(HULL_CASES[0], dtype=torch.float64))).to(dtype)
    target = torch.cat((target, target, torch.tensor(HULL_CASES[1], dtype=torch.float64))).to(dtype)
    pred_corners, target_corners = corners(target_frame(pred, target))
    ours = convex_hull_area(pred_corners, target_corners)
    expected = torch.tensor([hull_reference(box_corners(p) + box_corners(t)) for p, t in
                             zip(_rows(pred.double()), _rows(target.double()))], dtype=torch.float64)
    assert expected[-len(HULL_AREAS):].tolist() == pytest.approx(HULL_AREAS, abs=1e-12)
    torch.testing.assert_close(ours.double(), expected, rtol=1e-5 if dtype == torch.float32 else 1e-12, atol=0)


# ---------------------------------------------------------------------------------------------------------
# 3. Hand cases and properties
# ---------------------------------------------------------------------------------------------------------

def test_square_turned_45_degrees_blinds_every_gaussian_loss_and_no_polygon_loss():
    """A 4 × 4 square against itself turned by π/4: the Gaussians coincide (isotropic), so every Gaussian loss reads
    what it reads for identical boxes (≈ 0; KFIoU's 2/3), while the exact IoU is 1/√2 and the polygon losses see it."""
    square = torch.tensor([[5, 5, 4, 4, 0]], dtype=torch.float64)
    turned = torch.tensor([[5, 5, 4, 4, math.pi / 4]], dtype=torch.float64)
    for name in GAUSSIAN:
        torch.testing.assert_close(get_loss(name)(turned, square), get_loss(name)(square, square), rtol=0, atol=1e-9)
        assert get_loss(name)(turned, square).item() == pytest.approx(2 / 3 if name == "kfiou" else 0, abs=1e-3)
    assert aligned_rotated_iou(turned, square, eps=0.0).item() == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    for name in POLYGON:
        assert get_loss(name)(turned, square).item() > 0.1 > get_loss(name)(square, square).item()


def _other_descriptions(boxes):
    """The same boxes as (h, w, θ + π/2) and as (w, h, θ + π)."""
    x, y, w, h, angle = boxes.unbind(-1)
    return torch.stack((x, y, h, w, angle + math.pi / 2), -1), torch.stack((x, y, w, h, angle + math.pi), -1)


@pytest.mark.parametrize("name", ROTATED + FOCALER)
def test_a_box_described_otherwise_gives_the_same_loss(rotated_pairs, name):
    """(w, h, θ), (h, w, θ + π/2) and (w, h, θ + π) are one box: for the prediction and for the target."""
    pred, target = rotated_pairs
    loss = get_loss(name)(pred, target)
    for other in _other_descriptions(pred):
        torch.testing.assert_close(get_loss(name)(other, target), loss, rtol=0, atol=1e-9)
    for other in _other_descriptions(target):
        torch.testing.assert_close(get_loss(name)(pred, other), loss, rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ROTATED)
def test_rigid_motion_of_both_boxes_changes_nothing(rotated_pairs, name):
    """Turning both boxes about a point and moving them leaves every loss as it was (ProbIoU included)."""
    pred, target = rotated_pairs
    angle, shift = 0.9, torch.tensor([13.0, -7.0], dtype=torch.float64)
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]],
                            dtype=torch.float64)

    def moved(boxes):
        return torch.cat((boxes[:, :2] @ rotation.T + shift, boxes[:, 2:4], boxes[:, 4:] + angle), 1)

    torch.testing.assert_close(get_loss(name)(moved(pred), moved(target)), get_loss(name)(pred, target),
                               rtol=0, atol=1e-9)


@pytest.mark.parametrize("name", ["riou", "rgiou", "reiou", "kld", "gwd", "kfiou"])
def test_scale_free_losses_are_unchanged_on_huge_boxes(rotated_pairs, name):
    """Boxes 1000 times larger (centres up to 8e4, sides up to 2e4) give the same loss; in float32 too, to 1e-4."""
    pred, target = rotated_pairs
    scale = torch.tensor([1e3, 1e3, 1e3, 1e3, 1], dtype=torch.float64)
    loss = get_loss(name)(pred, target)
    torch.testing.assert_close(get_loss(name)(pred * scale, target * scale), loss, rtol=0, atol=1e-6)
    huge = get_loss(name)((pred * scale).float(), (target * scale).float())
    assert torch.isfinite(huge).all()
    torch.testing.assert_close(huge.double(), loss, rtol=0, atol=1e-4)


# Disjoint pairs in generic position: the prediction left of / below its target, turned.
DISJOINT = ([[0, 0, 1, 1.5, 0.3], [0, 0, 2, 1, -0.5]], [[3.5, 1, 0.7, 1.5, 1.1], [3, -4, 1, 1, 0.2]])


@pytest.mark.parametrize("name", ["rgiou", "reiou", "focaler_rgiou", "focaler_reiou", "kld", "gwd", "kfiou"])
def test_disjoint_boxes_still_get_a_gradient_towards_the_target(name):
    pred = torch.tensor(DISJOINT[0], dtype=torch.float64, requires_grad=True)
    target = torch.tensor(DISJOINT[1], dtype=torch.float64)
    assert (aligned_rotated_iou(pred, target) == 0).all()
    get_loss(name)(pred, target).sum().backward()
    step = -pred.grad[:, :2]  # a descent step on the centre
    assert ((step * (target[:, :2] - pred[:, :2]).detach()).sum(1) > 0).all()


@pytest.mark.parametrize("name", ["riou", "focal_reiou", "focaler_riou"])
def test_disjoint_boxes_get_no_gradient_from_the_iou_alone(name):
    pred = torch.tensor(DISJOINT[0], dtype=torch.float64, requires_grad=True)
    loss = get_loss(name)(pred, torch.tensor(DISJOINT[1], dtype=torch.float64))
    loss.sum().backward()
    assert torch.equal(pred.grad, torch.zeros_like(pred))


def _xywhr(xyxy, angle=0.0):
    centre, size = (xyxy[:, :2] + xyxy[:, 2:]) / 2, xyxy[:, 2:] - xyxy[:, :2]
    return torch.cat((centre, size, torch.full_like(size[:, :1], angle)), 1)


def test_reiou_is_eiou_at_angle_zero():
    """Both angles 0 (and both π: the same boxes): reiou's value and terms are eiou's, to the eps terms (eiou adds eps
    to the heights as ultralytics does; see test_losses._eps_tolerance)."""
    pred, target = random_boxes(2000, seed=13, dtype=torch.float64)
    expected, expected_terms = get_spec("eiou").bind().terms(pred, target)
    tolerance = _eps_tolerance(pred, target)
    for angle in (0.0, math.pi):
        loss, terms = get_spec("reiou").bind().terms(_xywhr(pred, angle), _xywhr(target, angle))
        torch.testing.assert_close(loss, expected, rtol=0, atol=tolerance)
        for name in ("iou", "dist", "w", "h"):
            torch.testing.assert_close(terms[name], expected_terms[name], rtol=0, atol=tolerance)
    assert torch.equal(eiou_loss(pred, target), expected)


def test_reiou_pairs_the_sides_by_orientation():
    """The prediction (2, 4, π/2 + δ) is the box (4, 2, δ): against a target at angle 0 its width term compares 4 with
    the target's width, not 2, for every small δ; beyond π/4 the pairing changes side."""
    target = torch.tensor([[0, 0, 4, 2, 0]] * 3, dtype=torch.float64)
    pred = torch.tensor([[0, 0, 2, 4, math.pi / 2 + d] for d in (-0.3, 0.0, 0.3)], dtype=torch.float64)
    _, terms = get_spec("reiou").bind().terms(pred, target)
    assert torch.equal(terms["w"], torch.zeros(3, dtype=torch.float64))
    assert torch.equal(terms["h"], torch.zeros(3, dtype=torch.float64))
    beyond = torch.tensor([[0, 0, 2, 4, math.pi / 4 - 0.01], [0, 0, 2, 4, math.pi / 4 + 0.01]], dtype=torch.float64)
    _, terms = get_spec("reiou").bind().terms(beyond, target[:2])
    assert terms["w"][0] > 0 and terms["w"][1] == 0


@pytest.mark.parametrize("name", ROTATED + FOCALER)
def test_terms_add_up_to_the_loss(rotated_pairs, name):
    pred, target = rotated_pairs
    loss, terms = get_spec(name).bind().terms(pred, target)
    torch.testing.assert_close(sum(terms.values()), loss, rtol=1e-12, atol=1e-12)
    assert torch.equal(loss, get_loss(name)(pred, target))


def test_the_iou_term_is_one_minus_the_iou_the_loss_is_built_on(rotated_pairs):
    """The wrappers and the assigner read ``terms["iou"]``: 1 − the exact IoU for the polygon losses, 1 − ProbIoU for
    probiou (iou_based); the other Gaussian losses are not IoU-type."""
    pred, target = rotated_pairs
    exact = 1.0 - aligned_rotated_iou(pred, target)
    for name in ("riou", "rgiou", "reiou"):
        assert get_spec(name).iou_based
        assert torch.equal(get_spec(name).bind().terms(pred, target)[1]["iou"], exact), name
    assert get_spec("probiou").iou_based
    assert torch.equal(get_spec("probiou").bind().terms(pred, target)[1]["iou"], get_loss("probiou")(pred, target))
    assert not any(get_spec(name).iou_based for name in ("kld", "gwd", "kfiou", "focal_reiou"))


# ---------------------------------------------------------------------------------------------------------
# 4. The wrappers on rotated losses
# ---------------------------------------------------------------------------------------------------------

def test_only_focaler_wraps_rotated_losses_and_only_those_on_the_exact_iou():
    """Focaler- reads nothing but the IoU: it applies to riou, rgiou and reiou. Not to probiou (a similarity of
    Gaussians, not the boxes' IoU), not to the non-IoU Gaussian losses; Inner- (xyxy arithmetic) and Alpha- (the
    paper's axis-aligned family) apply to no rotated loss."""
    wrapped = {name for name in list_losses(boxes="xywhr") if get_spec(name).wraps}
    assert wrapped == set(FOCALER)
    assert all(get_spec(name).boxes == "xywhr" for name in wrapped)
    for prefix in ("inner", "alpha", "focaler"):
        assert f"{prefix}_probiou" not in list_losses()
    with pytest.raises(KeyError, match="unknown box loss 'inner_riou'"):
        get_loss("inner_riou")


def test_a_new_rotated_iou_type_loss_gets_no_wrapper_until_named():
    """The wrappers decide on ``LossSpec.boxes``: an IoU-type xyxy loss takes inner_ and focaler_ at once, a new
    IoU-type xywhr loss none of them (its IoU may be a Gaussian one)."""
    from boxloss.registry import BOX_LOSSES, LossSpec

    def loss(pred, target):
        return pred.sum(-1)

    new_xyxy = LossSpec("new_loss", loss, None, iou_based=True)
    new_rotated = LossSpec("new_rotated_loss", loss, None, iou_based=True, boxes="xywhr")
    wrappers = BOX_LOSSES.wrappers()
    assert {prefix for prefix, w in wrappers.items() if w.applies(new_xyxy)} == {"inner", "focaler"}
    assert not any(w.applies(new_rotated) for w in wrappers.values())


@pytest.mark.parametrize("name", FOCALER)
def test_focaler_on_rotated_losses_matches_its_equation(rotated_pairs, name):
    pred, target = rotated_pairs
    base = get_spec(name).wraps
    d, u = 0.05, 0.9
    expected = []
    for p, t in zip(_rows(pred), _rows(target)):
        iou = iou_reference(p, t)
        expected.append(REFERENCES[base](p, t) + iou - min(1.0, max(0.0, (iou - d) / (u - d))))
    torch.testing.assert_close(get_loss(name)(pred, target, d=d, u=u), torch.tensor(expected, dtype=torch.float64),
                               rtol=0, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", FOCALER)
def test_focaler_identity_gives_back_the_rotated_loss_exactly(name, dtype):
    pred, target = random_rotated_boxes(500, seed=14, dtype=dtype)
    base = get_spec(name).wraps
    assert torch.equal(get_loss(name)(pred, target, d=0.0, u=1.0), get_loss(base)(pred, target))
