"""COCO evaluation of trained checkpoints: AP at every IoU threshold 0.50:0.05:0.95, side by side.

    python val.py model=runs/train/ciou/weights/best.pt data=shapes
    python val.py model=runs/train/ciou/weights/best.pt,runs/train/eiou/weights/best.pt data=shapes   # one row per loss
    python val.py model=best.pt data=path/to/data.yaml split=test imgsz=640 batch=8 backend=all
    python val.py model=yolov8n-coco.pt data=coco.yaml coco_json=annotations/instances_val2017.json  # official GT
    python val.py model=runs/train/eiou/weights/best.pt data=shapes-seg     # a segmentation model: box and mask AP
    python val.py model=runs/train/eiou/weights/best.pt data=shapes-pose    # a pose model: box and keypoint AP (OKS)

Predictions come from ultralytics' own validation pipeline (rect batches, conf 0.001, NMS IoU 0.7) with
max_det=100 (COCO's rule; ultralytics' default is 300), evaluated with pycocotools (or faster-coco-eval, or
hotcoco; several backends are checked against pycocotools to 1e-12) against ground truth built from the dataset's
labels at the original image sizes, or from coco_json when given (crowd regions and COCO's areas). A segmentation
checkpoint is also scored on its masks (COCO segm: the same keys on mask IoU), a pose checkpoint on its keypoints
(COCO keypoints: OKS, with the sigmas recorded). Every evaluation also decomposes the box AP lost into TIDE's error
types (hotcoco) at IoU 0.5 and 0.75.

Writes <project>/<name> (default runs/val/val, then val2, ...): metrics.json, tide.json, gt.json, predictions.json
(and predictions_mask.json or predictions_pose.json) and the tables printed (table.md), renamed into place only when
the evaluation succeeded. A bad key or value exits
with status 2 and one line naming the problem, and nothing is written; backends that disagree exit with status 1
and one line naming the metric.
"""

from __future__ import annotations

import sys

from ..keyvalues import format_help, run_cli

PROG = "val.py"


def help_text() -> str:
    from ..yolo.val_run import VAL_KEYS

    return format_help(__doc__, VAL_KEYS)


def _main(argv: list[str]) -> int:
    from ..yolo import val_run

    return val_run.command(argv, PROG)


def main(argv: list[str] | None = None) -> int:
    return run_cli(PROG, help_text, _main, argv)


if __name__ == "__main__":
    sys.exit(main())
