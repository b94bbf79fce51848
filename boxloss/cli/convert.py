"""Convert a detection dataset to YOLO format, or re-split a YOLO dataset, and print what was done.

    python scripts/convert.py voc src=../shared/datasets/bccd/BCCD out=datasets/bccd-yolo
    python scripts/convert.py voc src=VOCdevkit/VOC2007 out=datasets/voc07 difficult=drop copy=true
    python scripts/convert.py voc annotations=labelimg/annots images=labelimg/images out=datasets/mine \\
        val=0.2 test=0.1 seed=0
    python scripts/convert.py voc annotations=../shared/datasets/raccoon/annotations \\
        images=../shared/datasets/raccoon/images \\
        train_list=../shared/datasets/raccoon/data/train_labels.csv \\
        test_list=../shared/datasets/raccoon/data/test_labels.csv val=0.125 seed=0 out=datasets/raccoon-yolo
    python scripts/convert.py coco images=../shared/datasets/coco128/train2017 \\
        json=../shared/datasets/coco128/annotations/instances_train2017.json out=datasets/coco128-yolo
    python scripts/convert.py coco images=../shared/datasets/coco128/train2017 \\
        json=../shared/datasets/coco128/annotations/instances_train2017.json out=datasets/coco128-seg task=segment
    python scripts/convert.py coco images=../shared/datasets/coco128/train2017 \\
        json=../shared/datasets/coco128/annotations/instances_train2017.json out=datasets/coco128-obb task=obb
    python scripts/convert.py dota src=../shared/datasets/dota-example out=datasets/dota-example-yolo
    python scripts/convert.py dota src=DOTA out=datasets/dota-1024 tile=1024 gap=200
    python scripts/convert.py split data=datasets/mine-train-only/data.yaml val=0.2 seed=0 out=datasets/resplit

The format comes first (voc, coco, dota or split), then key=value arguments; ``convert.py voc --help`` lists that
format's keys. ``voc src=`` keeps the official ``ImageSets/Main`` split; ``val=/test=/seed=`` (or a folder without
``ImageSets``, or ``annotations=``) make a seeded stratified split instead, by default ``val=0.2 seed=0`` with a
warning; ``split=NAME`` puts everything into one split; ``train_list=FILE`` (and ``val_list=``, ``test_list=``) take
an official split from list files, and ``val=/seed=`` with them carve val out of the train list only. The
conventions (VOC 1-based inclusive corners, class order, how XMLs are matched to images, the split algorithm, crowd
regions, DOTA's corners and difficult flags, tiling) are documented in ``boxloss.convert.voc``,
``boxloss.convert.split``, ``boxloss.convert.coco`` and ``boxloss.convert.dota``. The full report is written to
``<out>/conversion_report.json``. Bad arguments or malformed input print one line naming the problem (the file and
object for a malformed annotation, the key for a bad value) and exit with status 2, leaving no output folder behind.
The ``--flag`` spelling of earlier releases (``voc --src DIR --out DIR``, ``--split-list train=FILE``) is refused
with one line naming its key=value spelling.
"""

from __future__ import annotations

import sys

from ..errors import ConfigError
from ..keyvalues import HELP_FLAGS, flag_error, format_help, parse_keyvalues, raw_keyvalues, run_cli
from ..param import Param

PROG = "convert.py"
USAGE = "convert.py voc|coco|dota|split key=value ... (convert.py voc --help lists the keys of voc)"


def _path(doc: str) -> Param:
    return Param(None, doc, value_type=str)


OUTPUT_KEYS = {
    "out": _path("output folder (required; must not exist unless force=true)"),
    "copy": Param(False, "copy images instead of symlinking them"),
    "force": Param(False, "replace a previous conversion output at out="),
}
LIST_KEYS = ("train_list", "val_list", "test_list")
VOC_KEYS = {
    "src": _path("VOC folder (Annotations/, JPEGImages/, ImageSets/Main/), e.g. ../shared/datasets/bccd/BCCD"),
    "annotations": _path("instead of src=: a folder of VOC XML files, searched recursively (e.g. LabelImg's)"),
    "images": _path("with annotations=: the folder of the images, searched recursively (default: annotations=)"),
    "classes": Param(None, "comma-separated class names in index order (default: a known dataset's order, else "
                     "sorted names)", value_type=str),
    "difficult": Param("keep", "objects marked difficult: keep (counted in the report) or drop",
                       choices=("keep", "drop")),
    "split": Param(None, "put every annotation into this one split (ignores ImageSets/Main)", value_type=str),
    **{key: _path(f"an official {key[:-5]} split from a list file: a CSV with a 'filename' column (one row per box "
                  "is fine) or one image name or stem per line") for key in LIST_KEYS},
    "val": Param(None, "fraction of the images for val, in a seeded stratified split that replaces ImageSets/Main "
                 "(default without ImageSets: 0.2); with train_list=, carved out of the train list only",
                 value_type=float),
    "test": Param(None, "fraction of the images for a test split (default: none)", value_type=float),
    "seed": Param(None, "seed of the split (default 0); the same seed, the same split", value_type=int),
    **OUTPUT_KEYS,
}
COCO_KEYS = {
    "images": _path("folder holding the JSON's file_names (required)"),
    "json": _path("instances JSON (required), e.g. annotations/instances_train2017.json"),
    "split": Param(None, "split name (default: from the JSON name, instances_train2017 -> train2017)",
                   value_type=str),
    "task": Param("detect", "labels: boxes (detect), one polygon per object (segment), or the minimum-area "
                  "rectangle of each object's polygon (obb)", choices=("detect", "segment", "obb")),
    **OUTPUT_KEYS,
}
DOTA_KEYS = {
    "src": _path("DOTA folder of one split (images/, labelTxt/), or a root of train/, val/, test/ such folders"),
    "images": _path("instead of src=: the folder of the images"),
    "labels": _path("with images=: the folder of DOTA's .txt label files"),
    "split": Param(None, "name of the one split (default train; data.yaml's val points at it too)", value_type=str),
    "classes": Param(None, "comma-separated class names in index order (default: DOTA's order, else sorted names)",
                     value_type=str),
    "difficult": Param("keep", "objects flagged difficult: keep (written and counted; ultralytics' DOTA labels keep "
                       "them) or drop", choices=("keep", "drop")),
    "tile": Param(0, "cut every image into tiles of this many pixels with ultralytics' DOTA splitter (0: whole "
                  "images)", lambda value: value >= 0, ">= 0"),
    "gap": Param(200, "overlap of neighbouring tiles in pixels (with tile=)", lambda value: value >= 0, ">= 0"),
    **OUTPUT_KEYS,
}
SPLIT_KEYS = {
    "data": _path("the dataset's data YAML (required)"),
    "from": Param("train", "comma-separated splits of data= to pool and re-split"),
    "val": Param(None, "fraction of the images for val (required)", value_type=float),
    "test": Param(0.0, "fraction of the images for a test split (0: none)"),
    "seed": Param(0, "seed of the split; the same seed, the same split"),
    **OUTPUT_KEYS,
}
FORMATS = {"voc": VOC_KEYS, "coco": COCO_KEYS, "dota": DOTA_KEYS, "split": SPLIT_KEYS}
RENAMED = {"--split-list": "train_list=FILE (or val_list=, test_list=)"}  # old flags whose key is not their name
TITLES = {"voc": "voc keys (Pascal VOC XML: a VOC folder, or any folders of XMLs and images)",
          "coco": "coco keys (COCO instances JSON)",
          "dota": "dota keys (DOTA's text labels: oriented boxes, written as YOLO-OBB)",
          "split": "split keys (re-split a YOLO dataset, e.g. one with only a train split)"}


def help_text(fmt: str | None = None) -> str:
    """The docstring and the keys of ``fmt`` (None: of every format)."""
    sections = [format_help("" if i else __doc__, FORMATS[name], TITLES[name]).strip()
                for i, name in enumerate([fmt] if fmt else FORMATS)]
    return "\n\n".join(sections)


def _voc(settings: dict):
    from ..convert import convert_voc, convert_voc_folders

    if settings["src"] is not None and settings["annotations"] is not None:
        raise ConfigError("src= and annotations= are two sources: give a VOC folder (src=) or a folder of XMLs "
                          "(annotations=)")
    if settings["src"] is None and settings["annotations"] is None:
        raise ConfigError("a source is required: src=<VOC folder> or annotations=<folder of XMLs> [images=<folder>]")
    out = _out(settings)
    options = {key: settings[key] for key in ("difficult", "split", "val", "test", "seed", "split_lists", "copy",
                                              "force")}
    options["classes"] = [c.strip() for c in settings["classes"].split(",")] if settings["classes"] else None
    if settings["src"] is not None:
        if settings["images"] is not None:
            raise ConfigError(f"images= goes with annotations=; with src= the images are in "
                              f"{settings['src']}/JPEGImages")
        return convert_voc(settings["src"], out, **options)
    return convert_voc_folders(settings["annotations"], settings["images"] or settings["annotations"], out,
                               **options)


def _coco(settings: dict):
    from ..convert import convert_coco

    for key in ("images", "json"):
        if settings[key] is None:
            raise ConfigError(f"{key}= is required (coco images=<folder> json=<instances JSON> out=<folder>)")
    return convert_coco(settings["images"], settings["json"], _out(settings), split=settings["split"],
                        copy=settings["copy"], force=settings["force"], task=settings["task"])


def _dota(settings: dict):
    from ..convert import convert_dota

    classes = [c.strip() for c in settings["classes"].split(",")] if settings["classes"] else None
    return convert_dota(_out(settings), src=settings["src"], images=settings["images"], labels=settings["labels"],
                        split=settings["split"], classes=classes, difficult=settings["difficult"],
                        tile=settings["tile"], gap=settings["gap"], copy=settings["copy"], force=settings["force"])


def _split(settings: dict):
    from ..convert import split_dataset

    if settings["data"] is None:
        raise ConfigError("data= is required: the data YAML of the dataset to re-split")
    if settings["val"] is None:
        raise ConfigError("val= is required: the fraction of the images for val, e.g. val=0.2")
    sources = [s.strip() for s in settings["from"].split(",") if s.strip()]
    return split_dataset(settings["data"], _out(settings), val=settings["val"], test=settings["test"],
                         seed=settings["seed"], sources=sources, copy=settings["copy"], force=settings["force"])


def _out(settings: dict) -> str:
    if settings["out"] is None:
        raise ConfigError("out= is required: the output folder, e.g. out=datasets/mine")
    return settings["out"]


CONVERTERS = {"voc": _voc, "coco": _coco, "dota": _dota, "split": _split}


def _main(argv: list[str]) -> int:
    from ..convert import ConversionError

    if any(arg in HELP_FLAGS for arg in argv):
        print(help_text(argv[0] if argv and argv[0] in FORMATS else None))
        return 0
    flag = next((arg for arg in argv if arg.startswith("--")), None)
    if flag is not None:  # the --flag grammar of earlier releases, whichever format it names
        raise flag_error(flag, {key for keys in FORMATS.values() for key in keys}, RENAMED)
    if not argv:
        raise ConfigError(f"nothing to do; usage: {USAGE}")
    fmt, args = argv[0], argv[1:]
    if fmt not in FORMATS:
        problem = f"{fmt!r}: the format comes first" if "=" in fmt else f"unknown format {fmt!r}"
        raise ConfigError(f"{problem}: {', '.join(FORMATS)}; usage: {USAGE}")
    settings = parse_keyvalues(args, FORMATS[fmt], text_as_typed=True)
    # (split, file) in the order given, as the report lists them
    settings["split_lists"] = [(key[:-len("_list")], settings[key]) for key in raw_keyvalues(args) if key in LIST_KEYS]
    try:
        report = CONVERTERS[fmt](settings)
    except ConversionError as error:
        raise ConfigError(str(error)) from None
    print(report.summary())
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, None, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
