"""The real benchmark runner: train with ``python -m boxloss.cli.train`` and evaluate each split with
``python -m boxloss.cli.val``, each in a child process, logs teed, one progress line per epoch."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from ..threads import THREADS_ENV
from .plan import RunSpec
from .results import RunFailed

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


def _die_with_parent() -> None:
    """In the child, before exec (Linux): SIGTERM when the parent dies, so a killed benchmark (or a cancelled Ray
    task) never leaves a training running."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


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
    """Train with ``boxloss.cli.train`` and evaluate each split with ``boxloss.cli.val``, each in a subprocess.

    A partial earlier attempt is deleted first (the run restarts from scratch). The children's output goes whole to
    ``logs/<run>.log``; one line per epoch, and each split's AP, go to ``log``. A child that fails raises
    :class:`RunFailed` with its last output line; a child killed by SIGINT/SIGTERM, or an interrupt of this process
    (the child is then terminated), raises KeyboardInterrupt. A ``slot`` sets the children's device and CPU threads
    (``BOXLOSS_THREADS``, which ultralytics' own thread count yields to); :meth:`stop_all` terminates every child
    still running (the parallel engines call it on an interrupt), and a child dies with this process in any case.
    """

    train_command: tuple[str, ...] = (sys.executable, "-m", "boxloss.cli.train")  # argv before the run's keys
    val_command: tuple[str, ...] = (sys.executable, "-m", "boxloss.cli.val")
    log: Callable[[str], None] = print
    tail_lines: int = 15
    _children: set = field(default_factory=set, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __getstate__(self):  # picklable (a Ray task carries it): no live children, no lock
        state = dict(self.__dict__)
        state.pop("_children", None)
        state.pop("_lock", None)
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self._children, self._lock = set(), threading.Lock()

    def stop_all(self) -> None:
        with self._lock:
            children = list(self._children)
        for process in children:
            _stop(process)

    def __call__(self, spec: RunSpec, slot=None) -> dict[str, dict[str, Any]]:
        """``{split: metrics.json content, plus its tide.json under "tide"}`` (see :func:`.results.tide_by_split`);
        a segmentation or pose model's metrics.json holds its mask or keypoint metrics under ``"mask"`` / ``"pose"``
        (see :func:`.results.families_by_split`)."""
        device = getattr(slot, "device", None)
        extra = [f"device={device}"] if device is not None else []
        env = {THREADS_ENV: str(slot.threads)} if getattr(slot, "threads", None) else {}
        for folder in (spec.train_dir, *(spec.val_dir(split) for split in spec.splits)):
            if folder.exists():
                shutil.rmtree(folder)
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "wb") as log_file:
            progress = EpochProgress(lambda line: self.log(f"    {spec.name} {line}"))
            self._run([*self.train_command, *spec.train_argv, *extra], log_file, progress.feed, "training", spec,
                      env)
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
                for key in ("coco_json", "nms", "nms_diou_beta"):
                    if spec.evaluation.get(key) is not None:
                        argv.append(f"{key}={spec.evaluation[key]}")
                self._run([*self.val_command, *argv, *extra], log_file, lambda line: None, f"evaluation on {split}",
                          spec, env)
                try:
                    metrics[split] = json.loads((run_dir / "metrics.json").read_text())
                except (OSError, ValueError) as error:
                    raise RunFailed(f"evaluation on {split} wrote no readable metrics.json ({error})") from None
                if (run_dir / "tide.json").exists():  # the TIDE decomposition val.py writes beside the metrics
                    try:
                        metrics[split]["tide"] = json.loads((run_dir / "tide.json").read_text())
                    except (OSError, ValueError) as error:
                        raise RunFailed(f"evaluation on {split} wrote an unreadable tide.json ({error})") from None
                families = "".join(f"; {family} AP {metrics[split][family]['AP']:.4f}" for family in ("mask", "pose")
                                   if isinstance(metrics[split].get(family), dict))
                self.log(f"    {spec.name} {split}: AP {metrics[split]['AP']:.4f}  AP50 {metrics[split]['AP50']:.4f}"
                         f"  AP75 {metrics[split]['AP75']:.4f}  AP90 {metrics[split]['AP90']:.4f} (COCO){families}")
        return metrics

    def _run(self, command: list[str], log_file, on_line: Callable[[str], None], what: str, spec: RunSpec,
             env: dict[str, str] | None = None) -> None:
        log_file.write(f"$ {shlex.join(command)}\n".encode())
        log_file.flush()
        lines = LineSplitter(on_line, keep=self.tail_lines)
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                                   preexec_fn=_die_with_parent)
        with self._lock:
            self._children.add(process)
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
            with self._lock:
                self._children.discard(process)
        lines.close()
        if returncode in (-signal.SIGINT, -signal.SIGTERM):
            raise KeyboardInterrupt(f"{what} of {spec.name} was stopped by signal {-returncode}")
        if returncode != 0:
            for line in lines.tail:
                self.log(f"    {spec.name} | {line}")
            last = lines.tail[-1] if lines.tail else "no output"
            raise RunFailed(f"{what} exited with status {returncode}: {last} (log {spec.log_path})")
