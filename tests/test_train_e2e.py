"""Real training runs on the embedded dataset (1 epoch, 128 px): checkpoint, metrics, the configured loss,
no network access, the DDP child script, and resume."""

import csv
from pathlib import Path

import pytest
import torch

from helpers import run_entry

TINY = ["data=shapes-mini", "epochs=1", "imgsz=128", "batch=8", "workers=0"]
LOSS_COLUMNS = {"ciou": "train/box_aspect", "eiou": "train/box_w", "focal_eiou": "train/box_w"}


def read_results(run_dir: Path) -> list[dict]:
    with open(run_dir / "results.csv") as f:
        return [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)]


@pytest.mark.slow
@pytest.mark.parametrize("cfg", ["ciou", "eiou", "focal_eiou"])
def test_train_from_config(cfg, tmp_path, mini_data):
    network_log = tmp_path / "network.log"
    plots = "plots=True" if cfg == "eiou" else "plots=False"  # one run exercises plotting offline
    result = run_entry("train.py", [f"cfg={cfg}.yaml", *TINY, plots, f"project={tmp_path}/runs"], tmp_path,
                       network_log)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "runs" / cfg
    assert (run_dir / "weights" / "best.pt").is_file()
    rows = read_results(run_dir)
    assert len(rows) == 1 and "metrics/mAP50-95(B)" in rows[0] and float(rows[0]["val/box_loss"]) > 0
    assert LOSS_COLUMNS[cfg] in rows[0] and f"val/{LOSS_COLUMNS[cfg].split('/')[1]}" in rows[0]
    assert f"boxloss: box_loss={cfg} " in result.stdout + result.stderr
    checkpoint = torch.load(run_dir / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert checkpoint["train_args"]["box_loss"] == cfg
    import yaml

    record = yaml.safe_load((run_dir / "boxloss.yaml").read_text())
    assert record["experiment"]["box_loss"] == cfg and record["train_args"]["box_loss"] == cfg
    assert not network_log.exists(), network_log.read_text()[:2000]
    if cfg == "eiou":
        assert (run_dir / "results.png").is_file()


def test_offline_guard_catches_network_access(tmp_path):
    """The guard used above does detect an attempt (so an empty log means something)."""
    import subprocess
    import sys

    from helpers import offline_env

    log = tmp_path / "network.log"
    code = ("import urllib.request\ntry:\n    urllib.request.urlopen('https://example.com', timeout=2)\n"
            "except OSError: pass")
    subprocess.run([sys.executable, "-c", code], env=offline_env(log), timeout=60, check=True)
    assert "example.com" in log.read_text()


@pytest.mark.slow
def test_ddp_child_script_trains_with_the_project_keys(tmp_path, mini_data):
    """Ultralytics' generated DDP script (cloudpickled trainer, fresh interpreter) runs with our keys.

    On CPU there is no multi-GPU launch, so the generated script is run directly: it unpickles the
    trainer class by reference, rebuilds the config from DEFAULT_CFG_DICT and trains.
    """
    from ultralytics.utils.dist import generate_ddp_file

    from boxloss.yolo import BoxLossDetectionTrainer

    trainer = BoxLossDetectionTrainer(overrides={
        "model": "yolov8n.yaml", "data": str(mini_data), "epochs": 1, "imgsz": 64, "batch": 8, "workers": 0,
        "box_loss": "eiou", "focal_eiou_gamma": 1.0, "plots": False, "project": str(tmp_path / "runs"),
        "name": "ddp", "device": "cpu"})
    trainer.model = trainer.get_model(cfg="yolov8n.yaml", verbose=False)
    script = generate_ddp_file(trainer)
    import subprocess
    import sys

    from helpers import offline_env

    network_log = tmp_path / "network.log"
    result = subprocess.run([sys.executable, script], cwd=tmp_path, env=offline_env(network_log),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "boxloss: box_loss=eiou " in result.stdout + result.stderr
    row = read_results(tmp_path / "runs" / "ddp")[0]
    assert "train/box_w" in row  # EIoU's width term: the child used the configured loss
    assert not network_log.exists()


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_resume_keeps_the_configured_loss(tmp_path, mini_data):
    """Interrupt a 2-epoch EIoU run after epoch 1, resume through train.py, finish with EIoU."""
    from boxloss.yolo import BoxLossYOLO

    def interrupt(trainer):
        raise _Interrupt

    model = BoxLossYOLO("yolov8n.yaml")
    model.add_callback("on_model_save", interrupt)
    with pytest.raises(_Interrupt):
        model.train(data=str(mini_data), epochs=2, imgsz=64, batch=8, workers=0, box_loss="eiou", plots=False,
                    project=str(tmp_path / "runs"), name="resume")
    last = tmp_path / "runs" / "resume" / "weights" / "last.pt"
    assert len(read_results(last.parents[1])) == 1

    result = run_entry("train.py", [f"resume={last}"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_results(last.parents[1])
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "train/box_w" in rows[1]
    assert torch.load(last, map_location="cpu", weights_only=False)["train_args"]["box_loss"] == "eiou"


@pytest.mark.slow
def test_train_from_a_local_stock_checkpoint(tmp_path, mini_data):
    """A user's own stock ultralytics .pt (here saved from yolov8n.yaml) starts training; nothing is downloaded,
    and with the IoU-aware head every stock layer is initialised from it."""
    from ultralytics import YOLO

    stock = YOLO("yolov8n.yaml")
    stock.save(tmp_path / "stock.pt")
    network_log = tmp_path / "network.log"
    result = run_entry("train.py", ["cfg=iou_aware.yaml", f"model={tmp_path / 'stock.pt'}", *TINY, "imgsz=64",
                                    "plots=False", f"project={tmp_path}/runs"], tmp_path, network_log)
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "Transferred" in output  # ultralytics' weight-transfer report from the local checkpoint
    assert (tmp_path / "runs" / "iou_aware" / "weights" / "best.pt").is_file()
    assert not network_log.exists()


@pytest.mark.slow
def test_a_failure_mid_checkpoint_leaves_the_previous_last_pt_intact(tmp_path, mini_data, monkeypatch):
    """The disk fills while epoch 2's checkpoint is written (half the bytes, then ENOSPC): the run stops, and
    last.pt is still epoch 1's, whole, loadable and resumable; no temporary file is left beside it."""
    import errno

    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.experiment import check_resume

    saved = {}

    def fill_the_disk_after_the_first_save(trainer):
        if "last" in saved:
            return
        saved["last"] = trainer.last.read_bytes()
        original = Path.write_bytes

        def half_then_full(path, data):
            original(path, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(path))

        monkeypatch.setattr(Path, "write_bytes", half_then_full)

    model = BoxLossYOLO("yolov8n.yaml")
    model.add_callback("on_model_save", fill_the_disk_after_the_first_save)
    with pytest.raises(OSError, match="No space left on device"):
        model.train(data=str(mini_data), epochs=2, imgsz=64, batch=8, workers=0, box_loss="eiou", plots=False,
                    project=str(tmp_path / "runs"), name="full", val=False)
    monkeypatch.undo()
    weights = tmp_path / "runs" / "full" / "weights"
    assert (weights / "last.pt").read_bytes() == saved["last"]
    assert sorted(p.name for p in weights.iterdir()) == ["best.pt", "last.pt"]
    checkpoint = check_resume(str(weights / "last.pt"))  # loads it, and it is an interrupted run: resumable
    assert checkpoint["epoch"] == 0 and checkpoint["train_args"]["box_loss"] == "eiou"


def test_the_final_optimizer_strip_is_atomic_too(tmp_path, monkeypatch):
    """ultralytics strips the optimizer from last.pt and best.pt in place at the end (torch.save onto the file);
    the trainer's strip writes a temporary file and renames it, so a failure there leaves the checkpoint whole."""
    import ultralytics.utils.torch_utils as torch_utils
    from ultralytics import YOLO

    from boxloss.yolo.trainer import _atomic_strip_optimizer

    checkpoint = tmp_path / "best.pt"
    YOLO("yolov8n.yaml").save(checkpoint)
    before = checkpoint.read_bytes()

    def save_half_then_fail(obj, f, *args, **kwargs):
        Path(f).write_bytes(before[: len(before) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch_utils.torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        _atomic_strip_optimizer(checkpoint)
    assert checkpoint.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["best.pt"]
    monkeypatch.undo()
    _atomic_strip_optimizer(checkpoint)  # and when nothing fails, it is stripped in place
    assert torch.load(checkpoint, map_location="cpu", weights_only=False)["optimizer"] is None


@pytest.mark.slow
def test_the_options_are_resolved_once_and_reach_the_criterion(tmp_path, mini_data, resolutions):
    """Through the API (BoxLossYOLO.train with flat keys) the trainer resolves the project's keys once; the model, the
    EMA copy the validator scores and the criteria of both read that object (no re-resolution on the way)."""
    from boxloss import options
    from boxloss.yolo import BoxLossYOLO

    model = BoxLossYOLO("yolov8n.yaml")
    model.train(data=str(mini_data), epochs=1, imgsz=64, batch=8, workers=0, plots=False, box_loss="eiou",
                project=str(tmp_path), name="once", verbose=False)
    trainer = model.trainer
    assert len(resolutions.resolved) == resolutions.validated == 1  # the trainer's; the criteria reuse it
    assert trainer.boxloss_options is resolutions.resolved[0] and trainer.boxloss_options.box_loss == "eiou"
    assert trainer.model.criterion.options is trainer.boxloss_options
    assert trainer.ema.ema.boxloss_options is not None and trainer.ema.ema.boxloss_options["box_loss"] == "eiou"
    with pytest.raises(AttributeError):
        trainer.boxloss_options.box_loss = "ciou"  # frozen
    assert isinstance(trainer.boxloss_options, options.Options)


@pytest.mark.slow
def test_train_py_resolves_box_loss_once_from_argv_to_the_criterion(tmp_path, mini_data, resolutions, monkeypatch):
    """python train.py cfg=eiou.yaml ...: the experiment resolves the options once and hands them to the trainer,
    which gives them to the model; the training and validation criteria and the checkpoint carry them. One
    resolution (one validation) in the whole process."""
    from boxloss.cli import train as train_cli
    from boxloss.yolo import criterion

    built = []
    run_options = criterion.run_options
    monkeypatch.setattr(criterion, "run_options",
                        lambda model, *boxes: built.append(run_options(model, *boxes)) or built[-1])
    monkeypatch.chdir(tmp_path)
    assert train_cli.main(["cfg=eiou.yaml", "data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0",
                           "plots=False", f"project={tmp_path}/runs", "focal_eiou_gamma=1"]) == 0
    assert len(resolutions.resolved) == resolutions.validated == 1
    (resolved,) = resolutions.resolved
    assert resolved["box_loss"] == "eiou" and resolved["focal_eiou_gamma"] == 1.0
    assert len(built) >= 2 and built[0] is resolved  # the training criterion reads the experiment's object itself,
    assert all(found == resolved for found in built)  # the validation criterion its EMA copy's (a deep copy)
    saved = torch.load(tmp_path / "runs" / "eiou" / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert saved["model"].boxloss_options == resolved and saved["train_args"]["box_loss"] == "eiou"


def test_the_ddp_child_reads_the_options_its_model_carries(tmp_path, mini_data, resolutions):
    """ultralytics' DDP child unpickles the trainer class, the args and the parent's model, builds a trainer from the
    args and hands it that model (utils/dist.py): the options travel with the model, so the child resolves nothing."""
    from ultralytics.utils import DEFAULT_CFG_DICT
    from ultralytics.utils.dist import generate_ddp_file
    from ultralytics.utils.patches import torch_load

    from boxloss.yolo import BoxLossDetectionTrainer

    parent = BoxLossDetectionTrainer(overrides={
        "model": "yolov8n.yaml", "data": str(mini_data), "epochs": 1, "imgsz": 64, "batch": 8, "workers": 0,
        "box_loss": "eiou", "plots": False, "project": str(tmp_path / "runs"), "name": "ddp", "device": "cpu"})
    parent.model = parent.get_model(cfg="yolov8n.yaml", verbose=False)
    assert len(resolutions.resolved) == 1 and parent.model.boxloss_options is resolutions.resolved[0]
    script = Path(generate_ddp_file(parent))
    try:
        state = torch_load(script.with_suffix(".pt"), map_location="cpu")  # what the generated script does, ...
        child = state["trainer"](cfg={**DEFAULT_CFG_DICT, "save_dir": ""}, overrides=state["args"],
                                 _callbacks=state["callbacks"])
        child.model = state["model"]  # ... up to child.train(), whose setup keeps this model and then
        child.set_model_attributes()  # sets its args, names, ... (and logs the options)
        options = child.boxloss_options
        criterion = child.model.init_criterion()
    finally:
        script.unlink(missing_ok=True)
        script.with_suffix(".pt").unlink(missing_ok=True)
    assert len(resolutions.resolved) == resolutions.validated == 1  # the parent's only
    assert options is child.model.boxloss_options and options == parent.boxloss_options
    assert criterion.options is options and criterion.box_loss_name == "eiou"
