"""Atomic file writes: a temporary file in the same folder, then ``os.replace`` (readers never see half a file)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any, indent: int | None = None) -> Path:
    """JSON with Python's shortest round-trip float repr, so reading it back gives the exact values written."""
    return write_text_atomic(path, json.dumps(obj, indent=indent) + "\n")
