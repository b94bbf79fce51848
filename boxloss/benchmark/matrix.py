"""The benchmark matrix: plan configs x seeds, skip what is finished, train and evaluate the rest one by one.

Layout of ``out`` (every file a run's own, so an interrupt never corrupts another):

- ``results/<cfg>-s<seed>.json``: written atomically (temporary file, then ``os.replace``) the moment the run's
  training and every split's evaluation have finished: metrics per split, cfg, seed, the full resolved settings,
  elapsed seconds, machine, versions. Its presence with the same settings is what "finished" means.
- ``logs/<cfg>-s<seed>.log``: the children's full output (training, then each evaluation).
- ``train/<cfg>-s<seed>/``: the ultralytics run directory; ``val/<cfg>-s<seed>-<split>/``: ``val.py``'s output.

Resume semantics: a run whose result JSON is missing, unreadable, truncated or incomplete is run again **from
scratch** (its train and val directories are deleted first; a fixed seed makes the restart reproduce the run,
which resuming from ``last.pt`` would not guarantee). A result made with different settings is refused unless
``force=true``, which re-runs it and moves the old JSON to ``results/superseded/``. Temporary files
(``.<name>.<pid>.tmp``) are never read.

Everything about the input is checked by :func:`build_plan` and :func:`check_existing`, before anything is
written; both raise :class:`~boxloss.options.ConfigError` with one line.
"""

from __future__ import annotations

import collections
import datetime
import difflib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ..evaluation import METRIC_KEYS
from ..evaluation.io import write_json_atomic
from ..options import ConfigError

REPO = Path(__file__).resolve().parents[2]
RESULT_FORMAT = "boxloss-benchmark-result/1"
SPLITS = ("val", "test")
EMBEDDED_SPLITS = ("val",)  # boxloss.data.synthetic writes train and val images only
DEFAULT_BASELINE = "ciou"
DEFAULT_OUT = "runs/benchmark"  # out= defaults to runs/benchmark/<dataset name>
BENCHMARK_KEYS = ("cfgs", "seeds", "data", "splits", "baseline", "out", "force", "coco_json")
SET_BY_BENCHMARK = {"cfg": "give cfgs=a,b,c", "seed": "give seeds=0,1,2", "split": "give splits=val,test",
                    "project": "give out=<dir>", "name": "give out=<dir>", "exist_ok": "runs restart in place",
                    "resume": "re-run the same command to resume a benchmark"}
NOT_COMPARED = ("cfg", "project", "name", "exist_ok")  # where files go, not what is computed
VERSION_PACKAGES = ("boxloss", "ultralytics", "torch", "torchvision", "numpy", "pycocotools")

Metrics = Mapping[str, Mapping[str, float]]  # {split: {"AP50": ..., ..., "AR100": ...}}


class RunFailed(Exception):
    """A run produced no metrics (its child process failed); the matrix records it and goes on with the next."""


# ---------------------------------------------------------------------------------------------------------------
# The plan
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSpec:
    """One (config, seed) cell of the matrix: what to train, how to evaluate it, where its files go."""

    cfg: str  # the config's label: its file stem
    seed: int
    settings: dict[str, Any]  # the resolved experiment train.py runs (load_experiment + seed, project, name)
    evaluation: dict[str, Any]  # splits and val.py's settings
    train_argv: tuple[str, ...]  # train.py's arguments
    out: Path

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
    runs: list[RunSpec]  # cfg-major order
    benchmark: dict[str, Any]  # what every result shares: data, splits, train overrides, baseline
    command: str


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
    from ..yolo.experiment import EMBEDDED_DATASETS

    if data in EMBEDDED_DATASETS:
        name = data
    else:
        path = Path(data)
        name = path.stem if path.stem not in ("data", "dataset") else path.parent.name or path.stem
    return Path(DEFAULT_OUT) / name


def _check_splits(data: str, splits: list[str]) -> None:
    from ..evaluation.coco_gt import split_images
    from ..yolo.experiment import EMBEDDED_DATASETS

    for split in splits:
        if split not in SPLITS:
            raise ConfigError(f"splits: {split!r} must be one of {', '.join(SPLITS)}")
        if data in EMBEDDED_DATASETS:
            if split not in EMBEDDED_SPLITS:
                raise ConfigError(f"the embedded dataset {data!r} has no {split!r} split (it has: "
                                  f"{', '.join(EMBEDDED_SPLITS)})")
            continue
        try:
            split_images(data, split)
        except (ValueError, OSError) as error:
            raise ConfigError(str(error).splitlines()[0]) from None


def build_plan(argv: list[str], command: str | None = None) -> Plan:
    """The checked plan of ``cfgs=... seeds=... data=... [splits=] [baseline=] [out=] [force=] [train key=value]``.

    Every config is resolved with the train overrides through :func:`boxloss.yolo.experiment.load_experiment`, so
    anything train.py would refuse is refused here, before anything is written.
    """
    from ..yolo import experiment, val_run

    argv = list(argv)
    parsed = experiment.parse_overrides(argv)
    raw = {arg.partition("=")[0]: arg.partition("=")[2] for arg in argv}  # the text as typed; last one wins
    known = experiment.known_keys() | set(BENCHMARK_KEYS)
    for key in parsed:
        if key in SET_BY_BENCHMARK:
            raise ConfigError(f"{key}= is set by the benchmark ({SET_BY_BENCHMARK[key]})")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise ConfigError(f"unknown key {key!r}{hint}")
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
    force = parsed.get("force", False)
    if not isinstance(force, bool):
        raise ConfigError(f"force={raw['force']!r} must be true or false")

    data = raw["data"].strip()
    experiment.check_data(data)
    if data not in experiment.EMBEDDED_DATASETS:
        data = str(Path(data).resolve())
    _check_splits(data, splits)

    out = Path(raw["out"]).expanduser() if raw.get("out", "").strip() else _default_out(data)
    out = out.resolve()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out={str(out)!r} exists and is not a directory")

    train_args = [f"{key}={raw[key]}" for key in parsed if key not in BENCHMARK_KEYS]
    overrides = {key: parsed[key] for key in parsed if key not in BENCHMARK_KEYS}
    experiments = {}
    for cfg in _split_list("cfgs", raw["cfgs"]):
        resolved = experiment.load_experiment([f"cfg={cfg}", f"data={data}", f"seed={seeds[0]}", *train_args])
        label = Path(resolved["cfg"]).stem
        if not re.fullmatch(r"[\w.-]+", label):
            raise ConfigError(f"config {cfg!r}: its name {label!r} must be letters, digits, '_', '-' or '.'")
        if label in experiments:
            raise ConfigError(f"cfgs: two configs are named {label!r}")
        experiments[label] = resolved
    cfgs = list(experiments)

    baseline = raw.get("baseline", "").strip()
    if baseline:
        baseline = Path(baseline).stem if baseline.endswith((".yaml", ".yml")) else baseline
        if baseline not in cfgs:
            raise ConfigError(f"baseline={baseline!r} is not one of cfgs ({', '.join(cfgs)})")
    else:
        baseline = DEFAULT_BASELINE if DEFAULT_BASELINE in cfgs else cfgs[0]

    val_defaults = val_run.DEFAULTS
    runs = []
    for label, resolved in experiments.items():
        evaluation = {"tool": "val.py", "splits": splits, "backend": val_defaults["backend"],
                      "max_det": val_defaults["max_det"], "conf": val_defaults["conf"], "iou": val_defaults["iou"],
                      "batch": val_defaults["batch"], "imgsz": "training imgsz", "device": resolved.get("device")}
        if coco_json:  # only when given, so results recorded without it keep matching
            evaluation["coco_json"] = coco_json
        for seed in seeds:
            name = f"{label}-s{seed}"
            settings = {**resolved, "seed": seed, "project": str(out / "train"), "name": name, "exist_ok": True}
            train_argv = (f"cfg={resolved['cfg']}", f"seed={seed}", f"data={data}", f"project={out / 'train'}",
                          f"name={name}", "exist_ok=True", *train_args)
            runs.append(RunSpec(label, seed, settings, evaluation, train_argv, out))
    benchmark = {"data": data, "embedded_data": data in experiment.EMBEDDED_DATASETS, "splits": splits,
                 "overrides": overrides, "baseline": baseline, "cfgs": cfgs, "seeds": seeds, "out": str(out)}
    command = command or shlex.join(["python", "scripts/benchmark.py", *argv])
    return Plan(out, cfgs, seeds, splits, baseline, data, force, runs, benchmark, command)


# ---------------------------------------------------------------------------------------------------------------
# Result files: what counts as finished
# ---------------------------------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
        metrics = result["metrics"].get(split)
        if not isinstance(metrics, dict) or not all(_is_number(metrics.get(key)) for key in METRIC_KEYS):
            return f"incomplete metrics for split {split!r}"
    return None


def read_result(path: Path) -> dict[str, Any] | None:
    """The result record in ``path``, or None if it is missing, unreadable, truncated or incomplete."""
    try:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return result if result_problem(result) is None else None


def comparable(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that decide what a run computes (JSON-normalised), without where its files go."""
    return json.loads(json.dumps({k: v for k, v in settings.items() if k not in NOT_COMPARED}, sort_keys=True))


def setting_differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``["epochs: 1 -> 2", ...]`` between two ``{"settings", "evaluation"}`` records."""
    differences = []
    for part in ("settings", "evaluation"):
        old, new = comparable(recorded.get(part) or {}), comparable(current.get(part) or {})
        for key in sorted(set(old) | set(new)):
            if old.get(key, "<unset>") != new.get(key, "<unset>"):
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


# ---------------------------------------------------------------------------------------------------------------
# Running the matrix
# ---------------------------------------------------------------------------------------------------------------
Runner = Callable[[RunSpec], Metrics]


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]]  # run name -> result, every finished run of the plan, plan order
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]  # run name -> why


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
        if not isinstance(values, Mapping) or not all(_is_number(values.get(key)) for key in METRIC_KEYS):
            raise RunFailed(f"no complete metrics for split {split!r}")
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
    """Move a result made with other settings aside (force=true), so it is never summarised with the new ones."""
    if path.exists():
        folder = path.parent / "superseded"
        folder.mkdir(exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        os.replace(path, folder / f"{path.stem}.{stamp}.json")


def run_matrix(plan: Plan, runner: Runner, *, log: Callable[[str], None] = print,
               clock: Callable[[], float] = time.monotonic,
               environment: Mapping[str, Any] | None = None) -> Outcome:
    """Run every pending (cfg, seed) of ``plan`` through ``runner``; write each result JSON as soon as it is done.

    ``runner(spec)`` trains and evaluates one run and returns ``{split: metrics}``; raising :class:`RunFailed`
    marks the run failed and the matrix goes on. Any other exception, KeyboardInterrupt included, stops the
    matrix: results already written stay, the interrupted run has none and runs again next time.
    """
    status = check_existing(plan)
    environment = dict(environment) if environment is not None else {"machine": machine_info(),
                                                                      "versions": versions()}
    for path in status.unreadable:
        log(f"benchmark: {path} is not a complete result; that run starts again")
    if status.done:
        log(f"benchmark: {len(status.done)} of {len(plan.runs)} runs already finished, skipped: "
            f"{', '.join(status.done)}")
    (plan.out / "results").mkdir(parents=True, exist_ok=True)

    durations = [float(result["elapsed_s"]) for result in status.done.values()]
    written: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    started = clock()
    total = len(status.pending)
    for index, spec in enumerate(status.pending, 1):
        log(f"[{index}/{total}] {spec.name}: start (cfg {spec.cfg}, seed {spec.seed}, "
            f"splits {','.join(spec.splits)})")
        if spec.name in status.stale:
            _supersede(spec.result_path)
        run_start = clock()
        try:
            metrics = _checked_metrics(runner(spec), spec)
        except RunFailed as error:
            failed[spec.name] = str(error)
            log(f"[{index}/{total}] {spec.name}: FAILED after {format_seconds(clock() - run_start)}: {error}")
            continue
        elapsed = clock() - run_start
        result = make_result(plan, spec, metrics, elapsed, environment)
        write_json_atomic(spec.result_path, result, indent=2)
        written[spec.name] = result
        durations.append(elapsed)
        remaining = total - index
        eta = f", ETA {format_seconds(statistics.fmean(durations) * remaining)} for {remaining} more" \
            if remaining else ""
        scores = ", ".join(f"{split} AP {values['AP']:.4f} AP50 {values['AP50']:.4f}"
                           for split, values in metrics.items())
        log(f"[{index}/{total}] {spec.name}: done in {format_seconds(elapsed)} ({scores}); "
            f"elapsed {format_seconds(clock() - started)}{eta}")

    results = {spec.name: written.get(spec.name) or status.done.get(spec.name) for spec in plan.runs}
    return Outcome({name: result for name, result in results.items() if result is not None}, list(written),
                   list(status.done), failed)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt (as Ctrl-C does) inside the block, so the same cleanup runs."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------------------------------------------------------
# The real runner: train.py and val.py in subprocesses
# ---------------------------------------------------------------------------------------------------------------
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EPOCH_FRAME = re.compile(r"^\s*(\d+)/(\d+)\s+(.*)$")


class LineSplitter:
    """Bytes of a child's output -> its lines as a terminal would leave them (last ``\\r`` frame, no ANSI codes)."""

    def __init__(self, on_line: Callable[[str], None], keep: int = 20):
        self.on_line = on_line
        self.buffer = b""
        self.tail: collections.deque[str] = collections.deque(maxlen=keep)

    def _emit(self, raw: bytes) -> None:
        frames = [frame for frame in raw.decode("utf-8", errors="replace").split("\r") if frame.strip()]
        line = _ANSI.sub("", frames[-1]).rstrip() if frames else ""
        if line:
            self.tail.append(line)
            self.on_line(line)

    def feed(self, chunk: bytes) -> None:
        self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for raw in lines:
            self._emit(raw)

    def close(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer = b""


class EpochProgress:
    """One line per epoch from ultralytics' training output: the epoch bar's last frame plus its "all" val line.

    ``Epoch GPU_mem box_loss ...`` (header), ``  3/30  0G  1.23 ... : 100% ...`` (the bar), ``  all  24  128  P  R
    mAP50  mAP50-95`` -> ``epoch 3/30  box_loss 1.23  cls_loss ...  | val mAP50 0.41  mAP50-95 0.22``.
    """

    def __init__(self, emit: Callable[[str], None]):
        self.emit = emit
        self.columns: list[str] = []
        self.pending: str | None = None

    def feed(self, line: str) -> None:
        stripped = line.strip()
        if stripped.startswith("Epoch "):
            self.columns = stripped.split()[1:]
            return
        frame = _EPOCH_FRAME.match(line)
        if frame and self.columns:
            self.flush()
            values = frame.group(3).split(":")[0].split()
            losses = [f"{name} {value}" for name, value in zip(self.columns, values) if name.endswith("_loss")]
            self.pending = "  ".join([f"epoch {frame.group(1)}/{frame.group(2)}", *losses])
            return
        if stripped.startswith("all ") and self.pending:
            numbers = stripped.split()[-4:]
            self.pending += (f"  | val P {numbers[0]}  R {numbers[1]}  mAP50 {numbers[2]}  mAP50-95 {numbers[3]}"
                             if len(numbers) == 4 else "")
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.emit(self.pending)
            self.pending = None


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class SubprocessRunner:
    """Train with ``train.py`` and evaluate each split with ``val.py``, each in a subprocess.

    A partial earlier attempt is deleted first (the run restarts from scratch). The children's output goes whole to
    ``logs/<run>.log``; one line per epoch, and each split's AP, go to ``log``. A child that fails raises
    :class:`RunFailed` with its last output line; a child killed by SIGINT/SIGTERM, or an interrupt of this process
    (the child is then terminated), raises KeyboardInterrupt.
    """

    python: str = sys.executable
    train_script: Path = REPO / "train.py"
    val_script: Path = REPO / "val.py"
    log: Callable[[str], None] = print
    tail_lines: int = 15

    def __call__(self, spec: RunSpec) -> dict[str, dict[str, float]]:
        for folder in (spec.train_dir, *(spec.val_dir(split) for split in spec.splits)):
            if folder.exists():
                shutil.rmtree(folder)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "wb") as log_file:
            progress = EpochProgress(lambda line: self.log(f"    {spec.name} {line}"))
            self._run([self.python, str(self.train_script), *spec.train_argv], log_file, progress.feed,
                      "training", spec)
            progress.flush()
            best = spec.train_dir / "weights" / "best.pt"
            if not best.is_file():
                raise RunFailed(f"training ended without {best} (log {spec.log_path})")
            metrics = {}
            for split in spec.splits:
                run_dir = spec.val_dir(split)
                argv = [f"model={best}", f"data={spec.settings['data']}", f"split={split}",
                        f"project={run_dir.parent}", f"name={run_dir.name}"]
                if spec.evaluation.get("device") is not None:
                    argv.append(f"device={spec.evaluation['device']}")
                if spec.evaluation.get("coco_json"):
                    argv.append(f"coco_json={spec.evaluation['coco_json']}")
                self._run([self.python, str(self.val_script), *argv], log_file, lambda line: None,
                          f"evaluation on {split}", spec)
                try:
                    metrics[split] = json.loads((run_dir / "metrics.json").read_text())
                except (OSError, ValueError) as error:
                    raise RunFailed(f"evaluation on {split} wrote no readable metrics.json ({error})") from None
                self.log(f"    {spec.name} {split}: AP {metrics[split]['AP']:.4f}  AP50 {metrics[split]['AP50']:.4f}"
                         f"  AP75 {metrics[split]['AP75']:.4f}  AP90 {metrics[split]['AP90']:.4f} (COCO)")
        return metrics

    def _run(self, command: list[str], log_file, on_line: Callable[[str], None], what: str, spec: RunSpec) -> None:
        log_file.write(f"$ {shlex.join(command)}\n".encode())
        log_file.flush()
        lines = LineSplitter(on_line, keep=self.tail_lines)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            while chunk := process.stdout.read1(65536):
                log_file.write(chunk)
                log_file.flush()
                lines.feed(chunk)
            returncode = process.wait()
        except BaseException:  # KeyboardInterrupt, SIGTERM: the child goes with us
            _stop(process)
            raise
        finally:
            process.stdout.close()
        lines.close()
        if returncode in (-signal.SIGINT, -signal.SIGTERM):
            raise KeyboardInterrupt(f"{what} of {spec.name} was stopped by signal {-returncode}")
        if returncode != 0:
            for line in lines.tail:
                self.log(f"    {spec.name} | {line}")
            last = lines.tail[-1] if lines.tail else "no output"
            raise RunFailed(f"{what} exited with status {returncode}: {last} (log {spec.log_path})")
