"""Detection, segmentation, pose and oriented-box models that build the configurable criterion, for every such head
of ultralytics 8.4.

Supported heads (each model class's ``heads``): ``Detect`` (YOLOv5u, v8, v9, 11, 12 with DFL; YOLO26 end-to-end and DFL-free)
and ``v10Detect`` (YOLOv10, end-to-end); ``Segment`` (YOLOv8/11-seg) and ``Segment26`` (YOLO26-seg, end-to-end);
``Pose`` (YOLOv8/11-pose) and ``Pose26`` (YOLO26-pose, end-to-end); ``OBB`` (YOLOv8/11-obb) and ``OBB26`` (YOLO26-obb,
end-to-end). An end-to-end head gets ultralytics' own ``E2ELoss`` (ProgLoss schedule and top-k settings unchanged) with
the project's criterion on both branches.
"""

from __future__ import annotations

from ultralytics.nn.modules.head import Detect, Pose26, Segment26
from ultralytics.nn.tasks import DetectionModel, OBBModel, PoseModel, SegmentationModel
from ultralytics.utils.loss import E2ELoss

from .criterion import BoxLossCriterion
from .iou_aware import IoUAwareCriterion, IoUAwareDetect
from .obb import BoxLossOBBCriterion
from .task_criteria import (BoxLossPose26Criterion, BoxLossPoseCriterion, BoxLossSegment26Criterion,
                            BoxLossSegmentationCriterion)


def end_to_end(head) -> bool:
    """Whether a built head is end-to-end (YOLOv10, YOLO26): a one-to-one branch beside the one-to-many one, whose
    detections need no NMS."""
    return getattr(head, "one2one_cv2", None) is not None


def _criterion(model, loss_fn):
    """``loss_fn(model)``, or ultralytics' ``E2ELoss`` running it on both branches of an end-to-end head."""
    head = model.model[-1]
    if not model.trains(head):
        raise ValueError(f"boxloss cannot train this model as a {model.task} model: its head is "
                         f"{type(head).__name__}; a {model.task} model has a {' or '.join(model.heads)} head")
    if not end_to_end(head):
        return loss_fn(model)
    e2e = E2ELoss(model, loss_fn=loss_fn)
    e2e.one2many.set_state_key("one2many")
    e2e.one2one.set_state_key("one2one")
    return e2e


class BoxLossModel:
    """What the project's models share (the first base of each model below): the heads they train (``heads``, class
    names; the IoU-aware head counts as its base), the boxes those predict (``boxes``, a key of
    :data:`boxloss.registry.BOX_FORMATS`, which their box loss takes) and the configurable criterion."""

    task = "detect"
    heads: tuple[str, ...] = ()
    boxes = "xyxy"

    @classmethod
    def trains(cls, head) -> bool:
        """Whether ``head`` (a built head module) is one of this model class's heads."""
        return isinstance(head, Detect) and type(head).__name__.removeprefix("IoUAware") in cls.heads


class BoxLossDetectionModel(BoxLossModel, DetectionModel):
    """``DetectionModel`` whose criterion is :class:`BoxLossCriterion` (box loss read from ``model.args``)."""

    heads = ("Detect", "v10Detect")

    def init_criterion(self):
        criterion = IoUAwareCriterion if isinstance(self.model[-1], IoUAwareDetect) else BoxLossCriterion
        return _criterion(self, criterion)


class BoxLossSegmentationModel(BoxLossModel, SegmentationModel):
    """``SegmentationModel`` whose criterion is ultralytics' segmentation loss with the configured box loss."""

    task = "segment"
    heads = ("Segment", "Segment26")

    def init_criterion(self):
        segment26 = isinstance(self.model[-1], Segment26)
        return _criterion(self, BoxLossSegment26Criterion if segment26 else BoxLossSegmentationCriterion)


class BoxLossPoseModel(BoxLossModel, PoseModel):
    """``PoseModel`` whose criterion is ultralytics' pose loss with the configured box loss."""

    task = "pose"
    heads = ("Pose", "Pose26")

    def init_criterion(self):
        pose26 = isinstance(self.model[-1], Pose26)
        return _criterion(self, BoxLossPose26Criterion if pose26 else BoxLossPoseCriterion)


class BoxLossOBBModel(BoxLossModel, OBBModel):
    """``OBBModel`` whose criterion is ultralytics' oriented-box loss with the configured box loss on rotated boxes."""

    task = "obb"
    heads = ("OBB", "OBB26")
    boxes = "xywhr"

    def init_criterion(self):
        return _criterion(self, BoxLossOBBCriterion)
