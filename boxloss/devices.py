"""Device strings, read in one place: every command's ``device=``, the benchmark's GPU sharing and CUDA MPS.

The grammar is ultralytics' (``select_device``), which torch's device names also fit:

- ``cpu``; ``mps`` (Apple's Metal, not CUDA's Multi-Process Service, which is the benchmark's ``cuda_mps=``);
- CUDA: indices ``0`` or ``0,1`` (also written ``cuda`` for 0, ``cuda:1``, ``[0, 1]``); ``-1`` lets ultralytics
  pick an idle GPU;
- empty or None: the default (ultralytics' first GPU if there is one, else the CPU).

:func:`parse_device` reads a string (a ConfigError names anything else); :func:`check_device` also checks that the
device is on this machine, before anything runs. Pure Python: torch is imported only to count devices.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ConfigError

CPU, MPS, CUDA, DEFAULT = "cpu", "mps", "cuda", "default"
_STRIPPED = ("cuda:", "(", ")", "[", "]", "'", " ")  # ultralytics' spellings of index lists: cuda:0, [0, 1], (0,1)


@dataclass(frozen=True)
class Device:
    """A parsed device request: ``kind`` (cpu, mps, cuda or default) and, for CUDA, its ``indices`` (-1: an idle
    GPU, ultralytics' choice); ``text`` as given."""

    text: str
    kind: str
    indices: tuple[int, ...] = ()

    @property
    def is_default(self) -> bool:
        return self.kind == DEFAULT

    def torch_name(self) -> str:
        """The one torch device this names (``cpu``, ``mps``, ``cuda:1``); ConfigError for several GPUs, an idle
        one to pick, or the default."""
        if self.kind in (CPU, MPS):
            return self.kind
        if self.kind == CUDA and len(self.indices) == 1 and self.indices[0] >= 0:
            return f"cuda:{self.indices[0]}"
        raise ConfigError(f"device={self.text!r} is not one device: give cpu, mps, cuda or cuda:<index>")


def parse_device(device: Any, key: str = "device") -> Device:
    """``device`` read by ultralytics' rules (see the module); ConfigError naming ``key`` when it is no device."""
    if device is None or (isinstance(device, str) and device.strip().lower() in ("", "none")):
        return Device("" if device is None else device, DEFAULT)
    text = str(device)
    if isinstance(device, bool):
        raise ConfigError(f"{key}={device!r} is not a device: use cpu, mps or CUDA indices such as 0 or 0,1")
    lowered = text.strip().lower()
    if lowered in (CPU, MPS, "mps:0"):
        return Device(text, lowered[:3])
    for piece in _STRIPPED:
        lowered = lowered.replace(piece, "")
    parts = [part for part in ("0" if lowered == CUDA else lowered).split(",") if part]
    if not parts or not all(part.isdigit() or part == "-1" for part in parts):
        raise ConfigError(f"{key}={device!r} is not a device: use cpu, mps or CUDA indices such as 0 or 0,1")
    return Device(text, CUDA, tuple(int(part) for part in parts))


def cuda_count() -> int:
    """The CUDA devices torch sees here (0 without CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def check_device(device: Any, key: str = "device") -> Device:
    """:func:`parse_device`, and the device present on this machine (the CUDA indices below its count, MPS
    available); ConfigError naming ``key`` otherwise."""
    parsed = parse_device(device, key)
    if parsed.kind == MPS:
        import torch

        if not torch.backends.mps.is_available():
            raise ConfigError(f"{key}={device!r}: no MPS device here; use {key}=cpu")
    elif parsed.kind == CUDA:
        available = cuda_count()
        if available == 0:
            raise ConfigError(f"{key}={device!r}: no CUDA device here; use {key}=cpu")
        if any(index >= available for index in parsed.indices):
            raise ConfigError(f"{key}={device!r}: this machine has {available} CUDA device(s) (0-{available - 1})")
    return parsed
