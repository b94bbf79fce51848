"""A DetectionModel that builds the configurable criterion, for every detection head ultralytics 8.4 builds.

Supported heads: ``Detect`` (YOLOv5u, v8, v9, 11, 12 with DFL; YOLO26 end-to-end and DFL-free) and ``v10Detect``
(YOLOv10, end-to-end). An end-to-end head gets ultralytics' own ``E2ELoss`` (ProgLoss schedule and top-k settings
unchanged) with the project's criterion on both branches.
"""

from __future__ import annotations

from ultralytics.nn.modules.head import Detect
from ultralytics.nn.tasks import DetectionModel
from ultralytics.utils.loss import E2ELoss

from .criterion import BoxLossCriterion
from .iou_aware import IoUAwareCriterion, IoUAwareDetect

SUPPORTED_HEADS = ("Detect", "v10Detect")  # the model-YAML names of the heads above
FAMILIES = "YOLOv5u, YOLOv8, YOLOv9, YOLOv10, YOLO11, YOLO12, YOLO26"


def unsupported_head(head) -> str | None:
    """Why a built head cannot train with boxloss, or None when it can (Detect and its end-to-end variants)."""
    name = type(head).__name__
    if isinstance(head, Detect) and type(head).__name__.removeprefix("IoUAware") in SUPPORTED_HEADS:
        return None
    return (f"its head is {name}, which boxloss does not train: it supports detection heads "
            f"({', '.join(SUPPORTED_HEADS)}; {FAMILIES})")


class BoxLossDetectionModel(DetectionModel):
    """``DetectionModel`` whose criterion is :class:`BoxLossCriterion` (box loss read from ``model.args``)."""

    def init_criterion(self):
        head = self.model[-1]
        reason = unsupported_head(head)
        if reason:
            raise ValueError(f"boxloss cannot train this model: {reason}")
        criterion = IoUAwareCriterion if isinstance(head, IoUAwareDetect) else BoxLossCriterion
        if getattr(head, "one2one_cv2", None) is None:
            return criterion(self)
        e2e = E2ELoss(self, loss_fn=criterion)
        e2e.one2many.set_state_key("one2many")
        e2e.one2one.set_state_key("one2one")
        return e2e
