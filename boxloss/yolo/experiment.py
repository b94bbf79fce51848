"""Experiment configuration: shared defaults, a config file, ``key=value`` overrides; checked before any run.

Resolution order: ``cfg/default.yaml`` (shared defaults) < the experiment file < command-line overrides.
Every problem (unknown key, wrong type, out-of-range value, missing dataset or model) raises
:class:`~boxloss.errors.ConfigError` with one line naming it, before anything is written. The configs ship inside
the package (``boxloss/configs``, the repository's ``cfg/``), so a non-editable install has them too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ultralytics.cfg import check_cfg
from ultralytics.utils import DATASETS_DIR, DEFAULT_CFG_DICT

from .. import options
from .._io import read_yaml_mapping
from ..data.embedded import resolve_data
from ..data.yolo_format import check_dataset
from ..errors import ConfigError
from ..keyvalues import check_known, split_keyvalues
from ..registry import Param

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


def known_keys() -> set[str]:
    """Every key a config or train.py accepts: ultralytics' train keys and the project's."""
    return set(DEFAULT_CFG_DICT) | set(options.all_options())


def load_experiment(argv: Iterable[str], *, require_data: bool = True) -> dict[str, Any]:
    """The resolved experiment from entry-point arguments ``cfg=<file> key=value ...``.

    Returns the merged, validated configuration (ultralytics and project keys) plus ``cfg`` (the file used).
    """
    overrides = split_keyvalues(argv)
    cfg_name = overrides.pop("cfg", None)
    if cfg_name is not None and (not isinstance(cfg_name, str) or not cfg_name):
        raise ConfigError(f"cfg={cfg_name!r} must be a config file name")
    merged = read_yaml_mapping(find_config(DEFAULTS_FILE), "config")
    check_known(merged, known_keys(), DEFAULTS_FILE)
    cfg_path = None
    if cfg_name:
        cfg_path = find_config(cfg_name)
        file_cfg = read_yaml_mapping(cfg_path, "config")
        check_known(file_cfg, known_keys(), cfg_path.name)
        merged.update(file_cfg)
    check_known(overrides, known_keys())
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
        check_dataset(cfg.get("data"), ("train", "val"), datasets_dir=DATASETS_DIR)


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
