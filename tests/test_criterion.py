"""The configurable criterion against stock ultralytics and against an independent recomputation."""

import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.data import build_yolo_dataset
from ultralytics.data.utils import check_det_dataset
from ultralytics.utils.loss import v8DetectionLoss

import boxloss
from boxloss.yolo import BoxLossCriterion, BoxLossDetectionModel


@pytest.fixture(scope="module")
def real_batch(mini_data):
    """One batch of 4 training images (128 px) of the embedded dataset, through ultralytics' own pipeline."""
    cfg = get_cfg(overrides={"imgsz": 128, "mosaic": 0.0, "fliplr": 0.0})
    data = check_det_dataset(str(mini_data))
    dataset = build_yolo_dataset(cfg, data["train"], 4, data, mode="val", stride=32)
    batch = dataset.collate_fn([dataset[i] for i in range(4)])
    batch["img"] = batch["img"].float() / 255
    assert batch["cls"].numel() > 0
    return batch


def make_model(**overrides):
    torch.manual_seed(0)
    model = BoxLossDetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model.args = get_cfg(overrides=overrides)
    return model.train()


def loss_and_grads(model, criterion, batch):
    model.zero_grad()
    loss, items = criterion(model(batch["img"]), batch)
    loss.sum().backward()
    return loss.detach(), items, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def test_ciou_is_the_stock_criterion_bit_for_bit(real_batch):
    model = make_model(box_loss="ciou")
    stock_loss, stock_items, stock_grads = loss_and_grads(model, v8DetectionLoss(model), real_batch)
    ours_loss, ours_items, ours_grads = loss_and_grads(model, BoxLossCriterion(model), real_batch)
    assert torch.equal(stock_loss, ours_loss)
    for name in ("box_loss", "cls_loss", "dfl_loss"):
        assert torch.equal(stock_items[name], ours_items[name])
    assert len(stock_grads) == len(ours_grads) > 100
    assert all(torch.equal(a, b) for a, b in zip(stock_grads, ours_grads))


@pytest.mark.parametrize("name", boxloss.list_losses())
def test_box_loss_is_the_configured_one(real_batch, name):
    """box_loss equals box gain · Σ weight · get_loss(name)(pred, target) / Σ target scores, from the inputs."""
    model = make_model(box_loss=name)
    criterion = BoxLossCriterion(model)
    captured = {}
    criterion.bbox_loss.register_forward_hook(lambda module, args, out: captured.update(args=args))
    _, items, _ = loss_and_grads(model, criterion, real_batch)
    _, pred_bboxes, _, target_bboxes, target_scores, target_scores_sum, fg_mask, _, _ = captured["args"]
    weight = target_scores[fg_mask].sum(-1)
    per_box = boxloss.get_loss(name)(pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask])
    expected = model.args.box * (per_box * weight).sum() / target_scores_sum
    assert fg_mask.sum() > 0
    torch.testing.assert_close(items["box_loss"], expected, rtol=1e-5, atol=1e-6)
    terms = [value for key, value in items.items() if key.startswith("box_") and key != "box_loss"]
    assert terms, "the parts of the box loss are logged"
    torch.testing.assert_close(sum(terms), items["box_loss"], rtol=1e-5, atol=1e-5)


def test_eiou_logs_width_and_height_terms_ciou_logs_aspect(real_batch):
    _, eiou_items, _ = loss_and_grads(make_model(box_loss="eiou"), BoxLossCriterion(make_model(box_loss="eiou")),
                                      real_batch)
    assert {"box_iou", "box_dist", "box_w", "box_h"} <= set(eiou_items) and "box_aspect" not in eiou_items
    model = make_model(box_loss="ciou")
    _, ciou_items, _ = loss_and_grads(model, BoxLossCriterion(model), real_batch)
    assert {"box_iou", "box_dist", "box_aspect"} <= set(ciou_items) and "box_w" not in ciou_items


def test_box_terms_can_be_switched_off(real_batch):
    model = make_model(box_loss="eiou", box_terms=False)
    _, items, _ = loss_and_grads(model, BoxLossCriterion(model), real_batch)
    assert set(items) == {"box_loss", "cls_loss", "dfl_loss"}


def test_iou_balanced_cls_keeps_the_loss_and_changes_the_gradient(real_batch):
    """IoU-balanced classification re-weights positives with their sum kept: same value, other gradient."""
    plain = make_model()
    plain_loss, _, plain_grads = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    balanced = make_model(iou_balanced_cls=True)
    balanced_loss, _, balanced_grads = loss_and_grads(balanced, BoxLossCriterion(balanced), real_batch)
    torch.testing.assert_close(plain_loss[1], balanced_loss[1], rtol=1e-5, atol=1e-6)
    assert torch.equal(plain_loss[0], balanced_loss[0])
    assert any(not torch.allclose(a, b) for a, b in zip(plain_grads, balanced_grads))


def test_iou_balanced_loc_lowers_the_box_loss(real_batch):
    """IoU^λ <= 1 with w_loc = 1 shrinks every positive's box loss; λ = 0 gives back the plain loss."""
    plain = make_model()
    plain_loss, _, _ = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    weighted = make_model(iou_balanced_loc=True)
    weighted_loss, _, _ = loss_and_grads(weighted, BoxLossCriterion(weighted), real_batch)
    assert weighted_loss[0] < plain_loss[0]
    neutral = make_model(iou_balanced_loc=True, iou_balanced_lambda=0.0)
    neutral_loss, _, _ = loss_and_grads(neutral, BoxLossCriterion(neutral), real_batch)
    torch.testing.assert_close(neutral_loss, plain_loss)


def test_focal_cls_with_gamma_0_and_no_alpha_is_bce(real_batch):
    plain = make_model()
    plain_loss, _, _ = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    focal = make_model(cls_loss="focal", cls_focal_gamma=0.0, cls_focal_alpha=-1.0)
    focal_loss, _, _ = loss_and_grads(focal, BoxLossCriterion(focal), real_batch)
    torch.testing.assert_close(focal_loss, plain_loss)
    real_focal = make_model(cls_loss="focal")
    real_focal_loss, _, _ = loss_and_grads(real_focal, BoxLossCriterion(real_focal), real_batch)
    assert real_focal_loss[1] < plain_loss[1]  # focal down-weights the many easy negatives
