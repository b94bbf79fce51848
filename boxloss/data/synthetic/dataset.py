"""The embedded ``shapes`` datasets on disk: generated once, atomically, and reused while their manifest matches.

Layout written by :func:`generate` (ultralytics data-YAML format)::

    <root>/images/{train,val}/NNNNNN.png
    <root>/labels/{train,val}/NNNNNN.txt     # one line per object, normalised, 6 decimals (below)
    <root>/data.yaml                          # path (absolute), train, val, names (pose: kpt_shape, flip_idx, ...)
    <root>/manifest.json                      # dataset name, VERSION, parameters, counts, label digest

One generator, three label sets (``task``) on the same images: ``detect`` (``shapes``: ``cls cx cy w h``, the full
extent of each object), ``segment`` (``shapes-seg``: ``cls x1 y1 x2 y2 ...``, the visible part's polygon) and
``pose`` (``shapes-pose``: ``cls cx cy w h`` as ``shapes`` and the four extreme points ``x y v``); and ``obb``
(``shapes-obb``: ``cls x1 y1 x2 y2 x3 y3 x4 y4``, each object's exact oriented rectangle) on images of their own,
whose shapes are turned to any angle (``render_sample(any_angle=True)``); see :mod:`.annotations`. The same
arguments give byte-identical label files and identical (lossless PNG) pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path

import cv2

from ..._io import irregular_file
from ..yolo_format import data_yaml_text, label_line, write_data_yaml, xyxy_to_normalised
from .annotations import FLIP_IDX, KEYPOINT_NAMES, KPT_SHAPE, obb_lines, pose_lines, segment_lines
from .render import (CLASS_NAMES, DEFAULT_IMGSZ, DEFAULT_MAX_OBJECTS, DEFAULT_MIN_OBJECTS, DEFAULT_MIN_VISIBLE,
                     DEFAULT_SEED, Sample, render_sample)

VERSION = 1  # bump whenever the pixels or labels produced for given parameters change
NAME = "shapes"
TASK_NAMES = {"detect": NAME, "segment": "shapes-seg", "pose": "shapes-pose", "obb": "shapes-obb"}  # -> dataset
TASK_RENDERING = {"obb": {"any_angle": True}}  # label set -> render_sample options, where its images differ
DEFAULT_TRAIN = 400
DEFAULT_VAL = 100
SPLIT_DIRS = {"train": "images/train", "val": "images/val"}


def _params(seed: int = DEFAULT_SEED, n_train: int = DEFAULT_TRAIN, n_val: int = DEFAULT_VAL,
            imgsz: int = DEFAULT_IMGSZ, min_objects: int = DEFAULT_MIN_OBJECTS, max_objects: int = DEFAULT_MAX_OBJECTS,
            min_visible: float = DEFAULT_MIN_VISIBLE, occlusion: bool = True) -> dict:
    if not (0 <= min_objects <= max_objects):
        raise ValueError("need 0 <= min_objects <= max_objects")
    if imgsz < 32 or n_train < 0 or n_val < 0:
        raise ValueError("need imgsz >= 32 and non-negative image counts")
    return {"seed": int(seed), "n_train": int(n_train), "n_val": int(n_val), "imgsz": int(imgsz),
            "min_objects": int(min_objects), "max_objects": int(max_objects), "min_visible": float(min_visible),
            "occlusion": bool(occlusion)}


def _check_task(task: str) -> str:
    if task not in TASK_NAMES:
        raise ValueError(f"task must be one of {', '.join(TASK_NAMES)}, got {task!r}")
    return task


def label_text(sample: Sample, size: int, task: str = "detect") -> str:
    """The label file of one rendered image, for the label set ``task`` (detect, segment, pose, obb)."""
    return "".join(f"{line}\n" for line in LABEL_LINES[_check_task(task)](sample, size))


def box_lines(sample: Sample, size: int) -> list[str]:
    """``cls cx cy w h`` (normalised) per object: the full extent of each object, the labels of ``shapes``."""
    return [label_line(int(cls), *xyxy_to_normalised(box, size, size))
            for cls, box in zip(sample.classes, sample.boxes)]


LABEL_LINES = {"detect": box_lines, "segment": segment_lines, "pose": pose_lines, "obb": obb_lines}


def _yaml_header(task: str = "detect") -> str:
    return f"boxloss synthetic '{TASK_NAMES[task]}' dataset v{VERSION} (generated; see manifest.json)"


def _yaml_extra(task: str) -> dict | None:
    """The pose keys ultralytics reads: keypoint shape, horizontal-flip permutation, keypoint names per class."""
    if task != "pose":
        return None
    return {"kpt_shape": list(KPT_SHAPE), "flip_idx": list(FLIP_IDX),
            "kpt_names": {i: list(KEYPOINT_NAMES) for i in range(len(CLASS_NAMES))}}


def _yaml_text(root: Path, task: str = "detect") -> str:
    return data_yaml_text(root, SPLIT_DIRS, CLASS_NAMES, _yaml_header(task), _yaml_extra(task))


def _write_yaml(path: Path, root: Path, task: str) -> None:
    write_data_yaml(path, root, SPLIT_DIRS, CLASS_NAMES, _yaml_header(task), _yaml_extra(task))


def generate(root: str | os.PathLike, seed: int = DEFAULT_SEED, n_train: int = DEFAULT_TRAIN,
             n_val: int = DEFAULT_VAL, imgsz: int = DEFAULT_IMGSZ, *, min_objects: int = DEFAULT_MIN_OBJECTS,
             max_objects: int = DEFAULT_MAX_OBJECTS, min_visible: float = DEFAULT_MIN_VISIBLE,
             occlusion: bool = True, task: str = "detect") -> Path:
    """Write the dataset (label set ``task``: detect, segment, pose or obb) to ``root``, replacing whatever is there,
    and return its data.yaml path.

    Everything is written into a temporary sibling directory ``.<name>.tmp-*`` that is renamed to ``root`` only
    once complete (manifest written last), so an interrupted run never leaves a dataset that looks complete.
    """
    params = _params(seed, n_train, n_val, imgsz, min_objects, max_objects, min_visible, occlusion)
    _check_task(task)
    root = Path(root).expanduser().absolute()
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = root.parent / f".{root.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        counts, digest = {}, hashlib.sha256()
        for split, n in (("train", params["n_train"]), ("val", params["n_val"])):
            (tmp / "images" / split).mkdir(parents=True)
            (tmp / "labels" / split).mkdir(parents=True)
            boxes = 0
            for i in range(n):
                sample = render_sample(params["seed"], split, i, params["imgsz"], min_objects=params["min_objects"],
                                       max_objects=params["max_objects"], min_visible=params["min_visible"],
                                       occlusion=params["occlusion"], **TASK_RENDERING.get(task, {}))
                if not cv2.imwrite(str(tmp / "images" / split / f"{i:06d}.png"), sample.image):
                    raise OSError(f"could not write image {split}/{i}")
                text = label_text(sample, params["imgsz"], task)
                (tmp / "labels" / split / f"{i:06d}.txt").write_bytes(text.encode())
                digest.update(f"{split}/{i:06d}\n{text}".encode())
                boxes += len(sample.classes)
            counts[split] = {"images": n, "boxes": boxes}
        _write_yaml(tmp / "data.yaml", root, task)
        manifest = {"name": TASK_NAMES[task], "generator": "boxloss.data.synthetic", "version": VERSION,
                    "params": params, "class_names": list(CLASS_NAMES), "counts": counts,
                    "labels_sha256": digest.hexdigest()}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        old = None
        if root.exists() or root.is_symlink():
            old = root.parent / f".{root.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.rename(root, old)
        os.rename(tmp, root)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return root / "data.yaml"


def _is_complete(root: Path, params: dict, task: str = "detect") -> bool:
    """True when ``root`` holds a finished dataset of label set ``task`` generated by this VERSION with ``params``
    (and nothing in its image folders that is not a regular file: a FIFO put there would block training forever)."""
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    if (manifest.get("name") != TASK_NAMES[task] or manifest.get("version") != VERSION
            or manifest.get("params") != params):
        return False
    if not (root / "data.yaml").is_file():
        return False
    for split, key in (("train", "n_train"), ("val", "n_val")):
        try:
            entries = list((root / "images" / split).iterdir())
            images = sum(1 for p in entries if p.suffix == ".png")
            labels = sum(1 for p in (root / "labels" / split).iterdir() if p.suffix == ".txt")
        except OSError:
            return False
        if images != params[key] or labels != params[key] or any(irregular_file(p) for p in entries):
            return False
    return True


def default_root(task: str = "detect", **params) -> Path:
    """Default dataset directory: ``<base>/<name>-v<VERSION>`` (name: shapes, shapes-seg, shapes-pose, shapes-obb),
    with a short parameter hash appended when ``params`` differ from the defaults so different variants never
    overwrite each other. ``<base>`` is ``$BOXLOSS_DATA_DIR`` if set, else ``~/.cache/boxloss/datasets``."""
    base = os.environ.get("BOXLOSS_DATA_DIR")
    base = Path(base).expanduser().absolute() if base else Path.home() / ".cache" / "boxloss" / "datasets"
    resolved = _params(**params)
    name = f"{TASK_NAMES[_check_task(task)]}-v{VERSION}"
    if resolved != _params():
        name += "-" + hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]
    return base / name


def ensure_dataset(root: str | os.PathLike | None = None, *, task: str = "detect", **params) -> Path:
    """The data.yaml path of the dataset, generating it only if ``root`` does not already hold a complete dataset
    of label set ``task`` whose manifest matches ``params`` (same keywords as :func:`generate`)."""
    resolved = _params(**params)
    root = Path(root).expanduser().absolute() if root is not None else default_root(task, **params)
    if not _is_complete(root, resolved, task):
        try:
            generate(root, **resolved, task=task)
        except OSError:
            if not _is_complete(root, resolved, task):  # tolerate a concurrent generator winning the rename
                raise
    data_yaml = root / "data.yaml"
    if data_yaml.read_text() != _yaml_text(root, task):  # the dataset was moved: refresh the absolute path
        _write_yaml(data_yaml, root, task)
    return data_yaml
