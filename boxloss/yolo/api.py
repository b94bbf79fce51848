"""``BoxLossYOLO``: the ``ultralytics.YOLO`` a user calls, wired to the project's model, trainer and criterion."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO

from .model import TASK_MODELS
from .postprocess import (BoxLossPosePredictor, BoxLossPoseValidator, BoxLossPredictor,
                          BoxLossSegmentationPredictor, BoxLossSegmentationValidator, BoxLossValidator)
from .trainer import TASK_TRAINERS

TASK_VALIDATORS = {"detect": BoxLossValidator, "segment": BoxLossSegmentationValidator, "pose": BoxLossPoseValidator}
TASK_PREDICTORS = {"detect": BoxLossPredictor, "segment": BoxLossSegmentationPredictor, "pose": BoxLossPosePredictor}


class BoxLossYOLO(YOLO):
    """``ultralytics.YOLO`` whose detect, segment and pose tasks train with the project's trainer and criterion, and
    validate and predict with the configured NMS (``nms_method``: standard or diou).

    Train, val, predict and resume all go through ``task_map``, so the project's classes are used
    without passing them each time: ``BoxLossYOLO("best.pt").predict(image, nms_method="diou")``.
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        task_map = dict(super().task_map)
        for task, model in TASK_MODELS.items():
            task_map[task] = {"model": model, "trainer": TASK_TRAINERS[task], "validator": TASK_VALIDATORS[task],
                              "predictor": TASK_PREDICTORS[task]}
        return task_map
