"""The tasks boxloss trains, one record each: what a task is, on the YOLO side, in one row.

A :class:`Task` names ultralytics' task (``detect``, ``segment``, ``pose``, ``obb``) and holds everything the project
varies by it: the model class (and through it the heads it trains and the boxes they predict, which its criterion's box
loss takes), the trainer (and through it the validator it validates with during training), the predictor and the
capture validator ``val.py`` evaluates with. ``BoxLossYOLO``'s ``task_map``, ``train.py``'s model check and ``val.py``
all read :data:`TASKS`; adding a task is one row here plus its classes.

The lower floors keep their own tables, keyed by the same names: the evaluation families of a task
(:data:`boxloss.evaluation.TASK_FAMILIES`: box, and mask or pose; obb), what its labels hold
(:data:`boxloss.data.yolo_format.TASK_KINDS`) and its embedded dataset (:data:`boxloss.data.synthetic.TASK_NAMES`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ultralytics.nn.modules.head import Detect

from ..evaluation import TASK_FAMILIES
from .coco_val import (CocoCaptureValidator, CocoOBBCaptureValidator, CocoPoseCaptureValidator,
                       CocoSegmentCaptureValidator)
from .model import BoxLossDetectionModel, BoxLossOBBModel, BoxLossPoseModel, BoxLossSegmentationModel
from .postprocess import BoxLossOBBPredictor, BoxLossPosePredictor, BoxLossPredictor, BoxLossSegmentationPredictor
from .trainer import BoxLossDetectionTrainer, BoxLossOBBTrainer, BoxLossPoseTrainer, BoxLossSegmentationTrainer


@dataclass(frozen=True)
class Task:
    """One task boxloss trains. ``iou_aware``: the IoU-aware head can attach to its box tower."""

    name: str
    model: type  # BoxLoss*Model; its ``heads`` are the heads this task trains, its ``boxes`` what they predict
    trainer: type  # BoxLoss*Trainer; its ``validator_class`` validates during training
    predictor: type
    capture_validator: type  # val.py: the validator that keeps every image's detections for COCO evaluation
    iou_aware: bool = False

    @property
    def heads(self) -> tuple[str, ...]:
        """The head classes (ultralytics' names) of this task's models."""
        return self.model.heads

    @property
    def boxes(self) -> str:
        """The boxes its criterion hands the box loss (``xyxy``: axis-aligned; ``xywhr``: rotated); a registered loss
        takes one kind (``LossSpec.boxes``)."""
        return self.model.boxes

    @property
    def validator(self) -> type:
        return self.trainer.validator_class

    @property
    def families(self) -> tuple[str, ...]:
        """The metric families val.py reports for this task's models (box, and mask or pose; obb): the first is the
        boxes' own."""
        return TASK_FAMILIES[self.name]

    def task_map(self) -> dict[str, type]:
        """This task's entry of ultralytics' ``YOLO.task_map``."""
        return {"model": self.model, "trainer": self.trainer, "validator": self.validator,
                "predictor": self.predictor}


TASKS: dict[str, Task] = {task.name: task for task in (
    Task("detect", BoxLossDetectionModel, BoxLossDetectionTrainer, BoxLossPredictor, CocoCaptureValidator,
         iou_aware=True),
    Task("segment", BoxLossSegmentationModel, BoxLossSegmentationTrainer, BoxLossSegmentationPredictor,
         CocoSegmentCaptureValidator),
    Task("pose", BoxLossPoseModel, BoxLossPoseTrainer, BoxLossPosePredictor, CocoPoseCaptureValidator),
    Task("obb", BoxLossOBBModel, BoxLossOBBTrainer, BoxLossOBBPredictor, CocoOBBCaptureValidator),
)}

HEAD_KINDS = {  # heads boxloss does not train, and what they are (for the refusal)
    "Classify": "classification: no boxes",
    "RTDETRDecoder": "RT-DETR, a transformer decoder without the task-aligned assigner",
    "WorldDetect": "open-vocabulary YOLO-World", "YOLOEDetect": "open-vocabulary YOLOE",
    "YOLOESegment": "open-vocabulary YOLOE", "YOLOESegment26": "open-vocabulary YOLOE"}


def task_of_head(head_name: str) -> Task | None:
    """The task whose models have the head class ``head_name`` (the IoU-aware head counts as its base), or None."""
    name = head_name.removeprefix("IoUAware")
    return next((task for task in TASKS.values() if name in task.heads), None)


def head_task(head) -> Task | None:
    """The task of a built head, or None when boxloss does not train it."""
    return task_of_head(type(head).__name__) if isinstance(head, Detect) else None


def supported_heads_text() -> str:
    """One line naming every head boxloss trains, by task."""
    return "; ".join(f"{task.name} ({', '.join(task.heads)})" for task in TASKS.values())


def unsupported_head_reason(head_name: str) -> str | None:
    """Why a head (its class name) cannot train with boxloss, or None when it can."""
    if task_of_head(head_name) is not None:
        return None
    kind = HEAD_KINDS.get(head_name, "not a detection, segmentation, pose or oriented-box head")
    return f"its head is {head_name} ({kind}); boxloss trains {supported_heads_text()}"
