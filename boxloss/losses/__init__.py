"""Loss functions; importing this package registers them."""

from . import classification, iou_family, l1_family  # noqa: F401  (registration)
from ._geometry import aligned_iou, pair_geometry
from .classification import bce, focal, iou_balanced_cls_weights
from .iou_family import ciou_loss, diou_loss, eiou_loss, focal_eiou_loss, giou_loss, iou_loss
from .l1_family import focal_l1_loss, smooth_l1_loss
from .weighting import iou_balanced, iou_balanced_weights

__all__ = [
    "aligned_iou", "pair_geometry", "bce", "focal", "iou_balanced_cls_weights", "ciou_loss", "diou_loss",
    "eiou_loss", "focal_eiou_loss", "giou_loss", "iou_loss", "focal_l1_loss", "smooth_l1_loss", "iou_balanced",
    "iou_balanced_weights",
]
