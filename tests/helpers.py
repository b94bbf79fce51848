"""What the tests share besides fixtures: the repository's places, a batch as the criterion reads it, the commands
run in this process or in an offline subprocess, and :func:`assert_refused`, the one harness of every refusal test.

Fixtures and the test environment (offline, private ultralytics settings and dataset cache) are tests/conftest.py's;
what the project's own benchmarks reuse lives in :mod:`boxloss.testing` (a seeded model, random boxes, random
detections).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OFFLINE_GUARD = Path(__file__).resolve().parent / "offline_guard"
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


def _load_network_guard():
    """tests/offline_guard/sitecustomize.py as a module of this process (its subprocesses load it as sitecustomize)."""
    name = "boxloss_offline_guard"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, OFFLINE_GUARD / "sitecustomize.py")
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


NETWORK_GUARD = _load_network_guard()  # installed for this process by conftest.py; ATTEMPTS lists what it blocked


def network_attempts_since(count: int) -> list[str]:
    """The network attempts this process made after the first ``count`` (each with its stack); taken off the list,
    so the one who asks reports them and the per-test check does not report them again."""
    attempts = NETWORK_GUARD.ATTEMPTS[count:]
    del NETWORK_GUARD.ATTEMPTS[count:]
    return attempts


def training_batch(data_yaml: Path, imgsz: int, images: int = 4, task: str = "detect") -> dict:
    """The first ``images`` training images of ``data_yaml`` at ``imgsz``, through ultralytics' own dataset and
    collate for ``task`` (masks for segment, keypoints for pose, rotated boxes for obb; no mosaic, no flip), as the
    float batch a criterion reads."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "mosaic": 0.0, "fliplr": 0.0, "task": task})
    data = check_det_dataset(str(data_yaml))
    dataset = build_yolo_dataset(cfg, data["train"], images, data, mode="val", stride=32)
    batch = dataset.collate_fn([dataset[i] for i in range(images)])
    batch["img"] = batch["img"].float() / 255
    return batch


def loss_and_grads(model, criterion, batch):
    """One forward and backward of ``criterion`` on ``batch``: the loss, its items and every parameter gradient."""
    model.zero_grad()
    loss, items = criterion(model(batch["img"]), batch)
    loss.sum().backward()
    return loss.detach(), items, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def fresh_interpreter_imports(statement: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a new Python process has loaded after running ``statement``."""
    code = (f"import json, sys; {statement}; "
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r})))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def pickled_boxloss_modules(checkpoint: Path) -> set[str]:
    """The boxloss modules whose classes a checkpoint's pickle names (module paths, recorded while it loads).

    A checkpoint refers to the model, head and options classes by module path, so a checkpoint written today loads
    only while those modules keep their names (or leave an alias where they were).
    """
    import pickle
    import types

    import torch

    found: set[str] = set()

    class Recording(pickle.Unpickler):
        def find_class(self, module, name):
            if module.split(".")[0] == "boxloss":
                found.add(module)
            return super().find_class(module, name)

    recording = types.ModuleType("recording_pickle")
    recording.__dict__.update(vars(pickle))
    recording.Unpickler = Recording
    torch.load(checkpoint, map_location="cpu", weights_only=False, pickle_module=recording)
    return found


def assert_same_top_k(onnx_rows, torch_rows, min_rows: int = 50) -> None:
    """An end-to-end head's (max_det, 6 + extra) output from two runtimes: the same scores (its top-k) within 1e-4,
    and every row safely inside the top-k (no near-tie at the cut could swap it out) found in the other runtime with
    the same box, score, class and extra columns (a near-tie may order rows differently)."""
    import torch

    onnx_rows, torch_rows = torch.as_tensor(onnx_rows), torch.as_tensor(torch_rows)
    assert onnx_rows.shape == torch_rows.shape
    torch.testing.assert_close(onnx_rows[:, 4].sort().values, torch_rows[:, 4].sort().values, rtol=0, atol=1e-4)
    inside = torch_rows[torch_rows[:, 4] > torch_rows[:, 4].min() + 1e-4]
    assert len(inside) >= min_rows
    for row in inside:
        distance = (onnx_rows[:, :4] - row[:4]).abs().sum(1) + 1e3 * (onnx_rows[:, 5] != row[5])
        torch.testing.assert_close(onnx_rows[distance.argmin()], row, rtol=0, atol=1e-3)


def snapshot(*folders: Path) -> dict[str, int | None]:
    """Every path below ``folders``, with each file's modification time (folders: None): equal before and after a
    command means it created nothing and rewrote nothing there (a dangling symlink: the link's own time)."""
    def modified(path: Path) -> int:
        try:
            return path.stat().st_mtime_ns
        except FileNotFoundError:
            return path.lstat().st_mtime_ns

    return {str(p): None if p.is_dir() else modified(p) for folder in folders if folder.exists()
            for p in folder.rglob("*")}


# ------------------------------------------------------------------------------------------------------- commands
def offline_env(network_log: Path) -> dict:
    """Environment for a subprocess that records (and refuses) every network attempt into ``network_log``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(OFFLINE_GUARD), str(REPO), env.get("PYTHONPATH", "")])
    env["BOXLOSS_NETWORK_LOG"] = str(network_log)
    return env


def run_entry(script: str, args: list, cwd: Path, network_log: Path, timeout: int = 600):
    """A repository script (``"train.py"``, ``"scripts/benchmark.py"``) as its real command line, in an offline
    subprocess (:func:`offline_env`) in ``cwd``: the finished process (returncode, stdout, stderr)."""
    return subprocess.run([sys.executable, str(REPO / script), *map(str, args)], cwd=cwd,
                          env=offline_env(network_log), capture_output=True, text=True, timeout=timeout)


# A plain interpreter's warning filters (Python 3.11, no -W): how a command's warnings reach its stderr.
PYTHON_WARNING_FILTERS = [("default", DeprecationWarning, "__main__"), ("ignore", DeprecationWarning, ""),
                          ("ignore", PendingDeprecationWarning, ""), ("ignore", ImportWarning, ""),
                          ("ignore", ResourceWarning, "")]


@contextlib.contextmanager
def _terminal(out, err):
    """``sys.stdout``/``sys.stderr`` into ``out``/``err``, with every logging handler that writes to them
    (ultralytics' LOGGER keeps the stream it was made with) and Python's warnings, under a plain interpreter's
    filters (pytest would record them instead): what a command's terminal would show."""
    import logging
    import warnings

    streams = {id(sys.stdout): out, id(sys.__stdout__): out, id(sys.stderr): err, id(sys.__stderr__): err}
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    handlers = {handler for logger in loggers for handler in logger.handlers
                if type(handler) is logging.StreamHandler and id(handler.stream) in streams}
    streams_before = {handler: handler.setStream(streams[id(handler.stream)]) for handler in handlers}
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
                warnings.catch_warnings(record=True) as caught:
            warnings.resetwarnings()
            for action, category, module in reversed(PYTHON_WARNING_FILTERS):
                warnings.filterwarnings(action, category=category, module=module)
            try:
                yield
            finally:
                for warning in caught:
                    err.write(warnings.formatwarning(warning.message, warning.category, warning.filename,
                                                     warning.lineno, warning.line))
    finally:
        for handler, stream in streams_before.items():
            handler.setStream(stream)


def _exit_status(exit_: SystemExit, err) -> int:
    """The status a process leaving with ``exit_`` has (``sys.exit("text")`` prints the text and is 1)."""
    if exit_.code is None or isinstance(exit_.code, int):
        return exit_.code or 0
    print(exit_.code, file=err)
    return 1


class CommandTimeout(BaseException):
    """A command run in this process ran past its time (a BaseException: no ``except Exception`` of the command
    takes it for a failure of its own)."""


def run_in_process(command: str, args: list = (), cwd: Path | None = None,
                   timeout: float | None = None) -> subprocess.CompletedProcess:
    """``command`` run in this process as its command line would run it, in ``cwd``: a repository script
    (``"val.py"``, ``"scripts/rescore.py"``) executed as ``__main__`` with ``sys.argv`` (its folder first on
    ``sys.path``), or a module's ``main(args)`` (``"boxloss.cli.val"``; a package's: its ``__main__``'s). Returns
    its exit status, stdout and stderr (ultralytics' log and Python's warnings included, as a terminal would get
    them; :func:`_terminal`) as :func:`run_entry` does, without the seconds a new interpreter takes to import torch
    and ultralytics.

    The process is left as it was found: working directory, ``sys.argv``, ``sys.path``, the environment, torch's
    thread count and the SIGINT/SIGTERM handlers. It runs offline: a network attempt (blocked by the guard conftest
    installs for the test process) fails the call, with the stack that made it. ``timeout``: seconds until
    :class:`CommandTimeout` is raised in it (SIGALRM interrupts a blocking read too, such as the open of a FIFO).
    """
    import io
    import runpy
    import signal

    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    saved_argv, saved_path, saved_environ = sys.argv[:], sys.path[:], dict(os.environ)
    saved_signals = {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    torch_threads = sys.modules["torch"].get_num_threads() if "torch" in sys.modules else None
    attempts = len(NETWORK_GUARD.ATTEMPTS)

    def time_is_up(signum, frame):
        raise CommandTimeout(f"{command} {' '.join(argv)} ran past {timeout} s")

    saved_alarm = signal.signal(signal.SIGALRM, time_is_up)
    signal.setitimer(signal.ITIMER_REAL, timeout or 0)
    try:
        with contextlib.chdir(cwd or os.getcwd()), _terminal(out, err):
            try:
                if command.endswith(".py"):
                    script = REPO / command
                    sys.argv = [str(script), *argv]
                    sys.path.insert(0, str(script.parent))
                    runpy.run_path(str(script), run_name="__main__")
                    status = 0
                else:
                    module = importlib.import_module(command)
                    if not hasattr(module, "main"):  # a package: python -m runs its __main__
                        module = importlib.import_module(f"{command}.__main__")
                    status = module.main(argv)
            except SystemExit as exit_:
                status = _exit_status(exit_, err)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved_alarm)
        sys.argv[:], sys.path[:] = saved_argv, saved_path
        if os.environ != saved_environ:
            os.environ.clear()
            os.environ.update(saved_environ)
        for number, handler in saved_signals.items():
            signal.signal(number, handler)
        if torch_threads is not None:
            sys.modules["torch"].set_num_threads(torch_threads)
        network = network_attempts_since(attempts)
    assert not network, f"{command} tried to reach the network:\n" + "\n".join(network)
    return subprocess.CompletedProcess([command, *argv], status, out.getvalue(), err.getvalue())


def command_name(command: str) -> str:
    """The name a command's messages begin with: a script's file name, a module's (or its package's ``__main__``'s)
    ``PROG``."""
    if command.endswith(".py"):
        return Path(command).name
    module = importlib.import_module(command)
    return module.PROG if hasattr(module, "PROG") else importlib.import_module(f"{command}.__main__").PROG


def assert_refused(command: str | list, args: list = (), message: str = "", *, cwd: Path, watched: tuple = (),
                   prog: str | None = None, exact: bool = False, quiet: bool = False, in_subprocess: bool = False,
                   env: dict | None = None, timeout: int = 300) -> str:
    """Run ``command`` on bad input and check the contract of every entry point: exit status 2, exactly one stderr
    line ``<prog>: error: ...`` holding ``message`` (being ``<prog>: error: <message>`` with ``exact``), nothing new
    or rewritten under ``cwd``, ultralytics' runs_dir or the ``watched`` folders (:func:`snapshot`), stdout empty
    with ``quiet``, and no network attempt. Returns the error line.

    ``command``: a repository script (``"val.py"``, ``"scripts/convert.py"``, ``prog`` its file name) or a module
    (``"boxloss.cli.val"``, ``prog`` its ``PROG``), run in this process (:func:`run_in_process`); with
    ``in_subprocess``, as its real command line (``python val.py``, ``python -m module``) in an offline subprocess
    (:func:`offline_env`, or the whole environment ``env``) -- one such refusal per entry point
    keeps the interpreter's own path tested (tests/test_cli.py). A list (``["bash", script]``,
    ``[sys.executable, "-c", code]``) is always a subprocess, named by ``prog``. Either way it may take ``timeout``
    seconds.
    """
    from ultralytics.utils import SETTINGS

    folders = (Path(cwd), Path(SETTINGS["runs_dir"]), *map(Path, watched))
    before = snapshot(*folders)
    if isinstance(command, str) and not in_subprocess:
        assert env is None, "env= is a subprocess's environment: add in_subprocess=True"
        prog = prog or command_name(command)
        result = run_in_process(command, args, cwd, timeout)  # offline, or it fails here
    else:
        if isinstance(command, str):
            prog = prog or command_name(command)
            command = [sys.executable, str(REPO / command)] if command.endswith(".py") else \
                [sys.executable, "-m", command]
        assert prog, "name the command: prog="
        with tempfile.TemporaryDirectory(prefix="boxloss-network-") as folder:
            network_log = Path(folder) / "network.log"
            result = subprocess.run([*map(str, command), *map(str, args)], cwd=cwd, env=env or offline_env(network_log),
                                    capture_output=True, text=True, timeout=timeout)
            network = network_log.read_text() if network_log.exists() else ""
        assert not network, network
    status, stdout, stderr = result.returncode, result.stdout, result.stderr
    lines = stderr.splitlines()
    assert status == 2, f"exit status {status}\n{stdout[-2000:]}\n{stderr[-3000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr[-3000:]
    assert (lines[0] == f"{prog}: error: {message}") if exact else (message in lines[0]), lines[0]
    assert not quiet or stdout == "", stdout[-2000:]
    after = snapshot(*folders)
    written = sorted(path for path in {*after, *before} if after.get(path, "-") != before.get(path, "-"))
    assert not written, f"written: {written[:5]}"
    return lines[0]
