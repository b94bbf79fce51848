"""COCO AP of oriented boxes (``evaluate(..., iou_type="obb")``, hotcoco's ``"obb"``): its IoU against independent
exact IoUs, a hand-built case with every AP derived by hand, the 45° square, crowd regions, area ranges, TIDE, the
backends that refuse, bad input, and the ground truth of a YOLO OBB dataset.

hotcoco is the only evaluator of this family, so it is checked from outside: its IoU of each pair is read back from its
own matching (a detection matches at threshold t iff IoU >= t) and compared with an independent float64 polygon
clipping (tests/test_ops_rotated.py) and with torchvision's rotated IoU; its AP is compared with pycocotools'
matching and accumulation run on that float64 IoU (:class:`ReferenceRotatedCOCOeval`).

AP is COCO's: greedy matching by descending score, precision made monotone (each point takes the best precision at
any higher recall), read at the 101 recall points 0, 0.01, ..., 1 and averaged.
"""

import contextlib
import io
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from boxloss.data.yolo_format import label_path
from boxloss.evaluation import (AP_KEYS, METRIC_KEYS, default_backend, evaluate, gt_from_yolo_dataset,
                                obb_annotation, tide_errors, yolo_to_coco)
from boxloss.evaluation.coco_eval import missing_backend, summarize_arrays
from boxloss.ops.rotated import rotated_iou, xywhr_corners
from boxloss.testing.detections import random_oriented_detections
from test_ops_rotated import random_pairs, reference_iou

REPO_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"
DOTA8 = REPO_DATASETS / "dota8" / "dota8.yaml"
needs_dota8 = pytest.mark.skipif(not DOTA8.is_file(), reason=f"dota8 not found at {DOTA8.parent}")


def oriented_gt(objects, images=1, categories=1, width=640, height=480):
    """Ground truth from ``(image_id, category_id, [cx, cy, w, h, angle][, iscrowd])`` tuples."""
    annotations = [{"id": i + 1, "image_id": o[0], "category_id": o[1], **obb_annotation(o[2]),
                    "iscrowd": o[3] if len(o) > 3 else 0} for i, o in enumerate(objects)]
    return {"images": [{"id": i + 1, "width": width, "height": height} for i in range(images)],
            "annotations": annotations, "categories": [{"id": c + 1, "name": f"c{c + 1}"} for c in range(categories)]}


def odet(obb, score, image_id=1, category_id=1):
    return {"image_id": image_id, "category_id": category_id, "obb": [float(v) for v in obb], "score": score}


def hotcoco_matches(gt, predictions, thresholds):
    """hotcoco's matching at each of ``thresholds``: ``{image_id: (T, D) matched}`` for area "all"."""
    from hotcoco import COCO, COCOeval

    evaluator = COCOeval(COCO(gt), COCO(gt).loadRes(predictions), "obb")
    evaluator.params.iouThrs = [float(t) for t in thresholds]
    evaluator.evaluate()
    return {e["image_id"]: np.asarray(e["dtMatches"]) != 0 for e in evaluator.evalImgs
            if e is not None and e["aRng"][0] == 0 and e["aRng"][1] > 1e9}


# ---------------------------------------------------------------------------------------------------------------
# hotcoco's IoU
# ---------------------------------------------------------------------------------------------------------------
def test_hotcoco_angle_is_ultralytics_radians_with_the_same_sign():
    """The pair of test_ops_rotated's sign test: two 100 x 2 strips along y = x (θ = +π/4), one shifted by (10, 10)
    along it: IoU 0.7522 (matched at 0.75, not at 0.76). Read with the opposite sign, both strips would lie along
    y = −x and the shift would part them (IoU 0, as for the pair given at −π/4); read in degrees, both would be nearly
    horizontal 2-px strips shifted 10 px apart (IoU 0)."""
    overlap = 2 * (100 - 10 * math.sqrt(2))
    assert 0.75 < overlap / (400 - overlap) < 0.76
    gt = oriented_gt([(1, 1, [100, 100, 100, 2, math.pi / 4])])
    matched = hotcoco_matches(gt, [odet([110, 110, 100, 2, math.pi / 4], 0.9)], [0.5, 0.75, 0.76])[1]
    assert matched[:, 0].tolist() == [True, True, False]
    across = oriented_gt([(1, 1, [100, 100, 100, 2, -math.pi / 4])])  # both along y = −x: the shift is sideways
    assert not hotcoco_matches(across, [odet([110, 110, 100, 2, -math.pi / 4], 0.9)], [1e-9])[1].any()


def test_hotcoco_iou_is_the_exact_iou_on_random_pairs():
    """One pair per image; thresholds just below and just above each pair's float64 reference IoU: hotcoco matches
    at the first and not at the second, so its IoU is the reference within 1e-9. torchvision's (float32) agrees to
    2e-6."""
    target, pred = random_pairs(400, seed=11)
    reference = np.array([reference_iou(p, t) for p, t in zip(pred, target)])
    torchvision = np.diag(rotated_iou(pred, target))
    np.testing.assert_allclose(torchvision, reference, rtol=0, atol=2e-6)
    gt = oriented_gt([(i + 1, 1, t) for i, t in enumerate(target)], images=len(target), width=1000, height=1000)
    predictions = [odet(p, 0.5, i + 1) for i, p in enumerate(pred)]
    checked = (reference > 1e-6) & (reference < 1 - 1e-6)
    assert checked.sum() > 300 and (reference == 0).sum() > 10
    delta = 1e-9
    thresholds = sorted({*(reference[checked] - delta), *(reference[checked] + delta), 1e-12})
    position = {t: k for k, t in enumerate(thresholds)}
    matches = hotcoco_matches(gt, predictions, thresholds)
    for i, iou in enumerate(reference):
        matched = matches[i + 1][:, 0]
        if checked[i]:
            assert matched[position[iou - delta]] and not matched[position[iou + delta]], (i, iou)
        elif iou == 0:
            assert not matched.any(), (i, "disjoint boxes must not match at any threshold")


def test_the_same_rectangle_written_another_way_matches_at_every_threshold():
    """(w, h, θ), (h, w, θ + π/2) and (w, h, θ + π) are one rectangle: IoU 1 with each other, AP 1."""
    box = [300.0, 200.0, 120.0, 30.0, 0.4]
    gt = oriented_gt([(1, 1, box)])
    for other in ([300.0, 200.0, 30.0, 120.0, 0.4 + math.pi / 2], [300.0, 200.0, 120.0, 30.0, 0.4 + math.pi],
                  [300.0, 200.0, 30.0, 120.0, 0.4 - math.pi / 2]):
        metrics = evaluate(gt, [odet(other, 0.9)], iou_type="obb")
        assert all(metrics[key] == pytest.approx(1.0, abs=1e-12) for key in AP_KEYS)


# ---------------------------------------------------------------------------------------------------------------
# A hand-built case
# ---------------------------------------------------------------------------------------------------------------
# Image 1: A = 40 x 40 square at (100, 100), θ = 0 (area 1600: medium); B = 100 x 10 strip at (300, 300), θ = π/6
# (area w·h = 1000: small; its axis-aligned extent, 91.6 x 58.7 = 5373, would be medium).
# Image 2: C = 60 x 20 at (200, 200), θ = −0.4 (area 1200: medium).
THETA_C = -0.4
HAND_GT = oriented_gt([(1, 1, [100, 100, 40, 40, 0.0]), (1, 1, [300, 300, 100, 10, math.pi / 6]),
                       (2, 1, [200, 200, 60, 20, THETA_C])], images=2)
HAND_DETECTIONS = [
    odet([100, 100, 40, 40, math.pi / 4], 0.9, 1),                  # d1: A turned 45°, IoU 1/√2 = 0.7071
    odet([300, 300, 10, 100, math.pi / 6 + math.pi / 2], 0.8, 1),   # d2: B as (h, w, θ + π/2), IoU 1
    odet([300, 300, 100, 10, math.pi / 6 + math.pi / 2], 0.7, 1),   # d3: across B, IoU 100 / 1900 = 0.053
    odet([200 + 14 * math.cos(THETA_C), 200 + 14 * math.sin(THETA_C), 60, 20, THETA_C], 0.6, 2),  # d4: C slid 14 px
    odet([200, 200, 60, 20, THETA_C], 0.5, 2),                      # d5: C exactly
]
# d4 overlaps C on 46 x 20 = 920: IoU 920 / (2400 − 920) = 0.6216.
#
# "all", scores d1 > ... > d5, 3 objects:
#   t <= 0.60: TP TP FP TP FP(d5: C already taken by d4). Precision 1, 1, 2/3, 3/4, 3/5 at recall 1/3, 2/3, 2/3, 1, 1:
#              envelope 1 up to recall 2/3 (recall points 0 ... 0.66: 67 of them), 3/4 above (34): AP = 92.5 / 101.
#   t = 0.65, 0.70: d4 misses, d5 takes C: TP TP FP FP TP, precision 1, 1, 2/3, 1/2, 3/5:
#              envelope 1 up to 2/3 (67 points), 3/5 above (34): AP = 87.4 / 101.
#   t >= 0.75: d1 misses too: FP TP FP FP TP, precision 0, 1/2, 1/3, 1/4, 2/5 at recall 0, 1/3, 1/3, 1/3, 2/3:
#              envelope 1/2 up to 1/3 (34 points), 2/5 up to 2/3 (33), 0 above: AP = 30.2 / 101.
#   AR100: recall 1 up to 0.70, 2/3 from 0.75: (5 + 5 · 2/3) / 10.
# "small": only B counts; d2 is its TP at every t; d3 (area 1000) is an FP, the medium detections are ignored: AP 1.
# "medium": A and C count, B is ignored (so is d2, which matches it), d3 (small, unmatched) is ignored:
#   t <= 0.60: d1 TP, d4 TP, d5 FP: AP 1.
#   t = 0.65, 0.70: d1 TP, d4 FP, d5 TP: precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1: envelope 1 up to 1/2 (51
#              points), 2/3 above (50): AP = (51 + 100/3) / 101.
#   t >= 0.75: FP, FP, TP: precision 0, 0, 1/3 at recall 0, 0, 1/2: 1/3 up to 1/2 (51 points): AP = 17 / 101.
HAND_AP = [92.5 / 101] * 3 + [87.4 / 101] * 2 + [30.2 / 101] * 5
HAND_APM = [1.0] * 3 + [(51 + 100 / 3) / 101] * 2 + [17 / 101] * 5


def test_hand_built_case_at_every_threshold():
    metrics = evaluate(HAND_GT, HAND_DETECTIONS, iou_type="obb")
    assert set(metrics) == set(METRIC_KEYS)
    expected = {**dict(zip(AP_KEYS, HAND_AP)), "AP": sum(HAND_AP) / 10, "APs": 1.0, "APm": sum(HAND_APM) / 10,
                "APl": -1.0, "AR100": (5 + 5 * 2 / 3) / 10}
    assert metrics == pytest.approx(expected, abs=1e-12)
    assert metrics == pytest.approx(evaluate(HAND_GT, HAND_DETECTIONS, "hotcoco", "obb"), abs=0)


def test_the_hand_case_ious_are_the_ones_derived():
    reference = [reference_iou(HAND_DETECTIONS[d]["obb"], HAND_GT["annotations"][g]["obb"])
                 for d, g in ((0, 0), (1, 1), (2, 1), (3, 2), (4, 2))]
    assert reference == pytest.approx([1 / math.sqrt(2), 1.0, 100 / 1900, 920 / 1480, 1.0], abs=1e-12)


def test_square_turned_45_degrees_is_exact_iou_0707_where_probiou_says_1():
    """A 40-px square and the same square turned 45°: exact IoU 1/√2, a true positive up to AP70 and a miss from AP75
    on (AP = 0.5). ultralytics' ProbIoU of the pair is 1 (the two Gaussians are the same), so its OBB validator counts
    it correct at every threshold, up to 0.95."""
    import torch
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils.metrics import batch_probiou
    from types import SimpleNamespace

    square, turned = [100.0, 100.0, 40.0, 40.0, 0.0], [100.0, 100.0, 40.0, 40.0, math.pi / 4]
    metrics = evaluate(oriented_gt([(1, 1, square)]), [odet(turned, 0.9)], iou_type="obb")
    assert [metrics[key] for key in AP_KEYS] == pytest.approx([1.0] * 5 + [0.0] * 5, abs=1e-12)
    assert metrics["AP"] == pytest.approx(0.5, abs=1e-12)
    probiou = batch_probiou(torch.tensor([square]), torch.tensor([turned]))
    assert probiou.item() == pytest.approx(1.0, abs=1e-3)
    validator = SimpleNamespace(iouv=torch.linspace(0.5, 0.95, 10))
    correct = DetectionValidator.match_predictions(validator, torch.zeros(1), torch.zeros(1), probiou)
    assert correct.tolist() == [[True] * 10]


# ---------------------------------------------------------------------------------------------------------------
# Crowd regions and area ranges
# ---------------------------------------------------------------------------------------------------------------
def test_a_crowd_region_ignores_what_it_covers_by_intersection_over_detection_area():
    """Crowd region R: 100 x 100 turned 0.3 rad (a DOTA ``difficult`` object kept as a region to ignore). Detection
    d (20 x 10, R's angle, score 0.9) lies 62 % inside R along R's width axis: intersection over d's own area 0.62.
    Object X is found exactly by a detection of score 0.5. Up to t = 0.60, d matches R and is ignored: AP 1; from
    0.65 on it is a false positive ranked first: precision 0 then 1/2, AP 1/2. R itself is never a miss."""
    u = np.array([math.cos(0.3), math.sin(0.3)])
    centre = np.array([200.0, 200.0]) + u * (50 - 10 + 0.38 * 20)  # 12.4 of its 20 px inside R's edge at 50
    gt = oriented_gt([(1, 1, [200, 200, 100, 100, 0.3], 1), (1, 1, [400, 100, 30, 30, 0.1])])
    inside = reference_iou([*centre, 20, 10, 0.3], [200, 200, 100, 100, 0.3])
    intersection = inside * (200 + 10000) / (1 + inside)
    assert intersection / 200 == pytest.approx(0.62, abs=1e-9)
    metrics = evaluate(gt, [odet([*centre, 20, 10, 0.3], 0.9), odet([400, 100, 30, 30, 0.1], 0.5)], iou_type="obb")
    assert [metrics[key] for key in AP_KEYS] == pytest.approx([1.0] * 3 + [0.5] * 7, abs=1e-12)
    assert metrics["AR100"] == 1.0


def test_a_crowd_region_needs_its_obb_and_an_object_too():
    gt = oriented_gt([(1, 1, [200, 200, 100, 100, 0.3], 1), (1, 1, [400, 100, 30, 30, 0.1])])
    for index in (0, 1):  # the crowd region, the object
        broken = {**gt, "annotations": [dict(a) for a in gt["annotations"]]}
        del broken["annotations"][index]["obb"]
        with pytest.raises(ValueError, match=f"annotation {index + 1} has no obb: obb evaluation needs it for every "
                                             "annotation, crowd regions included"):
            evaluate(broken, [], iou_type="obb")


def test_area_is_w_times_h_also_when_the_ground_truth_has_none():
    """A 100 x 10 strip turned π/6 has w·h = 1000 (small) but an axis-aligned extent of 5373 px² (medium): with its
    ``area`` left out of the ground truth (hotcoco then takes w·h), it is still counted small."""
    gt = oriented_gt([(1, 1, [300, 300, 100, 10, math.pi / 6])])
    for ann in gt["annotations"]:
        del ann["area"], ann["bbox"]
    metrics = evaluate(gt, [odet([300, 300, 100, 10, math.pi / 6], 0.9)], iou_type="obb")
    assert (metrics["APs"], metrics["APm"], metrics["APl"]) == pytest.approx((1.0, -1.0, -1.0), abs=1e-12)


def test_obb_annotation_fields():
    fields = obb_annotation([300, 300, 100, 10, math.pi / 6])
    assert fields["area"] == 1000.0 and fields["obb"] == [300.0, 300.0, 100.0, 10.0, math.pi / 6]
    extent = (100 * math.cos(math.pi / 6) + 10 * math.sin(math.pi / 6), 100 * math.sin(math.pi / 6)
              + 10 * math.cos(math.pi / 6))
    assert fields["bbox"] == pytest.approx([300 - extent[0] / 2, 300 - extent[1] / 2, *extent], abs=1e-9)


# ---------------------------------------------------------------------------------------------------------------
# AP against an independent evaluator: pycocotools' matching and accumulation on the float64 reference IoU
# ---------------------------------------------------------------------------------------------------------------
def reference_rotated_cocoeval(gt, predictions):
    """pycocotools' COCOeval with ``computeIoU`` replaced by the float64 reference IoU of tests/test_ops_rotated.py
    (a crowd region: intersection over the detection's area, as pycocotools' ``iou(..., iscrowd)``); areas w·h."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    class ReferenceRotatedCOCOeval(COCOeval):
        def computeIoU(self, image_id, category_id):
            gts, dts = self._gts[image_id, category_id], self._dts[image_id, category_id]
            if not gts or not dts:
                return []
            dts = sorted(dts, key=lambda d: -d["score"])[:self.params.maxDets[-1]]  # mergesort order, as COCOeval
            ious = np.zeros((len(dts), len(gts)))
            for i, d in enumerate(dts):
                for j, g in enumerate(gts):
                    iou = reference_iou(d["obb"], g["obb"])
                    if g["iscrowd"]:
                        area_d, area_g = d["obb"][2] * d["obb"][3], g["obb"][2] * g["obb"][3]
                        iou = iou * (area_d + area_g) / (1 + iou) / area_d if area_d > 0 else 0.0
                    ious[i, j] = iou
            return ious

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes([{**p, "bbox": obb_annotation(p["obb"])["bbox"]} for p in predictions])
        for ann in coco_dt.dataset["annotations"]:
            ann["area"] = ann["obb"][2] * ann["obb"][3]  # loadRes set the axis-aligned extent's
        evaluator = ReferenceRotatedCOCOeval(coco_gt, coco_dt, iouType="bbox")
        evaluator.evaluate()
        evaluator.accumulate()
    params = evaluator.params
    return summarize_arrays(evaluator.eval["precision"], evaluator.eval["recall"], params.iouThrs,
                            params.areaRngLbl, params.maxDets)


@pytest.mark.parametrize("crowd_fraction", [0.0, 0.08])
def test_ap_equals_pycocotools_matching_on_the_reference_iou(crowd_fraction):
    data = random_oriented_detections(n_images=12, dets_per_image=40, n_classes=4, gt_per_image=8.0, seed=5,
                                      width=600, height=600, crowd_fraction=crowd_fraction)
    assert crowd_fraction == 0 or any(a["iscrowd"] for a in data.gt["annotations"])
    expected = reference_rotated_cocoeval(data.gt, data.predictions)
    metrics = evaluate(data.gt, data.predictions, iou_type="obb")
    assert metrics == pytest.approx(expected, abs=1e-12)
    assert 0.2 < metrics["AP50"] < 0.95 and metrics["AP95"] < metrics["AP75"] < metrics["AP50"]


# ---------------------------------------------------------------------------------------------------------------
# TIDE
# ---------------------------------------------------------------------------------------------------------------
def test_tide_of_oriented_boxes_is_relative_to_their_ap_crowd_regions_included():
    data = random_oriented_detections(n_images=40, dets_per_image=50, seed=8, crowd_fraction=0.05)
    metrics = evaluate(data.gt, data.predictions, iou_type="obb")
    tide = tide_errors(data.gt, data.predictions, iou_type="obb")
    assert tide["AP50"]["ap"] == pytest.approx(metrics["AP50"], abs=1e-12)
    assert tide["AP75"]["ap"] == pytest.approx(metrics["AP75"], abs=1e-12)
    assert tide["settings"]["iou_type"] == "obb"
    assert tide["AP75"]["counts"]["Loc"] > tide["AP50"]["counts"]["Loc"] > 0


def test_tide_judges_other_classes_on_the_oriented_iou():
    """Object g: class 1, a 100 x 10 strip along y = x. A class-2 detection on exactly g's strip is a Cls error; one
    crossing it at right angles (IoU 100 / 1900 = 0.053 < 0.1) is background, though the two strips have the same
    axis-aligned extent (IoU 1 there, which would make it a Cls error too)."""
    gt = oriented_gt([(1, 1, [100, 100, 100, 10, math.pi / 4]), (1, 2, [300, 300, 40, 40, 0.0])], categories=2)
    found = [odet([100, 100, 100, 10, math.pi / 4], 0.5, 1, 1), odet([300, 300, 40, 40, 0.0], 0.5, 1, 2)]
    for angle, error in ((math.pi / 4, "Cls"), (-math.pi / 4, "Bkg")):
        tide = tide_errors(gt, [odet([100, 100, 100, 10, angle], 0.9, 1, 2), *found], iou_type="obb")
        assert {k: v for k, v in tide["AP50"]["counts"].items() if v} == {error: 1}


# ---------------------------------------------------------------------------------------------------------------
# Backends and bad input
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["pycocotools", "faster_coco_eval"])
def test_backends_without_an_oriented_iou_refuse_in_one_line(backend):
    message = f"backend {backend} has no 'obb' IoU: iou_type 'obb' is evaluated by hotcoco alone"
    assert missing_backend(backend, "obb") == message
    with pytest.raises(ValueError, match=message):
        evaluate(HAND_GT, HAND_DETECTIONS, backend, "obb")
    assert missing_backend(backend) is None or "not installed" in missing_backend(backend)  # boxes: as before


def test_default_backend_is_the_reference_where_it_can_and_hotcoco_for_obb():
    assert default_backend() == default_backend("bbox") == "pycocotools"
    assert default_backend("obb") == "hotcoco"
    assert missing_backend("hotcoco", "obb") is None
    with pytest.raises(ValueError, match="unknown iou_type 'rotated'"):
        evaluate(HAND_GT, [], iou_type="rotated")


@pytest.mark.parametrize("obb, problem", [([1, 2, 3, 4], "not a finite"), ([1, 2, -3, 4, 0], "w, h >= 0"),
                                          ([1, 2, 3, 4, float("nan")], "not finite"), ("abcde", "could not convert"),
                                          (None, "needs image_id, category_id, obb")])
def test_bad_oriented_predictions_are_named(obb, problem):
    prediction = {"image_id": 1, "category_id": 1, "score": 0.5, **({"obb": obb} if obb is not None else {})}
    with pytest.raises(ValueError, match=f"prediction 0: .*{problem}"):
        evaluate(HAND_GT, [prediction], iou_type="obb")


def test_bad_oriented_ground_truth_is_named():
    gt = oriented_gt([(1, 1, [100, 100, 40, 40, 0.0])])
    gt["annotations"][0]["obb"] = [100, 100, 40, 40]
    with pytest.raises(ValueError, match=r"ground-truth annotation 1: obb \[100, 100, 40, 40\] is not a finite"):
        evaluate(gt, [], iou_type="obb")


def test_degenerate_oriented_input_gives_finite_metrics():
    """A zero-width object (IoU 0 with everything, even its own copy: never found), a box at 10⁶ px found exactly,
    and a 10⁵ x 10⁻³ needle far from both. Scores: the zero-width copy (FP), the exact box (TP), the needle (FP):
    precision 0, 1/2, 1/3 at recall 0, 1/2, 1/2; envelope 1/2 up to recall 1/2 (51 points): AP 25.5 / 101 at every
    threshold."""
    gt = oriented_gt([(1, 1, [100, 100, 0, 10, 0.3]), (1, 1, [1e6, 1e6, 10, 10, 0.3])], width=2_000_000,
                     height=2_000_000)
    predictions = [odet([100, 100, 0, 10, 0.3], 0.9), odet([1e6, 1e6, 10, 10, 0.3], 0.8),
                   odet([5e5, 5e5, 1e5, 1e-3, 1.0], 0.7)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no runtime warning from the evaluation either
        metrics = evaluate(gt, predictions, iou_type="obb")
    assert [metrics[key] for key in AP_KEYS] == pytest.approx([25.5 / 101] * 10, abs=1e-12)
    assert all(math.isfinite(v) for v in metrics.values())
    assert evaluate(gt, [], iou_type="obb")["AP"] == 0.0


# ---------------------------------------------------------------------------------------------------------------
# Ground truth of a YOLO OBB dataset
# ---------------------------------------------------------------------------------------------------------------
def test_gt_from_yolo_obb_labels_is_ultralytics_rectangle_in_pixels(tmp_path):
    """A 640 x 480 image with an OBB line (a rotated rectangle's corners, normalised per axis) and a plain box line:
    the first becomes that rectangle in pixels (ultralytics' xyxyxyxy2xywhr of the pixel corners), the second its
    box at angle 0."""
    from PIL import Image
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    Image.new("RGB", (640, 480)).save(tmp_path / "images" / "a.png")
    box = np.array([[320.0, 200.0, 150.0, 40.0, 0.5]])
    corners = np.array([float(f"{v:.8f}") for v in (xywhr_corners(box)[0] / [640, 480]).ravel()])  # as written
    (tmp_path / "labels" / "a.txt").write_text("2 " + " ".join(f"{v:.8f}" for v in corners) + "\n"
                                               "0 0.25 0.5 0.1 0.2\n")
    gt = yolo_to_coco([tmp_path / "images" / "a.png"], ["a", "b", "c"], oriented=True)
    first, second = gt["annotations"]
    assert first["category_id"] == 3 and first["iscrowd"] == 0 and "segmentation" not in first
    pixel_corners = (corners.reshape(4, 2) * [640, 480]).reshape(1, 8)
    assert first["obb"] == pytest.approx(xyxyxyxy2xywhr(pixel_corners)[0].tolist(), abs=1e-9)
    assert reference_iou(first["obb"], box[0]) == pytest.approx(1.0, abs=1e-5)
    assert first["area"] == pytest.approx(150 * 40, rel=1e-5)
    assert second["obb"] == pytest.approx([160.0, 240.0, 64.0, 96.0, 0.0]) and second["area"] == pytest.approx(6144)
    assert evaluate(gt, [odet(a["obb"], 0.9, 1, a["category_id"]) for a in gt["annotations"]],
                    iou_type="obb")["AP95"] == pytest.approx(1.0, abs=1e-12)


@needs_dota8
def test_gt_of_dota8_is_the_rectangle_ultralytics_validates_on():
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    gt = gt_from_yolo_dataset(DOTA8, "val", oriented=True)
    assert len(gt["images"]) == 4 and len(gt["annotations"]) >= 8
    for image in gt["images"]:
        label = label_path(Path(gt["info"]["image_root"]) / image["file_name"])
        lines = [[float(v) for v in line.split()] for line in label.read_text().splitlines() if line.strip()]
        objects = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
        assert len(objects) == len(lines) == len({tuple(line) for line in lines})
        for line, ann in zip(lines, objects):
            pixels = (np.array(line[1:]).reshape(4, 2) * [image["width"], image["height"]]).reshape(1, 8)
            assert ann["obb"] == pytest.approx(xyxyxyxy2xywhr(pixels)[0].tolist(), abs=1e-9)
            assert ann["category_id"] == int(line[0]) + 1


def test_bench_obb_eval_writes_its_tables(tmp_path):
    """scripts/bench_obb_eval.py at a tiny size: both parts run and the report holds the tables and the command."""
    import json

    from helpers import run_in_process

    done = run_in_process("scripts/bench_obb_eval.py", ["pairs=400", "images=3", "repeats=1", f"out={tmp_path}"],
                          tmp_path, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    report = (tmp_path / "obb_eval.md").read_text()
    assert f"Command: `python scripts/bench_obb_eval.py pairs=400 images=3 repeats=1 out={tmp_path}`" in report
    assert "exact IoU 0.7071, ProbIoU 0.9996" in report and "| 0.50–0.55 |" in report
    record = json.loads((tmp_path / "obb_eval.json").read_text())
    assert record["iou"]["square_45"]["exact"] == pytest.approx(1 / math.sqrt(2), abs=1e-6)
    assert set(record["timing"]["median_seconds"]) == {"hotcoco obb (exact IoU, COCO AP)",
                                                       "ultralytics OBB metric (ProbIoU)"}
