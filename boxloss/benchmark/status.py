"""``benchmark.py status``: what a benchmark has finished, and what N more minutes of machine time would add.

GPU time often comes in short slots. Given a plan and a throughput (runs per hour, measured on the machine at the
concurrency that will be used), :func:`outlook` lists the finished runs (published, or waiting for the rest of
their seed), the pending ones in the order they start (:func:`~boxloss.benchmark.plan.start_order`), and which
runs and whole seeds ``minutes`` more would finish: ``floor(runs_per_hour · minutes / 60)`` runs, taken in start
order; :func:`measured_rate` gives the rate of the folder's own finished runs. A seed is *whole* when every config
of the plan has finished it: only whole seeds are published and paired. The estimate assumes the rate holds (runs
of one budget cost alike whatever their loss; the loss is about 3 % of a training step) and ignores the minute or
two a machine needs to start.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Any, NamedTuple

from .plan import Plan, start_order
from .results import Status, scan

# Measured (results/bccd_h200/README.md): BCCD protocol runs (YOLOv8n, 40 epochs, 320 px, batch 16) on one H200,
# 12 at once: 282 s a wave, 153 runs/h; 9 at once: 235 s, 138 runs/h.
H200_BCCD_RUNS_PER_HOUR = 153.0


@dataclass(frozen=True)
class Outlook:
    finished: list[str]  # published or waiting
    waiting: list[str]  # finished, waiting for the rest of their seed
    pending: list[str]  # in start order
    within: list[str]  # the pending runs that `minutes` would finish
    whole_seeds_now: list[int]
    whole_seeds_then: list[int]
    minutes: float
    runs_per_hour: float

    def lines(self) -> list[str]:
        def names(items: list[Any]) -> str:
            return ", ".join(map(str, items)) or "none"

        return [
            f"finished: {len(self.finished)} run(s): {names(self.finished)}",
            *([f"waiting for the rest of their seed: {names(self.waiting)}"] if self.waiting else []),
            f"whole seeds now (every config finished): {names(self.whole_seeds_now)}",
            f"to do: {len(self.pending)} run(s), in the order they start: {names(self.pending)}",
            f"{self.minutes:g} more minute(s) at {self.runs_per_hour:g} runs/h would finish {len(self.within)} "
            f"run(s): {names(self.within)}; whole seeds then: {names(self.whole_seeds_then)}",
        ]


class MeasuredRate(NamedTuple):
    runs_per_hour: float
    runs: int  # the finished runs the mean is over
    concurrency: float  # runs at once that the rate assumes


def measured_rate(plan: Plan, status: Status | None = None) -> MeasuredRate | None:
    """Runs per hour of this folder's own finished runs: ``concurrency · 3600 / mean(elapsed_s)`` over the finished
    runs of ``plan`` (each run's wall time, training and evaluation, as its record gives it); None when none has
    finished. Runs that go ``concurrency`` at once each take their own wall time, so that many finish per mean run
    time. The concurrency is the plan's ``jobs`` on this machine; under Ray, whose cluster the plan does not know,
    the mean of what the finished runs recorded (the engine's concurrency while each ran; 1 where a record has none).
    ``status``: the plan's :func:`scan`, if the caller has it."""
    finished = [result for result in (status or scan(plan)).done.values()
                if isinstance(result.get("elapsed_s"), (int, float)) and result["elapsed_s"] > 0]
    if not finished:
        return None
    if plan.execution.engine == "ray":
        concurrency = statistics.fmean(max(1, int(result.get("concurrency") or 1)) for result in finished)
    else:
        concurrency = max(1, plan.execution.jobs)
    mean_elapsed = statistics.fmean(float(result["elapsed_s"]) for result in finished)
    return MeasuredRate(concurrency * 3600.0 / mean_elapsed, len(finished), concurrency)


def outlook(plan: Plan, minutes: float, runs_per_hour: float, status: Status | None = None) -> Outlook:
    """The finished runs of ``plan`` and what ``minutes`` more at ``runs_per_hour`` would add (see the module);
    ``status``: the plan's :func:`scan`, if the caller has it."""
    if not (math.isfinite(minutes) and minutes >= 0):
        raise ValueError(f"minutes must be finite and >= 0, got {minutes}")
    if not (math.isfinite(runs_per_hour) and runs_per_hour > 0):
        raise ValueError(f"runs_per_hour must be finite and > 0, got {runs_per_hour}")
    status = status or scan(plan)
    finished = [spec.name for spec in plan.runs if spec.name in status.done]
    waiting = [spec.name for spec in plan.runs if spec.name in status.done and not spec.result_path.exists()]
    pending = [spec.name for spec in start_order(status.pending, plan.execution.order, plan.seeds)]
    within = pending[:math.floor(runs_per_hour * minutes / 60 + 1e-9)]

    def whole(done: set[str]) -> list[int]:
        return [seed for seed in plan.seeds if all(spec.name in done for spec in plan.seed_group(seed))]

    return Outlook(finished, waiting, pending, within, whole(set(finished)), whole(set(finished) | set(within)),
                   minutes, runs_per_hour)
