"""DIoU-NMS and exact rotated NMS inside ultralytics' pipeline (boxloss.yolo.postprocess): the same candidates and
semantics as ultralytics' non_max_suppression, only the suppression rule (DIoU) or the rotated IoU (exact polygon IoU
instead of ProbIoU) replaced; val.py, predict and the benchmark use it."""

from __future__ import annotations

import pytest
import torch
from ultralytics.utils.nms import non_max_suppression as stock_nms

from boxloss.ops.rotated import rotated_iou
from boxloss.yolo.postprocess import non_max_suppression


def random_predictions(batch=2, nc=3, anchors=600, seed=0):
    """Raw head output (B, 4 + nc, A): xywh boxes in a 320 px image, clustered so that NMS has work to do."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(batch, 2, 20, generator=g) * 300 + 10
    pick = torch.randint(0, 20, (batch, anchors), generator=g)
    xy = torch.gather(centres, 2, torch.stack([pick, pick], 1)) + torch.randn(batch, 2, anchors, generator=g) * 6
    wh = torch.rand(batch, 2, anchors, generator=g) * 60 + 8
    scores = torch.rand(batch, nc, anchors, generator=g) ** 3
    return torch.cat((xy, wh, scores), 1)


@pytest.mark.parametrize("multi_label", [True, False])
@pytest.mark.parametrize("agnostic", [False, True])
@pytest.mark.parametrize("classes", [None, [0, 2]])
def test_diou_with_a_vanishing_penalty_is_ultralytics_nms_exactly(multi_label, agnostic, classes):
    """As β → ∞ the penalty (ρ²/c²)^β vanishes (ρ < c), so DIoU-NMS is plain NMS: same rows, same order."""
    prediction = random_predictions()
    for conf, iou, max_det in ((0.001, 0.7, 300), (0.25, 0.45, 20)):
        stock = stock_nms(prediction, conf, iou, classes, agnostic, multi_label, max_det)
        ours = non_max_suppression(prediction, conf, iou, classes, agnostic, multi_label, max_det, method="diou",
                                   beta=1e4)
        assert len(stock) == len(ours) == 2
        for a, b in zip(stock, ours):
            assert a.shape == b.shape and a.shape[0] > 0
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_standard_is_ultralytics_untouched():
    prediction = random_predictions(seed=1)
    for a, b in zip(stock_nms(prediction, 0.001, 0.7, multi_label=True),
                    non_max_suppression(prediction, 0.001, 0.7, multi_label=True)):
        assert torch.equal(a, b)


def test_diou_keeps_the_occluded_neighbour_that_plain_nms_removes():
    """Two same-class 100 × 20 boxes 30 px apart: IoU = 1400/2600 = 0.538 > ε = 0.5, ρ²/c² = 900/17300 = 0.052, so
    IoU − ρ²/c² = 0.486 < 0.5: DIoU-NMS keeps both, plain NMS removes the lower-scored one. A near-duplicate 2 px
    away (IoU 0.96) is removed by both."""
    boxes = torch.tensor([[50.0, 10.0, 100.0, 20.0], [80.0, 10.0, 100.0, 20.0], [52.0, 10.0, 100.0, 20.0]])  # xywh
    scores = torch.tensor([[0.9, 0.8, 0.85]])
    prediction = torch.cat((boxes.T, scores), 0)[None]  # (1, 5, 3): one class
    standard = non_max_suppression(prediction, 0.1, 0.5)[0]
    diou = non_max_suppression(prediction, 0.1, 0.5, method="diou")[0]
    assert standard[:, 4].tolist() == pytest.approx([0.9])
    assert diou[:, 4].tolist() == pytest.approx([0.9, 0.8])  # the neighbour survives, the duplicate does not


def test_end_to_end_output_and_unknown_method():
    e2e = torch.tensor([[[0.0, 0.0, 10.0, 10.0, 0.9, 1.0], [0.0, 0.0, 10.0, 10.0, 0.0005, 0.0]]])
    assert non_max_suppression(e2e, 0.001, 0.7, method="diou")[0].shape == (1, 6)
    with pytest.raises(ValueError, match="standard, diou"):
        non_max_suppression(e2e, 0.001, 0.7, method="soft")


def rotated_predictions(nc=2, anchors=400, seed=0):
    """Raw OBB head output (1, 4 + nc + 1, A): xywh in a 320 px image, class scores, angle (radians) last."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(2, 15, generator=g) * 280 + 20
    pick = torch.randint(0, 15, (anchors,), generator=g)
    xy = centres[:, pick] + torch.randn(2, anchors, generator=g) * 4
    wh = torch.rand(2, anchors, generator=g) * 40 + 6
    angle = torch.rand(1, anchors, generator=g) * torch.pi - torch.pi / 4
    return torch.cat((xy, wh, torch.rand(nc, anchors, generator=g) ** 3, angle), 0)[None]


def test_exact_nms_keeps_the_square_turned_45_degrees_that_probiou_suppresses():
    """A 20 px square and the same square turned by 45°: ProbIoU 1 (a square's Gaussian is isotropic), exact IoU
    1/√2 (the regular octagon, 2(√2 − 1)a², over the union, 2a² minus it). At ε = 0.75 ultralytics' rotated NMS
    suppresses the second; exact keeps both. A copy 1 px away (exact IoU 380/420 = 0.905) goes in both."""
    boxes = torch.tensor([[50.0, 50, 20, 20, 0], [50, 50, 20, 20, torch.pi / 4], [51, 50, 20, 20, 0]])  # xywhr
    scores = torch.tensor([0.9, 0.8, 0.85])
    prediction = torch.cat((boxes[:, :4].T, scores[None], boxes[:, 4:].T), 0)[None]  # (1, 6, 3): one class
    assert rotated_iou(boxes, boxes)[0, 1:].tolist() == pytest.approx([2 ** -0.5, 380 / 420], abs=1e-6)
    standard = non_max_suppression(prediction, 0.1, 0.75, nc=1, rotated=True)[0]
    exact = non_max_suppression(prediction, 0.1, 0.75, nc=1, rotated=True, method="exact")[0]
    assert standard[:, 4].tolist() == pytest.approx([0.9])
    assert exact[:, 4].tolist() == pytest.approx([0.9, 0.8])
    torch.testing.assert_close(exact[1, [0, 1, 2, 3, 6]], boxes[1])  # x, y, w, h, ..., angle last, as ultralytics


@pytest.mark.parametrize("agnostic", [False, True])
def test_exact_nms_is_ultralytics_fast_nms_on_the_polygon_iou(agnostic):
    """Random clustered oriented boxes: the rows kept are ultralytics' own candidates (multi-label, conf, class
    offsets of 7680 px) with Fast-NMS on the exact IoU written out here: a box goes when any higher-scored box of its
    class overlaps it above ε; ProbIoU keeps another set."""
    prediction = rotated_predictions()
    iou_threshold = 0.5
    exact = non_max_suppression(prediction, 0.05, iou_threshold, agnostic=agnostic, multi_label=True, nc=2,
                                rotated=True, method="exact")[0]
    standard = non_max_suppression(prediction, 0.05, iou_threshold, agnostic=agnostic, multi_label=True, nc=2,
                                   rotated=True)[0]
    rows = prediction[0].T  # (A, 4 + 2 + 1)
    i, j = torch.where(rows[:, 4:6] > 0.05)
    candidates = torch.cat((rows[i, :4], rows[i, 4 + j, None], j[:, None].float(), rows[i, 6:]), 1)
    order = candidates[:, 4].argsort(descending=True)
    candidates = candidates[order]
    boxes = torch.cat((candidates[:, :4], candidates[:, 6:]), 1).double()
    iou = rotated_iou(boxes, boxes).double().triu(diagonal=1)
    if not agnostic:
        iou *= candidates[:, 5, None] == candidates[:, 5]
    expected = candidates[(iou > iou_threshold).sum(0) == 0][:300]
    assert len(exact) == len(expected) > 20
    torch.testing.assert_close(exact, expected, rtol=0, atol=0)
    assert len(standard) != len(exact)


def test_exact_nms_refuses_axis_aligned_boxes_and_diou_rotated_ones():
    prediction = random_predictions(batch=1)
    with pytest.raises(ValueError, match="exact is for rotated boxes"):
        non_max_suppression(prediction, 0.001, 0.7, method="exact")
    with pytest.raises(ValueError, match="diou is for axis-aligned boxes"):
        non_max_suppression(rotated_predictions(), 0.001, 0.7, nc=2, rotated=True, method="diou")
