"""Run ultralytics' own validation pipeline and keep every image's final detections for COCO evaluation.

Why a validator subclass rather than ``save_json=True``: ultralytics' ``predictions.json`` names images by file
stem (ambiguous when two folders share a stem, and not the ground truth's ids), rounds boxes to 3 decimals and
scores to 5 (ties that change the ranking), and for COCO/LVIS-looking paths evaluates against a JSON it
guesses. :class:`CocoCaptureValidator` runs the stock pipeline unchanged (rect batches, letterbox, conf 0.001,
NMS IoU 0.7, ``max_det``) and records, per image path, the NMS output scaled to original-image pixels
(the same ``scale_preds`` that ``pred_to_json`` uses), unrounded. The caller maps paths to its ground truth's
image ids and class indices to category ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .api import BoxLossYOLO
from .nms import BoxLossValidator

COCO_MAX_DET = 100  # COCO protocol: at most 100 detections per image (ultralytics' default is 300)


@dataclass
class ImageDetections:
    """One image's detections after NMS: ``boxes`` (N, 4) xyxy original pixels, ``scores`` (N,), ``classes`` (N,)."""

    im_file: str
    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray


class CocoCaptureValidator(BoxLossValidator):
    """``DetectionValidator`` that also keeps each image's final detections in original-image pixels.

    ``captured`` lists one :class:`ImageDetections` per validated image (with or without detections), in
    dataloader order. Ultralytics' own JSON export and its COCO/LVIS auto-evaluation are switched off: the
    caller evaluates against its own ground truth.
    """

    def init_metrics(self, model) -> None:
        super().init_metrics(model)
        self.args.save_json = False  # init_metrics turns it on for COCO-like paths
        self.is_custom_json = self.build_gdict = False
        self.gdict = self.eval_ids = None
        self.captured: list[ImageDetections] = []

    def update_metrics(self, preds: list[dict[str, Any]], batch: dict[str, Any]) -> None:
        super().update_metrics(preds, batch)
        for si, pred in enumerate(preds):
            pbatch = self._prepare_batch(si, batch)
            boxes = self.scale_preds(pred, pbatch)["bboxes"] if len(pred["cls"]) else pred["bboxes"]
            self.captured.append(ImageDetections(
                im_file=str(pbatch["im_file"]),
                boxes=boxes.detach().cpu().double().numpy().reshape(-1, 4),
                scores=pred["conf"].detach().cpu().double().numpy(),
                classes=pred["cls"].detach().cpu().numpy().astype(np.int64)))


def checkpoint_info(model: BoxLossYOLO) -> dict[str, Any]:
    """``{"box_loss", "names", "train_args"}`` of a loaded checkpoint (box_loss None for a stock checkpoint)."""
    train_args = dict((model.ckpt or {}).get("train_args") or {})
    return {"box_loss": train_args.get("box_loss"), "names": dict(model.names), "train_args": train_args}


def capture_detections(model: BoxLossYOLO, data_yaml: str, *, split: str = "val", save_dir: str | Path,
                       max_det: int = COCO_MAX_DET, **val_args: Any) -> list[ImageDetections]:
    """Validate ``model`` through ``model.val`` with :class:`CocoCaptureValidator`; every image's detections.

    Args:
        model: a loaded checkpoint.
        data_yaml: the data YAML (resolved path).
        split: ``val`` or ``test``.
        save_dir: where ultralytics may write (nothing with ``plots=False``); created by ultralytics.
        max_det: detections kept per image after NMS (100 = COCO's rule).
        **val_args: other ultralytics val keys (imgsz, batch, device, conf, iou, workers, ...).
    """
    save_dir = Path(save_dir).resolve()
    validators: list[CocoCaptureValidator] = []
    model.add_callback("on_val_end", validators.append)
    args = {"plots": False, "save_json": False, "save_txt": False, "verbose": False, **val_args}
    model.val(validator=CocoCaptureValidator, data=data_yaml, split=split, max_det=max_det,
              project=str(save_dir.parent), name=save_dir.name, exist_ok=True, **args)
    if not validators:
        raise RuntimeError("ultralytics' validator did not run to its end")
    return validators[-1].captured


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


def to_coco_results(captured: Sequence[ImageDetections], image_ids: Mapping[str, int],
                    category_ids: Sequence[int]) -> list[dict[str, Any]]:
    """COCO results (``image_id``, ``category_id``, ``bbox`` top-left xywh pixels, ``score``), unrounded.

    Sorted by image id, then by descending score (the order COCOeval ranks them in). ``image_ids`` maps resolved
    image paths to ground-truth ids; an image missing from it raises ``ValueError``.
    """
    results = []
    for image in sorted(captured, key=lambda d: image_ids.get(str(Path(d.im_file).resolve()), -1)):
        key = str(Path(image.im_file).resolve())
        if key not in image_ids:
            raise ValueError(f"validated image {image.im_file!r} is not in the ground truth")
        image_id = image_ids[key]
        order = np.argsort(-image.scores, kind="stable")
        for (x1, y1, x2, y2), score, cls in zip(image.boxes[order].tolist(), image.scores[order].tolist(),
                                                 image.classes[order].tolist()):
            results.append({"image_id": image_id, "category_id": int(category_ids[int(cls)]),
                            "bbox": [x1, y1, x2 - x1, y2 - y1], "score": score})
    return results
