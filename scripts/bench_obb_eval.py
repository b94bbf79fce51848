"""Oriented-box evaluation: how ultralytics' ProbIoU reads against the exact IoU, and how long the exact COCO evaluation
takes against ultralytics' own OBB metric, on the same input in one run.

    python scripts/bench_obb_eval.py                                  # writes results/obb_eval/obb_eval.{md,json}
    python scripts/bench_obb_eval.py pairs=5000 images=100 repeats=3 out=runs/obb_eval

1. **ProbIoU against the exact IoU.** A 40-px target box (40 x 40, 40 x 20 and 40 x 10, random angle) is perturbed
   ``pairs`` times at random: centre shifted by N(0, s · h), each side scaled by exp(N(0, s)), the angle turned by
   N(0, s) radians, with s uniform in [0, 0.5] per pair, so the exact IoUs spread over (0, 1). For each 0.05-wide bin
   of the exact IoU (boxloss.ops.rotated.rotated_iou: the polygon intersection over the union), the table gives
   ultralytics' ProbIoU of the same pairs (``ultralytics.utils.metrics.probiou``, its default floor 0: the similarity
   ``OBBValidator`` matches with, through ``batch_probiou``) as median [10th, 90th percentile], then how often
   ultralytics' matching would call a pair correct that is not (ProbIoU >= t > exact IoU) at t = 0.5 and 0.75, and the
   square turned 45° against itself.
2. **Evaluation time.** ``images`` synthetic aerial-like images (boxloss.testing.detections.random_oriented_detections:
   about 20 objects and exactly 100 detections per image, 15 classes, no crowd regions, which ultralytics' metric does
   not know): ``boxloss.evaluation.evaluate(..., iou_type="obb")`` (hotcoco's exact-IoU COCO evaluation, the input copy
   and check included) against ultralytics' OBB metric as ``OBBValidator`` computes it (per image ``batch_probiou`` +
   ``match_predictions``, then ``ap_per_class``; tensors built beforehand, as the validator has them). The two are
   interleaved over ``repeats`` rounds after a warm-up, medians reported, and their ratio; with each, its AP50 and AP
   on these detections.

Output: markdown on stdout, and ``<out>/obb_eval.md`` + ``.json`` written atomically (``force=true`` to replace).
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxloss.keyvalues import format_help, parse_keyvalues, run_cli  # noqa: E402
from boxloss.param import Param  # noqa: E402

KEYS = {
    "pairs": Param(20000, "perturbed pairs per target shape (part 1)", lambda n: n >= 100, ">= 100"),
    "images": Param(500, "synthetic images for the timing (part 2)", lambda n: n >= 1, ">= 1"),
    "repeats": Param(5, "interleaved timing rounds (medians reported)", lambda n: n >= 1, ">= 1"),
    "seed": Param(0, "seed of the pairs and of the synthetic images", lambda n: n >= 0, ">= 0"),
    "out": Param("results/obb_eval", "output folder"),
    "force": Param(False, "replace an existing obb_eval.{md,json} in out= (the default holds published results)"),
}
TARGETS = {"40 x 40": (40.0, 40.0), "40 x 20": (40.0, 20.0), "40 x 10": (40.0, 10.0)}
BIN_WIDTH = 0.05
CHUNK = 128  # pairs per rotated_iou call (the diagonal of a CHUNK x CHUNK matrix)


def perturbed_pairs(width: float, height: float, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(count, 5) targets of one shape at random angles and their random perturbations (module docstring)."""
    target = np.column_stack([np.full((count, 2), 100.0), np.full(count, width), np.full(count, height),
                              rng.uniform(-math.pi / 4, 3 * math.pi / 4, count)])
    spread = rng.uniform(0.0, 0.5, count)
    pred = target.copy()
    pred[:, :2] += rng.normal(0, 1, (count, 2)) * (spread * height)[:, None]
    pred[:, 2:4] *= np.exp(rng.normal(0, 1, (count, 2)) * spread[:, None])
    pred[:, 4] += rng.normal(0, 1, count) * spread
    return target, pred


def exact_and_probiou(target: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from ultralytics.utils.metrics import probiou

    from boxloss.ops.rotated import rotated_iou

    exact = np.concatenate([np.diag(rotated_iou(pred[i:i + CHUNK], target[i:i + CHUNK]))
                            for i in range(0, len(target), CHUNK)])
    probabilistic = probiou(torch.from_numpy(target), torch.from_numpy(pred)).squeeze(-1).numpy()
    return exact, probabilistic


def iou_table(pairs: int, seed: int) -> tuple[str, dict]:
    from boxloss._io import format_table

    rng = np.random.default_rng(seed)
    measured = {name: exact_and_probiou(*perturbed_pairs(w, h, pairs, rng)) for name, (w, h) in TARGETS.items()}
    edges = np.round(np.arange(0.0, 1.0 + BIN_WIDTH / 2, BIN_WIDTH), 2)
    rows, bins = [], []
    for low, high in zip(edges[:-1], edges[1:]):
        row, record = [f"{low:.2f}–{high:.2f}"], {"exact_low": float(low), "exact_high": float(high)}
        for name, (exact, probabilistic) in measured.items():
            inside = probabilistic[(exact >= low) & ((exact < high) | (high == 1.0))]
            if len(inside) < 20:
                row.append(f"({len(inside)} pairs)")
                record[name] = {"pairs": int(len(inside))}
                continue
            p10, median, p90 = np.percentile(inside, [10, 50, 90])
            row.append(f"{median:.3f} [{p10:.3f}, {p90:.3f}]")
            record[name] = {"pairs": int(len(inside)), "median": float(median), "p10": float(p10), "p90": float(p90)}
        rows.append(row)
        bins.append(record)
    table = format_table(["exact IoU", *(f"ProbIoU, {name} target" for name in TARGETS)], rows)
    crossings = {threshold: {name: median_crossing(bins, name, threshold) for name in TARGETS}
                 for threshold in (0.5, 0.75)}
    crossing_rows = [[f"{t:.2f}", *(f"{crossings[t][name]:.3f}" for name in TARGETS)] for t in crossings]
    crossing_table = format_table(["ProbIoU t", *(f"exact IoU, {name} target" for name in TARGETS)], crossing_rows)
    square = np.array([[100.0, 100.0, 40.0, 40.0, 0.0]])
    turned = square + [0, 0, 0, 0, math.pi / 4]
    exact_square, probiou_square = exact_and_probiou(np.concatenate([square, square]), np.concatenate([turned, square]))
    text = (f"Exact IoU bins against ProbIoU (median [10th, 90th percentile]), {pairs} random perturbations per "
            f"target shape (seed {seed}):\n\n{table}\n\nThe exact IoU at which the median ProbIoU reaches ultralytics' "
            f"matching thresholds (linear between the bins' middles), i.e. where its AP50 and AP75 draw the line:\n\n"
            f"{crossing_table}\n\nA 40-px square against itself turned 45°: exact IoU {exact_square[0]:.4f}, ProbIoU "
            f"{probiou_square[0]:.4f} (its maximum: the square against itself unturned scores "
            f"{probiou_square[1]:.4f}).\n")
    return text, {"bins": bins, "exact_iou_where_median_probiou_reaches": {str(t): v for t, v in crossings.items()},
                  "square_45": {"exact": float(exact_square[0]), "probiou": float(probiou_square[0]),
                                "probiou_unturned": float(probiou_square[1])}}


def median_crossing(bins: list[dict], name: str, threshold: float) -> float:
    """The exact IoU where the bins' median ProbIoU (at the bins' middles) first reaches ``threshold``."""
    points = [((b["exact_low"] + b["exact_high"]) / 2, b[name]["median"]) for b in bins if "median" in b[name]]
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 < threshold <= y1:
            return x0 + (threshold - y0) * (x1 - x0) / (y1 - y0)
    return float("nan")


def ultralytics_obb_metric(data):
    """(seconds, {"AP50", "AP"}): ultralytics' OBB metric as OBBValidator computes it, on prepared tensors."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import ap_per_class, batch_probiou

    validator = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))  # all match_predictions reads from self
    inputs = [(torch.from_numpy(g).float(), torch.from_numpy(gc).float(), torch.from_numpy(p).float(),
               torch.from_numpy(pc).float())
              for g, gc, p, pc in zip(data.gt_boxes, data.gt_classes, data.pred_boxes, data.pred_classes)]
    scores, pred_classes, gt_classes = (np.concatenate(data.pred_scores), np.concatenate(data.pred_classes),
                                        np.concatenate(data.gt_classes))

    def metric():
        correct = []
        for gt_boxes, gt_cls, pred_boxes, pred_cls in inputs:
            if len(gt_cls) == 0 or len(pred_cls) == 0:
                correct.append(np.zeros((len(pred_cls), 10), dtype=bool))
                continue
            iou = batch_probiou(gt_boxes, pred_boxes)  # [G, D]
            correct.append(DetectionValidator.match_predictions(validator, pred_cls, gt_cls, iou).cpu().numpy())
        return ap_per_class(np.concatenate(correct), scores, pred_classes, gt_classes)[5]  # (classes, 10)

    start = time.perf_counter()
    ap = metric()
    return time.perf_counter() - start, {"AP50": float(ap[:, 0].mean()), "AP": float(ap.mean())}


def timing(images: int, repeats: int, seed: int) -> tuple[str, dict]:
    from boxloss._io import format_table
    from boxloss.evaluation import evaluate
    from boxloss.testing.detections import random_oriented_detections

    data = random_oriented_detections(n_images=images, seed=seed)

    def exact():
        start = time.perf_counter()
        metrics = evaluate(data.gt, data.predictions, iou_type="obb")
        return time.perf_counter() - start, {"AP50": metrics["AP50"], "AP": metrics["AP"]}

    runners = {"hotcoco obb (exact IoU, COCO AP)": exact, "ultralytics OBB metric (ProbIoU)": lambda:
               ultralytics_obb_metric(data)}
    for run in runners.values():  # warm-up
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runners}
    metrics = {}
    for _ in range(repeats):
        for name, run in runners.items():
            elapsed, metrics[name] = run()
            seconds[name].append(elapsed)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    reference = medians["ultralytics OBB metric (ProbIoU)"]
    rows = [[name, f"{medians[name]:.3f}", f"{medians[name] / reference:.2f}", f"{metrics[name]['AP50']:.4f}",
             f"{metrics[name]['AP']:.4f}"] for name in runners]
    objects = len(data.gt["annotations"])
    text = (f"Evaluation time, {images} synthetic images ({objects} objects, {len(data.predictions)} detections, "
            f"15 classes), median of {repeats} interleaved rounds after a warm-up:\n\n"
            + format_table(["evaluator", "seconds", "ratio to ultralytics", "AP50", "AP50-95"], rows) + "\n")
    return text, {"seconds": seconds, "median_seconds": medians, "metrics": metrics, "objects": objects,
                  "detections": len(data.predictions)}


def main(argv: list[str]) -> int:
    from boxloss._io import check_output_folder, check_replace, write_json_atomic, write_text_atomic

    args = parse_keyvalues(argv, KEYS)
    out = Path(args["out"])
    check_output_folder(out, "out")
    check_replace([out / "obb_eval.md", out / "obb_eval.json"], args["force"])
    print("bench_obb_eval: ProbIoU against the exact IoU ...", file=sys.stderr)
    iou_text, iou_record = iou_table(args["pairs"], args["seed"])
    print("bench_obb_eval: evaluation time ...", file=sys.stderr)
    time_text, time_record = timing(args["images"], args["repeats"], args["seed"])
    command = "python scripts/bench_obb_eval.py" + "".join(f" {arg}" for arg in argv)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}"
    report = (f"# Oriented boxes: ProbIoU against the exact IoU, and evaluation time\n\nCommand: `{command}` "
              f"({machine})\n\n{iou_text}\n{time_text}")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "obb_eval.md", report)
    write_json_atomic(out / "obb_eval.json", {"command": command, "machine": machine, "settings": args,
                                              "iou": iou_record, "timing": time_record}, indent=2)
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_obb_eval.py", lambda: format_help(__doc__, KEYS), main))
