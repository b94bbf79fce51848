"""Benchmark COCO evaluation on a COCO-val-sized synthetic set: pycocotools, faster-coco-eval, ultralytics' metric.

Input (``boxloss.testing.detections.random_detections``, the generator the evaluation tests use): 5,000
images of 640x480, ~7 objects per image (Poisson), 80 classes with a long tail, exactly 100 detections per image
(jittered copies of the objects with IoUs over the whole 0.5-0.95 range, 10 % with a wrong class, plus background
boxes), i.e. the size of a COCO val2017 evaluation at max_det = 100.

Timed, in one process, one after the other (wall clock, ``time.perf_counter``):
1. ``boxloss.evaluation.evaluate(..., backend="pycocotools")``: COCOeval evaluate + accumulate + our summary;
2. the same with ``backend="faster_coco_eval"``;
3. ultralytics' internal metric as ``DetectionValidator`` computes it: per image ``box_iou`` + the validator's
   ``match_predictions`` (the tp matrix), then ``ultralytics.utils.metrics.ap_per_class`` on all images.
Both ``evaluate`` rows include the same input copying and checking (reported on its own row). Ratios are to
pycocotools in the same run. ultralytics' numbers are not COCO AP (no area ranges or crowd handling, its own
interpolation); they are printed for reference only.

Examples:
    python scripts/bench_eval.py                                    # full size (minutes on a small CPU)
    python scripts/bench_eval.py --images 500 --out runs/bench_eval/small.md
Output: a markdown table on stdout, written atomically to ``--out`` and as JSON next to it (``.json``).
Progress goes to stderr.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from boxloss.evaluation import evaluate  # noqa: E402
from boxloss.evaluation.coco_eval import check_predictions  # noqa: E402
from boxloss.evaluation.coco_gt import load_coco  # noqa: E402
from boxloss._io import write_json_atomic, write_text_atomic  # noqa: E402
from boxloss.keyvalues import OneLineParser, run_cli  # noqa: E402
from boxloss.testing.detections import random_detections  # noqa: E402


def log(message: str) -> None:
    print(f"[bench_eval {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ultralytics_metric(data) -> tuple[float, float, dict[str, float]]:
    """(seconds for the tp matrices, seconds for ap_per_class, {"AP", "AP50"}) the way DetectionValidator does it."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, box_iou

    validator = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # all match_predictions reads from self
    inputs = [(torch.from_numpy(g).float(), torch.from_numpy(gc).float(), torch.from_numpy(p).float(),
               torch.from_numpy(pc).float())
              for g, gc, p, pc in zip(data.gt_boxes, data.gt_classes, data.pred_boxes, data.pred_classes)]

    def match_all():
        tps = []
        for gt_boxes, gt_classes, pred_boxes, pred_classes in inputs:
            if len(gt_classes) == 0 or len(pred_classes) == 0:
                tps.append(np.zeros((len(pred_classes), 10), dtype=bool))
                continue
            iou = box_iou(gt_boxes, pred_boxes)  # [G, D]
            tps.append(DetectionValidator.match_predictions(validator, pred_classes, gt_classes, iou).cpu().numpy())
        return np.concatenate(tps)

    match_seconds, tp = timed(match_all)
    conf, pred_cls = np.concatenate(data.pred_scores), np.concatenate(data.pred_classes)
    target_cls = np.concatenate(data.gt_classes)
    ap_seconds, results = timed(lambda: ap_per_class(tp, conf, pred_cls, target_cls))
    ap = results[5]  # (classes with labels, 10)
    return match_seconds, ap_seconds, {"AP": float(ap.mean()), "AP50": float(ap[:, 0].mean())}


def main(argv=None) -> int:
    parser = OneLineParser(prog="bench_eval.py", description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=5000)
    parser.add_argument("--dets", type=int, default=100, help="detections per image")
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--gt-per-image", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench_eval/cpu.md")
    args = parser.parse_args(argv)

    log(f"generating {args.images} images x {args.dets} detections, {args.classes} classes")
    gen_seconds, data = timed(lambda: random_detections(args.images, args.dets, args.classes, args.gt_per_image,
                                                           args.seed))
    n_gt, n_det = len(data.gt["annotations"]), len(data.predictions)
    log(f"generated {n_gt} objects, {n_det} detections in {gen_seconds:.1f} s")

    rows = {}
    copy_seconds, _ = timed(lambda: check_predictions(load_coco(data.gt), data.predictions))
    for backend in ("pycocotools", "faster_coco_eval"):
        log(f"{backend} ...")
        seconds, metrics = timed(lambda: evaluate(data.gt, data.predictions, backend))
        rows[backend] = {"seconds": seconds, "AP": metrics["AP"], "AP50": metrics["AP50"]}
        log(f"{backend}: {seconds:.1f} s, AP {metrics['AP']:.4f}")
    log("ultralytics match_predictions + ap_per_class ...")
    match_seconds, ap_seconds, ul_metrics = ultralytics_metric(data)
    rows["ultralytics (match_predictions + ap_per_class)"] = {"seconds": match_seconds + ap_seconds, **ul_metrics}
    rows["  of which ap_per_class"] = {"seconds": ap_seconds}
    rows["input copy + check (inside both evaluate rows)"] = {"seconds": copy_seconds}
    reference = rows["pycocotools"]["seconds"]

    lines = [
        f"# COCO evaluation time: {args.images} images, {n_det} detections ({args.dets}/image), {n_gt} objects, "
        f"{args.classes} classes",
        "",
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M UTC}; {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} logical CPUs (shared with other jobs: timings are indicative); Python "
        f"{platform.python_version()}; one run each, wall clock.",
        "",
        "| evaluator | seconds | ratio to pycocotools | AP | AP50 |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in rows.items():
        ap = f"{row['AP']:.4f}" if "AP" in row else ""
        ap50 = f"{row['AP50']:.4f}" if "AP50" in row else ""
        lines.append(f"| {name} | {row['seconds']:.2f} | {row['seconds'] / reference:.3f} | {ap} | {ap50} |")
    lines += ["", "ultralytics' AP is its own metric (no area ranges, no crowd, its own interpolation): not COCO AP."]
    table = "\n".join(lines)
    print(table)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, table + "\n")
    write_json_atomic(out.with_suffix(".json"), {"args": vars(args), "objects": n_gt, "detections": n_det,
                                                 "rows": rows}, indent=2)
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_eval.py", None, main))
