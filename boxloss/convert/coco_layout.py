"""The standard COCO layout on disk -> one YOLO dataset tree holding every split, for train.py, val.py and benchmark.py.

Input (what COCO's official archives unpack to; nothing is downloaded)::

    <coco>/train2017/*.jpg
    <coco>/val2017/*.jpg
    <coco>/annotations/instances_train2017.json
    <coco>/annotations/instances_val2017.json

Each split is converted by :func:`boxloss.convert.coco.convert_coco` (same conventions: category ids sorted ->
classes 0..79 in COCO id order, ``iscrowd=1`` regions dropped from the labels and counted, boxes clipped and
reported), and the splits are put side by side into one tree::

    <out>/images/<split>/<file_name> -> <coco>/<split>/<file_name>     (or a copy)
    <out>/labels/<split>/<stem>.txt
    <out>/data.yaml                 path, train, val, names, coco_category_ids, coco_val_json
    <out>/conversion_report.json    {"splits": {<split>: <that split's report>}}

``data.yaml``'s ``train`` is the first split whose name starts with ``train``, ``val`` the first starting with
``val`` (``test`` likewise, when present); a role with no split of its own borrows the other one, with a warning
(e.g. ``splits=val2017`` gives a tree for val.py, whose ``train`` entry is val2017 too). ``coco_val_json`` is
the absolute path of the ``val`` split's instances JSON, for ``val.py coco_json=`` (which evaluates against the
official annotations, crowd regions as ignore regions); nothing reads it automatically.

The whole tree is written atomically (a temporary folder beside ``out``, renamed at the end); a missing layout
piece or a malformed JSON raises :class:`ConversionError` (one line naming the path) before anything is written.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

import yaml

from .coco import convert_coco
from ..data.yolo_format import write_data_yaml
from .report import REPORT_NAME, ConversionError, ConversionReport, atomic_output, check_split_name

__all__ = ["DEFAULT_SPLITS", "PreparedCoco", "locate_coco", "prepare_coco"]

DEFAULT_SPLITS = ("train2017", "val2017")
ROLES = ("train", "val", "test")  # data.yaml keys, filled from split names with these prefixes
PARTS = ".parts"  # per-split converter outputs inside the temporary folder, removed before the rename


@dataclass
class PreparedCoco:
    """What :func:`prepare_coco` wrote."""

    out: Path
    data_yaml: Path
    reports: dict[str, ConversionReport]  # split -> its conversion report
    roles: dict[str, str]  # data.yaml key (train, val[, test]) -> split
    val_json: Path  # instances JSON of the split data.yaml calls val (absolute)
    names: list[str]
    warnings: list[str] = field(default_factory=list)


def locate_coco(coco: Union[str, Path], splits: Sequence[str] = DEFAULT_SPLITS) -> dict[str, tuple[Path, Path]]:
    """``{split: (image folder, instances JSON)}`` of a standard COCO layout; raise naming the first missing piece."""
    coco = Path(coco)
    if not coco.is_dir():
        raise ConversionError(f"{coco}: COCO folder not found (expected <coco>/<split>/ and "
                              "<coco>/annotations/instances_<split>.json)")
    if not splits:
        raise ConversionError("no splits given (e.g. train2017,val2017)")
    if len(set(splits)) != len(splits):
        raise ConversionError(f"splits {','.join(splits)} name a split twice")
    found = {}
    for split in splits:
        check_split_name(split, "split")
        images, json_path = coco / split, coco / "annotations" / f"instances_{split}.json"
        if not images.is_dir():
            raise ConversionError(f"{images}: image folder not found (standard COCO layout: <coco>/{split}/*.jpg)")
        if not json_path.is_file():
            raise ConversionError(f"{json_path}: annotation file not found (standard COCO layout: "
                                  f"<coco>/annotations/instances_{split}.json)")
        found[split] = (images.absolute(), json_path.absolute())
    return found


def split_roles(splits: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """data.yaml key -> split, by name prefix; a missing train or val borrows the other (warned)."""
    roles = {role: next((s for s in splits if s.startswith(role)), None) for role in ROLES}
    warnings = []
    if roles["train"] is None and roles["val"] is None:
        roles["train"] = roles["val"] = splits[0]
        warnings.append(f"no train* or val* split: data.yaml's train and val both point at {splits[0]}")
    elif roles["train"] is None:
        roles["train"] = roles["val"]
        warnings.append(f"no train* split: data.yaml's train points at {roles['val']} too "
                        "(enough for val.py; do not train on it)")
    elif roles["val"] is None:
        roles["val"] = roles["train"]
        warnings.append(f"no val* split: data.yaml's val points at {roles['train']} too "
                        "(validation on training images)")
    return {role: split for role, split in roles.items() if split is not None}, warnings


def prepare_coco(coco: Union[str, Path], out: Union[str, Path], *, splits: Sequence[str] = DEFAULT_SPLITS,
                 copy: bool = False, force: bool = False,
                 log: Optional[Callable[[str], None]] = None) -> PreparedCoco:
    """Convert the splits of a standard COCO layout into one YOLO tree at ``out`` (module doc).

    Args:
        coco: the COCO folder (``train2017/``, ``val2017/``, ``annotations/``).
        out: output folder; must not exist unless ``force`` (then only a previous output is replaced).
        splits: split names; each needs ``<coco>/<split>/`` and ``<coco>/annotations/instances_<split>.json``.
        copy: copy images instead of symlinking them.
        force: replace a previous output at ``out``.
        log: called with a line when each split starts converting (the large JSON takes a while).

    Raises:
        ConversionError: a missing layout piece, malformed annotations, or splits whose categories differ;
            nothing is written.
    """
    splits = list(splits)
    sources = locate_coco(coco, splits)
    roles, warnings = split_roles(splits)
    out = Path(out).absolute()
    reports: dict[str, ConversionReport] = {}
    category_ids: Optional[list[int]] = None
    names: list[str] = []
    first_json: Optional[Path] = None
    with atomic_output(out, force, protect=Path(coco)) as tmp:
        for split, (images, json_path) in sources.items():
            if log is not None:
                log(f"converting {split}: {json_path}")
            part = tmp / PARTS / split
            report = convert_coco(images, json_path, part, split=split, copy=copy)
            ids = yaml.safe_load((part / "data.yaml").read_text())["coco_category_ids"]
            if category_ids is None:
                category_ids, names, first_json = ids, report.class_names, json_path
            elif ids != category_ids or report.class_names != names:
                raise ConversionError(f"{json_path}: its categories differ from those of {first_json}; the splits "
                                      "of one dataset must share one class list")
            for kind in ("images", "labels"):
                (tmp / kind).mkdir(exist_ok=True)
                (part / kind / split).rename(tmp / kind / split)
            report.output = str(out)
            reports[split] = report
        shutil.rmtree(tmp / PARTS)

        val_json = sources[roles["val"]][1]
        header = (f"Written by boxloss.convert.coco_layout from the COCO layout at {Path(coco).absolute()}\n"
                  f"Splits: {', '.join(splits)} ({', '.join(f'{r}={s}' for r, s in roles.items())}).\n"
                  f"Classes: COCO category ids sorted -> 0..{len(names) - 1}; coco_category_ids[i] is class i's id.\n"
                  "iscrowd=1 regions are not in the labels; val.py coco_json=<coco_val_json> evaluates against the\n"
                  f"official JSON, which ignores them. See {REPORT_NAME} for what was clipped or dropped.")
        write_data_yaml(tmp / "data.yaml", out, {role: f"images/{split}" for role, split in roles.items()}, names,
                        header, extra={"coco_category_ids": category_ids, "coco_val_json": str(val_json)})
        (tmp / REPORT_NAME).write_text(json.dumps(
            {"format": "coco-layout", "source": str(Path(coco).absolute()), "output": str(out),
             "roles": roles, "warnings": warnings,
             "splits": {split: report.to_dict() for split, report in reports.items()}}, indent=1) + "\n")
    return PreparedCoco(out, out / "data.yaml", reports, roles, val_json, names, warnings)
