"""The embedded datasets: names a config can use as ``data:``, generated locally on first use (no download).

A config's ``data:`` is an embedded dataset's name or a data YAML path; :func:`check_data` and :func:`resolve_data`
take either, so the YOLO-format layer below (:mod:`.yolo_format`) only ever sees paths. :class:`DataChecks` is
:func:`check_data` with a memory, for a process that resolves many experiments on one dataset (a benchmark plan).

``shapes`` is the synthetic generator's default size (400 train / 100 val images); ``shapes-mini`` the same
generator at smoke-test size (48 / 24), for tests, CI and a first try. ``shapes-seg`` and ``shapes-pose`` (and their
``-mini`` sizes) are the same images labelled for instance segmentation (the visible part's polygon) and for pose
(four extreme points per object); ``shapes-obb`` (and ``-mini``) draws the same shapes turned to any angle, labelled
with each one's exact oriented rectangle. See :mod:`boxloss.data.synthetic`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from ..errors import ConfigError
from .yolo_format import TASK_KINDS, DataSpec, check_dataset, check_splits_and_task

MINI = {"n_train": 48, "n_val": 24}
# name -> parameters of boxloss.data.synthetic.ensure_dataset
EMBEDDED_DATASETS: dict[str, dict[str, Any]] = {
    "shapes": {}, "shapes-mini": MINI,
    "shapes-seg": {"task": "segment"}, "shapes-seg-mini": {**MINI, "task": "segment"},
    "shapes-pose": {"task": "pose"}, "shapes-pose-mini": {**MINI, "task": "pose"},
    "shapes-obb": {"task": "obb"}, "shapes-obb-mini": {**MINI, "task": "obb"},
}
# task -> (the name suffix of its embedded dataset, what its labels hold), for the refusal that points to it
TASK_DATASETS = {"segment": ("-seg", "polygon labels"), "pose": ("-pose", "keypoint labels"),
                 "obb": ("-obb", "oriented-box labels")}
EMBEDDED_SPLITS = ("train", "val")  # the generator writes no test split


def is_embedded(data: Any) -> bool:
    return isinstance(data, str) and data in EMBEDDED_DATASETS


def embedded_task(data: str) -> str:
    """The label set of an embedded dataset: detect, segment, pose or obb."""
    return EMBEDDED_DATASETS[data].get("task", "detect")


def resolve_data(data: str) -> str:
    """The data YAML path of ``data``: an embedded dataset is generated on first use, a path made absolute."""
    if is_embedded(data):
        from .synthetic import ensure_dataset

        return str(ensure_dataset(**EMBEDDED_DATASETS[data]))
    return str(Path(data).resolve())


def check_data(data: Any, splits: Sequence[str] = ("train", "val"), *,
               datasets_dir: str | os.PathLike | None = None, labels: bool = True,
               task: str = "detect") -> DataSpec | None:
    """A config's ``data:`` checked before anything is written: ConfigError with one line.

    An embedded dataset is generated on first use, so only its split names and the task are checked and None is
    returned; a data YAML path gets :func:`~boxloss.data.yolo_format.check_dataset` (same arguments) and its
    :class:`~boxloss.data.yolo_format.DataSpec` is returned.
    """
    check_splits_and_task(splits, task)
    if is_embedded(data):
        for split in splits:
            if split not in EMBEDDED_SPLITS:
                raise ConfigError(f"the embedded dataset {data!r} has no {split!r} split (it has: "
                                  f"{', '.join(EMBEDDED_SPLITS)})")
        _check_embedded_task(data, task)
        return None
    embedded = ", ".join(EMBEDDED_DATASETS)
    if not isinstance(data, (str, os.PathLike)) or not str(data):
        raise ConfigError(f"data={data!r} must be a dataset YAML path or one of {embedded}")
    if not Path(data).is_file():
        raise ConfigError(f"dataset {str(data)!r} not found (boxloss never downloads datasets; embedded: {embedded})")
    return check_dataset(data, splits, datasets_dir=datasets_dir, labels=labels, task=task)


class DataChecks:
    """:func:`check_data` (same arguments) with a memory: each split of a dataset is checked once per task, so a
    benchmark plan whose configurations all train on one dataset reads every label file once, not once per
    configuration (minutes on COCO). A task checks its own way (a segmentation model needs polygons), so a split
    checked for one task is checked again for another; a check that fails is not remembered."""

    def __init__(self):
        self._checked: dict[tuple, tuple[set[str], DataSpec | None]] = {}

    def __call__(self, data: Any, splits: Sequence[str] = ("train", "val"), *,
                 datasets_dir: str | os.PathLike | None = None, labels: bool = True,
                 task: str = "detect") -> DataSpec | None:
        key = (str(data), str(datasets_dir), labels, task)
        checked, spec = self._checked.get(key, (set(), None))
        missing = [split for split in splits if split not in checked]
        if missing or key not in self._checked:
            spec = check_data(data, missing, datasets_dir=datasets_dir, labels=labels, task=task)
            self._checked[key] = (checked | set(missing), spec)
        return spec


def _check_embedded_task(data: str, task: str) -> None:
    """A segmentation, pose or oriented-box model on an embedded dataset of another label set: say which one to
    use."""
    have = embedded_task(data)
    if task == "detect" or have == task:
        return
    suffix, needs = TASK_DATASETS[task]
    base = data
    for other, _ in TASK_DATASETS.values():
        base = base.replace(other, "")
    wanted = base.replace("shapes", f"shapes{suffix}", 1)
    model = TASK_KINDS[task]
    raise ConfigError(f"{'an' if model[0] in 'aeiou' else 'a'} {model} model needs {needs}: data={data} has "
                      f"{TASK_KINDS[have]} labels (use data={wanted})")
