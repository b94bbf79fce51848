"""COCO evaluation (boxloss.evaluation): hand-derived AP values, crowd regions, backend agreement, GT round trip.

The backends (pycocotools, the reference; faster-coco-eval; hotcoco) must agree to 1e-12 on every metric.

Every AP below is COCO's: greedy matching by descending score, precision made monotone (each point takes the
best precision at any higher recall), then read at the 101 recall points 0, 0.01, ..., 1 and averaged.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import fresh_interpreter_imports

from boxloss.evaluation import (AP_KEYS, BACKENDS, KEYPOINT_METRIC_KEYS, METRIC_KEYS, coco_to_yolo_lines,
                                evaluate, format_metrics_table, gt_from_coco_json, gt_from_yolo_dataset,
                                image_ids_by_path, yolo_to_coco)
from boxloss.evaluation.coco_eval import AGREEMENT_TOLERANCE, backend_disagreement, missing_backend, run_cocoeval
from boxloss.data.yolo_format import label_path, read_labels as read_yolo_labels, split_images
from boxloss.testing.detections import detections_from_gt, random_detections

REPO = Path(__file__).resolve().parents[1]
COCO128 = REPO.parent / "shared" / "datasets" / "coco128"
COCO128_JSON = COCO128 / "annotations" / "instances_train2017.json"
needs_coco128 = pytest.mark.skipif(not COCO128_JSON.is_file(),
                                   reason=f"coco128 not found at {COCO128} (the shared datasets folder is missing)")


def make_gt(boxes, crowd=(), width=640, height=480):
    """One image, one category; ``boxes`` regular objects and ``crowd`` regions, pixel [x, y, w, h]."""
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": list(b), "area": b[2] * b[3],
                    "iscrowd": int(is_crowd)}
                   for i, (b, is_crowd) in enumerate([(b, False) for b in boxes] + [(b, True) for b in crowd])]
    return {"images": [{"id": 1, "width": width, "height": height}], "annotations": annotations,
            "categories": [{"id": 1, "name": "thing"}]}


def det(bbox, score, image_id=1, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(bbox), "score": score}


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_box_at_iou_072(backend):
    """GT [0, 0, 100, 100], prediction [0, 0, 100, 72]: IoU = 7200 / 10000 = 0.72.

    It is a TP at thresholds 0.50 ... 0.70 (AP 1: precision 1 up to recall 1) and an FP from 0.75 on (AP 0), so
    AP = 5/10, AR100 = 0.5. The object is large (area 10000 > 96²): APl = AP, APs and APm have no objects (-1).
    """
    metrics = evaluate(make_gt([[0, 0, 100, 100]]), [det([0, 0, 100, 72], 0.9)], backend)
    assert set(metrics) == set(METRIC_KEYS)
    expected = {**{k: 1.0 for k in AP_KEYS[:5]}, **{k: 0.0 for k in AP_KEYS[5:]},
                "AP": 0.5, "APs": -1.0, "APm": -1.0, "APl": 0.5, "AR100": 0.5}
    assert metrics == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_objects_interpolation_and_a_crowd_region(backend):
    """Two objects A, B (100x100, large), a crowd region C, and four predictions, by score:

        0.95  exactly on C                 -> matches the crowd region: ignored (neither TP nor FP)
        0.90  IoU 0.82 with A  ([0,0,100,82])
        0.80  no overlap       (FP, also large)
        0.70  IoU 0.62 with B  ([200,0,100,62])

    Thresholds 0.50-0.60: TP, FP, TP -> recall .5, .5, 1; precision 1, .5, 2/3. Monotone envelope: 1 for recall
    <= .5, 2/3 above. 101 points: r = 0 ... 0.50 (51 points) read 1, r = 0.51 ... 1 (50 points) read 2/3:
    AP = (51 + 50 * 2/3) / 101 = 0.834983...
    Thresholds 0.65-0.80: TP, FP, FP -> recall reaches only .5: 51 points read 1, the rest 0: AP = 51/101.
    Thresholds 0.85-0.95: no TP: AP = 0.
    AP = (3 * 0.834983 + 4 * 51/101) / 10; AR100 = (3 * 1 + 4 * 0.5) / 10 = 0.5. Had the crowd prediction
    counted as an FP (it has the top score), precision at recall .5 would be 1/2, not 1.
    """
    gt = make_gt([[0, 0, 100, 100], [200, 0, 100, 100]], crowd=[[400, 0, 100, 100]])
    predictions = [det([400, 0, 100, 100], 0.95), det([0, 0, 100, 82], 0.90), det([0, 300, 100, 100], 0.80),
                   det([200, 0, 100, 62], 0.70)]
    metrics = evaluate(gt, predictions, backend)
    low, mid = (51 + 50 * 2 / 3) / 101, 51 / 101
    expected_ap = [low] * 3 + [mid] * 4 + [0.0] * 3
    assert [metrics[k] for k in AP_KEYS] == pytest.approx(expected_ap, abs=1e-12)
    assert metrics["AP"] == pytest.approx((3 * low + 4 * mid) / 10, abs=1e-12)
    assert metrics["APl"] == pytest.approx(metrics["AP"], abs=1e-12)
    assert metrics["APs"] == metrics["APm"] == -1.0
    assert metrics["AR100"] == pytest.approx(0.5, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_unpredicted_crowd_region_is_not_a_miss(backend):
    """A perfect prediction of the one object; the crowd region has none: recall and AP stay 1."""
    gt = make_gt([[10, 10, 50, 50]], crowd=[[300, 300, 200, 100]])
    metrics = evaluate(gt, [det([10, 10, 50, 50], 0.5)], backend)
    assert [metrics[k] for k in (*AP_KEYS, "AP", "AR100")] == pytest.approx([1.0] * 12, abs=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_predictions_gives_zero_not_an_error(backend):
    metrics = evaluate(make_gt([[0, 0, 10, 10]]), [], backend)
    assert metrics["AP"] == 0.0 and metrics["AR100"] == 0.0 and metrics["APs"] == 0.0 and metrics["APl"] == -1.0


def test_bad_predictions_and_backend_are_rejected():
    gt = make_gt([[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="image_id 7"):
        evaluate(gt, [det([0, 0, 10, 10], 0.5, image_id=7)])
    with pytest.raises(ValueError, match="bbox"):
        evaluate(gt, [det([0, 0, 10], 0.5)])
    with pytest.raises(ValueError, match="unknown backend"):
        evaluate(gt, [], backend="detectron")


def test_inputs_are_not_modified():
    gt = make_gt([[0, 0, 100, 100]])
    predictions = [det([0, 0, 100, 72], 0.9)]
    before = json.dumps([gt, predictions])
    for backend in BACKENDS:
        evaluate(gt, predictions, backend)
    assert json.dumps([gt, predictions]) == before


def assert_backends_agree(gt, predictions, iou_type="bbox", sigmas=None):
    """Every backend equals pycocotools within AGREEMENT_TOLERANCE (1e-12) on every metric; pycocotools' metrics."""
    keys = KEYPOINT_METRIC_KEYS if iou_type == "keypoints" else METRIC_KEYS
    results = {backend: evaluate(gt, predictions, backend, iou_type, sigmas) for backend in BACKENDS}
    differences = {(b, k): abs(results[b][k] - results["pycocotools"][k]) for b in BACKENDS for k in keys}
    assert max(differences.values()) <= AGREEMENT_TOLERANCE, differences
    assert backend_disagreement(results, keys=keys) is None
    assert all(list(metrics) == list(keys) for metrics in results.values())
    return results["pycocotools"]


def test_backends_agree_on_a_synthetic_set():
    """A small version of the benchmark's input: 150 images, 20 classes, 40 detections each, 5 % crowd."""
    data = random_detections(n_images=150, dets_per_image=40, n_classes=20, seed=3, crowd_fraction=0.05)
    metrics = assert_backends_agree(data.gt, data.predictions)
    assert 0.05 < metrics["AP"] < 0.95 and metrics["AP50"] > metrics["AP75"] > metrics["AP95"]


def test_backends_agree_on_bccd_test(bccd):
    """BCCD's test split (72 images of dense small cells, 3 classes) as val.py builds its ground truth, with
    detections imitated from it."""
    gt = gt_from_yolo_dataset(bccd[0] / "data.yaml", "test")
    assert len(gt["images"]) == 72
    metrics = assert_backends_agree(gt, detections_from_gt(gt))
    assert 0.2 < metrics["AP"] < 0.95 and metrics["APs"] > -1


def test_backend_disagreement_names_the_metric_and_the_backends():
    same = {k: 0.5 for k in METRIC_KEYS}
    assert backend_disagreement({"pycocotools": same, "hotcoco": dict(same)}) is None
    off = {**same, "AP75": 0.5 + 1e-9}
    message = backend_disagreement({"pycocotools": same, "faster_coco_eval": same, "hotcoco": off})
    assert message.startswith("AP75: hotcoco 0.500000001 vs pycocotools 0.5") and "> 1e-12" in message
    assert backend_disagreement({"pycocotools": same, "hotcoco": {**same, "AP": float("nan")}}).startswith("AP:")


@pytest.mark.parametrize("backend", ["hotcoco", "faster_coco_eval", "pycocotools"])
def test_a_backend_whose_package_is_missing_is_named(backend, monkeypatch):
    assert missing_backend(backend) is None
    monkeypatch.setitem(sys.modules, backend, None)  # the import now fails as if the package were not installed
    package = {"faster_coco_eval": "faster-coco-eval"}.get(backend, backend)
    assert missing_backend(backend) == f"backend {backend} is not installed (pip install {package})"
    assert missing_backend("detectron") == "unknown backend 'detectron': expected one of " + ", ".join(BACKENDS)


@needs_coco128
def test_backends_agree_on_coco128_official_json():
    """...and both equal what pycocotools' own ``summarize()`` prints (AP, AP50, AP75, APs, APm, APl, AR100)."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    gt = gt_from_coco_json(COCO128_JSON)
    predictions = detections_from_gt(gt)
    metrics = assert_backends_agree(gt, predictions)
    assert 0.2 < metrics["AP"] < 0.95 and metrics["APs"] > -1 and metrics["APl"] > -1
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO(str(COCO128_JSON))
        evaluator = COCOeval(coco_gt, coco_gt.loadRes([dict(p) for p in predictions]), "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    stats = evaluator.stats
    assert [metrics[k] for k in ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR100")] == pytest.approx(
        [stats[i] for i in (0, 1, 2, 3, 4, 5, 8)], abs=1e-12)


def iou_xywh(a, b):
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0.0, min(ax2, bx2) - max(a[0], b[0])) * max(0.0, min(ay2, by2) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@needs_coco128
def test_coco128_crowd_regions_are_kept_and_ignored():
    """The official JSON's 10 crowd regions stay iscrowd=1; a prediction on one is neither TP nor FP.

    Predictions: every regular object exactly (score 0.9) and every crowd region exactly (score 0.95, i.e.
    ranked first). With the crowd regions ignored every AP is 1; with them removed (as YOLO labels converted from
    COCO do) the same crowd predictions become top-ranked false positives and AP drops.
    """
    images = sorted((COCO128 / "train2017").glob("*.jpg"))
    gt = gt_from_coco_json(COCO128_JSON, images)
    assert len(gt["images"]) == 128 and len(gt["annotations"]) == 939
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]
    assert len(crowd) == 10
    official = json.loads(COCO128_JSON.read_text())
    assert {a["id"]: a["area"] for a in official["annotations"]} == {a["id"]: a["area"] for a in gt["annotations"]}
    regular = [a for a in gt["annotations"] if not a["iscrowd"]]
    # precondition: no crowd prediction could take a regular object of its class at IoU >= 0.5 instead
    assert all(iou_xywh(c["bbox"], r["bbox"]) < 0.5 for c in crowd for r in regular
               if (c["image_id"], c["category_id"]) == (r["image_id"], r["category_id"]))

    predictions = ([det(a["bbox"], 0.9, a["image_id"], a["category_id"]) for a in regular]
                   + [det(c["bbox"], 0.95, c["image_id"], c["category_id"]) for c in crowd])
    for backend in BACKENDS:
        metrics = evaluate(gt, predictions, backend)
        assert [metrics[k] for k in (*AP_KEYS, "AP", "AR100")] == pytest.approx([1.0] * 12, abs=1e-9)

    evaluator = run_cocoeval(gt, predictions, "pycocotools")
    crowd_scores = [e for e in evaluator.evalImgs if e is not None and e["aRng"] == [0, 1e10]
                    and any(s == 0.95 for s in e["dtScores"])]
    assert crowd_scores
    for e in crowd_scores:  # the crowd predictions are ignored at every threshold, never matched to an object
        columns = [i for i, s in enumerate(e["dtScores"]) if s == 0.95]
        assert e["dtIgnore"][:, columns].all()

    without_crowd = {**gt, "annotations": regular}  # control: now the same predictions are false positives
    assert evaluate(without_crowd, predictions)["AP50"] < 1 - 1e-4
    for e in run_cocoeval(without_crowd, predictions, "pycocotools").evalImgs:
        if e is not None and e["aRng"] == [0, 1e10]:
            columns = [i for i, s in enumerate(e["dtScores"]) if s == 0.95]
            assert not e["dtIgnore"][:, columns].any() and not e["dtMatches"][:, columns].any()


def test_format_metrics_table():
    rows = {"ciou": {k: 0.5 for k in METRIC_KEYS}, "eiou": {**{k: 0.25 for k in METRIC_KEYS}, "APs": -1.0}}
    table = format_metrics_table(rows, columns=("AP50", "APs"), first_column="loss")
    lines = table.splitlines()
    assert lines[0].split("|")[1].strip() == "loss" and [c.strip() for c in lines[0].split("|")[2:4]] == ["AP50", "APs"]
    assert set(lines[1].replace("|", "").replace(" ", "")) <= {"-", ":"}
    assert [c.strip() for c in lines[3].split("|")[1:4]] == ["eiou", "0.250", "-"]
    plain = format_metrics_table(rows, style="plain").splitlines()
    assert len(plain) == 3 and plain[1].split()[0] == "ciou" and len(plain[1].split()) == 1 + len(METRIC_KEYS)
    with pytest.raises(ValueError):
        format_metrics_table(rows, style="html")


# -------------------------------------------------------------------------------------------------------------
# Ground truth from YOLO datasets
# -------------------------------------------------------------------------------------------------------------
def parse_lines(lines):
    return [(int(v[0]), *map(float, v[1:])) for v in (line.split() for line in lines if line.strip())]


def test_gt_round_trip_on_the_embedded_dataset(mini_data):
    """gt.json of shapes-mini's val split converts back to the original label lines (6 decimals)."""
    import cv2

    gt = gt_from_yolo_dataset(mini_data, "val")
    images = split_images(mini_data, "val")
    assert [im["id"] for im in gt["images"]] == list(range(1, len(images) + 1))
    assert [im["file_name"] for im in gt["images"]] == sorted(im["file_name"] for im in gt["images"])
    assert [c["name"] for c in gt["categories"]] == ["rectangle", "ellipse", "bar", "ring", "triangle"]
    assert [c["id"] for c in gt["categories"]] == [1, 2, 3, 4, 5]
    back = coco_to_yolo_lines(gt)
    assert image_ids_by_path(gt) == {str(p.resolve()): i for i, p in enumerate(images, 1)}
    for image, path in zip(gt["images"], images):
        height, width = cv2.imread(str(path)).shape[:2]
        assert (image["width"], image["height"]) == (width, height)
        original = parse_lines(label_path(path).read_text().splitlines())
        converted = parse_lines(back[image["file_name"]])
        assert len(original) == len(converted) > 0
        for a, b in zip(original, converted):
            assert a[0] == b[0] and a[1:] == pytest.approx(b[1:], abs=1.5e-6)
    for ann in gt["annotations"]:
        assert ann["iscrowd"] == 0 and ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])


def test_gt_from_yolo_pixels_polygons_duplicates_and_exif(tmp_path):
    """Pixel boxes at the original size; a polygon line becomes its box; a duplicate line is dropped; a JPEG
    with EXIF orientation 6 (rotated 90°) has its sides swapped, as ultralytics reads it."""
    from PIL import Image

    (tmp_path / "images" / "val").mkdir(parents=True)
    (tmp_path / "labels" / "val").mkdir(parents=True)
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "val" / "a.png")
    exif = Image.Exif()
    exif[274] = 6
    Image.new("RGB", (200, 100)).save(tmp_path / "images" / "val" / "b.jpg", exif=exif)
    (tmp_path / "labels" / "val" / "a.txt").write_text(
        "1 0.5 0.5 0.5 0.2\n1 0.5 0.5 0.5 0.2\n0 0.1 0.2 0.3 0.2 0.3 0.6 0.1 0.6\n")
    (tmp_path / "data.yaml").write_text("train: images/val\nval: images/val\nnames: {0: cat, 1: dog}\n")

    gt = gt_from_yolo_dataset(tmp_path / "data.yaml")
    assert [(im["file_name"], im["width"], im["height"]) for im in gt["images"]] == [("a.png", 200, 100),
                                                                                     ("b.jpg", 100, 200)]
    boxes = [(a["category_id"], a["bbox"]) for a in gt["annotations"]]
    assert len(boxes) == 2
    assert boxes[0][0] == 2 and boxes[0][1] == pytest.approx([50, 40, 100, 20])
    assert boxes[1][0] == 1 and boxes[1][1] == pytest.approx([20, 20, 40, 40])
    assert read_yolo_labels(tmp_path / "labels" / "val" / "missing.txt") == []


def test_split_images_from_a_list_file(tmp_path):
    """A .txt split: './' lines are relative to the list; order and ids follow the sorted paths."""
    from PIL import Image

    (tmp_path / "images").mkdir()
    for name in ("z.png", "a.png"):
        Image.new("RGB", (8, 8)).save(tmp_path / "images" / name)
    (tmp_path / "val.txt").write_text("./images/z.png\n./images/a.png\n")
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: val.txt\nval: val.txt\nnames: [x]\n")
    assert [p.name for p in split_images(tmp_path / "data.yaml")] == ["a.png", "z.png"]
    gt = yolo_to_coco(split_images(tmp_path / "data.yaml"), ["x"])
    assert [(im["id"], im["file_name"]) for im in gt["images"]] == [(1, "a.png"), (2, "z.png")]
    with pytest.raises(ValueError, match="no 'test' entry"):
        split_images(tmp_path / "data.yaml", "test")


@needs_coco128
def test_coco_json_subset_and_class_mapping():
    """Restricting the official JSON to some images keeps their ids; 80 classes map onto COCO's 91 ids."""
    from ultralytics.data.converter import coco80_to_coco91_class

    from boxloss.yolo.coco_val import class_to_category

    images = sorted((COCO128 / "train2017").glob("*.jpg"))[:5]
    gt = gt_from_coco_json(COCO128_JSON, images)
    assert [im["file_name"] for im in gt["images"]] == [p.name for p in images]
    assert {a["image_id"] for a in gt["annotations"]} <= {im["id"] for im in gt["images"]}
    assert image_ids_by_path(gt, images) == {str(p.resolve()): int(p.stem) for p in images}
    with pytest.raises(ValueError, match="not in the COCO JSON"):
        gt_from_coco_json(COCO128_JSON, [Path("/nowhere/000000999999.jpg")])

    names = [c["name"] for c in sorted(gt["categories"], key=lambda c: c["id"])]
    assert class_to_category(names, gt["categories"]) == coco80_to_coco91_class()
    assert class_to_category({0: "dog", 1: "person"}, gt["categories"]) == [18, 1]
    with pytest.raises(ValueError, match=r"class 0 \('rectangle'\) has no category of that name"):
        class_to_category(["rectangle"], gt["categories"])
    # 80 classes that are not COCO's names: no silent 80 -> 91 mapping, the first mismatch is named
    with pytest.raises(ValueError, match=r"class 0 \('0'\) has no category.*applies only to COCO's 80 class names"):
        class_to_category([str(i) for i in range(80)], gt["categories"])
    # COCO's own names under a JSON that spells its categories differently: the 91-id mapping, by COCO's order
    renamed = [{**c, "name": f"category {c['id']}"} for c in gt["categories"]]
    from boxloss.yolo.coco_val import coco_names

    assert class_to_category(coco_names(), renamed) == coco80_to_coco91_class()


def test_to_coco_results_maps_paths_and_classes():
    from boxloss.yolo.coco_val import ImageDetections, to_coco_results

    captured = [ImageDetections("/data/images/val/b.png", np.array([[1.0, 2.0, 11.0, 22.0], [0, 0, 5, 5]]),
                                np.array([0.2, 0.7]), np.array([1, 0])),
                ImageDetections("/data/images/val/a.png", np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))]
    results = to_coco_results(captured, {"/data/images/val/a.png": 1, "/data/images/val/b.png": 2}, [5, 9])
    assert results == [det([0.0, 0.0, 5.0, 5.0], 0.7, 2, 5), det([1.0, 2.0, 10.0, 20.0], 0.2, 2, 9)]
    with pytest.raises(ValueError, match="not in the ground truth"):
        to_coco_results(captured, {"/data/images/val/a.png": 1}, [5, 9])


def test_evaluation_package_does_not_import_ultralytics():
    statement = "import boxloss.evaluation, boxloss.testing.detections, boxloss.data.yolo_format"
    assert fresh_interpreter_imports(statement, ("ultralytics",)) == []


def test_calibration_correlations_by_hand():
    """Three detections of one object: IoU 1 (score .9), IoU .81/1 = .81 (score .5), IoU 1/4 (below .5, dropped);
    a fourth of another class and one on a crowd region never match. Scores and IoUs rise together:
    Spearman = 1, Pearson of two points = 1. Reversing the scores gives −1."""
    from boxloss.evaluation.calibration import calibration

    gt = {"images": [{"id": 1, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "area": 100, "iscrowd": 0},
                          {"id": 2, "image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "area": 400,
                           "iscrowd": 1}]}
    dets = [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 10, 10], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 9, 9], "score": 0.5},
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5], "score": 0.95},
            {"image_id": 1, "category_id": 2, "bbox": [0, 0, 10, 10], "score": 0.8},
            {"image_id": 1, "category_id": 1, "bbox": [50, 50, 20, 20], "score": 0.7}]
    result = calibration(gt, dets)
    assert result == {"score_iou_pearson": pytest.approx(1.0), "score_iou_spearman": pytest.approx(1.0), "matched": 2}
    for det, score in zip(dets[:2], (0.1, 0.6)):
        det["score"] = score
    assert calibration(gt, dets)["score_iou_spearman"] == pytest.approx(-1.0)
    assert calibration(gt, dets[2:3])["score_iou_pearson"] is None  # nothing matched at IoU >= .5


def test_spearman_handles_ties_like_average_ranks():
    from boxloss.evaluation.calibration import _ranks

    np.testing.assert_array_equal(_ranks(np.array([0.3, 0.1, 0.3, 0.2])), [2.5, 0.0, 2.5, 1.0])


# -------------------------------------------------------------------------------------------------------------
# Masks (segm) and keypoints (OKS)
# -------------------------------------------------------------------------------------------------------------
def rle(mask):
    """COCO's compressed RLE of a binary (h, w) mask, as val.py writes it."""
    from pycocotools import mask as mask_utils

    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in encoded["size"]], "counts": encoded["counts"].decode("ascii")}


def mask_det(mask, score, image_id=1, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "segmentation": rle(mask), "score": score}


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_mask_at_iou_072(backend):
    """GT: the polygon of the square [10, 20) x [5, 15), rasterised by pycocotools to its 100 pixels; prediction:
    9 x 8 = 72 of those pixels, so mask IoU = 72 / 100 = 0.72 (the boxes differ, the masks decide). As for the box
    at IoU 0.72: a TP at 0.50 ... 0.70, an FP from 0.75 on: AP = 5/10, AR100 = 0.5; the object is small (area 100)."""
    from pycocotools import mask as mask_utils

    polygon = [10, 5, 20, 5, 20, 15, 10, 15]
    truth = mask_utils.decode(mask_utils.frPyObjects([polygon], 30, 40))[..., 0]
    assert truth.sum() == 100 and truth[5:15, 10:20].all()
    gt = {"images": [{"id": 1, "width": 40, "height": 30}], "categories": [{"id": 1, "name": "thing"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 5, 10, 10], "area": 100.0,
                           "iscrowd": 0, "segmentation": [polygon]}]}
    predicted = np.zeros((30, 40), np.uint8)
    predicted[6:14, 11:20] = 1
    metrics = evaluate(gt, [mask_det(predicted, 0.9)], backend, "segm")
    expected = {**{k: 1.0 for k in AP_KEYS[:5]}, **{k: 0.0 for k in AP_KEYS[5:]},
                "AP": 0.5, "APs": 0.5, "APm": -1.0, "APl": -1.0, "AR100": 0.5}
    assert list(metrics) == list(METRIC_KEYS) and metrics == pytest.approx(expected, abs=1e-12)
    assert evaluate(gt, [mask_det(truth, 0.9)], backend, "segm")["AP"] == pytest.approx(1.0, abs=1e-12)


def pose_gt(area=100.0):
    """Object 1: two labelled keypoints (5, 5) and (15, 5), area 100; object 2 elsewhere has no labelled keypoint
    (num_keypoints 0): COCO ignores it, so it is no miss."""
    return {"images": [{"id": 1, "width": 100, "height": 100}], "categories": [{"id": 1, "name": "thing"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 20, 10], "area": area,
                             "iscrowd": 0, "keypoints": [5, 5, 2, 15, 5, 1], "num_keypoints": 2},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [60, 60, 20, 10], "area": area,
                             "iscrowd": 0, "keypoints": [0, 0, 0, 0, 0, 0], "num_keypoints": 0}]}


@pytest.mark.parametrize("backend", BACKENDS)
def test_one_pose_at_oks_072(backend):
    """OKS = mean over labelled points of exp(-d² / (2 · area · (2σ)²)). σ = 0.25, area = 100: exp(-d² / 50). The
    first point exact (1), the second d² = 50 ln(1 / 0.44) away (0.44): OKS = 0.72, so keypoint AP is 5/10 as for a
    box at IoU 0.72, and AR20 0.5 (COCO's keypoint protocol: 20 detections, no small range; area 100 is neither
    medium nor large: -1). With σ = 0.5 the second point scores 0.44^(1/4) = 0.8145: OKS 0.907, a TP up to 0.90:
    AP 9/10 — the sigmas reach every backend."""
    d = math.sqrt(50 * math.log(1 / 0.44))
    prediction = {"image_id": 1, "category_id": 1, "keypoints": [5, 5, 0.9, 15 + d, 5, 0.8], "score": 0.9}
    metrics = evaluate(pose_gt(), [prediction], backend, "keypoints", [0.25, 0.25])
    expected = {**{k: 1.0 for k in AP_KEYS[:5]}, **{k: 0.0 for k in AP_KEYS[5:]},
                "AP": 0.5, "APm": -1.0, "APl": -1.0, "AR20": 0.5}
    assert list(metrics) == list(KEYPOINT_METRIC_KEYS) and metrics == pytest.approx(expected, abs=1e-12)
    wider = evaluate(pose_gt(), [prediction], backend, "keypoints", [0.5, 0.5])
    assert wider["AP"] == pytest.approx(0.9, abs=1e-12)
    assert (wider["AP90"], wider["AP95"]) == pytest.approx((1.0, 0.0), abs=1e-12)
    with pytest.raises(ValueError, match=r"3 OKS sigmas for keypoint sets of \[2\] points"):
        evaluate(pose_gt(), [prediction], backend, "keypoints", [0.25] * 3)


def test_bad_mask_and_keypoint_input_is_named():
    gt = pose_gt()
    with pytest.raises(ValueError, match=r"prediction 0: keypoints hold 5 numbers"):
        evaluate(gt, [{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 3, 4, 5], "score": 0.5}],
                 iou_type="keypoints")
    with pytest.raises(ValueError, match=r"prediction 0: mask size \[10, 10\] is not the image's"):
        evaluate(gt, [mask_det(np.ones((10, 10)), 0.5)], iou_type="segm")
    with pytest.raises(ValueError, match="needs image_id, category_id, segmentation"):
        evaluate(gt, [det([0, 0, 1, 1], 0.5)], iou_type="segm")
    with pytest.raises(ValueError, match="annotation 1 has no segmentation: segm evaluation needs it"):
        evaluate(gt, [mask_det(np.ones((100, 100)), 0.5)], iou_type="segm")
    with pytest.raises(ValueError, match="annotation 1 has no keypoints or num_keypoints"):
        evaluate(make_gt([[0, 0, 10, 10]]), [], iou_type="keypoints")
    with pytest.raises(ValueError, match="unknown iou_type 'rbox'"):
        evaluate(gt, [], iou_type="rbox")


def test_oks_sigmas_follow_ultralytics_rule():
    from ultralytics.utils.metrics import OKS_SIGMA

    from boxloss.evaluation.keypoints import COCO_KEYPOINT_SIGMAS, oks_sigmas

    assert oks_sigmas([4, 3]) == ([0.25] * 4, "1/K for each of the K = 4 keypoints (ultralytics' default without "
                                              "kpt_oks_sigmas)")
    sigmas, source = oks_sigmas([17, 3])
    assert sigmas == list(COCO_KEYPOINT_SIGMAS) and source.startswith("COCO's 17")
    assert sigmas == pytest.approx(OKS_SIGMA.tolist(), abs=1e-8)  # ultralytics' float32 copy of the same
    assert oks_sigmas([17, 2]) == ([1 / 17] * 17, oks_sigmas([17, 2])[1])  # ultralytics: COCO's only for [17, 3]
    assert oks_sigmas([2, 3], [0.1, 0.2]) == ([0.1, 0.2], "the dataset's kpt_oks_sigmas")
    for bad in ([0.1], [0.1, 0], [0.1, "x"], 0.1):
        with pytest.raises(ValueError, match="'kpt_oks_sigmas' must be 2 positive numbers"):
            oks_sigmas([2, 3], bad)


def test_embedded_polygons_are_the_rendered_masks(mini_seg_data):
    """shapes-seg-mini's val labels, read into gt.json and rasterised by pycocotools, are exactly the pixels each
    object owns in the rendered image (its visible mask), and ``area`` is their count."""
    from pycocotools import mask as mask_utils

    from boxloss.data.synthetic.render import render_sample

    params = json.loads((mini_seg_data.parent / "manifest.json").read_text())["params"]
    gt = gt_from_yolo_dataset(mini_seg_data, "val")
    checked = 0
    for image in gt["images"]:
        sample = render_sample(params["seed"], "val", int(Path(image["file_name"]).stem), params["imgsz"],
                               min_objects=params["min_objects"], max_objects=params["max_objects"],
                               min_visible=params["min_visible"], occlusion=params["occlusion"])
        objects = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        assert len(objects) == len(sample.visible)
        for annotation, visible in zip(objects, sample.visible):
            rasterised = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(
                annotation["segmentation"], image["height"], image["width"]))).astype(bool)
            assert np.array_equal(rasterised, visible) and annotation["area"] == visible.sum()
            checked += 1
    assert checked == len(gt["annotations"]) > 100


def imitated_masks(gt, seed=0):
    """Per object 1-3 masks: its own mask shifted by up to 3 px, eroded or dilated by a pixel, some of another
    class; scores noisy but higher for smaller changes."""
    import cv2
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    images = {im["id"]: im for im in gt["images"]}
    predictions = []
    for ann in gt["annotations"]:
        image = images[ann["image_id"]]
        truth = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], image["height"],
                                                                          image["width"])))
        for _ in range(rng.integers(1, 4)):
            dx, dy = rng.integers(-3, 4, 2)
            mask = np.roll(truth, (dy, dx), axis=(0, 1))
            change = rng.integers(-1, 2)
            if change:
                mask = (cv2.dilate if change > 0 else cv2.erode)(mask, np.ones((3, 3), np.uint8))
            category = ann["category_id"] if rng.random() < 0.9 else int(rng.integers(1, 6))
            score = float(np.clip(1 - 0.1 * (abs(dx) + abs(dy) + abs(change)) + rng.normal(0, 0.1), 0.01, 1))
            predictions.append(mask_det(mask, score, ann["image_id"], category))
    return predictions


def test_backends_agree_on_masks_of_the_embedded_data(mini_seg_data):
    gt = gt_from_yolo_dataset(mini_seg_data, "val")
    metrics = assert_backends_agree(gt, imitated_masks(gt), "segm")
    assert 0.05 < metrics["AP"] < 0.95 and metrics["AP50"] > metrics["AP75"] > metrics["AP95"]


def imitated_keypoints(gt, seed=0):
    """Per object 1-3 poses: its keypoints moved by N(0, s) px with s in [0.5, 6], a visibility score; some of
    another class."""
    rng = np.random.default_rng(seed)
    predictions = []
    for ann in gt["annotations"]:
        points = np.asarray(ann["keypoints"], dtype=float).reshape(-1, 3)
        for _ in range(rng.integers(1, 4)):
            spread = rng.uniform(0.5, 6)
            moved = points[:, :2] + rng.normal(0, spread, points[:, :2].shape)
            values = np.concatenate([moved, rng.random((len(points), 1))], 1).reshape(-1).tolist()
            category = ann["category_id"] if rng.random() < 0.9 else int(rng.integers(1, 6))
            predictions.append({"image_id": ann["image_id"], "category_id": category, "keypoints": values,
                                "score": float(np.clip(1 - spread / 8 + rng.normal(0, 0.1), 0.01, 1))})
    return predictions


def test_backends_agree_on_keypoints_of_the_embedded_data(mini_pose_data):
    gt = gt_from_yolo_dataset(mini_pose_data, "val")
    assert all(a["area"] == pytest.approx(0.53 * a["bbox"][2] * a["bbox"][3]) for a in gt["annotations"])
    metrics = assert_backends_agree(gt, imitated_keypoints(gt), "keypoints", [0.25] * 4)
    assert 0.05 < metrics["AP"] < 0.95 and metrics["AP50"] > metrics["AP95"]


def test_oks_on_the_ground_truth_is_ultralytics_kpt_iou(mini_pose_data):
    """The OKS that pycocotools computes on gt.json (area 0.53 · w · h, σ = 1/K) is the OKS ultralytics' own pose
    metric computes (``kpt_iou`` with its 0.53 · box area), pair by pair, on shapes-pose-mini's val objects."""
    import torch
    from ultralytics.utils.metrics import kpt_iou

    gt = gt_from_yolo_dataset(mini_pose_data, "val")
    predictions = imitated_keypoints(gt, seed=1)
    evaluator = run_cocoeval(gt, predictions, "pycocotools", "keypoints", [0.25] * 4)
    compared = 0
    for (image_id, category_id), oks in evaluator.ious.items():
        if len(oks) == 0:
            continue
        truth = [a for a in gt["annotations"] if (a["image_id"], a["category_id"]) == (image_id, category_id)]
        dets = sorted((p for p in predictions if (p["image_id"], p["category_id"]) == (image_id, category_id)),
                      key=lambda p: -p["score"])[:20]  # COCOeval's order and its 20
        theirs = kpt_iou(torch.tensor([a["keypoints"] for a in truth], dtype=torch.float64).view(len(truth), -1, 3),
                         torch.tensor([p["keypoints"] for p in dets], dtype=torch.float64).view(len(dets), -1, 3),
                         area=torch.tensor([a["bbox"][2] * a["bbox"][3] * 0.53 for a in truth], dtype=torch.float64),
                         sigma=[0.25] * 4)
        np.testing.assert_allclose(np.asarray(oks), theirs.numpy().T, rtol=1e-6, atol=1e-9)
        compared += oks.size
    assert compared > 500


@needs_coco128
def test_coco128_crowd_regions_are_ignored_for_masks():
    """The mask family on the official JSON: every regular object's own mask (score 0.9) and every crowd region's
    RLE (score 0.95, ranked first) give AP 1 at every threshold, on every backend: a mask on a crowd region is
    neither TP nor FP. Without the crowd regions the same predictions are false positives and AP drops."""
    from pycocotools.coco import COCO

    images = sorted((COCO128 / "train2017").glob("*.jpg"))
    gt = gt_from_coco_json(COCO128_JSON, images)
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    predictions = []
    for ann in gt["annotations"]:
        mask = coco.annToMask(ann)
        predictions.append(mask_det(mask, 0.95 if ann["iscrowd"] else 0.9, ann["image_id"], ann["category_id"]))
    metrics = assert_backends_agree(gt, predictions, "segm")
    assert [metrics[k] for k in (*AP_KEYS, "AP", "AR100")] == pytest.approx([1.0] * 12, abs=1e-9)
    regular = [a for a in gt["annotations"] if not a["iscrowd"]]
    assert evaluate({**gt, "annotations": regular}, predictions, iou_type="segm")["AP50"] < 1 - 1e-4


def test_to_coco_results_of_masks_and_keypoints():
    """Each family lists the same detections in the same order (by score), in COCO's own result format."""
    from boxloss.yolo.coco_val import ImageDetections, encode_masks, to_coco_results

    masks = np.zeros((2, 4, 6), np.uint8)
    masks[0, 1:3, 1:4] = 1
    masks[1, 0, 0] = 1
    keypoints = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    captured = [ImageDetections("/d/images/val/a.png", np.array([[1.0, 1, 4, 3], [0, 0, 1, 1]]), np.array([0.2, 0.7]),
                                np.array([1, 0]), masks=encode_masks(masks), keypoints=keypoints)]
    ids = {"/d/images/val/a.png": 3}
    box = to_coco_results(captured, ids, [5, 9])
    mask = to_coco_results(captured, ids, [5, 9], "mask")
    pose = to_coco_results(captured, ids, [5, 9], "pose")
    assert [(r["category_id"], r["score"]) for r in box] == [(5, 0.7), (9, 0.2)]
    assert [(r["category_id"], r["score"]) for r in mask] == [(5, 0.7), (9, 0.2)] == [
        (r["category_id"], r["score"]) for r in pose]
    from pycocotools import mask as mask_utils

    assert np.array_equal(mask_utils.decode(mask[1]["segmentation"]), masks[0]) and set(mask[0]) == {
        "image_id", "category_id", "segmentation", "score"}
    assert pose[0]["keypoints"] == keypoints[1].reshape(-1).tolist() and "bbox" not in pose[0]
    two_values = [ImageDetections("/d/images/val/a.png", np.zeros((1, 4)), np.ones(1), np.zeros(1, int),
                                  keypoints=np.array([[[1.0, 2.0], [3.0, 4.0]]]))]  # kpt_shape [2, 2]: no visibility
    assert to_coco_results(two_values, ids, [5], "pose")[0]["keypoints"] == [1.0, 2.0, 1.0, 3.0, 4.0, 1.0]
    with pytest.raises(ValueError, match="no pose predictions captured"):
        to_coco_results([ImageDetections("/d/images/val/a.png", np.zeros((0, 4)), np.zeros(0), np.zeros(0, int))],
                        ids, [5, 9], "pose")


def test_tide_of_masks_and_keypoints_is_relative_to_their_own_ap(mini_seg_data, mini_pose_data):
    """hotcoco's TIDE with mask IoU and with OKS: its AP at 0.5 and 0.75 is that family's AP50 / AP75 (1e-12), and
    its errors are of that family (the masks' and the boxes' decompositions differ)."""
    from boxloss.evaluation import tide_errors

    seg = gt_from_yolo_dataset(mini_seg_data, "val")
    pose = gt_from_yolo_dataset(mini_pose_data, "val")
    for gt, predictions, iou_type, sigmas in ((seg, imitated_masks(seg), "segm", None),
                                              (pose, imitated_keypoints(pose), "keypoints", [0.25] * 4)):
        metrics = evaluate(gt, predictions, "pycocotools", iou_type, sigmas)
        tide = tide_errors(gt, predictions, iou_type=iou_type, kpt_oks_sigmas=sigmas)
        assert tide["settings"]["iou_type"] == iou_type
        assert tide["settings"]["max_det"] == (20 if iou_type == "keypoints" else 100)
        for key in ("AP50", "AP75"):
            assert tide[key]["ap"] == pytest.approx(metrics[key], abs=1e-12) and 0.1 < metrics[key] < 0.9
            assert sum(tide[key]["counts"].values()) > 0


@needs_coco128
def test_tide_of_masks_ignores_crowd_regions_like_the_ap():
    """On coco128's official JSON (10 crowd regions), masks shifted by up to 4 px, some of the wrong class: the
    masks' TIDE AP equals segm AP50 / AP75."""
    from pycocotools.coco import COCO

    from boxloss.evaluation import tide_errors

    gt = gt_from_coco_json(COCO128_JSON, sorted((COCO128 / "train2017").glob("*.jpg")))
    coco = COCO()
    coco.dataset = gt
    coco.createIndex()
    rng = np.random.default_rng(0)
    predictions = []
    for ann in gt["annotations"]:
        mask = coco.annToMask(ann)
        for _ in range(2):
            moved = np.roll(mask, tuple(rng.integers(-4, 5, 2)), axis=(0, 1))
            category = ann["category_id"] if rng.random() < 0.9 else 1
            predictions.append(mask_det(moved, float(rng.random()), ann["image_id"], category))
    metrics = evaluate(gt, predictions, "hotcoco", "segm")
    tide = tide_errors(gt, predictions, iou_type="segm")
    assert [tide[k]["ap"] for k in ("AP50", "AP75")] == pytest.approx([metrics["AP50"], metrics["AP75"]], abs=1e-12)
