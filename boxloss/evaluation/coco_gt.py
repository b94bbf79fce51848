"""COCO ground truth from a YOLO-format dataset split, from an official COCO instances JSON, and back.

YOLO side: the split's images, their label files and the class names are read by :mod:`boxloss.data.yolo_format`
(ultralytics' conventions, so they are the images and labels its validator runs on); image sizes are the ORIGINAL
ones, read from the file header (EXIF rotation applied, as ultralytics does).

COCO side: boxes are top-left ``[x, y, w, h]`` in pixels, ``iscrowd = 0``; image ids follow the sorted file order
from 1; category id = class index + 1, with the YAML's names. ``info.image_root`` records the folder that
``file_name`` is relative to, so predictions can be mapped to image ids by path (:func:`image_ids_by_path`).
A segment line also gives the object's ``segmentation`` (its polygon in pixels) and a pose line (``kpt_shape``) its
``keypoints`` (``x, y, v`` in pixels) and ``num_keypoints`` (those with v > 0), so one ground truth serves COCO's
``bbox``, ``segm`` and ``keypoints`` evaluations. ``area``, one per object as in COCO (it sets the size range of
every family, and the scale of OKS), is the polygon's mask area (pycocotools' rasterisation) for a segment line,
``0.53 * w * h`` for a pose line (ultralytics' OKS area, :mod:`.keypoints`), and ``w * h`` for a box line.
An oriented-box dataset (``oriented=True``; YOLO OBB lines ``cls x1 y1 x2 y2 x3 y3 x4 y4``) gives each object an
``obb`` ``[cx, cy, w, h, angle]``: the minimum-area rectangle of its corners in pixels, as ultralytics fits it for
training and validation (w >= h, angle in radians in [-pi/4, 3pi/4)); its ``bbox`` is that rectangle's extent and its
``area`` w * h (:func:`obb_annotation`).

An official COCO JSON is kept as it is (its image ids, 91-id categories, ``area`` from the segmentation and
``iscrowd`` regions, which COCO evaluation ignores); :func:`gt_from_coco_json` only restricts it to the images
evaluated. Pure Python + numpy + Pillow (image headers) + pycocotools (polygon areas); no ultralytics import.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..data.yolo_format import (Instance, image_size, keypoint_shape, label_line, label_path, read_data_yaml,
                                read_instances, split_images)
from ..ops.rotated import min_area_rectangle, xywhr_corners
from .keypoints import POSE_AREA_FACTOR

# ---------------------------------------------------------------------------------------------------------------
# YOLO -> COCO -> YOLO
# ---------------------------------------------------------------------------------------------------------------
def instance_annotation(instance: Instance, width: int, height: int) -> dict[str, Any]:
    """The COCO fields of one YOLO object in a ``width`` x ``height`` image: ``bbox``, ``area`` and, where the line
    has them, ``segmentation`` or ``keypoints`` + ``num_keypoints`` (module docstring)."""
    cx, cy, w, h = instance.box
    box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
    annotation: dict[str, Any] = {"bbox": box, "area": box[2] * box[3]}
    if instance.polygon is not None:
        from pycocotools import mask as mask_utils

        polygon = [v for x, y in instance.polygon for v in (x * width, y * height)]
        annotation["segmentation"] = [polygon]
        annotation["area"] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects([polygon], height, width))))
    if instance.keypoints is not None:
        annotation["keypoints"] = [v for x, y, visible in instance.keypoints for v in (x * width, y * height, visible)]
        annotation["num_keypoints"] = sum(visible > 0 for _, _, visible in instance.keypoints)
        annotation["area"] = POSE_AREA_FACTOR * box[2] * box[3]
    return annotation


def obb_annotation(obb: Sequence[float]) -> dict[str, Any]:
    """The COCO fields of an oriented box ``[cx, cy, w, h, angle]`` (pixels, radians, ultralytics' xywhr): ``obb``,
    ``bbox`` (the corners' axis-aligned extent, as hotcoco's ``loadRes`` gives a prediction) and ``area`` = w * h."""
    cx, cy, w, h, angle = (float(v) for v in obb)
    corners = xywhr_corners([cx, cy, w, h, angle])[0]  # [4, 2]
    low, high = corners.min(0), corners.max(0)
    return {"obb": [cx, cy, w, h, angle], "bbox": [float(low[0]), float(low[1]), float(high[0] - low[0]),
                                                   float(high[1] - low[1])], "area": w * h}


def oriented_instance_annotation(instance: Instance, width: int, height: int) -> dict[str, Any]:
    """The COCO fields of one object of an oriented-box dataset: the minimum-area rectangle of its polygon in pixels
    (a plain box line is its own rectangle, at angle 0), through :func:`obb_annotation`."""
    if instance.polygon is None:
        cx, cy, w, h = instance.box
        return obb_annotation([cx * width, cy * height, w * width, h * height, 0.0])
    return obb_annotation(min_area_rectangle([(x * width, y * height) for x, y in instance.polygon]))


def yolo_to_coco(image_files: Sequence[str | os.PathLike], names: Sequence[str],
                 label_files: Sequence[str | os.PathLike] | None = None,
                 kpt_shape: Sequence[int] | None = None, oriented: bool = False) -> dict[str, Any]:
    """COCO ground truth for ``image_files`` (ids 1.. in the given order) and their YOLO labels.

    Args:
        image_files: image paths, in the order that defines the image ids.
        names: class names; class ``i`` becomes category id ``i + 1``.
        label_files: one label path per image (default: ultralytics' images -> labels convention).
        kpt_shape: the dataset's ``[K, D]`` when its lines are pose lines.
        oriented: the dataset holds oriented boxes (YOLO OBB lines): every object gets an ``obb``, its fitted
            rectangle (:func:`oriented_instance_annotation`), instead of a box and polygon.

    Returns:
        A COCO dict: ``info.image_root`` (the folder ``file_name`` is relative to), ``images`` with the original
        ``width``/``height``, ``annotations`` (pixel top-left xywh, ``area``, ``iscrowd = 0``, and the polygon or
        keypoints of segment and pose lines: :func:`instance_annotation`) and ``categories``. An image that cannot
        be read is left out (no id) and listed, with the reader's own reason, in ``info.skipped_images``
        (``[{"file", "reason"}]``): ultralytics' validator skips it too.
    """
    image_files = [Path(os.path.abspath(f)) for f in image_files]
    label_files = [Path(f) for f in label_files] if label_files is not None else [label_path(f) for f in image_files]
    if len(label_files) != len(image_files):
        raise ValueError(f"{len(image_files)} images but {len(label_files)} label files")
    root = Path(os.path.commonpath([str(f.parent) for f in image_files])) if image_files else Path()
    images, annotations, skipped = [], [], []
    for image_file, labels in zip(image_files, label_files):
        try:
            width, height = image_size(image_file)
        except OSError as error:
            skipped.append({"file": str(image_file), "reason": str(error).split(": ", 1)[-1]})
            continue
        image_id = len(images) + 1
        images.append({"id": image_id, "file_name": image_file.relative_to(root).as_posix(),
                       "width": width, "height": height})
        for instance in read_instances(labels, kpt_shape, vertices_inside=not oriented):  # corners may leave it
            if instance.cls >= len(names):
                raise ValueError(f"{labels}: class {instance.cls} but the dataset has {len(names)} classes")
            fields = (oriented_instance_annotation if oriented else instance_annotation)(instance, width, height)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": instance.cls + 1,
                                **fields, "iscrowd": 0})
    categories = [{"id": i + 1, "name": str(name)} for i, name in enumerate(names)]
    info = {"description": "boxloss: COCO ground truth from a YOLO dataset", "image_root": str(root)}
    if skipped:
        info["skipped_images"] = skipped
    return {"info": info, "images": images, "annotations": annotations, "categories": categories}


def gt_from_yolo_dataset(data_yaml: str | os.PathLike, split: str = "val",
                         datasets_dir: str | os.PathLike | None = None, oriented: bool = False) -> dict[str, Any]:
    """COCO ground truth of a YOLO dataset's split (see :func:`yolo_to_coco`; a pose dataset's lines are read with
    its ``kpt_shape``; ``oriented``: an OBB dataset, whose objects get an ``obb``)."""
    spec = read_data_yaml(data_yaml, datasets_dir)
    return yolo_to_coco(split_images(spec, split), spec.names, kpt_shape=keypoint_shape(spec), oriented=oriented)


def coco_to_yolo_lines(gt: Mapping[str, Any], *, include_crowd: bool = False,
                       category_to_class: Mapping[int, int] | None = None) -> dict[str, list[str]]:
    """YOLO label lines per image ``file_name``: the inverse of :func:`yolo_to_coco`.

    Class index = position of the category id among the sorted category ids (``id - 1`` for ground truth
    written by :func:`yolo_to_coco`; COCO's 91-id scheme maps to the usual 80 indices) unless
    ``category_to_class`` is given. Crowd regions have no YOLO equivalent and are left out unless asked.
    Lines are :func:`~boxloss.data.yolo_format.label_line`'s; images without objects map to ``[]``.
    """
    if category_to_class is None:
        category_to_class = {c["id"]: i for i, c in enumerate(sorted(gt["categories"], key=lambda c: c["id"]))}
    images = {image["id"]: image for image in gt["images"]}
    lines: dict[str, list[str]] = {image["file_name"]: [] for image in gt["images"]}
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0) and not include_crowd:
            continue
        image = images[ann["image_id"]]
        width, height = image["width"], image["height"]
        x, y, w, h = ann["bbox"]
        values = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
        lines[image["file_name"]].append(label_line(category_to_class[ann["category_id"]], *values))
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Official COCO JSON
# ---------------------------------------------------------------------------------------------------------------
def load_coco(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """A COCO dict from a JSON path, or a deep copy of a given dict."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    with open(source, encoding="utf-8") as f:
        return json.load(f)


def gt_from_coco_json(source: str | os.PathLike | Mapping[str, Any],
                      image_files: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """An official COCO instances JSON restricted to ``image_files`` (matched by file name), fields untouched.

    Image ids, category ids (91-id scheme), ``area`` (the segmentation's, as COCO's area ranges use) and
    ``iscrowd`` are kept exactly; ``info.image_root`` is set to the images' common folder when ``image_files``
    is given. Raises ``ValueError`` naming the first image missing from the JSON.
    """
    gt = load_coco(source)
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"COCO JSON has no {key!r} list")
    info = dict(gt.get("info") or {})
    if image_files is not None:
        image_files = [Path(os.path.abspath(f)) for f in image_files]
        by_name = {image["file_name"].rsplit("/", 1)[-1]: image for image in gt["images"]}
        missing = [f for f in image_files if f.name not in by_name]
        if missing:
            raise ValueError(f"{len(missing)} of {len(image_files)} images are not in the COCO JSON "
                             f"(first: {missing[0].name})")
        keep = [by_name[f.name] for f in image_files]
        keep_ids = {image["id"] for image in keep}
        gt["images"] = sorted(keep, key=lambda image: image["id"])
        gt["annotations"] = [ann for ann in gt["annotations"] if ann["image_id"] in keep_ids]
        if image_files:
            info["image_root"] = os.path.commonpath([str(f.parent) for f in image_files])
    gt["info"] = info
    return gt


def image_ids_by_path(gt: Mapping[str, Any], image_files: Iterable[str | os.PathLike] | None = None) -> dict[str, int]:
    """``{resolved image path: image id}`` for mapping captured predictions onto ``gt``.

    Paths come from ``info.image_root`` + ``file_name``; an official COCO JSON, whose ``file_name`` is a bare
    name, is matched by base name against ``image_files``.
    """
    root = (gt.get("info") or {}).get("image_root")
    if root is not None:
        mapping = {str((Path(root) / image["file_name"]).resolve()): image["id"] for image in gt["images"]}
        if image_files is None or all(str(Path(f).resolve()) in mapping for f in image_files):
            return mapping
    if image_files is None:
        raise ValueError("ground truth has no info.image_root: pass the image files to map them by name")
    by_name = {image["file_name"].rsplit("/", 1)[-1]: image["id"] for image in gt["images"]}
    mapping = {}
    for f in image_files:
        f = Path(f).resolve()
        if f.name not in by_name:
            raise ValueError(f"image {str(f)!r} is not in the ground truth")
        mapping[str(f)] = by_name[f.name]
    return mapping
