"""The test suite's own rules: fixtures in conftest.py, every shared helper in one importable module."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_nothing_is_imported_from_conftest():
    """conftest.py holds fixtures and the test environment, which pytest loads by itself; what tests import lives
    in tests/helpers.py (or in boxloss.testing, where the benchmarks reuse it)."""
    importers = sorted(f"{path.name}:{node.lineno}" for path in TESTS.rglob("*.py")
                       for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                       if isinstance(node, ast.ImportFrom) and node.module == "conftest"
                       or isinstance(node, ast.Import) and any(alias.name == "conftest" for alias in node.names))
    assert importers == []
