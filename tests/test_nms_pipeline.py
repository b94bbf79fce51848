"""DIoU-NMS inside ultralytics' pipeline (boxloss.yolo.postprocess): the same candidates and semantics as ultralytics'
non_max_suppression, only the suppression rule replaced; val.py, predict and the benchmark use it."""

from __future__ import annotations

import pytest
import torch
from ultralytics.utils.nms import non_max_suppression as stock_nms

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
