"""Per-image match tables: COCO AP recomputed from them equals pycocotools' (every weight 1), equals pycocotools on
the dataset with images repeated (integer weights), and the fast true-positive-only walk equals a direct
re-implementation of COCOeval.accumulate for any weights, zeros included."""

import numpy as np
import pytest

from boxloss.evaluation import AP_KEYS, evaluate
from boxloss.evaluation.matches import RECALL_POINTS, MatchTable, ap_per_threshold, ap_per_threshold_batch, match_table
from boxloss.testing.detections import random_detections


@pytest.fixture(scope="module")
def detections():
    return random_detections(n_images=30, dets_per_image=40, n_classes=4, gt_per_image=5, seed=3,
                             crowd_fraction=0.1)


def accumulate_directly(table: MatchTable, weights: np.ndarray) -> np.ndarray:
    """COCOeval.accumulate written out, every detection visited, each weighted by its image's weight."""
    positives = weights @ table.gt_count
    per_category = []
    for k in range(len(table.category_ids)):
        if positives[k] <= 0:
            continue
        selected = table.det_category == k
        w = weights[table.det_image[selected]]
        q = np.zeros((table.det_matched.shape[0], len(RECALL_POINTS)))
        for t in range(table.det_matched.shape[0]):
            matched, ignored = table.det_matched[t, selected], table.det_ignored[t, selected]
            tp = np.cumsum(w * (matched & ~ignored))
            fp = np.cumsum(w * (~matched & ~ignored))
            recall, precision = tp / positives[k], tp / (fp + tp + np.spacing(1))
            for i in range(len(precision) - 1, 0, -1):
                precision[i - 1] = max(precision[i - 1], precision[i])
            for r, point in enumerate(RECALL_POINTS):
                index = np.searchsorted(recall, point, side="left")
                q[t, r] = precision[index] if index < len(precision) else 0.0
        per_category.append(q.mean(axis=1))
    return np.mean(per_category, axis=0) if per_category else np.full(10, -1.0)


def test_unit_weights_give_cocos_ap_at_every_threshold(detections):
    table = match_table(detections.gt, detections.predictions)
    metrics = evaluate(detections.gt, detections.predictions, backend="pycocotools")
    ap = ap_per_threshold(table)
    assert ap == pytest.approx([metrics[key] for key in AP_KEYS], abs=1e-12)
    assert ap.mean() == pytest.approx(metrics["AP"], abs=1e-12)
    assert table.det_ignored.any()  # the crowd regions are in play


def test_integer_weights_equal_pycocotools_on_the_repeated_images(detections):
    table = match_table(detections.gt, detections.predictions)
    weights = np.random.default_rng(0).multinomial(30, np.full(30, 1 / 30))
    gt = {"images": [], "annotations": [], "categories": detections.gt["categories"]}
    predictions, next_id = [], 0
    for index, image_id in enumerate(table.image_ids):
        for _ in range(weights[index]):
            next_id += 1
            image = next(im for im in detections.gt["images"] if im["id"] == image_id)
            gt["images"].append({**image, "id": next_id})
            gt["annotations"] += [{**a, "id": len(gt["annotations"]) + 1 + j, "image_id": next_id}
                                  for j, a in enumerate(a for a in detections.gt["annotations"]
                                                        if a["image_id"] == image_id)]
            predictions += [{**p, "image_id": next_id} for p in detections.predictions if p["image_id"] == image_id]
    metrics = evaluate(gt, predictions, backend="pycocotools")
    assert ap_per_threshold(table, weights) == pytest.approx([metrics[key] for key in AP_KEYS], abs=1e-12)


def test_the_fast_walk_equals_accumulate_for_any_weights(detections):
    table = match_table(detections.gt, detections.predictions)
    rng = np.random.default_rng(1)
    weights = np.vstack([np.ones(30), np.zeros(30), rng.multinomial(30, np.full(30, 1 / 30), size=20),
                         rng.uniform(0, 3, size=(5, 30)) * (rng.uniform(size=(5, 30)) > 0.3)])
    fast = ap_per_threshold_batch(table, weights, chunk=7)  # several chunks
    for w, row in zip(weights, fast):
        direct = accumulate_directly(table, w)
        assert row == pytest.approx(direct, abs=1e-12)
    assert (fast[1] == -1).all()  # no image drawn: nothing to measure, as COCO's -1


def test_save_load_round_trip_and_bad_weights(tmp_path, detections):
    table = match_table(detections.gt, detections.predictions)
    table.save(tmp_path / "t.npz")
    loaded = MatchTable.load(tmp_path / "t.npz")
    assert all(np.array_equal(getattr(table, f), getattr(loaded, f)) for f in MatchTable.__dataclass_fields__)
    with pytest.raises(ValueError, match="non-negative"):
        ap_per_threshold(table, -np.ones(30))
    with pytest.raises(ValueError):
        ap_per_threshold(table, np.ones(29))


def test_no_detections_and_a_hand_made_case():
    gt = {"images": [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}],
          "categories": [{"id": 1, "name": "a"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0},
                          {"id": 2, "image_id": 2, "category_id": 1, "bbox": [10, 10, 20, 20], "area": 400,
                           "iscrowd": 0}]}
    assert (ap_per_threshold(match_table(gt, [])) == 0).all()
    # image 1: an exact hit (0.9); image 2: a miss at every threshold (0.8, far away). AP = 0.5 (101-point:
    # recall 0.5 reached at precision 1, nothing beyond) at every threshold.
    predictions = [{"image_id": 1, "category_id": 1, "bbox": [10, 10, 20, 20], "score": 0.9},
                   {"image_id": 2, "category_id": 1, "bbox": [70, 70, 20, 20], "score": 0.8}]
    table = match_table(gt, predictions)
    assert ap_per_threshold(table) == pytest.approx(np.full(10, 51 / 101))
    # image 1 drawn twice, image 2 never: every object found at precision 1: AP 1
    assert ap_per_threshold(table, np.array([2.0, 0.0])) == pytest.approx(np.ones(10))
    # image 2 only: nothing found: AP 0
    assert ap_per_threshold(table, np.array([0.0, 1.0])) == pytest.approx(np.zeros(10))
