"""Pascal VOC XML (``Annotations/*.xml`` + ``JPEGImages/``) -> YOLO labels, keeping the official split.

Box convention. VOC ``<bndbox>`` corners are 1-based and inclusive: ``xmin = 1, xmax = 640`` covers every
pixel column of a 640-pixel-wide image. The YOLO labels are written from 0-based pixel-edge boxes (``x1`` is
the left edge of the first covered column, ``x2`` the right edge of the last; the whole image is
``0, 0, width, height``), so::

    x1 = xmin - 1    y1 = ymin - 1    x2 = xmax    y2 = ymax

A box touching the right border (``xmax == width``) therefore ends at ``x2 == width`` exactly (normalised
right edge 1.0) and one touching the left border (``xmin == 1``) starts at 0: border-touching boxes are
*not* clipped. Only a box reaching outside the image is clipped (counted per side); one with nothing left
inside is dropped as ``outside_image``.

Degenerate boxes. Read literally, ``xmin == xmax`` would be a one-pixel-wide box; in practice it is a
click without a drag (BCCD has two: ``BloodImage_00338`` and ``BloodImage_00343``, both ``xmin == xmax``
and ``ymin == ymax``). Boxes with ``xmax <= xmin`` or ``ymax <= ymin`` are dropped as ``degenerate``.

``difficult``: kept by default and counted in ``report.kept_flagged["difficult"]``; ``difficult="drop"``
drops them (reason ``difficult``).

Class order (the YOLO class indices). Order of first appearance depends on file order and is not used:

* ``classes=[...]`` -- that order; a name outside it is an error;
* otherwise, when the set of names found equals a known dataset's (``CLASS_PRESETS``), that dataset's
  documented order -- BCCD: ``RBC, WBC, Platelets`` (0, 1, 2), the order of its README;
* otherwise the names sorted (Python string order); for Pascal VOC that is its standard 20-class order.

Splits. ``ImageSets/Main/{train,val,test}.txt`` (whichever exist) become ``images/<split>`` and
``labels/<split>``; ``split="NAME"`` instead puts every ``Annotations/*.xml`` into one split ``NAME`` (used as
both ``train`` and ``val`` in ``data.yaml``). Images are absolute symlinks to the source, or copies with
``copy=True``; label files are always written (empty for an image without boxes).

Output (written into a temporary folder and renamed into place; refused if it exists unless ``force``)::

    <out>/images/<split>/<id>.jpg -> <src>/JPEGImages/<id>.jpg
    <out>/labels/<split>/<id>.txt          class cx cy w h, normalised, 6 decimals
    <out>/data.yaml                        path (absolute), train, val, test, names
    <out>/conversion_report.json           see boxloss.convert.report

Example::

    from boxloss.convert import convert_voc
    report = convert_voc("../shared/datasets/bccd/BCCD", "datasets/bccd-yolo")
    print(report.summary())
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence, Union

from ..data.yolo_format import write_data_yaml, xyxy_label_line
from .report import REPORT_NAME, ConversionError, ConversionReport, atomic_output, place_image

__all__ = ["CLASS_PRESETS", "VocObject", "VocAnnotation", "convert_voc", "parse_voc_xml", "voc_corners_to_xyxy"]

CLASS_PRESETS = {"bccd": ("RBC", "WBC", "Platelets")}
OFFICIAL_SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG")
CORNERS = ("xmin", "ymin", "xmax", "ymax")


@dataclass
class VocObject:
    name: str
    difficult: bool
    corners: tuple[float, float, float, float]  # xmin, ymin, xmax, ymax as written (1-based, inclusive)


@dataclass
class VocAnnotation:
    xml: Path
    filename: Optional[str]  # <filename>, if any
    width: int  # 0 when <size> is missing or zero
    height: int
    objects: list[VocObject] = field(default_factory=list)


def voc_corners_to_xyxy(corners) -> tuple[float, float, float, float]:
    """1-based inclusive VOC corners ``(xmin, ymin, xmax, ymax)`` -> 0-based pixel-edge ``(x1, y1, x2, y2)``."""
    xmin, ymin, xmax, ymax = corners
    return xmin - 1.0, ymin - 1.0, float(xmax), float(ymax)


def _number(text: Optional[str], what: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConversionError(f"{where}: {what} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise ConversionError(f"{where}: {what} is {text!r}, not a finite number")
    return value


def parse_voc_xml(path: Union[str, Path]) -> VocAnnotation:
    """Read one VOC annotation file; any malformed part raises :class:`ConversionError` naming the file."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as error:
        raise ConversionError(f"{path}: not well-formed XML ({error})") from None
    except OSError as error:
        raise ConversionError(f"{path}: cannot read ({error.strerror})") from None
    if root.tag != "annotation":
        raise ConversionError(f"{path}: root element is <{root.tag}>, expected <annotation>")
    width = height = 0
    size = root.find("size")
    if size is not None:
        width = int(_number(size.findtext("width", "0") or "0", "<size><width>", str(path)))
        height = int(_number(size.findtext("height", "0") or "0", "<size><height>", str(path)))
    annotation = VocAnnotation(path, (root.findtext("filename") or "").strip() or None, width, height)
    for index, obj in enumerate(root.findall("object")):
        where = f"{path}: object {index}"
        name = (obj.findtext("name") or "").strip()
        if not name:
            raise ConversionError(f"{where}: missing <name>")
        difficult_text = (obj.findtext("difficult") or "0").strip()
        if difficult_text not in ("0", "1"):
            raise ConversionError(f"{where}: <difficult> is {difficult_text!r}, expected 0 or 1")
        box = obj.find("bndbox")
        if box is None:
            raise ConversionError(f"{where}: missing <bndbox>")
        corners = tuple(_number(box.findtext(tag), f"<bndbox><{tag}>", where) for tag in CORNERS)
        annotation.objects.append(VocObject(name, difficult_text == "1", corners))
    return annotation


def _find_image(src: Path, ann: VocAnnotation, image_id: str) -> Path:
    candidates = [src / "JPEGImages" / ann.filename] if ann.filename else []
    candidates += [src / "JPEGImages" / f"{image_id}{suffix}" for suffix in IMAGE_SUFFIXES]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConversionError(f"{ann.xml}: image not found (looked for {candidates[0]})")


def _image_size(image: Path, ann: VocAnnotation) -> tuple[int, int]:
    if ann.width > 0 and ann.height > 0:
        return ann.width, ann.height
    from PIL import Image

    try:
        with Image.open(image) as im:
            return im.size
    except OSError as error:
        raise ConversionError(f"{ann.xml}: <size> missing and image {image} unreadable ({error})") from None


def _read_splits(src: Path, splits: Optional[Sequence[str]], split: Optional[str]) -> dict[str, list[str]]:
    """Split name -> image ids, from ImageSets/Main/<split>.txt, or every annotation into ``split``."""
    if split is not None:
        ids = sorted(p.stem for p in (src / "Annotations").glob("*.xml"))
        if not ids:
            raise ConversionError(f"{src / 'Annotations'}: no *.xml annotation files")
        return {split: ids}
    main = src / "ImageSets" / "Main"
    wanted = list(splits) if splits is not None else [s for s in OFFICIAL_SPLITS if (main / f"{s}.txt").is_file()]
    if not wanted:
        raise ConversionError(f"{main}: no {{train,val,test}}.txt split files; pass split=NAME (--split) "
                              "to put every annotation into one split")
    out = {}
    for name in wanted:
        listing = main / f"{name}.txt"
        if not listing.is_file():
            raise ConversionError(f"{listing}: split file not found")
        ids = [line.split()[0] for line in listing.read_text().splitlines() if line.strip()]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise ConversionError(f"{listing}: id {twice} is listed more than once")
        out[name] = ids
    return out


def _class_names(found: set[str], classes: Optional[Sequence[str]], annotations) -> tuple[list[str], str]:
    if classes is not None:
        names = list(classes)
        if len(set(names)) != len(names):
            raise ConversionError(f"classes {names} has duplicates")
        for ann in annotations:
            for index, obj in enumerate(ann.objects):
                if obj.name not in names:
                    raise ConversionError(f"{ann.xml}: object {index}: class {obj.name!r} is not in the given "
                                          f"classes ({', '.join(names)})")
        return names, "as given"
    for preset, names in CLASS_PRESETS.items():
        if found == set(names):
            return list(names), f"{preset} preset order"
    return sorted(found), "sorted names"


def convert_voc(src: Union[str, Path], out: Union[str, Path], *, classes: Optional[Sequence[str]] = None,
                difficult: str = "keep", splits: Optional[Sequence[str]] = None, split: Optional[str] = None,
                copy: bool = False, force: bool = False) -> ConversionReport:
    """Convert a VOC dataset folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``) to YOLO format.

    Args:
        src: the VOC folder (e.g. ``.../bccd/BCCD``).
        out: output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        classes: class names in YOLO index order; default: a known dataset's order or sorted names (module doc).
        difficult: ``"keep"`` (default; counted) or ``"drop"`` objects marked ``<difficult>1</difficult>``.
        splits: split names to read from ``ImageSets/Main``; default whichever of train, val, test exist.
        split: instead of the split files, put every ``Annotations/*.xml`` into this one split.
        copy: copy images instead of symlinking them.
        force: replace an existing output folder written by a previous conversion.

    Returns:
        The :class:`ConversionReport`, also written to ``<out>/conversion_report.json``.

    Raises:
        ConversionError: malformed input (message names the file and object index); nothing is written.
    """
    if difficult not in ("keep", "drop"):
        raise ValueError(f"difficult must be 'keep' or 'drop', not {difficult!r}")
    src, out = Path(src), Path(out)
    if not (src / "Annotations").is_dir():
        raise ConversionError(f"{src}: no Annotations/ folder (expected a Pascal VOC dataset folder)")

    # Read and validate everything before writing anything.
    split_ids = _read_splits(src, splits, split)
    annotations: dict[str, VocAnnotation] = {}
    images: dict[str, Path] = {}
    for split_name, ids in split_ids.items():
        for image_id in ids:
            if image_id in annotations:
                continue
            xml = src / "Annotations" / f"{image_id}.xml"
            if not xml.is_file():
                raise ConversionError(f"{xml}: not found (listed in split {split_name!r})")
            annotations[image_id] = parse_voc_xml(xml)
            images[image_id] = _find_image(src, annotations[image_id], image_id)
    found = {obj.name for ann in annotations.values() for obj in ann.objects}
    names, order = _class_names(found, classes, annotations.values())
    class_index = {name: i for i, name in enumerate(names)}

    report = ConversionReport("voc", str(src), str(out), names, order, kept_flagged={"difficult": 0})
    report.boxes_per_class = dict.fromkeys(names, 0)
    seen_in: dict[str, str] = {}
    for split_name, ids in split_ids.items():
        for image_id in ids:
            if image_id in seen_in and seen_in[image_id] != split_name:
                report.warnings.append(f"{image_id} is in both {seen_in[image_id]} and {split_name}")
            seen_in.setdefault(image_id, split_name)

    with atomic_output(out, force, protect=src) as tmp:
        for split_name, ids in split_ids.items():
            (tmp / "images" / split_name).mkdir(parents=True)
            (tmp / "labels" / split_name).mkdir(parents=True)
            for image_id in ids:
                ann, image = annotations[image_id], images[image_id]
                width, height = _image_size(image, ann)
                file = str(ann.xml.relative_to(src))
                lines = []
                for index, obj in enumerate(ann.objects):
                    report.boxes_read += 1
                    xmin, ymin, xmax, ymax = obj.corners
                    if xmax <= xmin or ymax <= ymin:
                        report.drop(file, index, "degenerate", obj.corners)
                        continue
                    if obj.difficult and difficult == "drop":
                        report.drop(file, index, "difficult", obj.corners)
                        continue
                    box = report.clip_box(file, index, obj.corners, voc_corners_to_xyxy(obj.corners), width, height)
                    if box is None:
                        continue
                    report.kept_flagged["difficult"] += obj.difficult
                    report.boxes_per_class[obj.name] += 1
                    lines.append(xyxy_label_line(class_index[obj.name], box, width, height))
                place_image(image, tmp / "images" / split_name / image.name, copy)
                (tmp / "labels" / split_name / f"{image.stem}.txt").write_text("".join(f"{l}\n" for l in lines))
                report.boxes_written += len(lines)
                report.empty_label_files += not lines
                report.images += 1
            report.images_per_split[split_name] = len(ids)

        entries = {name: f"images/{name}" for name in split_ids}
        if split is not None:
            entries = {"train": f"images/{split}", "val": f"images/{split}"}
        elif "val" not in entries:
            report.warnings.append("no val split: data.yaml has no 'val' entry, ultralytics needs one to train")
        header = (f"Written by boxloss.convert.voc from {src.resolve()}\n"
                  f"Class order: {order}. Boxes: VOC 1-based inclusive corners -> x1 = xmin - 1, x2 = xmax.\n"
                  f"See {REPORT_NAME} for what was clipped or dropped.")
        write_data_yaml(tmp / "data.yaml", out, entries, names, header)
        report.write_json(tmp / REPORT_NAME)
    return report
