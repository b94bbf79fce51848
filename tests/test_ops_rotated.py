"""Oriented boxes (boxloss.ops.rotated): ultralytics' corner convention, the sign and unit of torchvision's angle
checked on a hand case where the two conventions give different IoUs, the exact IoU against an independent float64
polygon clipping, invariances, degenerate input, and the minimum-area rectangle: ultralytics' own fit.
"""

import math

import numpy as np
import pytest
import torch

from boxloss.ops.rotated import min_area_rectangle, rotated_iou, xywhr_corners


# ---------------------------------------------------------------------------------------------------------------
# An independent exact IoU in float64: Sutherland-Hodgman clipping of one convex polygon by the other, shoelace areas
# ---------------------------------------------------------------------------------------------------------------
def reference_corners(box):
    """c ± (w/2)·u ± (h/2)·v with u = (cos θ, sin θ), v = (−sin θ, cos θ), in order around the rectangle."""
    cx, cy, w, h, theta = (float(v) for v in box)
    u = np.array([math.cos(theta), math.sin(theta)]) * w / 2
    v = np.array([-math.sin(theta), math.cos(theta)]) * h / 2
    centre = np.array([cx, cy])
    return [centre + u + v, centre - u + v, centre - u - v, centre + u - v]


def signed_area(polygon):
    return 0.5 * sum(p[0] * q[1] - q[0] * p[1] for p, q in zip(polygon, polygon[1:] + polygon[:1]))


def clip_convex(subject, clipper):
    """The part of convex ``subject`` inside convex ``clipper`` (both with positive signed area)."""
    output = list(subject)
    for a, b in zip(clipper, clipper[1:] + clipper[:1]):
        edge = b - a

        def side(p):  # > 0: left of a -> b, i.e. inside a positively oriented polygon
            return edge[0] * (p[1] - a[1]) - edge[1] * (p[0] - a[0])

        points, output = output, []
        for p, q in zip(points, points[1:] + points[:1]):
            p_side, q_side = side(p), side(q)
            if p_side >= 0:
                output.append(p)
            if (p_side >= 0) != (q_side >= 0):
                output.append(p + (q - p) * (p_side / (p_side - q_side)))
        if not output:
            return []
    return output


def reference_iou(box1, box2):
    first, second = reference_corners(box1), reference_corners(box2)
    first = first if signed_area(first) >= 0 else first[::-1]
    second = second if signed_area(second) >= 0 else second[::-1]
    area1, area2 = abs(signed_area(first)), abs(signed_area(second))
    inside = clip_convex(first, second)
    intersection = abs(signed_area(inside)) if len(inside) >= 3 else 0.0
    union = area1 + area2 - intersection
    return intersection / union if union > 0 else 0.0


def random_pairs(n, seed=0):
    """(n, 5) target boxes and predictions jittered from them: IoUs over (0, 1), some disjoint, any angle."""
    rng = np.random.default_rng(seed)
    long_side = np.exp(rng.uniform(np.log(2), np.log(200), n))
    target = np.column_stack([rng.uniform(0, 500, (n, 2)), long_side, long_side * rng.uniform(0.1, 1, n),
                              rng.uniform(-np.pi, np.pi, n)])
    spread = rng.uniform(0.0, 0.6, n)
    pred = target.copy()
    pred[:, :2] += rng.normal(0, 1, (n, 2)) * (spread * long_side)[:, None]
    pred[:, 2:4] *= np.exp(rng.normal(0, 1, (n, 2)) * spread[:, None])
    pred[:, 4] += rng.normal(0, 1, n) * spread * 2
    return target, pred


# ---------------------------------------------------------------------------------------------------------------
# The convention
# ---------------------------------------------------------------------------------------------------------------
def test_corners_are_ultralytics_xywhr2xyxyxyxy():
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    boxes, _ = random_pairs(200)
    np.testing.assert_allclose(xywhr_corners(boxes), xywhr2xyxyxyxy(boxes), rtol=0, atol=1e-9)
    np.testing.assert_allclose(xywhr_corners(boxes[:3]), [np.array(reference_corners(b))[[0, 3, 2, 1]]
                                                          for b in boxes[:3]], atol=1e-9)


def test_positive_angle_turns_the_width_axis_towards_plus_y():
    """ultralytics' θ = +π/4 lays a 100 x 2 box along the image diagonal y = x (x right, y down): its two far
    corners are (±(50 cos 45° − 1 sin 45°) , ±(50 sin 45° + 1 cos 45°)) about the centre, same signs."""
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    corners = xywhr2xyxyxyxy(np.array([[0.0, 0.0, 100.0, 2.0, math.pi / 4]]))[0]
    far = corners[np.argmax(np.abs(corners[:, 0]))]
    assert far[0] * far[1] > 0 and abs(far[0] - far[1]) < 2  # on y = x, not y = -x


def test_torchvision_takes_degrees_with_the_opposite_sign_by_hand():
    """Two 100 x 2 boxes along the diagonal y = x (ultralytics' θ = +π/4), the second shifted by (10, 10) along it:
    the overlap is 2 x (100 − 10√2), IoU = 2(100 − 10√2) / (400 − 2(100 − 10√2)) = 0.752201...; drawn along y = −x
    instead (the opposite sign), the shift is across the strips and they are disjoint. Hotcoco's sign is checked on
    the same pair in test_evaluation_obb.py."""
    from torchvision.ops import box_iou

    overlap = 2 * (100 - 10 * math.sqrt(2))
    expected = overlap / (400 - overlap)
    first = np.array([[100.0, 100.0, 100.0, 2.0, math.pi / 4]])
    second = np.array([[110.0, 110.0, 100.0, 2.0, math.pi / 4]])
    assert reference_iou(first[0], second[0]) == pytest.approx(expected, abs=1e-12)
    assert rotated_iou(first, second)[0, 0] == pytest.approx(expected, abs=1e-6)
    as_torchvision = {sign: torch.tensor([[100.0, 100.0, 100.0, 2.0, sign * 45.0]], dtype=torch.float64)
                      for sign in (1, -1)}
    shifted = {sign: torch.tensor([[110.0, 110.0, 100.0, 2.0, sign * 45.0]], dtype=torch.float64) for sign in (1, -1)}
    assert box_iou(as_torchvision[-1], shifted[-1], fmt="cxcywhr").item() == pytest.approx(expected, abs=1e-6)
    assert box_iou(as_torchvision[1], shifted[1], fmt="cxcywhr").item() == 0.0
    # radians given where degrees are expected would be a turn of 0.785°: nearly axis-aligned, IoU far from both
    radians = torch.tensor([[100.0, 100.0, 100.0, 2.0, -math.pi / 4]], dtype=torch.float64)
    assert box_iou(radians, radians + torch.tensor([10.0, 10, 0, 0, 0]), fmt="cxcywhr").item() == 0.0


def test_square_turned_45_degrees_against_itself_is_one_over_sqrt2():
    """Square [−1, 1]² and |x| + |y| <= √2: the square loses four corner triangles of legs 2 − √2, so
    intersection = 8√2 − 8, union = 16 − 8√2, IoU = 1/√2 = 0.7071."""
    square = np.array([[50.0, 50.0, 40.0, 40.0, 0.0]])
    turned = square + [0, 0, 0, 0, math.pi / 4]
    assert reference_iou(square[0], turned[0]) == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert rotated_iou(square, turned)[0, 0] == pytest.approx(1 / math.sqrt(2), abs=1e-6)


# ---------------------------------------------------------------------------------------------------------------
# The IoU matrix
# ---------------------------------------------------------------------------------------------------------------
def test_rotated_iou_is_the_exact_iou_on_random_pairs():
    target, pred = random_pairs(1000, seed=1)
    iou = rotated_iou(pred, target)  # [N, N]
    expected = np.array([reference_iou(p, t) for p, t in zip(pred, target)])
    assert iou.shape == (1000, 1000) and iou.dtype == np.float64
    np.testing.assert_allclose(np.diag(iou), expected, rtol=0, atol=2e-6)  # the kernel returns float32
    assert (expected > 0.5).sum() > 200 and (expected == 0).sum() > 20 and ((expected > 0) & (expected < 0.5)).any()
    off_diagonal = [(i, j) for i, j in np.random.default_rng(2).integers(0, 1000, (300, 2)) if i != j]
    np.testing.assert_allclose([iou[i, j] for i, j in off_diagonal],
                               [reference_iou(pred[i], target[j]) for i, j in off_diagonal], rtol=0, atol=2e-6)


def test_the_same_rectangle_written_another_way_has_the_same_iou():
    """(w, h, θ) = (h, w, θ + π/2) = (w, h, θ + π): every IoU is unchanged."""
    target, pred = random_pairs(100, seed=3)
    iou = rotated_iou(pred, target)
    swapped = pred[:, [0, 1, 3, 2, 4]] + [0, 0, 0, 0, math.pi / 2]
    turned = pred + [0, 0, 0, 0, math.pi]
    np.testing.assert_allclose(rotated_iou(swapped, target), iou, atol=2e-6)
    np.testing.assert_allclose(rotated_iou(turned, target), iou, atol=2e-6)
    np.testing.assert_allclose(rotated_iou(target, pred), iou.T, atol=2e-6)


def test_tensor_input_keeps_its_device_and_float32_output():
    target, pred = random_pairs(50, seed=4)
    expected = rotated_iou(pred, target)
    for dtype, tolerance in ((torch.float64, 2e-6), (torch.float32, 2e-5), (torch.float16, 0.05)):  # rounded boxes
        result = rotated_iou(torch.tensor(pred, dtype=dtype), torch.tensor(target, dtype=dtype))
        assert isinstance(result, torch.Tensor) and result.dtype == torch.float32 and result.shape == (50, 50)
        assert torch.isfinite(result).all()
        np.testing.assert_allclose(result.numpy(), expected, atol=tolerance)


def test_degenerate_boxes_give_finite_values():
    boxes = np.array([[10.0, 10.0, 0.0, 5.0, 0.3],  # no width
                      [10.0, 10.0, 0.0, 0.0, 0.0],  # a point
                      [1e6, 1e6, 10.0, 10.0, 0.3],  # far from the origin
                      [1e6 + 1, 1e6, 10.0, 10.0, 0.3],
                      [50.0, 50.0, 1e5, 1e-3, 1.0]])  # huge and thin
    iou = rotated_iou(boxes, boxes)
    assert np.isfinite(iou).all() and ((iou >= 0) & (iou <= 1 + 1e-6)).all()
    assert iou[0, 0] == 0.0 and iou[1, 1] == 0.0 and iou[0, 1] == 0.0  # no area, no IoU
    overlap = (10 - math.cos(0.3)) * (10 - math.sin(0.3))  # shifted by (1, 0): (cos 0.3, −sin 0.3) in its own axes
    assert iou[2, 3] == pytest.approx(overlap / (200 - overlap), abs=1e-5)
    assert iou[4, 4] == pytest.approx(1.0, abs=1e-5)
    assert rotated_iou(np.zeros((0, 5)), boxes).shape == (0, 5)
    assert rotated_iou(boxes, np.zeros((0, 5))).shape == (5, 0)


def test_bad_shapes_are_named():
    with pytest.raises(ValueError, match=r"boxes1 of shape \(N, 5\) xywhr, got \(3, 4\)"):
        rotated_iou(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="boxes2"):
        rotated_iou(np.zeros((3, 5)), np.zeros(5))


# ---------------------------------------------------------------------------------------------------------------
# The minimum-area rectangle
# ---------------------------------------------------------------------------------------------------------------
def test_min_area_rectangle_recovers_a_rectangle_from_its_shuffled_corners():
    rng = np.random.default_rng(5)
    target, _ = random_pairs(200, seed=5)
    for box in target:
        corners = xywhr_corners(box)[0][rng.permutation(4)]
        fitted = np.array(min_area_rectangle(corners))
        assert fitted[2] >= fitted[3] and -math.pi / 4 <= fitted[4] < 3 * math.pi / 4
        distances = np.linalg.norm(xywhr_corners(fitted)[0][:, None] - corners[None], axis=-1)  # [4, 4]
        assert distances.min(1).max() < 2e-4  # the same four corners, to cv2's float32 (ulp 3e-5 px at 500 px)


def test_min_area_rectangle_is_ultralytics_fit_of_a_general_quadrilateral():
    """DOTA corners are any quadrilateral: the rectangle is exactly ultralytics' xyxyxyxy2xywhr, ties included (a
    quadrilateral far from a rectangle can have two rectangles of least area, e.g. the 8th below), and no other
    enclosing rectangle flush with a hull edge is smaller (checked by trying every edge here)."""
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    rng = np.random.default_rng(6)
    target, _ = random_pairs(300, seed=6)
    quads = xywhr_corners(target) + rng.normal(0, 1, (300, 4, 2)) * target[:, None, 3:4] * 0.15  # [N, 4, 2]
    theirs = xyxyxyxy2xywhr(quads.reshape(-1, 8))
    for quad, other in zip(quads, theirs):
        fitted = min_area_rectangle(quad)
        assert fitted == tuple(other)
        smallest_flush = min(flush_rectangle_area(quad, quad[i], quad[(i + 1) % 4]) for i in range(4))
        assert fitted[2] * fitted[3] <= smallest_flush + 2e-4 * (fitted[2] + fitted[3])  # float32 sides


def flush_rectangle_area(points, a, b):
    """Area of the smallest rectangle around ``points`` with a side parallel to a -> b (float64)."""
    u = (b - a) / np.linalg.norm(b - a)
    along, across = points @ u, points @ np.array([-u[1], u[0]])
    return (along.max() - along.min()) * (across.max() - across.min())


def test_min_area_rectangle_of_degenerate_points():
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    point = min_area_rectangle([[3.0, 4.0]] * 4)
    assert point[:4] == (3.0, 4.0, 0.0, 0.0) and point == tuple(xyxyxyxy2xywhr(np.array([[3.0, 4.0] * 4]))[0])
    cx, cy, w, h, angle = min_area_rectangle([[0.0, 0.0], [2.0, 2.0], [4.0, 4.0], [1.0, 1.0]])  # collinear
    assert (cx, cy, w, h) == pytest.approx((2.0, 2.0, math.sqrt(32), 0.0)) and angle == pytest.approx(math.pi / 4)
    for bad in ([], [[0.0, float("nan")]], [[0.0, float("inf")], [1.0, 1.0]]):
        with pytest.raises(ValueError, match="finite points"):
            min_area_rectangle(bad)
