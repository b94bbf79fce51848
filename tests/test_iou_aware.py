"""The IoU-aware confidence head: weight transfer, its loss, the folded scores, export."""

import math

import numpy as np
import pytest
import torch
from ultralytics.cfg import get_cfg
from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel

from boxloss.yolo import BoxLossCriterion, BoxLossDetectionModel
from boxloss.yolo.iou_aware import IoUAwareCriterion, IoUAwareDetect, add_iou_branch, fold_scores

from test_criterion import loss_and_grads, real_batch  # noqa: F401  (fixture)


def iou_aware_model(**overrides):
    torch.manual_seed(0)
    model = BoxLossDetectionModel("yolov8n.yaml", nc=5, verbose=False)
    add_iou_branch(model)
    model.args = get_cfg(overrides={"iou_aware": True, **overrides})
    return model.train()


def test_stock_weights_fill_every_layer_but_the_iou_branch():
    torch.manual_seed(1)
    stock = DetectionModel("yolov8n.yaml", nc=5, verbose=False)
    model = iou_aware_model()
    model.load(stock)
    stock_state, state = stock.state_dict(), model.state_dict()
    new = sorted(set(state) - set(stock_state))
    assert new == sorted(f"model.22.iou_head.{i}.{p}" for i in range(3) for p in ("weight", "bias"))
    assert set(stock_state) <= set(state)
    assert all(torch.equal(stock_state[k], state[k]) for k in stock_state)
    assert len(stock_state) > 300


def test_iou_loss_matches_a_hand_computation():
    """Two positives with IoU 1/7 and 1, logits 0 and ln 3 (σ = 1/2, 3/4); one negative is ignored.

    BCE(z, t) = −t ln σ(z) − (1 − t) ln(1 − σ(z)); loss = (BCE(0, 1/7) + BCE(ln 3, 1)) / 2 = (ln 2 + ln 4/3) / 2.
    """
    criterion = IoUAwareCriterion(iou_aware_model())
    logits = torch.tensor([[0.0, math.log(3), 5.0]])
    pred = torch.tensor([[[0.0, 0, 2, 2], [1, 1, 3, 3], [0, 0, 1, 1]]])
    target = torch.tensor([[[1.0, 1, 3, 3], [1, 1, 3, 3], [5, 5, 6, 6]]])
    fg_mask = torch.tensor([[True, True, False]])
    expected = (math.log(2) + math.log(4 / 3)) / 2
    loss = criterion.iou_prediction_loss(logits, pred, target, fg_mask)
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_iou_target_gradient_option(real_batch):  # noqa: F811
    """Detached target: the IoU loss sends no gradient into the box branch; with iou_target_grad it does."""
    grads = {}
    for flag in (False, True):
        model = iou_aware_model(iou_target_grad=flag, box=0.0, cls=0.0, dfl=0.0)  # only the IoU loss remains
        loss_and_grads(model, IoUAwareCriterion(model), real_batch)
        grads[flag] = model.model[-1].cv2[0][-1].weight.grad  # the box branch's last conv
    assert grads[False] is None or torch.count_nonzero(grads[False]) == 0
    assert grads[True] is not None and torch.count_nonzero(grads[True]) > 0


def test_detection_part_is_the_plain_path_bit_for_bit(real_batch):  # noqa: F811
    """With iou_gain = 0 the IoU-aware criterion trains every stock layer exactly like the plain one."""
    model = iou_aware_model(iou_gain=0.0)
    plain_loss, plain_items, plain_grads = loss_and_grads(model, BoxLossCriterion(model), real_batch)
    model.zero_grad()
    loss, items = IoUAwareCriterion(model)(model(real_batch["img"]), real_batch)
    loss.sum().backward()
    assert torch.equal(loss[:3], plain_loss) and loss[3] == 0 and "iou_loss" in items
    head = model.model[-1]
    stock_params = [p for n, p in model.named_parameters() if "iou_head" not in n and p.grad is not None]
    assert len(stock_params) == len(plain_grads)
    assert all(torch.equal(p.grad, g) for p, g in zip(stock_params, plain_grads))
    assert isinstance(head, IoUAwareDetect)


def test_head_off_builds_the_stock_head(mini_data):
    from boxloss.yolo import BoxLossDetectionTrainer

    trainer = BoxLossDetectionTrainer(overrides={"model": "yolov8n.yaml", "data": str(mini_data), "iou_aware": False})
    model = trainer.get_model(cfg="yolov8n.yaml", verbose=False)
    assert type(model.model[-1]) is Detect and not any("iou_head" in n for n, _ in model.named_parameters())
    trainer = BoxLossDetectionTrainer(overrides={"model": "yolov8n.yaml", "data": str(mini_data), "iou_aware": True,
                                                 "iou_aware_alpha": 0.3})
    model = trainer.get_model(cfg="yolov8n.yaml", verbose=False)
    assert type(model.model[-1]) is IoUAwareDetect and model.model[-1].iou_aware_alpha == 0.3


def test_resuming_a_run_from_before_the_alpha_convention_resolves_its_options_once(tmp_path, mini_data, resolutions):
    """Resuming a run whose head stored α the old way: the trainer sets args' α to the converted value before it
    resolves the options, so the one resolution, the new head and the saved args agree on today's α."""
    from boxloss.yolo import BoxLossDetectionTrainer

    old = iou_aware_model()
    del old.model[-1].iou_aware_alpha_convention
    old.model[-1].iou_aware_alpha = 0.3  # the old meaning: exponent of the IoU
    torch.save({"model": old}, tmp_path / "last.pt")
    weights = torch.load(tmp_path / "last.pt", map_location="cpu", weights_only=False)["model"]
    trainer = BoxLossDetectionTrainer(overrides={"model": "yolov8n.yaml", "data": str(mini_data), "iou_aware": True,
                                                 "iou_aware_alpha": 0.3, "project": str(tmp_path), "name": "run"})
    trainer.args.resume = str(tmp_path / "last.pt")  # as ultralytics' check_resume leaves it
    model = trainer.get_model(cfg="yolov8n.yaml", weights=weights, verbose=False)
    assert len(resolutions.resolved) == 1 and trainer.boxloss_options is model.boxloss_options
    assert trainer.boxloss_options["iou_aware_alpha"] == trainer.args.iou_aware_alpha == pytest.approx(0.7)
    assert model.model[-1].iou_aware_alpha == pytest.approx(0.7)


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_folded_scores_from_raw_outputs(alpha):
    model = iou_aware_model().eval()
    head = model.model[-1]
    head.iou_aware_alpha, head.iou_aware_min_cls = alpha, 0.0
    with torch.no_grad():
        y, raw = model(torch.rand(1, 3, 128, 128))
    expected = raw["scores"].sigmoid().pow(alpha) * raw["iou"].sigmoid().pow(1 - alpha)  # α: class-score exponent
    torch.testing.assert_close(y[:, 4:], expected, rtol=0, atol=0)
    assert y.shape == (1, 4 + 5, raw["scores"].shape[-1])


def test_min_cls_keeps_the_stock_candidate_set():
    cls = torch.tensor([[[1e-6, 5e-4, 2e-3, 0.5]]])
    iou = torch.full((1, 1, 4), 0.81)
    folded = fold_scores(cls, iou, 0.5, 0.001)
    assert torch.equal(folded[..., :2], cls[..., :2])  # below min_cls: unchanged, still below conf=0.001
    torch.testing.assert_close(folded[..., 2:], (cls[..., 2:] * 0.81).sqrt())
    assert (fold_scores(cls, iou, 0.5, 0.0) >= 0.001).sum() == 3  # folding everything floods conf=0.001


def test_add_iou_branch_refuses_other_heads():
    model = BoxLossDetectionModel("yolov8n.yaml", nc=5, verbose=False)
    add_iou_branch(model)
    add_iou_branch(model, alpha=0.2)  # idempotent: re-configures
    assert model.model[-1].iou_aware_alpha == 0.2 and len(model.model[-1].iou_head) == 3
    seg = DetectionModel("yolov8n-seg.yaml", nc=5, verbose=False)
    with pytest.raises(ValueError, match="needs a detection head with a box tower"):
        add_iou_branch(seg)


def test_authors_alpha_convention_class_score_exponent():
    """S = cls^α · IoU^(1−α) (the released code): at α = 0.3, cls 0.4 and IoU 0.9 give 0.4^0.3 · 0.9^0.7 = 0.7056
    (by hand: e^(0.3 ln 0.4) = 0.7596, e^(0.7 ln 0.9) = 0.9289), where the old rule gave 0.4^0.7 · 0.9^0.3 = 0.5102."""
    folded = fold_scores(torch.tensor([[[0.4]]]), torch.tensor([[[0.9]]]), 0.3, 0.0)
    assert abs(folded.item() - 0.7056) < 1e-4 and abs(0.4 ** 0.7 * 0.9 ** 0.3 - 0.5102) < 1e-4


def test_a_checkpoint_from_before_the_convention_change_is_converted_on_load(tmp_path):
    """An old head (no convention marker) stored α as the IoU exponent; loaded, it holds 1 − α and scores the same
    images exactly as before: S = cls^(1−α_old) · IoU^α_old."""
    model = iou_aware_model().eval()
    head = model.model[-1]
    head.iou_aware_min_cls = 0.0
    del head.iou_aware_alpha_convention
    head.iou_aware_alpha = 0.3  # the old meaning: exponent of the IoU
    path = tmp_path / "old.pt"
    torch.save({"model": model}, path)
    loaded = torch.load(path, map_location="cpu", weights_only=False)["model"].eval()
    new_head = loaded.model[-1]
    assert new_head.iou_aware_alpha == pytest.approx(0.7) and new_head.iou_aware_alpha_migrated
    x = torch.rand(1, 3, 128, 128)
    with torch.no_grad():
        y, raw = loaded(x)
    old_rule = raw["scores"].sigmoid().pow(1 - 0.3) * raw["iou"].sigmoid().pow(0.3)
    torch.testing.assert_close(y[:, 4:], old_rule, rtol=1e-6, atol=1e-7)
    again = tmp_path / "again.pt"  # saved again with the marker: not converted twice
    torch.save({"model": loaded}, again)
    assert torch.load(again, map_location="cpu", weights_only=False)["model"].model[-1].iou_aware_alpha == \
        pytest.approx(0.7)


def test_onnx_export_keeps_the_stock_output_and_agrees(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extras")
    from boxloss.yolo import BoxLossYOLO

    model = iou_aware_model().eval()
    checkpoint = tmp_path / "iou_aware.pt"
    torch.save({"model": model.half(), "train_args": dict(vars(model.args))}, checkpoint)
    path = BoxLossYOLO(str(checkpoint)).export(format="onnx", imgsz=128, simplify=False)
    session = ort.InferenceSession(path)
    x = np.random.default_rng(0).random((1, 3, 128, 128), dtype=np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    stock = DetectionModel("yolov8n.yaml", nc=5, verbose=False).eval()
    with torch.no_grad():
        reference = model.float()(torch.from_numpy(x))[0]
        stock_shape = stock(torch.from_numpy(x))[0].shape
    assert out.shape == tuple(stock_shape) == (1, 9, 336)
    np.testing.assert_allclose(out, reference.numpy(), atol=1e-4, rtol=0)
    from ultralytics import YOLO

    results = YOLO(path, task="detect").predict((x[0].transpose(1, 2, 0) * 255).astype(np.uint8), imgsz=128,
                                               conf=0.0, verbose=False)
    assert len(results[0].boxes) > 0


@pytest.mark.parametrize("name", __import__("boxloss").list_losses(boxes="xyxy"))
def test_head_works_with_every_box_loss(real_batch, name):  # noqa: F811
    model = iou_aware_model(box_loss=name)
    loss, items, grads = loss_and_grads(model, IoUAwareCriterion(model), real_batch)
    assert loss.shape == (4,) and torch.isfinite(loss).all() and items["iou_loss"] > 0
    assert all(torch.isfinite(g).all() for g in grads)
    assert model.model[-1].iou_head[0].weight.grad.abs().sum() > 0
