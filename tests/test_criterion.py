"""The configurable criterion against stock ultralytics and against an independent recomputation."""

import pytest
import torch
from helpers import loss_and_grads, training_batch
from ultralytics.utils.loss import v8DetectionLoss

import boxloss
from boxloss import aligned_iou
from boxloss.testing.models import build_model
from boxloss.yolo import BoxLossCriterion


@pytest.fixture(scope="module")
def real_batch(mini_data):
    """One batch of 4 training images (128 px) of the embedded dataset, through ultralytics' own pipeline."""
    batch = training_batch(mini_data, 128)
    assert batch["cls"].numel() > 0
    return batch


def make_model(**overrides):
    return build_model("yolov8n.yaml", **overrides)


def test_ciou_is_the_stock_criterion_bit_for_bit(real_batch):
    model = make_model(box_loss="ciou")
    stock_loss, stock_items, stock_grads = loss_and_grads(model, v8DetectionLoss(model), real_batch)
    ours_loss, ours_items, ours_grads = loss_and_grads(model, BoxLossCriterion(model), real_batch)
    assert torch.equal(stock_loss, ours_loss)
    for name in ("box_loss", "cls_loss", "dfl_loss"):
        assert torch.equal(stock_items[name], ours_items[name])
    assert len(stock_grads) == len(ours_grads) > 100
    assert all(torch.equal(a, b) for a, b in zip(stock_grads, ours_grads))


def context_for(spec, imgsz, stride, fg_mask):
    """The per-call inputs a loss declares, recomputed from the criterion's inputs."""
    values = {}
    if "image_size" in spec.context:
        values["image_size"] = imgsz[[1, 0]]
    if "stride" in spec.context:
        values["stride"] = stride.squeeze(-1)[fg_mask.nonzero(as_tuple=True)[1]]
    if "iou_mean" in spec.context:  # the criterion's state before its first update
        from boxloss.losses.iou_variants import WIOU_IOU_MEAN_INIT

        values["iou_mean"] = WIOU_IOU_MEAN_INIT
    return values


@pytest.mark.parametrize("name", boxloss.list_losses(boxes="xyxy"))  # the rotated ones: OBB models
def test_box_loss_is_the_configured_one(real_batch, name):
    """box_loss equals box gain · Σ s · get_loss(name)(pred, target) / Σ s (s: target scores), from the inputs;
    for a loss with a normaliser w (Focal-EIoU) the weighted mean Σ s · L / Σ s · w."""
    model = make_model(box_loss=name)
    criterion = BoxLossCriterion(model)
    captured = {}
    criterion.bbox_loss.register_forward_hook(lambda module, args, out: captured.update(args=args))
    _, items, _ = loss_and_grads(model, criterion, real_batch)
    _, pred_bboxes, _, target_bboxes, target_scores, target_scores_sum, fg_mask, imgsz, stride = captured["args"]
    weight = target_scores[fg_mask].sum(-1)
    spec = boxloss.get_spec(name)
    pred_fg, target_fg = pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask]
    per_box = spec.fn(pred_fg, target_fg, **context_for(spec, imgsz, stride, fg_mask))
    normalizer = spec.bind().normalizer(pred_fg, target_fg)
    denominator = target_scores_sum if normalizer is None else \
        target_scores_sum * (weight * normalizer).sum() / weight.sum()
    expected = model.args.box * (per_box * weight).sum() / denominator
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


def test_iou_balanced_loc_lowers_the_box_loss_with_a_constant_wloc(real_batch):
    """IoU^λ <= 1 with w_loc = 1 shrinks every positive's box loss; λ = 0 gives back the plain loss."""
    plain = make_model()
    plain_loss, _, _ = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    weighted = make_model(iou_balanced_loc=True, iou_balanced_wloc=1.0)
    weighted_loss, _, _ = loss_and_grads(weighted, BoxLossCriterion(weighted), real_batch)
    assert weighted_loss[0] < plain_loss[0]
    neutral = make_model(iou_balanced_loc=True, iou_balanced_lambda=0.0, iou_balanced_wloc=1.0)
    neutral_loss, _, _ = loss_and_grads(neutral, BoxLossCriterion(neutral), real_batch)
    torch.testing.assert_close(neutral_loss, plain_loss)


def test_iou_balanced_wloc_auto_keeps_the_initial_loss_sum_then_freezes(real_batch):
    """w_loc: auto = Σ s·L / Σ s·IoU^λ·L over the first N batches (recomputed here), so the weighted box loss
    equals the unweighted one; it is fixed after N batches and stored in model.boxloss_state."""
    plain = make_model()
    plain_loss, _, _ = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    model = make_model(iou_balanced_loc=True, iou_balanced_wloc_batches=2)
    criterion = BoxLossCriterion(model)
    captured = {}
    criterion.bbox_loss.register_forward_hook(lambda module, args, out: captured.update(args=args))
    first, _, _ = loss_and_grads(model, criterion, real_batch)
    torch.testing.assert_close(first[0], plain_loss[0], rtol=1e-5, atol=1e-6)
    _, pred_bboxes, _, target_bboxes, target_scores, _, fg_mask, _, _ = captured["args"]
    s = target_scores[fg_mask].sum(-1).double()
    pred, target = pred_bboxes[fg_mask].detach().double(), target_bboxes[fg_mask].double()
    ciou = boxloss.get_loss("ciou")(pred, target)
    expected_wloc = (s * ciou).sum() / (s * aligned_iou(pred, target).pow(1.5) * ciou).sum()
    state = model.boxloss_state["main"]
    assert state["iou_balanced_batches"] == 1 and "iou_balanced_wloc" not in state
    torch.testing.assert_close(torch.tensor(state["iou_balanced_sums"][0] / state["iou_balanced_sums"][1]),
                               expected_wloc.float(), rtol=1e-5, atol=0)
    loss_and_grads(model, criterion, real_batch)  # the second batch: calibrated and frozen
    assert state["iou_balanced_batches"] == 2 and state["iou_balanced_wloc"] > 1
    torch.testing.assert_close(torch.tensor(state["iou_balanced_wloc"]), expected_wloc.float(), rtol=1e-5, atol=0)
    model.eval()  # the validation criterion reads the state and never updates it
    with torch.no_grad():
        criterion(model(real_batch["img"]), real_batch)
    assert state["iou_balanced_batches"] == 2


def test_iou_balanced_cls_weights_only_the_assigned_class_entries():
    """The positives' other-class entries keep weight 1: only (anchor, assigned class) entries get
    w = IoU^η · Σ CE / Σ (IoU^η · CE) over those entries (recomputed here), as the authors' released code does."""
    criterion = BoxLossCriterion(make_model(iou_balanced_cls=True))
    generator = torch.Generator().manual_seed(0)
    cls_loss = torch.rand(2, 6, 3, generator=generator, dtype=torch.float64)  # (B, A, nc)
    fg_mask = torch.tensor([[True, False, True, False, False, False], [False, True, False, False, True, False]])
    labels = torch.tensor([[2, 0, 0, 0, 0, 0], [0, 1, 0, 0, 1, 0]])
    targets = torch.tensor([[0.0, 0.0, 4.0, 4.0]], dtype=torch.float64).repeat(2, 6, 1)
    shift = torch.tensor([0.0, 0.0, 0.5, 0.0, 1.0, 1.5], dtype=torch.float64).view(1, 6, 1).repeat(2, 1, 1)
    preds = targets + shift * torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)  # slid right by shift
    weighted = criterion._iou_balance_positives(cls_loss, preds, targets, fg_mask, labels)
    entries = [(0, 0, 2), (0, 2, 0), (1, 1, 1), (1, 4, 1)]
    ce = torch.stack([cls_loss[e] for e in entries])
    iou = torch.stack([(4 - shift[b, a, 0]) / (4 + shift[b, a, 0]) for b, a, _ in entries])  # overlap 4-d of 4+d
    expected_weights = iou.pow(1.5) * ce.sum() / (iou.pow(1.5) * ce).sum()
    for entry, w in zip(entries, expected_weights):
        torch.testing.assert_close(weighted[entry], cls_loss[entry] * w, rtol=1e-6, atol=1e-9)
    untouched = torch.ones_like(cls_loss, dtype=torch.bool)
    for entry in entries:
        untouched[entry] = False
    assert torch.equal(weighted[untouched], cls_loss[untouched])  # the positives' other classes included
    torch.testing.assert_close(sum(weighted[e] for e in entries), ce.sum())  # the assigned entries' sum is kept


def test_focal_cls_with_gamma_0_and_no_alpha_is_bce(real_batch):
    plain = make_model()
    plain_loss, _, _ = loss_and_grads(plain, BoxLossCriterion(plain), real_batch)
    focal = make_model(cls_loss="focal", cls_focal_gamma=0.0, cls_focal_alpha=-1.0)
    focal_loss, _, _ = loss_and_grads(focal, BoxLossCriterion(focal), real_batch)
    torch.testing.assert_close(focal_loss, plain_loss)
    real_focal = make_model(cls_loss="focal")
    real_focal_loss, _, _ = loss_and_grads(real_focal, BoxLossCriterion(real_focal), real_batch)
    assert real_focal_loss[1] < plain_loss[1]  # focal down-weights the many easy negatives


def test_focal_eiou_is_the_weighted_mean_over_positives_on_a_real_batch(real_batch):
    """norm=batch trains Σ s·w·EIoU / Σ s·w (w = IoU^γ, s = target scores), recomputed here from the criterion's
    inputs with plain formulas; with γ = 0 (w ≡ 1) it is EIoU exactly; norm=none is Σ s·w·EIoU / Σ s."""
    from boxloss.losses import eiou_loss

    def box_loss(**overrides):
        model = make_model(box_loss="focal_eiou", **overrides)
        criterion = BoxLossCriterion(model)
        captured = {}
        criterion.bbox_loss.register_forward_hook(lambda module, args, out: captured.update(args=args))
        _, items, _ = loss_and_grads(model, criterion, real_batch)
        return items["box_loss"] / model.args.box, captured["args"]

    value, args = box_loss()
    _, pred_bboxes, _, target_bboxes, target_scores, target_scores_sum, fg_mask, _, _ = args
    s = target_scores[fg_mask].sum(-1).double()
    pred, target = pred_bboxes[fg_mask].detach().double(), target_bboxes[fg_mask].double()
    iou = aligned_iou(pred, target)
    w = iou.pow(0.5)
    eiou = eiou_loss(pred, target)
    assert fg_mask.sum() > 10 and (w > 0).any()
    clamp = s.sum() / target_scores_sum.double()  # the stock normaliser max(Σ s, 1), kept
    torch.testing.assert_close(value.double(), (s * w * eiou).sum() / (s * w).sum() * clamp, rtol=1e-5, atol=1e-7)
    none_value, _ = box_loss(focal_eiou_norm="none")
    torch.testing.assert_close(none_value.double(), (s * w * eiou).sum() / target_scores_sum.double(), rtol=1e-5,
                               atol=1e-7)
    gamma0, _ = box_loss(focal_eiou_gamma=0.0)
    eiou_value, _ = box_loss_eiou(real_batch)
    torch.testing.assert_close(gamma0, eiou_value, rtol=1e-6, atol=1e-7)


def box_loss_eiou(batch):
    model = make_model(box_loss="eiou")
    _, items, _ = loss_and_grads(model, BoxLossCriterion(model), batch)
    return items["box_loss"] / model.args.box, None


def _iou_float64(pred, target):
    """IoU of aligned xyxy boxes in float64, intersection over union with ultralytics' eps on the union."""
    pred, target = pred.double(), target.double()
    width = (torch.minimum(pred[:, 2], target[:, 2]) - torch.maximum(pred[:, 0], target[:, 0])).clamp(min=0)
    height = (torch.minimum(pred[:, 3], target[:, 3]) - torch.maximum(pred[:, 1], target[:, 1])).clamp(min=0)
    inter = width * height
    area = lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])  # noqa: E731
    return inter / (area(pred) + area(target) - inter + 1e-7)


def test_wiou_v3_running_mean_follows_the_papers_rule_over_the_positives(real_batch):
    """WIoU v3's state (arXiv 2301.10051): the running mean of L_IoU = 1 − IoU starts at 1 and, after each training
    batch, becomes (1 − m) · mean + m · (the batch's mean of 1 − IoU over the positives); the next batch's loss reads
    it; the validation criterion reads it without moving it."""
    model = make_model(box_loss="wiou_v3", wiou_v3_momentum=0.25)
    criterion = BoxLossCriterion(model)
    captured = {}
    criterion.bbox_loss.register_forward_hook(lambda module, args, out: captured.update(args=args))

    def positives():
        _, pred_bboxes, _, target_bboxes, target_scores, target_scores_sum, fg_mask, _, _ = captured["args"]
        return (pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask], target_scores[fg_mask].sum(-1),
                target_scores_sum)

    loss_and_grads(model, criterion, real_batch)
    pred, target, _, _ = positives()
    first = 0.75 * 1.0 + 0.25 * (1 - _iou_float64(pred, target)).mean().item()
    state = model.boxloss_state["main"]
    assert state["iou_mean"] == pytest.approx(first, rel=0, abs=1e-7)
    _, items, _ = loss_and_grads(model, criterion, real_batch)  # reads the mean of the first batch, then moves it
    pred, target, weight, target_scores_sum = positives()
    per_box = boxloss.get_loss("wiou_v3")(pred, target, iou_mean=first)
    torch.testing.assert_close(items["box_loss"], model.args.box * (per_box * weight).sum() / target_scores_sum,
                               rtol=1e-5, atol=1e-6)
    second = 0.75 * first + 0.25 * (1 - _iou_float64(pred, target)).mean().item()
    assert state["iou_mean"] == pytest.approx(second, rel=0, abs=1e-7)
    model.eval()
    with torch.no_grad():
        criterion(model(real_batch["img"]), real_batch)
    assert state["iou_mean"] == pytest.approx(second, rel=0, abs=1e-7)


def test_assigner_same_reads_the_box_losss_state_and_context():
    """assigner_iou=same ranks with 1 − L of the box loss in pixels: WIoU v3 with the criterion's running mean (its
    initial 1 before any update), MPDIoU with the batch's image size and stride 1."""
    model = make_model(box_loss="wiou_v3", assigner_iou="same")
    criterion = BoxLossCriterion(model)
    gt, pred = torch.tensor([[0.0, 0.0, 4.0, 2.0], [1.0, 1.0, 9.0, 9.0]]), torch.tensor([[1.0, 0.5, 4.5, 3.0],
                                                                                        [2.0, 2.0, 8.0, 9.5]])
    wiou_v3 = boxloss.get_loss("wiou_v3")
    torch.testing.assert_close(criterion.assigner.iou_calculation(gt, pred),
                               (1 - wiou_v3(pred, gt, iou_mean=1.0)).clamp(0))
    model.boxloss_state["main"]["iou_mean"] = 0.3
    torch.testing.assert_close(criterion.assigner.iou_calculation(gt, pred),
                               (1 - wiou_v3(pred, gt, iou_mean=0.3)).clamp(0))
    model = make_model(box_loss="mpdiou", assigner_iou="same")
    criterion = BoxLossCriterion(model)
    criterion._assigner_imgsz["wh"] = torch.tensor([64.0, 32.0])
    torch.testing.assert_close(criterion.assigner.iou_calculation(gt, pred),
                               (1 - boxloss.get_loss("mpdiou")(pred, gt, image_size=(64.0, 32.0), stride=1.0)).clamp(0))


def test_building_the_criterion_resolves_the_options_at_most_once(resolutions):
    """A model that carries its run's options (the trainer hands them over) gives them to its criterion as they are;
    a bare model (or a checkpoint from before options travelled) resolves them from its args once, and keeps them
    for its other criteria: E2ELoss builds one per branch, the validator another."""
    from boxloss import options

    carried = options.from_args({"box_loss": "giou"})
    model = make_model(box_loss="eiou")
    model.boxloss_options = carried
    assert BoxLossCriterion(model).options is carried and len(resolutions.resolved) == 1  # the line above's
    bare = make_model(box_loss="eiou")
    first, second = BoxLossCriterion(bare), BoxLossCriterion(bare)
    assert len(resolutions.resolved) == resolutions.validated == 2
    assert first.options is second.options is bare.boxloss_options is resolutions.resolved[-1]
    assert first.box_loss_name == "eiou"
    end_to_end = build_model("yolo26n.yaml", box_loss="siou").init_criterion()
    assert len(resolutions.resolved) == resolutions.validated == 3
    assert end_to_end.one2many.options is end_to_end.one2one.options is resolutions.resolved[-1]
    assert end_to_end.one2one.box_loss_name == "siou"
