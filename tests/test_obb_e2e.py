"""Oriented boxes end to end, on the embedded shapes-obb-mini: train.py with KLD for each OBB model YAML of the README
table (1 epoch, 64 px), val.py with COCO AP on the exact rotated IoU beside ultralytics' own ProbIoU-matched mAP, then
scripts/export.py to ONNX with ultralytics' stock outputs, checked with onnxruntime against PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from boxloss.evaluation import METRIC_KEYS, evaluate
from helpers import assert_same_top_k, pickled_boxloss_modules, run_entry
from test_train_e2e import read_results

TINY = ["epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]
DATA = "shapes-obb-mini"
YAMLS = ("yolov8n-obb.yaml", "yolo11n-obb.yaml", "yolo26n-obb.yaml")
VAL_CONF = 1e-4  # one epoch at 64 px scores below ultralytics' 0.001: enough detections to compare with its own
EXPORT_IMGSZ = 128  # 336 anchors: the end-to-end head's top 300 is a full max_det
NC = 5
EXPORT_SHAPES = {  # ultralytics' stock ONNX outputs at 128 px: xywh + scores + angle per anchor, or the top 300 rows
    "yolov8n-obb.yaml": [(1, 4 + NC + 1, 336)],
    "yolo11n-obb.yaml": [(1, 4 + NC + 1, 336)],
    "yolo26n-obb.yaml": [(1, 300, 7)],
}


@pytest.fixture(scope="module", params=YAMLS)
def run(request, tmp_path_factory):
    """One KLD training run of the model YAML through train.py: (model YAML, run directory, train.py's output)."""
    yaml = request.param
    root = tmp_path_factory.mktemp(yaml.removesuffix(".yaml"))
    result = run_entry("train.py", ["cfg=kld.yaml", f"model={yaml}", f"data={DATA}", *TINY, f"project={root}/runs",
                                    "name=kld"], root, root / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (root / "network.log").exists(), (root / "network.log").read_text()[:2000]
    return yaml, root / "runs" / "kld", result.stdout + result.stderr


@pytest.mark.slow
def test_trains_with_kld_and_ultralytics_own_obb_terms(run):
    yaml, run_dir, output = run
    row = read_results(run_dir)[0]
    assert float(row["train/box_kld"]) > 0 and float(row["train/box_loss"]) == float(row["train/box_kld"])
    side = "train/l1_loss" if yaml.startswith("yolo26") else "train/dfl_loss"
    assert float(row[side]) > 0 and float(row["train/angle_loss"]) > 0 and "metrics/mAP50-95(B)" in row
    assert "boxloss: box_loss=kld " in output and "assigner_iou=probiou " in output
    checkpoint = torch.load(run_dir / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert checkpoint["train_args"]["box_loss"] == "kld" and checkpoint["train_args"]["task"] == "obb"
    assert checkpoint["train_args"]["assigner_iou"] is None  # unset: the stock rotated assigner (logged above)
    assert "box_loss: kld" in (run_dir / "args.yaml").read_text()


@pytest.mark.slow
def test_the_checkpoint_names_only_the_model_and_options_modules(run):
    _, run_dir, _ = run
    assert pickled_boxloss_modules(run_dir / "weights" / "best.pt") == {"boxloss.yolo.model", "boxloss.options"}


@pytest.mark.slow
def test_val_reports_rotated_ap_and_ultralytics_own_metric_labelled(run, tmp_path):
    """val.py on the checkpoint: COCO AP on the exact rotated IoU at the top of metrics.json (the keys of boxes), the
    same numbers as hotcoco's obb evaluation of the written gt.json and predictions.json; its TIDE relative to them;
    the oriented boxes are ultralytics' own (its save_json rbox of the same checkpoint, in original pixels and
    radians), and the "ultralytics" entry is its OBBValidator's ProbIoU-matched mAP of the same run."""
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.experiment import resolve_data

    yaml, run_dir, _ = run
    best = run_dir / "weights" / "best.pt"
    result = run_entry("val.py", [f"model={best}", f"data={DATA}", f"conf={VAL_CONF}", f"project={tmp_path}/val"],
                       tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "network.log").exists()
    assert "Oriented boxes: COCO AP on the exact rotated-box IoU (hotcoco)" in result.stdout
    assert "ultralytics' own OBB metric of the same run, for comparison only: predictions matched by ProbIoU" in \
        result.stdout and "| kld " in result.stdout
    val_dir = tmp_path / "val" / "val"
    metrics = json.loads((val_dir / "metrics.json").read_text())
    assert list(metrics)[:len(METRIC_KEYS)] == list(METRIC_KEYS) and metrics["family"] == "obb"
    gt = json.loads((val_dir / "gt.json").read_text())
    ours = json.loads((val_dir / "predictions.json").read_text())
    assert all("obb" in ann for ann in gt["annotations"]) and all(len(p["obb"]) == 5 for p in ours)
    reference = evaluate(gt, ours, "hotcoco", "obb")
    assert all(metrics[k] == pytest.approx(reference[k], abs=1e-12) for k in METRIC_KEYS)
    tide = json.loads((val_dir / "tide.json").read_text())
    assert tide["settings"]["iou_type"] == "obb"
    assert [tide[k]["ap"] for k in ("AP50", "AP75")] == pytest.approx([metrics["AP50"], metrics["AP75"]], abs=1e-12)

    nms_free = {"nms": False} if yaml.startswith("yolo26") else {}  # val.py's default for an end-to-end head
    stock = BoxLossYOLO(str(best)).val(data=resolve_data(DATA), imgsz=64, batch=16, conf=VAL_CONF, max_det=100,
                                       save_json=True, plots=False, project=str(tmp_path), name="theirs",
                                       exist_ok=True, verbose=False, **nms_free)
    assert metrics["ultralytics"] == {"mAP50": pytest.approx(float(stock.box.map50), abs=1e-12),
                                      "mAP50-95": pytest.approx(float(stock.box.map), abs=1e-12),
                                      "matched_by": "ProbIoU"}
    theirs = json.loads((tmp_path / "theirs" / "predictions.json").read_text())
    assert_same_oriented_boxes(ours, theirs, gt)


def assert_same_oriented_boxes(ours: list, theirs: list, gt: dict) -> None:
    """Every captured oriented box is in ultralytics' export (its scores rounded to 5 decimals, its rbox to 3, images
    named by stem): the same box in original pixels, the same angle."""
    stem_to_id = {Path(image["file_name"]).stem: image["id"] for image in gt["images"]}
    by_key: dict = {}
    for p in theirs:
        key = (stem_to_id[Path(p["file_name"]).stem], p["category_id"], round(p["score"], 5))
        by_key.setdefault(key, []).append(p["rbox"])
    assert len(ours) == len(theirs) > 100
    for p in ours:
        candidates = by_key[(p["image_id"], p["category_id"], round(p["score"], 5))]
        assert any(np.allclose(p["obb"], rbox, atol=1.5e-3, rtol=0) for rbox in candidates), p


@pytest.mark.slow
def test_val_with_exact_nms_names_it(run, tmp_path):
    """nms=exact: ultralytics' rotated Fast-NMS on the exact polygon IoU (for YOLO26, on its one-to-many branch
    instead of the NMS-free default); the row and metrics.json say so."""
    _, run_dir, _ = run
    result = run_entry("val.py", [f"model={run_dir / 'weights' / 'best.pt'}", f"data={DATA}", f"conf={VAL_CONF}",
                                  "nms=exact", f"project={tmp_path}/val"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "val" / "val" / "metrics.json").read_text())
    assert metrics["nms"] == {"method": "exact"} and "| kld (exact-IoU NMS) " in result.stdout


@pytest.mark.slow
def test_onnx_export_keeps_the_stock_outputs(run):
    """scripts/export.py writes ultralytics' stock output shapes; onnxruntime agrees with the PyTorch model."""
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is in the test extras")
    yaml, run_dir, _ = run
    result = run_entry("scripts/export.py", [f"model={run_dir / 'weights' / 'best.pt'}", f"imgsz={EXPORT_IMGSZ}"],
                       run_dir, run_dir / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    session = ort.InferenceSession(str(run_dir / "weights" / "best.onnx"))
    x = np.random.default_rng(1).random((1, 3, EXPORT_IMGSZ, EXPORT_IMGSZ), dtype=np.float32)
    outputs = session.run(None, {session.get_inputs()[0].name: x})
    assert [tuple(o.shape) for o in outputs] == EXPORT_SHAPES[yaml]

    from boxloss.yolo import BoxLossYOLO

    model = BoxLossYOLO(str(run_dir / "weights" / "best.pt")).model.float().eval()
    if yaml.startswith("yolo26"):
        model.model[-1].end2end = True  # exported by default: the NMS-free one-to-one branch
    with torch.no_grad():
        reference = model(torch.from_numpy(x))[0].numpy()
    if yaml.startswith("yolo26"):  # the top 300 rows: near-tied scores may come in another order
        assert_same_top_k(outputs[0][0], reference[0])
    else:  # every anchor's xywh, class scores and angle
        np.testing.assert_allclose(outputs[0], reference, atol=1e-4, rtol=0)


@pytest.mark.slow
def test_predict_gives_oriented_boxes_with_either_nms(run):
    """BoxLossYOLO predicts through the task's predictor: ultralytics' OBB results (xywhr in original pixels), with
    the standard and with the exact NMS."""
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.experiment import resolve_data

    yaml, run_dir, _ = run
    image = next((Path(resolve_data(DATA)).parent / "images" / "val").glob("*.png"))
    model = BoxLossYOLO(str(run_dir / "weights" / "best.pt"))
    for method in ("standard", "exact"):
        result = model.predict(str(image), imgsz=64, conf=VAL_CONF, nms_method=method, verbose=False)[0]
        assert result.obb is not None and result.obb.xywhr.shape[-1] == 5 and len(result.obb) > 0
        assert torch.isfinite(result.obb.xywhr).all() and type(model.predictor).__name__ == "BoxLossOBBPredictor"


class _Interrupt(Exception):
    pass


@pytest.mark.slow
def test_an_unset_box_loss_survives_the_ddp_child_and_resume(tmp_path, mini_obb_data):
    """No box_loss given: the trainer resolves probiou (the OBB stock loss) for its model and writes it into its args;
    ultralytics' generated DDP script (cloudpickled trainer, the parent's model, a fresh interpreter) trains with it,
    and an interrupted run resumed through train.py finishes with it."""
    import subprocess
    import sys

    from ultralytics.utils.dist import generate_ddp_file

    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.trainer import BoxLossOBBTrainer
    from helpers import offline_env

    trainer = BoxLossOBBTrainer(overrides={"model": "yolov8n-obb.yaml", "data": str(mini_obb_data), "epochs": 1,
                                           "imgsz": 64, "batch": 8, "workers": 0, "plots": False, "device": "cpu",
                                           "project": str(tmp_path / "runs"), "name": "ddp"})
    trainer.model = trainer.get_model(cfg="yolov8n-obb.yaml", verbose=False)
    assert (trainer.args.box_loss, trainer.args.assigner_iou) == ("probiou", None)
    assert trainer.boxloss_options["assigner_iou"] == "probiou"
    assert trainer.model.boxloss_options["box_loss"] == "probiou"
    result = subprocess.run([sys.executable, generate_ddp_file(trainer)], cwd=tmp_path,
                            env=offline_env(tmp_path / "network.log"), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "boxloss: box_loss=probiou " in result.stdout + result.stderr
    assert "train/box_iou" in read_results(tmp_path / "runs" / "ddp")[0]

    def interrupt(trainer):
        raise _Interrupt

    model = BoxLossYOLO("yolov8n-obb.yaml")
    model.add_callback("on_model_save", interrupt)
    with pytest.raises(_Interrupt):
        model.train(data=str(mini_obb_data), epochs=2, imgsz=64, batch=8, workers=0, plots=False,
                    project=str(tmp_path / "runs"), name="resume")
    last = tmp_path / "runs" / "resume" / "weights" / "last.pt"
    assert torch.load(last, map_location="cpu", weights_only=False)["train_args"]["box_loss"] == "probiou"
    result = run_entry("train.py", [f"resume={last}"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "boxloss: box_loss=probiou " in result.stdout + result.stderr
    assert [int(r["epoch"]) for r in read_results(last.parents[1])] == [1, 2]
    assert torch.load(last, map_location="cpu", weights_only=False)["train_args"]["box_loss"] == "probiou"


@pytest.mark.slow
def test_train_py_without_a_box_loss_trains_and_records_probiou(tmp_path):
    """train.py on an OBB model with no box_loss: the experiment resolves probiou for the model's boxes, and every
    record of the run names it (args.yaml, boxloss.yaml, the checkpoint)."""
    result = run_entry("train.py", ["model=yolov8n-obb.yaml", f"data={DATA}", *TINY, f"project={tmp_path}/runs",
                                    "name=default"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "boxloss: box_loss=probiou cls_loss=bce assigner_iou=probiou " in result.stdout + result.stderr
    run_dir = tmp_path / "runs" / "default"
    assert "box_loss: probiou" in (run_dir / "args.yaml").read_text()
    assert "box_loss: probiou" in (run_dir / "boxloss.yaml").read_text()
    assert torch.load(run_dir / "weights" / "best.pt", map_location="cpu",
                      weights_only=False)["train_args"]["box_loss"] == "probiou"
