"""A DetectionModel that builds the configurable criterion, and a YOLO class wired to the project."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO
from ultralytics.models import yolo
from ultralytics.nn.tasks import DetectionModel

from .criterion import BoxLossCriterion


class BoxLossDetectionModel(DetectionModel):
    """``DetectionModel`` whose criterion is :class:`BoxLossCriterion` (box loss read from ``model.args``)."""

    def init_criterion(self):
        if getattr(self.model[-1], "one2one_cv2", None) is not None:
            raise ValueError("boxloss supports YOLOv8-style heads; end-to-end (one-to-one) heads are not supported")
        from .iou_aware import IoUAwareCriterion, IoUAwareDetect

        return IoUAwareCriterion(self) if isinstance(self.model[-1], IoUAwareDetect) else BoxLossCriterion(self)


class BoxLossYOLO(YOLO):
    """``ultralytics.YOLO`` whose detect task trains with the project's trainer and criterion.

    Train, val, predict and resume all go through ``task_map``, so the project's classes are used
    without passing them each time.
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        from .trainer import BoxLossDetectionTrainer

        task_map = dict(super().task_map)
        task_map["detect"] = {
            "model": BoxLossDetectionModel,
            "trainer": BoxLossDetectionTrainer,
            "validator": yolo.detect.DetectionValidator,
            "predictor": yolo.detect.DetectionPredictor,
        }
        return task_map
