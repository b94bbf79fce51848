"""COCO-style evaluation: ground truth from YOLO datasets or official COCO JSON, AP at every IoU threshold, for boxes,
masks, keypoints and oriented boxes.

Pure Python and numpy (plus pycocotools / faster-coco-eval / hotcoco as the evaluation backends, and hotcoco's
TIDE error decomposition); nothing here imports ultralytics. The ultralytics side (running the validator and
capturing its detections) lives in ``boxloss.yolo.coco_val``.

    >>> from boxloss.evaluation import gt_from_yolo_dataset, evaluate, format_metrics_table, tide_errors
    >>> gt = gt_from_yolo_dataset("data.yaml", split="val")
    >>> metrics = evaluate(gt, predictions)              # {"AP50": ..., "AP55": ..., ..., "AP95", "AP", ..., "AR100"}
    >>> masks = evaluate(gt, mask_predictions, iou_type="segm")   # the same keys, on mask IoU
    >>> rotated = evaluate(obb_gt, obb_predictions, iou_type="obb")  # the same keys, on the exact rotated IoU (hotcoco)
    >>> print(format_metrics_table({"ciou": metrics}))
    >>> tide = tide_errors(gt, predictions)              # {"AP50": {"ap", "delta_ap": {"Loc": ...}, ...}, "AP75": ...}
"""

from .coco_eval import (AP_KEYS, BACKENDS, FAMILIES, FAMILY_KEYS, IOU_THRESHOLDS, KEYPOINT_METRIC_KEYS, METRIC_KEYS,
                        TASK_FAMILIES, backends_of, default_backend, evaluate, summarize_arrays)
from .coco_gt import (coco_to_yolo_lines, gt_from_coco_json, gt_from_yolo_dataset, image_ids_by_path, load_coco,
                      obb_annotation, yolo_to_coco)
from .table import format_metrics_table
from .tide import TIDE_ERRORS, TIDE_ORACLES, format_tide_table, tide_errors

__all__ = ["AP_KEYS", "BACKENDS", "FAMILIES", "FAMILY_KEYS", "IOU_THRESHOLDS", "KEYPOINT_METRIC_KEYS", "METRIC_KEYS",
           "TASK_FAMILIES", "backends_of", "default_backend", "evaluate", "summarize_arrays",
           "coco_to_yolo_lines", "gt_from_coco_json", "gt_from_yolo_dataset", "image_ids_by_path", "load_coco",
           "obb_annotation", "yolo_to_coco", "format_metrics_table", "TIDE_ERRORS", "TIDE_ORACLES", "format_tide_table",
           "tide_errors"]
