"""Segmentation and pose end to end, on the embedded shapes-seg-mini and shapes-pose-mini: train.py with EIoU for each
model YAML of the README table (1 epoch, 64 px), val.py with the task's COCO metrics (box and mask AP, or box and
keypoint AP), then scripts/export.py to ONNX with ultralytics' stock outputs, checked with onnxruntime against
PyTorch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from boxloss.evaluation import FAMILY_KEYS
from helpers import assert_same_top_k, pickled_boxloss_modules, run_entry
from test_train_e2e import read_results
from test_val_e2e import REPORTED_KEYS, pycocotools_reference

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
def test_the_checkpoint_names_only_the_model_and_options_modules(run):
    """best.pt refers to boxloss by module path only through the task's model class and the options, so those
    modules keep their names for old checkpoints to load (see tests/test_iou_aware_e2e.py)."""
    _, run_dir, _ = run
    assert pickled_boxloss_modules(run_dir / "weights" / "best.pt") == {"boxloss.yolo.model", "boxloss.options"}


@pytest.mark.slow
def test_val_reports_the_tasks_coco_metrics(run, tmp_path):
    """val.py on the checkpoint: the box metrics at the top of metrics.json as for a detector, the task's family under
    its own key ("mask": the same keys on mask IoU; "pose": COCO's keypoint keys on OKS, with the sigmas used, 1/4
    each on shapes-pose); bare pycocotools on the written gt.json and predictions gives the same numbers; the family's
    TIDE (tide_mask.json, tide_pose.json) is relative to its AP50 / AP75; and the masks or keypoints are those of
    ultralytics' own COCO export (save_json) of the same checkpoint."""
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.experiment import resolve_data

    yaml, run_dir, _ = run
    data, family = RUNS[yaml][0], "mask" if "-seg" in yaml else "pose"
    best = run_dir / "weights" / "best.pt"
    result = run_entry("val.py", [f"model={best}", f"data={data}", f"project={tmp_path}/val"], tmp_path,
                       tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"| eiou {family} " in result.stdout and not (tmp_path / "network.log").exists()
    val_dir = tmp_path / "val" / "val"
    metrics = json.loads((val_dir / "metrics.json").read_text())
    assert list(metrics) == [*REPORTED_KEYS, family]
    assert list(metrics[family]) == [*FAMILY_KEYS[family], *(["oks"] if family == "pose" else [])]
    sigmas = None
    if family == "pose":
        assert metrics["pose"]["oks"]["sigmas"] == [0.25] * 4 and "1/K" in metrics["pose"]["oks"]["sigmas_from"]
        sigmas = metrics["pose"]["oks"]["sigmas"]
    for name, values, file, iou_type in (("box", metrics, "predictions.json", "bbox"),
                                         (family, metrics[family], f"predictions_{family}.json",
                                          "segm" if family == "mask" else "keypoints")):
        reference = pycocotools_reference(val_dir / "gt.json", val_dir / file, iou_type, sigmas)
        assert all(values[k] == pytest.approx(reference[k], abs=1e-12) for k in FAMILY_KEYS[name]), name
    tide = json.loads((val_dir / f"tide_{family}.json").read_text())  # TIDE of the masks or keypoints
    assert tide["settings"]["iou_type"] == ("segm" if family == "mask" else "keypoints")
    assert [tide[k]["ap"] for k in ("AP50", "AP75")] == pytest.approx(
        [metrics[family]["AP50"], metrics[family]["AP75"]], abs=1e-12)

    ours = json.loads((val_dir / f"predictions_{family}.json").read_text())
    gt = json.loads((val_dir / "gt.json").read_text())
    BoxLossYOLO(str(best)).val(data=resolve_data(data), imgsz=64, max_det=100, save_json=True, plots=False,
                               project=str(tmp_path), name="theirs", exist_ok=True, verbose=False)
    theirs = json.loads((tmp_path / "theirs" / "predictions.json").read_text())
    assert_same_predictions(ours, theirs, gt, "segmentation" if family == "mask" else "keypoints")


def assert_same_predictions(ours: list, theirs: list, gt: dict, field: str) -> None:
    """Every captured mask or pose is in ultralytics' export (its scores rounded to 5 decimals, images named by
    stem): the same pixels, the same keypoints."""
    from pycocotools import mask as mask_utils

    stem_to_id = {Path(image["file_name"]).stem: image["id"] for image in gt["images"]}
    by_key: dict = {}
    for p in theirs:
        key = (stem_to_id[Path(p["file_name"]).stem], p["category_id"], round(p["score"], 5))
        by_key.setdefault(key, []).append(p)
    assert len(ours) == len(theirs) > 0
    for p in ours:
        candidates = by_key[(p["image_id"], p["category_id"], round(p["score"], 5))]
        if field == "segmentation":
            mine = mask_utils.decode(p["segmentation"])
            assert any(np.array_equal(mine, mask_utils.decode(c["segmentation"])) for c in candidates)
        else:
            assert any(np.allclose(p["keypoints"], c["keypoints"], atol=1e-4) for c in candidates)


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
