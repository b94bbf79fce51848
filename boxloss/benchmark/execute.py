"""How a benchmark's runs are executed, and running a plan from the library.

:func:`make_engine` turns a plan's :class:`~boxloss.benchmark.plan.Execution` (the checked, frozen execution keys)
into an engine of :mod:`.matrix` (one run at a time, ``jobs`` at once on this machine, or Ray), and :func:`run_plan`
runs a whole plan as ``scripts/benchmark.py`` does -- refuse results made with other settings, connect the engine,
start CUDA MPS if asked, run the matrix under the real runner and write the summary -- so a script can run a matrix
without the command line.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

from ..stats import report_folder
from . import cuda_mps, matrix, results
from .plan import Execution, Plan
from .runner import SubprocessRunner


def make_engine(execution: Execution, device: Any = None):
    """The engine of ``execution``: one run at a time, ``jobs`` at once on this machine (``device`` shared
    round-robin, CPU threads split), or Ray (connected: an unreachable cluster is a ConfigError)."""
    if execution.engine == "ray":
        from .ray_engine import RayEngine

        engine = RayEngine(execution.address, execution.num_cpus, execution.num_gpus)
        engine.connect()
        return engine
    if execution.jobs == 1:
        return matrix.SerialEngine()
    return matrix.LocalEngine(matrix.local_slots(execution.jobs, device))


def run_plan(plan: Plan, log: Callable[[str], None] = print, runner=None):
    """Run every pending run of ``plan`` and write its summary: :class:`~boxloss.benchmark.matrix.Outcome`.

    ``runner`` defaults to the real one (train and evaluate in child processes). Results made with other settings
    are refused (ConfigError) before anything runs; an interrupt propagates (KeyboardInterrupt) with every finished
    result kept.
    """
    status = results.check_existing(plan)
    engine = make_engine(plan.execution, plan.runs[0].settings.get("device") if plan.runs else None)
    log(f"benchmark: {len(plan.cfgs)} configs x {len(plan.seeds)} seeds into {plan.out}")
    daemon = cuda_mps.daemon(log=log) if plan.execution.cuda_mps else contextlib.nullcontext()
    with matrix.sigterm_as_interrupt(), daemon:
        outcome = matrix.run_matrix(plan, runner or SubprocessRunner(log=log), engine=engine, log=log, status=status)
    if outcome.results:
        report_folder.write_summary(plan.out, list(outcome.results.values()), plan.baseline, plan.cfgs, log=log)
    return outcome
