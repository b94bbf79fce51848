"""Running the benchmark matrix: every pending (config, seed) through a runner, each result written when it is done.

A runner is any callable ``runner(spec) -> {split: metrics}``: the real one trains and evaluates in child processes
(:mod:`.runner`), the tests inject fakes. An interrupt or a crash at any moment loses no finished run: each result
file is written atomically the moment its run finishes, and the interrupted run starts again next time.
"""

from __future__ import annotations

import signal
import statistics
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping

from .._io import write_json_atomic
from .plan import Plan, RunSpec
from .results import (Metrics, RunFailed, _checked_metrics, _supersede, check_existing, format_seconds, machine_info,
                      make_result, versions)

Runner = Callable[[RunSpec], Metrics]


@dataclass
class Outcome:
    results: dict[str, dict[str, Any]]  # run name -> result, every finished run of the plan, plan order
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]  # run name -> why


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

