"""Benchmark result files: what counts as a finished run, which runs a plan still needs, and the record written.

``<out>/results/<cfg>-s<seed>.json`` is written atomically the moment a run's training and every split's evaluation
have finished: metrics per split, cfg, seed, the full resolved settings, elapsed seconds, machine, versions. Its
presence with the same settings is what "finished" means; a missing, unreadable, truncated or incomplete file means
the run starts again from scratch. A result made with other settings is refused unless ``force=true``.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import platform
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from ..evaluation import METRIC_KEYS
from .plan import Plan, RunSpec

RESULT_FORMAT = "boxloss-benchmark-result/1"
NOT_COMPARED = ("cfg", "project", "name", "exist_ok", "device")  # where files go and runs run, not what is computed
VERSION_PACKAGES = ("boxloss", "ultralytics", "torch", "torchvision", "numpy", "pycocotools")

Metrics = Mapping[str, Mapping[str, float]]  # {split: {"AP50": ..., ..., "AR100": ...}}


class RunFailed(Exception):
    """A run produced no metrics (its child process failed); the matrix records it and goes on with the next."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def metrics_problem(metrics: Any) -> str | None:
    """Why one split's metrics are not a finished evaluation: missing, not finite, or AP -1 (no labels to measure)."""
    if not isinstance(metrics, Mapping) or not all(_is_number(metrics.get(key)) for key in METRIC_KEYS):
        return "incomplete metrics"
    bad = next((key for key in METRIC_KEYS if not math.isfinite(metrics[key])), None)
    if bad is not None:
        return f"{bad} is {metrics[bad]} (training diverged or the evaluation failed)"
    if metrics["AP"] == -1:
        return "AP is -1: the split has no labels, COCO AP is undefined"
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
    if not _is_number(result.get("elapsed_s")):
        return "no elapsed_s"
    splits = result["evaluation"].get("splits")
    if not isinstance(splits, list) or not splits:
        return "no splits"
    for split in splits:
        problem = metrics_problem(result["metrics"].get(split))
        if problem:
            return f"split {split!r}: {problem}"
    return None


def read_result(path: Path) -> dict[str, Any] | None:
    """The result record in ``path``, or None if it is missing, unreadable, truncated or incomplete."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if result_problem(result) is None else None


def result_file_problem(path: Path) -> str | None:
    """Why ``path`` holds no finished result (:func:`read_result` gives None), or None when it holds one."""
    try:
        return result_problem(json.loads(Path(path).read_text(encoding="utf-8")))
    except OSError as error:
        return f"cannot read it ({error.strerror or error})"
    except ValueError:
        return "not valid JSON (truncated?)"


def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide what a run computes (JSON-normalised): without where its files go, and without the
    project keys that cannot act in this run (:func:`boxloss.options.unused_keys`, e.g. the gamma of a loss not
    used)."""
    from ..options import unused_keys

    ignored = set(NOT_COMPARED) | unused_keys(settings)
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in ignored}, sort_keys=True))


def _default(key: str) -> Any:
    """The default of a train key (the project's or ultralytics'); a key new since a result was recorded and left at
    its default computes what the result computed (new keys default to the old behaviour)."""
    from ..options import defaults

    project = defaults()
    if key in project:
        return project[key]
    from ultralytics.utils import DEFAULT_CFG_DICT

    return DEFAULT_CFG_DICT.get(key, "<no default>")


def setting_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``["epochs: 1 -> 2", ...]`` between two ``{"settings", "evaluation"}`` records."""
    differences = []
    for part in ("settings", "evaluation"):
        old, new = comparable(recorded.get(part) or {}), comparable(current.get(part) or {})
        for key in sorted(set(old) | set(new)):
            if old.get(key, "<unset>") == new.get(key, "<unset>"):
                continue
            if part == "settings" and key not in old and json.dumps(new[key]) == json.dumps(_default(key)):
                continue  # a key added since, at its default
            differences.append(f"{key}: {old.get(key, '<unset>')!r} -> {new.get(key, '<unset>')!r}")
    return differences


@dataclass
class Status:
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> result with the same settings
    stale: dict[str, list[str]] = field(default_factory=dict)  # run name -> differences of its recorded settings
    unreadable: list[Path] = field(default_factory=list)  # result files present but not complete records
    pending: list[RunSpec] = field(default_factory=list)  # to run, in plan order (stale ones included)


def scan(plan: Plan) -> Status:
    """Which runs of the plan are finished with the same settings, which differ, which are still to run."""
    status = Status()
    for spec in plan.runs:
        result = read_result(spec.result_path)
        if result is None:
            if spec.result_path.exists():
                status.unreadable.append(spec.result_path)
            status.pending.append(spec)
            continue
        differences = setting_differences(result, {"settings": spec.settings, "evaluation": spec.evaluation})
        if differences:
            status.stale[spec.name] = differences
            status.pending.append(spec)
        else:
            status.done[spec.name] = result
    return status


def check_existing(plan: Plan) -> Status:
    """:func:`scan`, refusing (ConfigError) results made with other settings unless the plan has ``force``."""
    status = scan(plan)
    if status.stale and not plan.force:
        name, differences = next(iter(status.stale.items()))
        shown = "; ".join(differences[:3]) + ("; ..." if len(differences) > 3 else "")
        raise ConfigError(f"{len(status.stale)} finished run(s) in {plan.out / 'results'} were made with other "
                          f"settings (e.g. {name}: {shown}); use another out= or add force=true to re-run them")
    return status


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def machine_info() -> dict[str, Any]:
    """CPU model, core count and GPU names (None without CUDA) of this machine."""
    cpu = None
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        pass
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
    except Exception:  # no torch or a broken driver: report no GPU
        gpu = None
    return {"cpu": cpu or platform.processor() or platform.machine(), "cpu_count": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform()}


def versions() -> dict[str, str | None]:
    from importlib import metadata

    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def _checked_metrics(metrics: Any, spec: RunSpec) -> dict[str, dict[str, float]]:
    if not isinstance(metrics, Mapping):
        raise RunFailed(f"the runner returned {type(metrics).__name__}, not metrics per split")
    checked = {}
    for split in spec.splits:
        values = metrics.get(split)
        problem = metrics_problem(values)
        if problem:
            raise RunFailed(f"split {split!r}: {problem}")
        checked[split] = {key: float(values[key]) for key in METRIC_KEYS}
    return checked


def make_result(plan: Plan, spec: RunSpec, metrics: dict[str, dict[str, float]], elapsed: float,
                environment: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "format": RESULT_FORMAT, "run": spec.name, "cfg": spec.cfg, "seed": spec.seed,
        "cfg_file": spec.settings.get("cfg"), "metrics": metrics, "settings": spec.settings,
        "evaluation": spec.evaluation, "benchmark": plan.benchmark, "elapsed_s": elapsed,
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": plan.command, "cwd": os.getcwd(),
        "train_command": shlex.join(["python", "train.py", *spec.train_argv]),
        "files": {"log": str(spec.log_path), "train_dir": str(spec.train_dir),
                  "weights": str(spec.train_dir / "weights" / "best.pt"),
                  "val_dirs": {split: str(spec.val_dir(split)) for split in spec.splits}},
        "machine": environment.get("machine"), "versions": environment.get("versions"),
    }


def _supersede(path: Path) -> None:
    """Move a result made with other settings aside (force=true), so it is never summarized with the new ones."""
    if path.exists():
        folder = path.parent / "superseded"
        folder.mkdir(exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.replace(path, folder / f"{path.stem}.{stamp}.json")
