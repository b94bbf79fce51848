"""Every detection, segmentation, pose and oriented-box family ultralytics 8.4.190 builds: one training step with EIoU,
stock-exact CIoU (ProbIoU for oriented boxes), end-to-end heads (YOLOv10, YOLO26: E2ELoss on both branches, reg_max 1
without DFL), the assigner's metric (YOLO26's mask- and OKS-aware assigners and the rotated assigner included), the
IoU-aware head.

These back the README's supported-model table row by row (n scale, 64 px, seconds each).
"""

from __future__ import annotations

import pytest
import torch
from helpers import loss_and_grads, training_batch
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.utils.loss import E2ELoss, PoseLoss26, SegmentLoss26, v8OBBLoss, v8PoseLoss, v8SegmentationLoss
from ultralytics.utils.metrics import probiou
from ultralytics.utils.tal import PoseTaskAlignedAssigner, RotatedTaskAlignedAssigner, SegTaskAlignedAssigner

from boxloss import get_loss, list_losses
from boxloss.ops.rotated import rotated_iou
from boxloss.testing.models import build_model
from boxloss.yolo import BoxLossCriterion, BoxLossDetectionModel
from boxloss.yolo.criterion import MetricPoseAssigner, MetricRotatedAssigner, MetricSegAssigner
from boxloss.yolo.obb import BoxLossOBBCriterion
from boxloss.yolo.iou_aware import IoUAwareCriterion, add_iou_branch

FAMILIES = {  # README table: family -> model YAML (n scale)
    "YOLOv5u": "yolov5nu.yaml", "YOLOv8": "yolov8n.yaml", "YOLOv9": "yolov9t.yaml", "YOLOv10": "yolov10n.yaml",
    "YOLO11": "yolo11n.yaml", "YOLO12": "yolo12n.yaml", "YOLO26": "yolo26n.yaml",
}
SEGMENT = {"YOLOv8": "yolov8n-seg.yaml", "YOLO11": "yolo11n-seg.yaml", "YOLO26": "yolo26n-seg.yaml"}
POSE = {"YOLOv8": "yolov8n-pose.yaml", "YOLO11": "yolo11n-pose.yaml", "YOLO26": "yolo26n-pose.yaml"}
OBB = {"YOLOv8": "yolov8n-obb.yaml", "YOLO11": "yolo11n-obb.yaml", "YOLO26": "yolo26n-obb.yaml"}
OBB_MODELS = [("obb", yaml) for yaml in OBB.values()]  # README table rows of oriented boxes
ROTATED_LOSSES = [name for name in list_losses(boxes="xywhr") if name != "probiou"]  # wrapped ones too (focaler_)
MODELS = [("detect", yaml) for yaml in FAMILIES.values()] + [("segment", yaml) for yaml in SEGMENT.values()] + \
    [("pose", yaml) for yaml in POSE.values()]  # README table rows: (task, model YAML)
END_TO_END = {"yolov10n.yaml", "yolo26n.yaml", "yolo26n-seg.yaml", "yolo26n-pose.yaml"}
STOCK_MODELS = {"detect": DetectionModel, "segment": SegmentationModel, "pose": PoseModel}
TASK_LOSSES = {"segment": (v8SegmentationLoss, SegmentLoss26), "pose": (v8PoseLoss, PoseLoss26)}
TASK_ITEMS = {"detect": set(), "segment": {"seg_loss"}, "pose": {"pose_loss", "kobj_loss"}}  # ultralytics' own
YOLO26_ITEMS = {"detect": set(), "segment": {"sem_loss"}, "pose": {"rle_loss"}}  # YOLO26's semantic mask, RLE


def task_items(task: str, yaml: str) -> set[str]:
    """The loss items of the task's own terms (besides box, cls, dfl/l1), all > 0 on a batch with objects."""
    return TASK_ITEMS[task] | (YOLO26_ITEMS[task] if yaml.startswith("yolo26") else set())


@pytest.fixture(scope="module")
def batches(mini_data, mini_seg_data, mini_pose_data, mini_obb_data):
    """One real batch per task (4 images of the embedded datasets, 64 px, ultralytics' own loader)."""
    return {"detect": training_batch(mini_data, 64), "segment": training_batch(mini_seg_data, 64, task="segment"),
            "pose": training_batch(mini_pose_data, 64, task="pose"),
            "obb": training_batch(mini_obb_data, 64, task="obb")}


@pytest.fixture(scope="module")
def batch64(batches):
    return batches["detect"]


def build(yaml: str, cls=None, **overrides):
    return build_model(yaml, cls, **overrides)


def branches(criterion):
    return [criterion.one2many, criterion.one2one] if isinstance(criterion, E2ELoss) else [criterion]


@pytest.mark.parametrize("task, yaml", MODELS)
def test_one_training_step_with_eiou(task, yaml, batches):
    model = build(yaml, box_loss="eiou")
    criterion = model.init_criterion()
    loss, items, grads = loss_and_grads(model, criterion, batches[task])
    assert torch.isfinite(loss).all() and loss.sum() > 0 and len(grads) > 50
    assert all(torch.isfinite(g).all() for g in grads)
    assert "box_w" in items  # EIoU's width term: the configured loss ran
    assert all(items[name] > 0 for name in task_items(task, yaml) | {"box_loss"})  # the task's own terms ran too
    for branch in branches(criterion):
        assert isinstance(branch, BoxLossCriterion)
        if task != "detect":
            assert isinstance(branch, TASK_LOSSES[task])  # ultralytics' own segmentation / pose criterion
    if yaml in END_TO_END:
        assert isinstance(criterion, E2ELoss)
        assert criterion.one2many.state.key == "one2many" and criterion.one2one.state.key == "one2one"


@pytest.mark.parametrize("task, yaml", MODELS)
def test_ciou_is_the_stock_criterion_bit_for_bit(task, yaml, batches):
    """Same model weights, the stock criterion (ultralytics' own init_criterion) against ours: loss values, loss items
    and every parameter gradient identical, for DFL heads, YOLOv10's and YOLO26's end-to-end heads alike, and for
    the segmentation (mask, semantic) and pose (OKS, visibility, RLE) criteria."""
    ours_model = build(yaml, box_loss="ciou")
    stock = STOCK_MODELS[task]
    stock_model = build(yaml, stock)
    stock_model.load_state_dict(ours_model.state_dict())
    stock_criterion = stock.init_criterion(stock_model)
    stock_loss, stock_items, stock_grads = loss_and_grads(stock_model, stock_criterion, batches[task])
    ours_loss, ours_items, ours_grads = loss_and_grads(ours_model, ours_model.init_criterion(), batches[task])
    assert all(stock_items[name] > 0 for name in task_items(task, yaml) | {"box_loss"})  # positives: a real test
    assert torch.equal(stock_loss, ours_loss)
    for name, value in stock_items.items():
        assert torch.equal(value, ours_items[name]), name
    assert len(stock_grads) == len(ours_grads) > 50
    assert all(torch.equal(a, b) for a, b in zip(stock_grads, ours_grads))


@pytest.mark.parametrize("task, yaml", [row for row in MODELS if row[0] != "detect"])
def test_the_box_loss_changes_only_the_box_term(task, yaml, batches):
    """EIoU instead of CIoU on the same weights and batch: the assignment (CIoU, mask IoU or OKS) is the same, so the
    mask, semantic, keypoint, visibility, RLE, classification and DFL/L1 items are ultralytics' values exactly; only
    box_loss differs."""
    items = {}
    for name in ("ciou", "eiou"):
        model = build(yaml, box_loss=name)
        _, items[name], _ = loss_and_grads(model, model.init_criterion(), batches[task])
    shared = {key for key in items["ciou"] if not key.startswith("box_")}
    assert task_items(task, yaml) <= shared
    assert all(torch.equal(items["ciou"][key], items["eiou"][key]) for key in shared)
    assert not torch.equal(items["ciou"]["box_loss"], items["eiou"]["box_loss"])


@pytest.mark.parametrize("task, yaml, stock_assigner, metric_assigner", [
    ("segment", "yolo26n-seg.yaml", SegTaskAlignedAssigner, MetricSegAssigner),
    ("pose", "yolo26n-pose.yaml", PoseTaskAlignedAssigner, MetricPoseAssigner)])
def test_assigner_metric_keeps_yolo26s_mask_and_oks_assigners(task, yaml, stock_assigner, metric_assigner, batches):
    """YOLO26's segmentation (box + mask IoU) and pose (OKS) assigners keep their blend with another box metric; the
    default is ultralytics' assigner itself."""
    for branch in branches(build(yaml).init_criterion()):
        assert type(branch.assigner) is stock_assigner
    model = build(yaml, assigner_iou="giou")
    criterion = model.init_criterion()
    for branch in branches(criterion):
        assert type(branch.assigner) is metric_assigner
        gt, pred = torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.tensor([[1.0, 1.0, 5.0, 5.0]])
        expected = (1.0 - __import__("boxloss").get_loss("giou")(pred, gt)).clamp(0)
        torch.testing.assert_close(branch.assigner.iou_calculation(gt, pred), expected)
    _, items, _ = loss_and_grads(model, criterion, batches[task])
    assert torch.isfinite(torch.stack(list(items.values()))).all()


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
    with pytest.raises(ValueError, match="box_loss=smooth_l1 is not IoU-type"):  # refused where the options resolve
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

    for yaml, reason in (("yolov8n-cls.yaml", "classification"), ("rtdetr-l.yaml", "RT-DETR"),
                         ("yolov8s-world.yaml", "open-vocabulary YOLO-World")):
        with pytest.raises(ConfigError, match=reason):
            check_model(yaml)
    for task, yaml in MODELS + OBB_MODELS:
        assert check_model(yaml).name == task


# ------------------------------------------------------------------------------------------------- oriented boxes
@pytest.mark.parametrize("yaml", OBB.values())
def test_probiou_is_the_stock_obb_criterion_bit_for_bit(yaml, batches):
    """Same weights, ultralytics' OBB criterion (``v8OBBLoss``; ``E2ELoss`` of it for YOLO26) against ours with
    box_loss=probiou: loss, items (box, cls, dfl or l1, angle) and every gradient identical, and for YOLO26 again
    after each of two ProgLoss updates (the one-to-many / one-to-one weights move)."""
    ours_model = build(yaml, box_loss="probiou", epochs=3)
    stock_model = build(yaml, OBBModel, epochs=3)
    stock_model.load_state_dict(ours_model.state_dict())
    stock, ours = OBBModel.init_criterion(stock_model), ours_model.init_criterion()
    for branch in branches(ours):
        assert isinstance(branch, BoxLossOBBCriterion) and isinstance(branch, v8OBBLoss)
        assert type(branch.assigner) is RotatedTaskAlignedAssigner  # the stock assigner itself
    updates = 2 if yaml.startswith("yolo26") else 0
    for update in range(updates + 1):
        if update:
            stock.update()
            ours.update()
            assert (ours.o2m, ours.o2o) == (stock.o2m, stock.o2o)
        stock_loss, stock_items, stock_grads = loss_and_grads(stock_model, stock, batches["obb"])
        ours_loss, ours_items, ours_grads = loss_and_grads(ours_model, ours, batches["obb"])
        side = "l1_loss" if yaml.startswith("yolo26") else "dfl_loss"
        assert set(stock_items) == {"box_loss", "cls_loss", side, "angle_loss"}
        assert all(stock_items[name] > 0 for name in stock_items)  # positives: a real test
        assert torch.equal(stock_loss, ours_loss)
        for name, value in stock_items.items():
            assert torch.equal(value, ours_items[name]), name
        assert torch.equal(ours_items["box_iou"], ours_items["box_loss"])  # the one part of 1 - ProbIoU
        assert len(stock_grads) == len(ours_grads) > 100
        assert all(torch.equal(a, b) for a, b in zip(stock_grads, ours_grads))
    if updates:
        assert ours.o2m < 0.8  # the schedule moved


def test_an_obb_model_trains_with_probiou_when_no_box_loss_is_given(batches):
    """The registered default (unset) is ultralytics' own loss for the model's boxes: probiou here, ciou for a
    detector; the assigner is the stock rotated one; the run's options name what it trains with."""
    criterion = build("yolov8n-obb.yaml").init_criterion()
    assert criterion.box_loss_name == "probiou" and criterion.options["assigner_iou"] == "probiou"
    assert type(criterion.assigner) is RotatedTaskAlignedAssigner
    assert build("yolov8n.yaml").init_criterion().box_loss_name == "ciou"


@pytest.fixture(scope="module")
def stock_obb_items(batches):
    """ultralytics' own OBB criterion's items on the shared batch, per model YAML."""
    items = {}
    for yaml in OBB.values():
        model = build(yaml, OBBModel)
        _, items[yaml], _ = loss_and_grads(model, OBBModel.init_criterion(model), batches["obb"])
    return items


@pytest.mark.parametrize("yaml, name", [("yolo11n-obb.yaml", name) for name in ROTATED_LOSSES]
                         + [("yolov8n-obb.yaml", "kld"), ("yolo26n-obb.yaml", "kld"), ("yolo26n-obb.yaml", "riou")])
def test_each_rotated_loss_trains_and_changes_only_the_box_term(yaml, name, batches, stock_obb_items):
    """Every registered rotated loss, one step on the same weights and batch: finite loss and gradients, its parts
    logged (box_<term>, adding up to box_loss); the rotated assigner ranks by ProbIoU whatever the loss, so the
    classification, DFL or L1 and angle items are ultralytics' values exactly and only box_loss differs."""
    model = build(yaml, box_loss=name)
    criterion = model.init_criterion()
    loss, items, grads = loss_and_grads(model, criterion, batches["obb"])
    assert torch.isfinite(loss).all() and all(torch.isfinite(g).all() for g in grads) and len(grads) > 100
    stock = stock_obb_items[yaml]
    for item in set(stock) - {"box_loss"}:
        assert torch.equal(items[item], stock[item]), item
    assert not torch.equal(items["box_loss"], stock["box_loss"]) and items["box_loss"] > 0
    parts = [value for key, value in items.items() if key.startswith("box_") and key != "box_loss"]
    torch.testing.assert_close(sum(parts), items["box_loss"])


@pytest.mark.parametrize("yaml", ["yolov8n-obb.yaml", "yolo26n-obb.yaml"])
def test_obb_assigner_same_ranks_with_the_rotated_losss_iou(yaml, batches):
    """assigner_iou=same: the rotated assigner (its candidate rule kept) ranks with 1 - the configured loss, clamped
    at 0; with probiou that is ultralytics' own ProbIoU with the loss's variance floor (the stock assigner's is 0;
    prediction and target swapped: equal to rounding)."""
    model = build(yaml, box_loss="probiou", assigner_iou="same")
    criterion = model.init_criterion()
    gt = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3], [10.0, 10.0, 8.0, 4.0, 0.3]])
    pred = torch.tensor([[11.0, 10.5, 7.0, 4.5, 0.1], [40.0, 40.0, 2.0, 2.0, 0.0]])  # overlapping; far apart
    for branch in branches(criterion):
        assert type(branch.assigner) is MetricRotatedAssigner
        metric = branch.assigner.iou_calculation(gt, pred)
        torch.testing.assert_close(metric, (1 - get_loss("probiou")(pred, gt)).clamp(0))
        torch.testing.assert_close(metric, probiou(gt, pred, floor=0.01).squeeze(-1).clamp(0), rtol=1e-6, atol=1e-7)
        assert not torch.allclose(metric, probiou(gt, pred).squeeze(-1).clamp(0))  # the stock assigner's floor, 0
    _, items, grads = loss_and_grads(model, criterion, batches["obb"])
    assert torch.isfinite(torch.stack(list(items.values()))).all() and all(torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("options, item", [
    ({"cls_loss": "varifocal"}, "cls_loss"), ({"cls_loss": "qfl"}, "cls_loss"), ({"cls_loss": "ap_loss"}, "cls_loss"),
    ({"iou_balanced_loc": True, "iou_balanced_wloc": 1.0}, "box_loss"), ({"iou_balanced_cls": True}, None)])
def test_iou_weighted_options_on_oriented_boxes_use_the_exact_iou(options, item, batches):
    """The IoU targets (VFL, QFL) and the IoU-balanced weights take the exact rotated IoU of each positive and its
    target: the criterion's pair IoU is the polygon IoU (checked against the matrix kernel), and each option changes
    only the term it weights (IoU-balanced classification keeps the positives' sum: only the gradients change)."""
    stock_model = build("yolov8n-obb.yaml")
    _, stock_items, stock_grads = loss_and_grads(stock_model, stock_model.init_criterion(), batches["obb"])
    model = build("yolov8n-obb.yaml", **options)
    criterion = model.init_criterion()
    pred = torch.tensor([[10.0, 10.0, 8.0, 4.0, 0.3], [0.0, 0.0, 4.0, 4.0, 0.0], [5.0, 5.0, 3.0, 1.0, 1.2]])
    target = torch.tensor([[11.0, 10.5, 7.0, 4.5, 0.1], [0.0, 0.0, 4.0, 4.0, 0.785398], [5.0, 5.0, 3.0, 1.0, 1.2]])
    expected = rotated_iou(pred, target).diagonal()
    torch.testing.assert_close(criterion.pair_iou(pred, target), expected)
    assert abs(float(expected[1]) - 2 ** -0.5) < 1e-4 and abs(float(expected[2]) - 1) < 1e-6  # a square at 45°
    _, items, grads = loss_and_grads(model, criterion, batches["obb"])
    assert all(torch.isfinite(g).all() for g in grads)
    assert not all(torch.equal(a, b) for a, b in zip(grads, stock_grads))
    assert item is None or not torch.equal(items[item], stock_items[item])
    for name in {"box_loss", "cls_loss", "dfl_loss", "angle_loss"} - {item}:
        if item is None and name == "cls_loss":  # the positives' sum kept: equal up to rounding
            torch.testing.assert_close(items[name], stock_items[name], rtol=1e-6, atol=0)
        else:
            assert torch.equal(items[name], stock_items[name]), name
