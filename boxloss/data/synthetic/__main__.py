"""``python -m boxloss.data.synthetic --out DIR [--task detect|segment|pose|obb --seed S --train N --val N --imgsz S]``:
write and describe."""

from __future__ import annotations

import sys
import time

from ...keyvalues import OneLineParser, run_cli

from . import __doc__ as package_doc
from .dataset import DEFAULT_TRAIN, DEFAULT_VAL, TASK_NAMES, ensure_dataset, generate
from .render import DEFAULT_IMGSZ, DEFAULT_MAX_OBJECTS, DEFAULT_MIN_OBJECTS, DEFAULT_SEED
from .stats import describe, format_description


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="python -m boxloss.data.synthetic", description=package_doc.split("\n")[0])
    parser.add_argument("--out", required=True, help="dataset directory to (re)write")
    parser.add_argument("--task", choices=tuple(TASK_NAMES), default="detect",
                        help="label set: boxes (shapes), visible-part polygons (shapes-seg), extreme points "
                             "(shapes-pose), oriented boxes of rotated shapes (shapes-obb)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--train", type=int, default=DEFAULT_TRAIN, help="number of train images")
    parser.add_argument("--val", type=int, default=DEFAULT_VAL, help="number of val images")
    parser.add_argument("--imgsz", type=int, default=DEFAULT_IMGSZ)
    parser.add_argument("--max-objects", type=int, default=DEFAULT_MAX_OBJECTS)
    parser.add_argument("--no-occlusion", action="store_true", help="objects never overlap")
    parser.add_argument("--reuse", action="store_true", help="keep an existing matching dataset")
    args = parser.parse_args(argv)
    params = dict(seed=args.seed, n_train=args.train, n_val=args.val, imgsz=args.imgsz,
                  min_objects=min(DEFAULT_MIN_OBJECTS, args.max_objects), max_objects=args.max_objects,
                  occlusion=not args.no_occlusion)
    started = time.perf_counter()
    data_yaml = ensure_dataset(args.out, task=args.task, **params) if args.reuse else \
        generate(args.out, **params, task=args.task)
    print(f"wrote {data_yaml} in {time.perf_counter() - started:.1f} s")
    print(format_description(describe(data_yaml.parent)))
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("python -m boxloss.data.synthetic", None, main))
