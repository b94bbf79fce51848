"""The oriented-box (OBB) criterion: ultralytics' ``v8OBBLoss`` with its box and classification losses chosen by name.

ultralytics 8.4.190 trains OBB models (``OBB``, YOLOv8/11; ``OBB26``, YOLO26, end-to-end) with ``v8OBBLoss``: its
rotated task-aligned assigner (which ranks anchors by ProbIoU), BCE on the task-aligned scores, ``RotatedBboxLoss``
(1 − ProbIoU, and DFL on the distances from the anchor to the box's sides in the box's own frame, or for reg_max 1
an L1 term on them) and YOLO26's angle term sin²(2Δθ)·exp(−ln²(w/h)/9). Here the IoU term is a registered loss on
rotated boxes (``box_loss``: ``probiou`` is ultralytics' own, operation for operation), the classification loss is
``cls_loss``; the assigner, the DFL or L1 term and the angle term are ultralytics' code, called as it calls them.
With ``box_loss: probiou`` and the other options unset the losses, items and gradients are ultralytics' bit for bit
(tests/test_models.py), for both end-to-end branches of YOLO26 too (ultralytics' ``E2ELoss``).

The options that weight by a positive's IoU (``iou_balanced_loc``, ``iou_balanced_cls``) and the classification losses
that learn it (VFL, QFL) take the exact IoU of the rotated pair (:func:`boxloss.losses.aligned_rotated_iou`, the
polygon clipping of ``riou``, detached), whatever the box loss, as on axis-aligned boxes they take the plain IoU: the IoU the evaluation matches by,
not ProbIoU, which reads a rotated pair's overlap high.
"""

from __future__ import annotations

from typing import Any

import torch
from ultralytics.utils.loss import RotatedBboxLoss, v8OBBLoss
from ultralytics.utils.tal import make_anchors

from ..losses import aligned_rotated_iou
from .criterion import BoxLossCriterion, NamedBboxLoss


class NamedRotatedBboxLoss(NamedBboxLoss, RotatedBboxLoss):
    """``RotatedBboxLoss`` whose IoU term is a registered loss on rotated boxes (with the options of
    :class:`~boxloss.yolo.criterion.NamedBboxLoss`); its DFL (reg_max > 1) or L1 term (reg_max 1) is ultralytics'
    ``RotatedBboxLoss.forward`` itself, whose own ProbIoU term is computed there and left unused."""

    def forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores, target_scores_sum,
                fg_mask, imgsz, stride):
        loss_box, _ = super().forward(pred_dist, pred_bboxes, anchor_points, target_bboxes, target_scores,
                                      target_scores_sum, fg_mask, imgsz, stride)
        _, loss_side = RotatedBboxLoss.forward(self, pred_dist, pred_bboxes, anchor_points, target_bboxes,
                                               target_scores, target_scores_sum, fg_mask, imgsz, stride)
        return loss_box, loss_side

    def _side_loss(self, *args) -> None:
        return None  # the side term is RotatedBboxLoss's own (forward)


class BoxLossOBBCriterion(BoxLossCriterion, v8OBBLoss):
    """``v8OBBLoss`` with the configured box loss (``box_loss``, on rotated boxes) and classification loss.

    Loss items: ultralytics' ``box_loss``, ``cls_loss``, ``dfl_loss`` (``l1_loss`` for reg_max 1) and ``angle_loss``
    and, with ``box_terms``, ``box_<term>`` for each part of the box loss. ``assigner_iou`` is ``probiou`` (the stock
    assigner itself) or ``same`` (the box loss's own IoU-type similarity, 1 − loss clamped at 0).
    """

    boxes = "xywhr"
    bbox_loss_class = NamedRotatedBboxLoss
    pair_iou = staticmethod(aligned_rotated_iou)

    def loss(self, preds: dict[str, torch.Tensor], batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, Any]]:
        """``v8OBBLoss.loss`` (8.4.190) operation for operation, the classification and IoU terms configured."""
        loss = torch.zeros(4, device=self.device)  # box, cls, dfl (or l1), angle
        pred_distri = preds["boxes"].permute(0, 2, 1).contiguous()  # (B, A, 4 * reg_max)
        pred_scores = preds["scores"].permute(0, 2, 1).contiguous()  # (B, A, nc) logits
        pred_angle = preds["angle"].permute(0, 2, 1).contiguous()  # (B, A, 1) radians
        anchor_points, stride_tensor = make_anchors(preds["feats"], self.stride, 0.5)
        dtype, batch_size = pred_scores.dtype, pred_angle.shape[0]
        imgsz = torch.tensor(preds["feats"][0].shape[2:], device=self.device, dtype=dtype) * self.stride[0]
        gt_labels, gt_bboxes, mask_gt = self._targets(batch, batch_size, imgsz)

        pred_bboxes = self.bbox_decode(anchor_points, pred_distri, pred_angle)  # xywhr grid units, (B, A, 5)
        bboxes_for_assigner = pred_bboxes.clone().detach()
        bboxes_for_assigner[..., :4] *= stride_tensor  # pixels; the angle stays
        if hasattr(self, "_assigner_imgsz"):
            self._assigner_imgsz["wh"] = imgsz[[1, 0]]
        target_labels, target_bboxes, target_scores, fg_mask, _ = self.assigner(
            pred_scores.detach().sigmoid(), bboxes_for_assigner.type(gt_bboxes.dtype), anchor_points * stride_tensor,
            gt_labels, gt_bboxes, mask_gt)
        target_scores_sum = max(target_scores.sum(), 1)
        target_bboxes[..., :4] /= stride_tensor  # grid units, as the box terms take them

        loss[1] = self._classification_loss(pred_scores, target_scores, target_labels, pred_bboxes, target_bboxes,
                                            fg_mask, target_scores_sum)
        if fg_mask.sum():
            loss[0], loss[2] = self.bbox_loss(pred_distri, pred_bboxes, anchor_points, target_bboxes, target_scores,
                                              target_scores_sum, fg_mask, imgsz, stride_tensor)
            weight = target_scores[fg_mask].sum(-1)
            loss[3] = self.calculate_angle_loss(pred_bboxes, target_bboxes, fg_mask, weight, target_scores_sum)
        else:  # no positive in the batch: zero terms under the same names, so every batch has the same items
            no_boxes = pred_bboxes.detach().new_zeros(0, 5)
            self.bbox_loss.last_terms = {name: term.sum() for name, term in
                                         self.box_loss.terms(no_boxes, no_boxes)[1].items()}
            loss[0] += (pred_angle * 0).sum() + pred_distri[..., :0].sum()
        loss[0] *= self.hyp.box
        loss[1] *= self.hyp.cls
        loss[2] *= self.hyp.dfl
        loss[3] *= self.hyp.angle
        items = dict(zip(self.loss_names, loss.detach()))
        if self.options["box_terms"]:
            self.box_term_items = {f"box_{name}": term * self.hyp.box
                                   for name, term in self.bbox_loss.last_terms.items()}
            items.update(self.box_term_items)
        return loss * batch_size, items

    def _targets(self, batch: dict[str, Any], batch_size: int, imgsz: torch.Tensor):
        """ultralytics' targets: ``(labels (B, M, 1), xywhr pixels (B, M, 5), mask (B, M, 1))``, boxes under 2 px on a
        side dropped (as stock, to keep training stable)."""
        try:
            targets = torch.cat((batch["batch_idx"].view(-1, 1), batch["cls"].view(-1, 1),
                                 batch["bboxes"].view(-1, 5)), 1)
            widths, heights = targets[:, 4] * float(imgsz[1]), targets[:, 5] * float(imgsz[0])
            targets = targets[(widths >= 2) & (heights >= 2)]
            targets = self.preprocess(targets.to(self.device), batch_size, scale_tensor=imgsz[[1, 0, 1, 0]])
        except RuntimeError as error:
            raise TypeError("an oriented-box model needs oriented-box labels (cls x1 y1 x2 y2 x3 y3 x4 y4 lines): "
                            "this batch's boxes are not rotated boxes") from error
        gt_labels, gt_bboxes = targets.split((1, 5), 2)  # cls, xywhr pixels
        return gt_labels, gt_bboxes, gt_bboxes.sum(2, keepdim=True).gt_(0.0)
