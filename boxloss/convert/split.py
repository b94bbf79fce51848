"""A seeded, stratified train/val/test split (:func:`stratified_split`), and :func:`split_dataset`, which re-splits
an existing YOLO dataset (e.g. one with only a train split) into a new dataset folder.

Algorithm. The items (images) are named by portable keys (paths relative to the dataset's image folder, ``/``
separated), each with the set of classes it holds.

1. **Order**: each key gets the rank ``sha256(f"{seed}:{key}")`` (hex digest, ties by key); every later step
   walks the items in that order. It depends only on the seed and the keys: the same seed gives the same split
   on any machine and Python version, whatever the file system's listing order.
2. **Sizes**: ``val = max(1, round(val_fraction * n))``, ``test`` likewise (0 when no test fraction), rounded
   half up; train gets the rest and must keep at least one item.
3. **Coverage** (the stratification): classes are taken from the rarest (fewest items; ties by name) to the most
   common; for each class and each held-out split (val, then test) that has no item of it yet and still has room,
   the first item of the class that may leave train moves there.
4. **Fill**: val, then test, take the remaining items in rank order until they reach their size.
5. Everything else is train.

An item *may leave train* only if each of its classes keeps at least one item in train. Hence "every class in
val and test where possible": a class with one image stays in train only; with two, one goes to val; with three
or more, one goes to val and one to test (when a test fraction is given) -- as long as the split has room (its
size from step 2 is never exceeded; the rarest classes come first) and the item does not take the last train
image of another class. A class that ends up missing from a held-out split, or a split left short by that rule,
is named in :attr:`StratifiedSplit.warnings`.

:func:`split_dataset` output (written into a temporary folder and renamed into place, as the converters do)::

    <out>/images/<split>/<name> -> the source image          (or a copy with copy=True)
    <out>/labels/<split>/<name>.txt                           copied (empty for an image without a label file)
    <out>/data.yaml                                           path, train, val[, test], names of the source
    <out>/conversion_report.json

``<name>`` is the image's path relative to the deepest folder holding every pooled image (``x.jpg`` for the
usual ``images/train/x.jpg``); it is also the key ranked in step 1.
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

from ..data.embedded import check_data
from ..data.yolo_format import SPLITS, label_path, read_labels, split_images
from ..errors import ConfigError
from .report import ConversionError, ConversionReport
from .writer import OutputImage, write_yolo_dataset

__all__ = ["DEFAULT_VAL", "StratifiedSplit", "check_split_options", "split_dataset", "split_rule", "split_sizes",
           "stratified_split"]

DEFAULT_VAL = 0.2  # the val fraction of a converter asked for no split at all
HELD_OUT = ("val", "test")


def _options(val: float, test: float) -> str:
    return f"val={val}" + (f" test={test}" if test else "")


def check_split_options(val: float, test: float = 0.0, seed: int = 0) -> None:
    """ConversionError naming the option unless ``0 < val < 1``, ``0 <= test < 1``, ``val + test < 1`` and ``seed``
    is an integer."""
    if not isinstance(val, (int, float)) or isinstance(val, bool) or not 0 < val < 1:
        raise ConversionError(f"val={val}: must be a fraction between 0 and 1 (exclusive)")
    if not isinstance(test, (int, float)) or isinstance(test, bool) or not 0 <= test < 1:
        raise ConversionError(f"test={test}: must be a fraction from 0 (no test split) up to 1 (exclusive)")
    if val + test >= 1:
        raise ConversionError(f"{_options(val, test)}: the fractions sum to {val + test:g}, they must sum to less "
                              "than 1 (train needs images)")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConversionError(f"seed={seed!r}: must be an integer")


def split_rule(val: float, test: float = 0.0, seed: int = 0) -> str:
    """One line naming a seeded split, for the report and the data.yaml header."""
    return f"seeded stratified split (val {val}" + (f", test {test}" if test else "") + f", seed {seed})"


def split_sizes(count: int, val: float, test: float = 0.0) -> dict[str, int]:
    """``{"train", "val", "test"}`` item counts for ``count`` items (step 2 of the module docstring)."""
    def share(fraction: float) -> int:
        return max(1, math.floor(fraction * count + 0.5)) if fraction else 0

    sizes = {"val": share(val), "test": share(test)}
    train = count - sizes["val"] - sizes["test"]
    if train < 1:
        raise ConversionError(f"{_options(val, test)}: {count} image{'s' * (count != 1)} are too few to split "
                              "(train would be empty)")
    return {"train": train, **sizes}


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


@dataclass
class StratifiedSplit:
    """Split name (train, val[, test]) -> sorted keys, and one-line notes on what could not be stratified."""

    splits: dict[str, list[str]]
    warnings: list[str] = field(default_factory=list)


def stratified_split(classes_of: Mapping[str, Iterable[str]], val: float, test: float = 0.0,
                     seed: int = 0) -> StratifiedSplit:
    """Split items into train/val[/test] by the algorithm of the module docstring.

    Args:
        classes_of: item key -> the classes it holds (empty for an image without objects).
        val, test: fractions of the items for val and test (``test=0``: no test split).
        seed: any integer; the same seed and keys give the same split.

    Raises:
        ConversionError: bad fractions or too few items (one line naming the option).
    """
    check_split_options(val, test, seed)
    classes = {key: sorted(set(names)) for key, names in classes_of.items()}
    order = sorted(classes, key=lambda key: (_rank(seed, key), key))
    sizes = split_sizes(len(order), val, test)
    held_out = [split for split in HELD_OUT if sizes[split]]
    holders: dict[str, list[str]] = {}  # class -> its items, in rank order
    for key in order:
        for name in classes[key]:
            holders.setdefault(name, []).append(key)
    in_train = {name: len(keys) for name, keys in holders.items()}
    where: dict[str, str] = {}  # key -> held-out split
    filled = dict.fromkeys(held_out, 0)

    def may_leave_train(key: str) -> bool:
        return key not in where and all(in_train[name] > 1 for name in classes[key])

    def move(key: str, split: str) -> None:
        where[key] = split
        filled[split] += 1
        for name in classes[key]:
            in_train[name] -= 1

    for name in sorted(holders, key=lambda name: (len(holders[name]), name)):
        for split in held_out:
            if filled[split] < sizes[split] and all(where.get(key) != split for key in holders[name]):
                key = next((key for key in holders[name] if may_leave_train(key)), None)
                if key is not None:
                    move(key, split)
    for split in held_out:
        for key in order:
            if filled[split] >= sizes[split]:
                break
            if may_leave_train(key):
                move(key, split)

    result = StratifiedSplit({"train": sorted(key for key in order if key not in where)})
    for split in held_out:
        result.splits[split] = sorted(key for key, chosen in where.items() if chosen == split)
        if filled[split] < sizes[split]:
            result.warnings.append(f"{split} has {filled[split]} images, not {sizes[split]}: the others would have "
                                   "taken the last train image of one of their classes")
        missing = [name for name in sorted(holders) if all(where.get(key) != split for key in holders[name])]
        if missing:
            counts = ", ".join(f"{name} ({len(holders[name])} image{'s' * (len(holders[name]) != 1)})"
                               for name in missing)
            result.warnings.append(f"{split} has no image of {counts}: too few images, or {split} was full")
    return result


# ---------------------------------------------------------------------------------------------------------------
# Re-splitting a YOLO dataset
# ---------------------------------------------------------------------------------------------------------------
def _pooled_images(spec, sources: Sequence[str]) -> list[Path]:
    """The images of the ``sources`` splits, each once (by resolved path), in ultralytics' order."""
    seen, images = set(), []
    for split in sources:
        for image in split_images(spec, split):
            if image.resolve() not in seen:
                seen.add(image.resolve())
                images.append(image)
    return images


def _names_below_common_folder(images: Sequence[Path]) -> dict[str, Path]:
    """Output name (path below the deepest folder holding every image, ``/`` separated) -> image."""
    base = Path(os.path.commonpath([str(image.parent) for image in images]))
    return {image.relative_to(base).as_posix(): image for image in images}


def split_dataset(data_yaml: Union[str, Path], out: Union[str, Path], *, val: float, test: float = 0.0,
                  seed: int = 0, sources: Sequence[str] = ("train",), copy: bool = False,
                  force: bool = False) -> ConversionReport:
    """Re-split the images of ``sources`` of a YOLO dataset into a new dataset folder (module docstring).

    Args:
        data_yaml: the source dataset's YAML (read by :mod:`boxloss.data.yolo_format`, labels checked).
        out: output folder; must not exist unless ``force`` (then a previous conversion output is replaced).
        val, test, seed: the split (:func:`stratified_split`).
        sources: the source splits pooled before splitting (an image listed in several counts once).
        copy: copy images instead of symlinking them.
        force: replace an existing output folder written by a previous conversion.

    Raises:
        ConversionError: a bad option, or a dataset that does not load or has a malformed label; nothing is
            written.
    """
    check_split_options(val, test, seed)
    for split in sources:
        if split not in SPLITS:
            raise ConversionError(f"from={split}: must be one of {', '.join(SPLITS)}")
    try:
        spec = check_data(str(data_yaml), tuple(sources))
    except ConfigError as error:
        raise ConversionError(str(error)) from None
    if spec is None:
        raise ConversionError(f"data={data_yaml}: an embedded dataset is generated, not re-split; pass a data YAML")
    images = _names_below_common_folder(_pooled_images(spec, sources))
    # the classes of each image, read as the check above read them (a detection dataset's polygons by their extent:
    # an oriented box's corners may leave the image)
    rows = {name: read_labels(label_path(image), vertices_inside=False) for name, image in images.items()}
    result = stratified_split({name: {spec.names[row[0]] for row in labels} for name, labels in rows.items()},
                              val, test, seed)
    rule = split_rule(val, test, seed)
    report = ConversionReport("yolo split", str(data_yaml), str(out), spec.names, "as in the source",
                              split_rule=rule, warnings=list(result.warnings))
    others = [split for split in SPLITS if split not in sources and spec.entries(split)
              and spec.entries(split) != [entry for source in sources for entry in spec.entries(source)]]
    report.warnings += [f"the source's {split} split ({', '.join(spec.entries(split))}) is not in from="
                        f"{','.join(sources)}: not in the output" for split in others]

    def output(names: Sequence[str]) -> Iterable[OutputImage]:
        for name in names:
            report.boxes_read += len(rows[name])
            yield OutputImage(name, classes=[spec.names[row[0]] for row in rows[name]], source=images[name].resolve(),
                              label_file=label_path(images[name]))

    header = (f"Written by boxloss.convert.split from {Path(data_yaml).resolve()} ({', '.join(sources)})\n"
              f"Split: {rule}; the same options give the same split.")
    return write_yolo_dataset(out, {split: output(names) for split, names in result.splits.items()}, report,
                              header=header, copy=copy, force=force, protect=spec.root)
