"""Segmentation and pose end to end, on the embedded shapes-seg-mini and shapes-pose-mini: train.py with EIoU for each
model YAML of the README table (1 epoch, 64 px), then scripts/export.py to ONNX with ultralytics' stock outputs,
checked with onnxruntime against PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import assert_same_top_k, run_entry
from test_train_e2e import read_results

TINY = ["epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]
RUNS = {  # model YAML -> (data, a loss column of the task, ultralytics' metric column of the task)
    "yolov8n-seg.yaml": ("shapes-seg-mini", "train/seg_loss", "metrics/mAP50-95(M)"),
    "yolo11n-seg.yaml": ("shapes-seg-mini", "train/seg_loss", "metrics/mAP50-95(M)"),
    "yolo26n-seg.yaml": ("shapes-seg-mini", "train/sem_loss", "metrics/mAP50-95(M)"),
    "yolov8n-pose.yaml": ("shapes-pose-mini", "train/pose_loss", "metrics/mAP50-95(P)"),
    "yolo11n-pose.yaml": ("shapes-pose-mini", "train/kobj_loss", "metrics/mAP50-95(P)"),
    "yolo26n-pose.yaml": ("shapes-pose-mini", "train/rle_loss", "metrics/mAP50-95(P)"),
}
EXPORT_IMGSZ = 128  # 336 anchors: the end-to-end heads' top 300 is a full max_det
NC, MASKS, KEYPOINT_VALUES = 5, 32, 4 * 3
EXPORT_SHAPES = {  # ultralytics' stock ONNX outputs at 128 px: boxes + scores + extra per anchor, or the top 300
    "yolov8n-seg.yaml": [(1, 4 + NC + MASKS, 336), (1, MASKS, 32, 32)],
    "yolo11n-seg.yaml": [(1, 4 + NC + MASKS, 336), (1, MASKS, 32, 32)],
    "yolo26n-seg.yaml": [(1, 300, 6 + MASKS), (1, MASKS, 32, 32)],
    "yolov8n-pose.yaml": [(1, 4 + NC + KEYPOINT_VALUES, 336)],
    "yolo11n-pose.yaml": [(1, 4 + NC + KEYPOINT_VALUES, 336)],
    "yolo26n-pose.yaml": [(1, 300, 6 + KEYPOINT_VALUES)],
}


@pytest.fixture(scope="module", params=list(RUNS))
def run(request, tmp_path_factory, mini_seg_data, mini_pose_data):
    """One EIoU training run of the model YAML through train.py: (model YAML, run directory, train.py's output)."""
    yaml = request.param
    root = tmp_path_factory.mktemp(yaml.removesuffix(".yaml"))
    result = run_entry("train.py", ["cfg=eiou.yaml", f"model={yaml}", f"data={RUNS[yaml][0]}", *TINY,
                                    f"project={root}/runs", "name=eiou"], root, root / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (root / "network.log").exists(), (root / "network.log").read_text()[:2000]
    return yaml, root / "runs" / "eiou", result.stdout + result.stderr


@pytest.mark.slow
def test_trains_with_the_box_loss_and_the_tasks_own_terms(run):
    yaml, run_dir, output = run
    _, loss_column, metric_column = RUNS[yaml]
    row = read_results(run_dir)[0]
    assert "train/box_w" in row and float(row["train/box_loss"]) > 0  # EIoU's width term: the configured loss
    assert float(row[loss_column]) > 0 and metric_column in row  # the task's own loss and ultralytics' metrics
    assert "boxloss: box_loss=eiou " in output
    checkpoint = torch.load(run_dir / "weights" / "best.pt", map_location="cpu", weights_only=False)
    assert checkpoint["train_args"]["box_loss"] == "eiou"
    assert checkpoint["train_args"]["task"] == ("segment" if "seg" in yaml else "pose")


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
        y = model(torch.from_numpy(x))[0]  # eval: (detections, protos) for segmentation, detections for pose
    references = [t.numpy() for t in (y if isinstance(y, (tuple, list)) else (y,))]
    assert len(references) == len(outputs)
    if yaml.startswith("yolo26"):  # the top 300 rows: near-tied scores may come in another order
        assert_same_top_k(outputs[0][0], references[0][0])
        outputs, references = outputs[1:], references[1:]
    for out, reference in zip(outputs, references):  # every anchor's row; the mask prototypes
        np.testing.assert_allclose(out, reference, atol=1e-4, rtol=0)
