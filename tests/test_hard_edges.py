"""Bad input at every entry point: exit status 2, one line naming the problem, and nothing written anywhere.

"Anywhere" is checked, not assumed: the working directory (where runs/ would go), ultralytics' own runs_dir, and
the dataset folder are listed before and after each command. The README's reliability line counts these probes.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from PIL import Image

TINY = ["data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]


def listing(*folders: Path) -> set[str]:
    return {str(p) for folder in folders if folder.exists() for p in folder.rglob("*")}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs that look right but are not: a text file named .pt, a stock model, a finished run, broken datasets."""
    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics import YOLO

    from boxloss.yolo import BoxLossYOLO
    from boxloss.data.embedded import resolve_data

    root = tmp_path_factory.mktemp("hard_edges")
    (root / "text.pt").write_text("this is not a checkpoint\n")
    YOLO("yolov8n.yaml").save(root / "stock.pt")
    YOLO("yolov8n-seg.yaml").save(root / "seg.pt")
    YOLO("yolov8n-pose.yaml").save(root / "pose.pt")  # 17 keypoints, COCO's person
    model = BoxLossYOLO("yolov8n.yaml")
    model.train(data=resolve_data("shapes-mini"), epochs=1, imgsz=64, batch=8, workers=0, plots=False,
                project=str(root / "runs"), name="done", box_loss="eiou", verbose=False)
    for name, yaml_text in {
        "no_names": "path: {root}\ntrain: images/train\nval: images/val\n",
        "empty_train": "path: {root}\ntrain: images/empty\nval: images/val\nnames: [a]\n",
        "broken_yaml": "path: {root}\ntrain: images/train\nval: [images/val\nnames: [a]\n",
        "boxes_only": "path: {root}\ntrain: images/train\nval: images/val\nnames: [a]\n",
    }.items():
        dataset = root / name
        for split in ("train", "val"):
            (dataset / "images" / split).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(dataset / "images" / split / "a.png")
            (dataset / "labels" / split).mkdir(parents=True)
            (dataset / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.25 0.25\n")
        (dataset / "images" / "empty").mkdir()
        (dataset / "data.yaml").write_text(yaml_text.format(root=dataset))
    return root


def probe(command: str, args: list[str], files: Path, tmp_path: Path, monkeypatch, capsys) -> str:
    from ultralytics.utils import SETTINGS

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    watched = (work, Path(SETTINGS["runs_dir"]), files)
    before = listing(*watched)
    cli = importlib.import_module(f"boxloss.cli.{command}")
    status = cli.main([a.format(files=files) for a in args])
    err = capsys.readouterr().err.strip()
    assert status == 2, err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{command}.py: error: "), err
    assert listing(*watched) == before, sorted(listing(*watched) - before)
    return lines[0]


TRAIN = [
    (["resume={files}/runs/done/weights/last.pt"], "is already finished at epoch 1/1; start a new run with model="),
    (["resume={files}/stock.pt"], "is a model, not an interrupted training run (it has no train_args); use model="),
    (["resume={files}/text.pt"], "is not a PyTorch checkpoint"),
    (["cfg=eiou.yaml", "model={files}/text.pt", *TINY],
     "model checkpoint '{files}/text.pt' is not a PyTorch checkpoint"),
    (["cfg=eiou.yaml", "imgsz=0"], "imgsz=0 is out of range: must be a positive integer or a pair of them"),
    (["cfg=eiou.yaml", "imgsz=-64"], "imgsz=-64 is out of range"),
    (["cfg=eiou.yaml", "batch=0"], "batch=0 is out of range: must be >= 1, -1 (AutoBatch) or in (0, 1)"),
    (["cfg=eiou.yaml", "workers=-1"], "workers=-1 is out of range: must be >= 0"),
    (["cfg=focal_eiou.yaml", "focal_eiou_gamma=.inf"], "focal_eiou_gamma=inf is not a finite number"),
    (["cfg=eiou.yaml", "device=cuda:0", *TINY], "device='cuda:0': no CUDA device here; use device=cpu"),
    (["cfg=eiou.yaml", "device=xyz", *TINY], "device='xyz' is not a device"),
    (["cfg=eiou.yaml", "data={files}/empty_train/data.yaml"], "no images in its 'train' entry"),
    (["cfg=eiou.yaml", "data={files}/no_names/data.yaml"], "has neither 'names' nor a positive integer 'nc'"),
    (["cfg=eiou.yaml", "data={files}/broken_yaml/data.yaml"], "not valid YAML at line 4"),
    (["cfg=eiou.yaml", "model=yolov8n-seg.yaml", *TINY],
     "a segmentation model needs polygon labels: data=shapes-mini has detection labels (use data=shapes-seg-mini)"),
    (["cfg=eiou.yaml", "model=yolo11n-pose.yaml", *TINY],
     "a pose model needs keypoint labels: data=shapes-mini has detection labels (use data=shapes-pose-mini)"),
    (["cfg=eiou.yaml", "model=yolo26n-seg.yaml", "data={files}/boxes_only/data.yaml"],
     "a segmentation model needs polygon labels ('cls x1 y1 x2 y2 ...'): dataset '{files}/boxes_only/data.yaml' has "
     "only boxes in its train labels"),
    (["cfg=eiou.yaml", "model=yolo26n-pose.yaml", "data={files}/boxes_only/data.yaml"],
     "a pose model needs keypoint labels: dataset '{files}/boxes_only/data.yaml' has no 'kpt_shape'"),
    (["cfg=eiou.yaml", "model=yolov8n-obb.yaml"], "its head is OBB (oriented boxes: their box loss is ProbIoU on "
                                                   "rotated boxes, a different family of box losses"),
    (["cfg=eiou.yaml", "model=rtdetr-l.yaml"], "its head is RTDETRDecoder (RT-DETR"),
    (["cfg=iou_aware.yaml", "model=yolo11n-seg.yaml", "data=shapes-seg-mini"],
     "iou_aware=true: the IoU-aware head attaches to the box tower of a detection head (Detect, v10Detect); "
     "'yolo11n-seg.yaml' is a segment model"),
    (["cfg=eiou.yaml", "model=yolo11n-pose.yaml", "data=shapes-pose-mini", "flipud=0.5"],
     "flipud=0.5 with data=shapes-pose-mini: ultralytics applies flip_idx (left <-> right) to vertical flips too"),
    (["cfg=eiou.yaml", "assigner_iou=nonsense"], "assigner_iou='nonsense' is out of range: must be one of ciou"),
    (["cfg=eiou.yaml", "resume=x.pt"], "resume=<last.pt> takes no other keys"),
    (["cfg=wiou_v3.yaml", "wiou_v3_alpha=0"], "wiou_v3_alpha=0.0 is out of range: must be > 1"),
    (["cfg=inner_ciou.yaml", "inner_ratio=0"], "inner_ratio=0.0 is out of range: must be in [0.5, 1.5]"),
    (["cfg=focaler_ciou.yaml", "focaler_d=0.9", "focaler_u=0.1"], "focaler_d=0.9 focaler_u=0.1: d must be below u"),
    (["cfg=eiou.yaml", "focaler_d=0.9", "focaler_u=0.1"], "focaler_d=0.9 focaler_u=0.1: d must be below u"),
    (["cfg=eiou.yaml", "nms_method=soft"], "nms_method='soft' is out of range: must be one of standard, diou"),
    (["cfg=ciou_class_balanced.yaml", "cls_class_balanced_beta=1.0"], "cls_class_balanced_beta=1.0 is out of range"),
    (["cfg=ciou_ap_loss.yaml", "iou_balanced_cls=true"], "iou_balanced_cls has no per-entry loss to re-weight"),
    (["cfg=iou_aware.yaml", "model=yolov8n-cls.yaml"], "its head is Classify (classification: no boxes)"),
]
VAL = [
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "workers=-1"], "workers=-1 is out of range"),
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "device=xyz"], "device='xyz' is not a device"),
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "device=cuda:0"], "no CUDA device here"),
    (["model={files}/text.pt", "data=shapes-mini"], "is not a PyTorch checkpoint"),
    (["model={files}/runs/done/weights/best.pt", "data={files}/no_names/data.yaml"], "has neither 'names'"),
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "split=test"], "has no 'test' split"),
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "nms=soft"], "nms='soft' is out of range"),
    (["model={files}/seg.pt", "data=shapes-seg-mini"], "the model's classes do not match the ground truth's"),
    (["model={files}/seg.pt", "data={files}/boxes_only/data.yaml"],
     "a segmentation model needs polygon labels ('cls x1 y1 x2 y2 ...'): dataset '{files}/boxes_only/data.yaml' has "
     "only boxes in its val labels"),
    (["model={files}/seg.pt", "data=shapes-mini"],
     "a segmentation model needs polygon labels: data=shapes-mini has detection labels (use data=shapes-seg-mini)"),
    (["model={files}/runs/done/weights/best.pt,{files}/seg.pt", "data=shapes-pose-mini"],
     "a segmentation model needs polygon labels: data=shapes-pose-mini has pose labels (use data=shapes-seg-mini)"),
    (["model={files}/pose.pt", "data={files}/boxes_only/data.yaml"],
     "a pose model needs keypoint labels: dataset '{files}/boxes_only/data.yaml' has no 'kpt_shape'"),
    (["model={files}/pose.pt", "data=shapes-seg-mini"],
     "a pose model needs keypoint labels: data=shapes-seg-mini has segmentation labels (use data=shapes-pose-mini)"),
    (["model={files}/pose.pt", "data=shapes-pose-mini"],
     "checkpoint '{files}/pose.pt' predicts keypoints of shape [17, 3]; dataset"),
]
EXPORT = [
    (["model={files}/text.pt"], "is not a PyTorch checkpoint"),
    (["model={files}/missing.pt"], "must be an existing .pt checkpoint"),
    (["model={files}/runs/done/weights/best.pt", "format=tflite"], "format='tflite' is out of range"),
    (["model={files}/runs/done/weights/best.pt", "imgsz=0"], "imgsz=0 is out of range"),
]
PROBES = [("train", a, m) for a, m in TRAIN] + [("val", a, m) for a, m in VAL] + [("export", a, m) for a, m in EXPORT]


@pytest.mark.slow
@pytest.mark.parametrize("command, args, message", PROBES,
                         ids=[f"{c}:{' '.join(a)[:60]}" for c, a, _ in PROBES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(command, args, message, files, tmp_path, monkeypatch,
                                                         capsys):
    line = probe(command, args, files, tmp_path, monkeypatch, capsys)
    assert message.format(files=files) in line, line


def test_voc_missing_tag_is_named(tmp_path):
    from boxloss.convert import ConversionError
    from boxloss.convert.voc import parse_voc_xml

    xml = tmp_path / "a.xml"
    xml.write_text("<annotation><size><width>10</width><height>10</height></size><object><name>a</name><bndbox>"
                   "<xmin>1</xmin><ymin>1</ymin><ymax>5</ymax></bndbox></object></annotation>")
    with pytest.raises(ConversionError, match=r"<bndbox><xmax> is missing"):
        parse_voc_xml(xml)
