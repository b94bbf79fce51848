"""The benchmark plan: configs x seeds, every argument checked before anything is written.

``build_plan(argv)`` reads ``cfgs=... seeds=... data=... [splits=] [baseline=] [out=] [force=] [train key=value]``,
resolves every config through :func:`boxloss.yolo.experiment.load_experiment` (so anything train.py would refuse is
refused here) and returns one :class:`RunSpec` per (config, seed): what to train, how to evaluate it, where its
files go. Bad input raises :class:`~boxloss.errors.ConfigError` with one line.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from .._io import read_yaml_mapping
from ..data.embedded import EMBEDDED_DATASETS, DataChecks, check_data
from ..errors import ConfigError
from ..keyvalues import check_known, raw_keyvalues, split_keyvalues
from ..ops.nms import EVALUATION_NMS, NMS_BOXES
from ..param import Param
from ..stats.records import DEFAULT_BASELINE, EVALUATION_SPLITS, default_baseline

WAITING_DIR = "waiting"  # results/waiting/: finished runs whose seed is not complete yet
DEFAULT_OUT = "runs/benchmark"  # out= defaults to runs/benchmark/<dataset name>
BENCHMARK_KEYS: dict[str, Param] = {
    "cfgs": Param(None, "configs to compare, as train.py's cfg= (e.g. ciou,eiou,focal_eiou)", value_type=str),
    "seeds": Param(None, "seeds of every config (e.g. 0,1,2)", value_type=str),
    "data": Param(None, "dataset YAML or an embedded dataset (shapes, shapes-mini)", value_type=str),
    "splits": Param("val", "splits to evaluate, comma-separated (val, test)", value_type=str),
    "baseline": Param(None, f"config the others are paired against (default {DEFAULT_BASELINE} when listed, else the "
                      "first)", value_type=str),
    "out": Param(None, "benchmark folder (default runs/benchmark/<dataset name>)", value_type=str),
    "force": Param(False, "re-run runs finished with other settings (their results move to results/superseded/)"),
    "coco_json": Param(None, "official COCO JSON of the one evaluated split (crowd regions ignored)", value_type=str),
    "nms": Param(None, "val.py's nms= for every evaluation (standard, diou, exact for oriented boxes, none; default: "
                 "each checkpoint's own)",
                 choices=EVALUATION_NMS, value_type=str),
    "nms_diou_beta": Param(None, "val.py's nms_diou_beta= for every evaluation", lambda b: b > 0, "> 0",
                           value_type=float),
    "jobs": Param(1, "runs at once on this machine (engine=local): devices round-robin, CPU threads split",
                  lambda n: n >= 1, ">= 1"),
    "engine": Param("local", "local (this machine, jobs=N) or ray (every run a Ray task)", choices=("local", "ray")),
    "address": Param(None, "Ray cluster address host:port (engine=ray; default: start a local cluster)",
                     value_type=str),
    "num_cpus": Param(1.0, "CPUs per Ray task (engine=ray)", lambda n: n > 0, "> 0"),
    "num_gpus": Param(0.0, "GPUs per Ray task, fractions allowed: 0.25 puts four runs on a GPU (engine=ray)",
                      lambda n: n >= 0, ">= 0"),
    "cuda_mps": Param(False, "run the jobs' CUDA work concurrently under CUDA's Multi-Process Service (a daemon "
                      "started for the matrix; 1.79x the runs/hour of time-slicing on an H200, see "
                      "boxloss/benchmark/cuda_mps.py)"),
    "order": Param(None, "the order runs start in: seed (all configs of seed k before seed k+1, so an interrupt "
                   "leaves whole seeds; the default with jobs > 1 or engine=ray) or config (config by config; the "
                   "default with one job)", choices=("seed", "config"), value_type=str),
}
# how runs are executed, not what they compute
EXECUTION_KEYS = ("jobs", "engine", "address", "num_cpus", "num_gpus", "order", "cuda_mps")
RENAMED_KEYS = {"mps": "cuda_mps=true (CUDA's Multi-Process Service; device=mps is Apple's Metal)"}
SET_BY_BENCHMARK = {"cfg": "give cfgs=a,b,c", "seed": "give seeds=0,1,2", "split": "give splits=val,test",
                    "project": "give out=<dir>", "name": "give out=<dir>", "exist_ok": "runs restart in place",
                    "resume": "re-run the same command to resume a benchmark"}


@dataclass(frozen=True)
class Execution:
    """How the runs of a plan are executed: the checked, frozen execution keys (:data:`EXECUTION_KEYS`, each
    described in :data:`BENCHMARK_KEYS`). How the runs go, never what they compute, so it is not part of a run's
    recorded settings; :func:`boxloss.benchmark.execute.make_engine` turns it into an engine."""

    jobs: int = 1
    engine: str = "local"
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    order: str = "config"
    cuda_mps: bool = False

    @classmethod
    def from_keys(cls, values: Mapping[str, Any], given: set[str]) -> "Execution":
        """The execution of validated key values (``given``: the keys the user typed); ConfigError for keys of the
        other engine. ``order`` defaults to ``seed`` when runs go in parallel (jobs > 1 or Ray), else ``config``."""
        engine = values["engine"]
        if engine == "local" and (values["address"] is not None or "num_gpus" in given):
            raise ConfigError("address= and num_gpus= are for engine=ray; on this machine use jobs= and device=")
        if engine == "ray" and "jobs" in given:
            raise ConfigError("jobs= is for engine=local; with engine=ray, Ray runs as many as num_cpus/num_gpus allow")
        if values["cuda_mps"] and engine == "ray":
            raise ConfigError("cuda_mps=true starts a daemon on this machine; with engine=ray start MPS on each node "
                              "(nvidia-cuda-mps-control -d) and leave cuda_mps= out")
        order = values["order"] or ("seed" if engine == "ray" or values["jobs"] > 1 else "config")
        return cls(values["jobs"], engine, values["address"], values["num_cpus"], values["num_gpus"], order,
                   values["cuda_mps"])


@dataclass(frozen=True)
class RunSpec:
    """One (config, seed) cell of the matrix: what to train, how to evaluate it, where its files go."""

    cfg: str  # the config's label: its file stem
    seed: int
    settings: dict[str, Any]  # the resolved experiment train.py runs (load_experiment + seed, project, name)
    evaluation: dict[str, Any]  # splits and val.py's settings
    train_argv: tuple[str, ...]  # train.py's arguments
    out: Path
    cfg_keys: tuple[str, ...] = ()  # the keys the config file sets: what may differ from another config's run

    @property
    def name(self) -> str:
        return f"{self.cfg}-s{self.seed}"

    @property
    def splits(self) -> list[str]:
        return list(self.evaluation["splits"])

    @property
    def result_path(self) -> Path:
        return self.out / "results" / f"{self.name}.json"

    @property
    def waiting_path(self) -> Path:
        """Where the result waits while other runs of its seed are unfinished (see :mod:`.results`)."""
        return self.out / "results" / WAITING_DIR / f"{self.name}.json"

    @property
    def log_path(self) -> Path:
        return self.out / "logs" / f"{self.name}.log"

    @property
    def train_dir(self) -> Path:
        return self.out / "train" / self.name

    def val_dir(self, split: str) -> Path:
        return self.out / "val" / f"{self.name}-{split}"


@dataclass
class Plan:
    out: Path
    cfgs: list[str]  # labels, in the order given
    seeds: list[int]
    splits: list[str]
    baseline: str
    data: str  # embedded dataset name or absolute data YAML path
    force: bool
    runs: list[RunSpec]  # cfg-major order (the order runs start in is execution.order: see start_order)
    benchmark: dict[str, Any]  # what every result shares: data, splits, train overrides, baseline
    command: str
    execution: Execution = field(default_factory=Execution)  # how the runs go (jobs, engine, order, cuda_mps, ...)

    def seed_group(self, seed: int) -> list[RunSpec]:
        """The runs of one seed: a seed is complete (its results published) when all of them have finished."""
        return [spec for spec in self.runs if spec.seed == seed]


def start_order(runs: list[RunSpec], order: str | None, seeds: list[int] | None = None) -> list[RunSpec]:
    """``runs`` (in the plan's config-major order) in the order they start: ``seed`` (all configs of seed k, in
    the plan's config order, before seed k + 1, in the order of ``seeds``, default ascending) or ``config`` (as
    given: config by config)."""
    if order != "seed":
        return list(runs)
    rank = {seed: i for i, seed in enumerate(seeds if seeds is not None else sorted({s.seed for s in runs}))}
    return sorted(runs, key=lambda spec: rank[spec.seed])  # stable: the configs keep their order


def _split_list(key: str, raw: str) -> list[str]:
    items = [item.strip() for item in raw.strip().strip("[]").split(",")]
    if not raw.strip() or not all(items):
        raise ConfigError(f"{key}={raw!r} must be a comma-separated list (e.g. {key}=a,b)")
    if len(set(items)) != len(items):
        raise ConfigError(f"{key}={raw!r} names an entry twice")
    return items


def _seeds(raw: str) -> list[int]:
    seeds = []
    for item in _split_list("seeds", raw):
        if not re.fullmatch(r"\d+", item):
            raise ConfigError(f"seeds={raw!r}: {item!r} is not a non-negative integer")
        seeds.append(int(item))
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"seeds={raw!r} names a seed twice")
    return seeds


def _default_out(data: str) -> Path:
    if data in EMBEDDED_DATASETS:
        name = data
    else:
        path = Path(data)
        name = path.stem if path.stem not in ("data", "dataset") else path.parent.name or path.stem
    return Path(DEFAULT_OUT) / name


def build_plan(argv: list[str], command: str | None = None, data_pending: bool = False) -> Plan:
    """The checked plan of ``cfgs=... seeds=... data=... [splits=] [baseline=] [out=] [force=] [train key=value]``.

    Every config is resolved with the train overrides through :func:`boxloss.yolo.experiment.load_experiment`, so
    anything train.py would refuse is refused here, before anything is written; the dataset is checked once per
    task for all of them (:class:`~boxloss.data.embedded.DataChecks`: its label files are read once). With
    ``data_pending``, a data YAML that does not exist yet (a dataset about to be converted) is not checked: everything
    else is.
    """
    from ultralytics.utils import DATASETS_DIR

    from ..yolo import experiment, val_run

    argv = list(argv)
    parsed = split_keyvalues(argv, renamed=RENAMED_KEYS)
    raw = raw_keyvalues(argv)  # the text as typed (lists, paths); the last one wins
    for key in parsed:
        if key in SET_BY_BENCHMARK:
            raise ConfigError(f"{key}= is set by the benchmark ({SET_BY_BENCHMARK[key]})")
    check_known(parsed, experiment.known_keys() | set(BENCHMARK_KEYS))
    for key in ("cfgs", "seeds", "data"):
        if key not in raw or not raw[key].strip():
            raise ConfigError(f"{key}= is required (e.g. cfgs=ciou,eiou seeds=0,1,2 data=shapes)")
    seeds = _seeds(raw["seeds"])
    splits = _split_list("splits", raw.get("splits", "val"))
    coco_json = raw.get("coco_json", "").strip()
    if coco_json:  # score against official COCO annotations (crowd regions ignored), as val.py coco_json= does
        if not Path(coco_json).is_file():
            raise ConfigError(f"coco_json={coco_json!r} not found")
        if len(splits) != 1:
            raise ConfigError("coco_json= is the ground truth of one split: give a single split (e.g. splits=val)")
        coco_json = str(Path(coco_json).resolve())
    force = BENCHMARK_KEYS["force"].validate("force", parsed.get("force", False))
    execution = Execution.from_keys({key: BENCHMARK_KEYS[key].validate(key, parsed.get(key, BENCHMARK_KEYS[key].default))
                                     for key in EXECUTION_KEYS}, set(parsed))
    evaluation_extra = {key: BENCHMARK_KEYS[key].validate(key, parsed[key]) for key in ("nms", "nms_diou_beta")
                        if key in parsed}
    for split in splits:
        if split not in EVALUATION_SPLITS:
            raise ConfigError(f"splits: {split!r} must be one of {', '.join(EVALUATION_SPLITS)}")

    data = raw["data"].strip()
    pending = data_pending and data not in EMBEDDED_DATASETS and not Path(data).exists()
    if not pending:
        check_data(data, (), datasets_dir=DATASETS_DIR)  # named as typed; its splits are checked with the configs' task
    if data not in EMBEDDED_DATASETS:
        data = str(Path(data).resolve())

    out = Path(raw["out"]).expanduser() if raw.get("out", "").strip() else _default_out(data)
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={str(out)!r} exists and is not a directory")

    train_args = [f"{key}={raw[key]}" for key in parsed if key not in BENCHMARK_KEYS]  # each run's train.py argv
    overrides = {key: parsed[key] for key in parsed if key not in BENCHMARK_KEYS}
    experiments = {}
    data_checks = DataChecks()  # the dataset checked once per task for all configs: its labels read once
    for cfg in _split_list("cfgs", raw["cfgs"]):
        loaded = experiment.load_experiment({**overrides, "cfg": cfg, "data": data, "seed": seeds[0]},
                                            require_data=not pending, data_check=data_checks)
        if not pending:  # the evaluated splits too, with the config's task
            data_checks(data, ("train", *splits), datasets_dir=DATASETS_DIR, task=loaded.task.name)
        resolved = loaded.settings
        label = Path(resolved["cfg"]).stem
        if not re.fullmatch(r"[\w.-]+", label):
            raise ConfigError(f"config {cfg!r}: its name {label!r} must be letters, digits, '_', '-' or '.'")
        if label in experiments:
            raise ConfigError(f"cfgs: two configs are named {label!r}")
        nms, boxes = evaluation_extra.get("nms"), experiment.check_model(resolved["model"]).boxes
        if NMS_BOXES.get(nms, boxes) != boxes:  # val.py would refuse it after the training
            raise ConfigError(f"nms={nms} suppresses other boxes than those of config {label!r} (model "
                              f"{resolved['model']}): use standard or {'exact' if boxes == 'xywhr' else 'diou'}")
        experiments[label] = resolved
    cfgs = list(experiments)

    baseline = raw.get("baseline", "").strip()
    if baseline:
        baseline = Path(baseline).stem if baseline.endswith((".yaml", ".yml")) else baseline
        if baseline not in cfgs:
            raise ConfigError(f"baseline={baseline!r} is not one of cfgs ({', '.join(cfgs)})")
    else:
        baseline = default_baseline(cfgs)

    if execution.cuda_mps:
        from . import cuda_mps

        for resolved in experiments.values():
            cuda_mps.check_available(resolved.get("device"))

    val_defaults = val_run.DEFAULTS
    runs = []
    for label, resolved in experiments.items():
        cfg_keys = tuple(sorted(read_yaml_mapping(resolved["cfg"], "config", numbers=True))) if resolved["cfg"] else ()
        evaluation = {"tool": "val.py", "splits": splits, "backend": val_defaults["backend"],
                      "max_det": val_defaults["max_det"], "conf": val_defaults["conf"], "iou": val_defaults["iou"],
                      "batch": val_defaults["batch"], "imgsz": "training imgsz", "device": resolved.get("device")}
        if coco_json:  # only when given, so results recorded without it keep matching
            evaluation["coco_json"] = coco_json
        evaluation.update(evaluation_extra)  # likewise
        for seed in seeds:
            name = f"{label}-s{seed}"
            settings = {**resolved, "seed": seed, "project": str(out / "train"), "name": name, "exist_ok": True}
            train_argv = (f"cfg={resolved['cfg']}", f"seed={seed}", f"data={data}", f"project={out / 'train'}",
                          f"name={name}", "exist_ok=True", *train_args)
            runs.append(RunSpec(label, seed, settings, evaluation, train_argv, out, cfg_keys))
    benchmark = {"data": data, "embedded_data": data in EMBEDDED_DATASETS, "splits": splits,
                 "overrides": overrides, "baseline": baseline, "cfgs": cfgs, "seeds": seeds, "out": str(out)}
    command = command or shlex.join(["python", "scripts/benchmark.py", *argv])
    return Plan(out, cfgs, seeds, splits, baseline, data, force, runs, benchmark, command, execution)

