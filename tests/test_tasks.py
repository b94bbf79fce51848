"""The task table (boxloss/yolo/tasks.py): one record per task, consistent with ultralytics' own task map."""

from __future__ import annotations

import pytest

pytest.importorskip("ultralytics")

from ultralytics import YOLO  # noqa: E402

from boxloss.evaluation import TASK_FAMILIES  # noqa: E402
from boxloss.yolo import BoxLossYOLO  # noqa: E402
from boxloss.yolo.tasks import TASKS, task_of_head, unsupported_head_reason  # noqa: E402


@pytest.mark.parametrize("name", sorted(TASKS))
def test_each_record_subclasses_ultralytics_classes_of_its_task(name):
    """Model, trainer, validator and predictor of a task are subclasses of ultralytics' own for that task, and name
    the same task; the capture validator is the task's validator."""
    task = TASKS[name]
    stock = YOLO("yolov8n.yaml").task_map[name]
    for role in ("model", "trainer", "validator", "predictor"):
        assert issubclass(task.task_map()[role], stock[role]), (name, role)
    assert task.model.task == task.trainer.task == name
    assert issubclass(task.capture_validator, task.validator)
    assert task.families == TASK_FAMILIES[name]


def test_boxloss_yolo_uses_the_table_for_every_task():
    task_map = BoxLossYOLO("yolov8n.yaml").task_map
    for name, task in TASKS.items():
        assert task_map[name] == task.task_map()


def test_every_head_belongs_to_exactly_one_task():
    heads = [head for task in TASKS.values() for head in task.heads]
    assert len(heads) == len(set(heads))
    for task in TASKS.values():
        for head in task.heads:
            assert task_of_head(head) is task and task_of_head(f"IoUAware{head}") is task
            assert unsupported_head_reason(head) is None
    assert task_of_head("Classify") is None
    assert "classification" in unsupported_head_reason("Classify")
