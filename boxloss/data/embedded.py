"""The embedded datasets: names a config can use as ``data:``, generated locally on first use (no download).

``shapes`` is the synthetic generator's default size (400 train / 100 val images); ``shapes-mini`` the same
generator at smoke-test size (48 / 24), for tests, CI and a first try. ``shapes-seg`` and ``shapes-pose`` (and their
``-mini`` sizes) are the same images labelled for instance segmentation (the visible part's polygon) and for pose
(four extreme points per object). See :mod:`boxloss.data.synthetic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

MINI = {"n_train": 48, "n_val": 24}
# name -> parameters of boxloss.data.synthetic.ensure_dataset
EMBEDDED_DATASETS: dict[str, dict[str, Any]] = {
    "shapes": {}, "shapes-mini": MINI,
    "shapes-seg": {"task": "segment"}, "shapes-seg-mini": {**MINI, "task": "segment"},
    "shapes-pose": {"task": "pose"}, "shapes-pose-mini": {**MINI, "task": "pose"},
}
EMBEDDED_SPLITS = ("train", "val")  # the generator writes no test split


def is_embedded(data: Any) -> bool:
    return isinstance(data, str) and data in EMBEDDED_DATASETS


def embedded_task(data: str) -> str:
    """The label set of an embedded dataset: detect, segment or pose."""
    return EMBEDDED_DATASETS[data].get("task", "detect")


def resolve_data(data: str) -> str:
    """The data YAML path of ``data``: an embedded dataset is generated on first use, a path made absolute."""
    if is_embedded(data):
        from .synthetic import ensure_dataset

        return str(ensure_dataset(**EMBEDDED_DATASETS[data]))
    return str(Path(data).resolve())
