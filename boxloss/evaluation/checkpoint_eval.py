"""One evaluation run over the detections of one or several checkpoints: every metric family of each checkpoint with
every backend asked for, cross-checked against pycocotools, TIDE and score-IoU calibration, and the run folder's
files (``metrics.json``, ``metrics_<backend>.json``, ``tide*.json``, ``table.md``).

What produces the detections (ultralytics' validator, in :mod:`boxloss.yolo.val_run`) is not here: this module takes
COCO ground truth and COCO results and imports nothing of ultralytics.

- :func:`evaluate_checkpoint`: ``{backend: metrics}`` (the box metrics, the calibration keys, and each other family's
  metrics under its own key) and ``{family: TIDE}`` of one checkpoint; several backends must agree to
  :data:`~.coco_eval.AGREEMENT_TOLERANCE` in every family (:class:`~.coco_eval.BackendDisagreement` otherwise).
- :func:`write_run_files`: the rows' metrics, TIDE and tables into a run folder; returns the table printed.

An oriented-box checkpoint's boxes are the ``obb`` family (COCO AP on the exact rotated IoU): it takes the place of
``box`` in every file and key (the top of ``metrics.json``, marked ``"family": "obb"``; ``predictions.json``;
``tide.json``; the calibration), and a row's ``"ultralytics"`` entry (ultralytics' own ProbIoU-matched mAP of the same
run, which the caller records) is printed beside it, labelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

from .._io import write_json_atomic, write_text_atomic
from .calibration import CALIBRATION_KEYS, calibration
from .coco_eval import (AGREEMENT_TOLERANCE, BACKENDS, FAMILIES, FAMILY_KEYS, METRIC_KEYS, REFERENCE_BACKEND,
                        BackendDisagreement, backend_disagreement, evaluate)
from .table import format_metrics_table
from .tide import format_tide_table, tide_errors

DEFAULT_BACKEND = "hotcoco"  # bit-identical to pycocotools (tested), 30x faster on BCCD test (scripts/bench_eval.py)
TIDE_BACKEND = "hotcoco"  # tide.json is computed with it whatever backend computes the AP
PREDICTION_FILES = {"box": "predictions.json", "mask": "predictions_mask.json", "pose": "predictions_pose.json",
                    "obb": "predictions.json"}
TIDE_FILES = {"box": "tide.json", "mask": "tide_mask.json", "pose": "tide_pose.json", "obb": "tide.json"}
TIDE_SIMILARITY = {"box": "box IoU", "mask": "mask IoU", "pose": "keypoint OKS", "obb": "exact rotated-box IoU"}
TIDE_OF = {"box": "", "obb": " of the oriented boxes", "mask": " of the masks", "pose": " of the keypoints"}
BOX_FAMILIES = ("box", "obb")  # a checkpoint's own boxes: the first family, the top level of its metrics
STOCK_OBB_KEYS = ("mAP50", "mAP50-95")  # a row's "ultralytics" entry: OBBValidator's own metric, matched by ProbIoU


def backend_list(value: str) -> tuple[str, ...] | None:
    """The backends ``backend=`` names, in order, or None when a name is unknown or repeated.

    ``hotcoco`` -> ``("hotcoco",)``; ``hotcoco,faster_coco_eval`` -> ``("hotcoco", "faster_coco_eval",
    "pycocotools")``: several backends are a cross-check, so pycocotools (the reference) joins it; ``all`` -> every
    backend.
    """
    names = list(BACKENDS) if value == "all" else [name.strip() for name in str(value).split(",")]
    if len(set(names)) != len(names) or not all(name in BACKENDS for name in names):
        return None
    if len(names) > 1 and REFERENCE_BACKEND not in names:
        names.append(REFERENCE_BACKEND)
    return tuple(names)


def evaluate_checkpoint(gt: Mapping[str, Any], predictions: Mapping[str, list[dict[str, Any]]],
                        backends: Sequence[str], row: str = "", extra: Mapping[str, Any] | None = None,
                        oks: Mapping[str, Any] | None = None) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``({backend: metrics}, {family: TIDE})`` of one checkpoint's ``predictions`` (``{family: COCO results}``, its
    boxes' family first: ``"box"``, or ``"obb"`` for an oriented-box checkpoint).

    Each backend's metrics: the box metrics, the calibration of the box scores (:func:`.calibration.calibration`),
    ``extra`` (e.g. the skipped images and the NMS used), and each other family's metrics under its own key
    (``oks``: keypoint AP's sigmas and area, recorded under ``"pose"``). Several backends are cross-checked family by
    family (``row`` names the checkpoint in the error); TIDE is hotcoco's, once per family.
    """
    families = list(predictions)
    boxes = families[0]
    score_vs_iou = calibration(gt, predictions[boxes], iou_type=FAMILIES[boxes])
    marker = {} if boxes == "box" else {"family": boxes}
    metrics_by_backend = {}
    for backend in backends:
        metrics = {**evaluate(gt, predictions[boxes], backend, FAMILIES[boxes]), **marker, **score_vs_iou,
                   **(extra or {})}
        for family in families[1:]:
            sigmas = oks["sigmas"] if family == "pose" else None
            metrics[family] = evaluate(gt, predictions[family], backend, FAMILIES[family], sigmas)
            if family == "pose":
                metrics[family]["oks"] = oks
        metrics_by_backend[backend] = metrics
    if len(backends) > 1:
        for family in families:
            disagreement = backend_disagreement({b: family_metrics(metrics_by_backend[b], family) for b in backends},
                                                keys=FAMILY_KEYS[family])
            if disagreement:
                where = row if family in BOX_FAMILIES else f"{row} ({family})"
                raise BackendDisagreement(f"backends disagree on {where}: {disagreement}")
    tide = {family: tide_errors(gt, predictions[family], iou_type=FAMILIES[family],
                                kpt_oks_sigmas=oks["sigmas"] if family == "pose" else None) for family in families}
    return metrics_by_backend, tide


def write_run_files(run_dir: Path, results: Mapping[str, Mapping[str, Any]], tide: Mapping[str, Mapping[str, Any]],
                    backends: Sequence[str]) -> str:
    """Write the run folder's metrics, TIDE and table from ``results`` (``{backend: {row: metrics}}``) and ``tide``
    (``{family: {row: TIDE}}``): one row's files hold its metrics, several rows' ``{row: metrics}``; the first backend
    writes ``metrics.json``, each other ``metrics_<backend>.json``. Returns the table (``table.md``)."""
    several = len(results[backends[0]]) > 1
    first = backends[0]
    table_rows = dict(results[first])
    for backend in backends[1:]:
        table_rows.update({f"{row} [{backend}]": metrics for row, metrics in results[backend].items()})
    name_column = "model" if not several else "loss"
    table = format_family_table(table_rows, name_column)
    if any(family_metrics(metrics, "obb") is not None for metrics in table_rows.values()):
        table = "Oriented boxes: COCO AP on the exact rotated-box IoU (hotcoco)\n\n" + table
    stock_rows = {row: metrics["ultralytics"] for row, metrics in results[first].items() if "ultralytics" in metrics}
    if stock_rows:
        table += ("\n\nultralytics' own OBB metric of the same run, for comparison only: predictions matched by "
                  "ProbIoU, which reads rotated overlaps high (docs/evaluation.md); its own interpolation\n\n"
                  + format_metrics_table(stock_rows, STOCK_OBB_KEYS, first_column=name_column))
    table += "\n\n" + format_metrics_table(table_rows, CALIBRATION_KEYS, first_column=name_column)
    for family, rows in tide.items():
        if not rows:
            continue
        table += (f"\n\nTIDE{TIDE_OF[family]} (hotcoco, {TIDE_SIMILARITY[family]}): ΔX = AP gained if every error of type X were "
                  "fixed, relative to the AP at that IoU (background IoU 0.1)\n\n"
                  + format_tide_table(rows if several else {"": next(iter(rows.values()))},
                                      first_column=name_column if several else "TIDE of"))
    write_text_atomic(run_dir / "table.md", table + "\n")
    for backend in backends:
        payload = results[backend] if several else next(iter(results[backend].values()))
        write_json_atomic(run_dir / ("metrics.json" if backend == first else f"metrics_{backend}.json"), payload,
                          indent=2)
    for family, rows in tide.items():
        if rows:
            write_json_atomic(run_dir / TIDE_FILES[family], rows if several else next(iter(rows.values())), indent=2)
    return table


def agreement_line(results: Mapping[str, Mapping[str, Any]], backends: Sequence[str]) -> str:
    """One line: the backends agree, and the largest difference of any of them from pycocotools."""
    first = backends[0]
    difference = max(abs(family_metrics(results[REFERENCE_BACKEND][row], family)[key]
                         - family_metrics(results[other][row], family)[key])
                     for other in backends for row in results[first] for family in FAMILIES
                     if family_metrics(results[first][row], family) is not None for key in FAMILY_KEYS[family])
    return (f"backends agree: {', '.join(backends)}, max |difference| from {REFERENCE_BACKEND} {difference:.2e} "
            f"(tolerance {AGREEMENT_TOLERANCE:g})")


def family_metrics(metrics: Mapping[str, Any], family: str) -> Mapping[str, Any] | None:
    """One family's metrics out of a row of metrics.json: the box metrics (an oriented-box checkpoint's: obb) are the
    row itself, another family sits under its own key (None when the row has none)."""
    if family in BOX_FAMILIES:
        return metrics if metrics.get("family", "box") == family else None
    return metrics.get(family)


def format_family_table(rows: Mapping[str, Mapping[str, Any]], name_column: str) -> str:
    """The AP table: one row per checkpoint (box metrics), and with segmentation or pose checkpoints one row per
    checkpoint and family (``eiou box``, ``eiou mask``) so the families line up column by column."""
    if not any(family_metrics(metrics, family) for metrics in rows.values() for family in ("mask", "pose")):
        return format_metrics_table(rows, first_column=name_column)
    columns = list(METRIC_KEYS) + [key for key in FAMILY_KEYS["pose"] if key not in METRIC_KEYS
                                   and any("pose" in metrics for metrics in rows.values())]
    by_family = {}
    for row, metrics in rows.items():
        name, _, backend = row.partition(" [")
        for family in FAMILIES:
            if family_metrics(metrics, family) is not None:
                by_family[f"{name} {family}" + (f" [{backend}" if backend else "")] = family_metrics(metrics, family)
    return format_metrics_table(by_family, columns, first_column=name_column)
