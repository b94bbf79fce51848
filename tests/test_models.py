"""Every detector family ultralytics 8.4.190 builds: one training step with EIoU, stock-exact CIoU, end-to-end heads
(YOLOv10, YOLO26: E2ELoss on both branches, reg_max 1 without DFL), the assigner's metric, the IoU-aware head.

These back the README's supported-model table row by row (n scale, 64 px, seconds each).
"""

from __future__ import annotations

import pytest
import torch
from conftest import build_model, loss_and_grads, training_batch
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss

from boxloss.yolo import BoxLossCriterion, BoxLossDetectionModel
from boxloss.yolo.iou_aware import IoUAwareCriterion, add_iou_branch

FAMILIES = {  # README table: family -> model YAML (n scale)
    "YOLOv5u": "yolov5nu.yaml", "YOLOv8": "yolov8n.yaml", "YOLOv9": "yolov9t.yaml", "YOLOv10": "yolov10n.yaml",
    "YOLO11": "yolo11n.yaml", "YOLO12": "yolo12n.yaml", "YOLO26": "yolo26n.yaml",
}
END_TO_END = {"yolov10n.yaml", "yolo26n.yaml"}


@pytest.fixture(scope="module")
def batch64(mini_data):
    return training_batch(mini_data, 64)


def build(yaml: str, cls=BoxLossDetectionModel, **overrides):
    return build_model(yaml, cls, **overrides)


@pytest.mark.parametrize("family", FAMILIES)
def test_one_training_step_with_eiou(family, batch64):
    model = build(FAMILIES[family], box_loss="eiou")
    criterion = model.init_criterion()
    loss, items, grads = loss_and_grads(model, criterion, batch64)
    assert torch.isfinite(loss).all() and loss.sum() > 0 and len(grads) > 50
    assert all(torch.isfinite(g).all() for g in grads)
    assert "box_w" in items  # EIoU's width term: the configured loss ran
    if FAMILIES[family] in END_TO_END:
        assert isinstance(criterion, E2ELoss)
        assert isinstance(criterion.one2many, BoxLossCriterion) and isinstance(criterion.one2one, BoxLossCriterion)
        assert criterion.one2many.state.key == "one2many" and criterion.one2one.state.key == "one2one"


@pytest.mark.parametrize("family", FAMILIES)
def test_ciou_is_the_stock_criterion_bit_for_bit(family, batch64):
    """Same model weights, the stock criterion (ultralytics' own init_criterion) against ours: loss values, loss items
    and every parameter gradient identical, for DFL heads, YOLOv10's and YOLO26's end-to-end heads alike."""
    ours_model = build(FAMILIES[family], box_loss="ciou")
    stock_model = build(FAMILIES[family], DetectionModel)
    stock_model.load_state_dict(ours_model.state_dict())
    stock_criterion = DetectionModel.init_criterion(stock_model)
    stock_loss, stock_items, stock_grads = loss_and_grads(stock_model, stock_criterion, batch64)
    ours_loss, ours_items, ours_grads = loss_and_grads(ours_model, ours_model.init_criterion(), batch64)
    assert torch.equal(stock_loss, ours_loss)
    for name, value in stock_items.items():
        assert torch.equal(value, ours_items[name]), name
    assert len(stock_grads) == len(ours_grads) > 50
    assert all(torch.equal(a, b) for a, b in zip(stock_grads, ours_grads))


def test_yolo26_has_no_dfl_and_keeps_ultralytics_l1_term(batch64):
    model = build("yolo26n.yaml", box_loss="eiou")
    criterion = model.init_criterion()
    assert model.model[-1].reg_max == 1 and criterion.one2one.bbox_loss.dfl_loss is None
    _, items, _ = loss_and_grads(model, criterion, batch64)
    assert "l1_loss" in items and "dfl_loss" not in items


def test_progloss_schedule_is_ultralytics_own(batch64):
    """E2ELoss with our criteria keeps ultralytics' o2m -> o2o weights and top-k settings."""
    ours = build("yolo26n.yaml", box_loss="eiou", epochs=10).init_criterion()
    stock_model = build("yolo26n.yaml", DetectionModel, epochs=10)
    stock = DetectionModel.init_criterion(stock_model)
    assert (ours.o2m, ours.o2o) == (stock.o2m, stock.o2o)
    for _ in range(4):
        ours.update()
        stock.update()
    assert (ours.o2m, ours.o2o) == (stock.o2m, stock.o2o)
    assert (ours.one2one.assigner.topk, ours.one2one.assigner.topk2) == (stock.one2one.assigner.topk,
                                                                         stock.one2one.assigner.topk2)


@pytest.mark.parametrize("yaml", ["yolov8n.yaml", "yolo26n.yaml"])
def test_assigner_metric_default_is_stock_and_others_change_the_assignment(yaml, batch64):
    stock = build(yaml).init_criterion()
    criterion = stock.one2many if isinstance(stock, E2ELoss) else stock
    assert type(criterion.assigner).__name__ == "TaskAlignedAssigner"  # default ciou: the stock assigner itself
    giou = build(yaml, assigner_iou="giou").init_criterion()
    giou = giou.one2many if isinstance(giou, E2ELoss) else giou
    assert type(giou.assigner).__name__ == "MetricAssigner"
    gt = torch.tensor([[0.0, 0.0, 4.0, 4.0], [0.0, 0.0, 4.0, 4.0]])
    pred = torch.tensor([[1.0, 1.0, 5.0, 5.0], [6.0, 0.0, 8.0, 2.0]])  # overlapping; disjoint (GIoU < 0 -> 0)
    expected = (1.0 - __import__("boxloss").get_loss("giou")(pred, gt)).clamp(0)
    torch.testing.assert_close(giou.assigner.iou_calculation(gt, pred), expected)
    assert giou.assigner.iou_calculation(gt, pred)[1] == 0
    giou_model = build(yaml, assigner_iou="giou")
    _, items, _ = loss_and_grads(giou_model, build(yaml, assigner_iou="giou").init_criterion(), batch64)
    assert torch.isfinite(torch.stack(list(items.values()))).all()


def test_assigner_same_uses_the_configured_loss_and_refuses_a_non_iou_loss():
    same = build("yolov8n.yaml", box_loss="eiou", assigner_iou="same").init_criterion()
    explicit = build("yolov8n.yaml", assigner_iou="eiou").init_criterion()
    gt, pred = torch.tensor([[0.0, 0.0, 4.0, 2.0]]), torch.tensor([[1.0, 0.5, 4.5, 3.0]])
    torch.testing.assert_close(same.assigner.iou_calculation(gt, pred), explicit.assigner.iou_calculation(gt, pred))
    with pytest.raises(ValueError, match="needs an IoU-type box loss; smooth_l1 is not one"):
        build("yolov8n.yaml", box_loss="smooth_l1", assigner_iou="same").init_criterion()


def test_iou_aware_yolo26_trains_both_branches_and_folds_into_the_top_k(batch64):
    model = build("yolo26n.yaml", iou_aware=True, box_loss="eiou")
    add_iou_branch(model)
    head = model.model[-1]
    assert len(head.iou_head) == len(head.one2one_iou_head) == 3
    criterion = model.init_criterion()
    assert isinstance(criterion.one2one, IoUAwareCriterion) and isinstance(criterion.one2many, IoUAwareCriterion)
    _, items, _ = loss_and_grads(model, criterion, batch64)
    assert items["iou_loss"] > 0
    assert head.one2one_iou_head[0].weight.grad.abs().sum() > 0  # the one-to-one IoU branch learns
    assert head.iou_head[0].weight.grad.abs().sum() > 0
    model.eval()
    model.end2end = True  # NMS-free inference on the one-to-one branch (ultralytics: nms=False)
    head.iou_aware_min_cls = 0.0
    with torch.no_grad():
        y, raw = model(torch.rand(1, 3, 320, 320))
    assert y.shape == (1, 300, 6)  # the stock end-to-end output: the top-k of the fused scores
    fused = (raw["one2one"]["scores"].sigmoid().pow(0.5) * raw["one2one"]["iou"].sigmoid().pow(0.5))[0]  # (nc, A)
    anchors = fused.max(0).values.topk(300).indices  # ultralytics' top-k: the top anchors by their best class,
    best = fused[:, anchors].flatten().topk(300).values  # then the top (anchor, class) pairs among them
    torch.testing.assert_close(y[0, :, 4], best, rtol=1e-6, atol=1e-7)


def test_unsupported_heads_are_refused_with_the_reason():
    from boxloss.errors import ConfigError
    from boxloss.yolo.experiment import check_model

    for yaml, kind in (("yolov8n-seg.yaml", "segmentation"), ("yolov8n-pose.yaml", "pose"),
                       ("rtdetr-l.yaml", "RT-DETR"), ("yolov8n-obb.yaml", "oriented boxes")):
        with pytest.raises(ConfigError, match=kind):
            check_model(yaml)
    for yaml in FAMILIES.values():
        check_model(yaml)
