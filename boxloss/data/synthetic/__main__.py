"""Write the synthetic dataset ("shapes", or its seg / pose / obb labels) into a folder, and print its statistics.

    python -m boxloss.data.synthetic out=datasets/shapes
    python -m boxloss.data.synthetic out=datasets/shapes-pose task=pose seed=1 train=200 val=50 imgsz=320

Every argument is key=value (the ``--flag`` spelling of earlier releases is refused with one line naming its key).
"""

from __future__ import annotations

import sys
import time

from ...errors import ConfigError
from ...keyvalues import format_help, parse_keyvalues, run_cli
from ...param import Param
from .dataset import DEFAULT_TRAIN, DEFAULT_VAL, TASK_NAMES, ensure_dataset, generate
from .render import DEFAULT_IMGSZ, DEFAULT_MAX_OBJECTS, DEFAULT_MIN_OBJECTS, DEFAULT_SEED
from .stats import describe, format_description

PROG = "python -m boxloss.data.synthetic"
KEYS = {
    "out": Param(None, "dataset folder to (re)write (required)", value_type=str),
    "task": Param("detect", "label set: boxes (shapes), visible-part polygons (shapes-seg), extreme points "
                  "(shapes-pose), oriented boxes of rotated shapes (shapes-obb)", choices=tuple(TASK_NAMES)),
    "seed": Param(DEFAULT_SEED, "seed of the images"),
    "train": Param(DEFAULT_TRAIN, "number of train images", lambda n: n >= 0, ">= 0"),
    "val": Param(DEFAULT_VAL, "number of val images", lambda n: n >= 0, ">= 0"),
    "imgsz": Param(DEFAULT_IMGSZ, "image size in pixels", lambda n: n >= 32, ">= 32"),
    "max_objects": Param(DEFAULT_MAX_OBJECTS, "most objects in an image", lambda n: n >= 1, ">= 1"),
    "occlusion": Param(True, "objects may overlap (later ones drawn on top)"),
    "reuse": Param(False, "keep an existing matching dataset at out="),
}
RENAMED = {"--no-occlusion": "occlusion=false"}  # old flags whose key is not their name


def _main(argv: list[str]) -> int:
    settings = parse_keyvalues(argv, KEYS, text_as_typed=True, renamed=RENAMED)
    if settings["out"] is None:
        raise ConfigError("out= is required: the dataset folder, e.g. out=datasets/shapes")
    params = dict(seed=settings["seed"], n_train=settings["train"], n_val=settings["val"], imgsz=settings["imgsz"],
                  min_objects=min(DEFAULT_MIN_OBJECTS, settings["max_objects"]), max_objects=settings["max_objects"],
                  occlusion=settings["occlusion"])
    started = time.perf_counter()
    data_yaml = ensure_dataset(settings["out"], task=settings["task"], **params) if settings["reuse"] else \
        generate(settings["out"], **params, task=settings["task"])
    print(f"wrote {data_yaml} in {time.perf_counter() - started:.1f} s")
    print(format_description(describe(data_yaml.parent)))
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, lambda: format_help(__doc__, KEYS), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
