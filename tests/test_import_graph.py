"""The package's import graph: every import of a boxloss module by a module of boxloss/, read from the source with
``ast`` (imports inside functions included, since they run too), has no cycle, never points to a higher floor
(:data:`FLOORS`), and its leaves stay leaves.

An edge A -> B means A's source imports B (``from .b import x`` and ``from . import b`` name B; a name imported from
a package that is not a submodule names the package). The parent packages Python runs first are not edges: a
package's ``__init__`` importing its own submodules is how packages work, not a cycle.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "boxloss"


def module_files() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its ``__init__.py``)."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return files


def imported_modules(name: str, path: Path, modules: set[str]) -> set[str]:
    """The boxloss modules that the source of module ``name`` imports, anywhere in the file."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: level 1 is this package, 2 its parent, ...
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                found.add(submodule if submodule in modules else source)
    return {module for module in found if module in modules and module != name}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imported_modules(name, path, set(files)) for name, path in files.items()}


# The floors, ground first: a module imports modules of its own floor or below, never above. A name is a top-level
# module or subpackage of boxloss/ ("boxloss": the package's own __init__, which re-exports the losses).
FLOORS = [
    {"errors", "param", "_io", "threads", "devices", "ops"},  # errors, parameter declarations, atomic files, threads
    # and devices, the box operations (pure torch)
    {"registry", "losses", "options", "keyvalues"},  # the loss registry and the losses in it, the project's options,
    # the key=value layer of every command
    {"boxloss", "data"},  # the package's face; the YOLO format, the embedded datasets and their generator
    {"evaluation", "convert", "simulation", "docs_tables"},  # COCO evaluation, the converters, the regression
    # simulation, the README's generated tables
    {"stats"},  # result records, summaries, reports: evaluation's numbers over seeds
    {"yolo"},  # everything that imports ultralytics: models, criterion, trainers, validation
    {"benchmark", "testing"},  # running a matrix of trainings; the inputs the tests and benchmarks share
    {"cli"},  # the commands
]


def floor_name(module: str) -> str:
    """The name of ``module`` in :data:`FLOORS`: its top-level module or subpackage of boxloss."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def test_every_module_has_one_floor(graph):
    placed = [name for floor in FLOORS for name in floor]
    assert len(placed) == len(set(placed)), "a name on two floors"
    assert {floor_name(module) for module in graph} == set(placed)


def test_no_module_imports_a_higher_floor(graph):
    """The layering the package is built on, checked edge by edge: e.g. stats/ below yolo/ and benchmark/ (a summary
    loads no ultralytics), benchmark/ below cli/ (the commands call the matrix, the matrix calls no command)."""
    level = {name: index for index, floor in enumerate(FLOORS) for name in floor}
    upward = sorted(f"{importer} (floor {level[floor_name(importer)]}) imports {module} (floor "
                    f"{level[floor_name(module)]})" for importer, modules in graph.items() for module in modules
                    if level[floor_name(module)] > level[floor_name(importer)])
    assert upward == []


def test_the_graph_sees_every_kind_of_import(graph):
    """Guards the reader itself: a relative import of a module, of a name, from a parent package, and one inside a
    function are all edges."""
    assert "boxloss.data.yolo_format" in graph["boxloss.data.embedded"]  # from .yolo_format import ...
    assert "boxloss.data.synthetic" in graph["boxloss.data.embedded"]  # inside resolve_data
    assert "boxloss.options" in graph["boxloss.yolo.criterion"]  # from .. import options
    assert "boxloss.ops.nms" in graph["boxloss.yolo.postprocess"]  # from ..ops.nms import ...
    assert len(graph) > 80


def test_the_package_has_no_import_cycle(graph):
    try:
        order = list(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as error:
        pytest.fail(f"import cycle: {' imports '.join(reversed(error.args[1]))}")  # graphlib lists importers last
    assert set(order) == set(graph)


def test_the_yolo_format_layer_is_a_leaf_of_data(graph):
    """The embedded datasets and their generator build on the YOLO format, never the other way round."""
    assert graph["boxloss.data.yolo_format"] <= {"boxloss._io", "boxloss.errors"}


def test_the_ops_import_nothing_of_boxloss(graph):
    ops = [name for name in graph if name == "boxloss.ops" or name.startswith("boxloss.ops.")]
    assert sorted(ops) == ["boxloss.ops", "boxloss.ops.boxes", "boxloss.ops.nms", "boxloss.ops.rotated"]
    assert {name: graph[name] for name in ops if graph[name]} == {}


def test_the_statistics_import_nothing_that_runs_a_benchmark(graph):
    """boxloss/stats/ reads result records: it builds on evaluation/ and the floors below it, never on benchmark/
    (which runs matrices and imports stats), yolo/ (ultralytics) or cli/ (the commands)."""
    stats = [name for name in graph if name == "boxloss.stats" or name.startswith("boxloss.stats.")]
    assert {f"boxloss.stats.{name}" for name in ("summary", "report", "records", "pairs")} <= set(stats)
    upward = {name: sorted(module for module in graph[name]
                           if module.split(".")[1] in ("benchmark", "yolo", "cli")) for name in stats}
    assert {name: modules for name, modules in upward.items() if modules} == {}
    assert any(module.startswith("boxloss.stats.") for name in graph if name.startswith("boxloss.benchmark.")
               for module in graph[name])  # the benchmark builds on the statistics, not the other way round


def test_a_summary_loads_neither_ultralytics_nor_the_benchmark():
    from helpers import fresh_interpreter_imports

    loaded = fresh_interpreter_imports("import boxloss.stats.report_folder, boxloss.stats.pairs",
                                       ("ultralytics", "boxloss"))
    assert [m for m in loaded if m == "ultralytics" or m.startswith(("boxloss.benchmark", "boxloss.yolo",
                                                                     "boxloss.cli"))] == []
