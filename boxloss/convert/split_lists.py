"""An official split given as list files (``convert.py voc train_list=data/train_labels.csv``), matched to the images of
a conversion.

List files. A ``.csv`` file is read with :mod:`csv` and must have a ``filename`` column (the layout of the
TensorFlow object-detection CSVs, e.g. the raccoon dataset's ``data/{train,test}_labels.csv``: one row per *box*,
so an image appears once per box); any other file is plain text, one image name or stem per line (blank lines and
``#`` comments skipped). Repeated names are collapsed; the report keeps both counts (rows, images).

Matching. A listed entry names one image by, in this order, its path below the images folder (``sub/x.jpg``), that
path without the suffix (``sub/x``), its file name (``x.jpg``) or its stem (``x``); the first rule that matches
decides and must match exactly one image (two ``x.jpg`` in different folders, or ``x.jpg`` and ``x.png`` for the
stem ``x``, is an error naming both).

What a careful user expects, and what happens:

* an image listed in two splits: an **error** naming both lists (a split that leaks test images into train is
  worse than no split);
* a listed entry that matches no annotated image (no image, or an image without an XML): an **error** naming the
  list file and line (the split would silently not be the official one);
* an annotated image in no list: **left out**, with a warning, and listed in the report (``unlisted_images``); the
  lists define the dataset, and adding an unlisted image to any split would change the official benchmark.

Split names are ``train``, ``val`` and ``test`` (the keys of ``data.yaml``), each given at most once.
"""

from __future__ import annotations

import csv
import posixpath
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence, Union

from .._io import not_utf8, read_text
from .report import ConversionError, check_split_name

__all__ = ["ListedSplit", "SplitList", "assign_listed", "read_split_list"]

SPLIT_NAMES = ("train", "val", "test")
CSV_COLUMN = "filename"


@dataclass
class SplitList:
    """One list file: its split, its distinct entries in file order (with the line of their first row), its rows."""

    split: str
    path: Path
    entries: list[str]
    lines: list[int]
    rows: int

    def describe(self) -> str:
        repeated = f" in {self.rows} rows" if self.rows != len(self.entries) else ""
        return f"{self.split}={self.path} ({len(self.entries)} images{repeated})"


@dataclass
class ListedSplit:
    """Split -> the keys listed in it (sorted), and the keys in no list (sorted)."""

    splits: dict[str, list[str]]
    unlisted: list[str] = field(default_factory=list)


def read_split_list(split: str, path: Union[str, Path]) -> SplitList:
    """Read one list file (module docstring); ConversionError naming the file for a missing file, an undecodable
    one, a CSV without a ``filename`` column, a row without a file name, or no entry at all."""
    check_split_name(split, "split list")
    if split not in SPLIT_NAMES:
        raise ConversionError(f"split list {split}={path}: the split must be one of {', '.join(SPLIT_NAMES)}")
    path = Path(path)
    try:
        text = read_text(path)
    except FileNotFoundError:
        raise ConversionError(f"{split}_list={path}: file not found") from None
    except UnicodeDecodeError as error:
        raise ConversionError(f"{path}: {not_utf8(error)}") from None
    except OSError as error:
        raise ConversionError(f"{path}: cannot read ({error.strerror})") from None
    rows: list[tuple[int, str]] = []
    if path.suffix.lower() == ".csv":
        reader = csv.DictReader(text.splitlines())
        if CSV_COLUMN not in (reader.fieldnames or []):
            raise ConversionError(f"{path}: no {CSV_COLUMN!r} column (its columns: "
                                  f"{', '.join(reader.fieldnames or []) or 'none'})")
        for row in reader:
            name = (row.get(CSV_COLUMN) or "").strip()
            if not name:
                raise ConversionError(f"{path}: line {reader.line_num}: empty {CSV_COLUMN!r}")
            rows.append((reader.line_num, name))
    else:
        for number, line in enumerate(text.splitlines(), 1):
            name = line.strip()
            if name and not name.startswith("#"):
                rows.append((number, name))
    if not rows:
        raise ConversionError(f"{path}: lists no image")
    first: dict[str, int] = {}
    for number, name in rows:
        first.setdefault(name, number)
    return SplitList(split, path, list(first), list(first.values()), len(rows))


def _index(keys: Iterable[str]) -> list[dict[str, list[str]]]:
    """Lookup tables of the matching rules: path, path without suffix, file name, stem -> keys."""
    tables: list[dict[str, list[str]]] = [{}, {}, {}, {}]
    for key in keys:
        path = PurePosixPath(key)
        for table, form in zip(tables, (key, path.with_suffix("").as_posix(), path.name, path.stem)):
            table.setdefault(form, []).append(key)
    return tables


def assign_listed(lists: Sequence[SplitList], keys: Iterable[str]) -> ListedSplit:
    """Each key (an image's ``/`` path below the images folder) into the split whose list names it (module doc)."""
    keys = sorted(keys)
    seen_splits = [listing.split for listing in lists]
    twice = next((s for s in seen_splits if seen_splits.count(s) > 1), None)
    if twice is not None:
        raise ConversionError(f"{twice}_list is given twice")
    tables = _index(keys)
    where: dict[str, SplitList] = {}
    splits: dict[str, list[str]] = {}
    for listing in lists:
        chosen = splits.setdefault(listing.split, [])
        for entry, line in zip(listing.entries, listing.lines):
            found = next((table[form] for table, form in zip(tables, _forms(entry)) if form in table), [])
            if not found:
                raise ConversionError(f"{listing.path}: line {line}: {entry!r} matches no annotated image (no image "
                                      "of that name, or one without an XML)")
            if len(found) > 1:
                raise ConversionError(f"{listing.path}: line {line}: {entry!r} matches several images, {found[0]} "
                                      f"and {found[1]}; list the path below the images folder instead")
            key = found[0]
            if key in where and where[key] is not listing:
                raise ConversionError(f"{key} is in two splits: {where[key].split} ({where[key].path}) and "
                                      f"{listing.split} ({listing.path}, line {line})")
            if key not in where:
                where[key] = listing
                chosen.append(key)
    ordered = {split: sorted(splits[split]) for split in SPLIT_NAMES if split in splits}
    return ListedSplit(ordered, [key for key in keys if key not in where])


def _forms(entry: str) -> tuple[str, str, str, str]:
    """An entry looked up in each table of :func:`_index`: the path as given for the first two, its last part for
    the file-name and stem tables."""
    normal = posixpath.normpath(entry.replace("\\", "/"))
    name = PurePosixPath(normal).name
    return normal, normal, name, name
