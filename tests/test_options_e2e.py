"""Every loss and option added to the registry trains end to end: one tiny epoch through train.py's entry point
(in-process, 64 px, shapes-mini), its checkpoint and state checked; the end-to-end YOLO26 path validates and exports.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from helpers import assert_same_top_k

TINY = ["data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]
CONFIGS = {  # config (or config + keys) -> a column results.csv must show, proving the option ran
    "siou": "train/box_shape", "wiou": "train/box_iou", "wiou_v3": "train/box_iou", "mpdiou": "train/box_iou",
    "shape_iou": "train/box_shape", "piou_v2": "train/box_iou", "nwd": "train/box_nwd",
    "inner_ciou": "train/box_inner", "focaler_ciou": "train/box_focaler", "alpha_ciou": "train/box_iou",
    "ciou_vfl": "train/cls_loss", "eiou_qfl": "train/cls_loss", "ciou_ap_loss": "train/cls_loss",
    "ciou_class_balanced": "train/cls_loss", "eiou_diou_nms": "train/box_w", "ciou_iou_balanced": "train/box_iou",
    "smooth_l1": "train/box_total", "yolo26_eiou": "train/l1_loss",
}


def train(cfg: str, tmp_path: Path, *extra: str) -> Path:
    from boxloss.cli import train as train_cli

    assert train_cli.main([f"cfg={cfg}.yaml", *TINY, f"project={tmp_path}/runs", *extra]) == 0
    return tmp_path / "runs" / cfg


def results_row(run: Path) -> dict:
    with open(run / "results.csv") as f:
        return [{k.strip(): v for k, v in row.items()} for row in csv.DictReader(f)][-1]


def checkpoint(run: Path, name: str = "best.pt") -> dict:
    return torch.load(run / "weights" / name, map_location="cpu", weights_only=False)


@pytest.mark.slow
@pytest.mark.parametrize("cfg", CONFIGS)
def test_trains_one_epoch(cfg, tmp_path, monkeypatch, mini_data):
    monkeypatch.chdir(tmp_path)
    extra = ["iou_balanced_wloc_batches=3", "l1_units=box"] if cfg in ("ciou_iou_balanced", "smooth_l1") else []
    run = train(cfg, tmp_path, *extra)
    row = results_row(run)
    assert CONFIGS[cfg] in row and float(row["metrics/mAP50-95(B)"]) >= 0
    saved = checkpoint(run)
    args = saved["train_args"]
    assert args["box_loss"] == {"yolo26_eiou": "eiou"}.get(cfg, args["box_loss"])
    model = saved["ema"] or saved["model"]  # a finished run's checkpoints keep the EMA as "model"
    state = getattr(model, "boxloss_state", {})
    if cfg == "wiou_v3":  # the running mean moved away from its start and was saved
        assert 0 < state["main"]["iou_mean"] < 1.0
    if cfg == "ciou_iou_balanced":  # w_loc: auto, set from the first 3 batches and kept in the checkpoint
        assert state["main"]["iou_balanced_batches"] == 3 and state["main"]["iou_balanced_wloc"] > 1
    if cfg == "ciou_class_balanced":
        counts = model.boxloss_class_counts
        assert len(counts) == 5 and sum(counts) > 0  # from the training labels, kept with the model
    if cfg == "yolo26_eiou":
        assert args["model"] == "yolo26n.yaml" and model.model[-1].reg_max == 1


@pytest.mark.slow
def test_yolo26_trains_validates_nms_free_resumes_and_exports(tmp_path, monkeypatch, mini_data):
    """cfg=eiou.yaml model=yolo26n.yaml: val.py evaluates NMS-free (the one-to-one branch) by default and says so,
    nms=standard evaluates the one-to-many branch with NMS; export gives the end-to-end (1, 300, 6); the checkpoint
    resumes."""
    import json

    from boxloss.cli import export as export_cli
    from boxloss.cli import val as val_cli

    monkeypatch.chdir(tmp_path)
    run = train("eiou", tmp_path, "model=yolo26n.yaml", "imgsz=128", "iou_aware=true", "epochs=2")
    best = run / "weights" / "best.pt"
    assert val_cli.main([f"model={best}", "data=shapes-mini", f"project={tmp_path}/val", "name=e2e"]) == 0
    metrics = json.loads((tmp_path / "val" / "e2e" / "metrics.json").read_text())
    assert metrics["nms"] == {"method": "none"} and 0 <= metrics["AP"] <= 1
    assert val_cli.main([f"model={best}", "data=shapes-mini", "nms=standard", f"project={tmp_path}/val",
                         "name=o2m"]) == 0
    assert json.loads((tmp_path / "val" / "o2m" / "metrics.json").read_text())["nms"] == {"method": "standard"}
    assert export_cli.main([f"model={best}", "imgsz=128", "simplify=false"]) == 0
    onnx_path = best.with_suffix(".onnx")
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(str(onnx_path))
    x = torch.rand(1, 3, 128, 128)
    out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert out.shape == (1, 300, 6)  # the stock end-to-end output, fused scores in its top-k
    from boxloss.yolo import BoxLossYOLO

    model = BoxLossYOLO(str(best)).model.float().eval()
    model.end2end = True
    with torch.no_grad():
        reference = model(x)[0]
    assert tuple(reference.shape) == out.shape
    assert_same_top_k(torch.from_numpy(out)[0], reference[0])  # the top-k of the fused scores
