"""TIDE error decomposition (boxloss.evaluation.tide): hand-built cases with counts and ΔAP derived by hand, the AP it
is relative to, crowd regions and max_det, the one departure from the paper's wording, and degenerate input.

AP here is COCO's at one IoU: matching by descending score, precision made monotone (each recall level takes the
best precision at any higher recall), read at the 101 recall points 0, 0.01, ..., 1 and averaged; then the mean
over the categories with ground truth.
"""

import math

import pytest

from boxloss.evaluation import TIDE_ERRORS, TIDE_ORACLES, evaluate, format_tide_table, tide_errors
from boxloss.evaluation.coco_gt import gt_from_coco_json
from boxloss.testing.detections import detections_from_gt, random_detections
from test_evaluation import COCO128_JSON, det, needs_coco128


def coco(objects, images=1, categories=2):
    """Ground truth from ``(image_id, category_id, [x, y, w, h][, iscrowd])`` tuples; 640x480 images."""
    annotations = [{"id": i + 1, "image_id": o[0], "category_id": o[1], "bbox": list(o[2]),
                    "area": o[2][2] * o[2][3], "iscrowd": o[3] if len(o) > 3 else 0} for i, o in enumerate(objects)]
    return {"images": [{"id": i + 1, "width": 640, "height": 480} for i in range(images)],
            "annotations": annotations, "categories": [{"id": c + 1, "name": f"c{c + 1}"} for c in range(categories)]}


# Two images, classes 1 and 2 (boxes [x, y, w, h]):
#   image 1: g1 = class 1 [0, 0, 100, 100], g2 = class 1 [200, 0, 100, 100], g3 = class 2 [400, 0, 100, 100],
#            g4 = class 1 [0, 300, 100, 100] (nothing comes near it)
#   image 2: g5 = class 1 [0, 0, 100, 100], g6 = class 2 [200, 0, 100, 100]
HAND_GT = coco([(1, 1, [0, 0, 100, 100]), (1, 1, [200, 0, 100, 100]), (1, 2, [400, 0, 100, 100]),
                (1, 1, [0, 300, 100, 100]), (2, 1, [0, 0, 100, 100]), (2, 2, [200, 0, 100, 100])], images=2)
HAND_DETECTIONS = [
    det([0, 0, 100, 100], 0.9, 1, 1),    # d1 correct: g1 at IoU 1
    det([0, 0, 100, 90], 0.8, 1, 1),     # d2 Dupe: g1 again (IoU 0.9), already taken by d1
    det([200, 0, 100, 30], 0.7, 1, 1),   # d3 Loc: g2 at IoU 0.3, in [0.1, 0.5]
    det([400, 0, 100, 100], 0.6, 1, 1),  # d4 Cls: says class 1 on g3 (class 2) at IoU 1
    det([300, 300, 50, 50], 0.5, 1, 1),  # d5 Bkg: overlaps nothing
    det([200, 0, 30, 100], 0.4, 1, 2),   # d6 Both: class 2 on g2 (class 1) at IoU 0.3
    det([0, 0, 100, 100], 0.1, 2, 1),    # d7 correct: g5
    det([200, 0, 100, 100], 0.05, 2, 2),  # d8 correct: g6
]                                        # g4: Miss


def test_hand_built_case_counts_and_delta_ap():
    """Every error type once; each ΔAP worked out by hand (fractions of 1212 = 12 x 101).

    Class 1 (4 GT) ranks TP, FP, FP, FP, FP, TP: precision 1 up to recall 1/4 (26 recall points), then 2/6 up to
    1/2 (25 points): AP1 = (26 + 25/3)/101 = 103/303. Class 2 (2 GT) ranks FP, TP: AP2 = 25.5/101.
    AP50 = (AP1 + AP2)/2 = 359/1212.
    - Cls: d4 becomes g3's TP in class 2: AP1 = (26 + 25 * 2/5)/101, AP2 = (51 + 50 * 2/3)/101 -> 722/1212;
    - Loc: d3 becomes g2's TP: class 1 TP, FP, TP, FP, FP, TP: (26 + 25 * 2/3 + 25 * 1/2)/101 -> 484/1212;
    - Both: d6 removed: AP2 = 51/101 -> 512/1212;   - Dupe, Bkg: one FP fewer before d7: AP1 = 36/101 -> 369/1212;
    - Miss: g4 leaves the count (3 GT): AP1 = (34 + 33/3)/101 -> 423/1212;
    - FP: every false positive removed: AP1 = AP2 = 51/101 -> 612/1212;
    - FN: g2, g4, g3 leave the counts: AP1 = (51 + 50/3)/101, AP2 = 1/2 -> 709/1212.
    """
    tide = tide_errors(HAND_GT, HAND_DETECTIONS)
    for key in ("AP50", "AP75"):  # no IoU of this case lies in (0.5, 0.75): both thresholds see the same errors
        part = tide[key]
        assert part["counts"] == {"Cls": 1, "Loc": 1, "Both": 1, "Dupe": 1, "Bkg": 1, "Miss": 1}
        assert part["ap"] == pytest.approx(359 / 1212, abs=1e-12)
        expected = {"Cls": 722, "Loc": 484, "Both": 512, "Dupe": 369, "Bkg": 369, "Miss": 423, "FP": 612, "FN": 709}
        assert part["delta_ap"] == pytest.approx({k: (v - 359) / 1212 for k, v in expected.items()}, abs=1e-12)
        assert list(part["delta_ap"]) == [*TIDE_ERRORS, *TIDE_ORACLES] and list(part["counts"]) == list(TIDE_ERRORS)
    assert tide["AP50"]["foreground_iou"] == 0.5 and tide["AP75"]["foreground_iou"] == 0.75
    assert tide["settings"]["background_iou"] == 0.1 and tide["settings"]["max_det"] == 100
    assert tide["settings"]["evaluator"].startswith("hotcoco 1.3.")


def test_ap_is_the_metrics_ap_at_that_iou():
    metrics = evaluate(HAND_GT, HAND_DETECTIONS, "pycocotools")
    tide = tide_errors(HAND_GT, HAND_DETECTIONS)
    assert tide["AP50"]["ap"] == pytest.approx(metrics["AP50"], abs=1e-12)
    assert tide["AP75"]["ap"] == pytest.approx(metrics["AP75"], abs=1e-12)


def test_a_box_at_iou_06_is_correct_at_05_and_a_localisation_error_at_075():
    """The strict threshold is where a box loss shows: one GT, one detection at IoU 0.6 ([0, 0, 100, 60])."""
    gt = coco([(1, 1, [0, 0, 100, 100])], categories=1)
    tide = tide_errors(gt, [det([0, 0, 100, 60], 0.9)])
    assert tide["AP50"]["ap"] == pytest.approx(1) and sum(tide["AP50"]["counts"].values()) == 0
    assert tide["AP75"]["ap"] == 0 and tide["AP75"]["counts"] == {**dict.fromkeys(TIDE_ERRORS, 0), "Loc": 1}
    assert tide["AP75"]["delta_ap"]["Loc"] == pytest.approx(1) and tide["AP75"]["delta_ap"]["Miss"] == 0


def test_crowd_regions_are_neither_errors_nor_misses():
    """A detection on a crowd region is ignored (COCO's rule, as in the AP); the unpredicted crowd region of class 2
    is not a miss. Left: one correct detection, one background box ranked first."""
    gt = coco([(1, 1, [0, 0, 100, 100]), (1, 1, [300, 0, 200, 200], 1), (1, 2, [0, 300, 150, 100], 1)])
    detections = [det([300, 0, 200, 200], 0.99), det([320, 20, 50, 50], 0.98),  # both inside the class-1 crowd
                  det([550, 400, 40, 40], 0.95), det([0, 0, 100, 100], 0.9)]
    tide = tide_errors(gt, detections)
    for part in (tide["AP50"], tide["AP75"]):
        assert part["counts"] == {**dict.fromkeys(TIDE_ERRORS, 0), "Bkg": 1}
        assert part["ap"] == pytest.approx(0.5)  # class 1 only (class 2 has no non-crowd GT): FP then TP
        assert part["delta_ap"]["Bkg"] == pytest.approx(0.5) and part["delta_ap"]["Miss"] == 0
    assert tide["AP50"]["ap"] == pytest.approx(evaluate(gt, detections, "pycocotools")["AP50"], abs=1e-12)


def test_only_the_first_100_detections_per_image_and_class_count():
    """COCO's max_det: 100 background boxes outscore the exact box, which is then never seen: 100 Bkg, 1 Miss."""
    gt = coco([(1, 1, [0, 0, 50, 50])], categories=1)
    detections = [det([500, i * 4, 4, 4], 0.9 - i * 0.001) for i in range(100)] + [det([0, 0, 50, 50], 0.01)]
    tide = tide_errors(gt, detections)
    assert tide["AP50"]["counts"] == {**dict.fromkeys(TIDE_ERRORS, 0), "Bkg": 100, "Miss": 1}
    assert tide["AP50"]["ap"] == 0 == evaluate(gt, detections, "pycocotools")["AP50"]


def test_cls_and_loc_errors_compete_for_one_gt_even_when_only_one_type_is_fixed():
    """The departure from the paper's wording documented in boxloss/evaluation/tide.py (tidecv's BestGTMatch, which
    hotcoco follows). g (class 1) and h (class 2); A: class 1 on g at IoU 0.3, score 0.9 (Loc); B: class 2 exactly
    on g, score 0.8 (Cls); C: class 2 exactly on h, score 0.7. AP50 = (0 + 1/2)/2 = 1/4.
    The Cls oracle removes B (A, the higher-scoring error aimed at g, is g's fix) although it leaves A alone:
    ΔCls = (0 + 1)/2 - 1/4 = 1/4; the paper's "give B its right class" would give class 1 FP, TP -> 1/2 and
    ΔCls = (1/2 + 1)/2 - 1/4 = 1/2. The Loc oracle makes A g's TP: ΔLoc = (1 + 1/2)/2 - 1/4 = 1/2.
    """
    gt = coco([(1, 1, [0, 0, 50, 50]), (1, 2, [100, 100, 50, 50])])
    detections = [det([0, 0, 50, 15], 0.9, 1, 1), det([0, 0, 50, 50], 0.8, 1, 2), det([100, 100, 50, 50], 0.7, 1, 2)]
    part = tide_errors(gt, detections)["AP50"]
    assert part["counts"] == {**dict.fromkeys(TIDE_ERRORS, 0), "Cls": 1, "Loc": 1}
    assert part["ap"] == pytest.approx(0.25, abs=1e-12)
    assert part["delta_ap"]["Cls"] == pytest.approx(0.25, abs=1e-12)  # the paper's wording would give 0.5
    assert part["delta_ap"]["Loc"] == pytest.approx(0.5, abs=1e-12)
    alone = tide_errors(gt, detections[1:])["AP50"]  # control: without A, B is fixed into g's true positive
    assert alone["delta_ap"]["Cls"] == pytest.approx((1 + 1) / 2 - 0.25, abs=1e-12)


@pytest.mark.parametrize("predictions, objects", [([], [(1, 1, [0, 0, 10, 10]), (1, 2, [20, 20, 10, 10])]),
                                                  ([det([0, 0, 10, 10], 0.5)], [])])
def test_degenerate_input_gives_finite_zeros(predictions, objects):
    """No detections (every object a Miss, nothing to gain: AP stays 0 with or without the GT) and no ground truth
    (every detection background, no category to average over)."""
    tide = tide_errors(coco(objects), predictions)
    for part in (tide["AP50"], tide["AP75"]):
        assert all(math.isfinite(v) and v == 0 for v in [part["ap"], *part["delta_ap"].values()])
        assert part["counts"]["Miss"] == len(objects) and part["counts"]["Bkg"] == len(predictions)


def test_bad_predictions_are_rejected_as_by_evaluate():
    with pytest.raises(ValueError, match="image_id 7"):
        tide_errors(HAND_GT, [det([0, 0, 10, 10], 0.5, image_id=7)])


def test_ap_matches_pycocotools_on_a_synthetic_set_with_crowds():
    data = random_detections(n_images=150, dets_per_image=40, n_classes=20, seed=3, crowd_fraction=0.05)
    metrics = evaluate(data.gt, data.predictions, "pycocotools")
    tide = tide_errors(data.gt, data.predictions)
    assert tide["AP50"]["ap"] == pytest.approx(metrics["AP50"], abs=1e-12)
    assert tide["AP75"]["ap"] == pytest.approx(metrics["AP75"], abs=1e-12)
    strict, loose = tide["AP75"], tide["AP50"]
    assert strict["counts"]["Loc"] > loose["counts"]["Loc"] > 0 and strict["delta_ap"]["Loc"] > loose["delta_ap"]["Loc"]
    for part in (strict, loose):  # each oracle only adds; removing every false positive beats removing one type
        assert all(v >= 0 for v in part["delta_ap"].values())
        assert all(part["delta_ap"]["FP"] >= part["delta_ap"][k] for k in ("Both", "Dupe", "Bkg"))


@needs_coco128
def test_ap_matches_pycocotools_on_coco128_with_its_crowd_regions():
    gt = gt_from_coco_json(COCO128_JSON)
    predictions = detections_from_gt(gt) + [det(a["bbox"], 0.95, a["image_id"], a["category_id"])
                                            for a in gt["annotations"] if a["iscrowd"]]
    metrics = evaluate(gt, predictions, "pycocotools")
    tide = tide_errors(gt, predictions)
    assert tide["AP50"]["ap"] == pytest.approx(metrics["AP50"], abs=1e-12)
    assert tide["AP75"]["ap"] == pytest.approx(metrics["AP75"], abs=1e-12)
    assert tide["AP50"]["counts"]["Bkg"] > 0 and tide["AP75"]["counts"]["Loc"] > tide["AP50"]["counts"]["Loc"]


def test_format_tide_table():
    tide = tide_errors(HAND_GT, HAND_DETECTIONS)
    text = format_tide_table({"ciou": tide, "eiou": tide}, first_column="loss")
    deltas, counts = text.split("\n\n")
    assert [cell.strip() for cell in deltas.splitlines()[0].split("|")[1:-1]] == [
        "loss", "AP", "ΔCls", "ΔLoc", "ΔBoth", "ΔDupe", "ΔBkg", "ΔMiss", "ΔFP", "ΔFN"]
    assert [cell.strip() for cell in counts.splitlines()[0].split("|")[1:-1]] == [
        "loss", "n Cls", "n Loc", "n Both", "n Dupe", "n Bkg", "n Miss"]
    assert [line.split("|")[1].strip() for line in deltas.splitlines()[2:]] == ["ciou AP50", "ciou AP75",
                                                                                   "eiou AP50", "eiou AP75"]
    assert f"{(484 - 359) / 1212:.4f}" in deltas.splitlines()[2]
    assert format_tide_table({"": tide}).splitlines()[2].split("|")[1].strip() == "AP50"
