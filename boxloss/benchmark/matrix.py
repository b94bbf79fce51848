"""Running the benchmark matrix: every pending (config, seed) through a runner, each result written when it is done.

A runner is any callable ``runner(spec, slot) -> {split: metrics}``: the real one trains and evaluates in child
processes (:mod:`.runner`), the tests inject fakes. An *engine* decides where runs go:

- :class:`SerialEngine` (``jobs=1``): one run at a time, in plan order;
- :class:`LocalEngine` (``jobs=N``): N runs at once on this machine, each in its own :class:`Slot` (a device, and
  the CPU threads its children may use, so that N runs do not oversubscribe the cores);
- :class:`boxloss.benchmark.ray_engine.RayEngine` (``engine=ray``): every run a Ray task, on a local or remote
  cluster.

Every engine is an :class:`Engine`: a ``description`` for the log, its ``concurrency`` (how many runs go at once:
the ETA divides by it, and each result records it, so ``benchmark.py status`` knows the rate of the runs it reads)
and ``run``.

Whatever the engine, results come back to this process, which writes each one atomically the moment it arrives:
an interrupt or a crash at any moment loses no finished run, and the runs still going start again next time. Runs
start seed by seed by default when several go at once (``order=seed``), and a result is published into
``results/`` only once every run of its seed has finished (until then it waits in ``results/waiting/``, and counts
as finished): an interrupted matrix leaves whole seeds, so every config has its baseline on every published seed.
"""

from __future__ import annotations

import os
import queue
import signal
import statistics
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Protocol, Sequence

from ..devices import parse_device
from ..stats import match_store
from ..stats.curves import read_curve_file
from ..stats.records import format_seconds
from .plan import Plan, RunSpec, start_order
from .results import (Metrics, RunFailed, Status, check_existing, checked_metrics, derived_records, machine_info,
                      make_result, publish_complete_seeds, record_finished, supersede, tide_by_split, versions)


@dataclass(frozen=True)
class Slot:
    """Where one run goes: ``device`` for its train and val children (None: the run's own setting) and the number
    of CPU threads they may use (None: all of them)."""

    index: int = 0
    device: str | None = None
    threads: int | None = None

    def describe(self) -> str:
        where = f"device {self.device}" if self.device is not None else "default device"
        return where + (f", {self.threads} thread{'s' * (self.threads != 1)}" if self.threads else "")


Runner = Callable[..., Metrics]  # runner(spec, slot) -> {split: metrics}


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]]  # run name -> result, every published run of the plan, plan order
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]  # run name -> why
    waiting: list[str] = field(default_factory=list)  # finished, not published: their seed is incomplete


@dataclass
class Completion:
    """One run that ended: its metrics, or why it failed, and how long it took."""

    spec: RunSpec
    metrics: Any = None
    error: str | None = None
    elapsed: float = 0.0
    environment: Mapping[str, Any] | None = None  # the machine and versions it ran with, when not this process's


def local_slots(jobs: int, device: Any = None, cpu_count: int | None = None) -> list[Slot]:
    """``jobs`` slots: GPUs (``device=0,1``) shared round-robin (``jobs=4``: two runs per GPU), CPU threads split
    evenly between the jobs (at least one each)."""
    cpus = cpu_count or os.cpu_count() or 1
    threads = max(1, cpus // jobs) if jobs > 1 else None
    parsed = parse_device(device)
    gpus = [str(index) for index in parsed.indices if index >= 0]  # -1 (an idle GPU) is ultralytics' to pick
    devices = gpus or ([parsed.text] if not parsed.is_default else [None])
    return [Slot(index, devices[index % len(devices)], threads) for index in range(jobs)]


class Engine(Protocol):
    """Where the runs of a matrix go (see the module)."""

    description: str
    concurrency: int  # runs at once

    def run(self, specs: Sequence[RunSpec], runner: Runner, on_start: Callable[[RunSpec, Slot], None],
            clock: Callable[[], float] = time.monotonic) -> Iterator[Completion]: ...


class SerialEngine:
    """One run at a time, in plan order (``jobs=1``)."""

    description = "1 job"
    concurrency = 1

    def __init__(self, slot: Slot | None = None):
        self.slot = slot or Slot()

    def run(self, specs: Sequence[RunSpec], runner: Runner, on_start: Callable[[RunSpec, Slot], None],
            clock: Callable[[], float] = time.monotonic) -> Iterator[Completion]:
        for spec in specs:
            on_start(spec, self.slot)
            started = clock()
            try:
                yield Completion(spec, runner(spec, self.slot), elapsed=clock() - started)
            except RunFailed as error:
                yield Completion(spec, error=str(error), elapsed=clock() - started)


class LocalEngine:
    """``jobs`` runs at once on this machine: one worker thread per slot, each starting the next pending run once
    the caller has taken its finished one (so a progress line never lists a run that has ended as still running;
    the runs themselves are child processes). An interrupt stops every running child."""

    def __init__(self, slots: Sequence[Slot]):
        self.slots = list(slots)
        self.concurrency = len(self.slots)
        self.description = f"{len(self.slots)} jobs ({'; '.join(slot.describe() for slot in self.slots)})"

    def run(self, specs: Sequence[RunSpec], runner: Runner, on_start: Callable[[RunSpec, Slot], None],
            clock: Callable[[], float] = time.monotonic) -> Iterator[Completion]:
        pending: queue.Queue = queue.Queue()
        for spec in specs:
            pending.put(spec)
        finished: queue.Queue = queue.Queue()
        stop = threading.Event()

        def work(slot: Slot) -> None:
            while not stop.is_set():
                try:
                    spec = pending.get_nowait()
                except queue.Empty:
                    return
                on_start(spec, slot)
                started = clock()
                taken = threading.Event()
                try:
                    finished.put((Completion(spec, runner(spec, slot), elapsed=clock() - started), taken))
                except RunFailed as error:
                    finished.put((Completion(spec, error=str(error), elapsed=clock() - started), taken))
                except BaseException as error:  # an interrupted child, or a bug: stop the matrix
                    finished.put((error, taken))
                    return
                while not (taken.wait(0.5) or stop.is_set()):
                    pass

        workers = [threading.Thread(target=work, args=(slot,), daemon=True) for slot in self.slots]
        for worker in workers:
            worker.start()
        try:
            for _ in range(len(specs)):
                while True:
                    try:
                        item, taken = finished.get(timeout=0.5)
                        break
                    except queue.Empty:
                        if not any(worker.is_alive() for worker in workers) and finished.empty():
                            return
                if isinstance(item, BaseException):
                    raise item
                yield item  # the caller records it before asking for the next one
                taken.set()
        finally:
            stop.set()
            getattr(runner, "stop_all", lambda: None)()
            for worker in workers:
                worker.join(timeout=60)


def run_matrix(plan: Plan, runner: Runner, *, engine: Engine | None = None, log: Callable[[str], None] = print,
               clock: Callable[[], float] = time.monotonic,
               environment: Mapping[str, Any] | None = None, status: Status | None = None) -> Outcome:
    """Run every pending (cfg, seed) of ``plan`` through ``runner`` on ``engine`` (default: one at a time); write
    each result JSON as soon as it is done.

    ``runner(spec, slot)`` trains and evaluates one run and returns ``{split: metrics}``; raising
    :class:`RunFailed` marks the run failed (reported, not retried) and the matrix goes on. Any other exception,
    KeyboardInterrupt included, stops the matrix: results already written stay, the runs still going have none and
    run again next time. ``status``: the plan's :func:`~.results.check_existing`, when the caller has it already.
    """
    engine = engine or SerialEngine()
    status = status or check_existing(plan)
    environment = dict(environment) if environment is not None else {"machine": machine_info(),
                                                                      "versions": versions()}
    for path in status.unreadable:
        log(f"benchmark: {path} is not a complete result; that run starts again")
    if status.done:
        log(f"benchmark: {len(status.done)} of {len(plan.runs)} runs already finished, skipped: "
            f"{', '.join(status.done)}")
    (plan.out / "results").mkdir(parents=True, exist_ok=True)
    published = publish_complete_seeds(plan)  # seeds completed by runs that finished before an interrupt
    if published:
        log(f"benchmark: published the complete seeds of {', '.join(published)}")
    pending = start_order(status.pending, plan.execution.order, plan.seeds)

    durations = [float(result["elapsed_s"]) for result in status.done.values()]
    written: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    started = clock()
    total = len(pending)
    running: dict[str, str] = {}
    lock = threading.Lock()
    started_count = [0]

    def on_start(spec: RunSpec, slot: Slot) -> None:
        with lock:
            started_count[0] += 1
            running[spec.name] = slot.describe()
            if spec.name in status.stale:  # its record, and those re-scored from its weights, go aside together
                for path in (spec.result_path, spec.waiting_path, *derived_records(spec.result_path.parent, spec.name)):
                    supersede(path, spec.result_path.parent / "superseded")
            now_running = ", ".join(f"{name} ({where})" for name, where in running.items())
            log(f"[{started_count[0]}/{total}] {spec.name}: start (cfg {spec.cfg}, seed {spec.seed}, splits "
                f"{','.join(spec.splits)}); running: {now_running}")

    if total:
        log(f"benchmark: {total} run(s) to do on {engine.description}")
    for done_count, completion in enumerate(engine.run(pending, runner, on_start, clock), 1):
        spec = completion.spec
        with lock:
            running.pop(spec.name, None)
            still = ", ".join(running) or "none"
        if completion.error is None:
            try:
                metrics = checked_metrics(completion.metrics, spec)
            except RunFailed as error:
                completion.error = str(error)
        if completion.error is not None:
            failed[spec.name] = completion.error
            log(f"[{done_count}/{total}] {spec.name}: FAILED after {format_seconds(completion.elapsed)}: "
                f"{completion.error}; still running: {still}")
            continue
        result = make_result(plan, spec, metrics, completion.elapsed, completion.environment or environment,
                             tide=tide_by_split(completion.metrics, spec.splits),
                             curve=read_curve_file(spec.train_dir / "results.csv"), concurrency=engine.concurrency)
        for split in spec.splits:  # the per-image matches of the two-stage bootstrap, before the record
            if (spec.val_dir(split) / "predictions.json").is_file():
                try:
                    match_store.save_from_val(plan.out, spec.name, split, spec.val_dir(split), metrics[split])
                except ValueError as error:
                    log(f"benchmark: {spec.name}: no per-image matches for {split} ({error})")
        published = record_finished(plan, spec, result)
        written[spec.name] = result
        durations.append(completion.elapsed)
        remaining = total - done_count
        left = statistics.fmean(durations) * remaining / max(1, engine.concurrency)  # runs go concurrency at a time
        eta = f", ETA {format_seconds(left)} for {remaining} more" if remaining else ""
        scores = ", ".join(f"{split} AP {values['AP']:.4f} AP50 {values['AP50']:.4f}"
                           for split, values in metrics.items())
        waits = "" if spec.name in published else f"; waits for the rest of seed {spec.seed}"
        log(f"[{done_count}/{total}] {spec.name}: done in {format_seconds(completion.elapsed)} ({scores}){waits}; "
            f"elapsed {format_seconds(clock() - started)}{eta}; still running: {still}")

    results = {spec.name: written.get(spec.name) or status.done.get(spec.name) for spec in plan.runs}
    waiting = [spec.name for spec in plan.runs if results[spec.name] is not None and not spec.result_path.exists()]
    if waiting:
        log(f"benchmark: {len(waiting)} finished run(s) wait for the rest of their seed in "
            f"{plan.out / 'results' / 'waiting'}: {', '.join(waiting)}; run the same command again to finish them")
    return Outcome({name: result for name, result in results.items() if result is not None and name not in waiting},
                   list(written), list(status.done), failed, waiting)


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

