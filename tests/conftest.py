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

REPO = Path(__file__).resolve().parents[1]
OFFLINE_GUARD = Path(__file__).resolve().parent / "offline_guard"


@pytest.fixture(scope="session")
def mini_data() -> Path:
    """data.yaml of the embedded dataset at smoke-test size (the `data=shapes-mini` of the configs)."""
    from boxloss.yolo.experiment import resolve_data

    return Path(resolve_data("shapes-mini"))


def build_model(yaml: str = "yolov8n.yaml", cls=None, **overrides):
    """A seeded nc=5 model in training mode whose args are ultralytics' defaults plus ``overrides`` (the criterion
    reads its settings there); ``cls`` defaults to the project's BoxLossDetectionModel."""
    import torch
    from ultralytics.cfg import get_cfg

    from boxloss.yolo import BoxLossDetectionModel

    torch.manual_seed(0)
    model = (cls or BoxLossDetectionModel)(yaml, nc=5, verbose=False)
    model.args = get_cfg(overrides=overrides)
    return model.train()


def training_batch(data_yaml: Path, imgsz: int, images: int = 4) -> dict:
    """The first ``images`` training images of ``data_yaml`` at ``imgsz``, through ultralytics' own dataset and
    collate (no mosaic, no flip), as the float batch a criterion reads."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    cfg = get_cfg(overrides={"imgsz": imgsz, "mosaic": 0.0, "fliplr": 0.0})
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


def loss_and_grads(model, criterion, batch):
    """One forward and backward of ``criterion`` on ``batch``: the loss, its items and every parameter gradient."""
    model.zero_grad()
    loss, items = criterion(model(batch["img"]), batch)
    loss.sum().backward()
    return loss.detach(), items, [p.grad.clone() for p in model.parameters() if p.grad is not None]


def snapshot(*folders: Path) -> dict[str, int | None]:
    """Every path below ``folders``, with each file's modification time (folders: None): equal before and after a
    command means it created nothing and rewrote nothing there."""
    return {str(p): None if p.is_dir() else p.stat().st_mtime_ns for folder in folders if folder.exists()
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
