"""The YOLO dataset format, read and written in one place: data YAML, split image lists, label files.

The conventions are ultralytics' (8.4.190), so the images and labels checked, evaluated and converted here are
exactly the ones its data loader trains and validates on:

- **root**: the YAML's ``path`` key, else the YAML's own folder. A relative root is taken from the working
  directory when it exists there, else from ultralytics' ``datasets_dir`` (pass it as ``datasets_dir``; boxloss's
  ultralytics side does). That is ultralytics' rule in ``check_det_dataset``; a relative ``path`` is *not* taken
  from the YAML's folder.
- **split entries** (``train``, ``val``, ``test``): a folder searched recursively, a ``.txt`` list whose ``./``
  lines are relative to the list, or a list of those, each relative to the root (an entry starting with ``../``
  that does not exist is retried without it); images are filtered by extension and sorted.
- **labels**: the last ``/images/`` of an image path becomes ``/labels/``, the extension ``.txt``; one
  ``cls cx cy w h`` line per object, normalised to the image; a polygon line (``cls x1 y1 x2 y2 ...``) stands for
  its bounding box; in a pose dataset (``kpt_shape: [K, D]`` in its YAML) every line is ``cls cx cy w h`` followed
  by K keypoints of D values (``x y`` or ``x y visibility``); exact duplicate lines are dropped, as ultralytics
  does (:func:`read_instances` also keeps each line's polygon or keypoints). A missing label file is an image
  without objects. A segmentation model needs a polygon for every object (ultralytics refuses a file that mixes
  polygons and boxes, and a dataset without polygons).
- **oriented boxes** (task ``obb``): one ``cls x1 y1 x2 y2 x3 y3 x4 y4`` line per object, the four corners in any
  order, normalised (ultralytics' YOLO-OBB format; it reads them as their minimum-area rectangle). Corners may lie
  outside the image, as those of an object cut by a tile's edge do (dota8 has one at 1.057), while the corners'
  extent keeps its centre and size in [0, 1] (ultralytics' own check, the one every polygon line gets here). A
  detection model reads such a line as its extent (DOTA's horizontal-box task), as it reads any polygon.
- **names**: a list, or ``{index: name}`` indexed 0..n-1, or only ``nc``.

Pure Python (PyYAML, Pillow for image headers); nothing here imports ultralytics, and nothing of ``boxloss.data``:
the embedded datasets' names are resolved above this layer (:func:`boxloss.data.embedded.check_data`,
:func:`~boxloss.data.embedded.resolve_data`), so everything here takes paths.
"""

from __future__ import annotations

import glob
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from .._io import irregular_file, read_yaml_mapping, write_text_atomic
from ..errors import ConfigError

# ultralytics.data.utils.IMG_FORMATS (8.4.190), copied so this module stays free of ultralytics.
IMG_FORMATS = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff",
                         "webp"})
LABEL_DECIMALS = 6  # digits of the label lines written here (3e-4 px at 640 px)
COORD_TOLERANCE = 1e-6  # normalised coordinates a hair outside [0, 1] are rounding, not errors
SPLITS = ("train", "val", "test")

Label = tuple[int, float, float, float, float]  # cls, cx, cy, w, h (normalised)
TASK_KINDS = {"detect": "detection", "segment": "segmentation", "pose": "pose", "obb": "oriented-box"}
OBB_LINE = "cls x1 y1 x2 y2 x3 y3 x4 y4"  # one oriented box: four corners, normalised
MIN_OBB_WIDTH = 1e-5  # normalised; corners spanning a narrower strip (0.01 px at 1024 px) enclose no box


@dataclass(frozen=True)
class DataSpec:
    """A data YAML as read: its path, the resolved dataset root, the class names and the YAML's content."""

    yaml_path: Path
    root: Path
    names: list[str]
    content: dict[str, Any]

    def entries(self, split: str) -> list[str]:
        """The split's entries as written (a folder, a ``.txt`` list, or several); [] when the split is absent."""
        value = self.content.get(split)
        if not value:
            return []
        return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# ---------------------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------------------
def class_names(content: Mapping[str, Any], where: str = "dataset YAML") -> list[str]:
    """Class names of a data YAML: ``names`` as a list or as ``{index: name}`` (0..n-1), else ``nc`` numbered."""
    names = content.get("names")
    if isinstance(names, dict):
        try:
            indices = sorted(int(k) for k in names)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: 'names' keys must be class indices 0..n-1") from None
        if indices != list(range(len(indices))):
            raise ConfigError(f"{where}: 'names' must be indexed 0..n-1, got {indices}")
        return [str(names[k] if k in names else names[str(k)]) for k in indices]
    if isinstance(names, (list, tuple)) and names:
        return [str(n) for n in names]
    nc = content.get("nc")
    if names is None and isinstance(nc, int) and not isinstance(nc, bool) and nc > 0:
        return [str(i) for i in range(nc)]
    if names is not None:
        raise ConfigError(f"{where}: 'names' must be a non-empty list or a mapping {{index: name}}")
    raise ConfigError(f"{where} has neither 'names' nor a positive integer 'nc'")


def dataset_root(content: Mapping[str, Any], yaml_path: Path, datasets_dir: str | os.PathLike | None = None) -> Path:
    """The dataset root by ultralytics' rule (see the module docstring), absolute."""
    root = Path(content.get("path") or yaml_path.parent)
    if root.is_absolute() or root.exists() or datasets_dir is None:
        return Path(os.path.abspath(root))
    return Path(os.path.abspath(Path(datasets_dir) / root))


def read_data_yaml(data_yaml: str | os.PathLike, datasets_dir: str | os.PathLike | None = None) -> DataSpec:
    """The data YAML ``data_yaml`` as a :class:`DataSpec`; ConfigError (one line) when it is missing or malformed."""
    path = Path(data_yaml)
    where = f"dataset {str(data_yaml)!r}"
    if not path.is_file():
        raise ConfigError(f"{where} not found (boxloss never downloads datasets)")
    content = read_yaml_mapping(path, "dataset")
    names = class_names(content, where)
    if "nc" in content and content.get("names") is not None and content["nc"] != len(names):
        raise ConfigError(f"{where}: 'nc: {content['nc']}' does not match the {len(names)} 'names'")
    return DataSpec(path, dataset_root(content, path, datasets_dir), names, content)


def _as_spec(data: str | os.PathLike | DataSpec, datasets_dir: str | os.PathLike | None = None) -> DataSpec:
    return data if isinstance(data, DataSpec) else read_data_yaml(data, datasets_dir)


def split_images(data: str | os.PathLike | DataSpec, split: str = "val",
                 datasets_dir: str | os.PathLike | None = None) -> list[Path]:
    """Absolute paths of a split's images, in ultralytics' order (sorted path strings); ConfigError if none."""
    spec = _as_spec(data, datasets_dir)
    where = f"dataset {str(spec.yaml_path)!r}"
    entries = spec.entries(split)
    if not entries:
        raise ConfigError(f"{where} has no {split!r} entry")
    files: list[str] = []
    for entry in entries:
        source = (spec.root / entry).resolve()  # ultralytics resolves each entry (symlinks followed)
        if not source.exists() and entry.startswith("../"):
            source = (spec.root / entry[3:]).resolve()
        if source.is_dir():
            files += glob.glob(str(Path(glob.escape(str(source))) / "**" / "*.*"), recursive=True)
        elif source.is_file():
            parent = str(source.parent) + os.sep
            lines = source.read_text(encoding="utf-8-sig").strip().splitlines()
            files += [x.replace("./", parent, 1) if x.startswith("./") else x for x in lines if x.strip()]
        else:
            raise ConfigError(f"{where}: {split} images {str(source)!r} not found")
    images = sorted(f for f in files if f.rpartition(".")[-1].lower() in IMG_FORMATS)
    if not images:
        raise ConfigError(f"{where}: no images in its {split!r} entry ({', '.join(entries)})")
    for image in images:  # ultralytics opens every one: a FIFO would block it forever, a device read without end
        kind = irregular_file(image)
        if kind not in (None, "missing"):  # a missing image (a dangling link) is unreadable: skipped, with a warning
            raise ConfigError(f"{where}: {split} image {image} is {kind}, not a regular image file")
    return [Path(os.path.abspath(f)) for f in images]  # not resolved: labels sit next to the listed path


def label_path(image_path: str | os.PathLike) -> Path:
    """ultralytics' ``img2label_paths``: the last ``/images/`` becomes ``/labels/``, the extension ``.txt``."""
    images_dir, labels_dir = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels_dir.join(os.fspath(image_path).rsplit(images_dir, 1)).rsplit(".", 1)[0] + ".txt")


def parse_label_line(line: str, kpt_shape: Sequence[int] | None = None,
                     vertices_inside: bool = True) -> Label | None:
    """``(cls, cx, cy, w, h)`` of one label line (a polygon line gives its bounding box; with ``kpt_shape`` (K, D),
    a pose line gives its box); None for a blank line.

    Raises ValueError naming what is wrong (not numbers, a class that is not a non-negative integer, the wrong
    number of values, coordinates, keypoints or polygon vertices outside [0, 1], a keypoint visibility that is not
    0, 1 or 2). Ultralytics would drop such a line's whole image as "corrupt" (a negative value), or train on it.
    ``vertices_inside=False`` checks a polygon's extent only (an oriented box's corners may leave the image where its
    centre and size stay inside it: :func:`parse_obb_line`).
    """
    fields = line.split()
    if not fields:
        return None
    try:
        values = [float(v) for v in fields]
    except ValueError:
        raise ValueError(f"not numbers: {line.strip()!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"not finite numbers: {line.strip()!r}")
    cls = values[0]
    if cls != int(cls) or cls < 0:
        raise ValueError(f"class {fields[0]!r} is not a non-negative integer")
    if kpt_shape is not None:
        keypoints, dims = kpt_shape
        if len(values) != 5 + keypoints * dims:
            raise ValueError(f"expected 'cls cx cy w h' and {keypoints} keypoints of {dims} values "
                             f"({5 + keypoints * dims} numbers), got {len(values)}")
        cx, cy, w, h = values[1:5]
        points = [v for k in range(keypoints) for v in values[5 + k * dims: 5 + k * dims + 2]]  # x, y of each
        if not all(-COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE for v in points):
            raise ValueError(f"keypoint coordinates must be normalised to [0, 1], got {line.strip()!r}")
        if dims == 3:
            visibility = values[7::3]  # (K,): 0 not labelled, 1 labelled but hidden, 2 labelled and visible
            bad = next((k for k, v in enumerate(visibility) if v not in (0, 1, 2)), None)
            if bad is not None:
                raise ValueError(f"keypoint {bad + 1} has visibility {fields[7 + 3 * bad]}: must be 0, 1 or 2")
    elif len(values) == 5:
        cx, cy, w, h = values[1:]
    elif len(values) >= 7 and len(values) % 2 == 1:  # polygon: cls x1 y1 x2 y2 ...
        xs, ys = values[1::2], values[2::2]
        bad = next((i for i, v in enumerate(values[1:]) if not -COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE), None)
        if bad is not None and vertices_inside:
            raise ValueError(f"polygon vertex {bad // 2 + 1} ({fields[1 + bad - bad % 2]} {fields[2 + bad - bad % 2]}) "
                             "is outside [0, 1]: vertices are normalised to the image")
        x1, x2, y1, y2 = min(xs), max(xs), min(ys), max(ys)
        cx, cy, w, h = (x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1
    else:
        raise ValueError(f"expected 'cls cx cy w h' or a polygon, got {len(values)} numbers")
    if not all(-COORD_TOLERANCE <= v <= 1 + COORD_TOLERANCE for v in (cx, cy, w, h)):
        raise ValueError(f"coordinates must be normalised to [0, 1], got {line.strip()!r}")
    return int(cls), cx, cy, w, h


def _parse_unique(path: str | os.PathLike, parse: Callable[[str], Any], key: Callable[[Any, str], Any]) -> list:
    """``parse(line)`` of each line of a label file, blank lines and repeats (equal ``key(parsed, line)``, the first
    kept) left out; [] for a missing file; ValueError ``<file>:<line>: <what is wrong>``."""
    path = Path(path)
    if not path.is_file():
        return []
    parsed, seen = [], set()
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text (byte 0x{error.object[error.start]:02x} at offset {error.start})"
                         ) from None
    for line_number, line in enumerate(text.splitlines(), 1):
        try:
            item = parse(line)
        except ValueError as error:
            raise ValueError(f"{path}:{line_number}: {error}") from None
        if item is not None and key(item, line) not in seen:
            seen.add(key(item, line))
            parsed.append(item)
    return parsed


def read_labels(path: str | os.PathLike, kpt_shape: Sequence[int] | None = None,
                vertices_inside: bool = True) -> list[Label]:
    """The rows of a label file (duplicates dropped, first kept), pose lines read with ``kpt_shape``; ValueError
    ``<file>:<line>: <what is wrong>``. ``vertices_inside``: as :func:`parse_label_line`."""
    return _parse_unique(path, lambda line: parse_label_line(line, kpt_shape, vertices_inside), lambda row, line: row)


@dataclass(frozen=True)
class Instance:
    """One object of a label file with everything its line holds (normalised to the image).

    ``box`` is ``(cx, cy, w, h)`` (of the polygon's extent for a segment line, as ultralytics derives it);
    ``polygon`` the segment line's vertices ``((x1, y1), (x2, y2), ...)``; ``keypoints`` a pose line's K points
    ``((x, y, v), ...)``, where ``v`` is the visibility as written (``kpt_shape`` [K, 3]) or, for ``[K, 2]``,
    ultralytics' own: 2 (labelled) unless x or y is negative, then 0.
    """

    cls: int
    box: tuple[float, float, float, float]
    polygon: tuple[tuple[float, float], ...] | None = None
    keypoints: tuple[tuple[float, float, float], ...] | None = None


def parse_instance(line: str, kpt_shape: Sequence[int] | None = None,
                   vertices_inside: bool = True) -> Instance | None:
    """The :class:`Instance` of one label line (checked by :func:`parse_label_line`); None for a blank line."""
    row = parse_label_line(line, kpt_shape, vertices_inside)
    if row is None:
        return None
    values = [float(v) for v in line.split()]
    if kpt_shape is not None:
        count, dims = kpt_shape
        points = [values[5 + k * dims: 5 + (k + 1) * dims] for k in range(count)]
        keypoints = tuple((p[0], p[1], p[2] if dims == 3 else 0.0 if min(p) < 0 else 2.0) for p in points)
        return Instance(row[0], row[1:], keypoints=keypoints)
    if len(values) > 5:
        return Instance(row[0], row[1:], polygon=tuple(zip(values[1::2], values[2::2])))
    return Instance(row[0], row[1:])


def read_instances(path: str | os.PathLike, kpt_shape: Sequence[int] | None = None,
                   vertices_inside: bool = True) -> list[Instance]:
    """The objects of a label file with their polygons (segment lines) or keypoints (pose lines, ``kpt_shape``).

    Duplicates are dropped as ultralytics drops them (``verify_image_label``): lines whose every value is equal,
    the first kept, so two polygons or two poses that share a box are two objects. A missing file has none;
    ValueError ``<file>:<line>: <what is wrong>``.
    """
    return _parse_unique(path, lambda line: parse_instance(line, kpt_shape, vertices_inside),
                         lambda instance, line: tuple(float(v) for v in line.split()))


ObbLabel = tuple[int, tuple[tuple[float, float], ...]]  # cls, the four corners (x, y), normalised


def _cross(o: Sequence[float], a: Sequence[float], b: Sequence[float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def convex_hull(points: Iterable[Sequence[float]]) -> list[tuple[float, float]]:
    """The convex hull of 2-D points, counter-clockwise in a y-up frame, collinear points left out (Andrew's
    monotone chain); fewer than three points where they are all collinear."""
    ordered = sorted(set((float(x), float(y)) for x, y in points))
    if len(ordered) < 3:
        return ordered
    lower: list[tuple[float, float]] = []
    upper: list[tuple[float, float]] = []
    for chain, walk in ((lower, ordered), (upper, reversed(ordered))):
        for point in walk:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], point) <= 0:
                chain.pop()
            chain.append(point)
    return lower[:-1] + upper[:-1]


def minimum_width(points: Iterable[Sequence[float]]) -> float:
    """The width of the narrowest strip holding every point: the least, over the convex hull's edges, of the
    farthest point's distance to that edge's line (0 for collinear points)."""
    hull = convex_hull(points)
    if len(hull) < 3:
        return 0.0
    widths = []
    for start, end in zip(hull, hull[1:] + hull[:1]):
        length = math.hypot(end[0] - start[0], end[1] - start[1])
        widths.append(max(abs(_cross(start, end, point)) for point in hull) / length)
    return min(widths)


def parse_obb_line(line: str) -> ObbLabel | None:
    """``(cls, ((x1, y1), ..., (x4, y4)))`` of one YOLO-OBB label line ``cls x1 y1 x2 y2 x3 y3 x4 y4``; None for a
    blank line.

    Raises ValueError naming what is wrong: not 9 numbers, a class that is not a non-negative integer, the corners'
    extent outside [0, 1] (the checks of :func:`parse_label_line`), or corners that enclose no box (all within a
    strip narrower than ``MIN_OBB_WIDTH``: coincident or collinear).
    """
    fields = line.split()
    if not fields:
        return None
    if len(fields) != 9:
        got = f"a polygon of {(len(fields) - 1) // 2} points" if len(fields) >= 7 and len(fields) % 2 else \
            f"{len(fields)} numbers"
        raise ValueError(f"expected the four corners '{OBB_LINE}' (9 numbers), got {got}")
    cls = parse_label_line(line, vertices_inside=False)[0]
    values = [float(v) for v in fields[1:]]
    corners = tuple(zip(values[0::2], values[1::2]))
    if minimum_width(corners) < MIN_OBB_WIDTH:
        raise ValueError(f"degenerate oriented box: its corners enclose no area ({line.strip()!r})")
    return cls, corners


def read_obb_labels(path: str | os.PathLike) -> list[ObbLabel]:
    """The oriented boxes of a YOLO-OBB label file (lines equal in every value dropped, the first kept, as
    ultralytics drops them); [] for a missing file; ValueError ``<file>:<line>: <what is wrong>``."""
    return _parse_unique(path, parse_obb_line, lambda row, line: tuple(float(v) for v in line.split()))


def image_size(path: str | os.PathLike, exif_rotation: bool = True) -> tuple[int, int]:
    """``(width, height)`` of an image from its header, with EXIF rotation (orientations 5-8 swap the sides) unless
    not ``exif_rotation`` (the size as stored, as the converters read it).

    Raises OSError with the reader's own reason for a file that is not a readable image, and without opening it
    for anything but a regular file (a FIFO would block the reader forever).
    """
    from PIL import Image

    kind = irregular_file(path)
    if kind is not None:
        raise OSError(f"{path}: not a readable image ({kind}, not a regular file)")
    try:
        with Image.open(path) as image:
            width, height = image.size
            try:
                orientation = image.getexif().get(274) if exif_rotation else None
            except Exception:  # no or unreadable EXIF: header size as is
                orientation = None
    except (OSError, ValueError, ImportError, Image.DecompressionBombError) as error:
        # PIL may reach for an optional plugin (e.g. pi_heif); a decompression bomb is unreadable, as for ultralytics
        raise OSError(f"{path}: not a readable image ({error})") from None
    if orientation in {5, 6, 7, 8}:
        width, height = height, width
    return width, height


def unreadable_images(images: Iterable[str | os.PathLike]) -> list[tuple[Path, str]]:
    """``(image, reason)`` for every image whose header cannot be read (ultralytics skips those when it trains)."""
    bad = []
    for image in images:
        try:
            image_size(image)
        except OSError as error:
            bad.append((Path(image), str(error).split(": not a readable image ", 1)[-1].strip("()")))
    return bad


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------
def xyxy_to_normalised(xyxy: Sequence[float], width: float, height: float) -> tuple[float, float, float, float]:
    """Pixel-edge ``(x1, y1, x2, y2)`` -> normalised ``(cx, cy, w, h)``; exact before formatting."""
    x1, y1, x2, y2 = xyxy
    return (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height


def label_line(cls: int, cx: float, cy: float, w: float, h: float) -> str:
    """One label line ``cls cx cy w h`` with LABEL_DECIMALS decimals (no newline)."""
    return f"{int(cls)} " + " ".join(f"{v:.{LABEL_DECIMALS}f}" for v in (cx, cy, w, h))


def xyxy_label_line(cls: int, xyxy: Sequence[float], width: float, height: float) -> str:
    """The label line of a pixel-edge box in an image of ``width`` x ``height`` pixels."""
    return label_line(cls, *xyxy_to_normalised(xyxy, width, height))


def polygon_label_line(cls: int, points: Iterable[Sequence[float]]) -> str:
    """One segment line ``cls x1 y1 x2 y2 ...`` of normalised vertices, LABEL_DECIMALS decimals (no newline)."""
    return f"{int(cls)} " + " ".join(f"{v:.{LABEL_DECIMALS}f}" for point in points for v in point[:2])


def write_labels(path: str | os.PathLike, lines: Iterable[str]) -> None:
    """A label file, one line each (an empty file for an image without objects)."""
    Path(path).write_text("".join(f"{line}\n" for line in lines))


def data_yaml_text(root: str | os.PathLike, splits: Mapping[str, str], names: Sequence[str], header: str = "",
                   extra: Mapping[str, Any] | None = None) -> str:
    """A data YAML: header comments, ``path`` (absolute), one key per split, ``names`` as ``{index: name}``, extras
    (lists on one line each)."""
    import yaml

    data = {"path": str(Path(root).resolve()), **splits, "names": dict(enumerate(names))}
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    text = comment + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if extra:
        text += yaml.safe_dump(dict(extra), sort_keys=False, default_flow_style=None, width=1 << 16)
    return text


def write_data_yaml(path: str | os.PathLike, root: str | os.PathLike, splits: Mapping[str, str],
                    names: Sequence[str], header: str = "", extra: Mapping[str, Any] | None = None) -> Path:
    """Write :func:`data_yaml_text` to ``path`` atomically."""
    return write_text_atomic(path, data_yaml_text(root, splits, names, header, extra))


# ---------------------------------------------------------------------------------------------------------------
# The one dataset check
# ---------------------------------------------------------------------------------------------------------------
def keypoint_shape(spec: DataSpec) -> tuple[int, int] | None:
    """The YAML's ``kpt_shape`` as (K, D) with D 2 or 3, None when absent; ConfigError when malformed, or when its
    ``flip_idx`` is not a permutation of the K keypoints."""
    where = f"dataset {str(spec.yaml_path)!r}"
    value = spec.content.get("kpt_shape")
    if value is None:
        return None
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value)
            and value[0] >= 1 and value[1] in (2, 3)):
        raise ConfigError(f"{where}: 'kpt_shape' must be [keypoints, 2 or 3], got {value!r}")
    flip_idx = spec.content.get("flip_idx")
    if flip_idx is not None and sorted(flip_idx) != list(range(value[0])):
        raise ConfigError(f"{where}: 'flip_idx' must be a permutation of the {value[0]} keypoints, got {flip_idx!r}")
    return value[0], value[1]


def check_splits_and_task(splits: Sequence[str], task: str) -> None:
    """Each of ``splits`` is train, val or test and ``task`` one of TASK_KINDS; ConfigError otherwise."""
    for split in splits:
        if split not in SPLITS:
            raise ConfigError(f"split {split!r} must be one of {', '.join(SPLITS)}")
    if task not in TASK_KINDS:
        raise ConfigError(f"task {task!r} must be one of {', '.join(TASK_KINDS)}")


def check_dataset(data_yaml: str | os.PathLike, splits: Sequence[str] = ("train", "val"), *,
                  datasets_dir: str | os.PathLike | None = None, labels: bool = True,
                  task: str = "detect") -> DataSpec:
    """Everything a run needs from a dataset, checked before anything is written; ConfigError with one line.

    ``data_yaml`` exists and parses (the line of a syntax error is named), has ``names`` or ``nc``, every split in
    ``splits`` lists images that exist and, with ``labels``, every label line of those splits parses and names a
    class of the dataset (``file:line``). Ultralytics would skip a malformed label file with a warning and train
    without it; a benchmark should not. ``task`` is the model's: ``pose`` needs the YAML's ``kpt_shape``;
    ``segment`` needs a polygon on every label line (checked with ``labels``); ``obb`` needs four corners on every
    label line (:func:`parse_obb_line`). A config's ``data:``, which may also name an embedded dataset, is checked
    by :func:`boxloss.data.embedded.check_data`.
    """
    check_splits_and_task(splits, task)
    if not isinstance(data_yaml, (str, os.PathLike)) or not str(data_yaml):
        raise ConfigError(f"data={data_yaml!r} must be a dataset YAML path")
    spec = read_data_yaml(data_yaml, datasets_dir)
    kpt_shape = keypoint_shape(spec)
    if task == "pose" and kpt_shape is None:
        raise ConfigError(f"a pose model needs keypoint labels: dataset {str(spec.yaml_path)!r} has no 'kpt_shape' "
                          "(a detection dataset?)")
    if task == "obb" and kpt_shape is not None:
        raise ConfigError(f"an oriented-box model needs oriented-box labels ('{OBB_LINE}'): dataset "
                          f"{str(spec.yaml_path)!r} has keypoint labels ('kpt_shape': a pose dataset?)")
    for split in splits:
        images = split_images(spec, split)
        if labels and task == "obb":
            _check_obb_labels(spec, split, images)
        elif labels:
            boxes, polygons = _check_split_labels(spec, images, kpt_shape, count_lines=task == "segment")
            if task == "segment":
                _check_polygons(spec, split, boxes, polygons)
    return spec


def _check_polygons(spec: DataSpec, split: str, boxes: int, polygons: int) -> None:
    where = f"dataset {str(spec.yaml_path)!r}"
    if boxes and not polygons:
        raise ConfigError(f"a segmentation model needs polygon labels ('cls x1 y1 x2 y2 ...'): {where} has only "
                          f"boxes in its {split} labels")
    if boxes:
        raise ConfigError(f"a segmentation model needs a polygon for every object: {where} has {boxes} box-only "
                          f"label lines among {boxes + polygons} in its {split} labels")


def _check_split_labels(spec: DataSpec, images: Iterable[Path], kpt_shape: Sequence[int] | None = None, *,
                        count_lines: bool = False) -> tuple[int, int]:
    """Every label file of ``images`` parses and names a class of the dataset. With ``count_lines``, returns the
    distinct box lines (5 values) and polygon lines (more than 5, outside a pose dataset), else (0, 0)."""
    where = f"dataset {str(spec.yaml_path)!r}"
    boxes = polygons = 0
    for image in images:
        labels = label_path(image)
        try:
            rows = read_labels(labels, kpt_shape, vertices_inside=count_lines)
        except ValueError as error:
            raise ConfigError(f"{where}: malformed label line {error}") from None
        for row in rows:
            if row[0] >= len(spec.names):
                raise ConfigError(f"{where}: {labels}: class {row[0]} is not one of the {len(spec.names)} classes "
                                  "in 'names'")
        if count_lines and rows:
            sizes = [len(line.split()) for line in set(labels.read_text(encoding="utf-8-sig").splitlines())]
            boxes += sum(size == 5 or kpt_shape is not None for size in sizes if size)
            polygons += sum(size > 5 and kpt_shape is None for size in sizes)
    return boxes, polygons


def _obb_or_box(line: str) -> tuple[str, Any] | None:
    """``("box", row)`` for a ``cls cx cy w h`` line (checked), ``("obb", row)`` for an oriented box, None if blank."""
    if len(line.split()) == 5:
        return "box", parse_label_line(line)
    row = parse_obb_line(line)
    return None if row is None else ("obb", row)


def _check_obb_labels(spec: DataSpec, split: str, images: Iterable[Path]) -> None:
    """Every label line of ``images`` is an oriented box (:func:`parse_obb_line`) of a class of the dataset; a
    dataset of boxes, or one mixing boxes in, is refused as a segmentation model's is."""
    where = f"dataset {str(spec.yaml_path)!r}"
    boxes, total, first_box = 0, 0, None
    for image in images:
        labels = label_path(image)
        try:
            rows = _parse_unique(labels, _obb_or_box, lambda row, line: tuple(float(v) for v in line.split()))
        except ValueError as error:
            raise ConfigError(f"{where}: malformed label line {error}") from None
        for kind, row in rows:
            if row[0] >= len(spec.names):
                raise ConfigError(f"{where}: {labels}: class {row[0]} is not one of the {len(spec.names)} classes "
                                  "in 'names'")
            total += 1
            if kind == "box":
                boxes += 1
                first_box = first_box or labels
    if boxes == total and boxes:
        raise ConfigError(f"an oriented-box model needs oriented-box labels ('{OBB_LINE}'): {where} has only boxes "
                          f"in its {split} labels (a detection dataset?)")
    if boxes:
        raise ConfigError(f"an oriented-box model needs four corners for every object: {where} has {boxes} box-only "
                          f"label lines among {total} in its {split} labels (the first in {first_box})")
