"""Ray as the benchmark's distributed engine (``engine=ray``): every (config, seed) run is one Ray task.

Each task asks for ``num_cpus`` and ``num_gpus`` (fractional GPUs allowed, e.g. 0.25: four runs share a GPU), runs
the same runner as the local engines (training and evaluation in child processes, on the node Ray chose) and
returns the metrics to the driver, which writes the result file: resume, skip and mismatch rules are the local
ones. The dataset, the configs and the ``out`` folder must be at the same paths on every node (shared storage);
logs and run folders are written there by the worker. Without ``address``, ``ray.init()`` starts a local cluster.

Cluster recipe: ``ray start --head --port=6379`` on one node, ``ray start --address=<head>:6379`` on the others,
then ``python scripts/benchmark.py ... engine=ray address=<head>:6379 num_gpus=0.25`` on any of them. Ray is an
optional dependency: ``pip install -e .[ray]``. Nothing here schedules anything itself: Ray places the tasks. A
task runs on one node, so ``num_cpus``/``num_gpus`` above what the cluster's largest node has is refused at once
(Ray would wait forever for such a node; a cluster with an autoscaler that would add one is not supported).
"""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Any, Callable, Iterator, Sequence

from ..errors import ConfigError
from .matrix import Completion, Slot
from .plan import RunSpec
from .results import RunFailed, machine_info, versions

CONNECT_TIMEOUT_S = 5.0


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("engine=ray needs Ray, an optional dependency: pip install -e .[ray]") from None
    return ray


def check_reachable(address: str) -> None:
    """A ``host:port`` (or ``ray://host:port``) address must accept a TCP connection: Ray itself would wait for
    minutes on an address nobody answers."""
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"address={address!r} must be host:port (or ray://host:port, or auto)")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as error:
        raise ConfigError(f"address={address!r}: cannot reach a Ray cluster there ({error.strerror or error}); "
                          "start one with `ray start --head`, or leave address= out for a local cluster") from None


def node_resources(ray) -> list[dict[str, float]]:
    """``{"CPU": n, "GPU": m}`` of every living node of the connected cluster."""
    return [{kind: float((node.get("Resources") or {}).get(kind, 0)) for kind in ("CPU", "GPU")}
            for node in ray.nodes() if node.get("Alive")]


def check_fits(num_cpus: float, num_gpus: float, nodes: Sequence[dict[str, float]]) -> None:
    """ConfigError unless one node has both ``num_cpus`` CPUs and ``num_gpus`` GPUs: a task is placed on one node,
    and Ray would keep a task no node can hold pending forever (this cluster does not grow by itself)."""
    if any(node["CPU"] >= num_cpus and node["GPU"] >= num_gpus for node in nodes):
        return
    largest = ", ".join(f"{node['CPU']:g} CPU + {node['GPU']:g} GPU" for node in
                        sorted(nodes, key=lambda n: (n["GPU"], n["CPU"]), reverse=True)[:3]) or "no living node"
    raise ConfigError(f"num_cpus={num_cpus:g} num_gpus={num_gpus:g}: no node of the Ray cluster has that much (its "
                      f"largest: {largest}); a run would wait forever. Ask for at most one node's resources")


def cluster_concurrency(num_cpus: float, num_gpus: float, nodes: Sequence[dict[str, float]]) -> int:
    """How many runs of ``num_cpus`` CPUs and ``num_gpus`` GPUs the ``nodes`` hold at once: on each node the smaller
    of ``floor(CPU / num_cpus)`` and ``floor(GPU / num_gpus)`` (no GPU bound for runs that ask none), summed over the
    nodes; at least 1. Ray places each task on one node, so a node's spare fraction helps no other node."""
    total = 0
    for node in nodes:
        fits = math.floor(node["CPU"] / num_cpus + 1e-9)
        if num_gpus > 0:
            fits = min(fits, math.floor(node["GPU"] / num_gpus + 1e-9))
        total += fits
    return max(1, total)


def _local_gpus() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _run_remote(runner: Callable, spec: RunSpec, slot: Slot) -> tuple[Any, float, dict[str, Any]]:
    """On the node Ray chose: the run's metrics, its duration, and that node's machine and versions (the record's,
    so a paired comparison sees where each run trained)."""
    started = time.monotonic()
    metrics = runner(spec, slot)
    return metrics, time.monotonic() - started, {"machine": machine_info(), "versions": versions()}


class RayEngine:
    """Runs as Ray tasks of ``num_cpus`` CPUs and ``num_gpus`` GPUs each; ``concurrency`` is how many of them the
    cluster holds at once (:func:`cluster_concurrency`), known once connected (1 before)."""

    def __init__(self, address: str | None = None, num_cpus: float = 1.0, num_gpus: float = 0.0):
        self.ray = _import_ray()
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        where = f"the Ray cluster at {address}" if address else "a local Ray cluster"
        self.description = f"{where} ({num_cpus:g} CPU, {num_gpus:g} GPU per run)"
        self.slot = Slot(0, "0" if num_gpus > 0 else "cpu", max(1, int(num_cpus)))
        self.concurrency = 1

    def connect(self) -> None:
        """Join (or start) the cluster; an unreachable address is a ConfigError, before anything is written."""
        if self.address:
            check_reachable(self.address)
        elif not self.ray.is_initialized():  # the local cluster will be this machine: refuse before starting it
            check_fits(self.num_cpus, self.num_gpus, [{"CPU": float(os.cpu_count() or 1), "GPU": float(_local_gpus())}])
        if not self.ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline tool: no cloud-metadata probes, no report
            self.ray.init(address=self.address or None, include_dashboard=False, log_to_driver=True,
                          num_cpus=None if self.address else os.cpu_count(), ignore_reinit_error=True,
                          logging_level="WARNING")
        gpus = self.ray.cluster_resources().get("GPU", 0)
        if self.num_gpus > 0 and gpus == 0:
            raise ConfigError(f"num_gpus={self.num_gpus:g}: the Ray cluster has no GPU")
        nodes = node_resources(self.ray)
        check_fits(self.num_cpus, self.num_gpus, nodes)
        self.concurrency = cluster_concurrency(self.num_cpus, self.num_gpus, nodes)

    def run(self, specs: Sequence[RunSpec], runner: Callable, on_start: Callable[[RunSpec, Slot], None],
            clock: Callable[[], float] = time.monotonic) -> Iterator[Completion]:
        ray = self.ray
        self.connect()
        task = ray.remote(num_cpus=self.num_cpus, num_gpus=self.num_gpus, max_retries=0)(_run_remote)
        pending = {}
        for spec in specs:
            on_start(spec, self.slot)  # submitted: Ray starts it as soon as the resources are free
            pending[task.remote(runner, spec, self.slot)] = spec
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    spec = pending.pop(ref)
                    try:
                        metrics, elapsed, environment = ray.get(ref)
                    except ray.exceptions.TaskCancelledError as error:  # a child stopped by a signal, in the task
                        raise KeyboardInterrupt(f"{spec.name}: {error}") from None
                    except ray.exceptions.RayTaskError as error:
                        cause = getattr(error, "cause", None)
                        if isinstance(cause, RunFailed):
                            yield Completion(spec, error=str(cause))
                            continue
                        if isinstance(cause, (KeyboardInterrupt, ray.exceptions.TaskCancelledError)):
                            raise KeyboardInterrupt(f"{spec.name}: {cause}") from None
                        raise
                    yield Completion(spec, metrics, elapsed=elapsed, environment=environment)
        finally:
            for ref in pending:  # interrupted: the runs still going stop (their children die with them)
                ray.cancel(ref, force=True)
