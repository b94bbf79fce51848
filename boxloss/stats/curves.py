"""Learning curves: does the ranking hold at this training budget, and had the runs converged?

Every run's ``results.csv`` (ultralytics' per-epoch log) holds its validation mAP50-95 and mAP50 after each epoch
(ultralytics' own metric on the val split, not COCO AP; it tracks COCO AP closely at these thresholds). Per config:

- the mean and sample standard deviation over seeds at every epoch (the curves of ``curves.png``);
- the values at 25, 50, 75 and 100 % of the budget, and the configs ranked by mean mAP50-95 at each of those
  checkpoints, so a reader sees where a ranking flips;
- a convergence flag from the last 10 % of the epochs (at least :data:`MIN_WINDOW`): per seed, the least-squares
  slope of mAP50-95 over that window, times the window's length, is the gain one more tenth of the budget would
  bring at the final rate. A config is *converged* when the upper end of the 95 % t interval of that gain over the
  seeds is at most :data:`GAIN_TOLERANCE` (0.5 AP point; with one seed, the gain itself). Otherwise the curves are
  still rising (or too noisy to tell) and a comparison at this budget holds at this budget only.
"""

from __future__ import annotations

import csv
import io
import math
import os
import statistics
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .power import t_interval

CURVE_METRICS = {"mAP50-95": "metrics/mAP50-95(B)", "mAP50": "metrics/mAP50(B)"}  # results.csv columns
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of the budget in the checkpoint table
WINDOW_FRACTION, MIN_WINDOW = 0.1, 3  # the convergence window: the last 10 % of the epochs, at least 3
GAIN_TOLERANCE = 0.005  # 0.5 AP point per further tenth of the budget


def read_curve(text: str) -> dict[str, list[float]] | None:
    """``{"epoch": [...], "mAP50-95": [...], "mAP50": [...]}`` from the text of a results.csv; None when it has no
    such columns or no rows."""
    rows = list(csv.DictReader(io.StringIO(text)))
    if not rows:
        return None
    rows = [{key.strip(): value for key, value in row.items() if key} for row in rows]
    if "epoch" not in rows[0] or not all(column in rows[0] for column in CURVE_METRICS.values()):
        return None
    try:
        curve = {"epoch": [int(float(row["epoch"])) for row in rows]}
        for name, column in CURVE_METRICS.items():
            curve[name] = [float(row[column]) for row in rows]
    except (TypeError, ValueError):
        return None
    return curve


def curve_problem(curve: Mapping[str, Sequence[float]]) -> str | None:
    """Why a curve cannot be averaged: ``"mAP50-95 is nan at epoch 7"`` (training diverged, or ultralytics logged no
    value), or None when every point is finite."""
    for name in CURVE_METRICS:
        for epoch, value in zip(curve["epoch"], curve[name]):
            if not math.isfinite(value):
                return f"{name} is {value} at epoch {epoch}"
    return None


def read_curve_file(path: str | os.PathLike) -> dict[str, list[float]] | None:
    try:
        return read_curve(Path(path).read_text(encoding="utf-8"))
    except OSError:
        return None


def convergence(curves: Sequence[Mapping[str, Sequence[float]]], epochs: int) -> dict[str, Any]:
    """The convergence flag of one config (see the module): ``{"window", "gain", "gains", "t_ci", "converged"}``,
    ``converged`` None when the budget is too short for a window."""
    window = max(MIN_WINDOW, math.ceil(WINDOW_FRACTION * epochs))
    gains = []
    for curve in curves:
        values = list(curve["mAP50-95"])
        if len(values) < window + 1:
            continue
        x, y = np.arange(window, dtype=float), np.asarray(values[-window:], dtype=float)
        slope = float(np.polyfit(x, y, 1)[0])
        gains.append(slope * window)
    if not gains:
        return {"window": window, "gain": None, "gains": [], "t_ci": None, "converged": None}
    ci = t_interval(gains) if len(gains) >= 2 else None
    upper = ci[1] if ci else gains[0]
    return {"window": window, "gain": statistics.fmean(gains), "gains": gains, "t_ci": list(ci) if ci else None,
            "converged": upper <= GAIN_TOLERANCE}


def summarize_curves(curves: Mapping[str, Mapping[int, Mapping[str, Sequence[float]]]],
                     order: Sequence[str]) -> dict[str, Any] | None:
    """``curves``: ``{cfg: {seed: curve}}``. Per config the mean/std curves, the checkpoint values and the
    convergence flag; the rank order of the configs at each checkpoint. None when no run has a curve."""
    configs = [cfg for cfg in order if curves.get(cfg)]
    if not configs:
        return None
    epochs = max(len(curve["epoch"]) for cfg in configs for curve in curves[cfg].values())
    checkpoints = sorted({max(1, round(fraction * epochs)) for fraction in CHECKPOINTS})
    per_cfg: dict[str, Any] = {}
    for cfg in configs:
        runs = list(curves[cfg].values())
        length = max(len(curve["epoch"]) for curve in runs)
        entry: dict[str, Any] = {"n": len(runs), "seeds": sorted(curves[cfg]), "epochs": length,
                                 "mean": {}, "std": {}, "at": {}}
        for name in CURVE_METRICS:
            by_epoch = [[curve[name][e] for curve in runs if len(curve[name]) > e] for e in range(length)]
            entry["mean"][name] = [statistics.fmean(v) for v in by_epoch]
            entry["std"][name] = [statistics.stdev(v) if len(v) >= 2 else None for v in by_epoch]
        for epoch in checkpoints:
            values = {name: [curve[name][epoch - 1] for curve in runs if len(curve[name]) >= epoch]
                      for name in CURVE_METRICS}
            entry["at"][epoch] = {name: {"mean": statistics.fmean(v) if v else None,
                                         "std": statistics.stdev(v) if len(v) >= 2 else None, "n": len(v)}
                                  for name, v in values.items()}
        entry["convergence"] = convergence(runs, length)
        per_cfg[cfg] = entry
    ranks = {}
    for epoch in checkpoints:
        scored = [(per_cfg[cfg]["at"][epoch]["mAP50-95"]["mean"], cfg) for cfg in configs
                  if per_cfg[cfg]["at"][epoch]["mAP50-95"]["mean"] is not None]
        ranks[epoch] = [cfg for _, cfg in sorted(scored, key=lambda item: -item[0])]
    return {"epochs": epochs, "checkpoints": checkpoints, "configs": per_cfg, "ranks": ranks,
            "gain_tolerance": GAIN_TOLERANCE, "window_fraction": WINDOW_FRACTION}
