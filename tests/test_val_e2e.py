"""val.py end to end: a checkpoint trained for one epoch, evaluated; files re-checked independently; bad input."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

from boxloss.evaluation import AP_KEYS, METRIC_KEYS, TIDE_ERRORS, TIDE_ORACLES, tide_errors
from boxloss.evaluation.calibration import CALIBRATION_KEYS, calibration

from helpers import assert_refused, run_entry

REPORTED_KEYS = [*METRIC_KEYS, *CALIBRATION_KEYS, "skipped_images", "nms"]  # COCO metrics, calibration, what ran

TINY_TRAIN = ["cfg=ciou.yaml", "data=shapes-mini", "epochs=1", "imgsz=128", "batch=8", "workers=0", "plots=False"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mini_data):
    """``(tmp dir, best.pt)`` of one epoch of CIoU on shapes-mini at 128 px, trained through train.py."""
    tmp = tmp_path_factory.mktemp("val_e2e")
    result = run_entry("train.py", [*TINY_TRAIN, f"project={tmp}/runs"], tmp, tmp / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    best = tmp / "runs" / "ciou" / "weights" / "best.pt"
    assert best.is_file()
    return tmp, best


def pycocotools_reference(gt_path: Path, predictions_path: Path, iou_type: str = "bbox", sigmas=None) -> dict:
    """Metrics straight from pycocotools' COCOeval on the written files (not through boxloss.evaluation): ``bbox``
    and ``segm`` with its defaults, ``keypoints`` with the OKS ``sigmas`` given."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(gt_path))
        coco_dt = coco_gt.loadRes(str(predictions_path))
        evaluator = COCOeval(coco_gt, coco_dt, iou_type)
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(sigmas)
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats  # AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ... (keypoints: AP, AP50, AP75, APm,
    if iou_type == "keypoints":  # APl, AR20, ...; one maxDets, 20)
        precision = evaluator.eval["precision"][:, :, :, 0, 0]
        per_threshold = {key: float(np.mean(p[p > -1])) for key, p in zip(AP_KEYS, precision)}
        return {**per_threshold, "AP": stats[0], "APm": stats[3], "APl": stats[4], "AR20": stats[5],
                "_AP50": stats[1], "_AP75": stats[2]}
    precision = evaluator.eval["precision"][:, :, :, 0, 2]  # [T, R, K] area all, maxDets 100
    per_threshold = {key: float(np.mean(p[p > -1])) for key, p in zip(AP_KEYS, precision)}
    return {**per_threshold, "AP": stats[0], "APs": stats[3], "APm": stats[4], "APl": stats[5], "AR100": stats[8],
            "_AP50": stats[1], "_AP75": stats[2]}


def assert_tide_file(tide: dict, gt: dict, predictions: list, metrics: dict) -> None:
    """tide.json: TIDE at 0.5 and 0.75, recomputed from the written files, relative to metrics.json's AP50 / AP75."""
    assert tide == tide_errors(gt, predictions)
    assert list(tide) == ["AP50", "AP75", "settings"]
    for key in ("AP50", "AP75"):
        assert tide[key]["ap"] == pytest.approx(metrics[key], abs=1e-12)
        assert list(tide[key]["delta_ap"]) == [*TIDE_ERRORS, *TIDE_ORACLES]


@pytest.mark.slow
def test_val_after_one_epoch(trained, mini_data):
    """backend=hotcoco,faster_coco_eval: metrics.json is hotcoco's, checked in the run against faster-coco-eval's and
    pycocotools' (both written too), and here against pycocotools run independently on the written files."""
    tmp, best = trained
    network_log = tmp / "network_val.log"
    result = run_entry("val.py", [f"model={best}", "data=shapes-mini", "imgsz=128", "backend=hotcoco,faster_coco_eval",
                                  f"project={tmp}/val"], tmp, network_log)
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp / "val" / "val"
    assert f"val.py: run directory {run_dir}" in result.stdout
    assert "| model" in result.stdout and "AP95" in result.stdout and "ΔLoc" in result.stdout
    assert "backends agree: hotcoco, faster_coco_eval, pycocotools" in result.stdout
    assert result.stdout.index("AP95") < result.stdout.index("ΔLoc")  # the TIDE table follows the AP table
    assert not network_log.exists(), network_log.read_text()[:2000]

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == REPORTED_KEYS
    for other in ("faster_coco_eval", "pycocotools"):
        values = json.loads((run_dir / f"metrics_{other}.json").read_text())
        assert max(abs(metrics[k] - values[k]) for k in METRIC_KEYS) <= 1e-12

    gt = json.loads((run_dir / "gt.json").read_text())
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert len(gt["images"]) == 24 and len(predictions) > 0
    per_image = np.bincount([p["image_id"] for p in predictions])
    assert per_image.max() <= 100  # max_det = 100, COCO's rule
    reference = pycocotools_reference(run_dir / "gt.json", run_dir / "predictions.json")
    for key in METRIC_KEYS:
        assert metrics[key] == pytest.approx(reference[key], abs=1e-12), key
    assert {k: metrics[k] for k in CALIBRATION_KEYS} == calibration(gt, predictions)  # recomputed from the files
    assert metrics["AP50"] == pytest.approx(reference["_AP50"], abs=1e-12)
    assert metrics["AP75"] == pytest.approx(reference["_AP75"], abs=1e-12)
    assert_tide_file(json.loads((run_dir / "tide.json").read_text()), gt, predictions, metrics)
    table = (run_dir / "table.md").read_text()
    assert table.startswith("| model") and "| TIDE of" in table and "n Miss" in table
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*.tmp"))


@pytest.mark.slow
def test_predictions_match_ultralytics_own_json_export(trained, mini_data, tmp_path):
    """The captured detections are those of ultralytics' ``save_json`` export (which rounds boxes to 3 decimals
    and scores to 5, and names images by file stem), mapped to the same images and categories."""
    from boxloss.evaluation import gt_from_yolo_dataset, image_ids_by_path
    from boxloss.yolo import BoxLossYOLO
    from boxloss.yolo.coco_val import capture_detections, class_to_category, to_coco_results
    from boxloss.yolo.tasks import TASKS

    _, best = trained
    gt = gt_from_yolo_dataset(mini_data, "val")
    model = BoxLossYOLO(str(best))
    captured = capture_detections(model, TASKS["detect"].capture_validator, str(mini_data), save_dir=tmp_path / "ours",
                                  imgsz=128)
    ours = to_coco_results(captured, image_ids_by_path(gt), class_to_category(model.names, gt["categories"]))

    BoxLossYOLO(str(best)).val(data=str(mini_data), imgsz=128, max_det=100, save_json=True, plots=False,
                               project=str(tmp_path), name="theirs", exist_ok=True, verbose=False)
    theirs = json.loads((tmp_path / "theirs" / "predictions.json").read_text())
    stem_to_id = {Path(im["file_name"]).stem: im["id"] for im in gt["images"]}
    theirs = [{**p, "image_id": stem_to_id[Path(p["file_name"]).stem]} for p in theirs]
    assert len(ours) == len(theirs) > 0

    def ordered(predictions):
        return sorted(predictions, key=lambda p: (p["image_id"], -round(p["score"], 5), p["category_id"],
                                                  [round(x, 3) for x in p["bbox"]]))

    for a, b in zip(ordered(ours), ordered(theirs)):
        assert (a["image_id"], a["category_id"]) == (b["image_id"], b["category_id"])
        assert a["score"] == pytest.approx(b["score"], abs=6e-6)
        assert a["bbox"] == pytest.approx(b["bbox"], abs=6e-4)


@pytest.mark.slow
def test_two_checkpoints_side_by_side(trained):
    tmp, best = trained
    last = best.with_name("last.pt")
    result = run_entry("val.py", [f"model={best},{last}", "data=shapes-mini", "imgsz=128", f"project={tmp}/val",
                                  "name=both"], tmp, tmp / "network_two.log")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp / "val" / "both"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == ["ciou (ciou/best)", "ciou (ciou/last)"]
    assert all(list(m) == REPORTED_KEYS for m in metrics.values())
    gt = json.loads((run_dir / "gt.json").read_text())
    tide = json.loads((run_dir / "tide.json").read_text())
    assert list(tide) == list(metrics)
    for row, folder in (("ciou (ciou/best)", "ciou_ciou_best"), ("ciou (ciou/last)", "ciou_ciou_last")):
        predictions = json.loads((run_dir / folder / "predictions.json").read_text())
        assert_tide_file(tide[row], gt, predictions, metrics[row])
        reference = pycocotools_reference(run_dir / "gt.json", run_dir / folder / "predictions.json")
        assert all(metrics[row][k] == pytest.approx(reference[k], abs=1e-12) for k in METRIC_KEYS)  # hotcoco's
    assert "| loss" in result.stdout and "ciou (ciou/last) AP75" in result.stdout  # TIDE rows per checkpoint


@pytest.mark.slow
def test_a_detector_on_pose_and_segment_labels(trained):
    """A detection checkpoint evaluates on shapes-pose-mini (whose lines carry keypoints after the box) and on
    shapes-seg-mini (polygons): box metrics only, against the boxes ultralytics' loader takes from those lines."""
    tmp, best = trained
    for data, field in (("shapes-pose-mini", "keypoints"), ("shapes-seg-mini", "segmentation")):
        result = run_entry("val.py", [f"model={best}", f"data={data}", "imgsz=128", f"project={tmp}/val",
                                      f"name={data}"], tmp, tmp / "network_labels.log")
        assert result.returncode == 0, result.stderr[-3000:]
        run_dir = tmp / "val" / data
        assert list(json.loads((run_dir / "metrics.json").read_text())) == REPORTED_KEYS
        gt = json.loads((run_dir / "gt.json").read_text())
        assert len(gt["annotations"]) == 128 and all(field in a for a in gt["annotations"])
        assert not (run_dir / f"predictions_{'pose' if field == 'keypoints' else 'mask'}.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["model=missing/best.pt", "data=shapes-mini"], "model checkpoint 'missing/best.pt' not found"),
    (["model=best.pt", "data=shapes-mini", "imgsz=128", "bakend=both"], "unknown key 'bakend' (did you mean backend"),
    (["model=best.pt", "data=shapes-mini", "backend=detectron2"],
     "backend='detectron2' is out of range: must be one of pycocotools, faster_coco_eval, hotcoco, several of them "
     "comma-separated, or all"),
    (["model=best.pt", "data=shapes-mini", "backend=hotcoco,hotcoco"], "backend='hotcoco,hotcoco' is out of range"),
    (["data=shapes-mini"], "model= is required"),
    (["model=best.pt", "data=nowhere.yaml"], "dataset 'nowhere.yaml' not found"),
])
def test_bad_input_exits_2_with_one_line_and_no_directory(args, message, tmp_path, trained):
    trained_checkpoint = trained[1]
    import shutil

    shutil.copy(trained_checkpoint, tmp_path / "best.pt")  # a real one, so only the named problem is reported
    assert_refused("val.py", [*args, f"project={tmp_path / 'val'}"], message, cwd=tmp_path)


def test_unreadable_checkpoint_is_bad_input(tmp_path, mini_data):
    (tmp_path / "best.pt").write_bytes(b"not a checkpoint")
    line = assert_refused("val.py", ["model=best.pt", "data=shapes-mini", f"project={tmp_path}/val"], cwd=tmp_path)
    assert line.startswith("val.py: error: model checkpoint 'best.pt' is not a PyTorch checkpoint"), line


@pytest.mark.slow
@pytest.mark.parametrize("blocked, backend, message", [
    ("faster_coco_eval", "faster_coco_eval",
     "backend faster_coco_eval is not installed (pip install faster-coco-eval)"),
    ("hotcoco", "hotcoco", "backend hotcoco is not installed (pip install hotcoco)"),
    ("hotcoco", "pycocotools", "backend hotcoco is not installed (pip install hotcoco): tide.json (the TIDE error "
                               "decomposition) needs it"),
])
def test_a_missing_evaluator_package_is_one_line_and_exit_2(blocked, backend, message, trained, tmp_path,
                                                             monkeypatch):
    """val.py where importing the package fails (sys.modules[name] = None, as Python has it for a module that is
    not there)."""
    import shutil
    import sys

    shutil.copy(trained[1], tmp_path / "best.pt")
    monkeypatch.setitem(sys.modules, blocked, None)
    args = ["model=best.pt", "data=shapes-mini", f"backend={backend}", f"project={tmp_path / 'val'}"]
    assert_refused("val.py", args, message, cwd=tmp_path, exact=True)


@pytest.mark.slow
def test_backends_that_disagree_fail_with_one_line_naming_the_metric(trained, tmp_path, monkeypatch, capsys):
    """hotcoco's AP75 made 1e-9 off: the cross-check refuses the run (exit 1, one line), nothing is written."""
    from boxloss.cli import val as val_cli
    from boxloss.evaluation import checkpoint_eval

    real_evaluate = checkpoint_eval.evaluate

    def evaluate(gt, predictions, backend, *iou_type):
        metrics = real_evaluate(gt, predictions, backend, *iou_type)
        return {**metrics, "AP75": metrics["AP75"] + 1e-9} if backend == "hotcoco" else metrics

    monkeypatch.setattr(checkpoint_eval, "evaluate", evaluate)
    project = tmp_path / "val"
    code = val_cli.main([f"model={trained[1]}", "data=shapes-mini", "imgsz=128", "backend=hotcoco,pycocotools",
                         f"project={project}"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert lines[-1].startswith("val.py: error: backends disagree on ciou: AP75: hotcoco ")
    assert "vs pycocotools" in lines[-1] and lines[-1].endswith("> 1e-12)")
    assert not project.exists() or list(project.iterdir()) == []


def untrained_checkpoint(path: Path, names: list[str], class_bias: float | None = None) -> Path:
    """A seeded, untrained YOLOv8n with these class names saved as a checkpoint: the plumbing, not the numbers.
    ``class_bias`` replaces the head's initial class-logit bias (ultralytics' prior is ~log(5 / nc / cells): with
    80 classes no score reaches the validation's conf 0.001, and an untrained model would detect nothing)."""
    import torch

    from boxloss.yolo import BoxLossDetectionModel

    torch.manual_seed(0)
    model = BoxLossDetectionModel("yolov8n.yaml", nc=len(names), verbose=False)
    model.names = dict(enumerate(names))
    if class_bias is not None:
        for branch in model.model[-1].cv3:
            branch[-1].bias.data.fill_(class_bias)
    torch.save({"model": model, "train_args": {"box_loss": "ciou", "imgsz": 128}}, path)
    return path


@pytest.mark.slow
def test_hotcoco_metrics_equal_pycocotools_on_bccd_test(bccd, tmp_path):
    """val.py (default backend hotcoco) on BCCD's test split, converted from ../shared: metrics.json equals
    pycocotools run on the written gt.json and predictions.json, and tide.json is relative to its AP50 / AP75."""
    import yaml

    data_yaml = bccd[0] / "data.yaml"
    names = yaml.safe_load(data_yaml.read_text())["names"]
    names = list(names.values()) if isinstance(names, dict) else names
    untrained_checkpoint(tmp_path / "bccd3.pt", names)
    result = run_entry("val.py", ["model=bccd3.pt", f"data={data_yaml}", "split=test", "imgsz=128", "batch=16",
                                  f"project={tmp_path}/val"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "val" / "val"
    gt = json.loads((run_dir / "gt.json").read_text())
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert len(gt["images"]) == 72 and len(predictions) > 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    reference = pycocotools_reference(run_dir / "gt.json", run_dir / "predictions.json")
    assert all(metrics[k] == pytest.approx(reference[k], abs=1e-12) for k in METRIC_KEYS)
    assert_tide_file(json.loads((run_dir / "tide.json").read_text()), gt, predictions, metrics)


COCO128 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "coco128"


@pytest.mark.slow
@pytest.mark.skipif(not (COCO128 / "annotations" / "instances_train2017.json").is_file(),
                    reason=f"coco128 not found at {COCO128} (the shared datasets folder is missing)")
def test_coco_json_ground_truth(tmp_path):
    """``coco_json=``: gt.json is the official JSON for the split's images (ids, 91-id categories, areas and the 10
    crowd regions kept), predictions use COCO's ids. The model is an untrained 80-class YOLOv8n saved as a
    checkpoint (the test is about the plumbing, not the numbers); the images are symlinked so nothing is written
    into the shared folder (ultralytics writes a label cache next to the labels). backend=hotcoco: metrics.json
    equals pycocotools run on the written files."""
    from ultralytics.data.converter import coco80_to_coco91_class

    official = json.loads((COCO128 / "annotations" / "instances_train2017.json").read_text())
    names = [c["name"] for c in sorted(official["categories"], key=lambda c: c["id"])]
    (tmp_path / "images" / "val").mkdir(parents=True)
    for image in sorted((COCO128 / "train2017").glob("*.jpg"))[:32]:
        (tmp_path / "images" / "val" / image.name).symlink_to(image)
    (tmp_path / "data.yaml").write_text(json.dumps({"path": str(tmp_path), "train": "images/val", "val": "images/val",
                                                    "names": names}))
    untrained_checkpoint(tmp_path / "coco80.pt", names, class_bias=-3.0)

    result = run_entry("val.py", ["model=coco80.pt", "data=data.yaml", "imgsz=128", "batch=16", "backend=hotcoco",
                                  f"coco_json={COCO128 / 'annotations' / 'instances_train2017.json'}",
                                  f"project={tmp_path}/val"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "val" / "val"
    gt = json.loads((run_dir / "gt.json").read_text())
    ids = {int(p.stem) for p in (tmp_path / "images" / "val").iterdir()}
    assert {im["id"] for im in gt["images"]} == ids
    expected = [a for a in official["annotations"] if a["image_id"] in ids]
    assert gt["annotations"] == expected and gt["categories"] == official["categories"]
    assert sum(a["iscrowd"] for a in gt["annotations"]) == sum(a["iscrowd"] for a in expected) > 0
    predictions = json.loads((run_dir / "predictions.json").read_text())
    assert {p["image_id"] for p in predictions} <= ids and len(predictions) > 0
    assert {p["category_id"] for p in predictions} <= set(coco80_to_coco91_class())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == REPORTED_KEYS
    reference = pycocotools_reference(run_dir / "gt.json", run_dir / "predictions.json")  # with the crowd regions
    assert all(metrics[k] == pytest.approx(reference[k], abs=1e-12) for k in METRIC_KEYS)
    assert_tide_file(json.loads((run_dir / "tide.json").read_text()), gt, predictions, metrics)


def test_rows_are_named_by_loss_and_head():
    from boxloss.yolo.val_run import _row_names

    paths = [Path("runs/a/weights/best.pt"), Path("runs/b/weights/best.pt"), Path("runs/c/weights/best.pt")]
    infos = [{"box_loss": "ciou", "train_args": {}}, {"box_loss": "ciou", "train_args": {"iou_aware": True}},
             {"box_loss": "eiou", "train_args": {"iou_aware": False}}]
    assert _row_names(paths, infos) == ["ciou", "ciou+iou_aware", "eiou"]


@pytest.mark.slow
@pytest.mark.skipif(not (COCO128 / "annotations" / "instances_train2017.json").is_file(),
                    reason=f"coco128 not found at {COCO128} (the shared datasets folder is missing)")
def test_coco128_segments_train_and_val_reports_mask_ap_against_the_official_json(tmp_path):
    """Real masks end to end: convert.py coco task=segment on coco128, one epoch of yolov8n-seg with EIoU at 64 px
    on its polygons (train.py), then val.py with coco_json= the official annotations (backend=hotcoco,pycocotools,
    checked against each other in the run): metrics.json holds the box metrics and, under "mask", the same keys on
    mask IoU; gt.json is the official JSON with its 10 crowd regions, which pycocotools, run here on the written
    gt.json and predictions_mask.json, ignores exactly as the run did (same numbers). conf=0.0001: after one epoch
    from scratch on 80 classes every score is below ultralytics' 0.001, and the numbers would all be zero."""
    official = COCO128 / "annotations" / "instances_train2017.json"
    out = tmp_path / "coco128-seg"
    converted = run_entry("scripts/convert.py", ["coco", f"images={COCO128 / 'train2017'}", f"json={official}",
                                                 f"out={out}", "task=segment"], tmp_path, tmp_path / "network.log")
    assert converted.returncode == 0, converted.stderr[-2000:]
    assert "929 written" in converted.stdout and "crowd 10" in converted.stdout
    trained = run_entry("train.py", ["cfg=eiou.yaml", "model=yolov8n-seg.yaml", f"data={out / 'data.yaml'}",
                                     "epochs=1", "imgsz=64", "batch=16", "workers=0", "plots=False",
                                     f"project={tmp_path}/runs", "name=seg"], tmp_path, tmp_path / "network.log")
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = run_entry("val.py", [f"model={tmp_path}/runs/seg/weights/best.pt", f"data={out / 'data.yaml'}",
                                  f"coco_json={official}", "imgsz=64", "conf=0.0001", "backend=hotcoco,pycocotools",
                                  f"project={tmp_path}/val"], tmp_path, tmp_path / "network.log")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "network.log").exists()
    assert "| eiou mask " in result.stdout and "backends agree: hotcoco, pycocotools" in result.stdout
    run_dir = tmp_path / "val" / "val"
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics) == [*REPORTED_KEYS, "mask"] and list(metrics["mask"]) == list(METRIC_KEYS)
    gt = json.loads((run_dir / "gt.json").read_text())
    assert len(gt["images"]) == 128 and sum(a["iscrowd"] for a in gt["annotations"]) == 10
    masks = json.loads((run_dir / "predictions_mask.json").read_text())
    sizes = {im["id"]: [im["height"], im["width"]] for im in gt["images"]}
    assert masks and all(m["segmentation"]["size"] == sizes[m["image_id"]] for m in masks)
    boxes = json.loads((run_dir / "predictions.json").read_text())
    assert [(m["image_id"], m["score"]) for m in masks] == [(b["image_id"], b["score"]) for b in boxes]
    for family, predictions, iou_type in (("box", "predictions.json", "bbox"), ("mask", "predictions_mask.json",
                                                                                 "segm")):
        reference = pycocotools_reference(run_dir / "gt.json", run_dir / predictions, iou_type)
        values = metrics if family == "box" else metrics["mask"]
        assert all(values[k] == pytest.approx(reference[k], abs=1e-12) for k in METRIC_KEYS), family
    assert metrics["mask"]["AR100"] > 0  # masks that found objects: the comparison is not of zeros alone
    tide = json.loads((run_dir / "tide_mask.json").read_text())
    assert [tide[k]["ap"] for k in ("AP50", "AP75")] == pytest.approx(
        [metrics["mask"]["AP50"], metrics["mask"]["AP75"]], abs=1e-12)
