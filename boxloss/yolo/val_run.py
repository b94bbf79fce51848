"""What ``val.py`` does: check the arguments, build the ground truth, run each checkpoint, evaluate, write the run.

Every problem with the input (unknown key, wrong value, missing checkpoint or dataset, classes that do not match
the ground truth) raises :class:`ConfigError` in :func:`prepare`, before the run directory exists.

Run directory ``<project>/<name>`` (``name`` defaults to ``val``; ``val2``, ``val3``, ... when taken), written
atomically:
- ``gt.json``: the COCO ground truth evaluated (restricted to the images ultralytics validated);
- ``predictions.json`` (one checkpoint) or ``<row>/predictions.json`` (several): the COCO results evaluated;
- ``metrics.json``: ``{AP50, ..., AP95, AP, APs, APm, APl, AR100}``, or ``{row: {...}}`` for several checkpoints;
  with ``backend=both`` it holds pycocotools' numbers and ``metrics_faster_coco_eval.json`` the other backend's;
- ``table.md``: the table printed.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation import BACKENDS, METRIC_KEYS, evaluate, format_table
from ..evaluation.calibration import CALIBRATION_KEYS, calibration
from ..evaluation.coco_gt import gt_from_coco_json, gt_from_yolo_dataset, image_ids_by_path, split_images
from ..evaluation.io import write_json_atomic, write_text_atomic
from ..options import ConfigError
from .coco_val import COCO_MAX_DET, capture_detections, checkpoint_info, class_to_category, to_coco_results
from .experiment import EMBEDDED_DATASETS, check_model, parse_overrides, resolve_data

DEFAULTS: dict[str, Any] = {
    "model": None,  # <checkpoint.pt> or a,b,c: several, compared side by side
    "data": None,  # data YAML, or an embedded dataset: shapes, shapes-mini
    "split": "val",
    "imgsz": None,  # None: the checkpoint's training size
    "batch": 16,
    "backend": "pycocotools",  # or faster_coco_eval, or both (checked to agree)
    "coco_json": None,  # official COCO instances JSON: ground truth with crowd regions and COCO's areas
    "project": "runs/val",
    "name": None,  # default "val"
    "device": None,
    "max_det": COCO_MAX_DET,  # COCO's rule: 100 detections per image
    "conf": None,  # None: ultralytics' validation default 0.001
    "iou": 0.7,  # NMS IoU, ultralytics' default
    "workers": 0,
    "iou_aware_alpha": None,  # None: the checkpoint's own; else re-weight the IoU-aware head's fold (0 = class only)
}
SPLITS = ("val", "test")
BACKEND_CHOICES = (*BACKENDS, "both")
AGREEMENT_TOLERANCE = 1e-6


@dataclass
class Checkpoint:
    path: Path
    row: str
    model: Any  # a loaded BoxLossYOLO
    category_ids: list[int]


@dataclass
class ValPlan:
    settings: dict[str, Any]
    data_yaml: str
    gt: dict[str, Any]
    checkpoints: list[Checkpoint]
    backends: tuple[str, ...]
    run_dir: Path
    notes: list[str] = field(default_factory=list)


def _positive_int(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{key}={value!r} must be a positive integer")


def check_settings(settings: dict[str, Any]) -> None:
    """Types and ranges of every key (paths are checked by :func:`prepare`)."""
    for key in ("batch", "max_det"):
        _positive_int(key, settings[key])
    if settings["imgsz"] is not None:
        _positive_int("imgsz", settings["imgsz"])
    if isinstance(settings["workers"], bool) or not isinstance(settings["workers"], int) or settings["workers"] < 0:
        raise ConfigError(f"workers={settings['workers']!r} must be a non-negative integer")
    for key in ("conf", "iou"):
        value = settings[key]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1):
            raise ConfigError(f"{key}={value!r} must be a number in [0, 1]")
    alpha = settings["iou_aware_alpha"]
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 <= alpha <= 1):
        raise ConfigError(f"iou_aware_alpha={alpha!r} must be a number in [0, 1]")
    if settings["split"] not in SPLITS:
        raise ConfigError(f"split={settings['split']!r} must be one of {', '.join(SPLITS)}")
    if settings["backend"] not in BACKEND_CHOICES:
        raise ConfigError(f"backend={settings['backend']!r} must be one of {', '.join(BACKEND_CHOICES)}")
    for key in ("project", "name"):
        if settings[key] is not None and (not isinstance(settings[key], str) or not settings[key]):
            raise ConfigError(f"{key}={settings[key]!r} must be a non-empty string")
    if settings["name"] is not None and ("/" in settings["name"] or settings["name"] in (".", "..")):
        raise ConfigError(f"name={settings['name']!r} must be a plain folder name")


def parse_settings(argv: list[str]) -> dict[str, Any]:
    overrides = parse_overrides(argv)
    for key in overrides:
        if key not in DEFAULTS:
            close = difflib.get_close_matches(key, DEFAULTS, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown key {key!r}{hint}; valid keys: {', '.join(DEFAULTS)}")
    settings = {**DEFAULTS, **overrides}
    for key in ("model", "data"):
        if settings[key] in (None, ""):
            raise ConfigError(f"{key}= is required (e.g. model=runs/train/ciou/weights/best.pt data=shapes)")
    check_settings(settings)
    return settings


def _check_data(data: Any, split: str) -> str:
    """The resolved data YAML; an embedded dataset is generated on first use."""
    if data in EMBEDDED_DATASETS:
        return resolve_data(data)
    if not isinstance(data, str) or not Path(data).is_file():
        raise ConfigError(f"dataset {data!r} not found (a data YAML path, or one of {', '.join(EMBEDDED_DATASETS)})")
    try:
        split_images(data, split)
    except (ValueError, OSError) as error:
        raise ConfigError(str(error).splitlines()[0]) from None
    return resolve_data(data)


def _build_gt(data_yaml: str, split: str, coco_json: Any) -> dict[str, Any]:
    try:
        if coco_json is None:
            return gt_from_yolo_dataset(data_yaml, split)
        if not isinstance(coco_json, str) or not Path(coco_json).is_file():
            raise ConfigError(f"coco_json={coco_json!r} not found")
        return gt_from_coco_json(coco_json, split_images(data_yaml, split))
    except (ValueError, OSError, KeyError) as error:
        raise ConfigError(f"ground truth: {str(error).splitlines()[0]}") from None


def _row_names(paths: list[Path], infos: list[dict[str, Any]]) -> list[str]:
    """Row per checkpoint: its box_loss (+iou_aware for the head), with the training run (then run/file) added
    where that repeats."""
    def run_name(path: Path) -> str:
        return path.parent.parent.name if path.parent.name == "weights" else path.parent.name

    losses = [(info["box_loss"] + ("+iou_aware" if info["train_args"].get("iou_aware") else "")) if info["box_loss"]
              else (run_name(p) if p.parent.name == "weights" else p.stem)  # stock checkpoint
              for p, info in zip(paths, infos)]
    candidates = [
        losses,
        [f"{loss} ({run_name(p)})" for loss, p in zip(losses, paths)],
        [f"{loss} ({run_name(p)}/{p.stem})" for loss, p in zip(losses, paths)],
    ]
    rows = [next(c[i] for c in candidates if Counter(c)[c[i]] == 1 or c is candidates[-1])
            for i in range(len(paths))]
    seen: Counter = Counter()
    for i, row in enumerate(list(rows)):
        seen[row] += 1
        if seen[row] > 1:
            rows[i] = f"{row} #{seen[row]}"
    return rows


def _load_checkpoints(paths: list[Path], gt: dict[str, Any]) -> list[Checkpoint]:
    from .model import BoxLossYOLO

    models, infos = [], []
    for path in paths:
        try:
            model = BoxLossYOLO(str(path))
        except Exception as error:  # a corrupt or foreign file: report it as bad input
            reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"cannot load checkpoint {str(path)!r}: {reason}") from None
        if model.task != "detect":
            raise ConfigError(f"checkpoint {str(path)!r} is a {model.task!r} model; val.py evaluates detection")
        models.append(model)
        infos.append(checkpoint_info(model))
    checkpoints = []
    for path, model, info, row in zip(paths, models, infos, _row_names(paths, infos)):
        try:
            category_ids = class_to_category(info["names"], gt["categories"])
        except ValueError as error:
            raise ConfigError(f"checkpoint {str(path)!r}: {error}") from None
        checkpoints.append(Checkpoint(path, row, model, category_ids))
    return checkpoints


def _new_run_dir(project: str, name: str | None) -> Path:
    base = Path(project).resolve() / (name or "val")
    candidate, n = base, 2
    while candidate.exists():
        candidate, n = base.with_name(f"{base.name}{n}"), n + 1
    return candidate


def prepare(argv: list[str]) -> ValPlan:
    """Everything checked and loaded; nothing written yet."""
    settings = parse_settings(argv)
    paths = []
    for item in str(settings["model"]).split(","):
        item = item.strip()
        if not item.endswith(".pt"):
            raise ConfigError(f"model={item!r} must be a trained .pt checkpoint (several: model=a.pt,b.pt)")
        check_model(item)
        paths.append(Path(item).resolve())
    if len(set(paths)) != len(paths):
        raise ConfigError("model= names the same checkpoint twice")
    backends = BACKENDS if settings["backend"] == "both" else (settings["backend"],)
    if "faster_coco_eval" in backends:
        try:
            import faster_coco_eval  # noqa: F401
        except ImportError:
            raise ConfigError("backend faster_coco_eval is not installed (pip install faster-coco-eval)") from None
    data_yaml = _check_data(settings["data"], settings["split"])
    gt = _build_gt(data_yaml, settings["split"], settings["coco_json"])
    checkpoints = _load_checkpoints(paths, gt)
    if settings["iou_aware_alpha"] is not None:
        _set_iou_aware_alpha(checkpoints, float(settings["iou_aware_alpha"]))
    return ValPlan(settings, data_yaml, gt, checkpoints, backends, _new_run_dir(settings["project"], settings["name"]))


def _set_iou_aware_alpha(checkpoints: list[Checkpoint], alpha: float) -> None:
    """Evaluate head-equipped checkpoints with score = cls^(1−α) · IoU^α for the given α."""
    from .iou_aware import IoUAwareDetect

    for checkpoint in checkpoints:
        head = checkpoint.model.model.model[-1]
        if not isinstance(head, IoUAwareDetect):
            raise ConfigError(f"iou_aware_alpha= needs an IoU-aware checkpoint; {str(checkpoint.path)!r} has none")
        head.iou_aware_alpha = alpha
        checkpoint.row = f"{checkpoint.row} (alpha={alpha:g})"


def _restrict_gt(gt: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    return {**gt, "images": [im for im in gt["images"] if im["id"] in image_ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in image_ids]}


def run(plan: ValPlan, log=print) -> dict[str, dict[str, float]]:
    """Validate every checkpoint, evaluate, write the run directory; returns ``{row: metrics}`` (first backend)."""
    settings, run_dir = plan.settings, plan.run_dir
    run_dir.mkdir(parents=True, exist_ok=False)
    several = len(plan.checkpoints) > 1
    val_args = {k: settings[k] for k in ("imgsz", "batch", "device", "conf", "iou", "workers")
                if settings[k] is not None}
    gt, image_ids = plan.gt, None
    results: dict[str, dict[str, dict[str, float]]] = {backend: {} for backend in plan.backends}
    for checkpoint in plan.checkpoints:
        save_dir = run_dir / _safe(checkpoint.row) if several else run_dir
        captured = capture_detections(checkpoint.model, plan.data_yaml, split=settings["split"], save_dir=save_dir,
                                      max_det=settings["max_det"], **val_args)
        by_path = image_ids_by_path(plan.gt, [d.im_file for d in captured])
        seen = {by_path[str(Path(d.im_file).resolve())] for d in captured}
        if image_ids is None:
            image_ids = seen
            skipped = len(plan.gt["images"]) - len(seen)
            if skipped:  # ultralytics drops images it finds corrupt; evaluate what it validated
                print(f"val.py: warning: {skipped} image(s) of the split were not validated by ultralytics "
                    "(corrupt image or label); they are left out of gt.json", file=sys.stderr)
                gt = _restrict_gt(plan.gt, image_ids)
            write_json_atomic(run_dir / "gt.json", gt)
        elif seen != image_ids:
            raise RuntimeError(f"{checkpoint.row}: validated a different set of images than the first checkpoint")
        predictions = to_coco_results(captured, by_path, checkpoint.category_ids)
        write_json_atomic(save_dir / "predictions.json", predictions)
        score_vs_iou = calibration(gt, predictions)
        for backend in plan.backends:
            results[backend][checkpoint.row] = {**evaluate(gt, predictions, backend), **score_vs_iou}

    first = plan.backends[0]
    table_rows = dict(results[first])
    for backend in plan.backends[1:]:
        table_rows.update({f"{row} [{backend}]": metrics for row, metrics in results[backend].items()})
    table = format_table(table_rows, first_column="model" if not several else "loss")
    table += "\n\n" + format_table(table_rows, CALIBRATION_KEYS, first_column="model" if not several else "loss")
    write_text_atomic(run_dir / "table.md", table + "\n")
    for backend in plan.backends:
        payload = results[backend] if several else next(iter(results[backend].values()))
        write_json_atomic(run_dir / ("metrics.json" if backend == first else f"metrics_{backend}.json"), payload,
                          indent=2)
    log(table)
    if len(plan.backends) > 1:
        difference = max(abs(results[first][row][key] - results[other][row][key])
                         for other in plan.backends[1:] for row in results[first] for key in METRIC_KEYS)
        status = "agree" if difference <= AGREEMENT_TOLERANCE else "DISAGREE"
        log(f"val.py: backends {status}: max |difference| {difference:.2e} (tolerance {AGREEMENT_TOLERANCE:g})")
    return results[first]


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "model"
