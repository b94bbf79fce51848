"""One registry for every loss name the project knows.

A loss is registered once, with its hyper-parameters and their defaults; configs, the ultralytics
integration, the benchmarks and the tests all look names up here, so adding a loss is one decorator and
no if/elif chain anywhere. Two tables share this class: box-regression losses and classification losses.

A *wrapper* (e.g. Inner-IoU) is registered once too and turns every registered loss it applies to into a
new name, ``<prefix>_<base>`` (``inner_ciou``, ``focaler_eiou``, ...), with no code per combination.

Each hyper-parameter is also a config key: ``<loss>_<param>`` for a box loss (``focal_eiou_gamma``),
``cls_<loss>_<param>`` for a classification loss and ``<prefix>_<param>`` for a wrapper (``inner_ratio``).
:meth:`LossSpec.bind` checks the values once and returns the loss with them fixed.

A box loss also says which boxes it takes (``LossSpec.boxes``, one of :data:`BOX_FORMATS`): axis-aligned ``xyxy``
boxes (N, 4), or rotated ``xywhr`` boxes (N, 5); ``list_losses(boxes=...)`` lists the losses of one kind of box, and
:data:`STOCK_BOX_LOSS` names ultralytics' own loss on each (what a model trains with when no ``box_loss`` is given).

What a loss needs besides the boxes is declared here too, so its callers stay loss-agnostic: the per-call inputs
only the caller knows (``context``, named in :data:`CONTEXT_INPUTS`) and the values the caller keeps for it between
calls (``state``, a :class:`LossState` with its initial value and update rule, e.g. Wise-IoU v3's running mean).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .errors import ConfigError
from .param import Param

BOX_FORMATS = {  # LossSpec.boxes: what a box loss's pred and target are
    "xyxy": "axis-aligned boxes (N, 4): x1, y1, x2, y2",
    "xywhr": "rotated boxes (N, 5): centre x, y, width, height, angle in radians (ultralytics' OBB convention)",
}
STOCK_BOX_LOSS = {"xyxy": "ciou", "xywhr": "probiou"}  # ultralytics' own box loss and assigner metric, by box format


CONTEXT_INPUTS: dict[str, str] = {  # per-call inputs a loss may declare (LossSpec.context); its caller provides them
    "image_size": "the input image's (width, height) in pixels",
    "stride": "pixels per box unit: the anchor's stride for boxes in YOLO's grid units, 1 for pixel boxes",
    "class_counts": "the training labels' count per class (classification losses)",
}


@dataclass(frozen=True)
class LossState:
    """A value a loss reads on every call and its caller keeps between calls (a running mean, ...).

    The loss takes it as the keyword argument ``name``. The caller starts it at ``initial`` and, after each training
    batch, replaces it by ``update(value, batch_mean, **hyper_parameters)`` (:meth:`BoundLoss.updated_state`), where
    ``batch_mean`` is the mean of ``statistic(pred, target)`` (per box, (N,), no gradient) over the batch's boxes:
    the caller takes the mean (over every process of a distributed run), so the rule stays one-process. The caller
    leaves it alone in validation and saves it with its checkpoints.
    """

    name: str
    initial: float
    statistic: Callable[[Any, Any], Any]  # (pred, target) -> (N,) per box
    update: Callable[..., float]  # (value, batch_mean, **hyper_parameters) -> the next value


@dataclass(frozen=True)
class LossSpec:
    """Everything known about one registered loss.

    ``context`` names the per-call inputs passed as keyword arguments next to the boxes: those only the caller
    knows (:data:`CONTEXT_INPUTS`: ``image_size``, ``stride``, ``class_counts``) and the loss's ``state`` (each a
    :class:`LossState` the caller keeps, e.g. WIoU v3's ``iou_mean``); :meth:`call_context` gathers them.
    ``iou_based``: the loss is 1 − (an IoU-type similarity) plus penalties, so IoU wrappers and
    the assigner's ``same`` metric apply to it. ``normalizer`` (optional): ``normalizer(pred, target,
    **hyper_parameters)`` returns per-box weights w (detached) or None; the loss is then a weighted mean, reduced
    as Σ s·L / Σ s·w over the boxes (s: the caller's own weights, e.g. YOLO's target scores) where L = w·ℓ is
    what the loss returns per box. Classification losses also say which ``targets`` they learn (``scores``: YOLO's
    task-aligned scores; ``iou``: the IoU of each positive's predicted box at its assigned class, as VarifocalNet and
    GFL use) and their ``reduction`` (``elementwise``: the caller sums and normalises; ``scalar``: the loss is
    already one number, e.g. AP-Loss). ``boxes``: the box format a box loss takes, a key of :data:`BOX_FORMATS`
    (``xyxy`` (N, 4) or ``xywhr`` (N, 5)); a wrapped loss takes its base's.
    """

    name: str
    fn: Callable  # the public function, e.g. per-box loss (N,)
    terms: Callable | None  # returns (loss, {term_name: per-box tensor}) for logging; None if no parts
    params: dict[str, Param] = field(default_factory=dict)
    paper: str = ""
    formula: str = ""
    keys: dict[str, str] = field(default_factory=dict)  # parameter -> its config key
    context: tuple[str, ...] = ()
    iou_based: bool = False
    wraps: str | None = None  # a wrapped loss: the name of the loss it wraps
    normalizer: Callable | None = None
    check: Callable[[dict[str, Any]], str | None] | None = None  # across parameters: the problem, or None
    targets: str = "scores"
    reduction: str = "elementwise"
    boxes: str = "xyxy"
    state: tuple[LossState, ...] = ()

    def call_context(self, available: Mapping[str, Any], kept: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The keyword inputs of one call: each ``state``'s value as the caller keeps it in ``kept`` (its initial value
        before the first update), every other ``context`` input from ``available`` (a value, or a function of no
        arguments computing it, called only when this loss declares it). ValueError names an input not available."""
        kept = kept or {}
        values = {state.name: kept.get(state.name, state.initial) for state in self.state}
        for name in self.context:
            if name in values:
                continue
            if name not in available:
                raise ValueError(f"loss {self.name!r} takes {name!r}, which this caller does not provide (it "
                                 f"provides: {', '.join(available) or 'nothing'})")
            values[name] = available[name]() if callable(available[name]) else available[name]
        return values

    def bind(self, **values: Any) -> "BoundLoss":
        """The loss with its hyper-parameters checked and fixed (defaults for those not given)."""
        unknown = sorted(set(values) - set(self.params))
        if unknown:
            raise ConfigError(f"loss {self.name!r} has no parameter {unknown[0]!r}; it has: "
                              f"{', '.join(self.params) or 'none'}")
        kwargs = {param: spec.validate(self.keys.get(param, param), values.get(param, spec.default))
                  for param, spec in self.params.items()}
        problem = self.check(kwargs) if self.check is not None else None
        if problem:
            shown = " ".join(f"{self.keys.get(p, p)}={v!r}" for p, v in kwargs.items()
                             if re.search(rf"\b{re.escape(p)}\b", problem))
            raise ConfigError(f"{shown or self.name}: {problem}")
        return BoundLoss(self, kwargs)

    def bind_options(self, options: Mapping[str, Any]) -> "BoundLoss":
        """:meth:`bind` from config keys (``focal_eiou_gamma``, ``inner_ratio``, ...); missing keys take defaults."""
        return self.bind(**{param: options[key] for param, key in self.keys.items() if key in options})


@dataclass(frozen=True)
class BoundLoss:
    """A registered loss with checked hyper-parameters: call it like the loss, minus the hyper-parameters."""

    spec: LossSpec
    kwargs: dict[str, Any]

    def __call__(self, pred: Any, target: Any, **context: Any) -> Any:
        return self.spec.fn(pred, target, **self.kwargs, **context)

    def terms(self, pred: Any, target: Any, **context: Any) -> tuple[Any, dict[str, Any]]:
        """``(loss, {term: per-box})``; a loss without parts gives ``{"total": loss}``."""
        if self.spec.terms is None:
            loss = self(pred, target, **context)
            return loss, {"total": loss}
        return self.spec.terms(pred, target, **self.kwargs, **context)

    def normalizer(self, pred: Any, target: Any) -> Any:
        """Per-box weights w of a weighted-mean loss (reduce Σ s·L / Σ s·w), or None (reduce Σ s·L / Σ s)."""
        if self.spec.normalizer is None:
            return None
        return self.spec.normalizer(pred, target, **self.kwargs)

    def updated_state(self, state: LossState, value: Any, batch_mean: Any) -> Any:
        """``state``'s next value after a batch whose mean of ``state.statistic`` is ``batch_mean``, by its rule and
        this loss's hyper-parameters."""
        return state.update(value, batch_mean, **self.kwargs)


@dataclass(frozen=True)
class Wrapper:
    """A registered transformation of losses: ``fn(base_terms, pred, target, **params) -> (loss, terms)``."""

    prefix: str
    fn: Callable
    params: dict[str, Param]
    applies: Callable[[LossSpec], bool]
    paper: str = ""
    formula: str = ""
    context: tuple[str, ...] = ()  # per-call inputs of the wrapper itself (see LossSpec.context)
    check: Callable[[dict[str, Any]], str | None] | None = None  # across its parameters (see LossSpec.check)
    fixes: dict[str, Any] = field(default_factory=dict)  # base parameters the wrapper sets: no longer configurable


class Registry:
    """Name -> LossSpec table; duplicate names and unknown names are errors that say what exists."""

    def __init__(self, kind: str, key_prefix: str = ""):
        self.kind = kind
        self.key_prefix = key_prefix  # config keys: <key_prefix><loss>_<param>
        self._specs: dict[str, LossSpec] = {}
        self._wrappers: dict[str, Wrapper] = {}
        self._composed: dict[str, LossSpec] = {}

    def register(self, name: str, *, params: dict[str, Param] | None = None, terms: Callable | None = None,
                 paper: str = "", formula: str = "", context: tuple[str, ...] = (), iou_based: bool = False,
                 normalizer: Callable | None = None, check: Callable | None = None, targets: str = "scores",
                 reduction: str = "elementwise", boxes: str = "xyxy",
                 state: tuple[LossState, ...] = ()) -> Callable:
        """Decorator: ``@BOX_LOSSES.register("eiou", terms=_eiou_terms, paper=..., formula=..., iou_based=True)``;
        ``boxes="xywhr"`` for a loss on rotated boxes. ``context``: inputs of :data:`CONTEXT_INPUTS` the loss takes;
        each ``state``'s name joins them."""

        def decorator(fn: Callable) -> Callable:
            if name in self._specs or self._wrapper_of(name) is not None:
                raise ValueError(f"{self.kind} loss {name!r} is already registered")
            if boxes not in BOX_FORMATS:
                raise ValueError(f"{self.kind} loss {name!r}: boxes={boxes!r} is not one of {', '.join(BOX_FORMATS)}")
            _check_context(name, context)
            params_ = dict(params or {})
            keys = {param: spec.key or f"{self.key_prefix}{name}_{param}" for param, spec in params_.items()}
            inputs = (*context, *(kept.name for kept in state if kept.name not in context))
            self._specs[name] = LossSpec(name, fn, terms, params_, paper, formula, keys, inputs, iou_based,
                                         normalizer=normalizer, check=check, targets=targets, reduction=reduction,
                                         boxes=boxes, state=tuple(state))
            self._composed.clear()
            return fn

        return decorator

    def register_wrapper(self, prefix: str, *, params: dict[str, Param] | None = None, paper: str = "",
                         formula: str = "", applies: Callable[[LossSpec], bool] = lambda spec: spec.iou_based,
                         context: tuple[str, ...] = (), check: Callable | None = None,
                         fixes: dict[str, Any] | None = None) -> Callable:
        """Decorator for ``wrap(base_terms, pred, target, **params) -> (loss, terms)``: every registered loss
        for which ``applies(spec)`` holds gets the name ``<prefix>_<loss>``. ``fixes``: base parameters the
        wrapper's definition sets (e.g. a weight it replaces), passed to the base and not exposed as settings."""

        def decorator(fn: Callable) -> Callable:
            if prefix in self._wrappers:
                raise ValueError(f"{self.kind} loss wrapper {prefix!r} is already registered")
            _check_context(f"{prefix}_*", context)
            self._wrappers[prefix] = Wrapper(prefix, fn, dict(params or {}), applies, paper, formula, tuple(context),
                                             check, dict(fixes or {}))
            self._composed.clear()
            return fn

        return decorator

    def names(self, wrapped: bool = True, boxes: str | None = None) -> list[str]:
        """Registered names, sorted; with ``wrapped``, every ``<prefix>_<loss>`` a wrapper makes as well; with
        ``boxes`` (a key of :data:`BOX_FORMATS`), only the losses that take that kind of box."""
        if boxes is not None and boxes not in BOX_FORMATS:
            raise ValueError(f"unknown box format {boxes!r}; valid formats: {', '.join(BOX_FORMATS)}")
        specs = {name: spec for name, spec in self._specs.items() if boxes is None or spec.boxes == boxes}
        names = set(specs)
        if wrapped:
            names |= {f"{w.prefix}_{name}" for w in self._wrappers.values() for name, spec in specs.items()
                      if w.applies(spec)}
        return sorted(names)

    def wrappers(self) -> dict[str, Wrapper]:
        return dict(self._wrappers)

    def spec(self, name: str) -> LossSpec:
        if name in self._specs:
            return self._specs[name]
        if name not in self._composed:
            found = self._wrapper_of(name)
            if found is None:
                raise KeyError(f"unknown {self.kind} loss {name!r}; valid names: {', '.join(self.names())}")
            self._composed[name] = self._compose(*found)
        return self._composed[name]

    def get(self, name: str) -> Callable:
        return self.spec(name).fn

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._specs or self._wrapper_of(name) is not None)

    def options(self) -> dict[str, Param]:
        """Config key -> Param for every hyper-parameter of the registered losses and wrappers."""
        keys = {spec.keys[param]: spec.params[param] for spec in self._specs.values() for param in spec.params}
        keys.update({f"{self.key_prefix}{w.prefix}_{param}": p for w in self._wrappers.values()
                     for param, p in w.params.items()})
        return keys

    def check_options(self, options: Mapping[str, Any]) -> None:
        """Bind every registered loss and wrapper to ``options`` (config keys), so a combination of values no loss
        can take (``focaler_d=0.9 focaler_u=0.1``) is a ConfigError even when the configured loss does not use it."""
        for spec in self._specs.values():
            spec.bind_options(options)
        for prefix, wrapper in self._wrappers.items():
            base = next((name for name, spec in self._specs.items() if wrapper.applies(spec)), None)
            if wrapper.check is not None and base is not None:
                self.spec(f"{prefix}_{base}").bind_options(options)

    def _wrapper_of(self, name: str) -> tuple[Wrapper, LossSpec] | None:
        for prefix, wrapper in self._wrappers.items():
            base = self._specs.get(name[len(prefix) + 1:]) if name.startswith(f"{prefix}_") else None
            if base is not None and wrapper.applies(base):
                return wrapper, base
        return None

    def _compose(self, wrapper: Wrapper, base: LossSpec) -> LossSpec:
        own = set(wrapper.params) | set(wrapper.context)
        clash = own & (set(base.params) | set(base.context))
        if clash:
            raise ValueError(f"{wrapper.prefix}_{base.name}: {wrapper.prefix} and {base.name} both take "
                             f"{sorted(clash)[0]!r}")
        base_terms = base.terms or _total_terms(base.fn)
        fixed = {param: value for param, value in wrapper.fixes.items() if param in base.params}

        def terms(pred, target, **kwargs):
            wrapper_kwargs = {key: kwargs.pop(key) for key in own if key in kwargs}
            return wrapper.fn(lambda p, t: base_terms(p, t, **kwargs, **fixed), pred, target, **wrapper_kwargs)

        def fn(pred, target, **kwargs):
            return terms(pred, target, **kwargs)[0]

        name = f"{wrapper.prefix}_{base.name}"
        fn.__name__ = terms.__name__ = name
        fn.__doc__ = f"{wrapper.formula} with L = {base.name} ({base.formula}).\n\n{wrapper.paper}"
        keys = {**{param: key for param, key in base.keys.items() if param not in fixed},
                **{param: f"{self.key_prefix}{wrapper.prefix}_{param}" for param in wrapper.params}}
        base_params = {param: spec for param, spec in base.params.items() if param not in fixed}
        shown_fixed = "".join(f", {param} = {value!r}" for param, value in fixed.items())
        context = (*base.context, *(c for c in wrapper.context if c not in base.context))
        checks = [c for c in (base.check, wrapper.check) if c is not None]

        def check(kwargs):
            return next((problem for c in checks if (problem := c(kwargs))), None)

        return LossSpec(name, fn, terms, {**base_params, **wrapper.params}, f"{wrapper.paper}; {base.paper}",
                        f"{wrapper.formula} with L = {base.formula}{shown_fixed}", keys, context, base.iou_based,
                        base.name,
                        check=check if checks else None, targets=base.targets, reduction=base.reduction,
                        boxes=base.boxes, state=base.state)


def _check_context(name: str, context: tuple[str, ...]) -> None:
    unknown = [input_ for input_ in context if input_ not in CONTEXT_INPUTS]
    if unknown:
        raise ValueError(f"loss {name!r}: context input {unknown[0]!r} is not one of {', '.join(CONTEXT_INPUTS)} "
                         "(a value the caller keeps between calls is a LossState)")


def _total_terms(fn: Callable) -> Callable:
    def terms(pred, target, **kwargs):
        loss = fn(pred, target, **kwargs)
        return loss, {"total": loss}

    return terms


BOX_LOSSES = Registry("box")
CLS_LOSSES = Registry("classification", key_prefix="cls_")


def list_losses(kind: str = "box", boxes: str | None = None) -> list[str]:
    """Names of the registered losses of one kind ("box" or "cls"), sorted; ``boxes="xyxy"`` or ``"xywhr"``: only
    the box losses on axis-aligned or on rotated boxes."""
    return registry_of(kind).names(boxes=boxes)


def get_loss(name: str, kind: str = "box") -> Callable:
    """The loss function registered under ``name``; an unknown name raises KeyError listing valid ones."""
    return registry_of(kind).get(name)


def get_spec(name: str, kind: str = "box") -> LossSpec:
    return registry_of(kind).spec(name)


def registry_of(kind: str) -> Registry:
    """The table of a kind of loss: ``box`` or ``cls``."""
    tables = {"box": BOX_LOSSES, "cls": CLS_LOSSES}
    if kind not in tables:
        raise ValueError(f"unknown loss kind {kind!r}; valid kinds: {', '.join(tables)}")
    return tables[kind]
