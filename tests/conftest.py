"""Test environment: offline, with private ultralytics settings and dataset cache, never the user's."""

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest

_SCRATCH = Path(tempfile.mkdtemp(prefix="boxloss-tests-"))
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_CONFIG_DIR"] = str(_SCRATCH / "ultralytics")  # read when ultralytics is first imported
os.environ["BOXLOSS_DATA_DIR"] = str(_SCRATCH / "datasets")
os.environ.setdefault("MPLBACKEND", "Agg")
import ultralytics.utils  # noqa: E402,F401 -- writes the private settings file now, not into a test's captured output

# ultralytics' runs_dir defaults to a folder beside the installation (a user's runs/, where their own runs write):
# private here, so a test can watch it for writes without racing the user.
ultralytics.utils.SETTINGS.update(runs_dir=str(_SCRATCH / "runs"))

REPO = Path(__file__).resolve().parents[1]
OFFLINE_GUARD = Path(__file__).resolve().parent / "offline_guard"
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def mini_data() -> Path:
    """data.yaml of the embedded dataset at smoke-test size (the `data=shapes-mini` of the configs)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-mini"))


@pytest.fixture
def resolutions(monkeypatch):
    """Every resolution of the project's options during the test: ``.resolved`` lists the Options each call of
    ``boxloss.options.from_args`` returned, ``.validated`` counts the calls of ``boxloss.options.validate`` (each
    resolution makes one; a bare check would make one more)."""
    from types import SimpleNamespace

    from boxloss import options

    calls = SimpleNamespace(resolved=[], validated=0)
    from_args, validate = options.from_args, options.validate

    def counted_from_args(args, *boxes):
        calls.resolved.append(from_args(args, *boxes))
        return calls.resolved[-1]

    def counted_validate(cfg, *boxes):
        calls.validated += 1
        return validate(cfg, *boxes)

    monkeypatch.setattr(options, "from_args", counted_from_args)
    monkeypatch.setattr(options, "validate", counted_validate)
    return calls


@pytest.fixture(scope="session")
def bccd(tmp_path_factory):
    """``(folder, report)``: BCCD converted to YOLO format (its official split) in a temporary folder; skips when
    ../shared/datasets is not on this machine."""
    from boxloss.convert import convert_voc

    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {SHARED_DATASETS} not present on this machine")
    out = tmp_path_factory.mktemp("bccd") / "bccd-yolo"
    return out, convert_voc(SHARED_DATASETS / "bccd" / "BCCD", out)


@pytest.fixture(scope="session")
def mini_seg_data() -> Path:
    """data.yaml of the embedded instance-segmentation dataset at smoke-test size (`data=shapes-seg-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-seg-mini"))


@pytest.fixture(scope="session")
def mini_pose_data() -> Path:
    """data.yaml of the embedded pose dataset at smoke-test size (`data=shapes-pose-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-pose-mini"))


@pytest.fixture(scope="session")
def mini_obb_data() -> Path:
    """data.yaml of the embedded oriented-box dataset at smoke-test size (`data=shapes-obb-mini`)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-obb-mini"))


def build_model(yaml: str = "yolov8n.yaml", cls=None, **overrides):
    """A seeded nc=5 model in training mode whose args are ultralytics' defaults plus ``overrides`` (the criterion
    reads its settings there); ``cls`` defaults to the project's model of the YAML's task (a pose model gets the
    embedded pose data's keypoint shape)."""
    import torch
    from ultralytics.cfg import get_cfg
    from ultralytics.nn.tasks import PoseModel, guess_model_task

    from boxloss.data.synthetic.annotations import KPT_SHAPE
    from boxloss.yolo.tasks import TASKS

    torch.manual_seed(0)
    cls = cls or TASKS[guess_model_task(yaml)].model
    extra = {"data_kpt_shape": tuple(KPT_SHAPE)} if issubclass(cls, PoseModel) else {}
    model = cls(yaml, nc=5, verbose=False, **extra)
    model.args = get_cfg(overrides=overrides)
    return model.train()


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


def fresh_interpreter_imports(statement: str, packages: tuple[str, ...]) -> list[str]:
    """The modules of ``packages`` that a new Python process has loaded after running ``statement``."""
    import subprocess

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


def loss_and_grads(model, criterion, batch):
    """One forward and backward of ``criterion`` on ``batch``: the loss, its items and every parameter gradient."""
    model.zero_grad()
    loss, items = criterion(model(batch["img"]), batch)
    loss.sum().backward()
    return loss.detach(), items, [p.grad.clone() for p in model.parameters() if p.grad is not None]


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


def offline_env(network_log: Path) -> dict:
    """Environment for a subprocess that records (and refuses) every network attempt into ``network_log``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(OFFLINE_GUARD), str(REPO), env.get("PYTHONPATH", "")])
    env["BOXLOSS_NETWORK_LOG"] = str(network_log)
    return env


def run_entry(script: str, args: list, cwd: Path, network_log: Path, timeout: int = 600):
    import subprocess

    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd, env=offline_env(network_log),
                          capture_output=True, text=True, timeout=timeout)


def assert_refused(command: str | list, args: list = (), message: str = "", *, cwd: Path, watched: tuple = (),
                   prog: str | None = None, exact: bool = False, quiet: bool = False, env: dict | None = None,
                   timeout: int = 300) -> str:
    """Run ``command`` on bad input and check the contract of every entry point: exit status 2, exactly one stderr
    line ``<prog>: error: ...`` holding ``message`` (being ``<prog>: error: <message>`` with ``exact``), nothing new
    or rewritten under ``cwd``, ultralytics' runs_dir or the ``watched`` folders (:func:`snapshot`), stdout empty
    with ``quiet``, and, in a subprocess, no network attempt. Returns the error line.

    ``command``: a module (``"boxloss.cli.val"``): its ``main(args)`` in this process, in ``cwd``, ``prog`` its
    ``PROG``; a repository script (``"val.py"``, ``"scripts/convert.py"``): in an offline subprocess
    (:func:`offline_env`), ``prog`` its file name; a command (``["bash", script]``, ``[sys.executable, "-c", code]``):
    that subprocess, named by ``prog``. ``env``: a subprocess's whole environment instead of the offline one.
    """
    import contextlib
    import importlib
    import io
    import subprocess

    from ultralytics.utils import SETTINGS

    folders = (Path(cwd), Path(SETTINGS["runs_dir"]), *map(Path, watched))
    before = snapshot(*folders)
    network_log = Path(tempfile.mkdtemp(dir=_SCRATCH)) / "network.log"
    if isinstance(command, str) and not command.endswith((".py", ".sh")):
        module = importlib.import_module(command)
        prog = prog or module.PROG
        out, err = io.StringIO(), io.StringIO()
        with contextlib.chdir(cwd), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = module.main([str(arg) for arg in args])
        stdout, stderr = out.getvalue(), err.getvalue()
    else:
        if isinstance(command, str):
            prog, command = prog or Path(command).name, [sys.executable, str(REPO / command)]
        assert prog, "name the command: prog="
        result = subprocess.run([*command, *map(str, args)], cwd=cwd, env=env or offline_env(network_log),
                                capture_output=True, text=True, timeout=timeout)
        status, stdout, stderr = result.returncode, result.stdout, result.stderr
    lines = stderr.splitlines()
    assert status == 2, f"exit status {status}\n{stdout[-2000:]}\n{stderr[-3000:]}"
    assert len(lines) == 1 and lines[0].startswith(f"{prog}: error: "), stderr[-3000:]
    assert (lines[0] == f"{prog}: error: {message}") if exact else (message in lines[0]), lines[0]
    assert not quiet or stdout == "", stdout[-2000:]
    after = snapshot(*folders)
    written = sorted(path for path in {*after, *before} if after.get(path, "-") != before.get(path, "-"))
    assert not written, f"written: {written[:5]}"
    assert not network_log.exists(), network_log.read_text()
    return lines[0]
