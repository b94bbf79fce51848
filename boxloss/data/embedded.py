"""The embedded datasets: names a config can use as ``data:``, generated locally on first use (no download).

``shapes`` is the synthetic generator's default size (400 train / 100 val images); ``shapes-mini`` the same
generator at smoke-test size (48 / 24), for tests, CI and a first try. See :mod:`boxloss.data.synthetic`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# name -> parameters of boxloss.data.synthetic.ensure_dataset
EMBEDDED_DATASETS: dict[str, dict[str, Any]] = {"shapes": {}, "shapes-mini": {"n_train": 48, "n_val": 24}}
EMBEDDED_SPLITS = ("train", "val")  # the generator writes no test split


def is_embedded(data: Any) -> bool:
    return isinstance(data, str) and data in EMBEDDED_DATASETS


def resolve_data(data: str) -> str:
    """The data YAML path of ``data``: an embedded dataset is generated on first use, a path made absolute."""
    if is_embedded(data):
        from .synthetic import ensure_dataset

        return str(ensure_dataset(**EMBEDDED_DATASETS[data]))
    return str(Path(data).resolve())
