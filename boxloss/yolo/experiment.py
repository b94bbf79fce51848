"""Experiment configuration: shared defaults, a config file, ``key=value`` overrides; checked before any run.

Resolution order: ``cfg/default.yaml`` (shared defaults) < the experiment file < command-line overrides.
Every problem (unknown key, wrong type, out-of-range value, missing dataset or model) raises
:class:`ConfigError` with one line naming it, before anything is written.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Iterable

import yaml
from ultralytics.cfg import check_cfg
from ultralytics.utils import DEFAULT_CFG_DICT

from .. import options
from ..options import ConfigError

CFG_DIR = Path(__file__).resolve().parents[2] / "cfg"
DEFAULTS_FILE = "default.yaml"
# Embedded datasets (generated locally on first use): name -> parameters of boxloss.data.synthetic.ensure_dataset.
# "shapes-mini" is the same generator at smoke-test size (tests, CI, a first try).
EMBEDDED_DATASETS = {"shapes": {}, "shapes-mini": {"n_train": 48, "n_val": 24}}
ENTRY_KEYS = ("cfg",)  # keys of the entry points, not of ultralytics


def parse_overrides(argv: Iterable[str]) -> dict[str, Any]:
    """``["epochs=3", "box_loss=eiou"]`` -> ``{"epochs": 3, "box_loss": "eiou"}`` (values parsed as YAML)."""
    overrides = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise ConfigError(f"argument {arg!r} is not of the form key=value")
        try:
            overrides[key] = yaml.safe_load(value) if value else ""
        except yaml.YAMLError:
            overrides[key] = value
    return overrides


def find_config(name: str | Path) -> Path:
    """A config path as given, else the bare file name looked up in ``cfg/``."""
    path = Path(name)
    for candidate in (path, CFG_DIR / path, CFG_DIR / f"{path}.yaml"):
        if candidate.is_file():
            return candidate.resolve()
    available = ", ".join(sorted(p.name for p in CFG_DIR.glob("*.yaml")))
    raise ConfigError(f"config file {str(name)!r} not found (in cfg/: {available})")


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping of key: value, got {type(content).__name__}")
    return content


def known_keys() -> set[str]:
    return set(DEFAULT_CFG_DICT) | set(options.all_options())


def check_keys(cfg: dict[str, Any], source: str) -> None:
    known = known_keys()
    for key in cfg:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown config key {key!r} in {source}{hint}")


def load_experiment(argv: Iterable[str], *, require_data: bool = True) -> dict[str, Any]:
    """The resolved experiment from entry-point arguments ``cfg=<file> key=value ...``.

    Returns the merged, validated configuration (ultralytics and project keys) plus ``cfg`` (the file used).
    """
    overrides = parse_overrides(argv)
    cfg_name = overrides.pop("cfg", None)
    merged = read_yaml(find_config(DEFAULTS_FILE))
    check_keys(merged, DEFAULTS_FILE)
    cfg_path = None
    if cfg_name:
        cfg_path = find_config(cfg_name)
        file_cfg = read_yaml(cfg_path)
        check_keys(file_cfg, cfg_path.name)
        merged.update(file_cfg)
    check_keys(overrides, "the command line")
    merged.update(overrides)
    validate(merged, require_data=require_data)
    merged["cfg"] = str(cfg_path) if cfg_path else None
    return merged


def validate(cfg: dict[str, Any], *, require_data: bool = True) -> None:
    """Types and ranges of every key, and that the model and dataset exist locally."""
    ultralytics_cfg = {k: v for k, v in cfg.items() if k in DEFAULT_CFG_DICT and k not in options.all_options()}
    try:
        check_cfg(ultralytics_cfg, hard=True)
    except (TypeError, ValueError) as error:
        raise ConfigError(str(error).strip().splitlines()[0]) from None
    options.validate(cfg)
    check_model(cfg.get("model"))
    if require_data:
        check_data(cfg.get("data"))


def check_model(model: Any) -> None:
    """A ``*.yaml`` architecture (built from scratch) or an existing local checkpoint; never a download."""
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model={model!r} must be a model YAML (e.g. yolov8n.yaml) or a local .pt checkpoint")
    path = Path(model)
    if path.suffix in {".yaml", ".yml"}:
        if not path.exists() and not _builtin_model_yaml(path.name):
            raise ConfigError(f"model YAML {model!r} not found (neither a file nor an ultralytics model name)")
    elif path.suffix == ".pt":
        if not path.is_file():
            raise ConfigError(f"model checkpoint {model!r} not found (boxloss never downloads weights: give a "
                              "local .pt path or a *.yaml to train from scratch)")
    else:
        raise ConfigError(f"model={model!r} must end in .yaml or .pt")


def _builtin_model_yaml(name: str) -> bool:
    """Whether ultralytics ships this model YAML (e.g. yolov8n.yaml: scale suffix allowed)."""
    from ultralytics.nn.tasks import yaml_model_load

    try:
        yaml_model_load(name)
        return True
    except (FileNotFoundError, OSError):
        return False


def check_data(data: Any) -> None:
    """An embedded dataset name or a data YAML whose image folders exist."""
    if data in EMBEDDED_DATASETS:
        return
    if not isinstance(data, str) or not data:
        raise ConfigError(f"data={data!r} must be a dataset YAML path or one of {', '.join(EMBEDDED_DATASETS)}")
    path = Path(data)
    if not path.is_file():
        raise ConfigError(f"dataset {data!r} not found (boxloss never downloads datasets; embedded: "
                          f"{', '.join(EMBEDDED_DATASETS)})")
    spec = read_yaml(path)
    root = Path(spec.get("path") or path.parent)
    if not root.is_absolute():
        root = (path.parent / root).resolve()
    for split in ("train", "val"):
        entries = spec.get(split)
        if entries is None:
            raise ConfigError(f"dataset {data!r} has no {split!r} entry")
        for entry in entries if isinstance(entries, list) else [entries]:
            if not (root / entry).exists():
                raise ConfigError(f"dataset {data!r}: {split} images {str(root / entry)!r} not found")
    check_labels(path, spec)


def check_labels(data_yaml: Path, spec: dict[str, Any]) -> None:
    """Every train/val label line parses, is normalised and names a class of the dataset (file:line on error).

    Ultralytics skips a malformed label file with a warning and trains without it; a benchmark should not.
    """
    from ..evaluation.coco_gt import class_names, label_path, read_yolo_labels, split_images

    number_of_classes = len(class_names(spec))
    for split in ("train", "val"):
        for image in split_images(data_yaml, split):
            labels = label_path(image)
            try:
                rows = read_yolo_labels(labels)
            except ValueError as error:
                raise ConfigError(f"dataset {str(data_yaml)!r}: malformed label line {error}") from None
            for row in rows:
                if row[0] >= number_of_classes:
                    raise ConfigError(f"dataset {str(data_yaml)!r}: {labels}: class {row[0]} is not one of the "
                                      f"{number_of_classes} classes in 'names'")


def resolve_data(data: str) -> str:
    """The data YAML path for ``data``: embedded datasets are generated on first use."""
    if data in EMBEDDED_DATASETS:
        from ..data.synthetic import ensure_dataset

        return str(ensure_dataset(**EMBEDDED_DATASETS[data]))
    return str(Path(data).resolve())


def train_arguments(experiment: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``BoxLossYOLO(model).train(...)``: entry keys dropped, paths made absolute."""
    args = {k: v for k, v in experiment.items() if k not in ENTRY_KEYS and k != "model"}
    args["data"] = resolve_data(args["data"])
    args["project"] = str(Path(args.get("project") or "runs/train").resolve())
    if args.get("name") in (None, ""):
        args["name"] = Path(experiment["cfg"]).stem if experiment.get("cfg") else "default"
    return args


def check_resume(checkpoint: str) -> None:
    if not Path(checkpoint).is_file():
        raise ConfigError(f"checkpoint to resume {checkpoint!r} not found")
