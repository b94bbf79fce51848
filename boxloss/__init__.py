"""boxloss: bounding-box regression losses for YOLOv8, chosen by name.

The loss mathematics (``boxloss.losses``) is pure torch and imports nothing from ultralytics; the
ultralytics integration lives in ``boxloss.yolo``.

    >>> import boxloss
    >>> boxloss.list_losses()
    ['ciou', 'diou', 'eiou', 'focal_eiou', 'focal_l1', 'giou', 'iou', 'smooth_l1']
    >>> loss = boxloss.get_loss("eiou")(pred_xyxy, target_xyxy)  # (N,)
"""

from . import losses  # noqa: F401  (registers the losses)
from .losses import aligned_iou, iou_balanced
from .registry import get_loss, get_spec, list_losses

__version__ = "0.2.0"
__all__ = ["list_losses", "get_loss", "get_spec", "aligned_iou", "iou_balanced", "__version__"]
