"""Run ultralytics' own validation pipeline and keep every image's final detections for COCO evaluation.

Why a validator subclass rather than ``save_json=True``: ultralytics' ``predictions.json`` names images by file
stem (ambiguous when two folders share a stem, and not the ground truth's ids), rounds boxes to 3 decimals and
scores to 5 (ties that change the ranking), and for COCO/LVIS-looking paths evaluates against a JSON it
guesses. :class:`CocoCaptureValidator` runs the stock pipeline unchanged (rect batches, letterbox, conf 0.001,
NMS IoU 0.7, ``max_det``) and records, per image path, the NMS output scaled to original-image pixels
(the same ``scale_preds`` that ``pred_to_json`` uses), unrounded. The caller maps paths to its ground truth's
image ids and class indices to category ids.

Segmentation and pose (each task's ``capture_validator``, :data:`boxloss.yolo.tasks.TASKS`): the segmentation validator decodes each detection's mask as
ultralytics does for its COCO export (``process_mask_native``: prototypes upsampled to the input size before the
crop to the box, the "more accurate" path ``save_json`` selects), and ``scale_preds`` brings it to the original image
size (uint8), where it is kept as a COCO run-length encoding; the pose validator's keypoints (x, y in original pixels,
and the predicted visibility) are kept as they are. Oriented boxes: the OBB validator's rotated boxes, xywhr in
original pixels and radians (its ``scale_preds``), become COCO ``obb`` results for the exact rotated IoU; its own
metrics on the same run (ultralytics' mAP, matched by ProbIoU) stay on the validator for val.py to print beside them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from ultralytics import YOLO
from ultralytics.models.yolo.detect import DetectionValidator
from ultralytics.models.yolo.obb import OBBValidator
from ultralytics.utils import ops

from .postprocess import BoxLossOBBValidator, BoxLossPoseValidator, BoxLossSegmentationValidator, BoxLossValidator

COCO_MAX_DET = 100  # COCO protocol: at most 100 detections per image (ultralytics' default is 300)


@dataclass
class ImageDetections:
    """One image's detections after NMS: ``boxes`` (N, 4) xyxy original pixels (an oriented-box model's: (N, 5) xywhr,
    radians), ``scores`` (N,), ``classes`` (N,); a segmentation model's ``masks`` (N COCO RLEs of the original image
    size) and a pose model's ``keypoints`` (N, K, 3: x, y original pixels, visibility score)."""

    im_file: str
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: list[dict[str, Any]] | None = None
    keypoints: np.ndarray | None = None


def encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """COCO RLEs (``{"size": [h, w], "counts": str}``) of binary masks (N, h, w), via pycocotools."""
    from pycocotools import mask as mask_utils

    if not len(masks):
        return []
    rles = mask_utils.encode(np.asfortranarray(np.moveaxis(masks.astype(np.uint8), 0, -1)))  # (h, w, N) Fortran
    return [{"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in rles]


class CaptureMixin:
    """Keeps each image's final detections in original-image pixels, in ``captured``: one :class:`ImageDetections`
    per validated image (with or without detections), in dataloader order. Ultralytics' own JSON export and its
    COCO/LVIS auto-evaluation are switched off: the caller evaluates against its own ground truth."""

    box_columns = 4  # xyxy; an oriented box: xywhr
    prepare_sizes = DetectionValidator._prepare_batch  # an image's sizes and file: no mask or keypoint targets

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.args.save_json = False  # init_metrics turns it on for COCO-like paths
        self.is_custom_json = self.build_gdict = False
        self.gdict = self.eval_ids = None
        self.captured: list[ImageDetections] = []

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self.prepare_sizes(si, batch)
            scaled = self.scale_preds(pred, pbatch) if len(pred["cls"]) else pred
            masks, keypoints = scaled.get("masks"), scaled.get("keypoints")
            self.captured.append(ImageDetections(
                im_file=str(pbatch["im_file"]),
                boxes=scaled["bboxes"].detach().cpu().double().numpy().reshape(-1, self.box_columns),
                scores=pred["conf"].detach().cpu().double().numpy(),
                classes=pred["cls"].detach().cpu().numpy().astype(np.int64),
                masks=None if masks is None else encode_masks(masks.detach().cpu().numpy()),
                keypoints=None if keypoints is None else keypoints.detach().cpu().double().numpy()))


class CocoCaptureValidator(CaptureMixin, BoxLossValidator):
    """``DetectionValidator`` that also keeps each image's final detections (:class:`CaptureMixin`)."""


class CocoSegmentCaptureValidator(CaptureMixin, BoxLossSegmentationValidator):
    """``SegmentationValidator`` that also keeps each image's detections and masks, decoded as ultralytics decodes
    them for its COCO export (``process_mask_native``, which ``save_json`` would select)."""

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.process = ops.process_mask_native


class CocoPoseCaptureValidator(CaptureMixin, BoxLossPoseValidator):
    """``PoseValidator`` that also keeps each image's detections and keypoints."""


class CocoOBBCaptureValidator(CaptureMixin, BoxLossOBBValidator):
    """``OBBValidator`` that also keeps each image's oriented boxes (xywhr, original pixels, radians), unrounded; its
    own metrics (``metrics.box``: mAP matched by ProbIoU) are computed on the same run as stock."""

    box_columns = 5
    prepare_sizes = OBBValidator._prepare_batch



def checkpoint_info(model: YOLO) -> dict[str, Any]:
    """``{"box_loss", "names", "train_args"}`` of a loaded checkpoint (box_loss None for a stock checkpoint)."""
    train_args = dict((model.ckpt or {}).get("train_args") or {})
    return {"box_loss": train_args.get("box_loss"), "names": dict(model.names), "train_args": train_args}


def capture_detections(model: YOLO, validator: type[CaptureMixin], data_yaml: str, **kwargs: Any
                       ) -> list[ImageDetections]:
    """Every image's detections (with masks or keypoints for a segmentation or pose model): :func:`capture_validation`'s
    ``captured``."""
    return capture_validation(model, validator, data_yaml, **kwargs).captured


def capture_validation(model: YOLO, validator: type[CaptureMixin], data_yaml: str, *, split: str = "val",
                       save_dir: str | Path, max_det: int = COCO_MAX_DET, **val_args: Any) -> CaptureMixin:
    """Validate ``model`` through ``model.val`` with ``validator``, its task's capture validator (a
    :class:`CaptureMixin`; ``TASKS[model.task].capture_validator``); returns the validator that ran: every image's
    detections in ``captured``, ultralytics' own metrics of the run in ``metrics``.

    Args:
        model: a loaded checkpoint.
        validator: the capture validator class of the model's task.
        data_yaml: the data YAML (resolved path).
        split: ``val`` or ``test``.
        save_dir: where ultralytics may write (nothing with ``plots=False``); created by ultralytics.
        max_det: detections kept per image after NMS (100 = COCO's rule).
        **val_args: other ultralytics val keys (imgsz, batch, device, conf, iou, workers, ...).
    """
    save_dir = Path(save_dir).resolve()
    validators: list[CaptureMixin] = []
    model.add_callback("on_val_end", validators.append)
    args = {"plots": False, "save_json": False, "save_txt": False, "verbose": False, **val_args}
    model.val(validator=validator, data=data_yaml, split=split, max_det=max_det,
              project=str(save_dir.parent), name=save_dir.name, exist_ok=True, **args)
    if not validators:
        raise RuntimeError("ultralytics' validator did not run to its end")
    return validators[-1]


def class_to_category(names: Mapping[int, str] | Sequence[str], categories: Sequence[Mapping[str, Any]]) -> list[int]:
    """Category id for each model class index, for an official COCO JSON or a ground truth we built.

    - by name, when every class name is a category name (a ground truth built from the dataset, or a COCO JSON
      whose category names are the model's);
    - COCO's 80 -> 91 id mapping (``coco80_to_coco91_class``) only when the model's 80 names are COCO's own (in
      COCO id order) and the JSON uses the 91-id scheme, i.e. the same classes under other spellings;
    Raises ``ValueError`` naming the first class that matches no category otherwise.
    """
    from ultralytics.data.converter import coco80_to_coco91_class

    names = [names[i] for i in range(len(names))] if isinstance(names, Mapping) else list(names)
    by_name = {str(c.get("name")): c["id"] for c in categories}
    missing = [i for i, n in enumerate(names) if n not in by_name]
    if not missing:
        return [by_name[n] for n in names]
    coco91 = coco80_to_coco91_class()
    if len(names) == 80 and sorted(by_name.values()) == sorted(coco91) and names == coco_names():
        return list(coco91)
    first = missing[0]
    raise ValueError(f"the model's classes do not match the ground truth's categories: class {first} "
                     f"({names[first]!r}) has no category of that name (the model has {len(names)} classes, the "
                     f"ground truth {len(categories)}; COCO's 91-id mapping applies only to COCO's 80 class names)")


def coco_names() -> list[str]:
    """COCO's 80 class names in id order, as ultralytics ships them (cfg/datasets/coco.yaml)."""
    from ultralytics.utils import ROOT, YAML

    names = YAML.load(ROOT / "cfg" / "datasets" / "coco.yaml")["names"]
    return [names[i] for i in range(len(names))]


def _shapes(image: ImageDetections, family: str) -> list[tuple[str, Any]]:
    """``(field, value)`` of each detection of ``image`` in COCO's result format for ``family``."""
    if family == "box":
        return [("bbox", [x1, y1, x2 - x1, y2 - y1]) for x1, y1, x2, y2 in image.boxes.tolist()]
    if family == "obb" and image.boxes.shape[-1] == 5:
        return [("obb", box) for box in image.boxes.tolist()]
    if family == "mask" and image.masks is not None:
        return [("segmentation", rle) for rle in image.masks]
    if family == "pose" and image.keypoints is not None:
        points = image.keypoints
        if points.shape[-1] == 2:  # a kpt_shape [K, 2] model predicts no visibility: COCO's x, y, v with v = 1
            points = np.concatenate([points, np.ones_like(points[..., :1])], -1)
        return [("keypoints", one.reshape(-1).tolist()) for one in points]
    needs = {"mask": "segmentation", "pose": "pose", "obb": "oriented-box"}.get(family, "detection")
    raise ValueError(f"{image.im_file!r}: no {family} predictions captured (a {family} family needs a {needs} model)")


def to_coco_results(captured: Sequence[ImageDetections], image_ids: Mapping[str, int],
                    category_ids: Sequence[int], family: str = "box") -> list[dict[str, Any]]:
    """COCO results of one family, unrounded: ``image_id``, ``category_id``, ``score`` and ``bbox`` (top-left xywh
    pixels), ``segmentation`` (RLE; ``mask``), ``keypoints`` ([x1, y1, v1, ...] pixels, v the predicted
    visibility; ``pose``), COCO's own result formats, or ``obb`` ([cx, cy, w, h, angle] pixels and radians; ``obb``,
    hotcoco's).

    Sorted by image id, then by descending score (the order COCOeval ranks them in); the families list the same
    detections in the same order. ``image_ids`` maps resolved image paths to ground-truth ids; an image missing
    from it raises ``ValueError``.
    """
    results = []
    for image in sorted(captured, key=lambda d: image_ids.get(str(Path(d.im_file).resolve()), -1)):
        key = str(Path(image.im_file).resolve())
        if key not in image_ids:
            raise ValueError(f"validated image {image.im_file!r} is not in the ground truth")
        image_id = image_ids[key]
        shapes = _shapes(image, family)
        for i in np.argsort(-image.scores, kind="stable").tolist():
            field, value = shapes[i]
            results.append({"image_id": image_id, "category_id": int(category_ids[int(image.classes[i])]),
                            field: value, "score": float(image.scores[i])})
    return results
