"""CUDA MPS for many small runs on one GPU (``benchmark.py ... jobs=N cuda_mps=true``).

MPS here is CUDA's Multi-Process Service, not ``device=mps`` (Apple's Metal, a device of its own).

Without MPS, the CUDA driver time-slices the GPU between processes: one process's kernels run at a time, and the
small kernels of a YOLOv8n at 320 px leave most of an H200 idle while the others wait. The Multi-Process Service
(NVIDIA's ``nvidia-cuda-mps-control`` daemon) runs the kernels of all client processes concurrently. Measured on
one H200 with the BCCD protocol (results/bccd_h200/README.md): 10 runs at once took 245 s a wave by time-slicing
and 137 s under MPS, 147 against 263 runs per hour (1.79x), with identical settings.

With ``cuda_mps=true`` the benchmark starts a control daemon of its own (pipe and log folders in a private temporary
folder), its child runs connect to it through ``CUDA_MPS_PIPE_DIRECTORY`` / ``CUDA_MPS_LOG_DIRECTORY``, and it is
shut down (``quit``) when the matrix ends, also after an interrupt. When ``CUDA_MPS_PIPE_DIRECTORY`` is already set,
that daemon (the user's or the cluster's) is used and left running. MPS is per machine: with ``engine=ray`` each
node's daemon is the cluster's business, so ``cuda_mps=true`` is refused there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from typing import Callable, Iterator

from ..devices import CUDA, parse_device
from ..errors import ConfigError

CONTROL = "nvidia-cuda-mps-control"
ENVIRONMENT = ("CUDA_MPS_PIPE_DIRECTORY", "CUDA_MPS_LOG_DIRECTORY")


def check_available(device: object) -> None:
    """ConfigError unless MPS can serve this benchmark: a CUDA device and the control binary on PATH."""
    parsed = parse_device(device)
    if parsed.kind != CUDA or min(parsed.indices) < 0:
        raise ConfigError(f"cuda_mps=true shares CUDA GPUs between runs: give device=0 (or 0,1), not device={device!r}")
    if shutil.which(CONTROL) is None:
        raise ConfigError(f"cuda_mps=true needs CUDA MPS: {CONTROL} is not on PATH (it comes with the NVIDIA driver)")


@contextlib.contextmanager
def daemon(log: Callable[[str], None] = print) -> Iterator[dict[str, str]]:
    """A running MPS control daemon for the block: ``{variable: value}`` the child runs need (also set in this
    process's environment for the block, so every child inherits it)."""
    if os.environ.get("CUDA_MPS_PIPE_DIRECTORY"):
        log(f"benchmark: using the MPS daemon at CUDA_MPS_PIPE_DIRECTORY={os.environ['CUDA_MPS_PIPE_DIRECTORY']}")
        yield {name: os.environ[name] for name in ENVIRONMENT if name in os.environ}
        return
    folder = tempfile.mkdtemp(prefix="boxloss-mps-")
    values = {"CUDA_MPS_PIPE_DIRECTORY": os.path.join(folder, "pipe"),
              "CUDA_MPS_LOG_DIRECTORY": os.path.join(folder, "log")}
    for path in values.values():
        os.makedirs(path)
    environment = {**os.environ, **values}
    started = subprocess.run([CONTROL, "-d"], env=environment, capture_output=True, text=True, timeout=30)
    if started.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        failure = (started.stderr or started.stdout).strip() or started.returncode
        raise ConfigError(f"cuda_mps=true: {CONTROL} -d failed ({failure})")
    log(f"benchmark: started an MPS control daemon ({values['CUDA_MPS_PIPE_DIRECTORY']})")
    previous = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield values
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run([CONTROL], input="quit\n", env=environment, capture_output=True, text=True, timeout=30)
        log("benchmark: MPS control daemon stopped")
        shutil.rmtree(folder, ignore_errors=True)
