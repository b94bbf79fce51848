"""End to end with the IoU-aware head: train from cfg/iou_aware.yaml, val (with the score-IoU calibration),
export, reload, resume; a checkpoint loaded where boxloss is missing fails saying so, without a download."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import REPO, assert_refused, offline_env, pickled_boxloss_modules, run_entry

from test_train_e2e import TINY, read_results


@pytest.fixture(scope="module")
def head_run(tmp_path_factory, mini_data):
    root = tmp_path_factory.mktemp("iou_aware")
    result = run_entry("train.py", ["cfg=iou_aware.yaml", *TINY, "plots=False", f"project={root}/runs"], root,
                       root / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (root / "network.log").exists()
    return root, root / "runs" / "iou_aware"


@pytest.mark.slow
def test_trains_with_the_head_and_its_loss(head_run):
    _, run_dir = head_run
    row = read_results(run_dir)[0]
    assert float(row["train/iou_loss"]) > 0 and float(row["val/iou_loss"]) > 0
    from boxloss.yolo.iou_aware import IoUAwareDetect

    checkpoint = torch.load(run_dir / "weights" / "best.pt", map_location="cpu", weights_only=False)
    head = checkpoint["model"].model[-1]
    assert isinstance(head, IoUAwareDetect) and head.iou_aware_alpha == 0.5
    assert checkpoint["train_args"]["iou_aware"] is True


@pytest.mark.slow
def test_the_checkpoint_names_only_the_model_head_and_options_modules(head_run):
    """best.pt refers to boxloss by module path only through the model, the IoU-aware head and the options (never
    the validators, predictors or criteria), so those three modules keep their names for old checkpoints to load."""
    _, run_dir = head_run
    assert pickled_boxloss_modules(run_dir / "weights" / "best.pt") == {
        "boxloss.yolo.model", "boxloss.yolo.iou_aware", "boxloss.options"}


@pytest.mark.slow
def test_val_reports_calibration_side_by_side(head_run):
    root, run_dir = head_run
    result = run_entry("val.py", [f"model={run_dir / 'weights' / 'best.pt'}", "data=shapes-mini", "imgsz=128",
                                  f"project={root}/val", "name=head", "conf=0.0"], root, root / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((root / "val" / "head" / "metrics.json").read_text())
    assert {"AP50", "AP95", "score_iou_pearson", "score_iou_spearman", "matched"} <= set(metrics)
    assert "score_iou_spearman" in result.stdout


@pytest.mark.slow
def test_export_and_reload(head_run):
    root, run_dir = head_run
    result = run_entry("scripts/export.py", [f"model={run_dir / 'weights' / 'best.pt'}", "imgsz=128"], root,
                       root / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    onnx_path = run_dir / "weights" / "best.onnx"
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extras")
    session = ort.InferenceSession(str(onnx_path))
    x = np.random.default_rng(1).random((1, 3, 128, 128), dtype=np.float32)
    out = session.run(None, {session.get_inputs()[0].name: x})[0]
    from boxloss.yolo import BoxLossYOLO

    reloaded = BoxLossYOLO(str(run_dir / "weights" / "best.pt"))
    with torch.no_grad():
        reference = reloaded.model.float().eval()(torch.from_numpy(x))[0].numpy()
    assert out.shape == (1, 4 + 5, 336)
    np.testing.assert_allclose(out, reference, atol=1e-4, rtol=0)
    assert len(reloaded.predict(x[0].transpose(1, 2, 0) * 255, imgsz=128, conf=0.0, verbose=False)) == 1


@pytest.mark.slow
def test_resume_keeps_the_head(tmp_path, mini_data):
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.iou_aware import IoUAwareDetect

    class Interrupt(Exception):
        pass

    def interrupt(trainer):
        raise Interrupt

    model = BoxLossYOLO("yolov8n.yaml")
    model.add_callback("on_model_save", interrupt)
    with pytest.raises(Interrupt):
        model.train(data=str(mini_data), epochs=2, imgsz=64, batch=8, workers=0, iou_aware=True, iou_aware_alpha=0.3,
                    plots=False, project=str(tmp_path / "runs"), name="resume")
    last = tmp_path / "runs" / "resume" / "weights" / "last.pt"
    result = run_entry("train.py", [f"resume={last}"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    rows = read_results(last.parents[1])
    assert [int(r["epoch"]) for r in rows] == [1, 2] and "train/iou_loss" in rows[1]
    head = torch.load(last, map_location="cpu", weights_only=False)["model"].model[-1]
    assert isinstance(head, IoUAwareDetect) and head.iou_aware_alpha == 0.3


@pytest.mark.slow
def test_checkpoint_without_boxloss_installed_says_what_to_install(head_run, tmp_path):
    """Plain ultralytics, boxloss not importable, YOLO_AUTOINSTALL=false: a clear error, no download attempt."""
    _, run_dir = head_run
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys, importlib\n"
        "sys.path[:] = [p for p in sys.path if 'offline_guard' not in p]\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'boxloss' or name.startswith('boxloss.'):\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.path.append(" + repr(str(REPO / "tests" / "offline_guard")) + ")\n"
        "importlib.import_module('sitecustomize_guard')\n")
    guard = (REPO / "tests" / "offline_guard" / "sitecustomize.py").read_text()
    (blocker / "sitecustomize_guard.py").write_text(guard)
    env = offline_env(tmp_path / "network.log")
    env["PYTHONPATH"] = str(blocker)
    env["YOLO_AUTOINSTALL"] = "false"
    code = f"from ultralytics import YOLO\nYOLO({str(run_dir / 'weights' / 'best.pt')!r})"
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "No module named 'boxloss'" in output and "require 'boxloss'" in output
    assert not (tmp_path / "network.log").exists()


@pytest.mark.slow
def test_val_with_another_alpha_and_a_clear_error_without_the_head(head_run, tmp_path):
    root, run_dir = head_run
    best = run_dir / "weights" / "best.pt"
    result = run_entry("val.py", [f"model={best}", "data=shapes-mini", "imgsz=128", "iou_aware_alpha=0",
                                  f"project={tmp_path}/val", "name=a0"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "(alpha=0)" in result.stdout
    plain = tmp_path / "plain.pt"
    checkpoint = torch.load(best, map_location="cpu", weights_only=False)
    head = checkpoint["model"].model[-1]
    from ultralytics.nn.modules.head import Detect

    head.__class__ = Detect  # the same weights without the head
    torch.save(checkpoint, plain)
    assert_refused("val.py", [f"model={plain}", "data=shapes-mini", "iou_aware_alpha=0.5", f"project={tmp_path}/val",
                              "name=bad"], "needs an IoU-aware checkpoint", cwd=tmp_path, watched=(run_dir,))
