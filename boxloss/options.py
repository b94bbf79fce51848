"""The project's configuration keys (loss choice and loss hyper-parameters), their defaults and checks.

Pure Python: the schema is derived from the loss registry, so registering a loss with a hyper-parameter
creates its config key (``<loss>_<param>`` for box losses, ``cls_<loss>_<param>`` for classification
losses, ``<prefix>_<param>`` for a wrapper) with no further code. ``boxloss.yolo`` registers these keys
with ultralytics.
"""

from __future__ import annotations

from typing import Any, Mapping

from .errors import ConfigError
from .ops.nms import NMS_BOXES, NMS_METHODS
from .registry import BOX_FORMATS, BOX_LOSSES, CLS_LOSSES, STOCK_BOX_LOSS, BoundLoss
from .param import Param

__all__ = ["ConfigError", "GENERAL_OPTIONS", "Options", "all_options", "defaults", "check_value", "validate",
           "from_args", "bind_loss"]


def _non_negative(value) -> bool:
    return value >= 0


def _auto_or_positive(value) -> bool:
    return value == "auto" if isinstance(value, str) else value > 0


ASSIGNER_METRICS = {"xyxy": ("ciou", "iou", "giou", "diou", "eiou"), "xywhr": ("probiou",)}  # by box format; and same


GENERAL_OPTIONS: dict[str, Param] = {
    "box_loss": Param(None, "box-regression loss, a name from boxloss.list_losses() of the model's kind of box "
                      "(unset: ultralytics' own, ciou; probiou for oriented boxes)",
                      lambda name: name in BOX_LOSSES, "a registered box loss", value_type=str),
    "cls_loss": Param("bce", "classification loss, a name from boxloss.list_losses('cls')",
                      lambda name: name in CLS_LOSSES, "a registered classification loss"),
    "box_terms": Param(True, "log the parts of the box loss (iou, dist, aspect, w, h, encl) as loss items"),
    "iou_balanced_loc": Param(False, "multiply each positive's box loss by w_loc·IoU^λ "
                                     "(no gradient; arXiv 1908.05641)"),
    "iou_balanced_lambda": Param(1.5, "exponent λ of IoU-balanced localisation (paper: 1.5)", _non_negative, ">= 0"),
    "iou_balanced_wloc": Param("auto", "w_loc of IoU-balanced localisation: 'auto' keeps the initial box-loss sum "
                               "unchanged, as the paper tunes it (set from the first batches), or a constant",
                               _auto_or_positive, "'auto' or > 0", value_type=(str, float)),
    "iou_balanced_wloc_batches": Param(20, "training batches that set iou_balanced_wloc: auto", lambda n: n >= 1,
                                       ">= 1"),
    "iou_balanced_cls": Param(False, "weight positives' classification loss by IoU^η, sum kept (arXiv 1908.05641)"),
    "iou_balanced_eta": Param(1.5, "exponent η of IoU-balanced classification (paper: 1.5)", _non_negative, ">= 0"),
    "iou_aware": Param(False, "add the IoU-aware confidence head (arXiv 1912.05992)"),
    "iou_aware_alpha": Param(0.5, "score = cls^α · IoU^(1−α) at inference (the authors' convention: α on the class "
                             "score)", lambda a: 0 <= a <= 1, "in [0, 1]"),
    "iou_aware_min_cls": Param(0.001, "fold only where cls >= this; below, the class score is kept (candidate set "
                               "as stock)", lambda m: 0 <= m < 1, "in [0, 1)"),
    "iou_gain": Param(1.0, "gain of the IoU-prediction loss", _non_negative, ">= 0"),
    "iou_target_grad": Param(False, "back-propagate through the IoU target into the box branch"),
    "nms_method": Param("standard", "NMS of validation and prediction: standard (ultralytics'; ProbIoU Fast-NMS for "
                        "oriented boxes), diou (DIoU-NMS, arXiv 1911.08287; axis-aligned boxes) or exact (oriented "
                        "boxes: ultralytics' Fast-NMS on the exact polygon IoU)", choices=NMS_METHODS),
    "nms_diou_beta": Param(1.0, "exponent β of DIoU-NMS's penalty (ρ²/c²)^β (paper: 1)", lambda b: b > 0, "> 0"),
    "assigner_iou": Param(None, "IoU-type metric the task-aligned assigner ranks anchors with: ciou, iou, giou, diou, "
                          "eiou (axis-aligned boxes), probiou (oriented boxes), or same (the configured box loss's); "
                          "unset: ultralytics' own, ciou (probiou for oriented boxes)",
                          choices=(*(m for metrics in ASSIGNER_METRICS.values() for m in metrics), "same"),
                          value_type=str),
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


def validate(cfg: Mapping[str, Any], boxes: str = "xyxy") -> dict[str, Any]:
    """Check every project key present in ``cfg`` (and the combinations that cannot work) for a model that predicts
    ``boxes`` (a key of :data:`~boxloss.registry.BOX_FORMATS`); returns the checked project values, with the box loss
    and assigner metric resolved (:func:`for_boxes`)."""
    known = all_options()
    checked = {key: check_value(key, value) for key, value in cfg.items() if key in known}
    checked.update(for_boxes({**defaults(), **checked}, boxes))
    resolved = {**defaults(), **checked}
    for kind in ("box", "cls"):
        bind_loss(resolved, kind)  # the cross-parameter checks of the configured losses, first
    for registry in (BOX_LOSSES, CLS_LOSSES):
        registry.check_options(resolved)  # and of every other: a bad combination is bad whatever the loss
    box_spec = BOX_LOSSES.spec(resolved["box_loss"])
    if resolved["assigner_iou"] == "same" and not box_spec.iou_based:
        raise ConfigError(f"assigner_iou=same ranks anchors by the box loss's own IoU-type similarity, and "
                          f"box_loss={resolved['box_loss']} is not IoU-type; use assigner_iou="
                          + _or([f"{name} (stock)" if name == STOCK_BOX_LOSS[boxes] else name
                                 for name in ASSIGNER_METRICS[boxes]]))
    cls_spec = CLS_LOSSES.spec(resolved["cls_loss"])
    if cls_spec.reduction == "scalar" and resolved["iou_balanced_cls"]:
        raise ConfigError(f"cls_loss={resolved['cls_loss']} ranks all entries at once (a scalar loss): "
                          "iou_balanced_cls has no per-entry loss to re-weight; use one or the other")
    return checked


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def _kind(boxes: str) -> str:
    return BOX_FORMATS[boxes].split(" (")[0]  # "axis-aligned boxes", "rotated boxes"


def for_boxes(values: Mapping[str, Any], boxes: str) -> dict[str, Any]:
    """``box_loss`` and ``assigner_iou`` for a model that predicts ``boxes``: an unset one (None, the registered
    default) is ultralytics' own for those boxes (:data:`~boxloss.registry.STOCK_BOX_LOSS`: ciou, or probiou for
    oriented boxes); a box loss, assigner metric or NMS method of the other kind of box is a ConfigError naming the
    ones that fit. ``values``: every project key."""
    if boxes not in BOX_FORMATS:
        raise ValueError(f"unknown box format {boxes!r}; valid formats: {', '.join(BOX_FORMATS)}")
    stock = STOCK_BOX_LOSS[boxes]
    box_loss, metric, nms = values["box_loss"] or stock, values["assigner_iou"] or stock, values["nms_method"]
    takes = BOX_LOSSES.spec(box_loss).boxes
    if takes != boxes:
        fitting = ", ".join(BOX_LOSSES.names(wrapped=False, boxes=boxes))
        raise ConfigError(f"box_loss={box_loss} takes {_kind(takes)} and the model predicts {_kind(boxes)}: use one of "
                          f"{fitting} (unset: {stock}, ultralytics' own)")
    if metric != "same" and metric not in ASSIGNER_METRICS[boxes]:
        compares = next(kind for kind, metrics in ASSIGNER_METRICS.items() if metric in metrics)
        raise ConfigError(f"assigner_iou={metric} compares {_kind(compares)} and the model predicts {_kind(boxes)}: "
                          f"use {_or([*ASSIGNER_METRICS[boxes], 'same'])} (unset: {stock}, ultralytics' own)")
    if NMS_BOXES.get(nms, boxes) != boxes:
        fitting = [name for name in NMS_METHODS if NMS_BOXES.get(name, boxes) == boxes]
        raise ConfigError(f"nms_method={nms} suppresses {_kind(NMS_BOXES[nms])} and the model predicts {_kind(boxes)}: "
                          f"use {_or(fitting)}")
    return {"box_loss": box_loss, "assigner_iou": metric}


class Options(Mapping):
    """The project's options of one run, checked once: every project key with its value (the default where the
    run did not set it), read-only (``options["box_loss"]`` or ``options.box_loss``). Built by :func:`from_args`,
    the one resolution from a run's train arguments; the trainer builds it and hands it to the model, whose
    criterion, EMA copy and checkpoints carry it; :func:`bind_loss` turns it into the bound losses."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Options are read-only: build new ones with options.from_args")

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Options({self._values!r})"

    def __reduce__(self):  # picklable (checkpoints, the DDP child), read-only after unpickling too
        return (Options, (self._values,))


def from_args(args: Mapping[str, Any] | Any, boxes: str = "xyxy") -> Options:
    """The :class:`Options` of a run from its arguments (a dict, or a namespace such as the trainer's ``args``) for a
    model that predicts ``boxes``: every project key checked (types, ranges and the combinations that cannot work:
    :func:`validate`), defaults filled, an unset box loss and assigner metric ultralytics' own for those boxes.
    ConfigError names the first problem."""
    values = dict(args) if isinstance(args, Mapping) else vars(args)
    checked = validate(values, boxes)
    return Options({**defaults(), **checked})


FEATURE_KEYS = {  # keys that only act when their switch is on
    "iou_balanced_loc": ("iou_balanced_lambda", "iou_balanced_wloc", "iou_balanced_wloc_batches"),
    "iou_balanced_cls": ("iou_balanced_eta",),
    "iou_aware": ("iou_aware_alpha", "iou_aware_min_cls", "iou_gain", "iou_target_grad"),
}


def unused_keys(settings: Mapping[str, Any]) -> set[str]:
    """Project keys that cannot change what a run with ``settings`` computes: the hyper-parameters of losses it does
    not use, and the settings of features it has switched off. A resumed benchmark ignores them when it compares
    a finished run's settings with today's."""
    used = set()
    for kind in ("box", "cls"):
        registry = BOX_LOSSES if kind == "box" else CLS_LOSSES
        name = settings.get(f"{kind}_loss", GENERAL_OPTIONS[f"{kind}_loss"].default)
        names = [name] if name is not None or kind == "cls" else list(STOCK_BOX_LOSS.values())  # unset: the stock one
        used |= {key for name in names if name in registry for key in registry.spec(name).keys.values()}
    loss_keys = set(BOX_LOSSES.options()) | set(CLS_LOSSES.options())
    unused = loss_keys - used
    for switch, keys in FEATURE_KEYS.items():
        if not settings.get(switch, GENERAL_OPTIONS[switch].default):
            unused |= set(keys)
    return unused


def bind_loss(options: Mapping[str, Any], kind: str = "box") -> BoundLoss:
    """The configured box (``box_loss``) or classification (``cls_loss``) loss, bound to its hyper-parameters."""
    registry = BOX_LOSSES if kind == "box" else CLS_LOSSES
    return registry.spec(options[f"{kind}_loss"]).bind_options(options)
