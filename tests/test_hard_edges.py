"""Bad input at every entry point: exit status 2, one line naming the problem, and nothing written anywhere.

"Anywhere" is checked, not assumed: the working directory (where runs/ would go), ultralytics' own runs_dir, and
the dataset folder are listed before and after each command (helpers.assert_refused, the one harness of every
refusal test). The README's reliability line counts these probes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from helpers import assert_refused

TINY = ["data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0", "plots=False"]
# A "billion laughs" YAML of 280 bytes: six levels of ten aliases expand into more than a million values.
BOMB = "".join(f"l{i}: &l{i} [{','.join([f'*l{i - 1}' if i else 'x'] * 10)}]\n" for i in range(5)) + \
    f"epochs: [{','.join(['*l4'] * 10)}]\n"


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
    plain = "path: {root}\ntrain: images/train\nval: images/val\nnames: [a]\n"
    for name, yaml_text in {
        "no_names": "path: {root}\ntrain: images/train\nval: images/val\n",
        "empty_train": "path: {root}\ntrain: images/empty\nval: images/val\nnames: [a]\n",
        "broken_yaml": "path: {root}\ntrain: images/train\nval: [images/val\nnames: [a]\n",
        "boxes_only": "path: {root}\ntrain: images/train\nval: images/val\nnames: [a]\n",
        "no_labels": plain, "inf_label": plain, "latin1_label": plain,
        "yaml_bomb": plain + BOMB.replace("epochs", "bomb"),
    }.items():
        dataset = root / name
        for split in ("train", "val"):
            (dataset / "images" / split).mkdir(parents=True)
            Image.new("RGB", (32, 32)).save(dataset / "images" / split / "a.png")
            if name not in ("no_labels", "no_names", "empty_train", "broken_yaml"):
                (dataset / "labels" / split).mkdir(parents=True)
                (dataset / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
        (dataset / "images" / "empty").mkdir()
        (dataset / "data.yaml").write_text(yaml_text.format(root=dataset))
    (root / "inf_label" / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\ninf 0.5 0.5 0.1 0.1\n")
    latin1 = "0 0.5 0.5 0.2 0.2 # caf\xe9\n".encode("latin-1")
    (root / "latin1_label" / "labels" / "train" / "a.txt").write_bytes(latin1)
    (root / "bomb.yaml").write_text(BOMB)  # every key: the bomb sits under a valid one here, epochs
    (root / "unknown_key_bomb.yaml").write_text(BOMB.replace("epochs", "not_a_key"))
    (root / "utf16.yaml").write_bytes("box_loss: focal_eiou\nfocal_eiou_gamma: -1\n".encode("utf-16"))
    (root / "latin1.yaml").write_bytes("box_loss: eiou\nname: caf\xe9\n".encode("latin-1"))
    return root


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
    (["cfg=eiou.yaml", "model=yolov8n-obb.yaml", "data=shapes-obb-mini"],
     "box_loss=eiou takes axis-aligned boxes and the model predicts rotated boxes: use one of focal_reiou, gwd, kfiou, "
     "kld, probiou, reiou, rgiou, riou (unset: probiou, ultralytics' own)"),
    (["cfg=probiou.yaml", "model=yolo11n.yaml", "data=shapes-mini"],
     "box_loss=probiou takes rotated boxes and the model predicts axis-aligned boxes: use one of ciou, diou, eiou"),
    (["cfg=probiou.yaml", "assigner_iou=giou"],
     "assigner_iou=giou compares axis-aligned boxes and the model predicts rotated boxes: use probiou or same "
     "(unset: probiou, ultralytics' own)"),
    (["cfg=eiou.yaml", "assigner_iou=probiou"],
     "assigner_iou=probiou compares rotated boxes and the model predicts axis-aligned boxes: use ciou, iou, giou, "
     "diou, eiou or same"),
    (["cfg=probiou.yaml", "nms_method=diou"],
     "nms_method=diou suppresses axis-aligned boxes and the model predicts rotated boxes: use standard or exact"),
    (["cfg=eiou.yaml", "nms_method=exact"],
     "nms_method=exact suppresses rotated boxes and the model predicts axis-aligned boxes: use standard or diou"),
    (["cfg=kld.yaml", "assigner_iou=same"], "assigner_iou=same ranks anchors by the box loss's own IoU-type "
     "similarity, and box_loss=kld is not IoU-type; use assigner_iou=probiou (stock)"),
    (["cfg=kld.yaml", "data=shapes-mini"], "data=shapes-mini"),
    (["cfg=probiou.yaml", "iou_aware=true"], "iou_aware=true: the IoU-aware head attaches to the box tower of a "
                                             "detection head (Detect, v10Detect); 'yolo11n-obb.yaml' is an obb model"),
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
    (["cfg=eiou.yaml", "project={files}/text.pt"], "project='{files}/text.pt' is an existing file, not a folder"),
    (["cfg=eiou.yaml", "project={files}/text.pt/runs"], "is not a folder ({files}/text.pt is a file)"),
    (["cfg=focal_eiou.yaml", "assigner_iou=same"], "assigner_iou=same ranks anchors by the box loss's own IoU-type "
     "similarity, and box_loss=focal_eiou is not IoU-type"),
    (["cfg=smooth_l1.yaml", "assigner_iou=same"], "box_loss=smooth_l1 is not IoU-type"),
    (["cfg=eiou.yaml", "lr0=nan"], "'lr0=nan' is an invalid value"),
    (["cfg=eiou.yaml", "lr0=inf"], "'lr0=inf' is an invalid value"),
    (["cfg=focal_eiou.yaml", "focal_eiou_gamma=inf"], "focal_eiou_gamma=inf is not a finite number"),
    (["cfg=focal_eiou.yaml", "focal_eiou_gamma=-1e-3"], "focal_eiou_gamma=-0.001 is out of range: must be >= 0"),
    (["cfg=eiou.yaml", "classes=99", *TINY], "classes=99: class 99 is not one of the dataset's 5 classes (0-4)"),
    (["cfg=eiou.yaml", "classes=ring,blob", *TINY], "'blob' is neither a class index nor one of the dataset's names"),
    (["cfg=eiou.yaml", "classes=,", *TINY], "classes=',' selects no class"),
    (["cfg=eiou.yaml", "data={files}/inf_label/data.yaml"],
     "malformed label line {files}/inf_label/labels/train/a.txt:2: not finite numbers: 'inf 0.5 0.5 0.1 0.1'"),
    (["cfg=eiou.yaml", "data={files}/latin1_label/data.yaml"],
     "{files}/latin1_label/labels/train/a.txt: not UTF-8 text (byte 0xe9 at offset 23)"),
    (["cfg={files}/bomb.yaml"], "config '{files}/bomb.yaml': its aliases expand to 1,2"),
    (["cfg={files}/unknown_key_bomb.yaml"], "its aliases expand to 1,2"),
    (["cfg=eiou.yaml", "data={files}/yaml_bomb/data.yaml"], "data.yaml': its aliases expand to 1,2"),
    (["cfg=eiou.yaml", "epochs={{" + BOMB.replace(chr(10), ", ") + "}}"], "its aliases expand to 1,2"),  # a value
    (["cfg={files}/utf16.yaml"], "focal_eiou_gamma=-1.0 is out of range: must be >= 0"),  # read, then checked
    (["cfg={files}/latin1.yaml"], "config '{files}/latin1.yaml': not UTF-8 text (byte 0xe9 at offset 24)"),
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
    (["model={files}/runs/done/weights/best.pt", "data={files}/no_labels/data.yaml"],
     "the 'val' split of {files}/no_labels/data.yaml has no labels (1 images, 0 boxes): COCO AP is undefined"),
    (["model={files}/runs/done/weights/best.pt", "data=shapes-mini", "project={files}/text.pt"],
     "project='{files}/text.pt' is an existing file, not a folder"),
]
EXPORT = [
    (["model={files}/text.pt"], "is not a PyTorch checkpoint"),
    (["model={files}/missing.pt"], "must be an existing .pt checkpoint"),
    (["model={files}/runs/done/weights/best.pt", "format=tflite"], "format='tflite' is out of range"),
    (["model={files}/runs/done/weights/best.pt", "imgsz=0"], "imgsz=0 is out of range"),
    (["model={files}/runs/done/weights/best.pt", "opset=99"], "opset=99 is out of range: the installed torch and "
     "onnx export opsets 9-"),
    (["model={files}/runs/done/weights/best.pt", "opset=8"], "opset=8 is out of range"),
    (["model={files}/runs/done/weights/best.pt", "format=torchscript", "opset=17"],
     "opset=17 is an ONNX setting; format=torchscript has none"),
]
PROBES = [("train", a, m) for a, m in TRAIN] + [("val", a, m) for a, m in VAL] + [("export", a, m) for a, m in EXPORT]


@pytest.mark.slow
@pytest.mark.parametrize("command, args, message", PROBES,
                         ids=[f"{c}:{' '.join(a)[:60]}" for c, a, _ in PROBES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(command, args, message, files, tmp_path):
    """In this process, from an empty working directory; the fixture's files (checkpoints, datasets) watched too."""
    assert_refused(f"boxloss.cli.{command}", [a.format(files=files) for a in args], message.format(files=files),
                   cwd=tmp_path, watched=(files,))


def test_voc_missing_tag_is_named(tmp_path):
    from boxloss.convert import ConversionError
    from boxloss.convert.voc import parse_voc_xml

    xml = tmp_path / "a.xml"
    xml.write_text("<annotation><size><width>10</width><height>10</height></size><object><name>a</name><bndbox>"
                   "<xmin>1</xmin><ymin>1</ymin><ymax>5</ymax></bndbox></object></annotation>")
    with pytest.raises(ConversionError, match=r"<bndbox><xmax> is missing"):
        parse_voc_xml(xml)


# ------------------------------------------------------------------------------------- values accepted as given
def test_exponent_notation_is_a_float_on_the_command_line_and_in_a_config(tmp_path):
    """PyYAML (YAML 1.1) reads 1e-3 as a string; ultralytics' command line reads it as a float, and so do we."""
    from boxloss.keyvalues import split_keyvalues
    from boxloss.yolo.experiment import load_experiment

    assert split_keyvalues(["lr0=1e-3", "nwd_constant=1E1", "x=-2.5e+2", "y=inf", "z=1e", "w=e5"]) == {
        "lr0": 0.001, "nwd_constant": 10.0, "x": -250.0, "y": float("inf"), "z": "1e", "w": "e5"}
    argv = ["cfg=nwd.yaml", "lr0=1e-3", "nwd_constant=1e1", "data=shapes-mini"]
    resolved = load_experiment(split_keyvalues(argv)).settings
    assert resolved["lr0"] == 0.001 and resolved["nwd_constant"] == 10.0
    config = tmp_path / "exponent.yaml"
    config.write_text("box_loss: nwd\nlr0: 1e-3\nnwd_constant: 2.5E1\nname: 1e5run\n")
    resolved = load_experiment({"cfg": str(config), "data": "shapes-mini"}).settings
    assert resolved["lr0"] == 0.001 and resolved["nwd_constant"] == 25.0 and resolved["name"] == "1e5run"


def test_classes_by_name_become_indices():
    from boxloss.keyvalues import split_keyvalues
    from boxloss.yolo.experiment import load_experiment

    for classes, indices in (("ring,0", [0, 3]), ("[4, 1]", [1, 4])):
        argv = ["cfg=eiou.yaml", "data=shapes-mini", f"classes={classes}"]
        assert load_experiment(split_keyvalues(argv)).settings["classes"] == indices


# ------------------------------------------------------------------------------ images that are not what they claim
def decompression_bomb(path: Path) -> Path:
    """A 60-byte PNG whose header claims 30000 x 30000 pixels: PIL refuses it (DecompressionBombError)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0\0\0\0"))
                     + chunk(b"IEND", b""))
    return path


def test_a_decompression_bomb_is_an_unreadable_image_skipped_and_counted(files, tmp_path, monkeypatch, capsys):
    import json
    import shutil

    from boxloss.cli import val
    from boxloss.data.embedded import resolve_data
    from boxloss.data.yolo_format import unreadable_images

    mini = Path(resolve_data("shapes-mini")).parent
    dataset = tmp_path / "bomb"
    for kind in ("images", "labels"):
        shutil.copytree(mini / kind / "val", dataset / kind / "val")
    bomb = decompression_bomb(dataset / "images" / "val" / "bomb.png")
    (dataset / "labels" / "val" / "bomb.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (dataset / "data.yaml").write_text(f"path: {dataset}\ntrain: images/val\nval: images/val\n"
                                       "names: [rectangle, ellipse, bar, ring, triangle]\n")
    [(path, reason)] = unreadable_images([bomb])
    assert path == bomb and "decompression bomb" in reason
    monkeypatch.chdir(tmp_path)
    assert val.main([f"model={files}/runs/done/weights/best.pt", f"data={dataset}/data.yaml", "workers=0",
                     f"project={tmp_path}/val"]) == 0
    err = capsys.readouterr().err
    assert f"val.py: warning: skipping {bomb}: not a readable image (Image size (900000000 pixels) exceeds limit" \
        in err, err
    assert json.loads((tmp_path / "val/val/metrics.json").read_text())["skipped_images"] == 1


# ------------------------------------------------------------------------------------------- output permissions
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_outputs_made_in_a_temporary_folder_get_the_permissions_of_a_new_folder(tmp_path, umask):
    """mkdtemp makes drwx------; an output renamed from one (convert.py out=, val.py's run folder) must look like
    any folder made under the user's umask."""
    import os
    import stat

    from boxloss._io import make_temp_dir
    from boxloss.cli.convert import main as convert

    (tmp_path / "src").mkdir()
    for k in range(5):
        Image.new("RGB", (32, 24)).save(tmp_path / "src" / f"{k}.jpg")
        (tmp_path / "src" / f"{k}.xml").write_text(
            f"<annotation><filename>{k}.jpg</filename><size><width>32</width><height>24</height></size><object>"
            "<name>a</name><bndbox><xmin>2</xmin><ymin>2</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>"
            "</annotation>")
    previous = os.umask(umask)
    try:
        assert convert(["voc", f"annotations={tmp_path / 'src'}", f"out={tmp_path / 'out'}"]) == 0
        temporary = make_temp_dir(tmp_path, ".x.", ".partial")
    finally:
        os.umask(previous)
    expected = 0o777 & ~umask
    assert stat.S_IMODE((tmp_path / "out").stat().st_mode) == expected
    assert stat.S_IMODE(temporary.stat().st_mode) == expected


# ------------------------------------------------------------------------------------------ checks before writes
def published_gains(work: Path) -> Path:
    """A copy of the published results/gains/ in ``work`` (the script's default out= is relative)."""
    import shutil

    from helpers import REPO

    shutil.copytree(REPO / "results" / "gains", work / "results" / "gains")
    return work / "results" / "gains"


def rescore_benchmark(work: Path) -> Path:
    """A benchmark folder with one finished ciou run whose weights are gone."""
    from boxloss.benchmark.matrix import run_matrix
    from boxloss.benchmark.plan import build_plan
    from boxloss.evaluation import METRIC_KEYS

    out = work / "bench"
    plan = build_plan(["cfgs=ciou", "seeds=0", "data=shapes-mini", "epochs=1", f"out={out}"], command="test")
    run_matrix(plan, lambda spec, slot=None: {"val": dict.fromkeys(METRIC_KEYS, 0.5)}, log=lambda line: None,
               environment={"machine": {}, "versions": {}})
    return out


SCRIPTS = [
    ("matched_gains.py", ["data=shapes-mini", "losses=ciou,eiou", "batches=1", "write_configs=focal_eiou"],
     "write_configs: 'focal_eiou' is not measured (add it to losses=)"),
    ("matched_gains.py", ["data=shapes-mini", "losses=ciou", "batches=1"],
     "results/gains/initial_scale.json exists; add force=true to replace it, or choose another out="),
    ("matched_gains.py", ["data=shapes-mini", "losses=ciou,eiou", "batches=1", "out=fresh", "write_configs=eiou"],
     "cfg/eiou_matched.yaml exists; add force=true to replace it"),
    ("matched_gains.py", ["data=shapes-mini", "model=yolov8n-seg.yaml", "out=fresh"],
     "model='yolov8n-seg.yaml' is a segment model; matched_gains.py measures the initial box loss of a detection"),
    ("matched_gains.py", ["data=shapes-mini", "model=nope.yaml", "out=fresh"], "model YAML 'nope.yaml' not found"),
    ("matched_gains.py", ["data=shapes-mini", "out=afile"], "out='afile' is an existing file, not a folder"),
    ("matched_gains.py", ["data=shapes-mini", "losses=ciou,riou", "out=fresh"],
     "losses: riou takes rotated boxes; matched_gains.py measures a detection model"),
    ("bench_loss.py", ["step_losses=ciou,kld", "out=fresh/bench.md"],
     "step_losses: 'kld' is not a registered box loss for axis-aligned boxes"),
    ("rescore.py", ["out=bench", "cfgs=ciou", "label=../x"], "label='../x' must be a plain name"),
    ("rescore.py", ["out=bench", "cfgs=ciou,eiou"], "no finished runs of eiou in bench/results"),
    ("rescore.py", ["out=bench", "cfgs=ciou"], "ciou-s0: its weights"),
    ("rescore.py", ["out=bench", "cfgs=ciou", "nms=standard", "nms_diou_beta=0.5"], "it needs nms=diou"),
    ("simulate.py", ["losses=ciou", "centres=2", "iterations=1", "out=afile"],
     "out='afile' is an existing file, not a folder"),
    ("simulate.py", ["losses=ciou", "centres=2", "iterations=1", "out=sim", "device=cuda:0"],
     "device='cuda:0': no CUDA device here; use device=cpu"),
    ("simulate.py", ["losses=ciou", "centres=2", "iterations=1", "out=sim", "device=tpu"],
     "device='tpu' is not a device: use cpu, mps or CUDA indices"),
    ("bench_nms.py", ["model=afile"], "results/nms/nms_val_time.md exists; add force=true to replace it"),
    ("bench_obb_eval.py", ["pairs=100"], "results/obb_eval/obb_eval.md exists; add force=true to replace it"),
    ("bench_obb_eval.py", ["out=afile"], "out='afile' is an existing file, not a folder"),
    ("bench_obb_eval.py", ["pairs=10"], "pairs=10 is out of range: must be >= 100"),
]


@pytest.mark.parametrize("script, args, message", SCRIPTS, ids=[f"{s}:{' '.join(a)[-40:]}" for s, a, _ in SCRIPTS])
def test_scripts_check_everything_before_writing_and_never_replace_results_unasked(tmp_path, script, args, message):
    import shutil

    import torch

    from helpers import REPO

    if "cuda" in " ".join(args) and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    work = tmp_path / "work"
    work.mkdir()
    published_gains(work)
    shutil.copytree(REPO / "results" / "nms", work / "results" / "nms")
    shutil.copytree(REPO / "results" / "obb_eval", work / "results" / "obb_eval")
    rescore_benchmark(work)
    (work / "afile").write_text("precious")
    assert_refused(f"scripts/{script}", args, message, cwd=work, watched=(tmp_path, REPO / "results", REPO / "cfg"))
