"""COCO ground truth from a YOLO-format dataset split, from an official COCO instances JSON, and back.

YOLO side (the conventions ultralytics' data loader uses, so the images and labels are the ones it validates on):

- the split's images come from the data YAML's ``val``/``test`` entry (a folder searched recursively, a ``.txt``
  list whose ``./`` lines are relative to the list, or a list of those), filtered by extension and sorted;
- each image's label file replaces the last ``/images/`` of its path by ``/labels/`` and the extension by ``.txt``;
  one ``cls cx cy w h`` line per object, normalised to the image; polygon lines (``cls x1 y1 x2 y2 ...``) become
  their bounding box; exact duplicate lines are dropped, as ultralytics does;
- image sizes are the ORIGINAL ones, read from the file header (EXIF rotation applied, as ultralytics does).

COCO side: boxes are top-left ``[x, y, w, h]`` in pixels, ``area = w * h``, ``iscrowd = 0``; image ids follow
the sorted file order from 1; category id = class index + 1, with the YAML's names. ``info.image_root`` records
the folder that ``file_name`` is relative to, so predictions can be mapped to image ids by path
(:func:`image_ids_by_path`).

An official COCO JSON is kept as it is (its image ids, 91-id categories, ``area`` from the segmentation and
``iscrowd`` regions, which COCO evaluation ignores); :func:`gt_from_coco_json` only restricts it to the images
evaluated. Pure Python + numpy + Pillow (image headers); no ultralytics import.
"""

from __future__ import annotations

import copy
import glob
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import yaml

# ultralytics.data.utils.IMG_FORMATS (8.4.190), copied so this module stays free of ultralytics.
IMG_FORMATS = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff",
                         "webp"})
LABEL_DECIMALS = 6  # digits of the YOLO label lines written by coco_to_yolo_lines (as the embedded dataset uses)


# ---------------------------------------------------------------------------------------------------------------
# YOLO dataset layout
# ---------------------------------------------------------------------------------------------------------------
def read_data_yaml(data_yaml: str | os.PathLike) -> tuple[dict[str, Any], Path]:
    """The data YAML's content and its dataset root (``path`` key, else the YAML's folder).

    A relative ``path`` is taken relative to the working directory when it exists there (as ultralytics does),
    else relative to the YAML's folder.
    """
    data_yaml = Path(data_yaml)
    spec = yaml.safe_load(data_yaml.read_text())
    if not isinstance(spec, dict):
        raise ValueError(f"{data_yaml}: not a dataset YAML (expected a mapping)")
    root = Path(spec.get("path") or data_yaml.parent)
    if not root.is_absolute():
        root = root.resolve() if root.exists() else (data_yaml.parent / root).resolve()
    return spec, root


def class_names(spec: Mapping[str, Any]) -> list[str]:
    """Class names of a data YAML: ``names`` as a list or as ``{index: name}``."""
    names = spec.get("names")
    if isinstance(names, dict):
        indices = sorted(int(k) for k in names)
        if indices != list(range(len(indices))):
            raise ValueError(f"dataset names must be indexed 0..n-1, got {indices}")
        return [str(names[k] if k in names else names[str(k)]) for k in indices]
    if isinstance(names, (list, tuple)):
        return [str(n) for n in names]
    if "nc" in spec:
        return [str(i) for i in range(int(spec["nc"]))]
    raise ValueError("dataset YAML has neither 'names' nor 'nc'")


def split_images(data_yaml: str | os.PathLike, split: str = "val") -> list[Path]:
    """Absolute paths of a split's images, in ultralytics' order (sorted path strings)."""
    spec, root = read_data_yaml(data_yaml)
    entries = spec.get(split)
    if not entries:
        raise ValueError(f"dataset {str(data_yaml)!r} has no {split!r} entry")
    files: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        source = (root / str(entry)).resolve()
        if not source.exists() and str(entry).startswith("../"):
            source = (root / str(entry)[3:]).resolve()
        if source.is_dir():
            files += glob.glob(str(Path(glob.escape(str(source))) / "**" / "*.*"), recursive=True)
        elif source.is_file():
            parent = str(source.parent) + os.sep
            lines = source.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines if x.strip()]
        else:
            raise ValueError(f"dataset {str(data_yaml)!r}: {split} images {str(source)!r} not found")
    images = sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not images:
        raise ValueError(f"dataset {str(data_yaml)!r}: no images in its {split!r} entry")
    return [Path(os.path.abspath(f)) for f in images]  # files not resolved: labels sit next to the listed path


def label_path(image_path: str | os.PathLike) -> Path:
    """ultralytics' ``img2label_paths``: the last ``/images/`` becomes ``/labels/``, the extension ``.txt``."""
    images_dir, labels_dir = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels_dir.join(os.fspath(image_path).rsplit(images_dir, 1)).rsplit(".", 1)[0] + ".txt")


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, with EXIF rotation (orientations 5-8 swap the sides)."""
    from PIL import Image

    with Image.open(path) as image:
        width, height = image.size
        try:
            if image.getexif().get(274) in {5, 6, 7, 8}:
                width, height = height, width
        except Exception:  # no or unreadable EXIF: header size as is
            pass
    return width, height


COORD_TOLERANCE = 1e-6  # normalised coordinates a hair outside [0, 1] are rounding, not errors


def read_yolo_labels(path: str | os.PathLike) -> list[tuple[int, float, float, float, float]]:
    """``(cls, cx, cy, w, h)`` rows of a YOLO label file (normalised); a missing file is an image without objects.

    Polygon rows become their bounding box; exact duplicate rows are dropped (first kept), as ultralytics does.
    """
    path = Path(path)
    if not path.is_file():
        return []
    rows, seen = [], set()
    for line_number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields]
        except ValueError:
            raise ValueError(f"{path}:{line_number}: not numbers: {line!r}") from None
        cls = values[0]
        if cls != int(cls) or cls < 0:
            raise ValueError(f"{path}:{line_number}: class {fields[0]!r} is not a non-negative integer")
        if len(values) == 5:
            cx, cy, w, h = values[1:]
        elif len(values) >= 7 and len(values) % 2 == 1:  # polygon: cls x1 y1 x2 y2 ...
            xs, ys = values[1::2], values[2::2]
            x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
            cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
        else:
            raise ValueError(f"{path}:{line_number}: expected 'cls cx cy w h' or a polygon, got {len(values)} numbers")
        if not all(-COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE for v in (cx, cy, w, h)):
            raise ValueError(f"{path}:{line_number}: coordinates must be normalised to [0, 1], got {line.strip()!r}")
        row = (int(cls), cx, cy, w, h)
        if row not in seen:
            seen.add(row)
            rows.append(row)
    return rows


# ---------------------------------------------------------------------------------------------------------------
# YOLO -> COCO -> YOLO
# ---------------------------------------------------------------------------------------------------------------
def yolo_to_coco(image_files: Sequence[str | os.PathLike], names: Sequence[str],
                 label_files: Sequence[str | os.PathLike] | None = None) -> dict[str, Any]:
    """COCO ground truth for ``image_files`` (ids 1.. in the given order) and their YOLO labels.

    Args:
        image_files: image paths, in the order that defines the image ids.
        names: class names; class ``i`` becomes category id ``i + 1``.
        label_files: one label path per image (default: ultralytics' images -> labels convention).

    Returns:
        A COCO dict: ``info.image_root`` (the folder ``file_name`` is relative to), ``images`` with the original
        ``width``/``height``, ``annotations`` (pixel top-left xywh, ``area = w * h``, ``iscrowd = 0``) and
        ``categories``.
    """
    image_files = [Path(os.path.abspath(f)) for f in image_files]
    label_files = [Path(f) for f in label_files] if label_files is not None else [label_path(f) for f in image_files]
    if len(label_files) != len(image_files):
        raise ValueError(f"{len(image_files)} images but {len(label_files)} label files")
    root = Path(os.path.commonpath([str(f.parent) for f in image_files])) if image_files else Path()
    images, annotations = [], []
    for image_id, (image_file, labels) in enumerate(zip(image_files, label_files), 1):
        width, height = image_size(image_file)
        images.append({"id": image_id, "file_name": image_file.relative_to(root).as_posix(),
                       "width": width, "height": height})
        for cls, cx, cy, w, h in read_yolo_labels(labels):
            if cls >= len(names):
                raise ValueError(f"{labels}: class {cls} but the dataset has {len(names)} classes")
            box = [(cx - w / 2) * width, (cy - h / 2) * height, w * width, h * height]
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": cls + 1,
                                "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
    categories = [{"id": i + 1, "name": str(name)} for i, name in enumerate(names)]
    return {"info": {"description": "boxloss: COCO ground truth from a YOLO dataset", "image_root": str(root)},
            "images": images, "annotations": annotations, "categories": categories}


def gt_from_yolo_dataset(data_yaml: str | os.PathLike, split: str = "val") -> dict[str, Any]:
    """COCO ground truth of a YOLO dataset's split (see :func:`yolo_to_coco`)."""
    spec, _ = read_data_yaml(data_yaml)
    return yolo_to_coco(split_images(data_yaml, split), class_names(spec))


def coco_to_yolo_lines(gt: Mapping[str, Any], *, include_crowd: bool = False,
                       category_to_class: Mapping[int, int] | None = None) -> dict[str, list[str]]:
    """YOLO label lines per image ``file_name``: the inverse of :func:`yolo_to_coco`.

    Class index = position of the category id among the sorted category ids (``id - 1`` for ground truth
    written by :func:`yolo_to_coco`; COCO's 91-id scheme maps to the usual 80 indices) unless
    ``category_to_class`` is given. Crowd regions have no YOLO equivalent and are left out unless asked.
    Lines are ``cls cx cy w h`` with ``LABEL_DECIMALS`` decimals; images without objects map to ``[]``.
    """
    if category_to_class is None:
        category_to_class = {c["id"]: i for i, c in enumerate(sorted(gt["categories"], key=lambda c: c["id"]))}
    images = {image["id"]: image for image in gt["images"]}
    lines: dict[str, list[str]] = {image["file_name"]: [] for image in gt["images"]}
    for ann in gt["annotations"]:
        if ann.get("iscrowd", 0) and not include_crowd:
            continue
        image = images[ann["image_id"]]
        width, height = image["width"], image["height"]
        x, y, w, h = ann["bbox"]
        values = ((x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
        lines[image["file_name"]].append(
            " ".join([str(category_to_class[ann["category_id"]]), *(f"{v:.{LABEL_DECIMALS}f}" for v in values)]))
    return lines


# ---------------------------------------------------------------------------------------------------------------
# Official COCO JSON
# ---------------------------------------------------------------------------------------------------------------
def load_coco(source: str | os.PathLike | Mapping[str, Any]) -> dict[str, Any]:
    """A COCO dict from a JSON path, or a deep copy of a given dict."""
    if isinstance(source, Mapping):
        return copy.deepcopy(dict(source))
    with open(source, encoding="utf-8") as f:
        return json.load(f)


def gt_from_coco_json(source: str | os.PathLike | Mapping[str, Any],
                      image_files: Iterable[str | os.PathLike] | None = None) -> dict[str, Any]:
    """An official COCO instances JSON restricted to ``image_files`` (matched by file name), fields untouched.

    Image ids, category ids (91-id scheme), ``area`` (the segmentation's, as COCO's area ranges use) and
    ``iscrowd`` are kept exactly; ``info.image_root`` is set to the images' common folder when ``image_files``
    is given. Raises ``ValueError`` naming the first image missing from the JSON.
    """
    gt = load_coco(source)
    for key in ("images", "annotations", "categories"):
        if key not in gt:
            raise ValueError(f"COCO JSON has no {key!r} list")
    info = dict(gt.get("info") or {})
    if image_files is not None:
        image_files = [Path(os.path.abspath(f)) for f in image_files]
        by_name = {image["file_name"].rsplit("/", 1)[-1]: image for image in gt["images"]}
        missing = [f for f in image_files if f.name not in by_name]
        if missing:
            raise ValueError(f"{len(missing)} of {len(image_files)} images are not in the COCO JSON "
                             f"(first: {missing[0].name})")
        keep = [by_name[f.name] for f in image_files]
        keep_ids = {image["id"] for image in keep}
        gt["images"] = sorted(keep, key=lambda image: image["id"])
        gt["annotations"] = [ann for ann in gt["annotations"] if ann["image_id"] in keep_ids]
        if image_files:
            info["image_root"] = os.path.commonpath([str(f.parent) for f in image_files])
    gt["info"] = info
    return gt


def image_ids_by_path(gt: Mapping[str, Any], image_files: Iterable[str | os.PathLike] | None = None) -> dict[str, int]:
    """``{resolved image path: image id}`` for mapping captured predictions onto ``gt``.

    Paths come from ``info.image_root`` + ``file_name``; an official COCO JSON, whose ``file_name`` is a bare
    name, is matched by base name against ``image_files``.
    """
    root = (gt.get("info") or {}).get("image_root")
    if root is not None:
        mapping = {str((Path(root) / image["file_name"]).resolve()): image["id"] for image in gt["images"]}
        if image_files is None or all(str(Path(f).resolve()) in mapping for f in image_files):
            return mapping
    if image_files is None:
        raise ValueError("ground truth has no info.image_root: pass the image files to map them by name")
    by_name = {image["file_name"].rsplit("/", 1)[-1]: image["id"] for image in gt["images"]}
    mapping = {}
    for f in image_files:
        f = Path(f).resolve()
        if f.name not in by_name:
            raise ValueError(f"image {str(f)!r} is not in the ground truth")
        mapping[str(f)] = by_name[f.name]
    return mapping
