"""``BoxLossYOLO``: the ``ultralytics.YOLO`` a user calls, wired to the project's model, trainer and criterion."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO

from .model import BoxLossDetectionModel
from .nms import BoxLossPredictor, BoxLossValidator
from .trainer import BoxLossDetectionTrainer


class BoxLossYOLO(YOLO):
    """``ultralytics.YOLO`` whose detect task trains with the project's trainer and criterion, and validates and
    predicts with the configured NMS (``nms_method``: standard or diou).

    Train, val, predict and resume all go through ``task_map``, so the project's classes are used
    without passing them each time: ``BoxLossYOLO("best.pt").predict(image, nms_method="diou")``.
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        task_map = dict(super().task_map)
        task_map["detect"] = {
            "model": BoxLossDetectionModel,
            "trainer": BoxLossDetectionTrainer,
            "validator": BoxLossValidator,
            "predictor": BoxLossPredictor,
        }
        return task_map
