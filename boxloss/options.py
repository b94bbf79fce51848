"""The project's configuration keys (loss choice and loss hyper-parameters), their defaults and checks.

Pure Python: the schema is derived from the loss registry, so registering a loss with a hyper-parameter
creates its config key (``<loss>_<param>`` for box losses, ``cls_<loss>_<param>`` for classification
losses, ``<prefix>_<param>`` for a wrapper) with no further code. ``boxloss.yolo`` registers these keys
with ultralytics.
"""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ConfigError
from .registry import BOX_LOSSES, CLS_LOSSES, BoundLoss, Param

__all__ = ["ConfigError", "GENERAL_OPTIONS", "all_options", "defaults", "check_value", "validate", "resolve",
           "bind_loss"]


def _non_negative(value) -> bool:
    return value >= 0


GENERAL_OPTIONS: dict[str, Param] = {
    "box_loss": Param("ciou", "box-regression loss, a name from boxloss.list_losses()",
                      lambda name: name in BOX_LOSSES, "a registered box loss"),
    "cls_loss": Param("bce", "classification loss, a name from boxloss.list_losses('cls')",
                      lambda name: name in CLS_LOSSES, "a registered classification loss"),
    "box_terms": Param(True, "log the parts of the box loss (iou, dist, aspect, w, h, encl) as loss items"),
    "iou_balanced_loc": Param(False, "multiply each positive's box loss by w_loc·IoU^λ (no gradient; arXiv 1908.05641)"),
    "iou_balanced_lambda": Param(1.5, "exponent λ of IoU-balanced localisation (paper: 1.5)", _non_negative, ">= 0"),
    "iou_balanced_wloc": Param(1.0, "constant w_loc of IoU-balanced localisation", lambda w: w > 0, "> 0"),
    "iou_balanced_cls": Param(False, "weight positives' classification loss by IoU^η, sum kept (arXiv 1908.05641)"),
    "iou_balanced_eta": Param(1.5, "exponent η of IoU-balanced classification (paper: 1.5)", _non_negative, ">= 0"),
    "iou_aware": Param(False, "add the IoU-aware confidence head (arXiv 1912.05992)"),
    "iou_aware_alpha": Param(0.5, "score = cls^(1−α) · IoU^α at inference", lambda a: 0 <= a <= 1, "in [0, 1]"),
    "iou_aware_min_cls": Param(0.001, "fold only where cls >= this; below, the class score is kept (candidate set "
                               "as stock)", lambda m: 0 <= m < 1, "in [0, 1)"),
    "iou_gain": Param(1.0, "gain of the IoU-prediction loss", _non_negative, ">= 0"),
    "iou_target_grad": Param(False, "back-propagate through the IoU target into the box branch"),
}


def all_options() -> dict[str, Param]:
    """Every project key -> Param (defaults, docs, checks), including per-loss hyper-parameters."""
    return {**GENERAL_OPTIONS, **BOX_LOSSES.options(), **CLS_LOSSES.options()}


def defaults() -> dict[str, Any]:
    return {key: param.default for key, param in all_options().items()}


def check_value(key: str, value: Any) -> Any:
    """Validate one project key; returns the value (ints accepted and converted for float keys)."""
    param = all_options()[key]
    if key in ("box_loss", "cls_loss") and isinstance(value, str) and not param.check(value):
        registry = BOX_LOSSES if key == "box_loss" else CLS_LOSSES
        raise ConfigError(f"{key}={value!r} is out of range: must be one of {', '.join(registry.names())}")
    return param.validate(key, value)


def validate(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """Check every project key present in ``cfg``; returns a dict of the checked project values."""
    known = all_options()
    return {key: check_value(key, value) for key, value in cfg.items() if key in known}


def resolve(cfg: Mapping[str, Any] | Any) -> dict[str, Any]:
    """All project options from a dict or namespace (e.g. ``model.args``), defaults filled, validated."""
    get = cfg.get if isinstance(cfg, Mapping) else (lambda key, default: getattr(cfg, key, default))
    return {key: check_value(key, get(key, param.default)) for key, param in all_options().items()}


def bind_loss(options: Mapping[str, Any], kind: str = "box") -> BoundLoss:
    """The configured box (``box_loss``) or classification (``cls_loss``) loss, bound to its hyper-parameters."""
    registry = BOX_LOSSES if kind == "box" else CLS_LOSSES
    return registry.spec(options[f"{kind}_loss"]).bind_options(options)
