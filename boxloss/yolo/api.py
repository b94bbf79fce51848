"""``BoxLossYOLO``: the ``ultralytics.YOLO`` a user calls, wired to the project's model, trainer and criterion."""

from __future__ import annotations

from typing import Any

from ultralytics import YOLO

from .tasks import TASKS


class BoxLossYOLO(YOLO):
    """``ultralytics.YOLO`` whose tasks (:data:`~boxloss.yolo.tasks.TASKS`) train with the project's trainer and
    criterion, and validate and predict with the configured NMS (``nms_method``: standard or diou).

    Train, val, predict and resume all go through ``task_map``, so the project's classes are used
    without passing them each time: ``BoxLossYOLO("best.pt").predict(image, nms_method="diou")``.
    """

    @property
    def task_map(self) -> dict[str, dict[str, Any]]:
        return {**super().task_map, **{name: task.task_map() for name, task in TASKS.items()}}
