"""DOTA's own annotation text -> YOLO-OBB labels, optionally cut into tiles by ultralytics' DOTA splitter.

Input: DOTA's layout of one split, ``<src>/images/*.png`` and ``<src>/labelTxt/*.txt`` (or any two folders given as
``images=`` and ``labels=``), or a DOTA root holding several such splits, ``<src>/{train,val,test}/``.

Label files. Optional header lines ``imagesource:GoogleEarth`` and ``gsd:0.1463`` (ground sample distance, metres per
pixel, or ``null``) are read and left out; every other line is one object, ``x1 y1 x2 y2 x3 y3 x4 y4 class
difficult``: four corners in pixels (0-based, as written; DOTA's devkit reads them with no offset), a class name, and
``difficult`` 0 or 1 (absent counts as 0, as in the devkit). CRLF or LF line ends and a UTF-8 byte-order mark are
accepted. A line that is neither (corners that are not 8 numbers, a flag other than 0/1, extra fields) is an error
naming the file and line.

Corners. DOTA writes them clockwise from the object's "head", but annotations do not all follow it; they are
written here in one order (:func:`~boxloss.convert.obb.clockwise_corners`): clockwise on the screen, the corner
written first kept first. The quadrilateral is kept as annotated, not replaced by a rectangle: ultralytics reads any
four corners as their minimum-area rectangle, exactly as it reads DOTA's through its own converter, and the
quadrilateral stays available to an evaluation that wants it. Corners may lie a little outside the image (DOTA's
own do, by a pixel); an object whose corners' extent leaves the image (its centre outside it) is dropped
(``outside_image``), one whose corners enclose no area as ``degenerate``; both are counted in the report.

``difficult``: objects DOTA's evaluation ignores (neither a hit nor a miss), the analogue of COCO's crowd regions.
``keep`` (the default) writes them as objects: YOLO labels have no ignore regions, ultralytics' own DOTA converter
keeps them (so do its DOTAv1 / dota8 labels), and dropping them would teach the model that a visible object is
background. Evaluated on these labels, a missed difficult object counts as a miss, as any other. ``drop`` leaves
them out (reason ``difficult``); either way the report counts them.

Classes. When every class name found is one of DOTA's (v1.0's 15, v1.5's 16, v2.0's 18), the classes are that
version's list in DOTA's order, named as ultralytics' DOTAv1 / DOTAv1.5 YAMLs name them (``storage-tank`` ->
``storage tank``), so the indices match dota8 and every model trained on ultralytics' DOTA; otherwise the names
found, sorted; ``classes=`` gives the order (and the names) explicitly.

Pairing. ``labelTxt/P0706.txt`` labels ``images/P0706.<any image suffix>``. A label file whose image is missing is
skipped and listed (``annotations_without_image``), an image without a label file likewise
(``images_without_annotation``); a split none of whose label files has an image is an error. Files are taken only
from inside the two folders: a label file or image that is a symlink leading out of its folder, or not a regular
file, is an error.

Tiling (``tile=1024 gap=200``): large aerial images are cut into ``tile`` x ``tile`` windows overlapping by ``gap``
by ultralytics' own splitter (``ultralytics.data.split_dota``: ``get_windows`` places the windows, ``get_window_obj``
gives a window every object of which at least 70 % of the area (IoF) lies inside it, ``crop_and_save`` cuts and
writes the JPEG tiles, named ``<stem>__<tile>__<x>___<y>.jpg`` as in its DOTA splits and dota8). An object in two
overlapping windows is written in both; one in no window (IoF below 0.7 everywhere) is dropped (``in_no_tile``). Its
corners stay as they are, so they may leave the tile (dota8 has one at 1.057); the few whose extent would leave it
are left out of that tile and counted (``tiling.lines_outside``). Every window becomes an image, with an empty label
file where it holds no object. Tiling needs ``shapely`` (ultralytics' IoF).

Output (atomic, :mod:`boxloss.convert.writer`)::

    <out>/images/<split>/<name>           the image (symlink or copy), or its tiles
    <out>/labels/<split>/<stem>.txt       cls x1 y1 x2 y2 x3 y3 x4 y4, normalised, 6 decimals
    <out>/data.yaml                       path, train, val (one split: both point at it), names
    <out>/conversion_report.json

Example::

    from boxloss.convert import convert_dota
    report = convert_dota("datasets/dota-example-yolo", src="../shared/datasets/dota-example")
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np

from .._io import make_temp_dir
from ..data.yolo_format import IMG_FORMATS, image_size
from .obb import clockwise_corners, obb_label_line
from .report import REPORT_NAME, ConversionError, ConversionReport, check_class_names, check_split_name, image_inside
from .writer import OutputImage, write_yolo_dataset

__all__ = ["DIFFICULT", "DOTA_CLASSES", "DotaAnnotation", "DotaObject", "convert_dota", "parse_dota_txt"]

HEADER_KEYS = ("imagesource", "gsd")
DIFFICULT = ("keep", "drop")
OBJECT_LINE = "x1 y1 x2 y2 x3 y3 x4 y4 class difficult"
IOF_THRESHOLD = 0.7  # ultralytics' get_window_obj default: the share of an object inside a window that puts it there
DOTA_V1 = ("plane", "ship", "storage-tank", "baseball-diamond", "tennis-court", "basketball-court",
           "ground-track-field", "harbor", "bridge", "large-vehicle", "small-vehicle", "helicopter", "roundabout",
           "soccer-ball-field", "swimming-pool")
DOTA_CLASSES = {"DOTA v1.0": DOTA_V1, "DOTA v1.5": (*DOTA_V1, "container-crane"),
                "DOTA v2.0": (*DOTA_V1, "container-crane", "airport", "helipad")}  # ultralytics' class_mapping order
LAYOUT = ("images", "labelTxt")
PathLike = Union[str, Path]


@dataclass
class DotaObject:
    corners: np.ndarray  # (4, 2) pixels, as written
    name: str
    difficult: bool
    line: int  # 1-based line number in its file


@dataclass
class DotaAnnotation:
    path: Path
    header: dict[str, str] = field(default_factory=dict)  # imagesource, gsd as written
    objects: list[DotaObject] = field(default_factory=list)


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ConversionError(f"{path}: cannot read ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise ConversionError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset "
                              f"{error.start})") from None


def _object(fields: list[str], where: str, line_number: int) -> DotaObject:
    if len(fields) not in (9, 10):
        numbers = next((k for k, value in enumerate(fields) if not _is_number(value)), len(fields))
        raise ConversionError(f"{where}: expected '{OBJECT_LINE}' (8 corner coordinates, a class and a 0/1 flag), "
                              f"got {numbers} numbers in {len(fields)} fields")
    for k, value in enumerate(fields[:8]):
        if not _is_number(value) or not math.isfinite(float(value)):
            raise ConversionError(f"{where}: corner coordinate {'xy'[k % 2]}{k // 2 + 1} is {value!r}, not a finite "
                                  f"number ('{OBJECT_LINE}')")
    flag = fields[9] if len(fields) == 10 else "0"
    if flag not in ("0", "1"):
        raise ConversionError(f"{where}: the difficult flag is {flag!r}, expected 0 or 1 ('{OBJECT_LINE}')")
    corners = np.array([float(v) for v in fields[:8]], dtype=np.float64).reshape(4, 2)
    return DotaObject(corners, fields[8], flag == "1", line_number)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_dota_txt(path: PathLike) -> DotaAnnotation:
    """One DOTA label file (module docstring); :class:`ConversionError` naming the file and line of a bad line."""
    path = Path(path)
    annotation = DotaAnnotation(path)
    for line_number, line in enumerate(_read_text(path).splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        key, colon, value = line.strip().partition(":")
        if colon and key in HEADER_KEYS:
            annotation.header[key] = value.strip()
            continue
        annotation.objects.append(_object(fields, f"{path}:{line_number}", line_number))
    return annotation


# ---------------------------------------------------------------------------------------------------------------
# Finding the files
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class SplitSource:
    """One split's two folders, its paired (label file, image, image name below images/) and what has no partner."""

    images: Path
    labels: Path
    pairs: list[tuple[Path, Path, str]] = field(default_factory=list)
    labels_without_image: list[Path] = field(default_factory=list)
    images_without_labels: list[Path] = field(default_factory=list)


def locate_splits(src: Optional[PathLike], images: Optional[PathLike], labels: Optional[PathLike],
                  split: Optional[str]) -> dict[str, tuple[Path, Path]]:
    """``{split: (images folder, labelTxt folder)}`` for the sources given (module docstring)."""
    if split is not None:
        check_split_name(split)
    if src is not None and (images is not None or labels is not None):
        raise ConversionError("src= is a DOTA folder (images/ and labelTxt/); images= and labels= name the two "
                              "folders instead of it: give one or the other")
    if src is None:
        if images is None or labels is None:
            raise ConversionError("a source is required: src=<DOTA folder with images/ and labelTxt/>, or "
                                  "images=<folder> labels=<folder of DOTA .txt files>")
        return {split or "train": (Path(images), Path(labels))}
    src = Path(src)
    if not src.is_dir():
        raise ConversionError(f"src={src}: not a folder")
    if (src / LAYOUT[1]).is_dir():
        return {split or "train": (src / LAYOUT[0], src / LAYOUT[1])}
    found = {name: (src / name / LAYOUT[0], src / name / LAYOUT[1]) for name in ("train", "val", "test")
             if (src / name / LAYOUT[1]).is_dir()}
    if not found:
        raise ConversionError(f"src={src}: no labelTxt/ folder in it, nor in {src}/train, {src}/val or {src}/test "
                              "(DOTA's layout: <split>/images/*.png and <split>/labelTxt/*.txt)")
    if split is not None:
        raise ConversionError(f"split={split} names the one split of a DOTA folder; {src} holds the splits "
                              f"{', '.join(found)}, each converted under its own name")
    return found


def _inside(folder: Path, path: Path, where: str) -> Path:
    """``path`` if it is a regular file that stays inside ``folder`` (symlinks followed), else ConversionError."""
    if not path.resolve().is_relative_to(folder.resolve()):
        raise ConversionError(f"{where}: {path} resolves outside {folder} (to {path.resolve()}, through a symlink)")
    if not path.is_file():
        raise ConversionError(f"{where}: {path} is not a regular file")
    return path


def pair_files(images: Path, labels: Path) -> SplitSource:
    """Each ``labels/<stem>.txt`` with its ``images/<stem>.<image suffix>``; the unpaired ones listed."""
    for option, folder in (("images", images), ("labels", labels)):
        if not folder.is_dir():
            raise ConversionError(f"{option} folder {folder}: not found")
    source = SplitSource(images, labels)
    by_stem: dict[str, list[Path]] = {}
    for image in sorted(images.iterdir()):
        if image.suffix[1:].lower() in IMG_FORMATS:
            by_stem.setdefault(image.stem, []).append(image)
    label_files = sorted(path for path in labels.iterdir() if path.suffix == ".txt")
    if not label_files:
        raise ConversionError(f"{labels}: no *.txt label files")
    for label in label_files:
        _inside(labels, label, f"label file {label.name}")
        candidates = by_stem.pop(label.stem, [])
        if len(candidates) > 1:
            raise ConversionError(f"{label}: matches several images, {candidates[0].name} and {candidates[1].name}; "
                                  "keep one")
        if not candidates:
            source.labels_without_image.append(label)
            continue
        name = candidates[0].name
        source.pairs.append((label, image_inside(images, name, f"{label}: image {name!r}"), name))
    source.images_without_labels = sorted(image for found in by_stem.values() for image in found)
    if not source.pairs:
        raise ConversionError(f"{labels}: none of its {len(label_files)} label files has an image in {images}")
    return source


def class_order(found: set[str], classes: Optional[Sequence[str]]) -> tuple[list[str], list[str], str]:
    """``(names in label files, names in data.yaml, how ordered)``: ``classes`` as given, else the smallest DOTA
    version holding every name (data.yaml names with spaces, as ultralytics' DOTA YAMLs), else sorted."""
    if classes is not None:
        names = check_class_names(classes)
        return names, names, "as given"
    for version, names in DOTA_CLASSES.items():
        if found <= set(names):
            return list(names), [name.replace("-", " ") for name in names], f"{version} order"
    return sorted(found), sorted(found), "sorted names"


# ---------------------------------------------------------------------------------------------------------------
# Converting
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class _Item:
    """One paired image to write: its annotation, image, name below images/<split>/ and size."""

    annotation: DotaAnnotation
    image: Path
    name: str
    width: int
    height: int


def _objects(item: _Item, report: ConversionReport, class_index: dict[str, int],
             difficult: str) -> list[tuple[int, np.ndarray, str, str]]:
    """``(class, (4, 2) pixel corners in one order, label line, "line N")`` of every object kept; drops go to
    ``report``."""
    kept = []
    file = item.annotation.path.name
    for obj in item.annotation.objects:
        report.boxes_read += 1
        where = f"line {obj.line}"
        if obj.difficult and difficult == "drop":
            report.drop(file, where, "difficult", obj.corners.ravel())
            continue
        corners = clockwise_corners(obj.corners)
        line, reason = obb_label_line(class_index[obj.name], corners, item.width, item.height)
        if line is None:
            report.drop(file, where, reason, obj.corners.ravel())
            continue
        report.kept_flagged["difficult"] += obj.difficult
        kept.append((class_index[obj.name], corners, line, where))
    return kept


def _whole_images(items: Sequence[_Item], report: ConversionReport, class_index: dict[str, int],
                  difficult: str) -> Iterator[OutputImage]:
    for item in items:
        kept = _objects(item, report, class_index, difficult)
        yield OutputImage(item.name, [line for _, _, line, _ in kept],
                          [report.class_names[cls] for cls, _, _, _ in kept], source=item.image)


@dataclass
class _Tiler:
    """Cuts images into tiles with ultralytics' DOTA splitter, into a staging folder beside the output."""

    tile: int
    gap: int
    out: Path
    staging: Optional[Path] = None

    def tiles(self, items: Sequence[_Item], report: ConversionReport, class_index: dict[str, int],
              difficult: str) -> Iterator[OutputImage]:
        from ultralytics.data.split_dota import bbox_iof, crop_and_save, get_window_obj, get_windows

        if self.staging is None:  # the output's parent exists by now: the writer made it
            self.staging = make_temp_dir(self.out.parent, f".{self.out.name}.", ".tiles")
        for item in items:
            kept = _objects(item, report, class_index, difficult)
            windows = get_windows((item.height, item.width), [self.tile], [self.gap])  # (W, 4) x1 y1 x2 y2
            pixels = np.array([[cls, *corners.ravel()] for cls, corners, _, _ in kept], np.float32).reshape(-1, 9)
            if len(pixels):
                lost = ~(bbox_iof(pixels[:, 1:].copy(), windows) >= IOF_THRESHOLD).any(1)
                for (cls, corners, _, where), gone in zip(kept, lost):
                    if gone:
                        report.drop(item.annotation.path.name, where, "in_no_tile", corners.ravel())
                report.tiling["objects"] += int((~lost).sum())
            normalised = pixels.copy()
            normalised[:, 1::2] /= item.width
            normalised[:, 2::2] /= item.height
            anno = {"filepath": str(item.image), "label": normalised, "ori_size": (item.height, item.width)}
            window_objects = get_window_obj(anno, windows, iof_thr=IOF_THRESHOLD)  # pixel corners per window
            crop_and_save(anno, windows, [objects.copy() for objects in window_objects], str(self.staging),
                          str(self.staging))  # it shifts and normalises the objects it is given in place
            report.tiling["source_images"] += 1
            for window, objects in zip(windows.tolist(), window_objects):
                yield self._tile(item, window, objects, report)

    def _tile(self, item: _Item, window: list[int], objects: np.ndarray, report: ConversionReport) -> OutputImage:
        x1, y1, x2, y2 = window
        stem = f"{Path(item.name).stem}__{x2 - x1}__{x1}___{y1}"  # crop_and_save's name
        staged = self.staging / f"{stem}.jpg"
        width, height = min(x2, item.width) - x1, min(y2, item.height) - y1  # the crop, cut at the image's edge
        lines, classes = [], []
        for row in objects:
            corners = row[1:].reshape(4, 2).astype(np.float64) - (x1, y1)
            line, _ = obb_label_line(int(row[0]), corners, width, height)
            if line is None:
                report.tiling["lines_outside"] += 1
                continue
            lines.append(line)
            classes.append(report.class_names[int(row[0])])
        report.tiling["tiles"] += 1
        name = str(Path(item.name).with_name(f"{stem}.jpg").as_posix())
        return OutputImage(name, lines, classes, make=lambda target: shutil.move(staged, target))

    def clean(self) -> None:
        if self.staging is not None:
            shutil.rmtree(self.staging, ignore_errors=True)


def check_tiling(tile: int, gap: int) -> None:
    """ConversionError naming the key unless ``tile`` is 0 (no tiling) or a positive size larger than ``gap`` >= 0."""
    for key, value in (("tile", tile), ("gap", gap)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ConversionError(f"{key}={value!r}: must be a whole number of pixels >= 0")
    if tile and gap >= tile:
        raise ConversionError(f"gap={gap} must be smaller than tile={tile} (windows overlap by gap pixels)")


def convert_dota(out: PathLike, *, src: Optional[PathLike] = None, images: Optional[PathLike] = None,
                 labels: Optional[PathLike] = None, split: Optional[str] = None,
                 classes: Optional[Sequence[str]] = None, difficult: str = "keep", tile: int = 0, gap: int = 200,
                 copy: bool = False, force: bool = False) -> ConversionReport:
    """Convert DOTA label files and their images to a YOLO-OBB dataset folder (module docstring).

    Args:
        out: output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        src: a DOTA folder (``images/`` and ``labelTxt/``), or a root of ``train/``, ``val/``, ``test/`` such folders.
        images, labels: instead of ``src``, the image folder and the folder of DOTA ``.txt`` files of one split.
        split: the one split's name (default ``train``; data.yaml's ``val`` points at it too).
        classes: class names in index order; default DOTA's order, or the names found sorted (module docstring).
        difficult: ``"keep"`` (default) or ``"drop"`` the objects flagged difficult.
        tile, gap: cut every image into ``tile`` px windows overlapping by ``gap`` px (0: whole images).
        copy: copy images instead of symlinking them (tiles are always written).

    Returns:
        The :class:`ConversionReport` (``file``: the label file, ``index``: ``line N``), also in
        ``<out>/conversion_report.json``.

    Raises:
        ConversionError: malformed input or a bad option, one line naming the file and line or the key; nothing is
            written.
    """
    if difficult not in DIFFICULT:
        raise ConversionError(f"difficult={difficult!r}: must be one of {', '.join(DIFFICULT)}")
    check_tiling(tile, gap)
    out = Path(out)
    folders = locate_splits(src, images, labels, split)
    sources = {name: pair_files(*split_folders) for name, split_folders in folders.items()}
    items: dict[str, list[_Item]] = {}
    for name, source in sources.items():
        items[name] = []
        for label, image, image_name in source.pairs:
            annotation = parse_dota_txt(label)
            try:
                width, height = image_size(image)
            except OSError as error:
                raise ConversionError(f"{label}: its image {error}") from None
            items[name].append(_Item(annotation, image, image_name, width, height))
    found = {obj.name for split_items in items.values() for item in split_items for obj in item.annotation.objects}
    label_names, names, order = class_order(found, classes)
    for split_items in items.values():
        for item in split_items:
            for obj in item.annotation.objects:
                if obj.name not in label_names:
                    raise ConversionError(f"{item.annotation.path}:{obj.line}: class {obj.name!r} is not in the given "
                                          f"classes ({', '.join(label_names)})")
    class_index = {name: index for index, name in enumerate(label_names)}

    rule = f"one split {next(iter(sources))!r}" if len(sources) == 1 else f"the source's splits ({', '.join(sources)})"
    report = ConversionReport("dota", str(src if src is not None else f"{images} + {labels}"), str(out), names, order,
                              kept_flagged={"difficult": 0}, split_rule=rule, task="obb")
    report.boxes_per_class = dict.fromkeys(names, 0)
    for source in sources.values():
        report.annotations_without_image += [str(p) for p in source.labels_without_image]
        report.images_without_annotation += [str(p) for p in source.images_without_labels]
    tiler = _Tiler(tile, gap, out.absolute()) if tile else None
    if tiler is not None:
        report.tiling = {"tile": tile, "gap": gap, "iof_threshold": IOF_THRESHOLD, "source_images": 0, "tiles": 0,
                         "objects": 0, "lines_outside": 0}
    splits = {name: (tiler.tiles(split_items, report, class_index, difficult) if tiler else
                     _whole_images(split_items, report, class_index, difficult))
              for name, split_items in items.items()}
    entries = {name: f"images/{name}" for name in splits}
    if len(splits) == 1:
        (only,) = splits
        entries = {"train": f"images/{only}", "val": f"images/{only}"}
    header = (f"Written by boxloss.convert.dota from {report.source}\n"
              f"Classes: {order}. Corners: DOTA's quadrilaterals, clockwise from the first written, normalised.\n"
              f"difficult objects: {difficult}"
              + (f"; tiles of {tile} px overlapping by {gap} px (ultralytics' DOTA splitter)" if tile else "")
              + ("\nval is the same split as train" if len(splits) == 1 else "")
              + f". See {REPORT_NAME} for what was skipped or dropped.")
    try:
        return write_yolo_dataset(out, splits, report, header=header, entries=entries, copy=copy, force=force,
                                  protect=[folder for split_folders in folders.values() for folder in split_folders])
    finally:
        if tiler is not None:
            tiler.clean()
