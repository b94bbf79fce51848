"""Validation time with the IoU-aware head against the same weights without it, in one run.

    python scripts/bench_iou_aware_val.py model=runs/train/iou_aware/weights/best.pt data=shapes [imgsz=256] [repeats=3]

Variants (same checkpoint, same data, interleaved repetitions, median time):
- ``stock``: the IoU branch removed (plain Detect head: class scores only) — the baseline;
- ``fold``: the head as shipped (fold where cls >= iou_aware_min_cls, stock candidate set);
- ``fold_all``: folding every score (min_cls = 0), the naive version that floods conf=0.001 and max_det.
Prints time ratios to ``stock`` and mean detections per image before NMS truncation (candidates >= conf).
"""

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxloss.errors import ConfigError  # noqa: E402
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli  # noqa: E402
from boxloss.param import Param# noqa: E402

KEYS = {
    "model": Param(None, "a checkpoint trained with iou_aware: true (.pt), required", value_type=str),
    "data": Param("shapes", "dataset: a data.yaml or an embedded name"),
    "imgsz": Param(256, "validation image size", lambda n: n >= 32, ">= 32"),
    "repeats": Param(3, "interleaved rounds (medians reported)", lambda n: n >= 1, ">= 1"),
}


def main(argv: list[str]) -> int:
    import torch
    from ultralytics.nn.modules.head import Detect

    from boxloss.data.embedded import resolve_data
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.iou_aware import IoUAwareDetect

    args = parse_keyvalues(argv, KEYS)
    if not args["model"] or not Path(args["model"]).is_file():
        raise ConfigError(f"model={args['model']!r}: a checkpoint file is required")
    data = resolve_data(args["data"])
    imgsz, repeats = args["imgsz"], args["repeats"]
    model = BoxLossYOLO(args["model"])
    head = model.model.model[-1]
    if not isinstance(head, IoUAwareDetect):
        raise ConfigError(f"model={args['model']!r} has no IoU-aware head (train it with iou_aware: true)")
    min_cls = head.iou_aware_min_cls

    def configure(variant: str) -> None:
        head.__class__ = Detect if variant == "stock" else IoUAwareDetect
        head.iou_aware_min_cls = 0.0 if variant == "fold_all" else min_cls

    candidates, times = {}, {v: [] for v in ("stock", "fold", "fold_all")}
    for variant in times:  # count candidates passing conf=0.001 on a few batches
        configure(variant)
        with torch.no_grad():
            x = torch.rand(4, 3, imgsz, imgsz)
            y = model.model.float().eval()(x)[0]
            candidates[variant] = float((y[:, 4:].amax(1) >= 0.001).sum(1).float().mean())
    for _ in range(repeats):
        for variant in times:
            configure(variant)
            start = time.perf_counter()
            metrics = model.val(data=data, imgsz=imgsz, batch=16, plots=False, verbose=False, workers=0)
            times[variant].append(time.perf_counter() - start)
            print(f"{variant}: {times[variant][-1]:.2f}s mAP50-95 {metrics.box.map:.4f}", file=sys.stderr)
    base = statistics.median(times["stock"])
    print("| variant | median val time (s) | ratio to stock | anchors with score >= 0.001 (random input) |")
    print("|---|---|---|---|")
    for variant, samples in times.items():
        print(f"| {variant} | {statistics.median(samples):.2f} | {statistics.median(samples) / base:.2f}x | "
              f"{candidates[variant]:.0f} |")
    configure("fold")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_iou_aware_val.py", lambda: format_help(__doc__, KEYS), main))
