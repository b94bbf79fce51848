"""The YOLO detection criterion with its box and classification losses chosen by name.

One criterion serves every detector family ultralytics 8.4 builds: DFL heads (YOLOv5u/v8/v9/11/12, reg_max 16) and
DFL-free ones (YOLO26, reg_max 1, where ultralytics adds an L1 term on the normalised side distances). For
end-to-end heads (YOLOv10, YOLO26) ultralytics' own ``E2ELoss`` runs one criterion per branch (one-to-many and
one-to-one), with its ProgLoss schedule and top-k settings; only the loss terms come from here. The segmentation and
pose criteria (:mod:`boxloss.yolo.task_criteria`) are ultralytics' own with this class underneath, so their box
term comes from here too.

The criterion names no loss. A loss declares in the registry what it needs besides the boxes (``LossSpec.context``:
the image size, the stride; ``LossSpec.state``: a value kept between batches, such as WIoU v3's running mean); the
criterion provides the one and keeps the other.

State that must survive checkpoints and resume (IoU-balanced ``w_loc: auto``, the state losses declare) lives in
``model.boxloss_state``, a plain dict the trainer saves with the EMA model and restores on resume (see
:class:`~boxloss.yolo.trainer.BoxLossDetectionTrainer`). Only the training criterion updates it (the model is in
training mode); the validation criterion, built on the EMA model, reads it.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
import torch.nn.functional as F
from ultralytics.utils import LOGGER
from ultralytics.utils.loss import BboxLoss, v8DetectionLoss
from ultralytics.utils.tal import (PoseTaskAlignedAssigner, RotatedTaskAlignedAssigner, SegTaskAlignedAssigner,
                                   TaskAlignedAssigner, bbox2dist, make_anchors)

from .. import options
from ..losses import aligned_iou, iou_balanced_cls_weights, iou_balanced_weights
from ..registry import BOX_LOSSES, STOCK_BOX_LOSS, BoundLoss

NORMALIZER_EPS = 1e-9


def _all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum over DDP ranks (identity without a process group), so every rank keeps the same state."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        values = values.clone()
        torch.distributed.all_reduce(values)
    return values


class CriterionState:
    """A criterion's share of ``model.boxloss_state`` (python floats, so it pickles with the checkpoint)."""

    def __init__(self, model: torch.nn.Module, key: str):
        self._model = weakref.ref(model)
        self.key = key

    @property
    def values(self) -> dict[str, Any]:
        model = self._model()
        if getattr(model, "boxloss_state", None) is None:
            model.boxloss_state = {}
        return model.boxloss_state.setdefault(self.key, {})

    @property
    def training(self) -> bool:
        """Whether this criterion may update the state: the training model, never the EMA copy validation uses."""
        model = self._model()
        return bool(model is not None and model.training and torch.is_grad_enabled())


class IoUBalancedLocalisation:
    """w_loc · IoU^λ per positive (no gradient; Wu, Wang, Li, arXiv 1908.05641), with ``w_loc: auto``.

    The paper chooses w_loc so that the initial localisation loss sum is unchanged by the weighting. ``auto`` does
    that from the data: over the first ``calibration_batches`` training batches it accumulates Σ s·L (unweighted)
    and Σ s·IoU^λ·L and uses their ratio, then keeps it fixed for the rest of the run (logged; stored in the
    checkpoint with the rest of the criterion state). The weight multiplies the IoU-type box loss only, not DFL:
    the paper has one localisation loss (smooth L1 on the box offsets), whose YOLO counterpart is the box loss;
    DFL shapes the distribution of the side distances and keeps its own gain.
    """

    def __init__(self, lam: float, w_loc: float | str, calibration_batches: int, state: CriterionState):
        self.lam, self.fixed, self.calibration_batches, self.state = lam, w_loc, calibration_batches, state

    def weights(self, iou: torch.Tensor, score_weighted_loss: torch.Tensor) -> torch.Tensor:
        """Per-positive weights w_loc · IoU^λ; ``score_weighted_loss`` (s·L, detached) feeds the calibration."""
        unit = iou_balanced_weights(iou, self.lam, 1.0)
        return unit * self.w_loc(unit, score_weighted_loss)

    def w_loc(self, unit_weights: torch.Tensor, score_weighted_loss: torch.Tensor) -> float:
        if self.fixed != "auto":
            return float(self.fixed)
        state = self.state.values
        if "iou_balanced_wloc" in state:
            return state["iou_balanced_wloc"]
        sums = state.setdefault("iou_balanced_sums", [0.0, 0.0])
        if self.state.training:
            with torch.no_grad():
                batch = torch.stack((score_weighted_loss.sum(), (unit_weights * score_weighted_loss).sum()))
                batch = _all_reduce_sum(batch.double()).tolist()
            sums[0], sums[1] = sums[0] + batch[0], sums[1] + batch[1]
            state["iou_balanced_batches"] = state.get("iou_balanced_batches", 0) + 1
        estimate = sums[0] / sums[1] if sums[1] > 0 else 1.0
        if state.get("iou_balanced_batches", 0) >= self.calibration_batches:
            state["iou_balanced_wloc"] = estimate
            LOGGER.info(f"boxloss: iou_balanced_wloc=auto set to {estimate:.4g} from the first "
                        f"{self.calibration_batches} batches (the weighted box-loss sum equals the unweighted one)")
        return estimate


class NamedBboxLoss(BboxLoss):
    """``BboxLoss`` whose IoU term is a registered box loss; DFL (reg_max > 1) or ultralytics' L1 term (reg_max 1)
    are stock.

    Returns ``(loss_box, loss_dfl_or_l1)`` as the stock module does, and keeps the parts of the box loss of the
    last call (each normalised like the loss, so they add up to ``loss_box``) in ``self.last_terms``. A loss with a
    normaliser (Focal-EIoU, ``norm: batch``) is the weighted mean Σ s·w·ℓ / Σ s·w over the positives, times the
    stock Σ s / max(Σ s, 1), so that w ≡ 1 gives the plain loss exactly.
    """

    def __init__(self, reg_max: int, box_loss: BoundLoss, iou_balanced: IoUBalancedLocalisation | None = None,
                 context=None, on_positives=None, pair_iou=aligned_iou):
        super().__init__(reg_max)
        self.box_loss, self.iou_balanced, self.pair_iou = box_loss, iou_balanced, pair_iou
        self.context = context or (lambda fg_mask, imgsz, stride: {})
        self.on_positives = on_positives  # called with the positives' (pred, target) after the loss: state updates
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum,
                fg_mask, imgsz, stride):
        context = self.context(fg_mask, imgsz, stride)
        fg_mask = fg_mask.nonzero(as_tuple=True)
        weight = target_scores[fg_mask].sum(-1, keepdim=True)  # (P, 1)
        pred_fg, target_fg = pred_bboxes[fg_mask], target_bboxes[fg_mask]
        per_box, terms = self.box_loss.terms(pred_fg, target_fg, **context)  # (P,), {name: (P,)}
        box_weight = weight.squeeze(-1)
        if self.iou_balanced is not None:
            iou = self.pair_iou(pred_fg.detach(), target_fg)
            box_weight = box_weight * self.iou_balanced.weights(iou, (box_weight * per_box).detach()).to(weight.dtype)
        normalizer = self.box_loss.normalizer(pred_fg.detach(), target_fg)
        denominator = target_scores_sum
        if normalizer is not None:  # a weighted mean: Σ s·w·ℓ / Σ s·w, with the stock clamp of Σ s kept
            scores = weight.squeeze(-1)
            mean_weight = (scores * normalizer).sum() / scores.sum().clamp(min=NORMALIZER_EPS)
            denominator = target_scores_sum * mean_weight.clamp(min=NORMALIZER_EPS)
        loss_box = (per_box * box_weight).sum() / denominator
        with torch.no_grad():
            self.last_terms = {name: (term * box_weight).sum() / denominator for name, term in terms.items()}
        if self.on_positives is not None:  # outside no_grad: the state only updates in a training step
            self.on_positives(pred_fg.detach(), target_fg.detach())
        return loss_box, self._side_loss(pred_dist, anchor_points, target_bboxes, weight, target_scores_sum,
                                         fg_mask, imgsz, stride)

    def _side_loss(self, pred_dist, anchor_points, target_bboxes, weight, target_scores_sum, fg_mask, imgsz,
                   stride):
        """ultralytics' second term, operation for operation: DFL, or L1 on the image-normalised side distances."""
        if self.dfl_loss:
            target_ltrb = bbox2dist(anchor_points, target_bboxes, self.dfl_loss.reg_max - 1)
            loss_dfl = self.dfl_loss(pred_dist[fg_mask].view(-1, self.dfl_loss.reg_max), target_ltrb[fg_mask]) * weight
            return loss_dfl.sum() / target_scores_sum
        target_ltrb = bbox2dist(anchor_points, target_bboxes)
        target_ltrb = target_ltrb * stride
        target_ltrb[..., 0::2] /= imgsz[1]
        target_ltrb[..., 1::2] /= imgsz[0]
        pred_dist = pred_dist * stride
        pred_dist[..., 0::2] /= imgsz[1]
        pred_dist[..., 1::2] /= imgsz[0]
        loss_l1 = F.l1_loss(pred_dist[fg_mask], target_ltrb[fg_mask], reduction="none").mean(-1, keepdim=True) * weight
        return loss_l1.sum() / target_scores_sum


class MetricIoU:
    """The overlap of ultralytics' task-aligned assigners ranked with another IoU-type metric (``assigner_iou``).

    The stock assigners score each anchor's box against the ground truth with CIoU whatever the loss (ultralytics
    issue #19629); here the metric is ``1 − L`` of a registered IoU-type loss, clamped at 0 as stock. YOLO26's
    segmentation and pose assigners blend that box overlap with mask IoU or keypoint OKS, which stay theirs.
    """

    metric_loss: BoundLoss
    metric_context: Any

    def iou_calculation(self, gt_bboxes, pd_bboxes):
        return (1.0 - self.metric_loss(pd_bboxes, gt_bboxes, **self.metric_context())).clamp_(0)


class MetricAssigner(MetricIoU, TaskAlignedAssigner):
    """``TaskAlignedAssigner`` (detection, YOLOv8-style segmentation and pose) with the configured metric."""


class MetricSegAssigner(MetricIoU, SegTaskAlignedAssigner):
    """YOLO26 segmentation's assigner: (box metric + mask IoU) / 2, the box metric configured."""


class MetricPoseAssigner(MetricIoU, PoseTaskAlignedAssigner):
    """YOLO26 pose's assigner: keypoint OKS, the configured box metric for ground truths without visible keypoints."""


class MetricRotatedAssigner(MetricIoU, RotatedTaskAlignedAssigner):
    """The oriented-box assigner (ProbIoU stock) with the configured metric on rotated boxes; its candidate rule (an
    anchor inside the rotated box) stays its own."""


METRIC_ASSIGNERS = {TaskAlignedAssigner: MetricAssigner, SegTaskAlignedAssigner: MetricSegAssigner,
                    PoseTaskAlignedAssigner: MetricPoseAssigner, RotatedTaskAlignedAssigner: MetricRotatedAssigner}


def with_metric(assigner: TaskAlignedAssigner, metric_loss: BoundLoss, context) -> TaskAlignedAssigner:
    """The stock ``assigner`` (in place, its settings kept) ranking with ``metric_loss``; idempotent."""
    kind = next((metric for stock, metric in METRIC_ASSIGNERS.items() if type(assigner) in (stock, metric)), None)
    if kind is None:
        raise ValueError(f"assigner_iou cannot change the metric of {type(assigner).__name__}")
    assigner.__class__ = kind
    assigner.metric_loss, assigner.metric_context = metric_loss, context
    return assigner


def run_options(model: torch.nn.Module, boxes: str = "xyxy") -> options.Options:
    """The run's options: those its trainer resolved and handed to the model (kept by its EMA copy and its
    checkpoints), else resolved from the model's ``args`` by the same function for a model that predicts ``boxes``,
    once: a bare model or a checkpoint from before options travelled with the model then carries them too, for its
    other criteria (E2ELoss builds two)."""
    found = getattr(model, "boxloss_options", None)
    if not isinstance(found, options.Options):
        found = model.boxloss_options = options.from_args(model.args, boxes)
    return found


class BoxLossCriterion(v8DetectionLoss):
    """``v8DetectionLoss`` with the configured box loss (``box_loss``) and classification loss (``cls_loss``).

    The task-aligned assigner, DFL (or YOLO26's L1 term), the gains and the normalisation by the target-score sum
    are stock. With ``box_loss: ciou``, ``cls_loss: bce``, ``assigner_iou: ciou`` and the IoU-balanced options off,
    values and gradients are those of the stock criterion (tested). Loss items: ``box_loss``, ``cls_loss``,
    ``dfl_loss`` (``l1_loss`` for reg_max 1) and, with ``box_terms``, ``box_<term>`` for each part of the box loss
    (they add up to ``box_loss``; also kept in ``box_term_items`` for the task criteria, whose items are their own).

    ``boxes``: the boxes its box loss takes (``xyxy``; :mod:`boxloss.yolo.obb`'s criterion: ``xywhr``), built by
    ``bbox_loss_class``; ``pair_iou(pred, target)``: the IoU of aligned pairs of them, for the IoU-balanced weights
    and the IoU targets of the classification loss.
    """

    boxes = "xyxy"
    bbox_loss_class = NamedBboxLoss
    pair_iou = staticmethod(aligned_iou)

    def __init__(self, model: torch.nn.Module, tal_topk: int = 10, tal_topk2: int | None = None,
                 state_key: str = "main"):
        super().__init__(model, tal_topk, tal_topk2)
        self.options = opts = run_options(model, self.boxes)
        self.state = CriterionState(model, state_key)
        self.box_loss_name, self.cls_loss_name = opts["box_loss"], opts["cls_loss"]
        self.box_loss = options.bind_loss(opts, "box")
        iou_balanced = IoUBalancedLocalisation(opts["iou_balanced_lambda"], opts["iou_balanced_wloc"],
                                               opts["iou_balanced_wloc_batches"], self.state) \
            if opts["iou_balanced_loc"] else None
        on_positives = self._update_state if self.box_loss.spec.state else None
        self.bbox_loss = self.bbox_loss_class(self.reg_max, self.box_loss, iou_balanced, self._box_context,
                                              on_positives, self.pair_iou).to(self.device)
        self.cls_loss_fn = options.bind_loss(opts, "cls")
        self.cls_context = self._cls_context(model)
        self.detection_loss_names = ("box_loss", "cls_loss", "dfl_loss" if self.use_dfl else "l1_loss")
        self.box_term_items: dict[str, torch.Tensor] = {}
        self.install_assigner_metric()

    def install_assigner_metric(self) -> None:
        """Rank anchors with ``assigner_iou`` (the stock assigner itself for ultralytics' own metric: ciou, or probiou
        on oriented boxes). A task criterion whose parent replaces the assigner after this class's ``__init__`` (YOLO26
        segmentation, pose) calls it again."""
        if self.options["assigner_iou"] != STOCK_BOX_LOSS[self.boxes]:
            self.assigner = self._metric_assigner(self.options["assigner_iou"])

    def _cls_context(self, model: torch.nn.Module) -> dict[str, Any]:
        """Per-run inputs of the classification loss: the training labels' class counts (class-balanced)."""
        if "class_counts" not in self.cls_loss_fn.spec.context:
            return {}
        counts = getattr(model, "boxloss_class_counts", None)
        if counts is None:
            raise ValueError(f"cls_loss={self.cls_loss_name} needs the class counts of the training labels "
                             "(model.boxloss_class_counts, which the trainer sets from the training set)")
        return {"class_counts": torch.as_tensor(counts, dtype=torch.float32, device=self.device)}

    def set_state_key(self, key: str) -> None:
        """Name this criterion's share of the state (``E2ELoss`` runs one criterion per branch)."""
        self.state.key = key

    # -------------------------------------------------------------------------------------------- context
    def _box_context(self, fg_mask: torch.Tensor, imgsz: torch.Tensor, stride: torch.Tensor) -> dict[str, Any]:
        """The per-call inputs the configured loss declares (``LossSpec.context``) for the positives: the image size,
        the positives' strides (grid units), its state as kept."""
        available = {"image_size": lambda: imgsz[[1, 0]],  # (width, height) pixels
                     "stride": lambda: stride.squeeze(-1)[fg_mask.nonzero(as_tuple=True)[1]]}  # pixels per grid unit
        return self.box_loss.spec.call_context(available, self.state.values if self.box_loss.spec.state else {})

    def _update_state(self, pred_fg: torch.Tensor, target_fg: torch.Tensor) -> None:
        """Move each state the box loss declares (``LossSpec.state``) by its rule, from the mean of its per-box
        statistic over the positives; training only, the sums taken over DDP ranks so every rank keeps the same."""
        if not self.state.training:
            return
        kept = self.state.values
        for declared in self.box_loss.spec.state:
            with torch.no_grad():
                per_box = declared.statistic(pred_fg, target_fg)  # (P,)
                sums = torch.stack((per_box.sum().double(),
                                    torch.tensor(float(len(per_box)), dtype=torch.float64, device=per_box.device)))
            total, count = _all_reduce_sum(sums).tolist()
            if count > 0:
                value = kept.get(declared.name, declared.initial)
                kept[declared.name] = float(self.box_loss.updated_state(declared, value, total / count))

    def _metric_assigner(self, name: str) -> TaskAlignedAssigner:
        """The stock assigner ranking with ``assigner_iou`` (options.py has refused a loss that is not IoU-type)."""
        metric = self.box_loss if name == "same" else BOX_LOSSES.spec(name).bind_options(self.options)
        image = {}  # the batch's (width, height), set by each call before the assigner runs

        def context() -> dict[str, Any]:  # the assigner's boxes are in pixels: stride 1
            kept = self.state.values if metric.spec.state else {}
            return metric.spec.call_context({"image_size": lambda: image["wh"], "stride": 1.0}, kept)

        self._assigner_imgsz = image
        return with_metric(self.assigner, metric, context)

    # ---------------------------------------------------------------------------------------------- loss
    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Stock assignment and loss, with the named losses; same return value as the parent's.

        Re-implemented rather than patched because the classification weighting needs the positives' IoUs and
        assigned classes, and subclasses need the decoded boxes.
        """
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl (or l1)
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (B, A, 4 * reg_max)
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (B, A, nc) logits
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        dtype, batch_size = pred_scores.dtype, pred_scores.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]

        targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1), batch["bboxes"]), 1)
        targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        gt_labels, gt_bboxes = targets.split((1, 4), 2)  # cls, xyxy pixels
        mask_gt = gt_bboxes.sum(2, keepdim=True).gt_(0.0)
        pred_bboxes = self.bbox_decode(anchor_points, pred_distri)  # xyxy grid units, (B, A, 4)
        self.last_pred_bboxes = pred_bboxes  # for subclasses (the IoU-aware head's target)
        if hasattr(self, "_assigner_imgsz"):
            self._assigner_imgsz["wh"] = imgsz[[1, 0]]

        target_labels, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_scores.detach().sigmoid(), (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor, gt_labels, gt_bboxes, mask_gt, **assign_kwargs)
        target_scores_sum = target_scores.sum().clamp_(min=1)
        target_bboxes_grid = target_bboxes / stride_tensor

        loss[1] = self._classification_loss(pred_scores, target_scores, target_labels, pred_bboxes, target_bboxes_grid,
                                            fg_mask, target_scores_sum)
        loss[0], loss[2] = self.bbox_loss(pred_distri, pred_bboxes, anchor_points, target_bboxes_grid, target_scores,
                                          target_scores_sum, fg_mask, imgsz, stride_tensor)
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        items = dict(zip(self.detection_loss_names, loss.detach()))
        if self.options["box_terms"]:
            self.box_term_items = {f"box_{name}": term * self.hyp.box
                                   for name, term in self.bbox_loss.last_terms.items()}
            items.update(self.box_term_items)
        return (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor), loss, items

    def _classification_loss(self, pred_scores, target_scores, target_labels, pred_bboxes, target_bboxes, fg_mask,
                             target_scores_sum):
        """The configured classification loss over every anchor and class, normalised by the target-score sum (an
        AP-Loss is already one number); ``pred_bboxes`` and ``target_bboxes`` in grid units."""
        dtype = pred_scores.dtype
        cls_targets = target_scores.to(dtype)
        if self.cls_loss_fn.spec.targets == "iou":  # VFL / QFL: the IoU of each positive's box at its assigned class
            cls_targets = self._iou_targets(target_scores, pred_bboxes, target_bboxes, fg_mask).to(dtype)
        cls_loss = self.cls_loss_fn(pred_scores, cls_targets, **self.cls_context)  # (B, A, nc), or a scalar
        if self.cls_loss_fn.spec.reduction == "scalar":  # AP-Loss: already one number, normalised by itself
            return cls_loss
        if self.class_weights is not None:
            cls_loss *= self.class_weights
        if self.options["iou_balanced_cls"]:
            cls_loss = self._iou_balance_positives(cls_loss, pred_bboxes, target_bboxes, fg_mask, target_labels)
        return cls_loss.sum() / target_scores_sum

    def _iou_targets(self, target_scores, pred_bboxes, target_bboxes, fg_mask):
        """q = IoU(predicted box, its target), detached, at the positives' assigned class (where the task-aligned
        score is > 0), 0 elsewhere: the IoU-aware classification target of VarifocalNet and GFL. The loss is still
        normalised by YOLO's target-score sum, like every other classification loss here."""
        targets = torch.zeros_like(target_scores)
        if fg_mask.any():
            iou = self.pair_iou(pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask]).clamp(0, 1)
            assigned = target_scores[fg_mask] > 0
            targets[fg_mask] = assigned.to(targets.dtype) * iou.to(targets.dtype)[:, None]
        return targets

    def _iou_balance_positives(self, cls_loss, pred_bboxes, target_bboxes, fg_mask, target_labels):
        """Scale each positive's assigned-class entry by IoU^η · Σ CE / Σ (IoU^η CE) over those entries (no
        gradient); every other entry, the positives' other classes included, keeps weight 1, as the authors do."""
        if not fg_mask.any():
            return cls_loss
        iou = self.pair_iou(pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask])
        batch_index, anchor_index = fg_mask.nonzero(as_tuple=True)
        class_index = target_labels[fg_mask].long()
        assigned = cls_loss[batch_index, anchor_index, class_index]  # (P,)
        weights = torch.ones_like(cls_loss)
        weights[batch_index, anchor_index, class_index] = iou_balanced_cls_weights(
            assigned.detach(), iou, self.options["iou_balanced_eta"]).to(weights.dtype)
        return cls_loss * weights
