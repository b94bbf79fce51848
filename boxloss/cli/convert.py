"""Convert a detection dataset to YOLO format and print what was clipped or dropped.

    python scripts/convert.py voc --src ../shared/datasets/bccd/BCCD --out datasets/bccd-yolo
    python scripts/convert.py voc --src VOCdevkit/VOC2007 --out datasets/voc07 --difficult drop --copy
    python scripts/convert.py coco --images ../shared/datasets/coco128/train2017 \\
        --json ../shared/datasets/coco128/annotations/instances_train2017.json --out datasets/coco128-yolo

The conventions (VOC 1-based inclusive corners, class order, crowd regions, splits) are documented in
``boxloss.convert.voc`` and ``boxloss.convert.coco``. The full report is written to
``<out>/conversion_report.json``. Bad arguments or malformed input print one line naming the problem (the file
and object for a malformed annotation) and exit with status 2, leaving no output folder behind.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import ConfigError

PROG = "convert.py"


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error form: ``<prog>: error: <message>`` on one line, exit status 2."""

    def error(self, message: str):
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog=PROG, description=__doc__.split("\n\n")[0])
    formats = parser.add_subparsers(dest="format", required=True, parser_class=OneLineParser)

    voc = formats.add_parser("voc", help="Pascal VOC XML (Annotations/, JPEGImages/, ImageSets/Main/)")
    voc.add_argument("--src", required=True, help="VOC folder, e.g. ../shared/datasets/bccd/BCCD")
    voc.add_argument("--classes", help="comma-separated class names in index order "
                                       "(default: a known dataset's order, else sorted names)")
    voc.add_argument("--difficult", choices=("keep", "drop"), default="keep",
                     help="objects marked difficult (default: keep, counted in the report)")
    voc.add_argument("--split", help="ignore ImageSets/Main and put every annotation into this one split")

    coco = formats.add_parser("coco", help="COCO instances JSON")
    coco.add_argument("--images", required=True, help="folder holding the JSON's file_names")
    coco.add_argument("--json", required=True, help="instances JSON, e.g. annotations/instances_train2017.json")
    coco.add_argument("--split", help="split name (default: from the JSON name, instances_train2017 -> train2017)")

    for sub in (voc, coco):
        sub.add_argument("--out", required=True, help="output folder (must not exist unless --force)")
        sub.add_argument("--copy", action="store_true", help="copy images instead of symlinking them")
        sub.add_argument("--force", action="store_true", help="replace a previous conversion output at --out")
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..convert import ConversionError, convert_coco, convert_voc

    try:
        args = build_parser().parse_args(argv)
        if args.format == "voc":
            classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
            report = convert_voc(args.src, args.out, classes=classes, difficult=args.difficult, split=args.split,
                                 copy=args.copy, force=args.force)
        else:
            report = convert_coco(args.images, args.json, args.out, split=args.split, copy=args.copy,
                                  force=args.force)
    except (ConfigError, ConversionError) as error:
        print(f"{PROG}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
