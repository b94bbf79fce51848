"""The benchmark's per-image match tables: ``<out>/results/matches/<run>-<split>.npz``, one per evaluation.

A run's evaluation folder (``val/<run>-<split>/`` with ``gt.json`` and ``predictions.json``) is large and not kept
with published results; its :class:`~boxloss.evaluation.matches.MatchTable` (a few tens of kB) is all the two-stage
bootstrap over seeds and images (:mod:`.bootstrap`) needs, so the matrix stores one beside the result records the
moment a run finishes, and ``scripts/benchmark.py rescore matches=true`` adds them to an existing benchmark from its
saved evaluation folders. A table counts only if it reproduces its record's AP at every threshold (to 1e-9): a
table from other detections is never mixed in.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..evaluation import AP_KEYS
from ..evaluation.matches import MatchTable, ap_per_threshold, match_table

MATCHES_DIR = "matches"
AGREEMENT = 1e-9


def matches_path(out: str | os.PathLike, run: str, split: str) -> Path:
    return Path(out) / "results" / MATCHES_DIR / f"{run}-{split}.npz"


def reproduces(table: MatchTable, metrics: Mapping[str, float]) -> bool:
    """Whether ``table`` gives the record's AP50 … AP95 (to :data:`AGREEMENT`)."""
    ap = ap_per_threshold(table)
    return all(abs(float(ap[i]) - float(metrics[key])) <= AGREEMENT for i, key in enumerate(AP_KEYS))


def save_from_val(out: str | os.PathLike, run: str, split: str, val_dir: str | os.PathLike,
                  metrics: Mapping[str, float] | None = None) -> Path:
    """Build the table of one evaluation from its folder and store it; ValueError when the folder lacks its files
    or (``metrics`` given) does not reproduce them."""
    folder = Path(val_dir)
    files = [folder / "gt.json", folder / "predictions.json"]
    if not all(f.is_file() for f in files):
        raise ValueError(f"{folder} has no gt.json and predictions.json")
    table = match_table(files[0], json.loads(files[1].read_text(encoding="utf-8")))
    if table.det_score.size and np.array_equal(table.det_score.astype(np.float32).astype(float), table.det_score):
        table = MatchTable(**{**table.__dict__, "det_score": table.det_score.astype(np.float32)})  # lossless
    if metrics is not None and not reproduces(table, metrics):
        raise ValueError(f"{folder}: its predictions do not reproduce the record's AP per threshold")
    path = matches_path(out, run, split)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.save(path)
    return path


def load_tables(results: Sequence[Mapping[str, Any]], out: str | os.PathLike | None, splits: Sequence[str],
                log: Callable[[str], None] = print) -> dict[str, dict[str, MatchTable]]:
    """``{split: {run: table}}`` for the results whose stored table reproduces their metrics; others are left out
    (a table that does not reproduce its record is named in ``log``)."""
    tables: dict[str, dict[str, MatchTable]] = {split: {} for split in splits}
    if out is None:
        return tables
    for result in results:
        for split in splits:
            path = matches_path(out, result["run"], split)
            if not path.is_file() or split not in result["metrics"]:
                continue
            table = MatchTable.load(path)
            if reproduces(table, result["metrics"][split]):
                tables[split][result["run"]] = table
            else:
                log(f"benchmark: {path} does not reproduce {result['run']}'s {split} AP; left out of the bootstrap")
    return tables
