"""Turn COCO as it sits on disk (the standard layout) into one YOLO dataset tree that every loss config trains on.

    python scripts/prepare_coco.py --coco /data/coco --out datasets/coco
    python scripts/prepare_coco.py --coco /data/coco --out datasets/coco-val --splits val2017   # val.py only

Reads ``<coco>/<split>/*.jpg`` and ``<coco>/annotations/instances_<split>.json`` for each split (default
train2017,val2017); nothing is downloaded. Writes ``<out>/images/<split>`` (symlinks, or copies with --copy),
``<out>/labels/<split>``, ``<out>/data.yaml`` (train, val, the 80 names in COCO id order, coco_category_ids and
coco_val_json, the instances JSON for ``val.py coco_json=``) and ``<out>/conversion_report.json``, atomically.
Crowd regions are dropped from the labels and counted. Prints each split's conversion report and the commands to
run next. A missing layout piece, an existing --out (without --force) or malformed annotations: one line, exit
status 2, nothing written. Conventions: boxloss/convert/coco_layout.py and boxloss/convert/coco.py.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from boxloss.convert import ConversionError
from boxloss.convert.coco_layout import DEFAULT_SPLITS, prepare_coco
from boxloss.errors import ConfigError
from boxloss.keyvalues import OneLineParser

REPO = Path(__file__).resolve().parents[1]

PROG = "prepare_coco.py"


def parse_args(argv=None) -> argparse.Namespace:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--coco", required=True, help="COCO folder: train2017/, val2017/, annotations/")
    parser.add_argument("--out", default="datasets/coco", help="output folder (default: datasets/coco)")
    parser.add_argument("--splits", default=",".join(DEFAULT_SPLITS),
                        help=f"comma-separated splits to prepare (default: {','.join(DEFAULT_SPLITS)})")
    parser.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
    parser.add_argument("--force", action="store_true", help="replace a previous output at --out")
    return parser.parse_args(argv)


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


def main(argv=None) -> int:
    try:
        args = parse_args(argv)
        splits = [s.strip() for s in args.splits.split(",")]
        prepared = prepare_coco(args.coco, args.out, splits=splits, copy=args.copy, force=args.force,
                                log=lambda line: print(line, flush=True))
    except (ConfigError, ConversionError, OSError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
