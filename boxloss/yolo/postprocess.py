"""The validators' and predictors' postprocess: ultralytics' NMS, DIoU-NMS or exact rotated NMS, as ``nms_method`` says.

The validators and predictors here (detection, segmentation, pose, oriented boxes) call :func:`non_max_suppression`
where ultralytics' own call its ``non_max_suppression``; the suppression itself is :mod:`boxloss.ops.nms`.

``nms_method: standard`` (default) is ultralytics' ``non_max_suppression``, untouched. ``nms_method: diou`` keeps its
semantics -- the candidates above ``conf`` (one per class above it with ``multi_label``, as validation uses; the best
class otherwise), the ``classes`` filter, at most ``max_nms`` candidates by score, class-aware suppression unless
``agnostic``, at most ``max_det`` kept -- and replaces only the suppression rule by DIoU-NMS
(:func:`boxloss.ops.nms.batched_diou_nms`, IoU − (ρ²/c²)^β against the kept box). End-to-end heads (NMS-free) pass
through ultralytics' own function.

Oriented boxes: ``standard`` is ultralytics' Fast-NMS (arXiv 1904.02689: a box goes when any higher-scored box of its
class overlaps it above the threshold) on ProbIoU, which reads a rotated pair's overlap high and a square turned by
45° against itself as 1. ``nms_method: exact`` is the same function with only its IoU replaced by the exact polygon
IoU (:func:`boxloss.ops.rotated.rotated_iou`, in float64: ultralytics separates classes by 7680 px offsets); DIoU-NMS
is axis-aligned and not offered for them (``boxloss.options`` refuses the pairings before a run).

Why not a patch inside ultralytics' function: its suppression is ``torchvision.ops.nms`` on class-offset boxes
(7680 px per class), with no hook to swap the criterion; re-selecting the candidates here, by the same rules, is a
few lines and is tested against it (with β huge, DIoU-NMS is plain NMS and the outputs are identical).
"""

from __future__ import annotations

import torch
from unittest import mock

from ultralytics.models.yolo.detect import DetectionPredictor, DetectionValidator
from ultralytics.models.yolo.obb import OBBPredictor, OBBValidator
from ultralytics.models.yolo.pose import PosePredictor, PoseValidator
from ultralytics.models.yolo.segment import SegmentationPredictor, SegmentationValidator
from ultralytics.utils import nms as ultralytics_nms
from ultralytics.utils.ops import xywh2xyxy

from ..ops.nms import NMS_METHODS, batched_diou_nms, diou_nms
from ..ops.rotated import rotated_iou


def non_max_suppression(prediction, conf_thres: float = 0.25, iou_thres: float = 0.45, classes=None,
                        agnostic: bool = False, multi_label: bool = False, max_det: int = 300, nc: int = 0,
                        max_nms: int = 30000, end2end: bool = False, rotated: bool = False, method: str = "standard",
                        beta: float = 1.0, **kwargs) -> list[torch.Tensor]:
    """ultralytics' ``non_max_suppression`` with ``method`` ``standard`` (itself), ``diou`` (DIoU-NMS) or, for
    ``rotated`` boxes, ``exact`` (its Fast-NMS on the exact polygon IoU).

    Returns, per image, (n, 6 + extra) rows ``x1, y1, x2, y2, score, class, extra...`` in descending score order
    (rotated: ``x, y, w, h, score, class, extra..., angle``, as ultralytics returns them).
    """
    if method not in NMS_METHODS:
        raise ValueError(f"nms method must be one of {', '.join(NMS_METHODS)}, got {method!r}")
    if (method == "exact") != rotated and method != "standard":
        raise ValueError(f"nms method {method} is for {'rotated' if method == 'exact' else 'axis-aligned'} boxes")
    if method == "exact":
        with mock.patch.object(ultralytics_nms, "batch_probiou", exact_iou_matrix):
            return ultralytics_nms.non_max_suppression(prediction, conf_thres, iou_thres, classes, agnostic,
                                                       multi_label, max_det, nc, max_nms=max_nms, end2end=end2end,
                                                       rotated=True, **kwargs)
    if method == "standard" or end2end or rotated or kwargs.get("return_idxs"):
        return ultralytics_nms.non_max_suppression(prediction, conf_thres, iou_thres, classes, agnostic, multi_label,
                                                   max_det, nc, max_nms=max_nms, end2end=end2end, rotated=rotated,
                                                   **kwargs)
    if isinstance(prediction, (list, tuple)):  # validation mode: (inference output, loss output)
        prediction = prediction[0]
    if prediction.shape[-1] == 6:  # already end-to-end output
        return ultralytics_nms.non_max_suppression(prediction, conf_thres, iou_thres, classes, agnostic,
                                                   multi_label, max_det, nc, end2end=True)
    nc = nc or (prediction.shape[1] - 4)
    wanted = torch.tensor(classes, device=prediction.device) if classes is not None else None
    output = []
    for x in prediction.transpose(-1, -2):  # (A, 4 + nc + extra) per image
        box, cls, extra = x[:, :4], x[:, 4:4 + nc], x[:, 4 + nc:]
        if multi_label and nc > 1:
            i, j = torch.where(cls > conf_thres)
            rows = torch.cat((xywh2xyxy(box[i]), cls[i, j, None], j[:, None].float(), extra[i]), 1)
        else:
            conf, j = cls.max(1, keepdim=True)
            keep = conf.view(-1) > conf_thres
            rows = torch.cat((xywh2xyxy(box), conf, j.float(), extra), 1)[keep]
        if wanted is not None:
            rows = rows[(rows[:, 5:6] == wanted).any(1)]
        if len(rows) > max_nms:
            rows = rows[rows[:, 4].argsort(descending=True)[:max_nms]]
        if agnostic:
            kept = diou_nms(rows[:, :4], rows[:, 4], iou_thres, beta, max_keep=max_det)
        else:
            kept = batched_diou_nms(rows[:, :4], rows[:, 4], rows[:, 5], iou_thres, beta, max_keep=max_det)
        output.append(rows[kept[:max_det]])
    return output


def exact_iou_matrix(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """(N, M) exact polygon IoU of xywhr boxes (pixels, radians), in float64, as ``boxes1``'s dtype: what
    ``nms_method: exact`` gives ultralytics' rotated NMS in place of its ``batch_probiou``."""
    return rotated_iou(boxes1.double(), boxes2.double()).to(boxes1.dtype)


class BoxLossValidator(DetectionValidator):
    """``DetectionValidator`` whose NMS follows ``nms_method`` / ``nms_diou_beta`` (training-time validation too)."""

    def postprocess(self, preds):
        if getattr(self.args, "nms_method", "standard") == "standard":
            return super().postprocess(preds)
        outputs = non_max_suppression(
            preds, self.args.conf, self.args.iou, nc=0 if self.args.task == "detect" else self.nc, multi_label=True,
            agnostic=self.args.single_cls or self.args.agnostic_nms, max_det=self.args.max_det,
            end2end=self.end2end, rotated=self.args.task == "obb", method=self.args.nms_method,
            beta=self.args.nms_diou_beta)
        return [{"bboxes": x[:, :4], "conf": x[:, 4], "cls": x[:, 5], "extra": x[:, 6:]} for x in outputs]


class BoxLossPredictor(DetectionPredictor):
    """``DetectionPredictor`` whose NMS follows ``nms_method`` / ``nms_diou_beta``."""

    def postprocess(self, preds, img, orig_imgs, **kwargs):
        if getattr(self.args, "nms_method", "standard") == "standard" or getattr(self, "_feats", None) is not None:
            return super().postprocess(preds, img, orig_imgs, **kwargs)
        preds = non_max_suppression(
            preds, self.args.conf, kwargs.pop("iou", self.args.iou), self.args.classes, self.args.agnostic_nms,
            max_det=self.args.max_det, nc=0 if self.args.task == "detect" else len(self.model.names),
            end2end=getattr(self.model, "end2end", False), rotated=self.args.task == "obb",
            method=self.args.nms_method, beta=self.args.nms_diou_beta)
        if not isinstance(orig_imgs, list):
            from ultralytics.utils import ops

            orig_imgs = ops.convert_torch2numpy_batch(orig_imgs)[..., ::-1]
        return self.construct_results(preds, img, orig_imgs, **kwargs)


# Segmentation and pose: ultralytics' validators and predictors call the detection ones' ``postprocess`` for the NMS
# and then decode the rows' extra columns (mask coefficients, keypoints), which DIoU-NMS carries along unchanged.
class BoxLossSegmentationValidator(SegmentationValidator, BoxLossValidator):
    """``SegmentationValidator`` whose NMS follows ``nms_method``."""


class BoxLossPoseValidator(PoseValidator, BoxLossValidator):
    """``PoseValidator`` whose NMS follows ``nms_method``."""


class BoxLossSegmentationPredictor(SegmentationPredictor, BoxLossPredictor):
    """``SegmentationPredictor`` whose NMS follows ``nms_method``."""


class BoxLossPosePredictor(PosePredictor, BoxLossPredictor):
    """``PosePredictor`` whose NMS follows ``nms_method``."""


class BoxLossOBBValidator(OBBValidator, BoxLossValidator):
    """``OBBValidator`` whose NMS follows ``nms_method`` (standard: ProbIoU; exact: the polygon IoU)."""


class BoxLossOBBPredictor(OBBPredictor, BoxLossPredictor):
    """``OBBPredictor`` whose NMS follows ``nms_method``."""
