"""Validation time with DIoU-NMS (exact rotated NMS for an oriented-box model) against ultralytics' standard NMS: same
checkpoint, same images, one run.

    python scripts/bench_nms.py model=runs/benchmark/bccd-r2/train/ciou-s0/weights/best.pt \
        data=datasets/bccd-yolo/data.yaml [split=val] [imgsz=320] [repeats=5] [out=results/nms]

The weights and images are the same for both methods, so the network's predictions are too: only the
suppression differs. The methods are interleaved over ``repeats`` rounds (so both see the same machine load) and
the medians are reported: the whole ``model.val`` wall time and ultralytics' own per-image ``postprocess`` time
(the NMS step), each as a ratio to ``standard``. Writes ``<out>/nms_val_time.{md,json}`` atomically.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from boxloss.errors import ConfigError  # noqa: E402
from boxloss.keyvalues import format_help, parse_keyvalues, run_cli  # noqa: E402
from boxloss.ops.nms import NMS_BOXES, NMS_METHODS  # noqa: E402
from boxloss.param import Param  # noqa: E402
KEYS = {
    "model": Param(None, "a trained checkpoint (.pt), required", value_type=str),
    "data": Param("shapes", "dataset: a data.yaml or an embedded name"),
    "split": Param("val", "split to validate on", value_type=str),
    "imgsz": Param(320, "validation image size", lambda n: n >= 32, ">= 32"),
    "repeats": Param(5, "interleaved rounds (medians reported)", lambda n: n >= 1, ">= 1"),
    "out": Param("results/nms", "output folder"),
    "force": Param(False, "replace existing nms_val_time.{md,json} in out= (the default holds published results)"),
}


def main(argv: list[str]) -> int:
    from boxloss._io import check_output_folder, check_replace, format_table, write_json_atomic, write_text_atomic
    from boxloss.data.embedded import resolve_data
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.tasks import TASKS

    args = parse_keyvalues(argv, KEYS)
    if not args["model"]:
        raise ConfigError("model= (a trained checkpoint) is required")
    if not Path(args["model"]).is_file():
        raise ConfigError(f"model={args['model']!r}: no such checkpoint")
    out = Path(args["out"])
    check_output_folder(out, "out")
    check_replace([out / "nms_val_time.md", out / "nms_val_time.json"], args["force"])
    data = resolve_data(args["data"])
    split, imgsz, repeats = args["split"], args["imgsz"], args["repeats"]
    model = BoxLossYOLO(args["model"])
    boxes = TASKS[model.task].boxes
    methods = [m for m in NMS_METHODS if NMS_BOXES.get(m, boxes) == boxes]  # standard and diou, or standard and exact
    wall = {m: [] for m in methods}
    post = {m: [] for m in methods}
    maps = {}
    for round_ in range(repeats):
        for method in methods:
            start = time.perf_counter()
            metrics = model.val(data=data, split=split, imgsz=imgsz, batch=16, plots=False, verbose=False, workers=0,
                                nms_method=method, device="cpu")
            wall[method].append(time.perf_counter() - start)
            post[method].append(metrics.speed["postprocess"])
            maps[method] = float(metrics.box.map)
            print(f"round {round_ + 1}/{repeats} {method}: {wall[method][-1]:.2f} s, postprocess "
                  f"{post[method][-1]:.2f} ms/img, mAP50-95 {maps[method]:.4f}", file=sys.stderr)
    med = {m: (statistics.median(wall[m]), statistics.median(post[m])) for m in methods}
    rows = [[m, f"{med[m][0]:.2f}", f"{med[m][0] / med['standard'][0]:.2f}x", f"{med[m][1]:.2f}",
             f"{med[m][1] / med['standard'][1]:.2f}x", f"{maps[m]:.4f}"] for m in methods]
    table = format_table(["nms", "median val time (s)", "ratio", "median NMS time (ms/img)", "ratio",
                          "mAP50-95 (ultralytics' internal)"], rows)
    command = "python scripts/bench_nms.py " + " ".join(argv)
    other = " and ".join(m for m in methods if m != "standard")
    report = (f"# Validation time with {other} NMS (same checkpoint and images, {repeats} interleaved rounds, "
              f"medians)\n\n"
              f"Command: `{command}`\n\n{table}\n")
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "nms_val_time.md", report)
    write_json_atomic(out / "nms_val_time.json", {"command": command, "wall_s": wall, "postprocess_ms": post,
                                                   "map50_95": maps, "split": split, "imgsz": imgsz})
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli("bench_nms.py", lambda: format_help(__doc__, KEYS), main))
