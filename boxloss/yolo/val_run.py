"""What ``val.py`` does: check the settings, build the ground truth, run each checkpoint, evaluate, write the run.

Every problem with the input (unknown key, wrong value, missing checkpoint or dataset, classes that do not match
the ground truth) raises :class:`~boxloss.errors.ConfigError` in :func:`prepare`, before anything is written.

Run directory ``<project>/<name>`` (``name`` defaults to ``val``; ``val2``, ``val3``, ... when taken). Everything is
written into a temporary sibling folder that is renamed to the run directory only when the whole evaluation has
succeeded, so a failed run leaves nothing and does not shift the next run's name:
- ``gt.json``: the COCO ground truth evaluated (restricted to the images ultralytics validated), with each object's
  polygon (segmentation datasets), keypoints (pose datasets) or oriented box (``obb``: OBB datasets), so it serves
  every family;
- ``predictions.json`` (one checkpoint) or ``<row>/predictions.json`` (several): the COCO box results evaluated (an
  oriented-box checkpoint's: its ``obb`` results); a segmentation checkpoint's mask results (RLE) beside it in
  ``predictions_mask.json``, a pose checkpoint's keypoint results in ``predictions_pose.json``;
- ``metrics.json``: ``{AP50, ..., AP95, AP, APs, APm, APl, AR100, ...}`` for the boxes (an oriented-box checkpoint:
  on the exact rotated IoU, with ultralytics' own ProbIoU-matched mAP50 and mAP50-95 of the same run under
  ``"ultralytics"``), plus ``"mask": {...}`` (the same keys on mask IoU) or ``"pose": {...}`` (keypoint AP on OKS,
  with the sigmas and area used under ``"oks"``), or ``{row: {...}}`` for several checkpoints; with several backends
  (``backend=hotcoco,pycocotools``,
  ``backend=all``) it holds the first one's numbers and ``metrics_<backend>.json`` each other's, every one checked
  against pycocotools' (a difference over :data:`~boxloss.evaluation.coco_eval.AGREEMENT_TOLERANCE` in any family
  fails the run, naming the metric);
- ``tide.json``: the TIDE error decomposition of the boxes (oriented boxes: on the exact rotated IoU) at foreground
  IoU 0.5 and 0.75 (:mod:`boxloss.evaluation.tide`, always through hotcoco), or ``{row: {...}}`` for several
  checkpoints; the same decomposition of the masks (mask IoU) in ``tide_mask.json``, of the keypoints (OKS) in
  ``tide_pose.json``;
- ``table.md``: the tables printed (AP of every family, ultralytics' own OBB metric, calibration, TIDE).

An oriented-box checkpoint's first family is ``obb`` where another's is ``box``: its rows, files and keys are where a
detector's box ones are (a benchmark reads both alike). Oriented boxes evaluate through hotcoco alone (pycocotools and
faster-coco-eval have no rotated IoU), and are not evaluated beside axis-aligned checkpoints (another ground truth).
"""

from __future__ import annotations

import re
import shutil
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ultralytics.utils import DATASETS_DIR

from .._io import check_output_folder, made_folder, make_temp_dir, write_json_atomic
from ..data.embedded import check_data, resolve_data
from ..data.yolo_format import keypoint_shape, read_data_yaml, split_images
from ..devices import check_device
from ..errors import ConfigError
from ..evaluation import BACKENDS, FAMILIES
from ..evaluation.checkpoint_eval import (DEFAULT_BACKEND, PREDICTION_FILES, TIDE_BACKEND, agreement_line,
                                          backend_list, evaluate_checkpoint, write_run_files)
from ..evaluation.coco_eval import check_ground_truth, missing_backend
from ..evaluation.keypoints import POSE_AREA_FACTOR, oks_sigmas
from ..evaluation.coco_gt import gt_from_coco_json, gt_from_yolo_dataset, image_ids_by_path
from ..ops.nms import EVALUATION_NMS, NMS_BOXES
from ..param import Param
from .coco_val import COCO_MAX_DET, capture_validation, checkpoint_info, class_to_category, to_coco_results
from .experiment import check_model
from .model import end_to_end
from .tasks import TASKS, Task

SPLITS = ("val", "test")
NMS_NAMES = {"diou": "DIoU-NMS", "exact": "exact-IoU NMS"}  # row suffixes
ULTRALYTICS_OBB_KEYS = {"mAP50": "map50", "mAP50-95": "map"}  # OBBValidator's metrics.box, matched by ProbIoU


def _positive(value) -> bool:
    return value > 0


def _fraction(value) -> bool:
    return 0 <= value <= 1


VAL_KEYS: dict[str, Param] = {
    "model": Param(None, "trained checkpoint(s): best.pt, or a.pt,b.pt,c.pt compared side by side", value_type=str),
    "data": Param(None, "dataset YAML, or an embedded dataset (shapes, shapes-mini)", value_type=str),
    "split": Param("val", "split to evaluate", choices=SPLITS),
    "imgsz": Param(None, "image size (default: the checkpoint's training size)", _positive, "> 0", value_type=int),
    "batch": Param(16, "validation batch size", _positive, "> 0"),
    "backend": Param(DEFAULT_BACKEND, "COCO evaluator: pycocotools, faster_coco_eval or hotcoco; several "
                     "(hotcoco,faster_coco_eval) or all: each checked against pycocotools",
                     lambda v: backend_list(v) is not None,
                     f"one of {', '.join(BACKENDS)}, several of them comma-separated, or all", value_type=str),
    "coco_json": Param(None, "official COCO instances JSON: ground truth with crowd regions and COCO's areas",
                       value_type=str),
    "project": Param("runs/val", "folder of the run directories", lambda p: bool(p), "a non-empty path"),
    "name": Param(None, "run directory name (default val, then val2, ...)",
                  lambda n: bool(n) and "/" not in n and n not in (".", ".."), "a plain folder name",
                  value_type=str),
    "device": Param(None, "ultralytics device (cpu, 0, 0,1, ...)", value_type=(str, int)),
    "max_det": Param(COCO_MAX_DET, "detections kept per image (100: COCO's rule; ultralytics' default is 300)",
                     _positive, "> 0"),
    "conf": Param(None, "confidence threshold (default: ultralytics' validation 0.001)", _fraction, "in [0, 1]",
                  value_type=float),
    "iou": Param(0.7, "NMS IoU threshold (ultralytics' default)", _fraction, "in [0, 1]"),
    "workers": Param(0, "dataloader workers", lambda w: w >= 0, ">= 0"),
    "iou_aware_alpha": Param(None, "re-weight an IoU-aware head's fold: score = cls^alpha IoU^(1-alpha) (1: class "
                             "only; default: the checkpoint's own)", _fraction, "in [0, 1]", value_type=float),
    "nms": Param(None, "standard, diou (DIoU-NMS), exact (oriented boxes: Fast-NMS on the exact polygon IoU), or none "
                 "(NMS-free: an end-to-end head's one-to-one branch); default: none for end-to-end heads (YOLOv10, "
                 "YOLO26), else the checkpoint's nms_method",
                 choices=EVALUATION_NMS, value_type=str),
    "nms_diou_beta": Param(None, "β of DIoU-NMS (default: the checkpoint's nms_diou_beta, 1)", lambda b: b > 0, "> 0",
                           value_type=float),
}

DEFAULTS: dict[str, Any] = {key: param.default for key, param in VAL_KEYS.items()}


@dataclass
class Checkpoint:
    path: Path
    row: str
    model: Any  # a loaded BoxLossYOLO
    category_ids: list[int]
    nms: dict[str, Any] = field(default_factory=lambda: {"method": "standard"})  # what suppresses its detections

    @property
    def task(self) -> Task:
        return TASKS[self.model.task]

    @property
    def families(self) -> tuple[str, ...]:
        """The metric families of its task: box, and mask (segment) or pose (pose); obb (obb)."""
        return self.task.families

    @property
    def boxes(self) -> str:
        """The family of its boxes: ``box``, or ``obb`` for an oriented-box model."""
        return self.families[0]


@dataclass
class ValPlan:
    settings: dict[str, Any]
    data_yaml: str
    gt: dict[str, Any]
    checkpoints: list[Checkpoint]
    backends: tuple[str, ...]
    run_dir: Path
    notes: list[str] = field(default_factory=list)
    oks: dict[str, Any] | None = None  # keypoint AP's sigmas and area, when a pose checkpoint is evaluated


def _build_gt(data_yaml: str, split: str, coco_json: Any, oriented: bool = False) -> dict[str, Any]:
    try:
        if coco_json is None:
            return gt_from_yolo_dataset(data_yaml, split, DATASETS_DIR, oriented=oriented)
        if not Path(coco_json).is_file():
            raise ConfigError(f"coco_json={coco_json!r} not found")
        return gt_from_coco_json(coco_json, split_images(data_yaml, split, DATASETS_DIR))
    except ConfigError:
        raise
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


def _load_models(paths: list[Path]) -> list[Any]:
    """Each checkpoint loaded as a BoxLossYOLO; a file that does not load, or another task's model, is bad input."""
    from .api import BoxLossYOLO

    models = []
    for path in paths:
        try:
            model = BoxLossYOLO(str(path))
        except Exception as error:  # a corrupt or foreign file: report it as bad input
            reason = str(error).splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"cannot load checkpoint {str(path)!r}: {reason}") from None
        if model.task not in TASKS:
            raise ConfigError(f"checkpoint {str(path)!r} is a {model.task!r} model; val.py evaluates "
                              f"{', '.join(TASKS)} models")
        models.append(model)
    return models


def _checkpoints(paths: list[Path], models: list[Any], gt: dict[str, Any]) -> list[Checkpoint]:
    """The loaded checkpoints with their row names and the ground truth's category id of each class."""
    infos = [checkpoint_info(model) for model in models]
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


def _check_task_data(settings: dict[str, Any], tasks: set[str]) -> None:
    """A segmentation checkpoint needs polygon labels, a pose checkpoint a dataset with ``kpt_shape``, an oriented-box
    checkpoint oriented-box labels."""
    for task in sorted(tasks - {"detect"}):
        check_data(settings["data"], (settings["split"],), datasets_dir=DATASETS_DIR, labels=task == "segment",
                   task=task)


def _oks_settings(data_yaml: str, paths: list[Path], models: list[Any], coco_json: Any) -> dict[str, Any] | None:
    """Keypoint AP's sigmas and object area (:mod:`boxloss.evaluation.keypoints`), after checking that every pose
    checkpoint predicts the dataset's ``kpt_shape``; None without a pose checkpoint."""
    poses = [(path, model) for path, model in zip(paths, models) if model.task == "pose"]
    if not poses:
        return None
    spec = read_data_yaml(data_yaml, DATASETS_DIR)
    kpt_shape = keypoint_shape(spec)
    for path, model in poses:
        predicted = list(getattr(model.model.model[-1], "kpt_shape", []))
        if predicted != list(kpt_shape):
            raise ConfigError(f"checkpoint {str(path)!r} predicts keypoints of shape {predicted}; dataset "
                              f"{str(spec.yaml_path)!r} has kpt_shape {list(kpt_shape)}")
    try:
        sigmas, source = oks_sigmas(kpt_shape, spec.content.get("kpt_oks_sigmas"))
    except ValueError as error:
        raise ConfigError(f"dataset {str(spec.yaml_path)!r}: {error}") from None
    area = ("coco_json's own area (COCO's segment area)" if coco_json is not None else
            f"{POSE_AREA_FACTOR} x box width x height (ultralytics' PoseValidator OKS area)")
    return {"sigmas": sigmas, "sigmas_from": source, "area": area}


def prepare(settings: dict[str, Any]) -> ValPlan:
    """Everything checked and loaded (``settings``: :data:`VAL_KEYS` values, checked); nothing written yet."""
    for key in ("model", "data"):
        if settings.get(key) in (None, ""):
            raise ConfigError(f"{key}= is required (e.g. model=runs/train/ciou/weights/best.pt data=shapes)")
    check_device(settings["device"])
    check_output_folder(settings["project"], "project")
    paths, tasks = [], set()
    for item in str(settings["model"]).split(","):
        item = item.strip()
        if not item.endswith(".pt"):
            raise ConfigError(f"model={item!r} must be a trained .pt checkpoint (several: model=a.pt,b.pt)")
        tasks.add(check_model(item).name)
        paths.append(Path(item).resolve())
    if len(set(paths)) != len(paths):
        raise ConfigError("model= names the same checkpoint twice")
    backends = backend_list(settings["backend"])
    for backend in backends:
        if missing_backend(backend):
            raise ConfigError(missing_backend(backend))
    if missing_backend(TIDE_BACKEND):
        raise ConfigError(f"{missing_backend(TIDE_BACKEND)}: tide.json (the TIDE error decomposition) needs it")
    if "obb" in tasks:
        if len(tasks) > 1:
            raise ConfigError(f"model= mixes oriented-box checkpoints with {', '.join(sorted(tasks - {'obb'}))} ones: "
                              "their AP is on other boxes against another ground truth; evaluate them apart")
        for backend in backends:
            if missing_backend(backend, "obb"):
                raise ConfigError(f"backend={settings['backend']}: {missing_backend(backend, 'obb')} (an oriented-box "
                                  "checkpoint's AP is on the exact rotated IoU)")
    check_data(settings["data"], (settings["split"],), datasets_dir=DATASETS_DIR, labels=False)
    _check_task_data(settings, tasks)
    data_yaml = resolve_data(settings["data"])
    gt = _build_gt(data_yaml, settings["split"], settings["coco_json"], oriented="obb" in tasks)
    for image in skipped_images(gt):  # ultralytics skips them as well; say which, and why
        print(f"val.py: warning: skipping {image['file']}: {image['reason']}", file=sys.stderr)
    if not any(not ann.get("iscrowd", 0) for ann in gt["annotations"]):
        raise ConfigError(f"the {settings['split']!r} split of {settings['data']} has no labels ({len(gt['images'])} "
                          "images, 0 boxes): COCO AP is undefined there (pycocotools would report -1); evaluate a "
                          "split with labels")
    models = _load_models(paths)
    oks = _oks_settings(data_yaml, paths, models, settings["coco_json"])
    checkpoints = _checkpoints(paths, models, gt)
    for family in sorted({family for c in checkpoints for family in c.families} - {"box"}):  # obb: hotcoco's check
        try:
            check_ground_truth(gt, FAMILIES[family])
        except ValueError as error:  # an official JSON without keypoints (instances_*.json for a pose model)
            raise ConfigError(f"coco_json={settings['coco_json']!r}: {error}") from None
    for checkpoint in checkpoints:
        checkpoint.nms = _nms_for(checkpoint, settings)
        if checkpoint.nms["method"] in NMS_NAMES:
            checkpoint.row += f" ({NMS_NAMES[checkpoint.nms['method']]})"
    if settings["iou_aware_alpha"] is not None:
        _set_iou_aware_alpha(checkpoints, float(settings["iou_aware_alpha"]))
    return ValPlan(settings, data_yaml, gt, checkpoints, backends, _new_run_dir(settings["project"], settings["name"]),
                   oks=oks)


def _set_iou_aware_alpha(checkpoints: list[Checkpoint], alpha: float) -> None:
    """Evaluate head-equipped checkpoints with score = cls^(1−α) · IoU^α for the given α."""
    from .iou_aware import IoUAwareDetect

    for checkpoint in checkpoints:
        head = checkpoint.model.model.model[-1]
        if not isinstance(head, IoUAwareDetect):
            raise ConfigError(f"iou_aware_alpha= needs an IoU-aware checkpoint; {str(checkpoint.path)!r} has none")
        head.iou_aware_alpha = alpha
        checkpoint.row = f"{checkpoint.row} (alpha={alpha:g})"


def nms_none_refusal(path: str | Path, head: Any) -> str | None:
    """Why ``nms=none`` (the NMS-free one-to-one branch) cannot evaluate the checkpoint at ``path`` whose built head
    is ``head``: it has no such branch. None when it can."""
    if end_to_end(head):
        return None
    return (f"nms=none needs an end-to-end head (YOLOv10, YOLO26); {str(path)!r} has {type(head).__name__} without "
            "a one-to-one branch")


def _nms_for(checkpoint: Checkpoint, settings: dict[str, Any]) -> dict[str, Any]:
    """The NMS a checkpoint is evaluated with: ``{"method": standard|diou|none[, "beta"]}``."""
    head = checkpoint.model.model.model[-1]
    train_args = (checkpoint.model.ckpt or {}).get("train_args") or {}
    method = settings["nms"] or ("none" if end_to_end(head) else train_args.get("nms_method", "standard"))
    if method == "none" and nms_none_refusal(checkpoint.path, head):
        raise ConfigError(nms_none_refusal(checkpoint.path, head))
    if NMS_BOXES.get(method, checkpoint.task.boxes) != checkpoint.task.boxes:
        kind = "oriented-box" if NMS_BOXES[method] == "xywhr" else "axis-aligned"
        raise ConfigError(f"nms={method} is for {kind} models; {str(checkpoint.path)!r} is a {checkpoint.task.name} "
                          "model")
    record = {"method": method}
    if method == "diou":
        beta = settings["nms_diou_beta"] or train_args.get("nms_diou_beta", 1.0)
        record["beta"] = float(beta)
    return record


def _nms_arguments(nms: dict[str, Any]) -> dict[str, Any]:
    """The validator's keys for ``nms``: ultralytics' ``nms=False`` selects the one-to-one (NMS-free) branch."""
    if nms["method"] == "none":
        return {"nms": False, "nms_method": "standard"}
    return {"nms_method": nms["method"], "nms_diou_beta": nms.get("beta", 1.0)}


def skipped_images(gt: dict[str, Any]) -> list[dict[str, str]]:
    """The split's images the ground truth left out because they cannot be read (file and reason)."""
    return list((gt.get("info") or {}).get("skipped_images") or [])


def _restrict_gt(gt: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    return {**gt, "images": [im for im in gt["images"] if im["id"] in image_ids],
            "annotations": [a for a in gt["annotations"] if a["image_id"] in image_ids]}


def run(plan: ValPlan, log=print) -> dict[str, dict[str, float]]:
    """Validate every checkpoint, evaluate, write the run directory; returns ``{row: metrics}`` (first backend)."""
    with made_folder(plan.run_dir.parent):  # project= and its parents go again if the run fails (a full disk)
        staging = make_temp_dir(plan.run_dir.parent, f".{plan.run_dir.name}.", ".partial")
        try:
            results = _evaluate_into(plan, staging, log)
            if plan.run_dir.exists():  # taken while this run evaluated: the next free name
                plan.run_dir = _new_run_dir(str(plan.run_dir.parent), plan.run_dir.name)
            staging.rename(plan.run_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return results


def _evaluate_into(plan: ValPlan, run_dir: Path, log) -> dict[str, dict[str, float]]:
    """Capture every checkpoint's detections with ultralytics' validator, write gt.json and the predictions, and
    evaluate them (:mod:`boxloss.evaluation.checkpoint_eval`); returns ``{row: metrics}`` of the first backend."""
    settings = plan.settings
    several = len(plan.checkpoints) > 1
    val_args = {k: settings[k] for k in ("imgsz", "batch", "device", "conf", "iou", "workers")
                if settings[k] is not None}
    gt, image_ids = plan.gt, None
    results: dict[str, dict[str, dict[str, float]]] = {backend: {} for backend in plan.backends}
    tide: dict[str, dict[str, dict[str, Any]]] = {family: {} for family in FAMILIES}  # family -> row -> TIDE
    for checkpoint in plan.checkpoints:
        save_dir = run_dir / _safe(checkpoint.row) if several else run_dir
        validator = capture_validation(checkpoint.model, checkpoint.task.capture_validator, plan.data_yaml,
                                       split=settings["split"], save_dir=save_dir, max_det=settings["max_det"],
                                       **val_args, **_nms_arguments(checkpoint.nms))
        captured = validator.captured
        by_path = image_ids_by_path(plan.gt, [d.im_file for d in captured])
        seen = {by_path[str(Path(d.im_file).resolve())] for d in captured}
        if image_ids is None:
            image_ids = seen
            dropped = len(plan.gt["images"]) - len(seen)
            if dropped:  # ultralytics drops images it finds corrupt; evaluate what it validated
                print(f"val.py: warning: {dropped} more image(s) of the split were not validated by ultralytics "
                      "(corrupt image or label); they are left out of gt.json", file=sys.stderr)
                gt = _restrict_gt(plan.gt, image_ids)
            write_json_atomic(run_dir / "gt.json", gt)
        elif seen != image_ids:
            raise RuntimeError(f"{checkpoint.row}: validated a different set of images than the first checkpoint")
        predictions = {family: to_coco_results(captured, by_path, checkpoint.category_ids, family)
                       for family in checkpoint.families}
        for family, results_of_family in predictions.items():
            write_json_atomic(save_dir / PREDICTION_FILES[family], results_of_family)
        skipped = {"skipped_images": len(plan.gt["images"]) - len(image_ids) + len(skipped_images(plan.gt))}
        stock = ultralytics_obb_metrics(validator) if checkpoint.boxes == "obb" else {}
        metrics, checkpoint_tide = evaluate_checkpoint(gt, predictions, plan.backends, checkpoint.row,
                                                       {**skipped, "nms": checkpoint.nms, **stock}, plan.oks)
        for backend, values in metrics.items():
            results[backend][checkpoint.row] = values
        for family, values in checkpoint_tide.items():
            tide[family][checkpoint.row] = values
    log(write_run_files(run_dir, results, tide, plan.backends))
    if len(plan.backends) > 1:
        log(f"val.py: {agreement_line(results, plan.backends)}")
    return results[plan.backends[0]]


def command(argv: list[str], prog: str = "val.py") -> int:
    """val.py's work on a key=value command line: evaluate and print the run directory, status 0; backends that
    disagree are a failed check, not bad input: one line, status 1 (bad input raises ConfigError for
    :func:`boxloss.keyvalues.run_cli`)."""
    from ..evaluation.coco_eval import BackendDisagreement
    from ..keyvalues import parse_keyvalues

    plan = prepare(parse_keyvalues(argv, VAL_KEYS))
    try:
        run(plan)
    except BackendDisagreement as error:
        print(f"{prog}: error: {error}", file=sys.stderr)
        return 1
    print(f"{prog}: run directory {plan.run_dir}")
    return 0


def ultralytics_obb_metrics(validator) -> dict[str, Any]:
    """``{"ultralytics": {"mAP50", "mAP50-95", "matched_by"}}``: ultralytics' own metric of an oriented-box
    checkpoint's run (OBBValidator: ProbIoU matching, its own interpolation), kept beside the exact AP for comparison
    only."""
    stock = {key: float(getattr(validator.metrics.box, attribute)) for key, attribute in ULTRALYTICS_OBB_KEYS.items()}
    return {"ultralytics": {**stock, "matched_by": "ProbIoU"}}


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name).strip("_") or "model"
