"""The loss mathematics, pure torch: importing this package registers every loss in :mod:`boxloss.registry`.

Box losses, ``(N, 4)`` xyxy pairs to a per-box ``(N,)`` loss, on the shared geometry of :mod:`._geometry`: the IoU
family (:mod:`.iou_family`: IoU, GIoU, DIoU, CIoU, EIoU, Focal-EIoU), later IoU variants (:mod:`.iou_variants`:
SIoU, Wise-IoU, MPDIoU, Shape-IoU, Powerful-IoU v2), the Inner-, Focaler- and Alpha- wrappers (:mod:`.iou_wrappers`),
NWD (:mod:`.nwd`), Smooth and Focal L1 (:mod:`.l1_family`) and IoU-balanced weighting (:mod:`.weighting`);
classification losses (:mod:`.classification`: BCE, focal, Varifocal, QFL, class-balanced) and AP-Loss
(:mod:`.ap_loss`).
"""

from . import ap_loss, classification, iou_family, iou_variants, iou_wrappers, l1_family, nwd  # noqa: F401
from . import gaussian, rotated_iou  # noqa: F401  (the rotated losses, registered after the axis-aligned ones)
from ._geometry import aligned_iou, pair_geometry
from ._rotated_geometry import aligned_rotated_iou
from .classification import bce, focal, iou_balanced_cls_weights
from .gaussian import gwd_loss, kfiou_loss, kld_loss, probiou_loss
from .iou_family import ciou_loss, diou_loss, eiou_loss, focal_eiou_loss, giou_loss, iou_loss
from .iou_variants import (mpdiou_loss, piou_v2_loss, shape_iou_loss, siou_loss, updated_iou_mean, wiou_loss,
                           wiou_v3_loss)
from .l1_family import focal_l1_loss, smooth_l1_loss
from .nwd import nwd_loss
from .rotated_iou import focal_reiou_loss, reiou_loss, rgiou_loss, riou_loss
from .weighting import iou_balanced, iou_balanced_weights

__all__ = [
    "aligned_iou", "pair_geometry", "aligned_rotated_iou", "bce", "focal", "iou_balanced_cls_weights", "ciou_loss",
    "diou_loss", "eiou_loss", "focal_eiou_loss", "giou_loss", "iou_loss", "focal_l1_loss", "smooth_l1_loss",
    "iou_balanced", "iou_balanced_weights", "siou_loss", "wiou_loss", "wiou_v3_loss", "updated_iou_mean",
    "mpdiou_loss", "shape_iou_loss", "piou_v2_loss", "nwd_loss", "probiou_loss", "kld_loss", "gwd_loss", "kfiou_loss",
    "riou_loss", "rgiou_loss", "reiou_loss", "focal_reiou_loss",
]
