"""Ultralytics integration: the configurable criterion, the detection, segmentation and pose models and trainers, and a
YOLO class that uses them.

Importing this package (which the trainer's module does, so the DDP child process does too):
- keeps ultralytics offline (``YOLO_OFFLINE``, ``YOLO_AUTOINSTALL=false`` unless the user set them);
- gives ultralytics a local font (it would download Arial on every train and val otherwise);
- registers the project's config keys with ultralytics, so they are valid in the trainer, the validator,
  checkpoints, resume and the DDP child;
- with ``BOXLOSS_THREADS=n`` (the benchmark's parallel jobs set it), makes ultralytics use n CPU threads.
"""

import os

os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_AUTOINSTALL", "false")

from ..threads import limit_threads  # noqa: E402
from .cfg import ensure_offline_font, register_config_keys  # noqa: E402

register_config_keys()
ensure_offline_font()
limit_threads()

from .criterion import BoxLossCriterion  # noqa: E402
from .api import BoxLossYOLO  # noqa: E402
from .model import BoxLossDetectionModel, BoxLossPoseModel, BoxLossSegmentationModel  # noqa: E402
from .trainer import BoxLossDetectionTrainer, BoxLossPoseTrainer, BoxLossSegmentationTrainer  # noqa: E402

__all__ = ["BoxLossCriterion", "BoxLossDetectionModel", "BoxLossSegmentationModel", "BoxLossPoseModel",
           "BoxLossDetectionTrainer", "BoxLossSegmentationTrainer", "BoxLossPoseTrainer", "BoxLossYOLO",
           "register_config_keys"]
