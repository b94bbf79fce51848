"""Detection, segmentation and pose models that build the configurable criterion, for every such head of
ultralytics 8.4.

Supported heads (:data:`TASK_HEADS`): ``Detect`` (YOLOv5u, v8, v9, 11, 12 with DFL; YOLO26 end-to-end and DFL-free)
and ``v10Detect`` (YOLOv10, end-to-end); ``Segment`` (YOLOv8/11-seg) and ``Segment26`` (YOLO26-seg, end-to-end);
``Pose`` (YOLOv8/11-pose) and ``Pose26`` (YOLO26-pose, end-to-end). An end-to-end head gets ultralytics' own
``E2ELoss`` (ProgLoss schedule and top-k settings unchanged) with the project's criterion on both branches.
"""

from __future__ import annotations

from ultralytics.nn.modules.head import Detect, Pose26, Segment26
from ultralytics.nn.tasks import DetectionModel, PoseModel, SegmentationModel
from ultralytics.utils.loss import E2ELoss

from .criterion import BoxLossCriterion
from .iou_aware import IoUAwareCriterion, IoUAwareDetect
from .task_criteria import (BoxLossPose26Criterion, BoxLossPoseCriterion, BoxLossSegment26Criterion,
                            BoxLossSegmentationCriterion)

TASK_HEADS = {"detect": ("Detect", "v10Detect"), "segment": ("Segment", "Segment26"), "pose": ("Pose", "Pose26")}
HEAD_TASK = {name: task for task, names in TASK_HEADS.items() for name in names}


def head_task(head) -> str | None:
    """The task of a built head boxloss trains (detect, segment, pose), or None."""
    if not isinstance(head, Detect):
        return None
    return HEAD_TASK.get(type(head).__name__.removeprefix("IoUAware"))


def end_to_end(head) -> bool:
    """Whether a built head is end-to-end (YOLOv10, YOLO26): a one-to-one branch beside the one-to-many one, whose
    detections need no NMS."""
    return getattr(head, "one2one_cv2", None) is not None


def supported_heads_text() -> str:
    """One line naming every head boxloss trains, by task."""
    return "; ".join(f"{task} ({', '.join(names)})" for task, names in TASK_HEADS.items())


def unsupported_head(head) -> str | None:
    """Why a built head cannot train with boxloss, or None when it can."""
    if head_task(head) is not None:
        return None
    return f"its head is {type(head).__name__}, which boxloss does not train: it trains {supported_heads_text()}"


def _criterion(model, loss_fn, task: str):
    """``loss_fn(model)``, or ultralytics' ``E2ELoss`` running it on both branches of an end-to-end head."""
    head = model.model[-1]
    reason = unsupported_head(head)
    if reason:
        raise ValueError(f"boxloss cannot train this model: {reason}")
    if head_task(head) != task:
        raise ValueError(f"a {task} model needs a {task} head ({', '.join(TASK_HEADS[task])}), "
                         f"not {type(head).__name__}")
    if not end_to_end(head):
        return loss_fn(model)
    e2e = E2ELoss(model, loss_fn=loss_fn)
    e2e.one2many.set_state_key("one2many")
    e2e.one2one.set_state_key("one2one")
    return e2e


class BoxLossDetectionModel(DetectionModel):
    """``DetectionModel`` whose criterion is :class:`BoxLossCriterion` (box loss read from ``model.args``)."""

    def init_criterion(self):
        criterion = IoUAwareCriterion if isinstance(self.model[-1], IoUAwareDetect) else BoxLossCriterion
        return _criterion(self, criterion, "detect")


class BoxLossSegmentationModel(SegmentationModel):
    """``SegmentationModel`` whose criterion is ultralytics' segmentation loss with the configured box loss."""

    def init_criterion(self):
        segment26 = isinstance(self.model[-1], Segment26)
        return _criterion(self, BoxLossSegment26Criterion if segment26 else BoxLossSegmentationCriterion, "segment")


class BoxLossPoseModel(PoseModel):
    """``PoseModel`` whose criterion is ultralytics' pose loss with the configured box loss."""

    def init_criterion(self):
        pose26 = isinstance(self.model[-1], Pose26)
        return _criterion(self, BoxLossPose26Criterion if pose26 else BoxLossPoseCriterion, "pose")


TASK_MODELS = {"detect": BoxLossDetectionModel, "segment": BoxLossSegmentationModel, "pose": BoxLossPoseModel}
