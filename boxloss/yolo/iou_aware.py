"""IoU-aware confidence head for YOLOv8: predict each box's IoU, fuse it into the score at inference.

Wu, Li, Wang, "IoU-aware single-stage object detector for accurate localization", arXiv 1912.05992.
A 1x1 conv per level on the box branch's hidden features predicts an IoU logit per anchor; it is trained
with BCE against the IoU of the decoded box with its assigned target (positives only) and, at inference,
the class score becomes S = cls^(1−α) · IoU^α inside the head, so predict, val and every export see the
same scores and the output keeps the stock shape (B, 4 + nc, A).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from ultralytics.nn.modules.head import Detect

from ..losses import aligned_iou
from .criterion import BoxLossCriterion


def fold_scores(cls: torch.Tensor, iou: torch.Tensor, alpha: float, min_cls: float) -> torch.Tensor:
    """S = cls^(1−α) · IoU^α where cls >= min_cls; below it the class score is kept as it is.

    Folding raises weak class scores (cls^(1−α) > cls for cls < 1): at α = 0.5 a class score of 1e-6
    becomes ~1e-3 and passes validation's conf = 0.001, so NMS and max_det drown in candidates. Candidates
    are therefore selected by the class score (the stock set at conf >= min_cls) and ranked by the fused
    score. ``min_cls = 0`` folds everything.

    Args:
        cls: (B, nc, A) class probabilities.
        iou: (B, 1, A) predicted IoU in [0, 1].
    """
    fused = cls.pow(1 - alpha) * iou.pow(alpha)
    return torch.where(cls >= min_cls, fused, cls) if min_cls > 0 else fused


class IoUAwareDetect(Detect):
    """``Detect`` with an IoU branch (``iou_head``: one 1x1 conv per level on the box tower's hidden features).

    Every stock layer keeps its shape, so stock weights load into all of them. Training output adds
    ``"iou"`` (B, 1, A) logits to the stock dict; inference folds the predicted IoU into the class scores.
    """

    iou_aware_alpha = 0.5
    iou_aware_min_cls = 0.001

    def forward_head(self, x, box_head=None, cls_head=None):
        if box_head is None or cls_head is None:  # fused-away branch
            return {}
        bs = x[0].shape[0]
        hidden = [box_head[i][:-1](x[i]) for i in range(self.nl)]  # box tower before its last 1x1 conv
        boxes = torch.cat([box_head[i][-1](hidden[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], -1)
        scores = torch.cat([cls_head[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], -1)
        iou = torch.cat([self.iou_head[i](hidden[i]).view(bs, 1, -1) for i in range(self.nl)], -1)
        return {"boxes": boxes, "scores": scores, "feats": x, "iou": iou}

    def _inference(self, x):
        dbox = self._get_decode_boxes(x)
        scores = fold_scores(x["scores"].sigmoid(), x["iou"].sigmoid(), self.iou_aware_alpha, self.iou_aware_min_cls)
        return torch.cat((dbox, scores), 1)


def add_iou_branch(model: nn.Module, alpha: float = 0.5, min_cls: float = 0.001) -> nn.Module:
    """Give a stock YOLOv8 detection model the IoU branch (in place; returns the model).

    The model YAML cannot name a custom head in ultralytics 8.4 (``parse_model`` resolves its own
    modules), so the stock head is re-classed and the new convs are added; only they start fresh.
    """
    head = model.model[-1]
    if type(head) is IoUAwareDetect:
        head.iou_aware_alpha, head.iou_aware_min_cls = alpha, min_cls
        return model
    if type(head) is not Detect or getattr(head, "one2one_cv2", None) is not None:
        raise ValueError(f"the IoU-aware head needs a YOLOv8 Detect head, got {type(head).__name__}")
    reference = head.cv2[0][-1]  # the box branch's last 1x1 conv: its input is the hidden feature
    head.iou_head = nn.ModuleList(nn.Conv2d(box[-1].in_channels, 1, 1) for box in head.cv2).to(
        device=reference.weight.device, dtype=reference.weight.dtype)
    for conv in head.iou_head:
        nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(conv.bias)  # predicted IoU starts at 0.5
    head.__class__ = IoUAwareDetect
    head.iou_aware_alpha, head.iou_aware_min_cls = alpha, min_cls
    return model


class IoUAwareCriterion(BoxLossCriterion):
    """:class:`BoxLossCriterion` plus the IoU-prediction loss, logged as ``iou_loss``.

    iou_loss = iou_gain · Σ_pos BCE(σ⁻¹ IoU_pred, IoU(box_pred, box_target)) / N_pos — positives only,
    divided by the number of positives as in the paper. The target IoU is detached unless
    ``iou_target_grad`` (the paper reports that back-propagating through it helps).
    """

    def __init__(self, model: nn.Module, tal_topk: int = 10, tal_topk2: int | None = None):
        super().__init__(model, tal_topk, tal_topk2)
        self.loss_names = (*self.loss_names, "iou_loss")

    def loss(self, preds, batch):
        batch_size = preds["boxes"].shape[0]
        (fg_mask, _, target_bboxes, _, stride_tensor), det_loss, items = self.get_assigned_targets_and_loss(preds,
                                                                                                         batch)
        iou_logits = preds["iou"].permute(0, 2, 1).squeeze(-1)  # (B, A)
        iou_loss = self.iou_prediction_loss(iou_logits, self.last_pred_bboxes, target_bboxes / stride_tensor, fg_mask)
        iou_loss = iou_loss * self.options["iou_gain"]
        loss = torch.cat((det_loss, iou_loss.view(1)))
        items["iou_loss"] = iou_loss.detach()
        return loss * batch_size, items

    def iou_prediction_loss(self, iou_logits, pred_bboxes, target_bboxes, fg_mask):
        """BCE between predicted IoU logits and the true IoU on positives, / number of positives."""
        num_pos = fg_mask.sum()
        if num_pos == 0:
            return iou_logits.sum() * 0.0  # keeps the branch in the graph
        pred_fg = pred_bboxes[fg_mask]
        target_iou = aligned_iou(pred_fg if self.options["iou_target_grad"] else pred_fg.detach(), target_bboxes[fg_mask])
        bce = F.binary_cross_entropy_with_logits(iou_logits[fg_mask], target_iou.to(iou_logits.dtype).clamp(0, 1),
                                                 reduction="sum")
        return bce / num_pos
