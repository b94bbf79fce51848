"""COCO-style evaluation: ground truth from YOLO datasets or official COCO JSON, AP at every IoU threshold.

Pure Python and numpy (plus pycocotools / faster-coco-eval as the evaluation backends); nothing here imports
ultralytics. The ultralytics side (running the validator and capturing its detections) lives in
``boxloss.yolo.coco_val``.

    >>> from boxloss.evaluation import gt_from_yolo_dataset, evaluate, format_table
    >>> gt = gt_from_yolo_dataset("data.yaml", split="val")
    >>> metrics = evaluate(gt, predictions)              # {"AP50": ..., "AP55": ..., ..., "AP95", "AP", ..., "AR100"}
    >>> print(format_table({"ciou": metrics}))
"""

from .coco_eval import AP_KEYS, BACKENDS, IOU_THRESHOLDS, METRIC_KEYS, evaluate, summarize_arrays
from .coco_gt import (coco_to_yolo_lines, gt_from_coco_json, gt_from_yolo_dataset, image_ids_by_path, load_coco,
                      yolo_to_coco)
from .table import format_table

__all__ = ["AP_KEYS", "BACKENDS", "IOU_THRESHOLDS", "METRIC_KEYS", "evaluate", "summarize_arrays",
           "coco_to_yolo_lines", "gt_from_coco_json", "gt_from_yolo_dataset", "image_ids_by_path", "load_coco",
           "yolo_to_coco", "format_table"]
