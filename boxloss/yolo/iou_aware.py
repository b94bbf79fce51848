"""IoU-aware confidence head: predict each box's IoU, fuse it into the score at inference.

Wu, Li, Wang, "IoU-aware single-stage object detector for accurate localization", arXiv 1912.05992.
A 1x1 conv per level on the box branch's hidden features predicts an IoU logit per anchor; it is trained
with BCE against the IoU of the decoded box with its assigned target (positives only) and, at inference,
the class score becomes S = cls^α · IoU^(1−α) (the authors' convention: α is the exponent of the class score)
inside the head, so predict, val and every export see the same scores and the output keeps the stock shape:
(B, 4 + nc, A), or (B, max_det, 6) for an end-to-end head, whose top-k selection ranks the fused score.

End-to-end heads (YOLOv10, YOLO26) have a one-to-many and a one-to-one branch, each with its own box tower. Each
gets its own IoU branch, trained on its own branch's positives: the paper attaches the IoU prediction to the
regression tower whose boxes it scores, and the two towers regress different assignments (top-10 against
one-to-one). The one-to-one branch's IoU is what end-to-end inference and export use; the one-to-many branch's is
what NMS inference (``end2end=False``) uses, so either mode ranks by a calibrated score.

Checkpoints written before boxloss 0.2 stored α as the exponent of the IoU (S = cls^(1−α) · IoU^α); such a head is
converted to the authors' convention when it is loaded (α → 1 − α), so it scores exactly as it did.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from ultralytics.nn.modules.head import Detect, v10Detect

from ..losses import aligned_iou
from .criterion import BoxLossCriterion

ALPHA_CONVENTION = "class"  # iou_aware_alpha is the exponent of the class score (the authors' released code)


def fold_scores(cls: torch.Tensor, iou: torch.Tensor, alpha: float, min_cls: float) -> torch.Tensor:
    """S = cls^α · IoU^(1−α) where cls >= min_cls; below it the class score is kept as it is.

    Folding raises weak class scores (cls^α > cls for cls < 1, α < 1): at α = 0.5 a class score of 1e-6
    becomes ~1e-3 and passes validation's conf = 0.001, so NMS and max_det drown in candidates. Candidates
    are therefore selected by the class score (the stock set at conf >= min_cls) and ranked by the fused
    score. ``min_cls = 0`` folds everything.

    Args:
        cls: (B, nc, A) class probabilities.
        iou: (B, 1, A) predicted IoU in [0, 1].
    """
    fused = cls.pow(alpha) * iou.pow(1 - alpha)
    return torch.where(cls >= min_cls, fused, cls) if min_cls > 0 else fused


class IoUAwareDetect(Detect):
    """``Detect`` with an IoU branch per box tower (``iou_head``; ``one2one_iou_head`` for end-to-end heads).

    Every stock layer keeps its shape, so stock weights load into all of them. Training output adds ``"iou"``
    (B, 1, A) logits to each branch's stock dict; inference folds the predicted IoU into the class scores.
    """

    iou_aware_alpha = 0.5
    iou_aware_min_cls = 0.001

    @property
    def one2many(self):
        return {"box_head": self.cv2, "cls_head": self.cv3, "iou_head": self.iou_head}

    @property
    def one2one(self):
        return {"box_head": self.one2one_cv2, "cls_head": self.one2one_cv3,
                "iou_head": getattr(self, "one2one_iou_head", None)}

    def forward_head(self, x, box_head=None, cls_head=None, iou_head=None):
        if box_head is None or cls_head is None or iou_head is None:  # fused-away branch
            return {}
        bs = x[0].shape[0]
        hidden = [box_head[i][:-1](x[i]) for i in range(self.nl)]  # box tower before its last 1x1 conv
        boxes = torch.cat([box_head[i][-1](hidden[i]).view(bs, 4 * self.reg_max, -1) for i in range(self.nl)], -1)
        scores = torch.cat([cls_head[i](x[i]).view(bs, self.nc, -1) for i in range(self.nl)], -1)
        iou = torch.cat([iou_head[i](hidden[i]).view(bs, 1, -1) for i in range(self.nl)], -1)
        return {"boxes": boxes, "scores": scores, "feats": x, "iou": iou}

    def _inference(self, x):
        dbox = self._get_decode_boxes(x)
        scores = fold_scores(x["scores"].sigmoid(), x["iou"].sigmoid(), self.iou_aware_alpha, self.iou_aware_min_cls)
        return torch.cat((dbox, scores), 1)

    def __setstate__(self, state):
        super().__setstate__(state)
        if self.__dict__.get("iou_aware_alpha_convention") != ALPHA_CONVENTION:  # written before boxloss 0.2
            self.iou_aware_alpha = 1.0 - self.__dict__.get("iou_aware_alpha", 0.5)  # its IoU exponent -> ours
            self.iou_aware_alpha_convention = ALPHA_CONVENTION
            self.iou_aware_alpha_migrated = True


class IoUAwarev10Detect(IoUAwareDetect, v10Detect):
    """The IoU-aware head of YOLOv10 (its v10Detect keeps its own classification towers and fuse)."""


def _iou_convs(tower: nn.ModuleList) -> nn.ModuleList:
    reference = tower[0][-1]  # the box branch's last 1x1 conv: its input is the hidden feature
    convs = nn.ModuleList(nn.Conv2d(box[-1].in_channels, 1, 1) for box in tower).to(
        device=reference.weight.device, dtype=reference.weight.dtype)
    for conv in convs:
        nn.init.normal_(conv.weight, std=0.01)
        nn.init.zeros_(conv.bias)  # predicted IoU starts at 0.5
    return convs


def add_iou_branch(model: nn.Module, alpha: float = 0.5, min_cls: float = 0.001) -> nn.Module:
    """Give a stock detection model the IoU branch (in place; returns the model).

    The model YAML cannot name a custom head in ultralytics 8.4 (``parse_model`` resolves its own
    modules), so the stock head is re-classed and the new convs are added; only they start fresh.
    """
    head = model.model[-1]
    if isinstance(head, IoUAwareDetect):
        head.iou_aware_alpha, head.iou_aware_min_cls = alpha, min_cls
        return model
    if type(head) not in (Detect, v10Detect) or not isinstance(getattr(head, "cv2", None), nn.ModuleList):
        raise ValueError(f"the IoU-aware head needs a detection head with a box tower (Detect, v10Detect), got "
                         f"{type(head).__name__}")
    head.iou_head = _iou_convs(head.cv2)
    if getattr(head, "one2one_cv2", None) is not None:
        head.one2one_iou_head = _iou_convs(head.one2one_cv2)
    head.__class__ = IoUAwarev10Detect if isinstance(head, v10Detect) else IoUAwareDetect
    head.iou_aware_alpha, head.iou_aware_min_cls = alpha, min_cls
    head.iou_aware_alpha_convention = ALPHA_CONVENTION
    return model


class IoUAwareCriterion(BoxLossCriterion):
    """:class:`BoxLossCriterion` plus the IoU-prediction loss, logged as ``iou_loss``.

    iou_loss = iou_gain · Σ_pos BCE(σ⁻¹ IoU_pred, IoU(box_pred, box_target)) / N_pos — positives only,
    divided by the number of positives as in the paper. The target IoU is detached unless
    ``iou_target_grad`` (the paper reports that back-propagating through it helps).
    """

    def __init__(self, model: nn.Module, tal_topk: int = 10, tal_topk2: int | None = None, state_key: str = "main"):
        super().__init__(model, tal_topk, tal_topk2, state_key)
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
        box = pred_fg if self.options["iou_target_grad"] else pred_fg.detach()
        target_iou = aligned_iou(box, target_bboxes[fg_mask])
        bce = F.binary_cross_entropy_with_logits(iou_logits[fg_mask], target_iou.to(iou_logits.dtype).clamp(0, 1),
                                                 reduction="sum")
        return bce / num_pos
