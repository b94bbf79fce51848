"""The one YOLO split writer of every converter (VOC, COCO, DOTA, the re-split): a dataset folder written whole.

A converter reads and checks its source, then hands :func:`write_yolo_dataset` the images of each split as
:class:`OutputImage` s (an iterable, consumed while writing, so a large source is never held in memory), the
:class:`~boxloss.convert.report.ConversionReport` it has filled so far, and the data.yaml header; the writer lays
out ultralytics' folders, counts every image into the report and writes the report last::

    <out>/images/<split>/<name>          the source image, symlinked (or copied), or written by OutputImage.make
    <out>/labels/<split>/<name>.txt      the label lines (an empty file for an image without objects)
    <out>/data.yaml                      path (absolute), one entry per split (or those given), names, extras
    <out>/conversion_report.json

Everything is written into a temporary folder beside ``out`` and renamed into place only when complete
(:func:`~boxloss.convert.report.atomic_output`): an error while writing, from the writer or from the converter's
own iterable, leaves nothing behind, and an existing ``out`` is replaced only with ``force`` and only when it is a
previous conversion.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

from ..data.yolo_format import write_data_yaml, write_labels
from .report import REPORT_NAME, ConversionReport, atomic_output, output_paths, place_image

__all__ = ["OutputImage", "write_yolo_dataset"]


@dataclass
class OutputImage:
    """One image of the output and its labels.

    ``name`` is its path below ``images/<split>/`` (``/``-separated, with an image suffix; the label file gets the
    same path with ``.txt``). The image is ``source`` linked or copied into place, or, where ``make`` is given, what
    ``make(target)`` writes at ``target`` (a tile cut from a larger image). The label file holds ``lines``, or is
    ``label_file`` copied byte for byte (an empty file where that does not exist). ``classes`` names the class of
    each object it holds, for the report's counts.
    """

    name: str
    lines: Sequence[str] = ()
    classes: Sequence[str] = ()
    source: Optional[Path] = None
    make: Optional[Callable[[Path], None]] = None
    label_file: Optional[Path] = None


def write_yolo_dataset(out: Union[str, Path], splits: Mapping[str, Iterable[OutputImage]], report: ConversionReport,
                       *, header: str, entries: Optional[Mapping[str, str]] = None,
                       extra: Optional[Mapping[str, Any]] = None, copy: bool = False, force: bool = False,
                       protect: Union[None, Path, Sequence[Path]] = None) -> ConversionReport:
    """Write the dataset folder ``out`` (module docstring) and return ``report``, completed.

    Args:
        out: the output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        splits: split name -> its images, in the order they are written (an empty split is still reported).
        report: counts every image (:meth:`ConversionReport.count_image`); written to ``conversion_report.json``.
        header: the data.yaml's comment lines.
        entries: data.yaml's split entries (e.g. ``{"train": "images/x", "val": "images/x"}`` for one split serving
            as both); default one ``images/<split>`` per split. Without a ``val`` entry the report warns.
        extra: further data.yaml keys (e.g. ``coco_category_ids``).
        copy: copy source images instead of symlinking them.
        protect: the source folders, which ``out`` may never replace.
    """
    with atomic_output(out, force, protect=protect) as tmp:
        for split, images in splits.items():
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            report.add_split(split)
            for image in images:
                target, label = output_paths(tmp, split, image.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                label.parent.mkdir(parents=True, exist_ok=True)
                if image.make is not None:
                    image.make(target)
                else:
                    place_image(image.source, target, copy)
                if image.label_file is not None and image.label_file.is_file():
                    shutil.copyfile(image.label_file, label)
                else:
                    write_labels(label, image.lines)
                report.count_image(split, list(image.classes))
        entries = dict(entries) if entries is not None else {split: f"images/{split}" for split in splits}
        if "val" not in entries:
            report.warnings.append("no val split: data.yaml has no 'val' entry, ultralytics needs one to train")
        write_data_yaml(tmp / "data.yaml", out, entries, report.class_names, header, extra)
        report.write_json(tmp / REPORT_NAME)
    return report
