"""Files and tables: atomic writes, YAML reading with line numbers, markdown/plain tables. The one home of each.

Atomic: a temporary file in the same folder, then ``os.replace``, so a reader never sees half a file and a crash
or an interrupt leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml

from .errors import ConfigError


def atomic_write(path: str | os.PathLike, write: Callable[[Path], Any]) -> Path:
    """Call ``write(temporary_path)`` (e.g. ``figure.savefig``), then rename the temporary file onto ``path``."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> Path:
    """JSON with Python's shortest round-trip float repr, so reading it back gives the exact values written."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")


def write_yaml_atomic(path: str | os.PathLike, obj: Any, header: str = "") -> Path:
    """YAML (key order kept), preceded by ``header`` lines as comments."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return write_text_atomic(path, comment + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True))


def read_yaml_mapping(path: str | os.PathLike, what: str = "") -> dict[str, Any]:
    """A YAML file holding a mapping (empty file: ``{}``); ConfigError with the line number of a syntax error."""
    path = Path(path)
    label = f"{what} {str(path)!r}" if what else str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise ConfigError(f"{label}: cannot read ({error.strerror or error})") from None
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark, context = getattr(error, "problem_mark", None), getattr(error, "context_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        if context is not None and mark is not None and context.line != mark.line and getattr(error, "context", None):
            problem += f"; {error.context} started at line {context.line + 1}"
        raise ConfigError(f"{label}: not valid YAML{where} ({problem})") from None
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{label}: expected a mapping of key: value, got {type(content).__name__}")
    return content


def format_table(header: Sequence[str], rows: Sequence[Sequence[Any]], *, style: str = "markdown",
                 align_right_from: int = 1, pad: bool = True) -> str:
    """A table of strings: left-aligned columns before ``align_right_from``, right-aligned after it.

    ``style``: ``"markdown"`` (a GitHub table) or ``"plain"`` (space-aligned, for the console). ``pad=False``
    writes markdown cells unpadded (for long prose cells, e.g. the README's reference tables).
    """
    if style not in ("markdown", "plain"):
        raise ValueError(f"unknown table style {style!r}: expected 'markdown' or 'plain'")
    lines = [[str(cell) for cell in header], *([str(cell) for cell in row] for row in rows)]
    widths = [max(3, *(len(line[i]) for line in lines)) if pad else 3 for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c if not pad else c.ljust(w) if i < align_right_from else c.rjust(w)
                  for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |" if style == "markdown" else "  ".join(padded).rstrip()

    text = [line(lines[0])]
    if style == "markdown":
        text.append("| " + " | ".join("-" * w if i < align_right_from else "-" * (w - 1) + ":"
                                      for i, w in enumerate(widths)) + " |")
    return "\n".join(text + [line(cells) for cells in lines[1:]])
