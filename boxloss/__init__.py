"""boxloss: bounding-box regression losses for Ultralytics YOLO (YOLOv5u to YOLO26; detection, segmentation and
pose), chosen by name, and the evaluation and benchmarks that measure what each buys.

The loss mathematics (:mod:`boxloss.losses`) is pure torch and imports nothing from ultralytics; every loss is found
by name in one registry (:mod:`boxloss.registry`). The ultralytics integration lives in :mod:`boxloss.yolo`, COCO
evaluation in :mod:`boxloss.evaluation`, the seeds x configs benchmark in :mod:`boxloss.benchmark`, the commands in
:mod:`boxloss.cli` (docs/development.md has the whole layout).

    >>> import boxloss
    >>> "eiou" in boxloss.list_losses()            # every box loss, the inner_/focaler_/alpha_ versions included
    True
    >>> boxloss.list_losses("cls")
    ['ap_loss', 'bce', 'class_balanced_bce', 'class_balanced_focal', 'focal', 'qfl', 'varifocal']
    >>> loss = boxloss.get_loss("eiou")(pred_xyxy, target_xyxy)  # (N,)
    >>> boxloss.list_losses(boxes="xywhr")[:4]  # rotated boxes (N, 5): centre, width, height, angle in radians
    ['focal_reiou', 'focaler_reiou', 'focaler_rgiou', 'focaler_riou']
    >>> loss = boxloss.get_loss("kld")(pred_xywhr, target_xywhr)  # (N,)
"""

from . import losses  # noqa: F401  (registers the losses)
from .losses import aligned_iou, iou_balanced
from .registry import get_loss, get_spec, list_losses

__version__ = "0.2.0"
__all__ = ["list_losses", "get_loss", "get_spec", "aligned_iou", "iou_balanced", "__version__"]
