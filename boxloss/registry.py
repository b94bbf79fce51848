"""One registry for every loss name the project knows.

A loss is registered once, with its hyper-parameters and their defaults; configs, the ultralytics
integration, the benchmarks and the tests all look names up here, so adding a loss is one decorator and
no if/elif chain anywhere. Two tables share this class: box-regression losses and classification losses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Param:
    """A hyper-parameter of a registered loss: default, type, validity check and a one-line doc."""

    default: Any
    doc: str
    check: Callable[[Any], bool] = lambda value: True
    requirement: str = ""  # human-readable form of `check`, e.g. ">= 0"
    choices: tuple = ()

    @property
    def type(self) -> type:
        return type(self.default)


@dataclass(frozen=True)
class LossSpec:
    """Everything known about one registered loss."""

    name: str
    fn: Callable  # the public function, e.g. per-box loss (N,)
    terms: Callable | None  # returns (loss, {term_name: per-box tensor}) for logging; None if no parts
    params: dict[str, Param] = field(default_factory=dict)
    paper: str = ""
    formula: str = ""


class Registry:
    """Name -> LossSpec table; duplicate names and unknown names are errors that say what exists."""

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, LossSpec] = {}

    def register(self, name: str, *, params: dict[str, Param] | None = None, terms: Callable | None = None,
                 paper: str = "", formula: str = "") -> Callable:
        """Decorator: ``@BOX_LOSSES.register("eiou", terms=_eiou_terms, paper=..., formula=...)``."""

        def decorator(fn: Callable) -> Callable:
            if name in self._specs:
                raise ValueError(f"{self.kind} loss {name!r} is already registered")
            self._specs[name] = LossSpec(name, fn, terms, dict(params or {}), paper, formula)
            return fn

        return decorator

    def names(self) -> list[str]:
        return sorted(self._specs)

    def spec(self, name: str) -> LossSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise KeyError(f"unknown {self.kind} loss {name!r}; valid names: {', '.join(self.names())}") from None

    def get(self, name: str) -> Callable:
        return self.spec(name).fn

    def __contains__(self, name: str) -> bool:
        return name in self._specs


BOX_LOSSES = Registry("box")
CLS_LOSSES = Registry("classification")


def list_losses(kind: str = "box") -> list[str]:
    """Names of the registered losses of one kind ("box" or "cls"), sorted."""
    return _table(kind).names()


def get_loss(name: str, kind: str = "box") -> Callable:
    """The loss function registered under ``name``; an unknown name raises KeyError listing valid ones."""
    return _table(kind).get(name)


def get_spec(name: str, kind: str = "box") -> LossSpec:
    return _table(kind).spec(name)


def _table(kind: str) -> Registry:
    tables = {"box": BOX_LOSSES, "cls": CLS_LOSSES}
    if kind not in tables:
        raise ValueError(f"unknown loss kind {kind!r}; valid kinds: {', '.join(tables)}")
    return tables[kind]
