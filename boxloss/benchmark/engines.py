"""How a benchmark's runs are executed, and running a plan from the library.

:class:`Execution` is the checked, frozen form of the execution keys (``jobs``, ``engine``, ``address``,
``num_cpus``, ``num_gpus``, ``order``, ``mps``): how the runs go, never what they compute, so it is not part of a
run's recorded settings. :func:`make_engine` turns it into an engine of :mod:`.matrix` (one run at a time, ``jobs``
at once on this machine, or Ray), and :func:`run_plan` runs a whole plan as ``scripts/benchmark.py`` does -- refuse
results made with other settings, connect the engine, start CUDA MPS if asked, run the matrix under the real runner
and write the summary -- so a script can run a matrix without the command line.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import ConfigError


@dataclass(frozen=True)
class Execution:
    """How the runs of a plan are executed (see :data:`boxloss.benchmark.plan.BENCHMARK_KEYS` for each key)."""

    jobs: int = 1
    engine: str = "local"
    address: str | None = None
    num_cpus: float = 1.0
    num_gpus: float = 0.0
    order: str = "config"
    mps: bool = False

    @classmethod
    def from_keys(cls, values: Mapping[str, Any], given: set[str]) -> "Execution":
        """The execution of validated key values (``given``: the keys the user typed); ConfigError for keys of the
        other engine. ``order`` defaults to ``seed`` when runs go in parallel (jobs > 1 or Ray), else ``config``."""
        engine = values["engine"]
        if engine == "local" and (values["address"] is not None or "num_gpus" in given):
            raise ConfigError("address= and num_gpus= are for engine=ray; on this machine use jobs= and device=")
        if engine == "ray" and "jobs" in given:
            raise ConfigError("jobs= is for engine=local; with engine=ray, Ray runs as many as num_cpus/num_gpus allow")
        if values["mps"] and engine == "ray":
            raise ConfigError("mps=true starts a daemon on this machine; with engine=ray start MPS on each node "
                              "(nvidia-cuda-mps-control -d) and leave mps= out")
        order = values["order"] or ("seed" if engine == "ray" or values["jobs"] > 1 else "config")
        return cls(values["jobs"], engine, values["address"], values["num_cpus"], values["num_gpus"], order,
                   values["mps"])


def make_engine(execution: Execution, device: Any = None):
    """The engine of ``execution``: one run at a time, ``jobs`` at once on this machine (``device`` shared
    round-robin, CPU threads split), or Ray (connected: an unreachable cluster is a ConfigError)."""
    from . import matrix

    if execution.engine == "ray":
        from .ray_engine import RayEngine

        engine = RayEngine(execution.address, execution.num_cpus, execution.num_gpus)
        engine.connect()
        return engine
    if execution.jobs == 1:
        return matrix.SerialEngine()
    return matrix.LocalEngine(matrix.local_slots(execution.jobs, device))


def run_plan(plan, log: Callable[[str], None] = print, runner=None):
    """Run every pending run of ``plan`` and write its summary: :class:`~boxloss.benchmark.matrix.Outcome`.

    ``runner`` defaults to the real one (train and evaluate in child processes). Results made with other settings
    are refused (ConfigError) before anything runs; an interrupt propagates (KeyboardInterrupt) with every finished
    result kept.
    """
    from . import matrix, mps, results, summary
    from .runner import SubprocessRunner

    results.check_existing(plan)
    engine = make_engine(plan.execution, plan.runs[0].settings.get("device") if plan.runs else None)
    log(f"benchmark: {len(plan.cfgs)} configs x {len(plan.seeds)} seeds into {plan.out}")
    daemon = mps.daemon(log=log) if plan.execution.mps else contextlib.nullcontext()
    with matrix.sigterm_as_interrupt(), daemon:
        outcome = matrix.run_matrix(plan, runner or SubprocessRunner(log=log), engine=engine, log=log)
    if outcome.results:
        summary.write_summary(plan.out, list(outcome.results.values()), plan.baseline, plan.cfgs, log=log)
    return outcome
