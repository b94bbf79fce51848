"""The YOLOv8 detection criterion with its box and classification losses chosen by name."""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils.loss import BboxLoss, v8DetectionLoss
from ultralytics.utils.tal import bbox2dist, make_anchors

from .. import options
from ..losses import aligned_iou, iou_balanced_cls_weights, iou_balanced_weights


class NamedBboxLoss(BboxLoss):
    """``BboxLoss`` whose IoU term is a registered box loss; DFL is stock.

    Returns ``(loss_box, loss_dfl)`` as the stock module does, and keeps the parts of the box loss of the
    last call (each normalised like the loss, so they add up to ``loss_box``) in ``self.last_terms``.
    """

    def __init__(self, reg_max: int, box_terms_fn, iou_balanced_loc: bool = False, lam: float = 1.5,
                 w_loc: float = 1.0):
        super().__init__(reg_max)
        if self.dfl_loss is None:
            raise ValueError("boxloss supports DFL heads (reg_max > 1), such as YOLOv8's")
        self.box_terms_fn = box_terms_fn
        self.iou_balanced_loc, self.lam, self.w_loc = iou_balanced_loc, lam, w_loc
        self.last_terms: dict[str, torch.Tensor] = {}

    def forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum,
                fg_mask, imgsz, stride):
        fg_mask = fg_mask.nonzero(as_tuple=True)
        weight = target_scores[fg_mask].sum(-1, keepdim=True)  # (P, 1)
        pred_fg, target_fg = pred_bboxes[fg_mask], target_bboxes[fg_mask]
        per_box, terms = self.box_terms_fn(pred_fg, target_fg)  # (P,), {name: (P,)}
        box_weight = weight.squeeze(-1)
        if self.iou_balanced_loc:
            box_weight = box_weight * iou_balanced_weights(aligned_iou(pred_fg.detach(), target_fg), self.lam,
                                                           self.w_loc)
        loss_box = (per_box * box_weight).sum() / target_scores_sum
        with torch.no_grad():
            self.last_terms = {name: (term * box_weight).sum() / target_scores_sum for name, term in terms.items()}

        target_ltrb = bbox2dist(anchor_points, target_bboxes, self.dfl_loss.reg_max - 1)
        loss_dfl = self.dfl_loss(pred_dist[fg_mask].view(-1, self.dfl_loss.reg_max), target_ltrb[fg_mask]) * weight
        return loss_box, loss_dfl.sum() / target_scores_sum


class BoxLossCriterion(v8DetectionLoss):
    """``v8DetectionLoss`` with the configured box loss (``box_loss``) and classification loss (``cls_loss``).

    The task-aligned assigner, DFL, the gains and the normalisation by the target-score sum are stock.
    With ``box_loss: ciou``, ``cls_loss: bce`` and the IoU-balanced options off, values and gradients are
    those of the stock criterion (tested). Loss items: ``box_loss``, ``cls_loss``, ``dfl_loss`` and, with
    ``box_terms``, ``box_<term>`` for each part of the box loss (they add up to ``box_loss``).
    """

    def __init__(self, model: torch.nn.Module, tal_topk: int = 10, tal_topk2: int | None = None):
        super().__init__(model, tal_topk, tal_topk2)
        self.options = opts = options.resolve(model.args)
        self.box_loss_name, self.cls_loss_name = opts["box_loss"], opts["cls_loss"]
        self.bbox_loss = NamedBboxLoss(self.reg_max, options.bind_loss(opts, "box").terms, opts["iou_balanced_loc"],
                                       opts["iou_balanced_lambda"], opts["iou_balanced_wloc"]).to(self.device)
        self.cls_loss_fn = options.bind_loss(opts, "cls")

    def get_assigned_targets_and_loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any], **assign_kwargs):
        """Stock assignment and loss, with the named losses; same return value as the parent's.

        Re-implemented rather than patched because the classification weighting needs the positives'
        IoUs and subclasses need the decoded boxes.
        """
        loss = torch.zeros(3, device=self.device)  # box, cls, dfl
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

        _, target_bboxes, target_scores, fg_mask, target_gt_idx = self.assigner(
            pred_scores.detach().sigmoid(), (pred_bboxes.detach() * stride_tensor).type(gt_bboxes.dtype),
            anchor_points * stride_tensor, gt_labels, gt_bboxes, mask_gt, **assign_kwargs)
        target_scores_sum = target_scores.sum().clamp_(min=1)
        target_bboxes_grid = target_bboxes / stride_tensor

        cls_loss = self.cls_loss_fn(pred_scores, target_scores.to(dtype))  # (B, A, nc)
        if self.class_weights is not None:
            cls_loss *= self.class_weights
        if self.options["iou_balanced_cls"]:
            cls_loss = self._iou_balance_positives(cls_loss, pred_bboxes, target_bboxes_grid, fg_mask)
        loss[1] = cls_loss.sum() / target_scores_sum

        loss[0], loss[2] = self.bbox_loss(pred_distri, pred_bboxes, anchor_points, target_bboxes_grid, target_scores,
                                          target_scores_sum, fg_mask, imgsz, stride_tensor)
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        items = dict(zip(self.loss_names, loss.detach()))
        if self.options["box_terms"]:
            items.update({f"box_{name}": term * self.hyp.box for name, term in self.bbox_loss.last_terms.items()})
        return (fg_mask, target_gt_idx, target_bboxes, anchor_points, stride_tensor), loss, items

    def _iou_balance_positives(self, cls_loss, pred_bboxes, target_bboxes, fg_mask):
        """Scale each positive anchor's classification loss by IoU^η · Σ CE / Σ (IoU^η CE) (no gradient)."""
        if not fg_mask.any():
            return cls_loss
        iou = aligned_iou(pred_bboxes[fg_mask].detach(), target_bboxes[fg_mask])
        weights = torch.ones_like(cls_loss[..., 0])
        weights[fg_mask] = iou_balanced_cls_weights(cls_loss[fg_mask].detach().sum(-1), iou,
                                                    self.options["iou_balanced_eta"]).to(weights.dtype)
        return cls_loss * weights.unsqueeze(-1)
