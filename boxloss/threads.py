"""The CPU threads of one run: how the benchmark's parallel jobs share a machine's cores.

The benchmark (:mod:`boxloss.benchmark.runner`) sets :data:`THREADS_ENV` for each child run to its share of the
cores; the child (importing :mod:`boxloss.yolo`) applies it with :func:`limit_threads` before ultralytics picks its
own count.
"""

from __future__ import annotations

import os

THREADS_ENV = "BOXLOSS_THREADS"


def limit_threads() -> None:
    """``BOXLOSS_THREADS=n``: n torch threads, and ultralytics' own count (``select_device`` resets torch's threads
    to it for CPU runs) set to n as well, so that parallel benchmark runs share the cores instead of fighting."""
    value = os.environ.get(THREADS_ENV, "")
    if not value.isdigit() or int(value) < 1:
        return
    import torch
    from ultralytics.utils import torch_utils

    torch_utils.NUM_THREADS = int(value)
    torch.set_num_threads(int(value))
