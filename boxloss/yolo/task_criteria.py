"""Segmentation and pose criteria: ultralytics' own, with the configured box loss underneath.

In ultralytics 8.4.190 ``v8SegmentationLoss``, ``SegmentLoss26`` (YOLO26), ``v8PoseLoss`` and ``PoseLoss26`` (YOLO26)
all inherit ``v8DetectionLoss`` and take their box, classification and DFL (or L1) terms, and the assigned targets
their own terms use, from its ``get_assigned_targets_and_loss``. Each class here puts
:class:`~boxloss.yolo.criterion.BoxLossCriterion` between the task loss and ``v8DetectionLoss`` in the method
resolution order (task loss -> BoxLossCriterion -> v8DetectionLoss), so that method, the assigner's metric and the
classification loss are the project's, and everything else runs ultralytics' own code unchanged: the mask loss
(BCE on the prototype masks, cropped to the box; YOLO26's semantic BCE + Dice), the keypoint OKS loss, the
keypoint-visibility BCE and YOLO26's RLE term, the YOLO26 assigners that blend the box overlap with mask IoU or
keypoint OKS, the gains and the loss-item names. With ``box_loss: ciou`` and the other options at their defaults
the losses, items and gradients are ultralytics' bit for bit (tests/test_models.py).
"""

from __future__ import annotations

from ultralytics.utils.loss import PoseLoss26, SegmentLoss26, v8PoseLoss, v8SegmentationLoss

from .criterion import BoxLossCriterion


class TaskCriterion:
    """The first base of a task criterion: restores the assigner metric after the task loss has replaced the
    assigner (YOLO26's mask- and OKS-aware assigners are built after the detection part), and adds the parts of
    the box loss (``box_terms``) to the task loss's own items."""

    def __init__(self, model, tal_topk: int = 10, tal_topk2: int | None = None):
        super().__init__(model, tal_topk, tal_topk2)
        self.install_assigner_metric()

    def loss(self, preds, batch):
        total, items = super().loss(preds, batch)
        return total, {**items, **self.box_term_items}


class BoxLossSegmentationCriterion(TaskCriterion, v8SegmentationLoss, BoxLossCriterion):
    """``v8SegmentationLoss`` (YOLOv8/11 ``Segment``) with the configured box loss."""


class BoxLossSegment26Criterion(TaskCriterion, SegmentLoss26, BoxLossCriterion):
    """``SegmentLoss26`` (YOLO26 ``Segment26``, both end-to-end branches) with the configured box loss."""


class BoxLossPoseCriterion(TaskCriterion, v8PoseLoss, BoxLossCriterion):
    """``v8PoseLoss`` (YOLOv8/11 ``Pose``) with the configured box loss."""


class BoxLossPose26Criterion(TaskCriterion, PoseLoss26, BoxLossCriterion):
    """``PoseLoss26`` (YOLO26 ``Pose26``, both end-to-end branches) with the configured box loss."""
