"""Benchmark COCO evaluation: pycocotools, faster-coco-eval and hotcoco (and TIDE, and ultralytics' own metric).

Three kinds of input, each timed in the same process, the backends one after the other:
1. ``val_dir=DIR`` (named by ``val_name=``): a val.py run folder's ``gt.json`` and ``predictions.json``, i.e. a
   real model's detections (e.g. the BCCD test split of a trained YOLOv8n);
2. ``coco128=JSON``: coco128's official instances JSON (crowd regions, 80 classes) with detections imitated from
   its ground truth (``boxloss.testing.detections.detections_from_gt``: every object jittered, scores falling with
   the jitter, 10 background boxes per image): no trained COCO model is available offline;
3. the synthetic COCO-val-sized set (``boxloss.testing.detections.random_detections``, the generator the
   evaluation tests use): ``images=`` images of 640x480, ~7 objects per image, 80 classes with a long tail, exactly
   100 detections per image (``images=0`` skips it).

Rows (wall clock, ``time.perf_counter``, after a warm-up call of each; the median of ``repeats=`` runs for the
first two kinds, of ``synthetic_repeats=`` (default one) for the synthetic set): ``boxloss.evaluation.evaluate(...,
backend)`` for each backend (COCOeval evaluate + accumulate + our summary, the input copy and check included, shown
on its own row); ``tide_errors`` (hotcoco evaluate + TIDE at IoU 0.5 and 0.75, what val.py adds to every
evaluation); on the synthetic set also ultralytics' internal metric as ``DetectionValidator`` computes it (per image
``box_iou`` + ``match_predictions``, then ``ap_per_class``; not COCO AP: no area ranges or crowd handling, its own
interpolation). Ratios are to pycocotools on the same input in the same run; "max |Δ|" is the largest difference
from pycocotools over every metric of metrics.json.

Examples:
    python scripts/bench_eval.py val_dir=runs/val/val val_name="BCCD test" \\
        coco128=../shared/datasets/coco128/annotations/instances_train2017.json out=results/bench_eval/cpu.md
    python scripts/bench_eval.py images=500 out=runs/bench_eval/small.md
Output: a markdown table on stdout, written atomically to ``out=`` and as JSON next to it (``.json``).
Progress goes to stderr. Every argument is key=value (``--help`` lists the keys); the ``--flag`` spelling of
earlier releases is refused with one line naming its key.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import statistics
import sys
import time
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from boxloss.evaluation import BACKENDS, METRIC_KEYS, evaluate, tide_errors  # noqa: E402
from boxloss.evaluation.coco_eval import REFERENCE_BACKEND, check_predictions  # noqa: E402
from boxloss.evaluation.coco_gt import gt_from_coco_json, load_coco  # noqa: E402
from boxloss._io import write_json_atomic, write_text_atomic  # noqa: E402
from boxloss.errors import ConfigError  # noqa: E402
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli  # noqa: E402
from boxloss.param import Param  # noqa: E402
from boxloss.testing.detections import detections_from_gt, random_detections  # noqa: E402

KEYS = {
    "val_dir": Param(None, "a val.py run folder (gt.json, predictions.json): a real model's detections",
                     value_type=str),
    "val_name": Param(None, "its name in the output (default: the folder's name)", value_type=str),
    "coco128": Param(None, "coco128's official instances JSON", value_type=str),
    "repeats": Param(5, "runs per backend on the real-data sets (median)", lambda n: n >= 1, ">= 1"),
    "images": Param(5000, "synthetic set size (0: skip it)", lambda n: n >= 0, ">= 0"),
    "synthetic_repeats": Param(1, "runs per backend on the synthetic set", lambda n: n >= 1, ">= 1"),
    "dets": Param(100, "synthetic detections per image", lambda n: n >= 1, ">= 1"),
    "classes": Param(80, "synthetic classes", lambda n: n >= 1, ">= 1"),
    "gt_per_image": Param(7.0, "synthetic objects per image (mean)", lambda n: n > 0, "> 0"),
    "seed": Param(0, "seed of the synthetic set and of the coco128 detections"),
    "out": Param("runs/bench_eval/cpu.md", "markdown report; the JSON goes next to it with the suffix .json"),
}
RENAMED = {"--val-dir": "val_dir=DIR val_name=NAME"}  # --val-dir NAME=DIR became two keys
TIDE_ROW = "TIDE at 0.5 and 0.75 (hotcoco)"
COPY_ROW = "of which input copy + check (in every row above)"


def log(message: str) -> None:
    print(f"[bench_eval {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ultralytics_metric(data) -> tuple[float, dict[str, float]]:
    """(seconds for the tp matrices + ap_per_class, {"AP", "AP50"}) the way DetectionValidator computes them."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    validator = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # all match_predictions reads from self
    inputs = [(torch.from_numpy(g).float(), torch.from_numpy(gc).float(), torch.from_numpy(p).float(),
               torch.from_numpy(pc).float())
              for g, gc, p, pc in zip(data.gt_boxes, data.gt_classes, data.pred_boxes, data.pred_classes)]

    def metric():
        tps = []
        for gt_boxes, gt_classes, pred_boxes, pred_classes in inputs:
            if len(gt_classes) == 0 or len(pred_classes) == 0:
                tps.append(np.zeros((len(pred_classes), 10), dtype=bool))
                continue
            iou = box_iou(gt_boxes, pred_boxes)  # [G, D]
            tps.append(DetectionValidator.match_predictions(validator, pred_classes, gt_classes, iou).cpu().numpy())
        results = ap_per_class(np.concatenate(tps), np.concatenate(data.pred_scores),
                               np.concatenate(data.pred_classes), np.concatenate(data.gt_classes))
        return results[5]  # (classes with labels, 10)

    seconds, ap = timed(metric)
    return seconds, {"AP": float(ap.mean()), "AP50": float(ap[:, 0].mean())}


def bench_set(gt: dict, predictions: list, repeats: int) -> dict[str, dict]:
    """``{row: {"seconds", "AP", "AP50", "max_difference"}}``: every backend and TIDE, ``repeats`` rounds interleaved,
    and the input copy + check that every row includes."""
    times: dict[str, list[float]] = {backend: [] for backend in (*BACKENDS, TIDE_ROW, COPY_ROW)}
    metrics: dict[str, dict] = {}
    for _ in range(repeats):
        times[COPY_ROW].append(timed(lambda: check_predictions(load_coco(gt), predictions))[0])
        for backend in BACKENDS:
            seconds, metrics[backend] = timed(lambda: evaluate(gt, predictions, backend))
            times[backend].append(seconds)
        seconds, tide = timed(lambda: tide_errors(gt, predictions))
        times[TIDE_ROW].append(seconds)
    reference = metrics[REFERENCE_BACKEND]
    rows = {}
    for backend in BACKENDS:
        rows[backend] = {"seconds": statistics.median(times[backend]), "AP": metrics[backend]["AP"],
                         "AP50": metrics[backend]["AP50"],
                         "max_difference": max(abs(metrics[backend][k] - reference[k]) for k in METRIC_KEYS)}
        log(f"  {backend}: {rows[backend]['seconds']:.4f} s, AP {rows[backend]['AP']:.4f}")
    rows[TIDE_ROW] = {"seconds": statistics.median(times[TIDE_ROW]), "AP50": tide["AP50"]["ap"],
                      "max_difference": abs(tide["AP50"]["ap"] - reference["AP50"])}
    log(f"  TIDE: {rows[TIDE_ROW]['seconds']:.4f} s")
    rows[COPY_ROW] = {"seconds": statistics.median(times[COPY_ROW])}
    return rows


def describe(gt: dict, predictions: list) -> str:
    objects = sum(not a.get("iscrowd", 0) for a in gt["annotations"])
    crowd = len(gt["annotations"]) - objects
    return (f"{len(gt['images'])} images, {objects} objects" + (f" (+{crowd} crowd regions)" if crowd else "")
            + f", {len(gt['categories'])} categories, {len(predictions)} detections")


def table(name: str, info: str, rows: dict[str, dict], runs: str) -> list[str]:
    reference = rows[REFERENCE_BACKEND]["seconds"]
    lines = [f"## {name}", "", f"{info}; {runs}.", "",
             "| evaluator | seconds | ratio to pycocotools | AP | AP50 | max \\|Δ\\| from pycocotools |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for row, values in rows.items():
        cells = [f"{values[k]:.4f}" if k in values else "" for k in ("AP", "AP50")]
        difference = f"{values['max_difference']:.1e}" if "max_difference" in values else ""
        lines.append(f"| {row} | {values['seconds']:.4f} | {values['seconds'] / reference:.3f} | {cells[0]} | "
                     f"{cells[1]} | {difference} |")
    return lines + [""]


def val_sets(settings: dict) -> list[tuple[str, Path]]:
    """``[(name, folder)]`` of ``val_dir=`` and ``val_name=`` (none without val_dir=); the folder must hold gt.json
    and predictions.json."""
    if settings["val_dir"] is None:
        if settings["val_name"] is not None:
            raise ConfigError("val_name= names the set of val_dir=; give val_dir= too")
        return []
    folder = Path(settings["val_dir"])
    missing = [file for file in ("gt.json", "predictions.json") if not (folder / file).is_file()]
    if missing:
        raise ConfigError(f"val_dir={settings['val_dir']!r} has no {' or '.join(missing)} (a val.py run folder has "
                          "both)")
    return [(settings["val_name"] or folder.name, folder)]


def main(argv: list[str]) -> int:
    settings = parse_keyvalues(argv, KEYS, text_as_typed=True, renamed=RENAMED)
    args = SimpleNamespace(**settings)
    sets = []  # (name, gt, predictions, how the predictions were made)
    for name, folder in val_sets(settings):
        sets.append((name, json.loads((Path(folder) / "gt.json").read_text()),
                     json.loads((Path(folder) / "predictions.json").read_text()),
                     f"a trained model's detections (val.py run {folder})"))
    if args.coco128:
        gt = gt_from_coco_json(args.coco128)
        sets.append(("coco128 (official JSON)", gt, detections_from_gt(gt, seed=args.seed),
                     f"detections imitated from the ground truth (detections_from_gt, seed {args.seed})"))

    lines = ["# COCO evaluation time: pycocotools, faster-coco-eval, hotcoco", "",
             f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} logical CPUs (shared with other jobs: timings are indicative); Python "
             f"{platform.python_version()}; hotcoco {version('hotcoco')}, faster-coco-eval "
             f"{version('faster-coco-eval')}, pycocotools {version('pycocotools')}; command: "
             f"`{shlex.join(['python', 'scripts/bench_eval.py', *argv])}`.", ""]
    record: dict = {"args": settings, "sets": {}}
    warm_up = {"images": [{"id": 1, "width": 10, "height": 10}], "annotations": [],
               "categories": [{"id": 1, "name": "x"}]}
    for backend in BACKENDS:  # imports and first-call costs out of the timings
        evaluate(warm_up, [], backend)
    tide_errors(warm_up, [])
    for name, gt, predictions, origin in sets:
        log(f"{name}: {describe(gt, predictions)}, {args.repeats} rounds")
        rows = bench_set(gt, predictions, args.repeats)
        lines += table(name, f"{describe(gt, predictions)}: {origin}", rows, f"median of {args.repeats} runs")
        record["sets"][name] = {"input": describe(gt, predictions), "origin": origin, "rows": rows}

    if args.images:
        log(f"generating {args.images} images x {args.dets} detections, {args.classes} classes")
        data = random_detections(args.images, args.dets, args.classes, args.gt_per_image, args.seed)
        name = f"synthetic, COCO-val-sized ({args.images} images)"
        log(f"{name}: {describe(data.gt, data.predictions)}, {args.synthetic_repeats} rounds")
        rows = bench_set(data.gt, data.predictions, args.synthetic_repeats)
        log("ultralytics match_predictions + ap_per_class ...")
        seconds, ul_metrics = ultralytics_metric(data)
        rows["ultralytics match_predictions + ap_per_class (not COCO AP)"] = {"seconds": seconds, **ul_metrics}
        origin = (f"random_detections({args.images}, {args.dets}, {args.classes}, {args.gt_per_image}, "
                  f"seed={args.seed})")
        runs = "one run" if args.synthetic_repeats == 1 else f"median of {args.synthetic_repeats} runs"
        lines += table(name, f"{describe(data.gt, data.predictions)}: {origin}", rows, runs)
        record["sets"][name] = {"input": describe(data.gt, data.predictions), "origin": origin, "rows": rows}

    text = "\n".join(lines)
    print(text)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    write_json_atomic(out.with_suffix(".json"), record, indent=2)
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_eval.py", lambda: format_help(__doc__, KEYS), main))
