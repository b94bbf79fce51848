"""Reading benchmark result records: what counts as a finished run, and the settings that decide what it computed.

A record (``<out>/results/<cfg>-s<seed>.json``, format :data:`RESULT_FORMAT`) is written by :mod:`boxloss.benchmark`
the moment a run's training and every split's evaluation have finished: metrics per split, cfg, seed, the full
resolved settings, elapsed seconds, machine, versions (and, when measured, TIDE, the learning curve, mask or pose
metrics). A record is *complete* when every part a summary reads is there and every number in it is finite: a
missing, unreadable, truncated or incomplete file, or one NaN anywhere (an AP, a TIDE ΔAP, a curve point), means the
run counts as not finished, so a benchmark re-run repairs it.

Paths in a record are portable, so a benchmark folder can be moved, published or summarized on another machine:
``files`` are relative to the benchmark folder; every other path (the data YAML, the config file, the commands) is
relative to the working directory the benchmark ran in (the project root) when it lies inside it, else absolute
(a dataset elsewhere on the user's disk). See :func:`portable_path`.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..evaluation import METRIC_KEYS

RESULT_FORMAT = "boxloss-benchmark-result/1"
EVALUATION_SPLITS = ("val", "test")  # the splits a benchmark evaluates, in report order
DEFAULT_BASELINE = "ciou"  # ultralytics' stock YOLOv8 box loss
NOT_COMPARED = ("cfg", "project", "name", "exist_ok", "device")  # where files go and runs run, not what is computed
# how an evaluation is computed but not what it computes: the backends agree to 1e-12 (checked on every cross-check)
NOT_COMPARED_EVALUATION = ("device", "backend")
PATH_SETTINGS = ("data", "cfg", "project")  # settings that hold a path


def default_baseline(cfgs: Sequence[str], recorded: str | None = None) -> str:
    """The config the others are paired against when none is given: ``recorded`` (the benchmark's own) when it is
    among ``cfgs``, else :data:`DEFAULT_BASELINE` when listed, else the first of ``cfgs``."""
    if recorded in cfgs:
        return recorded
    return DEFAULT_BASELINE if DEFAULT_BASELINE in cfgs else cfgs[0]


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_problem(metrics: Any) -> str | None:
    """Why one split's metrics are not a finished evaluation: missing, not finite, or AP -1 (no labels to measure)."""
    if not isinstance(metrics, Mapping) or not all(is_number(metrics.get(key)) for key in METRIC_KEYS):
        return "incomplete metrics"
    bad = next((key for key in METRIC_KEYS if not math.isfinite(metrics[key])), None)
    if bad is not None:
        return f"{bad} is {metrics[bad]} (training diverged or the evaluation failed)"
    if metrics["AP"] == -1:
        return "AP is -1: the split has no labels, COCO AP is undefined"
    return None


def non_finite(value: Any, where: str = "") -> str | None:
    """The first number in ``value`` (nested dicts and lists) that is NaN or infinite, as ``"tide.val.AP50.delta_ap.
    Loc is nan"``; None when every number is finite."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"{where or 'the value'} is {value}"
    items = value.items() if isinstance(value, Mapping) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        found = non_finite(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def result_problem(result: Any) -> str | None:
    """Why ``result`` is not a complete result record, or None when it is."""
    if not isinstance(result, dict) or result.get("format") != RESULT_FORMAT:
        return f"not a {RESULT_FORMAT} record"
    cfg, seed = result.get("cfg"), result.get("seed")
    if not isinstance(cfg, str) or not isinstance(seed, int) or isinstance(seed, bool):
        return "no cfg or seed"
    if result.get("run") != f"{cfg}-s{seed}":
        return f"run {result.get('run')!r} is not {cfg}-s{seed}"
    for key in ("settings", "evaluation", "metrics", "benchmark"):
        if not isinstance(result.get(key), dict):
            return f"no {key}"
    if not is_number(result.get("elapsed_s")):
        return "no elapsed_s"
    splits = result["evaluation"].get("splits")
    if not isinstance(splits, list) or not splits:
        return "no splits"
    for split in splits:
        problem = metrics_problem(result["metrics"].get(split))
        if problem:
            return f"split {split!r}: {problem}"
    found = non_finite(result)  # TIDE, the learning curve, mask or pose metrics: a NaN anywhere is unfinished
    return f"{found} (training diverged or the evaluation failed)" if found else None


def read_result(path: str | os.PathLike) -> dict[str, Any] | None:
    """The result record in ``path``, or None if it is missing, unreadable, truncated or incomplete."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if result_problem(result) is None else None


def result_file_problem(path: str | os.PathLike) -> str | None:
    """Why ``path`` holds no finished result (:func:`read_result` gives None), or None when it holds one."""
    try:
        return result_problem(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as error:
        return f"cannot read it ({error.strerror or error})"
    except ValueError:
        return "not valid JSON (truncated?)"


def load_results(results_dir: str | os.PathLike, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Every complete result record in ``results_dir`` (``*.json``; temporary and incomplete files are skipped)."""
    results = []
    for path in sorted(Path(results_dir).glob("*.json")):
        if path.name.startswith("."):
            continue
        result = read_result(path)
        if result is None:
            log(f"benchmark: skipping {path}: not a complete result ({result_file_problem(path)})")
        else:
            results.append(result)
    return results


def portable_path(path: Any, base: str | os.PathLike | None = None) -> Any:
    """``path`` relative to ``base`` (default: the working directory) when it is an absolute path inside it, in
    POSIX form; anything else (a relative path, a path elsewhere, an embedded dataset's name) unchanged."""
    if not isinstance(path, (str, os.PathLike)) or not os.path.isabs(path):
        return path
    base = os.path.abspath(base if base is not None else os.getcwd())
    absolute = os.path.abspath(path)
    if absolute == base or absolute.startswith(base.rstrip(os.sep) + os.sep):
        return Path(os.path.relpath(absolute, base)).as_posix()
    return str(path)


def portable_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` with the path-valued keys (:data:`PATH_SETTINGS`) made portable (:func:`portable_path`)."""
    return {key: portable_path(value) if key in PATH_SETTINGS else value for key, value in settings.items()}


def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide what a run computes (JSON-normalised): without where its files go, and without the
    project keys that cannot act in this run (:func:`boxloss.options.unused_keys`, e.g. the gamma of a loss not
    used)."""
    from ..options import unused_keys

    ignored = set(NOT_COMPARED) | unused_keys(settings)
    return json.loads(json.dumps({k: v for k, v in portable_settings(settings).items() if k not in ignored},
                                 sort_keys=True))


def _default(key: str) -> Any:
    """The default of a train key (the project's or ultralytics'); a key new since a result was recorded and left at
    its default computes what the result computed (new keys default to the old behaviour)."""
    from ..options import defaults

    project = defaults()
    if key in project:
        return project[key]
    from ultralytics.utils import DEFAULT_CFG_DICT

    return DEFAULT_CFG_DICT.get(key, "<no default>")


def differing_settings(old: Mapping[str, Any], new: Mapping[str, Any], ignored: Iterable[str] = (),
                       symmetric: bool = False) -> dict[str, tuple[Any, Any]]:
    """``{key: (old value, new value)}`` of the comparable settings (:func:`comparable`) that differ, ``"<unset>"``
    for a key one side lacks; a key the old settings lack and the new hold at its default (added since) is no
    difference (``symmetric``: either side), nor is a key in ``ignored``."""
    old, new, ignored = comparable(old), comparable(new), set(ignored)
    differences = {}
    for key in sorted((set(old) | set(new)) - ignored):
        if old.get(key, "<unset>") == new.get(key, "<unset>"):
            continue
        if key not in old and json.dumps(new[key]) == json.dumps(_default(key)):
            continue  # a key added since, at its default
        if symmetric and key not in new and json.dumps(old[key]) == json.dumps(_default(key)):
            continue
        differences[key] = (old.get(key, "<unset>"), new.get(key, "<unset>"))
    return differences


def setting_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``["epochs: 1 -> 2", ...]`` between two ``{"settings", "evaluation"}`` records."""
    differences = [f"{key}: {old!r} -> {new!r}" for key, (old, new) in
                   differing_settings(recorded.get("settings") or {}, current.get("settings") or {}).items()]
    old, new = ({k: v for k, v in comparable(part.get("evaluation") or {}).items() if k not in NOT_COMPARED_EVALUATION}
                for part in (recorded, current))
    differences += [f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}"
                    for key in sorted(set(old) | set(new)) if old.get(key, "<unset>") != new.get(key, "<unset>")]
    return differences


def run_file(result: Mapping[str, Any], key: str, out: str | os.PathLike) -> Path:
    """A file of a finished run (``files[key]``: log, train_dir, weights) as a path: relative paths are inside the
    benchmark folder ``out`` (records before paths became portable hold absolute ones)."""
    path = Path(result["files"][key])
    return path if path.is_absolute() else Path(out) / path


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
