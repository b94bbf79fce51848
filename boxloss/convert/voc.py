"""Pascal VOC XML -> YOLO labels, keeping the official split (``ImageSets/Main``) or making a seeded stratified one.

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

Sources. ``convert_voc(src, out)`` reads a VOC folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``);
``convert_voc_folders(annotations, images, out)`` any folder of XML files (e.g. LabelImg's) and any folder of
images, both searched recursively; :func:`pair_annotations` matches them:

1. an XML with a ``<filename>`` (its last path part, ``/`` or ``\\``) is matched to the image of that name in
   the XML's own relative folder below ``images`` (``annots/a/x.xml`` -> ``images/a/<filename>``), else to the
   one image of that name anywhere below ``images``;
2. otherwise (no ``<filename>``, or no image has it) to the image with the XML's stem (any image extension) in
   the XML's own relative folder, else to the one image with that stem anywhere below ``images``;
3. several candidates at the step that decides (two images of that name in different folders, ``x.jpg`` and
   ``x.png`` beside each other), one image matched by two XMLs, or two matched images that would share a label
   file (``x.jpg`` and ``x.png`` with an XML each), is an error naming both files; nothing is picked silently.

Files below the output folder (a previous conversion written inside ``images``) are not searched.

An XML matching no image and an image matched by no XML (a not-yet-labelled image, not a negative) are left out
and listed in the report (``annotations_without_image``, ``images_without_annotation``). An XML without objects
is a negative: its image gets an empty label file. Images keep their path below ``images`` in the output
(``images/<split>/a/x.jpg``), so two folders may hold the same file name.

Splits, in this order:

* ``split="NAME"`` -- every annotation into one split ``NAME`` (used as both ``train`` and ``val`` in
  ``data.yaml``); with ``src``, every ``Annotations/*.xml`` and an XML without an image is an error, as before;
* ``split_lists={"train": FILE, "test": FILE}`` -- an official split from list files (a CSV with a ``filename``
  column, one row per box, or one image name or stem per line; :mod:`boxloss.convert.split_lists`): an image in
  two lists or a listed name without an annotated image is an error, an annotated image in no list is left out
  (warned, listed in the report); ``val`` (with ``seed``) then carves a seeded stratified val split out of the
  train list only, the other lists untouched. With ``src``, the ``ImageSets`` are ignored (a warning says so);
* with ``src``, when ``ImageSets/Main/{train,val,test}.txt`` exist (whichever do) and none of ``val``, ``test``,
  ``seed`` is given: that official split, as ``images/<split>`` and ``labels/<split>`` (an id without an XML or
  an image is an error);
* otherwise a seeded stratified split (:mod:`boxloss.convert.split`: every class with two images or more in val,
  with three or more in test too when asked, the same seed giving the same split on any machine) of every
  paired annotation; with ``src``, that of ``Annotations/`` and ``JPEGImages/`` paired as above, the
  ``ImageSets`` being ignored (a warning says so). Given none of ``val``, ``test``, ``seed`` (no ``ImageSets``),
  it is ``val=0.2, seed=0`` -- ultralytics needs a val split to train -- and a warning says so.

Images are absolute symlinks to the source, or copies with ``copy=True``; label files are always written
(empty for an image without boxes).

Output (written into a temporary folder and renamed into place; refused if it exists unless ``force``)::

    <out>/images/<split>/<id>.jpg -> <src>/JPEGImages/<id>.jpg
    <out>/labels/<split>/<id>.txt          class cx cy w h, normalised, 6 decimals
    <out>/data.yaml                        path (absolute), train, val, test, names
    <out>/conversion_report.json           see boxloss.convert.report

Example::

    from boxloss.convert import convert_voc, convert_voc_folders
    report = convert_voc("../shared/datasets/bccd/BCCD", "datasets/bccd-yolo")
    report = convert_voc_folders("labelimg/annots", "labelimg/images", "datasets/mine", val=0.2, test=0.1, seed=0)
    print(report.summary())
"""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Mapping, Optional, Sequence, Union

from .._io import not_utf8, read_text
from ..data.yolo_format import IMG_FORMATS, image_size, xyxy_label_line
from .report import (REPORT_NAME, ConversionError, ConversionReport, check_class_names, check_split_name,
                     image_inside, relative_reference)
from .split import DEFAULT_VAL, check_split_options, split_rule, stratified_split
from .split_lists import ListedSplit, SplitList, assign_listed, read_split_list
from .writer import OutputImage, write_yolo_dataset

__all__ = ["CLASS_PRESETS", "Pairing", "VocObject", "VocAnnotation", "convert_voc", "convert_voc_folders",
           "pair_annotations", "parse_voc_xml", "voc_corners_to_xyxy"]

CLASS_PRESETS = {"bccd": ("RBC", "WBC", "Platelets")}
OFFICIAL_SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".JPG", ".JPEG", ".PNG")
CORNERS = ("xmin", "ymin", "xmax", "ymax")
PathLike = Union[str, Path]


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
    if text is None:
        raise ConversionError(f"{where}: {what} is missing")
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


def _find_image(src: Path, ann: VocAnnotation, image_id: str) -> tuple[Path, str]:
    """The image of one listed id and its ``/`` path below ``JPEGImages``: ``<filename>`` if that exists, else
    ``<id>.jpg`` (or another image suffix); either must be a regular image file inside ``JPEGImages``."""
    folder = src / "JPEGImages"
    names = [relative_reference(ann.filename, f"{ann.xml}: <filename> {ann.filename!r}")] if ann.filename else []
    names += [f"{image_id}{suffix}" for suffix in IMAGE_SUFFIXES]
    for name in names:
        if os.path.lexists(folder / name):
            return image_inside(folder, name, f"{ann.xml}: image {name!r}"), name
    raise ConversionError(f"{ann.xml}: image not found (looked for {folder / names[0]})")


def _image_size(image: Path, ann: VocAnnotation) -> tuple[int, int]:
    if ann.width > 0 and ann.height > 0:
        return ann.width, ann.height
    try:
        return image_size(image, exif_rotation=False)  # train and val's rule: a decompression bomb is unreadable
    except OSError as error:
        raise ConversionError(f"{ann.xml}: <size> missing and image {error}") from None


def _official_split_files(src: Path) -> list[str]:
    main = src / "ImageSets" / "Main"
    return [s for s in OFFICIAL_SPLITS if (main / f"{s}.txt").is_file()]


def _read_splits(src: Path, splits: Optional[Sequence[str]], split: Optional[str]) -> dict[str, list[str]]:
    """Split name -> image ids, from ImageSets/Main/<split>.txt, or every annotation into ``split``."""
    if split is not None:
        ids = sorted(p.stem for p in (src / "Annotations").glob("*.xml"))
        if not ids:
            raise ConversionError(f"{src / 'Annotations'}: no *.xml annotation files")
        return {split: ids}
    main = src / "ImageSets" / "Main"
    wanted = list(splits) if splits is not None else _official_split_files(src)
    if not wanted:
        raise ConversionError(f"{main}: no split to read (splits={splits!r})")
    out = {}
    for name in wanted:
        check_split_name(name, "split")
        listing = main / f"{name}.txt"
        if not listing.is_file():
            raise ConversionError(f"{listing}: split file not found")
        try:
            text = read_text(listing)  # a BOM is no part of the first id
        except UnicodeDecodeError as error:
            raise ConversionError(f"{listing}: {not_utf8(error)}") from None
        ids = [line.split()[0] for line in text.splitlines() if line.strip()]
        for image_id in ids:
            if PureWindowsPath(image_id).name != image_id or image_id.strip(".") == "":
                raise ConversionError(f"{listing}: id {image_id!r} is not a file name (a path separator or '..')")
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise ConversionError(f"{listing}: id {twice} is listed more than once")
        out[name] = ids
    return out


def _class_names(found: set[str], classes: Optional[Sequence[str]], annotations) -> tuple[list[str], str]:
    if classes is not None:
        names = check_class_names(classes)
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


# ---------------------------------------------------------------------------------------------------------------
# Pairing XML files with images (convert_voc_folders, and convert_voc without ImageSets)
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class AnnotatedImage:
    """One annotation to write: its XML, its image, and where the image goes below ``images/<split>/``."""

    ann: VocAnnotation
    image: Path
    name: str  # the image's output path below images/<split>/, "/"-separated; also its key in a seeded split
    file: str  # the XML as named in the report's box records


@dataclass
class Pairing:
    """What :func:`pair_annotations` found: the pairs, and the files left without a partner (sorted paths)."""

    items: list[AnnotatedImage]
    annotations_without_image: list[Path] = field(default_factory=list)
    images_without_annotation: list[Path] = field(default_factory=list)


def _is_image(path: Path) -> bool:
    """An image file name that is not a folder (a FIFO or a symlink pointing out is matched, then refused)."""
    return path.suffix[1:].lower() in IMG_FORMATS and not path.is_dir()


def _one(candidates: list[Path], xml: Path, what: str) -> Optional[Path]:
    """The single candidate, None for none; several are an error naming the XML and two of them."""
    if len(candidates) > 1:
        raise ConversionError(f"{xml}: {what} matches several images, {candidates[0]} and {candidates[1]}; "
                              "rename one or set <filename>")
    return candidates[0] if candidates else None


def _match(xml: Path, ann: VocAnnotation, folder: Path, by_name: dict, by_stem: dict) -> Optional[Path]:
    """The image of one XML by the rule of the module docstring; ``folder`` is the XML's mirror below images."""
    if ann.filename:
        relative_reference(ann.filename, f"{xml}: <filename> {ann.filename!r}")  # absolute or '..' out: refused
        name = PureWindowsPath(ann.filename).name  # also splits "/" paths
        found = by_name.get(name, [])
        image = _one([p for p in found if p.parent == folder], xml, f"<filename> {name!r}") or \
            _one(found, xml, f"<filename> {name!r}")
        if image is not None:
            return image
    found = by_stem.get(xml.stem, [])
    return _one([p for p in found if p.parent == folder], xml, f"the stem {xml.stem!r}") or \
        _one(found, xml, f"the stem {xml.stem!r}")


def pair_annotations(annotations: Union[str, Path], images: Union[str, Path], report_base: Optional[Path] = None,
                     exclude: Optional[Path] = None) -> Pairing:
    """Every ``*.xml`` below ``annotations`` matched with its image below ``images`` (rule: module docstring).

    ``report_base``: the folder the XMLs are named relative to in the report (default: ``annotations``).
    ``exclude``: a folder whose files are not searched (the output folder).
    Raises ConversionError for a missing folder, a malformed XML, an ambiguous match, an image matched twice or two
    images that would share a label file.
    """
    annotations, images = Path(annotations), Path(images)
    for option, folder in (("annotations", annotations), ("images", images)):
        if not folder.is_dir():
            raise ConversionError(f"{option}={folder}: not a folder")
    def searched(path: Path) -> bool:
        return exclude is None or not Path(os.path.abspath(path)).is_relative_to(os.path.abspath(exclude))

    xmls = sorted(p for p in annotations.rglob("*.xml") if searched(p))
    if not xmls:
        raise ConversionError(f"{annotations}: no *.xml files (searched recursively)")
    all_images = sorted(p for p in images.rglob("*") if _is_image(p) and searched(p))
    by_name: dict[str, list[Path]] = {}
    by_stem: dict[str, list[Path]] = {}
    for image in all_images:
        by_name.setdefault(image.name, []).append(image)
        by_stem.setdefault(image.stem, []).append(image)
    pairing, claimed, labels = Pairing([]), {}, {}
    for xml in xmls:
        ann = parse_voc_xml(xml)
        image = _match(xml, ann, images / xml.parent.relative_to(annotations), by_name, by_stem)
        if image is None:
            pairing.annotations_without_image.append(xml)
            continue
        if image in claimed:
            raise ConversionError(f"{image}: matched by both {claimed[image]} and {xml}")
        name = image.relative_to(images).as_posix()
        image_inside(images, image.relative_to(images), f"{xml}: image {name!r}")
        label = PurePosixPath(name).with_suffix("").as_posix()
        if label in labels:
            raise ConversionError(f"{image}: shares its label file {label}.txt with {labels[label]}; rename one")
        claimed[image], labels[label] = xml, image
        file = xml.relative_to(report_base or annotations).as_posix()
        pairing.items.append(AnnotatedImage(ann, image, name, file))
    pairing.images_without_annotation = [image for image in all_images if image not in claimed]
    if not pairing.items:
        raise ConversionError(f"{annotations}: none of its {len(xmls)} XML files matches an image below {images}")
    return pairing


# ---------------------------------------------------------------------------------------------------------------
# Converting and writing
# ---------------------------------------------------------------------------------------------------------------
def _labels(item: AnnotatedImage, report: ConversionReport, class_index: dict[str, int],
            difficult: str) -> list[tuple[str, str]]:
    """(class name, label line) of each box kept from one annotation; clips and drops go to ``report``."""
    width, height = _image_size(item.image, item.ann)
    labels = []
    for index, obj in enumerate(item.ann.objects):
        report.boxes_read += 1
        xmin, ymin, xmax, ymax = obj.corners
        if xmax <= xmin or ymax <= ymin:
            report.drop(item.file, index, "degenerate", obj.corners)
            continue
        if obj.difficult and difficult == "drop":
            report.drop(item.file, index, "difficult", obj.corners)
            continue
        box = report.clip_box(item.file, index, obj.corners, voc_corners_to_xyxy(obj.corners), width, height)
        if box is None:
            continue
        report.kept_flagged["difficult"] += obj.difficult
        labels.append((obj.name, xyxy_label_line(class_index[obj.name], box, width, height)))
    return labels


def _new_report(source: str, out: Path, items: Sequence[AnnotatedImage], classes: Optional[Sequence[str]],
                rule: str) -> tuple[ConversionReport, dict[str, int]]:
    found = {obj.name for item in items for obj in item.ann.objects}
    names, order = _class_names(found, classes, [item.ann for item in items])
    report = ConversionReport("voc", source, str(out), names, order, kept_flagged={"difficult": 0}, split_rule=rule)
    report.boxes_per_class = dict.fromkeys(names, 0)
    return report, {name: i for i, name in enumerate(names)}


def _write(out: Path, force: bool, protect: Sequence[Path], labelled: dict[str, list], report: ConversionReport,
           entries: dict[str, str], header: str, copy: bool) -> ConversionReport:
    """Write ``labelled`` (split -> [(AnnotatedImage, labels)]), data.yaml and the report, atomically."""
    splits = {split_name: [OutputImage(item.name, [line for _, line in labels], [name for name, _ in labels],
                                       source=item.image) for item, labels in pairs]
              for split_name, pairs in labelled.items()}
    return write_yolo_dataset(out, splits, report, header=header, entries=entries, copy=copy, force=force,
                              protect=protect)


def _header(source: str, order: str, rule: str) -> str:
    return (f"Written by boxloss.convert.voc from {source}\n"
            f"Class order: {order}. Boxes: VOC 1-based inclusive corners -> x1 = xmin - 1, x2 = xmax.\n"
            + (f"Split: {rule}; the same options give the same split.\n"
               if rule.startswith(("seeded", "split lists")) else "")
            + f"See {REPORT_NAME} for what was clipped or dropped.")


def _split_options(val: Optional[float], test: Optional[float], seed: Optional[int], split: Optional[str],
                   splits: Optional[Sequence[str]] = None,
                   lists: Sequence[SplitList] = ()) -> Optional[tuple[float, float, int]]:
    """``(val, test, seed)`` when a seeded split was asked for (missing ones: 0.2, 0, 0), else None; with split
    ``lists``, ``(val, 0, seed)`` when val is to be carved out of the train list, else None."""
    if split is not None:
        check_split_name(split)
    asked = [f"{name}=" for name, value in (("val", val), ("test", test), ("seed", seed)) if value is not None]
    if asked and split is not None:
        raise ConversionError(f"split={split} puts every image into one split; it cannot be combined with "
                              f"{', '.join(asked)}")
    if lists:
        return _list_split_options(val, test, seed, split, lists)
    if asked and splits is not None:
        raise ConversionError(f"splits= reads ImageSets/Main; it cannot be combined with {', '.join(asked)}")
    if not asked:
        return None
    options = (DEFAULT_VAL if val is None else val), (0.0 if test is None else test), (0 if seed is None else seed)
    check_split_options(*options)
    return options


def _list_split_options(val: Optional[float], test: Optional[float], seed: Optional[int], split: Optional[str],
                        lists: Sequence[SplitList]) -> Optional[tuple[float, float, int]]:
    """The split options that go with split lists: only ``val`` (and ``seed``), carving val out of train."""
    given = {listing.split for listing in lists}
    if split is not None:
        raise ConversionError(f"split={split} puts every image into one split; it cannot be combined with "
                              "split lists (train_list=, val_list=, test_list=)")
    if test is not None:
        raise ConversionError("test= with split lists: the test split comes from its list (test_list=FILE)")
    if val is None:
        if seed is not None:
            raise ConversionError(f"seed={seed} without val=: with split lists, val=FRACTION seed=N carves a "
                                  "val split out of the train list")
        return None
    if "val" in given:
        raise ConversionError(f"val={val} with val_list=: val comes from its list; val= carves one "
                              "out of the train list when there is no val list")
    if "train" not in given:
        raise ConversionError(f"val={val} carves val out of the train list, and no train_list=FILE is given")
    options = (val, 0.0, 0 if seed is None else seed)
    check_split_options(*options)
    return options


def _listed_assignment(listed: ListedSplit, lists: Sequence[SplitList], labels: dict[str, list],
                       carve: Optional[tuple[float, float, int]], report: ConversionReport) -> dict[str, list[str]]:
    """Split -> keys from the lists; with ``carve`` (val, 0, seed), val is a seeded stratified part of train."""
    assignment = listed.splits
    report.split_lists = {listing.split: {"file": str(listing.path), "resolved": str(listing.path.resolve()),
                                          "rows": listing.rows, "images": len(listing.entries)} for listing in lists}
    report.unlisted_images = listed.unlisted
    if listed.unlisted:
        report.warnings.append(f"{len(listed.unlisted)} annotated images are in no split list and were left out "
                               f"(e.g. {listed.unlisted[0]}; all in unlisted_images)")
    if carve is not None:
        train = {key: {name for name, _ in labels[key]} for key in assignment["train"]}
        result = stratified_split(train, *carve)
        assignment = {"train": result.splits["train"], "val": result.splits["val"],
                      **{name: keys for name, keys in assignment.items() if name != "train"}}
        report.warnings += result.warnings
    return {name: assignment[name] for name in ("train", "val", "test") if name in assignment}


def _list_rule(lists: Sequence[SplitList], carve: Optional[tuple[float, float, int]]) -> str:
    rule = "split lists " + ", ".join(listing.describe() for listing in lists)
    if carve is not None:
        rule += f"; val carved out of the train list by a {split_rule(*carve)}"
    return rule


def _convert_pairs(pairing: Pairing, source: str, resolved: str, out: Path, protect: Sequence[Path], *,
                   classes: Optional[Sequence[str]], difficult: str, split_options: Optional[tuple[float, float, int]],
                   split: Optional[str], copy: bool, force: bool, warnings: Sequence[str] = (),
                   lists: Sequence[SplitList] = ()) -> ConversionReport:
    """Convert paired annotations into one split, the split of ``lists`` (val carved out of train by
    ``split_options``, when given), or a seeded stratified split (default val 0.2, seed 0).

    ``source`` names the input in the report, ``resolved`` in the data.yaml header.
    """
    notes = list(warnings)
    if split is None and split_options is None and not lists:
        split_options = (DEFAULT_VAL, 0.0, 0)
        notes.append(f"no ImageSets and no val=/test=/seed=: made a seeded split (val {DEFAULT_VAL}, seed 0); "
                     "pass val=/test=/seed= to choose it, or split=NAME for one split")
    rule = f"one split {split!r}" if split is not None else \
        _list_rule(lists, split_options) if lists else split_rule(*split_options)
    listed = assign_listed(lists, [item.name for item in pairing.items]) if lists else None
    left_out = set(listed.unlisted) if listed else set()
    kept = [item for item in pairing.items if item.name not in left_out]
    report, class_index = _new_report(source, out, kept, classes, rule)
    report.annotations_without_image = [str(p) for p in pairing.annotations_without_image]
    report.images_without_annotation = [str(p) for p in pairing.images_without_annotation]
    labels = {item.name: _labels(item, report, class_index, difficult) for item in kept}
    if split is not None:
        assignment, entries = {split: sorted(labels)}, {"train": f"images/{split}", "val": f"images/{split}"}
    elif listed is not None:
        assignment = _listed_assignment(listed, lists, labels, split_options, report)
        entries = {name: f"images/{name}" for name in assignment}
    else:
        result = stratified_split({name: {c for c, _ in rows} for name, rows in labels.items()}, *split_options)
        assignment, entries = result.splits, {name: f"images/{name}" for name in result.splits}
        notes += result.warnings
    report.warnings += notes
    items = {item.name: item for item in pairing.items}
    labelled = {name: [(items[key], labels[key]) for key in keys] for name, keys in assignment.items()}
    return _write(out, force, protect, labelled, report, entries, _header(resolved, report.class_order, rule), copy)


def _read_lists(split_lists: Union[None, Mapping[str, PathLike], Sequence[tuple[str, PathLike]]]) -> list[SplitList]:
    """The list files of ``split_lists`` (split -> file, as a mapping or as pairs), read and checked."""
    pairs = list(split_lists.items()) if isinstance(split_lists, Mapping) else list(split_lists or ())
    return [read_split_list(split, path) for split, path in pairs]


def _check_difficult(difficult: str) -> None:
    if difficult not in ("keep", "drop"):
        raise ValueError(f"difficult must be 'keep' or 'drop', not {difficult!r}")


def convert_voc(src: Union[str, Path], out: Union[str, Path], *, classes: Optional[Sequence[str]] = None,
                difficult: str = "keep", splits: Optional[Sequence[str]] = None, split: Optional[str] = None,
                val: Optional[float] = None, test: Optional[float] = None, seed: Optional[int] = None,
                split_lists: Union[None, Mapping[str, PathLike], Sequence[tuple[str, PathLike]]] = None,
                copy: bool = False, force: bool = False) -> ConversionReport:
    """Convert a VOC dataset folder (``Annotations/``, ``JPEGImages/``, ``ImageSets/Main/``) to YOLO format.

    Args:
        src: the VOC folder (e.g. ``.../bccd/BCCD``).
        out: output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        classes: class names in YOLO index order; default: a known dataset's order or sorted names (module doc).
        difficult: ``"keep"`` (default; counted) or ``"drop"`` objects marked ``<difficult>1</difficult>``.
        splits: split names to read from ``ImageSets/Main``; default whichever of train, val, test exist.
        split: instead of the split files, put every ``Annotations/*.xml`` into this one split.
        val, test, seed: instead of the split files, a seeded stratified split (module doc, "Splits"); also what
            a folder without ``ImageSets/Main`` gets (default val 0.2, seed 0).
        split_lists: instead of ``ImageSets/Main``, an official split from list files, split -> file
            (:mod:`boxloss.convert.split_lists`); ``val`` and ``seed`` then carve val out of the train list.
        copy: copy images instead of symlinking them.
        force: replace an existing output folder written by a previous conversion.

    Returns:
        The :class:`ConversionReport`, also written to ``<out>/conversion_report.json``.

    Raises:
        ConversionError: malformed input (message names the file and object index) or a bad option (names it);
            nothing is written.
    """
    _check_difficult(difficult)
    src, out = Path(src), Path(out)
    if not (src / "Annotations").is_dir():
        raise ConversionError(f"{src}: no Annotations/ folder (expected a Pascal VOC dataset folder; for other "
                              "layouts use annotations=DIR images=DIR)")
    lists = _read_lists(split_lists)
    if lists and splits is not None:
        raise ConversionError("splits= reads ImageSets/Main; it cannot be combined with split lists")
    split_options = _split_options(val, test, seed, split, splits, lists)
    official = _official_split_files(src)
    if lists or (split is None and splits is None and (split_options is not None or not official)):
        how = "split by the split lists" if lists else "re-split by val=/test=/seed="
        warnings = [f"{src / 'ImageSets/Main'}: official split ignored, {how}"] if official else []
        pairing = pair_annotations(src / "Annotations", src / "JPEGImages", report_base=src, exclude=out)
        return _convert_pairs(pairing, str(src), str(src.resolve()), out, [src], classes=classes,
                              difficult=difficult, split_options=split_options, split=None, copy=copy, force=force,
                              warnings=warnings, lists=lists)

    # The official split (or split=NAME): read and validate everything before writing anything.
    split_ids = _read_splits(src, splits, split)
    items: dict[str, AnnotatedImage] = {}
    named: dict[str, str] = {}  # label path below labels/<split>/ -> the id whose image it is
    for split_name, ids in split_ids.items():
        for image_id in ids:
            if image_id in items:
                continue
            xml = src / "Annotations" / f"{image_id}.xml"
            if not xml.is_file():
                raise ConversionError(f"{xml}: not found (listed in split {split_name!r})")
            ann = parse_voc_xml(xml)
            image, name = _find_image(src, ann, image_id)
            label = PurePosixPath(name).with_suffix("").as_posix()
            if named.setdefault(label, image_id) != image_id:
                raise ConversionError(f"{xml}: its image {name} shares its label file {label}.txt with id "
                                      f"{named[label]}")
            items[image_id] = AnnotatedImage(ann, image, name, str(xml.relative_to(src)))
    rule = f"one split {split!r}" if split is not None else "ImageSets/Main (official)"
    report, class_index = _new_report(str(src), out, list(items.values()), classes, rule)
    seen_in: dict[str, str] = {}
    for split_name, ids in split_ids.items():
        for image_id in ids:
            if image_id in seen_in and seen_in[image_id] != split_name:
                report.warnings.append(f"{image_id} is in both {seen_in[image_id]} and {split_name}")
            seen_in.setdefault(image_id, split_name)
    labelled = {name: [(items[i], _labels(items[i], report, class_index, difficult)) for i in ids]
                for name, ids in split_ids.items()}
    entries = {name: f"images/{name}" for name in split_ids}
    if split is not None:
        entries = {"train": f"images/{split}", "val": f"images/{split}"}
    return _write(out, force, [src], labelled, report, entries, _header(str(src.resolve()), report.class_order, rule),
                  copy)


def convert_voc_folders(annotations: Union[str, Path], images: Union[str, Path], out: Union[str, Path], *,
                        classes: Optional[Sequence[str]] = None, difficult: str = "keep",
                        val: Optional[float] = None, test: Optional[float] = None, seed: Optional[int] = None,
                        split: Optional[str] = None,
                        split_lists: Union[None, Mapping[str, PathLike], Sequence[tuple[str, PathLike]]] = None,
                        copy: bool = False, force: bool = False) -> ConversionReport:
    """Convert a folder of VOC XML files and a folder of images (e.g. LabelImg's output) to YOLO format.

    The XMLs are paired with the images by :func:`pair_annotations`; the unpaired files are listed in the report.

    Args:
        annotations: folder searched recursively for ``*.xml``.
        images: folder searched recursively for images (may be ``annotations`` itself).
        out: output folder; must not exist unless ``force``.
        classes, difficult: as for :func:`convert_voc`.
        val, test, seed: the seeded stratified split (:mod:`boxloss.convert.split`); default val 0.2, seed 0, with
            a warning.
        split: instead, every paired annotation into this one split (``train`` and ``val`` in ``data.yaml``).
        split_lists: instead, an official split from list files, split -> file (e.g. ``{"train":
            "data/train_labels.csv", "test": "data/test_labels.csv"}``; :mod:`boxloss.convert.split_lists`);
            ``val`` and ``seed`` then carve a seeded stratified val split out of the train list only.
        copy, force: as for :func:`convert_voc`.

    Raises:
        ConversionError: malformed input, an ambiguous match (naming both files) or a bad option; nothing is written.
    """
    _check_difficult(difficult)
    lists = _read_lists(split_lists)
    split_options = _split_options(val, test, seed, split, lists=lists)
    annotations, images = Path(annotations), Path(images)
    pairing = pair_annotations(annotations, images, exclude=Path(out))
    return _convert_pairs(pairing, f"{annotations} + {images}", f"{annotations.resolve()} + {images.resolve()}",
                          Path(out), [annotations, images], classes=classes, difficult=difficult,
                          split_options=split_options, split=split, copy=copy, force=force, lists=lists)
