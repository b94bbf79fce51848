"""Experiment configuration: shared defaults, a config file, ``key=value`` overrides; checked before any run.

Resolution order: ``cfg/default.yaml`` (shared defaults) < the experiment file < command-line overrides.
Every problem (unknown key, wrong type, out-of-range value, missing dataset or model) raises
:class:`~boxloss.errors.ConfigError` with one line naming it, before anything is written. The configs ship inside
the package (``boxloss/configs``, the repository's ``cfg/``), so a non-editable install has them too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from ultralytics.cfg import check_cfg
from ultralytics.utils import DATASETS_DIR, DEFAULT_CFG_DICT

from .. import options
from .._io import check_output_folder, read_yaml_mapping
from ..data.embedded import check_data, is_embedded, resolve_data
from ..devices import check_device
from ..errors import ConfigError
from ..keyvalues import check_known
from ..param import Param
from .tasks import TASKS, Task, head_task, task_of_head, unsupported_head_reason

CFG_DIR = Path(__file__).resolve().parents[1] / "configs"
DEFAULTS_FILE = "default.yaml"
ENTRY_KEYS: dict[str, Param] = {  # keys of train.py itself, not of ultralytics
    "cfg": Param(None, "experiment config: a file, or a name in cfg/ (e.g. eiou.yaml)", value_type=str),
    "resume": Param(None, "resume an interrupted run from its last.pt (no other keys)", value_type=str),
}


def find_config(name: str | Path) -> Path:
    """A config path as given, else the bare file name looked up in ``cfg/``."""
    path = Path(name)
    for candidate in (path, CFG_DIR / path, CFG_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.name for p in CFG_DIR.glob("*.yaml")))
    raise ConfigError(f"config file {str(name)!r} not found (in cfg/: {available})")


@dataclass(frozen=True)
class Experiment:
    """A resolved experiment: what train.py runs, every choice made once.

    ``settings``: the merged, validated configuration (ultralytics' keys and the project's) plus ``cfg`` (the file
    used), as recorded in the run's ``boxloss.yaml``; ``options``: the project's keys resolved
    (:func:`boxloss.options.from_args`), which the trainer, the model and its criteria read from here on; ``task``:
    the model's task record."""

    settings: dict[str, Any]
    options: options.Options
    task: Task


def known_keys() -> set[str]:
    """Every key a config or train.py accepts: ultralytics' train keys and the project's."""
    return set(DEFAULT_CFG_DICT) | set(options.all_options())


def load_experiment(overrides: Mapping[str, Any], *, require_data: bool = True,
                    data_check: Callable[..., Any] = check_data) -> Experiment:
    """The resolved :class:`Experiment` from an entry point's parsed ``key=value`` arguments (``cfg`` names the
    experiment file; :func:`boxloss.keyvalues.split_keyvalues` parses them, once). ``data_check``: how the dataset
    is checked (:func:`~boxloss.data.embedded.check_data`; a benchmark plan's :class:`~boxloss.data.embedded.DataChecks`
    checks each dataset once for all its configs). The stages and their names: docs/development.md, "From a config
    file to a bound loss"."""
    overrides = dict(overrides)
    cfg_name = overrides.pop("cfg", None)
    if cfg_name is not None and (not isinstance(cfg_name, str) or not cfg_name):
        raise ConfigError(f"cfg={cfg_name!r} must be a config file name")
    merged = read_yaml_mapping(find_config(DEFAULTS_FILE), "config", numbers=True)
    check_known(merged, known_keys(), DEFAULTS_FILE)
    cfg_path = None
    if cfg_name:
        cfg_path = find_config(cfg_name)
        file_cfg = read_yaml_mapping(cfg_path, "config", numbers=True)
        check_known(file_cfg, known_keys(), cfg_path.name)
        merged.update(file_cfg)
    check_known(overrides, known_keys())
    merged.update(overrides)
    resolved, task = validate(merged, require_data=require_data, data_check=data_check)
    merged["cfg"] = str(cfg_path) if cfg_path else None
    return Experiment(merged, resolved, task)


def validate(cfg: dict[str, Any], *, require_data: bool = True,
             data_check: Callable[..., Any] = check_data) -> tuple[options.Options, Task]:
    """Types and ranges of every key, that the model and dataset exist locally and fit together (a pose model needs
    keypoints, a segmentation model polygons, an oriented-box model rotated boxes and a box loss for them), that
    ``project`` can be a folder, and ``classes`` against the dataset's names (replaced by the class indices it
    selects). Returns the project's options, resolved (the one resolution of the process) for the boxes of the model's
    task, and the task; an unset ``box_loss`` is written into ``cfg`` as the one the run trains with (ultralytics' own
    for the model's boxes), so every record of the run names it (an unset ``assigner_iou`` stays unset there: recorded
    runs from before it had a per-task default have none, and it means the stock metric)."""
    ultralytics_cfg = {k: v for k, v in cfg.items() if k in DEFAULT_CFG_DICT and k not in options.all_options()}
    try:
        check_cfg(ultralytics_cfg, hard=True)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error).strip().splitlines()[0]) from None
    check_ultralytics_values(ultralytics_cfg)
    task = check_model(cfg.get("model"))
    resolved = options.from_args(cfg, task.boxes)
    cfg["box_loss"] = resolved["box_loss"]  # unset: the stock loss of the task's boxes
    check_output_folder(cfg.get("project"), "project")
    if resolved["iou_aware"] and not task.iou_aware:
        heads = ", ".join(head for t in TASKS.values() if t.iou_aware for head in t.heads)
        article = "an" if task.name[0] in "aeiou" else "a"
        raise ConfigError(f"iou_aware=true: the IoU-aware head attaches to the box tower of a detection head "
                          f"({heads}); {cfg['model']!r} is {article} {task.name} model, whose criterion has no "
                          "IoU-prediction term")
    if require_data:
        spec = data_check(cfg.get("data"), ("train", "val"), datasets_dir=DATASETS_DIR, task=task.name)
        if task.name == "pose" and is_embedded(cfg.get("data")) and cfg.get("flipud", DEFAULT_CFG_DICT["flipud"]):
            raise ConfigError(f"flipud={cfg['flipud']} with data={cfg['data']}: ultralytics applies flip_idx (left <-> "
                              "right) to vertical flips too, which would swap the wrong extreme points; use flipud=0")
        if cfg.get("classes") is not None:
            from ..data.synthetic import CLASS_NAMES

            cfg["classes"] = check_classes(cfg["classes"], spec.names if spec is not None else list(CLASS_NAMES))
    return resolved, task


def check_classes(classes: Any, names: list[str]) -> list[int]:
    """ultralytics' ``classes=`` filter as class indices: indices or names of ``names`` (a list, or one string
    ``a,b``); ConfigError for an unknown index or name, or for selecting nothing."""
    items = list(classes) if isinstance(classes, (list, tuple)) else \
        [part.strip() for part in classes.split(",")] if isinstance(classes, str) else [classes]
    items = [item for item in items if item != ""]
    if not items:
        raise ConfigError(f"classes={classes!r} selects no class; leave it out to train on all {len(names)}")
    indices = []
    for item in items:
        if isinstance(item, str) and item.strip().lstrip("-").isdigit():
            item = int(item)
        if isinstance(item, int) and not isinstance(item, bool):
            if not 0 <= item < len(names):
                raise ConfigError(f"classes={classes!r}: class {item} is not one of the dataset's {len(names)} "
                                  f"classes (0-{len(names) - 1})")
            indices.append(item)
        elif isinstance(item, str) and item in names:
            indices.append(names.index(item))
        else:
            raise ConfigError(f"classes={classes!r}: {item!r} is neither a class index nor one of the dataset's "
                              f"names ({', '.join(map(str, names[:20]))}{', ...' if len(names) > 20 else ''})")
    return sorted(set(indices))


def _image_size_ok(value: Any) -> bool:
    sizes = value if isinstance(value, (list, tuple)) else [value]
    return 1 <= len(sizes) <= 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in sizes)


def _batch_ok(value: Any) -> bool:
    return value == -1 or value >= 1 if isinstance(value, int) else 0 < value < 1


ULTRALYTICS_CHECKS: dict[str, Param] = {  # the train keys users most often get wrong; ultralytics accepts them silently
    "imgsz": Param(640, "image size", _image_size_ok, "a positive integer or a pair of them", value_type=(int, list)),
    "batch": Param(16, "batch size", _batch_ok, ">= 1, -1 (AutoBatch) or in (0, 1) (AutoBatch fraction of memory)",
                   value_type=(int, float)),
    "workers": Param(8, "dataloader workers", lambda w: w >= 0, ">= 0"),
    "epochs": Param(100, "epochs", lambda e: e >= 1, ">= 1"),
}


def check_ultralytics_values(cfg: dict[str, Any]) -> None:
    """imgsz, batch, workers, epochs in range, the device present on this machine, every float finite."""
    for key, param in ULTRALYTICS_CHECKS.items():
        if cfg.get(key) is not None:
            param.validate(key, cfg[key])
    for key, value in cfg.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} is not a finite number")
    check_device(cfg.get("device"))




def _yaml_head(path: str) -> str:
    from ultralytics.nn.tasks import yaml_model_load

    return str(yaml_model_load(path)["head"][-1][2]).split(".")[-1]


def _builtin_model_yaml(name: str) -> bool:
    """Whether ultralytics ships this model YAML (e.g. yolov8n.yaml: scale suffix allowed)."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
        return True
    except (FileNotFoundError, OSError):
        return False


def load_checkpoint_file(path: str | Path, role: str = "model") -> dict[str, Any]:
    """A local .pt loaded as ultralytics does (the whole pickled model); ConfigError if it is not a checkpoint."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except ModuleNotFoundError as error:
        raise ConfigError(f"{role} {str(path)!r} needs the module {error.name!r} to load") from None
    except Exception as error:  # a text file, a truncated download, another format
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(f"{role} {str(path)!r} is not a PyTorch checkpoint ({reason})") from None
    model = checkpoint.get("ema") or checkpoint.get("model") if isinstance(checkpoint, dict) else None
    if not isinstance(getattr(model, "model", None), torch.nn.Module):
        raise ConfigError(f"{role} {str(path)!r} is not an ultralytics checkpoint (no model in it)")
    return checkpoint


def check_model(model: Any) -> Task:
    """A ``*.yaml`` architecture (built from scratch) or a local checkpoint of a model of a task boxloss trains
    (:data:`~boxloss.yolo.tasks.TASKS`); no download. Returns its task."""

    if not isinstance(model, str) or not model:
        raise ConfigError(f"model={model!r} must be a model YAML (e.g. yolov8n.yaml) or a local .pt checkpoint")
    path = Path(model)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists() and not _builtin_model_yaml(path.name):
            raise ConfigError(f"model YAML {model!r} not found (neither a file nor an ultralytics model name)")
        head = _yaml_head(model)
        task, reason = task_of_head(head), unsupported_head_reason(head)
    elif path.suffix == ".pt":
        if not path.is_file():
            raise ConfigError(f"model checkpoint {model!r} not found (boxloss never downloads weights: give a "
                              "local .pt path or a *.yaml to train from scratch)")
        checkpoint = load_checkpoint_file(path, "model checkpoint")
        head = (checkpoint.get("ema") or checkpoint.get("model")).model[-1]
        task = head_task(head)
        reason = None if task else unsupported_head_reason(type(head).__name__)
    else:
        raise ConfigError(f"model={model!r} must end in .yaml or .pt")
    if reason:
        raise ConfigError(f"model {model!r}: {reason}")
    return task


def unreadable_images_warning(data: Any) -> str | None:
    """One line naming the train and val images ultralytics will skip as unreadable (and why), or None."""
    from ..data.yolo_format import read_data_yaml, split_images, unreadable_images

    if is_embedded(data):
        return None
    spec = read_data_yaml(data, DATASETS_DIR)
    images = [image for split in ("train", "val") for image in split_images(spec, split)]
    bad = unreadable_images(images)
    if not bad:
        return None
    (first, reason), more = bad[0], f" and {len(bad) - 1} more" if len(bad) > 1 else ""
    return (f"{len(bad)} of {len(images)} train/val images cannot be read and will be skipped: {first} ({reason})"
            f"{more}")


def train_arguments(settings: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``BoxLossYOLO(model).train(...)`` from an experiment's ``settings``: entry keys
    dropped, paths made absolute."""
    args = {k: v for k, v in settings.items() if k not in ENTRY_KEYS and k != "model"}
    args["data"] = resolve_data(args["data"])
    args["project"] = str(Path(args.get("project") or "runs/train").resolve())
    if args.get("name") in (None, ""):
        args["name"] = Path(settings["cfg"]).stem if settings.get("cfg") else "default"
    return args


def check_resume(checkpoint: str) -> dict[str, Any]:
    """The checkpoint of an interrupted boxloss run, loaded; ConfigError (nothing written) for anything else."""
    path = Path(checkpoint)
    if not path.is_file():
        raise ConfigError(f"checkpoint to resume {checkpoint!r} not found")
    loaded = load_checkpoint_file(path, "checkpoint to resume")
    args = loaded.get("train_args")
    if not args:
        raise ConfigError(f"{checkpoint!r} is a model, not an interrupted training run (it has no train_args); use "
                          f"model={checkpoint} to start a run from it")
    if "box_loss" not in args:
        raise ConfigError(f"{checkpoint!r} was not trained by boxloss (its train_args have no box_loss); use "
                          f"model={checkpoint} to start a boxloss run from it")
    epochs, epoch = args.get("epochs"), loaded.get("epoch", -1)
    if epoch is None or epoch < 0 or (isinstance(epochs, int) and epoch + 1 >= epochs):
        best = path.with_name("best.pt")
        raise ConfigError(f"{checkpoint!r} is already finished at epoch {epochs}/{epochs}; start a new run with "
                          f"model={best if best.is_file() else checkpoint}")
    return loaded
