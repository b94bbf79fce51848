"""A DetectionModel that builds the configurable criterion."""

from __future__ import annotations

from ultralytics.nn.tasks import DetectionModel

from .criterion import BoxLossCriterion
from .iou_aware import IoUAwareCriterion, IoUAwareDetect


class BoxLossDetectionModel(DetectionModel):
    """``DetectionModel`` whose criterion is :class:`BoxLossCriterion` (box loss read from ``model.args``)."""

    def init_criterion(self):
        if getattr(self.model[-1], "one2one_cv2", None) is not None:
            raise ValueError("boxloss supports YOLOv8-style heads; end-to-end (one-to-one) heads are not supported")
        return IoUAwareCriterion(self) if isinstance(self.model[-1], IoUAwareDetect) else BoxLossCriterion(self)
