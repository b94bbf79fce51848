"""Convert a detection dataset to YOLO format, or re-split a YOLO dataset, and print what was done.

    python scripts/convert.py voc --src ../shared/datasets/bccd/BCCD --out datasets/bccd-yolo
    python scripts/convert.py voc --src VOCdevkit/VOC2007 --out datasets/voc07 --difficult drop --copy
    python scripts/convert.py voc --annotations labelimg/annots --images labelimg/images --out datasets/mine \\
        --val 0.2 --test 0.1 --seed 0
    python scripts/convert.py voc --annotations ../shared/datasets/raccoon/annotations \\
        --images ../shared/datasets/raccoon/images \\
        --split-list train=../shared/datasets/raccoon/data/train_labels.csv \\
        --split-list test=../shared/datasets/raccoon/data/test_labels.csv --val 0.125 --seed 0 \\
        --out datasets/raccoon-yolo
    python scripts/convert.py coco --images ../shared/datasets/coco128/train2017 \\
        --json ../shared/datasets/coco128/annotations/instances_train2017.json --out datasets/coco128-yolo
    python scripts/convert.py coco --images ../shared/datasets/coco128/train2017 \\
        --json ../shared/datasets/coco128/annotations/instances_train2017.json --out datasets/coco128-seg --task segment
    python scripts/convert.py split --data datasets/mine-train-only/data.yaml --val 0.2 --seed 0 --out datasets/resplit

``voc --src`` keeps the official ``ImageSets/Main`` split; ``--val/--test/--seed`` (or a folder without
``ImageSets``, or ``--annotations``) make a seeded stratified split instead, by default ``--val 0.2 --seed 0`` with
a warning; ``--split NAME`` puts everything into one split; ``--split-list SPLIT=FILE`` (repeated) takes an official
split from list files, and ``--val/--seed`` with it carve val out of the train list only. The conventions (VOC
1-based inclusive corners, class order, how XMLs are matched to images, the split algorithm, crowd regions) are
documented in ``boxloss.convert.voc``, ``boxloss.convert.split`` and ``boxloss.convert.coco``. The full report is
written to ``<out>/conversion_report.json``. Bad arguments or malformed input print one line naming the problem
(the file and object for a malformed annotation, the option for a bad option) and exit with status 2, leaving no
output folder behind.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError
from ..keyvalues import OneLineParser

PROG = "convert.py"


def _add_split_options(parser: argparse.ArgumentParser, val_help: str) -> None:
    parser.add_argument("--val", type=float, help=val_help)
    parser.add_argument("--test", type=float, help="fraction of the images for a test split (default: none)")
    parser.add_argument("--seed", type=int, help="seed of the split (default 0); the same seed, the same split")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    formats = parser.add_subparsers(dest="format", required=True, parser_class=OneLineParser)

    voc = formats.add_parser("voc", help="Pascal VOC XML (a VOC folder, or any folders of XMLs and images)")
    source = voc.add_mutually_exclusive_group(required=True)
    source.add_argument("--src", help="VOC folder (Annotations/, JPEGImages/, ImageSets/Main/), e.g. "
                                      "../shared/datasets/bccd/BCCD")
    source.add_argument("--annotations", help="folder of VOC XML files, searched recursively (e.g. LabelImg's)")
    voc.add_argument("--images", help="with --annotations: folder of the images, searched recursively "
                                      "(default: the --annotations folder)")
    voc.add_argument("--classes", help="comma-separated class names in index order "
                                       "(default: a known dataset's order, else sorted names)")
    voc.add_argument("--difficult", choices=("keep", "drop"), default="keep",
                     help="objects marked difficult (default: keep, counted in the report)")
    voc.add_argument("--split", help="put every annotation into this one split (ignores ImageSets/Main)")
    voc.add_argument("--split-list", action="append", metavar="SPLIT=FILE",
                     help="an official split from a list file (repeat per split: train, val, test): a CSV with a "
                          "'filename' column (one row per box is fine) or one image name or stem per line; with "
                          "--val/--seed, val is carved out of the train list only")
    _add_split_options(voc, "fraction of the images for val, in a seeded stratified split that replaces "
                            "ImageSets/Main (default without ImageSets: 0.2)")

    coco = formats.add_parser("coco", help="COCO instances JSON")
    coco.add_argument("--images", required=True, help="folder holding the JSON's file_names")
    coco.add_argument("--json", required=True, help="instances JSON, e.g. annotations/instances_train2017.json")
    coco.add_argument("--split", help="split name (default: from the JSON name, instances_train2017 -> train2017)")
    coco.add_argument("--task", choices=("detect", "segment"), default="detect",
                      help="labels: boxes (detect, default) or one polygon per object (segment)")

    split = formats.add_parser("split", help="re-split a YOLO dataset (e.g. one with only a train split)")
    split.add_argument("--data", required=True, help="the dataset's data YAML")
    split.add_argument("--from", dest="sources", default="train",
                       help="comma-separated splits of --data to pool and re-split (default: train)")
    _add_split_options(split, "fraction of the images for val (required)")

    for sub in (voc, coco, split):
        sub.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
        sub.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
        sub.add_argument("--force", action="store_true", help="replace a previous conversion output at --out")
    return parser


def _voc(args):
    from ..convert import convert_voc, convert_voc_folders
    from ..convert.split_lists import parse_split_list_option

    classes = [c.strip() for c in args.classes.split(",")] if args.classes is not None else None
    lists = [parse_split_list_option(text) for text in args.split_list or ()]
    options = {"classes": classes, "difficult": args.difficult, "split": args.split, "val": args.val,
               "test": args.test, "seed": args.seed, "split_lists": lists, "copy": args.copy, "force": args.force}
    if args.src is not None:
        if args.images is not None:
            raise ConfigError(f"--images goes with --annotations; with --src the images are in {args.src}/JPEGImages")
        return convert_voc(args.src, args.out, **options)
    return convert_voc_folders(args.annotations, args.images or args.annotations, args.out, **options)


def _split(args):
    from ..convert import split_dataset

    if args.val is None:
        raise ConfigError("--val is required: the fraction of the images for val, e.g. --val 0.2")
    sources = [s.strip() for s in args.sources.split(",") if s.strip()]
    return split_dataset(args.data, args.out, val=args.val, test=args.test or 0.0,
                         seed=0 if args.seed is None else args.seed, sources=sources, copy=args.copy,
                         force=args.force)


def main(argv: list[str] | None = None) -> int:
    from ..convert import ConversionError, convert_coco

    try:
        args = build_parser().parse_args(argv)
        if args.format == "voc":
            report = _voc(args)
        elif args.format == "split":
            report = _split(args)
        else:
            report = convert_coco(args.images, args.json, args.out, split=args.split, copy=args.copy,
                                  force=args.force, task=args.task)
    except (ConfigError, ConversionError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
