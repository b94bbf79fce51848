"""Turn COCO as it sits on disk (the standard layout) into one YOLO dataset tree that every loss config trains on.

    python scripts/prepare_coco.py coco=/data/coco out=datasets/coco
    python scripts/prepare_coco.py coco=/data/coco out=datasets/coco-val splits=val2017   # val.py only

Reads ``<coco>/<split>/*.jpg`` and ``<coco>/annotations/instances_<split>.json`` for each split (default
train2017,val2017); nothing is downloaded. Writes ``<out>/images/<split>`` (symlinks, or copies with copy=true),
``<out>/labels/<split>``, ``<out>/data.yaml`` (train, val, the 80 names in COCO id order, coco_category_ids and
coco_val_json, the instances JSON for ``val.py coco_json=``) and ``<out>/conversion_report.json``, atomically.
Crowd regions are dropped from the labels and counted. Prints each split's conversion report and the commands to
run next. A missing layout piece, an existing out= (without force=true) or malformed annotations: one line, exit
status 2, nothing written. Conventions: boxloss/convert/coco_layout.py and boxloss/convert/coco.py. The ``--flag``
spelling of earlier releases (``--coco DIR --out DIR``) is refused with one line naming its key=value spelling.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from boxloss.convert import ConversionError
from boxloss.convert.coco_layout import DEFAULT_SPLITS, prepare_coco
from boxloss.errors import ConfigError
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli
from boxloss.param import Param

REPO = Path(__file__).resolve().parents[1]

PROG = "prepare_coco.py"
KEYS = {
    "coco": Param(None, "COCO folder: train2017/, val2017/, annotations/ (required)", value_type=str),
    "out": Param("datasets/coco", "output folder"),
    "splits": Param(",".join(DEFAULT_SPLITS), "comma-separated splits to prepare"),
    "copy": Param(False, "copy images instead of symlinking them"),
    "force": Param(False, "replace a previous output at out="),
}


def settings_of(argv: list[str]) -> dict:
    """The checked settings of a key=value command line."""
    settings = parse_keyvalues(argv, KEYS, text_as_typed=True)
    if not settings["coco"]:
        raise ConfigError("coco= is required: the COCO folder (train2017/, val2017/, annotations/), e.g. "
                          "coco=/data/coco")
    return settings


def _shown(path: Path) -> str:
    """``path`` as the user should type it from the current directory: relative below it, else absolute."""
    path, cwd = Path(os.path.abspath(path)), Path.cwd()
    try:
        return path.relative_to(cwd).as_posix()
    except ValueError:
        return str(path)


def next_commands(data_yaml: Path, val_json: Path, has_train: bool) -> list[str]:
    """The commands to run next, exact for the current directory."""
    data, coco_json = shlex.quote(_shown(data_yaml)), shlex.quote(str(val_json))
    script = {name: shlex.quote(_shown(REPO / name)) for name in ("train.py", "val.py", "scripts/benchmark.py")}
    schedule = "imgsz=640 epochs=500 batch=64"  # the YOLOv8n COCO reference schedule; batch to fit the GPU
    commands = []
    if has_train:
        commands.append(f"python {script['train.py']} cfg=eiou.yaml data={data} {schedule}   # any cfg in cfg/")
    commands.append(f"python {script['val.py']} model=runs/train/eiou/weights/best.pt data={data} "
                    f"coco_json={coco_json}")
    if has_train:
        commands.append(f"python {script['scripts/benchmark.py']} cfgs=ciou,eiou,focal_eiou seeds=0,1,2 "
                        f"data={data} {schedule}")
    return commands


def _main(argv: list[str]) -> int:
    settings = settings_of(argv)
    try:
        prepared = prepare_coco(settings["coco"], settings["out"],
                                splits=[split.strip() for split in settings["splits"].split(",")],
                                copy=settings["copy"], force=settings["force"],
                                log=lambda line: print(line, flush=True))
    except (ConversionError, OSError) as error:
        raise ConfigError(str(error) or type(error).__name__) from None
    for report in prepared.reports.values():
        print(report.summary())
    for warning in prepared.warnings:
        print(f"warning: {warning}")
    roles = ", ".join(f"{role} = {split}" for role, split in prepared.roles.items())
    print(f"wrote {prepared.data_yaml} ({len(prepared.names)} classes; {roles}; coco_val_json = {prepared.val_json})")
    has_train = prepared.roles["train"] != prepared.roles["val"]
    print("next (nothing is downloaded; epochs=500 is the YOLOv8n reference schedule, set batch to fit your GPU):")
    for command in next_commands(prepared.data_yaml, prepared.val_json, has_train):
        print(f"  {command}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, lambda: format_help(__doc__, KEYS), _main, argv)


if __name__ == "__main__":
    sys.exit(main())
