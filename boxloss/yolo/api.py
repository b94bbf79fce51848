"""``BoxLossYOLO``: the ``ultralytics.YOLO`` a user calls, wired to the project's model, trainer and criterion."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO
from ultralytics.models import yolo

from .model import BoxLossDetectionModel
from .trainer import BoxLossDetectionTrainer


class BoxLossYOLO(YOLO):
    """``ultralytics.YOLO`` whose detect task trains with the project's trainer and criterion.

    Train, val, predict and resume all go through ``task_map``, so the project's classes are used
    without passing them each time.
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        task_map = dict(super().task_map)
        task_map["detect"] = {
            "model": BoxLossDetectionModel,
            "trainer": BoxLossDetectionTrainer,
            "validator": yolo.detect.DetectionValidator,
            "predictor": yolo.detect.DetectionPredictor,
        }
        return task_map
