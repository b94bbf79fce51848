"""COCO instances JSON -> YOLO labels for one split.

Boxes. COCO ``bbox`` is ``[x, y, width, height]`` in pixels, ``x, y`` the top-left corner, already in
0-based pixel-edge coordinates (the whole image is ``[0, 0, W, H]``), so ``x1, y1, x2, y2 = x, y, x + w,
y + h`` with no offset; it is clipped to the image (counted per side) and written as normalised
``cx cy w h``. A bbox with ``w <= 0`` or ``h <= 0`` is dropped as ``degenerate``; one with nothing inside the
image as ``outside_image``.

Classes. Category ids (COCO's 1..90 with gaps) map to contiguous ``0..K-1`` in sorted id order, names taken
from the JSON's ``categories``; for the 80 COCO categories this is the standard 80-class order (person 0,
bicycle 1, ..., toothbrush 79). ``data.yaml`` also lists ``coco_category_ids`` (the COCO id of class ``i``)
so predictions can be mapped back.

Crowd regions. ``iscrowd=1`` annotations are dropped from the YOLO labels, since YOLO labels have no ignore
regions, and counted in the report (reason ``crowd``). Evaluation against the official JSON (done elsewhere,
with pycocotools semantics) still treats them as ignore regions: a detection matching one is neither a
true nor a false positive.

Images without annotations (or whose every box was dropped) get an empty label file: they are valid
negatives, not missing labels.

Segments (``task="segment"``, ``convert.py coco task=segment``). Each kept object is written as a YOLO segment
line ``cls x1 y1 x2 y2 ...`` (normalised vertices) instead of its box, made as ultralytics' own COCO converter
makes it (:mod:`boxloss.convert.polygons`): an object in several polygons is one polygon joined by zero-width
bridges (``merge_multi_segment``), a non-crowd object annotated by an RLE mask is traced to the polygons of its
outer contours, and an object with no polygon of three points left is dropped and reported (``no_polygon``), where
ultralytics would write its box as a rectangle. The same objects are kept or dropped as for boxes (crowd regions,
degenerate boxes, boxes outside the image), so the two label sets describe the same objects; vertices outside the
image are clipped to it and counted (``segments.points_clipped``). The box ultralytics derives from the polygon is
the polygon's extent (for coco128 within a pixel of COCO's ``bbox``). Evaluating masks with ``val.py
coco_json=<the official JSON>`` uses the official segmentations, crowd regions as ignore regions.

Oriented boxes (``task="obb"``, ``convert.py coco task=obb``). Each kept object is written as a YOLO-OBB line ``cls
x1 y1 x2 y2 x3 y3 x4 y4``: the minimum-area rectangle of its polygon, made as for ``task="segment"`` (several
polygons joined, an RLE mask traced) and clipped to the image, fitted by ultralytics' own ``xyxyxyxy2xywhr``
(OpenCV's ``minAreaRect``; :mod:`boxloss.convert.obb`) and written as its ``xywhr2xyxyxyxy`` corners, so ultralytics
reads back the rectangle written. Real images with real objects, for oriented boxes: the rectangle follows the
object's outline, where the COCO box is axis-aligned. A large object's rectangle, turned against the image's edges,
can reach past them so far that its extent is larger than the image, which ultralytics' label check refuses (it
would skip the whole image); such an object gets the least-area rectangle holding its polygon whose extent stays in
the image instead (counted, ``segments.fitted_in_image``; coco128: 28 of 929). Crowd regions are dropped and counted
as for boxes; an object without a polygon is dropped and counted (``no_polygon``), not written as its axis-aligned
box, which would claim an orientation (0) that nothing measured; a rectangle the dataset check would refuse is
dropped as ``degenerate`` (no area) or ``outside_image`` (its extent, which may reach past the image where the
rectangle is turned, has its centre or size outside it).

Split. The split name defaults to the JSON file name without a leading ``instances_``
(``instances_train2017.json`` -> ``train2017``). ``data.yaml`` points both ``train`` and ``val`` at it;
convert another JSON into another folder for a separate validation set.

File names. A ``file_name`` is a relative path inside ``images`` (``sub/x.jpg`` keeps its folder in the output);
an absolute one, one whose ``..`` leave ``images``, one that resolves outside it through a symlink, or one that is
not a regular image file is an error naming the image id and the ``file_name`` (a downloaded JSON must not make
the converter read or link files elsewhere on the machine).

Output (atomic, as in :mod:`boxloss.convert.voc`)::

    <out>/images/<split>/<file_name> -> <images>/<file_name>     (or a copy)
    <out>/labels/<split>/<file_name without its suffix>.txt
    <out>/data.yaml                      path, train, val, names, coco_category_ids
    <out>/conversion_report.json

Example::

    from boxloss.convert import convert_coco
    report = convert_coco("../shared/datasets/coco128/train2017",
                          "../shared/datasets/coco128/annotations/instances_train2017.json", "datasets/coco128-yolo")
"""

from __future__ import annotations

import json
import math
from pathlib import Path, PurePosixPath
from typing import Optional, Union

import numpy as np

from .._io import not_utf8, read_text
from ..data.yolo_format import image_size, polygon_label_line, xyxy_label_line
from .report import (REPORT_NAME, ConversionError, ConversionReport, check_split_name, image_inside, output_paths,
                     relative_reference)
from .writer import OutputImage, write_yolo_dataset

__all__ = ["convert_coco", "split_name_from_json", "coco_bbox_to_xyxy", "category_mapping", "TASKS"]

TASKS = ("detect", "segment", "obb")  # what the labels hold: boxes, one polygon or one oriented box per object
TASK_HEADERS = {"segment": "Labels: one polygon per object (YOLO segment lines).\n",
                "obb": "Labels: the minimum-area rectangle of each object's polygon (YOLO-OBB lines).\n"}


def split_name_from_json(json_path: Union[str, Path]) -> str:
    """``instances_train2017.json`` -> ``train2017``; any other name -> its stem."""
    stem = Path(json_path).stem
    return stem[len("instances_"):] if stem.startswith("instances_") and len(stem) > len("instances_") else stem


def coco_bbox_to_xyxy(bbox) -> tuple[float, float, float, float]:
    """COCO top-left ``[x, y, w, h]`` pixels -> pixel-edge ``(x1, y1, x2, y2)``."""
    x, y, w, h = bbox
    return float(x), float(y), float(x) + float(w), float(y) + float(h)


def category_mapping(categories: list[dict]) -> tuple[list[int], list[str]]:
    """COCO ``categories`` -> (ids sorted, their names); YOLO class ``i`` is ``ids[i]``."""
    by_id = {c["id"]: c["name"] for c in categories}
    ids = sorted(by_id)
    return ids, [by_id[i] for i in ids]


def _load(json_path: Path) -> dict:
    try:
        data = json.loads(read_text(json_path))
    except OSError as error:
        raise ConversionError(f"{json_path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConversionError(f"{json_path}: {not_utf8(error)}") from None
    except json.JSONDecodeError as error:
        raise ConversionError(f"{json_path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise ConversionError(f"{json_path}: top level is not an object")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ConversionError(f"{json_path}: missing list {key!r}")
    return data


def _validate(json_path: Path, data: dict) -> None:
    """Check every record the conversion reads; raise naming the JSON and the record id."""
    category_ids, image_ids = set(), set()
    for i, cat in enumerate(data["categories"]):
        if not isinstance(cat, dict) or not isinstance(cat.get("id"), int) or not isinstance(cat.get("name"), str):
            raise ConversionError(f"{json_path}: categories[{i}] needs an integer 'id' and a string 'name'")
        if cat["id"] in category_ids:
            raise ConversionError(f"{json_path}: category id {cat['id']} appears twice")
        category_ids.add(cat["id"])
    for i, image in enumerate(data["images"]):
        named = isinstance(image, dict) and isinstance(image.get("file_name"), str)
        if not named or not isinstance(image.get("id"), int):
            raise ConversionError(f"{json_path}: images[{i}] needs an integer 'id' and a string 'file_name'")
        if image["id"] in image_ids:
            raise ConversionError(f"{json_path}: image id {image['id']} appears twice")
        image_ids.add(image["id"])
    for i, ann in enumerate(data["annotations"]):
        if not isinstance(ann, dict) or not isinstance(ann.get("id"), int):
            raise ConversionError(f"{json_path}: annotations[{i}] needs an integer 'id'")
        where = f"{json_path}: annotation id {ann['id']}"
        bbox = ann.get("bbox")
        if not isinstance(bbox, (list, tuple)) or len(bbox) != 4:
            got = f"{len(bbox)} values" if isinstance(bbox, (list, tuple)) else repr(bbox)
            raise ConversionError(f"{where}: bbox has {got}, expected 4 (x, y, width, height)")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in bbox):
            raise ConversionError(f"{where}: bbox {bbox} is not 4 finite numbers")
        if ann.get("image_id") not in image_ids:
            raise ConversionError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        if ann.get("category_id") not in category_ids:
            raise ConversionError(f"{where}: category_id {ann.get('category_id')!r} is not in 'categories'")
        if ann.get("iscrowd", 0) not in (0, 1):
            raise ConversionError(f"{where}: iscrowd is {ann.get('iscrowd')!r}, expected 0 or 1")


def _image_size(image: dict, path: Path, json_path: Path) -> tuple[float, float]:
    width, height = image.get("width") or 0, image.get("height") or 0
    if isinstance(width, (int, float)) and isinstance(height, (int, float)) and width > 0 and height > 0:
        return width, height
    try:
        return image_size(path, exif_rotation=False)  # train and val's rule: a decompression bomb is unreadable
    except OSError as error:
        raise ConversionError(f"{json_path}: image id {image['id']}: no width/height and {error}") from None


def _polygon(report: ConversionReport, segmentation, width: float, height: float) -> Optional[np.ndarray]:
    """The (P, 2) pixel polygon of one kept object, clipped to the image, or None when it has none (the caller drops
    it); how it was made and the vertices clipped go to ``report.segments``."""
    from .polygons import segment_polygon

    polygon, source = segment_polygon(segmentation, int(height), int(width))
    if polygon is None:
        return None
    if source != "polygon":
        report.segments[source] = report.segments.get(source, 0) + 1
    inside = polygon.clip(0.0, (width, height))
    clipped = int((inside != polygon).any(axis=1).sum())
    if clipped:
        report.segments["points_clipped"] = report.segments.get("points_clipped", 0) + clipped
    return inside


def _box_line(report: ConversionReport, cls: int, segmentation, box, width: float, height: float):
    return xyxy_label_line(cls, box, width, height), ""


def _segment_line(report: ConversionReport, cls: int, segmentation, box, width: float, height: float):
    """``(segment line, "")`` of one kept object, or ``(None, "no_polygon")``."""
    polygon = _polygon(report, segmentation, width, height)
    if polygon is None:
        return None, "no_polygon"
    return polygon_label_line(cls, polygon / (width, height)), ""


def _obb_line(report: ConversionReport, cls: int, segmentation, box, width: float, height: float):
    """``(oriented-box line, "")`` of one kept object: the minimum-area rectangle of its polygon (clipped to the
    image); ``(None, reason)`` without a polygon, or for a rectangle the dataset check would refuse."""
    from .obb import minimum_area_rectangle, obb_label_line

    polygon = _polygon(report, segmentation, width, height)
    if polygon is None:
        return None, "no_polygon"
    corners, fitted = minimum_area_rectangle(polygon, (width, height))
    if fitted:
        report.segments["fitted_in_image"] = report.segments.get("fitted_in_image", 0) + 1
    return obb_label_line(cls, corners, width, height)


LABEL_LINES = {"detect": _box_line, "segment": _segment_line, "obb": _obb_line}  # task -> the line of one object


def convert_coco(images: Union[str, Path], json_path: Union[str, Path], out: Union[str, Path], *,
                 split: Optional[str] = None, copy: bool = False, force: bool = False,
                 task: str = "detect") -> ConversionReport:
    """Convert one COCO instances JSON and its image folder to a YOLO dataset folder.

    Args:
        images: folder holding the JSON's ``file_name`` s.
        json_path: the instances JSON (e.g. ``annotations/instances_train2017.json``).
        out: output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        split: split folder name; default from the JSON file name (:func:`split_name_from_json`).
        copy: copy images instead of symlinking them.
        force: replace an existing output folder written by a previous conversion.
        task: ``"detect"`` (box lines), ``"segment"`` (one polygon line per object) or ``"obb"`` (one oriented-box
            line per object; module docstring).

    Returns:
        The :class:`ConversionReport` (``file`` = image file name, ``index`` = annotation id), also written to
        ``<out>/conversion_report.json``.

    Raises:
        ConversionError: malformed input (message names the JSON and the annotation or image id); nothing
            is written.
    """
    images, json_path, out = Path(images), Path(json_path), Path(out)
    if task not in TASKS:
        raise ConversionError(f"task {task!r}: must be one of {', '.join(TASKS)}")
    if split is not None:
        check_split_name(split)
    else:
        split = check_split_name(split_name_from_json(json_path), f"split name (from {json_path.name})")
    if not images.is_dir():
        raise ConversionError(f"images={images}: not a folder")
    data = _load(json_path)
    _validate(json_path, data)
    category_ids, names = category_mapping(data["categories"])
    class_index = {cat_id: i for i, cat_id in enumerate(category_ids)}

    sources, names_of, targets = {}, {}, {}
    for image in data["images"]:
        where = f"{json_path}: image id {image['id']} (file_name {image['file_name']!r})"
        name = relative_reference(image["file_name"], where)
        path = image_inside(images, name, where)
        output_paths(out, split, name)  # a folder named images inside file_name is refused here
        label = str(PurePosixPath(name).with_suffix(""))
        if label in targets:
            raise ConversionError(f"{where}: has the same label file {label}.txt as image id {targets[label]}")
        sources[image["id"]], names_of[image["id"]], targets[label] = path, name, image["id"]
    by_image: dict[int, list[dict]] = {image["id"]: [] for image in data["images"]}
    for ann in data["annotations"]:
        by_image[ann["image_id"]].append(ann)

    report = ConversionReport("coco", str(json_path), str(out), names, "category ids sorted", task=task)
    report.boxes_per_class = dict.fromkeys(names, 0)
    images_out = (_labelled_image(report, image, by_image[image["id"]], sources[image["id"]], names_of[image["id"]],
                                  json_path, class_index, task) for image in data["images"])
    header = (f"Written by boxloss.convert.coco from {json_path.resolve()}\n"
              f"Classes: COCO category ids sorted -> 0..{len(names) - 1}; coco_category_ids[i] is class i's id.\n"
              + TASK_HEADERS.get(task, "")
              + "iscrowd=1 regions are not in the labels; evaluate against the official JSON to ignore them.\n"
              f"val is the same split as train. See {REPORT_NAME} for what was clipped or dropped.")
    return write_yolo_dataset(out, {split: images_out}, report, header=header,
                              entries={"train": f"images/{split}", "val": f"images/{split}"},
                              extra={"coco_category_ids": category_ids}, copy=copy, force=force, protect=images)


def _labelled_image(report: ConversionReport, image: dict, annotations: list[dict], path: Path, name: str,
                    json_path: Path, class_index: dict[int, int], task: str) -> OutputImage:
    """One image of the output with the label lines of its kept objects; clips and drops go to ``report``."""
    width, height = _image_size(image, path, json_path)
    lines, classes = [], []
    for ann in annotations:
        report.boxes_read += 1
        file, bbox = image["file_name"], ann["bbox"]
        if ann.get("iscrowd", 0):
            report.drop(file, ann["id"], "crowd", bbox)
            continue
        if bbox[2] <= 0 or bbox[3] <= 0:
            report.drop(file, ann["id"], "degenerate", bbox)
            continue
        box = report.clip_box(file, ann["id"], bbox, coco_bbox_to_xyxy(bbox), width, height)
        if box is None:
            continue
        cls = class_index[ann["category_id"]]
        line, reason = LABEL_LINES[task](report, cls, ann.get("segmentation"), box, width, height)
        if line is None:
            report.drop(file, ann["id"], reason, bbox)
            continue
        lines.append(line)
        classes.append(report.class_names[cls])
    return OutputImage(name, lines, classes, source=path)
