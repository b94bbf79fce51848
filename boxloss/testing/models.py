"""A seeded model of the project's kind for a YAML, shared by the criterion and model tests and the training-step
benchmark (scripts/bench_loss.py), so the benchmark times the model the tests check. Imports ultralytics and
boxloss.yolo (unlike the rest of :mod:`boxloss.testing`).
"""

from __future__ import annotations


def build_model(yaml: str = "yolov8n.yaml", cls=None, *, init_seed: int = 0, **overrides):
    """A model of ``yaml`` with nc=5, its weights drawn after ``torch.manual_seed(init_seed)``, in training mode,
    whose ``args`` are ultralytics' defaults plus ``overrides`` (the criterion reads its settings there; a ``seed``
    among them is ultralytics' key). ``cls`` defaults to the project's model of the YAML's task (a pose model gets the
    embedded pose data's keypoint shape). ultralytics' "Overriding model.yaml nc=80" line is not logged."""
    import logging

    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import PoseModel, guess_model_task
    from ultralytics.utils import LOGGER

    from ..data.synthetic.annotations import KPT_SHAPE
    from ..yolo.tasks import TASKS

    torch.manual_seed(init_seed)
    cls = cls or TASKS[guess_model_task(yaml)].model
    extra = {"data_kpt_shape": tuple(KPT_SHAPE)} if issubclass(cls, PoseModel) else {}
    level = LOGGER.level
    LOGGER.setLevel(logging.WARNING)
    try:
        model = cls(yaml, nc=5, verbose=False, **extra)
    finally:
        LOGGER.setLevel(level)
    model.args = get_cfg(overrides=overrides)
    return model.train()
