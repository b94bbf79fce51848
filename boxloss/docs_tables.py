"""The README's and docs' tables, generated from the registry: one row per loss, one per wrapper, one per key.

    python -m boxloss.docs_tables           # prints the four markdown tables

The box losses come in two tables, one per box format (``LossSpec.boxes``): axis-aligned (xyxy) and rotated (xywhr).

The README embeds them verbatim and ``tests/test_docs.py`` checks that it does, so the formula, paper and
defaults a user reads are the ones the code registers.
"""

from __future__ import annotations

from typing import Any

from ._io import format_table
from .options import all_options
from .registry import Registry, registry_of


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _keys(registry: Registry, name: str) -> str:
    spec = registry.spec(name)
    return ", ".join(f"`{spec.keys[p]}` = {_value(param.default)}" for p, param in spec.params.items()) or "—"


def loss_table(kind: str = "box", boxes: str | None = None) -> str:
    """Markdown: config name | formula | paper | keys (config key = default), then a row per wrapper that applies to
    one of them; ``boxes`` ("xyxy" or "xywhr"): only the box losses on that kind of box."""
    registry = registry_of(kind)
    names = registry.names(wrapped=False, boxes=boxes)
    rows = [[f"`{name}`", _cell(registry.spec(name).formula), _cell(registry.spec(name).paper),
             _keys(registry, name)] for name in names]
    for prefix, wrapper in registry.wrappers().items():
        applies = [name for name in names if wrapper.applies(registry.spec(name))]
        if not applies:
            continue
        keys = ", ".join(f"`{registry.key_prefix}{prefix}_{p}` = {_value(param.default)}"
                         for p, param in wrapper.params.items())
        rows.append([f"`{prefix}_*` (wraps {', '.join(applies)})", _cell(wrapper.formula), _cell(wrapper.paper),
                     keys or "—"])
    return format_table(["config name", "formula", "paper", "keys (config key = default)"], rows, pad=False,
                        align_right_from=4)


def key_table() -> str:
    """Markdown: key | default | meaning (with its check) for every project key."""
    rows = []
    for key, param in all_options().items():
        requirement = f" ({param.requirement})" if param.requirement else ""
        choices = f" (one of {', '.join(param.choices)})" if param.choices and not param.requirement else ""
        rows.append([f"`{key}`", f"`{_value(param.default)}`", _cell(param.doc + requirement + choices)])
    return format_table(["key", "default", "meaning"], rows, pad=False, align_right_from=4)


def main() -> int:
    print(loss_table("box", boxes="xyxy"), loss_table("box", boxes="xywhr"), loss_table("cls"), key_table(),
          sep="\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
