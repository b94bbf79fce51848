"""One setting of the project: a default, its type, its check and a one-line doc.

Every key the project declares is a :class:`Param`: the loss hyper-parameters of the registry (whose config keys are
derived from them), the project's config keys (:mod:`boxloss.options`) and every command's ``key=value`` keys
(:mod:`boxloss.keyvalues`). It is the one place where a value's type, range and wording of a bad value live.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

from .errors import ConfigError


@dataclass(frozen=True)
class Param:
    """A setting (a loss hyper-parameter or a command-line key): default, type, validity check, one-line doc.

    ``value_type`` is needed only where the default does not show the type: a default of ``None`` ("unset",
    which then stays allowed), or several accepted types (a tuple). A float setting accepts an int and must
    be finite. ``key``: the config key of a loss hyper-parameter that several losses share (e.g. ``l1_units``);
    by default each loss's parameter has its own key, ``<loss>_<param>``.
    """

    default: Any
    doc: str
    check: Callable[[Any], bool] = lambda value: True
    requirement: str = ""  # human-readable form of `check`, e.g. ">= 0"
    choices: tuple = ()
    value_type: type | tuple[type, ...] | None = None
    key: str | None = None

    @property
    def type(self) -> type | tuple[type, ...]:
        return self.value_type or type(self.default)

    def validate(self, key: str, value: Any) -> Any:
        """The checked value (an int given for a float setting becomes a float); ConfigError naming ``key``."""
        if value is None and self.default is None:
            return None
        types = self.type if isinstance(self.type, tuple) else (self.type,)
        if float in types and int not in types and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong_bool = isinstance(value, bool) and bool not in types
        if not isinstance(value, types) or wrong_bool:
            expected = " or ".join(t.__name__ for t in types)
            raise ConfigError(f"{key}={value!r} has the wrong type: expected {expected}, got {type(value).__name__}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key}={value!r} is not a finite number")
        if self.choices and value not in self.choices:
            raise ConfigError(f"{key}={value!r} is out of range: must be one of {', '.join(map(str, self.choices))}")
        if not self.check(value):
            raise ConfigError(f"{key}={value!r} is out of range: must be {self.requirement}")
        return value
