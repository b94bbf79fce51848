"""boxloss: bounding-box regression losses for YOLOv8, chosen by name.

The loss mathematics (``boxloss.losses``) is pure torch and imports nothing from ultralytics; the
ultralytics integration lives in ``boxloss.yolo``.

    >>> import boxloss
    >>> boxloss.list_losses()[:8]
    ['alpha_ciou', 'alpha_diou', 'alpha_eiou', 'alpha_giou', 'alpha_iou', 'ciou', 'diou', 'eiou']
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
