"""Benchmark result files: which runs a plan still needs, and the record written when a run finishes.

``<out>/results/<cfg>-s<seed>.json`` is written atomically the moment a run's training and every split's evaluation
have finished: metrics per split, cfg, seed, the full resolved settings and the keys its config file set, elapsed
seconds, the engine's concurrency, the machine it ran on and the package versions. Its presence with the same
settings is what "finished" means (what a complete record is: :mod:`boxloss.stats.records`); a missing, unreadable,
truncated or incomplete file means the run starts again from scratch. A result made with other settings is refused
unless ``force=true``, which moves it aside into ``results/superseded/`` with every record re-scored from it.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from ..evaluation import FAMILY_KEYS, METRIC_KEYS
from .._io import write_json_atomic
from ..stats.records import (RESULT_FORMAT, is_number, metrics_problem, portable_path, portable_settings,
                             read_result, setting_differences)
from .plan import WAITING_DIR, Plan, RunSpec

VERSION_PACKAGES = ("boxloss", "ultralytics", "torch", "torchvision", "numpy", "pycocotools")

Metrics = Mapping[str, Mapping[str, float]]  # {split: {"AP50": ..., ..., "AR100": ...}}


class RunFailed(Exception):
    """A run produced no metrics (its child process failed); the matrix records it and goes on with the next."""


def portable_argv(argv: Sequence[str]) -> list[str]:
    """``key=value`` arguments with every absolute path value made portable (:func:`portable_path`)."""
    portable = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        portable.append(f"{key}={portable_path(value)}" if sep else arg)
    return portable


@dataclass
class Status:
    done: dict[str, dict[str, Any]] = field(default_factory=dict)  # run name -> result with the same settings
    stale: dict[str, list[str]] = field(default_factory=dict)  # run name -> differences of its recorded settings
    unreadable: list[Path] = field(default_factory=list)  # result files present but not complete records
    pending: list[RunSpec] = field(default_factory=list)  # to run, in plan order (stale ones included)


def scan(plan: Plan) -> Status:
    """Which runs of the plan are finished with the same settings (published in ``results/`` or waiting in
    ``results/waiting/`` for the rest of their seed), which differ, which are still to run."""
    status = Status()
    for spec in plan.runs:
        result = read_result(spec.waiting_path) or read_result(spec.result_path)  # the waiting one is the newer
        if result is None:
            status.unreadable += [path for path in (spec.result_path, spec.waiting_path) if path.exists()]
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
    """Python's version and each package's (:data:`VERSION_PACKAGES`), and the CUDA and cuDNN versions torch was
    built with (None on a CPU-only build): a paired comparison needs runs trained with the same ones."""
    from importlib import metadata

    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in VERSION_PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    if found["boxloss"] is None:  # a checkout that is not pip-installed: the package knows its own version
        from .. import __version__

        found["boxloss"] = __version__
    try:
        import torch

        found["cuda"] = torch.version.cuda
        found["cudnn"] = str(torch.backends.cudnn.version()) if torch.backends.cudnn.is_available() else None
    except Exception:  # no torch, or a broken CUDA install: unknown
        found["cuda"] = found["cudnn"] = None
    return found


EXTRA_FAMILIES = tuple(family for family in FAMILY_KEYS if family != "box")  # mask, pose: beside the box metrics


def checked_metrics(metrics: Any, spec: RunSpec) -> dict[str, dict[str, float]]:
    """Each split's box metrics, and each extra family's (mask, pose) under its own key when it is complete
    (:func:`make_result` moves those into the record's ``"families"``)."""
    if not isinstance(metrics, Mapping):
        raise RunFailed(f"the runner returned {type(metrics).__name__}, not metrics per split")
    checked = {}
    for split in spec.splits:
        values = metrics.get(split)
        problem = metrics_problem(values)
        if problem:
            raise RunFailed(f"split {split!r}: {problem}")
        checked[split] = {key: float(values[key]) for key in METRIC_KEYS}
        for family in EXTRA_FAMILIES:
            found = values.get(family)
            if isinstance(found, Mapping) and all(is_number(found.get(key)) for key in FAMILY_KEYS[family]):
                checked[split][family] = dict(found)
    return checked


def tide_by_split(outputs: Any, splits: list[str]) -> dict[str, Any] | None:
    """The record's ``"tide"``: ``{split: tide.json content}`` from a runner's per-split outputs (the real runner puts
    each split's tide.json under ``"tide"`` next to its metrics), or None unless every split has one."""
    if not isinstance(outputs, Mapping):
        return None
    tide = {split: (outputs.get(split) or {}).get("tide") for split in splits}
    return tide if all(isinstance(value, dict) for value in tide.values()) else None


def families_by_split(outputs: Any, splits: list[str]) -> dict[str, Any] | None:
    """The record's ``"families"``: ``{"mask": {split: mask metrics}, "pose": {...}}`` from a runner's per-split
    outputs (val.py's metrics.json holds a segmentation model's mask metrics under ``"mask"``, a pose model's keypoint
    metrics under ``"pose"``), each family that every split has; None when there is none."""
    if not isinstance(outputs, Mapping):
        return None
    families = {}
    for family in EXTRA_FAMILIES:
        found = {split: (outputs.get(split) or {}).get(family) for split in splits}
        if all(isinstance(value, Mapping) for value in found.values()):
            families[family] = {split: dict(value) for split, value in found.items()}
    return families or None


def make_result(plan: Plan, spec: RunSpec, metrics: dict[str, dict[str, float]], elapsed: float,
                environment: Mapping[str, Any], tide: Mapping[str, Any] | None = None,
                curve: Mapping[str, Any] | None = None, concurrency: int | None = None) -> dict[str, Any]:
    """The result record; ``tide`` (:func:`tide_by_split`) and ``curve`` (the run's per-epoch val mAP,
    :func:`boxloss.stats.curves.read_curve`), when given, go in as ``"tide"`` and ``"curve"``, and
    ``concurrency`` (the engine's runs at once while this one ran) as ``"concurrency"``; the mask and
    pose metrics that ``metrics`` carries per split go in as ``"families"`` (:func:`families_by_split`), and
    ``"metrics"`` keeps the box metrics."""
    def inside(path: Path) -> str:  # a file of the run, relative to the benchmark folder
        return Path(os.path.relpath(path, plan.out)).as_posix()

    settings = portable_settings(spec.settings)
    families = families_by_split(metrics, spec.splits)
    metrics = {split: {key: value for key, value in values.items() if key not in EXTRA_FAMILIES}
               for split, values in metrics.items()}
    record = {
        "format": RESULT_FORMAT, "run": spec.name, "cfg": spec.cfg, "seed": spec.seed,
        "cfg_file": settings.get("cfg"), "metrics": metrics, "settings": settings,
        "evaluation": spec.evaluation, "benchmark": portable_benchmark(plan.benchmark), "elapsed_s": elapsed,
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": plan.command, "train_command": shlex.join(["python", "train.py", *portable_argv(spec.train_argv)]),
        "files": {"log": inside(spec.log_path), "train_dir": inside(spec.train_dir),
                  "weights": inside(spec.train_dir / "weights" / "best.pt"),
                  "val_dirs": {split: inside(spec.val_dir(split)) for split in spec.splits}},
        "cfg_keys": list(spec.cfg_keys), "machine": environment.get("machine"),
        "versions": environment.get("versions"),
    }
    if concurrency is not None:
        record["concurrency"] = int(concurrency)
    if tide is not None:
        record["tide"] = dict(tide)
    if curve is not None:
        record["curve"] = dict(curve)
    if families is not None:
        record["families"] = families
    return record


def portable_benchmark(benchmark: Mapping[str, Any]) -> dict[str, Any]:
    """The plan's shared record with its paths (data, out) made portable (:func:`portable_path`)."""
    return {key: portable_path(value) if key in ("data", "out") else value for key, value in benchmark.items()}


def record_finished(plan: Plan, spec: RunSpec, result: Mapping[str, Any]) -> list[str]:
    """Write a finished run's result and publish every seed of the plan that is now complete.

    A result goes first to ``results/waiting/``; when every run of its seed has finished, the seed's results move
    into ``results/`` (one atomic rename each). So ``results/``, what ``summarize`` reads, only ever holds whole
    seeds of the plan: an interrupt at any moment leaves complete seed pairs, never a config without its baseline
    on that seed, and loses nothing (the waiting results count as finished on the next run). Returns the runs
    published by this call.
    """
    spec.waiting_path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(spec.waiting_path, result, indent=2)
    return publish_complete_seeds(plan, [spec.seed])


def publish_complete_seeds(plan: Plan, seeds: Sequence[int] | None = None) -> list[str]:
    """Move the waiting results of every complete seed (all its runs finished with the plan's settings) into
    ``results/``; ``seeds``: only these. Idempotent: a crash between two renames is finished by the next call."""
    published = []
    for seed in (plan.seeds if seeds is None else seeds):
        group = plan.seed_group(seed)
        waiting = [spec for spec in group if read_result(spec.waiting_path) is not None]
        if not waiting:
            continue
        status = scan(Plan(**{**plan.__dict__, "runs": group}))
        if len(status.done) == len(group):
            for spec in waiting:
                os.replace(spec.waiting_path, spec.result_path)
                published.append(spec.name)
    return published


def waiting_runs(out: str | os.PathLike) -> list[str]:
    """The runs whose results wait in ``<out>/results/waiting/`` for the rest of their seed."""
    return sorted(path.stem for path in (Path(out) / "results" / WAITING_DIR).glob("*.json")
                  if not path.name.startswith("."))


def derived_records(results_dir: Path, run: str) -> list[Path]:
    """The records in ``results_dir`` re-scored from ``run``'s weights (``"rescore": {"from": run}``, written by
    :mod:`.rescore`): they describe those weights, so they go wherever the run's own record goes."""
    derived = []
    for path in sorted(Path(results_dir).glob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rescore = record.get("rescore") if isinstance(record, dict) else None
        if isinstance(rescore, dict) and rescore.get("from") == run:
            derived.append(path)
    return derived


def supersede(path: Path, folder: Path | None = None) -> None:
    """Move a result made with other settings aside (force=true) into ``folder`` (default: ``superseded/`` beside
    it), so it is never summarized with the new ones."""
    if path.exists():
        folder = folder or path.parent / "superseded"
        folder.mkdir(exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.replace(path, folder / f"{path.stem}.{stamp}.json")
