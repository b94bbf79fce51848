"""What a conversion did, and the few steps both converters share (clip, format, write atomically).

Every converter in :mod:`boxloss.convert` turns its source boxes into 0-based **pixel-edge** ``xyxy``
boxes (``x1`` = left edge of the leftmost covered pixel column, ``x2`` = right edge of the rightmost one,
so a box covering the whole image is ``0, 0, width, height``), then hands each one to
:meth:`ConversionReport.clip_box`, which clips it to the image and records what it changed, and finally
formats it with :func:`boxloss.data.yolo_format.xyxy_label_line` (``class cx cy w h``, normalised by the image
size, 6 decimals).

The report counts every box read, written, clipped (per side) and dropped (per reason, with the source
file, the object index or annotation id and the box as written in the source), so that
``boxes_read == boxes_written + len(dropped)`` always holds -- except for a tiled DOTA conversion, where an object
is written once per tile holding it, and ``boxes_read == tiling["objects"] + len(dropped)`` holds instead. Drop
reasons:

``degenerate``     the source box has no extent (VOC ``xmax <= xmin`` or ``ymax <= ymin``: a click, not a
                   drag; COCO ``width <= 0`` or ``height <= 0``; oriented: corners enclosing no area)
``outside_image``  nothing of the box is left after clipping it to the image (oriented boxes, which are not
                   clipped: the corners' extent has its centre outside the image)
``crowd``          COCO ``iscrowd=1`` region (YOLO labels have no ignore regions)
``no_polygon``     COCO ``task=segment`` or ``task=obb``: the object's segmentation holds no polygon of three points
``difficult``      VOC or DOTA ``difficult=1`` object, only when the caller asked to drop them
``in_no_tile``     DOTA ``tile=``: less than 70 % of the object lies in any one tile (ultralytics' splitter)

Datasets are treated as possibly hostile: an image an annotation names (VOC ``<filename>``, COCO ``file_name``)
is taken only when it is a relative path that stays inside the images folder, also after following symlinks, and
is a regular file with an image suffix (:func:`image_inside`); its label goes to ``labels/<split>/`` at the
image's relative path with the suffix ``.txt`` (:func:`output_paths`), and split names are plain folder names
(:func:`check_split_name`). Anything else is a :class:`ConversionError` before anything is written.
"""

from __future__ import annotations

import contextlib
import os
import posixpath
import re
import shutil
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Iterator, Sequence, Union

from .._io import WRITE_FAILURES, irregular_file, make_temp_dir, write_json_atomic, writing
from ..data.yolo_format import IMG_FORMATS, label_path

REPORT_NAME = "conversion_report.json"
SIDES = ("left", "top", "right", "bottom")
DROP_REASONS = ("degenerate", "outside_image", "crowd", "difficult", "no_polygon", "in_no_tile")
TASK_LABELS = {"segment": "one polygon per object", "obb": "one oriented box (four corners) per object"}


class ConversionError(ValueError):
    """Malformed or inconsistent input; the message is one line naming the file (and object/annotation)."""


@dataclass
class ClippedBox:
    """A box that was cut back to the image.

    ``box`` is the box as written in the source (VOC corners ``xmin, ymin, xmax, ymax``; COCO ``x, y, w, h``),
    ``clipped_xyxy`` the 0-based pixel-edge box that was written.
    """

    file: str
    index: Union[int, str]
    sides: list[str]
    box: list[float]
    clipped_xyxy: list[float]


@dataclass
class DroppedBox:
    """A box that was not written; ``box`` as written in the source (see :class:`ClippedBox`)."""

    file: str
    index: Union[int, str]
    reason: str
    box: list[float]


@dataclass
class ConversionReport:
    """Counts of one conversion, returned by the converters and written to ``<out>/conversion_report.json``.

    ``index`` in the box records is the 0-based ``<object>`` index within a VOC XML file, or the COCO
    annotation id. ``kept_flagged`` counts boxes written although the source flags them (VOC ``difficult``
    when kept). ``warnings`` are one-line notes that did not stop the conversion.

    ``split_rule`` says how the splits were made; ``images_per_class_per_split`` and ``boxes_per_class_per_split``
    count, per split and class, the images holding the class and its boxes (filled by :meth:`count_image`).
    ``images_without_annotation`` and ``annotations_without_image`` list every source file left out because it
    has no partner (all of them here, a few in :meth:`summary`). ``split_lists`` records the list files an official
    split was read from (split -> file, rows, images) and ``unlisted_images`` the annotated images in none of them.
    ``task`` is what the labels hold (``detect``: boxes; ``segment``: one polygon per object; ``obb``: one
    oriented box per object), and ``segments`` counts the polygons made from several (``joined``) or from an RLE
    mask (``rle``), and the vertices clipped to the image (``points_clipped``). ``tiling`` describes a tiled DOTA
    conversion: tile and gap (px), the IoF threshold, source images, tiles, objects written in at least one tile,
    and the label lines left out of a tile because their extent leaves it (``lines_outside``).
    """

    format: str
    source: str
    output: str = ""
    class_names: list[str] = field(default_factory=list)
    class_order: str = ""
    images: int = 0
    images_per_split: dict[str, int] = field(default_factory=dict)
    empty_label_files: int = 0
    boxes_read: int = 0
    boxes_written: int = 0
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    clipped_sides: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIDES, 0))
    clipped: list[ClippedBox] = field(default_factory=list)
    dropped: list[DroppedBox] = field(default_factory=list)
    kept_flagged: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    split_rule: str = ""
    images_per_class_per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    boxes_per_class_per_split: dict[str, dict[str, int]] = field(default_factory=dict)
    images_without_annotation: list[str] = field(default_factory=list)
    annotations_without_image: list[str] = field(default_factory=list)
    split_lists: dict[str, dict] = field(default_factory=dict)
    unlisted_images: list[str] = field(default_factory=list)
    task: str = "detect"
    segments: dict[str, int] = field(default_factory=dict)
    tiling: dict[str, float] = field(default_factory=dict)

    # ----------------------------------------------------------------------------------------- recording
    def drop(self, file: str, index: Union[int, str], reason: str, box) -> None:
        """Record a box that will not be written."""
        if reason not in DROP_REASONS:
            raise ValueError(f"unknown drop reason {reason!r}; known: {', '.join(DROP_REASONS)}")
        self.dropped.append(DroppedBox(file, index, reason, [float(v) for v in box]))

    def clip_box(self, file: str, index: Union[int, str], source_box, xyxy, width: float, height: float):
        """Clip a pixel-edge ``xyxy`` box to ``[0, width] x [0, height]``, recording any clip or drop.

        Args:
            file, index: where the box comes from (for the report).
            source_box: the box as written in the source, kept in the report.
            xyxy: ``(x1, y1, x2, y2)`` 0-based pixel-edge box with ``x2 > x1`` and ``y2 > y1``.
            width, height: image size in pixels.

        Returns:
            The clipped ``(x1, y1, x2, y2)``, or ``None`` when nothing is left (recorded as ``outside_image``).
        """
        x1, y1, x2, y2 = (float(v) for v in xyxy)
        clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
                   min(max(x2, 0.0), width), min(max(y2, 0.0), height))
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            self.drop(file, index, "outside_image", source_box)
            return None
        sides = [side for side, cut in zip(SIDES, (x1 < 0, y1 < 0, x2 > width, y2 > height)) if cut]
        if sides:
            for side in sides:
                self.clipped_sides[side] += 1
            self.clipped.append(ClippedBox(file, index, sides, [float(v) for v in source_box], list(clipped)))
        return clipped

    def add_split(self, split: str) -> None:
        """Start counting ``split`` (zero images, zero for every class), so that an empty split is reported too."""
        self.images_per_split.setdefault(split, 0)
        self.images_per_class_per_split.setdefault(split, dict.fromkeys(self.class_names, 0))
        self.boxes_per_class_per_split.setdefault(split, dict.fromkeys(self.class_names, 0))

    def count_image(self, split: str, box_classes: Sequence[str]) -> None:
        """Count one image written to ``split`` whose label file holds one box of each of ``box_classes``."""
        self.add_split(split)
        self.images += 1
        self.images_per_split[split] += 1
        self.boxes_written += len(box_classes)
        self.empty_label_files += not box_classes
        for name in box_classes:
            self.boxes_per_class[name] = self.boxes_per_class.get(name, 0) + 1
            self.boxes_per_class_per_split[split][name] = self.boxes_per_class_per_split[split].get(name, 0) + 1
        for name in set(box_classes):
            self.images_per_class_per_split[split][name] = self.images_per_class_per_split[split].get(name, 0) + 1

    # ------------------------------------------------------------------------------------------- reading
    @property
    def clipped_boxes(self) -> int:
        return len(self.clipped)

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        counts = Counter(d.reason for d in self.dropped)
        return {reason: counts[reason] for reason in DROP_REASONS if counts[reason]}

    def to_dict(self) -> dict:
        out = asdict(self)
        out["clipped_boxes"] = self.clipped_boxes
        out["dropped_by_reason"] = self.dropped_by_reason
        return out

    def write_json(self, path: Union[str, Path]) -> None:
        write_json_atomic(path, self.to_dict(), indent=1)

    def summary(self, examples: int = 3) -> str:
        """A few lines for humans: images, boxes, clips per side, drops per reason with examples."""
        splits = ", ".join(f"{name} {n}" for name, n in self.images_per_split.items())
        few = len(self.class_names) <= 12  # name them all
        names = f": {', '.join(self.class_names)}" if few else ""
        per_class = ", ".join(f"{name} {self.boxes_per_class.get(name, 0)}" for name in self.class_names)
        clipped = ", ".join(f"{side} {self.clipped_sides[side]}" for side in SIDES)
        lines = [
            f"{self.format}: {self.source} -> {self.output}",
            f"  images  {self.images} ({splits}); {self.empty_label_files} with an empty label file",
            *_examples_line("unpaired images without an annotation", self.images_without_annotation, examples),
            *_examples_line("unpaired annotations without an image", self.annotations_without_image, examples),
            *_examples_line("left out, in no split list", self.unlisted_images, examples),
            f"  classes {len(self.class_names)} ({self.class_order}){names}",
            f"  boxes   {self.boxes_read} read, {self.boxes_written} written" + (f" ({per_class})" if few else ""),
            *self._split_lines(few),
            f"  clipped {self.clipped_boxes} boxes ({clipped})",
        ]
        lines.append(f"  dropped {len(self.dropped)} boxes" + (":" if self.dropped else ""))
        for reason, count in self.dropped_by_reason.items():
            where = [f"{d.file}#{d.index}" for d in self.dropped if d.reason == reason]
            more = f", ... {len(where) - examples} more" if len(where) > examples else ""
            lines.append(f"    {reason} {count}: {', '.join(where[:examples])}{more}")
        if self.task != "detect":
            made = ", ".join(f"{k} {v}" for k, v in self.segments.items()) or \
                ("every one a single polygon" if self.task == "segment" else "")
            lines.append(f"  labels  {self.task}: {TASK_LABELS[self.task]}" + (f" ({made})" if made else ""))
        if self.tiling:
            tiling = self.tiling
            lines.append(f"  tiles   {tiling['tiles']} of {tiling['tile']} px overlapping by {tiling['gap']} px from "
                         f"{tiling['source_images']} images (ultralytics' DOTA splitter); {tiling['objects']} objects "
                         f"in {self.boxes_written} label lines (an object in several tiles is in each), "
                         f"{tiling['lines_outside']} lines left out of a tile they leave")
        if self.kept_flagged:
            lines.append("  kept although flagged: " + ", ".join(f"{k} {v}" for k, v in self.kept_flagged.items()))
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)

    def _split_lines(self, name_classes: bool) -> list[str]:
        """The split rule, then per split the images holding each class (when the classes are few)."""
        lines = [f"  split   {self.split_rule}"] if self.split_rule else []
        if name_classes and self.images_per_class_per_split:
            width = max(len(split) for split in self.images_per_class_per_split)
            count_width = len(str(max(self.images_per_split.values(), default=0)))
            for split, counts in self.images_per_class_per_split.items():
                per_class = ", ".join(f"{name} {counts.get(name, 0)}" for name in self.class_names)
                lines.append(f"    {split:<{width}} {self.images_per_split.get(split, 0):>{count_width}} images, "
                             f"holding {per_class}")
        return lines


def _examples_line(what: str, files: Sequence[str], examples: int) -> list[str]:
    """``  <what> (N): a, b, c, ... (all in conversion_report.json)``; nothing when ``files`` is empty."""
    if not files:
        return []
    more = f", ... {len(files) - examples} more" if len(files) > examples else ""
    return [f"  {what} ({len(files)}): {', '.join(files[:examples])}{more} (all in {REPORT_NAME})"]


def check_split_name(name: str, what: str = "split") -> str:
    """``name`` if it is a plain folder name (letters, digits, ``_ - .``, not only dots), else ConversionError."""
    if not isinstance(name, str) or not re.fullmatch(r"[\w.-]+", name) or not name.strip("."):
        raise ConversionError(f"{what} {name!r}: must be a folder name (letters, digits, '_', '-', '.'), "
                              "not a path or '..'")
    return name


def check_class_names(names: Sequence[str], what: str = "classes") -> list[str]:
    """``names`` as a list if none is empty and none repeats, else ConversionError naming the first bad one."""
    names = list(names)
    shown = ",".join(names)
    if not names:
        raise ConversionError(f"{what}= is empty: give the class names in index order, e.g. cat,dog")
    for index, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ConversionError(f"{what}={shown}: class {index} has an empty name")
        if name in names[:index]:
            raise ConversionError(f"{what}={shown}: {name!r} is listed twice")
    return names


def relative_reference(reference: str, where: str) -> str:
    """A file name from an annotation (``/`` or ``\\`` separated) as a normalised relative ``/`` path.

    Raises ConversionError (``where``: the reason) when it is empty, absolute (``/x``, ``C:\\x``, ``\\\\host``) or
    climbs out of its folder with ``..``.
    """
    if not reference or not reference.strip():
        raise ConversionError(f"{where}: the file name is empty")
    if PureWindowsPath(reference).anchor:  # "/x", "\\x", "C:x", "C:\\x", "\\\\host\\share"
        raise ConversionError(f"{where}: is an absolute path; an annotation may only name a file inside the "
                              "images folder")
    normal = posixpath.normpath(reference.replace("\\", "/"))
    if normal == ".." or normal.startswith("../"):
        raise ConversionError(f"{where}: its '..' leave the images folder")
    return normal


def image_inside(folder: Path, reference: Union[str, Path], where: str) -> Path:
    """``folder / reference`` if it is a regular image file inside ``folder``, else ConversionError.

    ``reference`` is a relative path (checked by :func:`relative_reference` when it is a string). Refused, with
    ``where`` and the reason: a path that leaves ``folder`` (by ``..``, or through a symlink -- the path resolved
    must lie below ``folder`` resolved), a missing file, anything that is not a regular file (a folder, a FIFO, a
    device), and a suffix that is not an image format ultralytics reads (the label path is built from it).
    """
    path = folder / (relative_reference(reference, where) if isinstance(reference, str) else reference)
    resolved, root = path.resolve(), folder.resolve()
    if not resolved.is_relative_to(root):
        raise ConversionError(f"{where}: resolves outside the images folder {root} (to {resolved}, through a "
                              "symlink)")
    kind = irregular_file(resolved)
    if kind == "missing":
        raise ConversionError(f"{where}: {path} not found")
    if kind is not None:
        raise ConversionError(f"{where}: {path} is not a regular file ({kind})")
    if path.suffix[1:].lower() not in IMG_FORMATS:
        raise ConversionError(f"{where}: {path.name} is not an image file name (suffix not one of "
                              f"{', '.join(sorted(IMG_FORMATS))})")
    return path


def output_paths(root: Path, split: str, name: str) -> tuple[Path, Path]:
    """``(image, label)`` paths of the image ``name`` (its ``/`` path below the source images folder, with an image
    suffix) in the split ``split`` of the output ``root``: ``images/<split>/<name>`` and
    ``labels/<split>/<name>`` with the suffix ``.txt``.

    Raises ConversionError when ultralytics would look for that label elsewhere (``name`` holds a folder named
    ``images``, and ultralytics swaps the last one for ``labels``).
    """
    relative = PurePosixPath(name)
    image = root / "images" / split / relative
    label = root / "labels" / split / relative.with_suffix(".txt")
    if label_path(image) != label:
        raise ConversionError(f"{name}: a folder named 'images' inside the image path would make ultralytics look "
                              f"for its label at {label_path(image).relative_to(root)}; rename that folder")
    return image, label


def place_image(source: Path, target: Path, copy: bool) -> None:
    """Put an image into the output: an absolute symlink to the source, or a copy when ``copy``."""
    if copy:
        with writing(target):  # a copy cut short by a full disk names no file of its own
            shutil.copyfile(source, target)
        return
    try:
        os.symlink(os.path.abspath(source), target)
    except OSError as error:
        if error.errno in WRITE_FAILURES:  # a full disk: the command's one line names the file
            raise
        raise ConversionError(f"{source}: cannot symlink into the output ({error}); use copy=true") from None


@contextlib.contextmanager
def atomic_output(out: Union[str, Path], force: bool,
                  protect: Union[None, Path, Sequence[Path]] = None) -> Iterator[Path]:
    """Yield an empty temporary folder beside ``out``; rename it to ``out`` only if the block succeeds.

    A failure removes the temporary folder and any parent folders created for it, so nothing is left
    behind. An existing ``out`` is refused unless ``force``, and even then only replaced when it is empty or
    holds a previous conversion (a ``conversion_report.json``) -- never an arbitrary folder -- and never when
    it is, or contains, ``protect`` (the source dataset: one folder, or several).
    """
    out = Path(out).absolute()
    if out.exists() or out.is_symlink():
        if not force:
            raise ConversionError(f"{out}: output already exists; pass force=true to replace it")
        if not out.is_dir() or out.is_symlink():
            raise ConversionError(f"{out}: exists and is not a folder; refusing to replace it")
        if any(out.iterdir()) and not (out / REPORT_NAME).is_file():
            raise ConversionError(f"{out}: not a previous conversion output (no {REPORT_NAME}); refusing to replace it")
    for source in [protect] if isinstance(protect, (str, Path)) else protect or []:
        source = Path(source).resolve()
        if source == out.resolve() or out.resolve() in source.parents:
            raise ConversionError(f"{out}: output would replace the source {source}")
    created = [p for p in (out.parent, *out.parent.parents) if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(out.parent, f".{out.name}.", ".partial")
    try:
        yield tmp
        if out.exists():
            if not force:  # appeared while converting
                raise ConversionError(f"{out}: output already exists; pass force=true to replace it")
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".old", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise
