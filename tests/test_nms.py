"""Tests for DIoU-NMS (boxloss.ops.nms).

Evidence, each able to fail on its own:
1. a slow, obviously-correct Python greedy loop (the paper's rule, pair by pair): identical kept indices on
   random boxes, many seeds, thresholds and exponents, with tied scores, and with tiny blocks so that every
   path of the blocked algorithm runs on small inputs;
2. torchvision's plain NMS, which DIoU-NMS becomes as β → ∞;
3. hand-made cases: an occluded neighbour (high IoU, distant centres) that DIoU-NMS keeps and NMS removes,
   a near-duplicate both remove, a long suppression chain;
4. class awareness, empty input, ``max_keep``, argument checks, and no ultralytics/torchvision import.
"""

from __future__ import annotations

import pytest
import torch
import torchvision.ops as tvops
from helpers import fresh_interpreter_imports

from boxloss.ops import nms
from boxloss.ops.nms import batched_diou_nms, diou_nms


def reference_diou_nms(boxes, scores, iou_threshold, beta=1.0, classes=None):
    """Greedy DIoU-NMS in plain Python floats: visit boxes by descending score (ties: lower index first); a
    box not yet suppressed is kept and suppresses every later box (of its class) with IoU − (ρ²/c²)^β >= ε."""
    b, s = boxes.tolist(), scores.tolist()
    cls = None if classes is None else classes.tolist()
    order = sorted(range(len(s)), key=lambda i: (-s[i], i))
    suppressed, keep = set(), []
    for position, i in enumerate(order):
        if i in suppressed:
            continue
        keep.append(i)
        x1, y1, x2, y2 = b[i]
        for j in order[position + 1:]:
            if j in suppressed or (cls is not None and cls[i] != cls[j]):
                continue
            u1, v1, u2, v2 = b[j]
            inter = max(0.0, min(x2, u2) - max(x1, u1)) * max(0.0, min(y2, v2) - max(y1, v1))
            union = (x2 - x1) * (y2 - y1) + (u2 - u1) * (v2 - v1) - inter
            iou = inter / union if union > 0 else 0.0
            centres_distance_squared = ((x1 + x2) / 2 - (u1 + u2) / 2) ** 2 + ((y1 + y2) / 2 - (v1 + v2) / 2) ** 2
            diagonal_squared = (max(x2, u2) - min(x1, u1)) ** 2 + (max(y2, v2) - min(y1, v1)) ** 2
            ratio = centres_distance_squared / diagonal_squared if diagonal_squared > 0 else 0.0
            if iou - ratio ** beta >= iou_threshold:
                suppressed.add(j)
    return keep


def random_detections(n, seed, dtype=torch.float64, ties=False):
    """n boxes in a 300-pixel image, sides 2 to 62, in clusters (so that many pairs overlap) and alone."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(max(n // 8, 1), 2, generator=g, dtype=torch.float64) * 300
    centre = centres[torch.randint(0, len(centres), (n,), generator=g)] + torch.randn(n, 2, generator=g,
                                                                                     dtype=torch.float64) * 12
    size = 2 + torch.rand(n, 2, generator=g, dtype=torch.float64) * 60
    boxes = torch.cat((centre - size / 2, centre + size / 2), 1).to(dtype)
    scores = torch.rand(n, generator=g, dtype=torch.float64)
    if ties:
        scores = (scores * 6).round() / 6  # seven distinct values: many ties
    return boxes, scores.to(dtype)


CASES = [(seed, n, threshold, beta) for seed, (n, threshold, beta) in enumerate(
    [(n, t, b) for n in (1, 2, 10, 120, 700) for t in (0.3, 0.5, 0.7) for b in (1.0, 0.6, 3.0)])]


@pytest.mark.parametrize("seed,n,threshold,beta", CASES)
def test_diou_nms_matches_the_python_reference(seed, n, threshold, beta):
    boxes, scores = random_detections(n, seed, ties=seed % 2 == 0)
    assert diou_nms(boxes, scores, threshold, beta).tolist() == reference_diou_nms(boxes, scores, threshold, beta)


@pytest.mark.parametrize("seed", range(4))
def test_every_block_path_matches_the_reference(monkeypatch, seed):
    """Blocks of 7 boxes and slabs of 5 kept boxes: cross-block suppression, slabs, empty blocks all run."""
    monkeypatch.setitem(nms._BLOCK, "cpu", 7)
    monkeypatch.setattr(nms, "_KEPT_SLAB", 5)
    boxes, scores = random_detections(100, 100 + seed, ties=True)
    classes = torch.randint(0, 3, (100,), generator=torch.Generator().manual_seed(seed))
    for threshold, beta in ((0.4, 1.0), (0.6, 2.0), (0.0, 1.0), (-0.2, 1.0)):
        assert diou_nms(boxes, scores, threshold, beta).tolist() == reference_diou_nms(boxes, scores, threshold, beta)
        assert (batched_diou_nms(boxes, scores, classes, threshold, beta).tolist()
                == reference_diou_nms(boxes, scores, threshold, beta, classes))


@pytest.mark.parametrize("seed", range(8))
def test_huge_beta_is_plain_nms(seed):
    """(ρ²/c²)^β → 0 for ρ < c, which holds for boxes with area: with β = 10⁴ the penalty underflows for every
    pair that overlaps enough to matter, and the kept set is torchvision's."""
    boxes, scores = random_detections(600, 200 + seed)
    for threshold in (0.3, 0.5, 0.7):
        assert torch.equal(diou_nms(boxes, scores, threshold, beta=1e4), tvops.nms(boxes, scores, threshold))


def test_keeps_an_occluded_neighbour_that_nms_removes():
    """M = [0, 0, 10, 10] (score 0.9), B = [3, 0, 13, 10] (0.8): IoU = 70/130 = 0.5385; ρ² = 3² = 9,
    c² = 13² + 10² = 269, so DIoU = 0.5385 − 0.0335 = 0.5050. With ε = 0.52: NMS removes B (0.5385 > ε),
    DIoU-NMS keeps it (0.5050 < ε)."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [3, 0, 13, 10]])
    scores = torch.tensor([0.9, 0.8])
    assert tvops.nms(boxes, scores, 0.52).tolist() == [0]
    assert diou_nms(boxes, scores, 0.52).tolist() == [0, 1]
    # β = 2: penalty 0.0335² ≈ 0.0011, DIoU ≈ 0.5374 >= ε: removed again
    assert diou_nms(boxes, scores, 0.52, beta=2.0).tolist() == [0]


def test_agrees_with_nms_on_a_near_duplicate_and_a_distant_box():
    """B = [1, 0, 11, 10]: IoU = 90/110 = 0.818, ρ²/c² = 1/221: both remove it. C = [30, 30, 40, 40] is
    disjoint from both: both keep it."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    assert diou_nms(boxes, scores, 0.52).tolist() == tvops.nms(boxes, scores, 0.52).tolist() == [0, 2]


def test_long_suppression_chain():
    """300 boxes 10 wide, each shifted 2 from the last, scores falling along the chain: neighbours have IoU
    8/12 = 0.667 and ρ²/c² = 4/(12² + 10²) = 0.016, boxes two apart IoU 6/14 = 0.43. With ε = 0.5 greedy
    keeps every other box; the parallel rounds need about one round per box here."""
    x = torch.arange(300, dtype=torch.float64) * 2
    boxes = torch.stack((x, torch.zeros_like(x), x + 10, torch.full_like(x, 10)), 1)
    scores = torch.linspace(1, 0.1, 300, dtype=torch.float64)
    kept = diou_nms(boxes, scores, 0.5)
    assert kept.tolist() == list(range(0, 300, 2)) == reference_diou_nms(boxes, scores, 0.5)


def test_ties_keep_the_lower_index_first():
    """Equal scores: the box with the lower index is visited first, so it is kept and suppresses the other."""
    boxes = torch.tensor([[0.0, 0, 10, 10], [0.5, 0, 10.5, 10], [50, 50, 60, 60]])
    scores = torch.tensor([0.5, 0.5, 0.5])
    assert diou_nms(boxes, scores, 0.5).tolist() == [0, 2]
    assert diou_nms(boxes[[1, 0, 2]], scores, 0.5).tolist() == [0, 2]  # now box [0.5, ...] is index 0


def test_batched_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0.5, 0, 10.5, 10], [40, 0, 50, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    classes = torch.tensor([0, 1, 0, 1])
    assert batched_diou_nms(boxes, scores, classes, 0.5).tolist() == [0, 1, 3]
    assert diou_nms(boxes, scores, 0.5).tolist() == [0, 3]
    # ε = 0 and β = 10⁴: a disjoint pair has DIoU = 0 − (underflowed penalty) = 0 >= ε, so the agnostic NMS
    # removes every box after the first; across classes nothing is removed, however close the penalty is to 0
    assert diou_nms(boxes, scores, 0.0, beta=1e4).tolist() == [0]
    assert batched_diou_nms(boxes, scores, classes, 0.0, beta=1e4).tolist() == [0, 1]
    assert batched_diou_nms(boxes, scores, torch.arange(4), 0.0, beta=1e4).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("seed", range(4))
def test_batched_is_per_class_nms_merged_by_score(seed):
    """An independent construction: run diou_nms on each class alone, merge the kept boxes by score."""
    boxes, scores = random_detections(400, 300 + seed)
    classes = torch.randint(0, 4, (400,), generator=torch.Generator().manual_seed(seed))
    kept = []
    for c in range(4):
        index = (classes == c).nonzero().squeeze(1)
        kept += index[diou_nms(boxes[index], scores[index], 0.5)].tolist()
    kept.sort(key=lambda i: (-scores[i].item(), i))
    assert batched_diou_nms(boxes, scores, classes, 0.5).tolist() == kept
    # ultralytics keeps classes as a float column: compared for equality, same result
    assert batched_diou_nms(boxes, scores, classes.float(), 0.5).tolist() == kept


def test_max_keep_is_a_prefix_of_the_full_result():
    boxes, scores = random_detections(1500, 7)
    full = diou_nms(boxes, scores, 0.5)
    assert len(full) > 600  # several blocks and slabs of kept boxes
    for max_keep in (0, 1, 5, 300, 513, len(full), len(full) + 10):
        assert torch.equal(diou_nms(boxes, scores, 0.5, max_keep=max_keep), full[:max_keep])
    classes = torch.arange(1500) % 3
    full = batched_diou_nms(boxes, scores, classes, 0.5)
    assert torch.equal(batched_diou_nms(boxes, scores, classes, 0.5, max_keep=300), full[:300])


def test_empty_input():
    empty = torch.zeros(0, 4)
    for kept in (diou_nms(empty, torch.zeros(0), 0.5), batched_diou_nms(empty, torch.zeros(0),
                                                                         torch.zeros(0, dtype=torch.long), 0.5)):
        assert kept.dtype == torch.int64 and kept.shape == (0,)


def test_dtypes_and_degenerate_boxes():
    """Half and float32 boxes are computed in float32; int64 out. Zero-area boxes (a point, a line) and two
    boxes at the same point give finite decisions (IoU 0, penalty 0) instead of NaN."""
    boxes, scores = random_detections(200, 11, dtype=torch.float32)
    expected = diou_nms(boxes, scores, 0.5)
    assert expected.dtype == torch.int64
    assert torch.equal(diou_nms(boxes.half().float(), scores, 0.5), diou_nms(boxes.half(), scores, 0.5))
    degenerate = torch.tensor([[5.0, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 0], [0, 0, 10, 10]])
    assert diou_nms(degenerate, torch.tensor([0.9, 0.8, 0.7, 0.6]), 0.5).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("call", [
    lambda: diou_nms(torch.zeros(3, 5), torch.zeros(3), 0.5),
    lambda: diou_nms(torch.zeros(3, 4), torch.zeros(2), 0.5),
    lambda: diou_nms(torch.zeros(3, 4), torch.zeros(3), 0.5, beta=0.0),
    lambda: diou_nms(torch.zeros(3, 4), torch.zeros(3), 0.5, beta=float("nan")),
    lambda: diou_nms(torch.zeros(3, 4), torch.zeros(3), 0.5, max_keep=-1),
    lambda: diou_nms(torch.zeros(3, 4), torch.zeros(3), 0.5, max_keep=2.0),
    lambda: batched_diou_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2), 0.5),
])
def test_bad_arguments_raise(call):
    with pytest.raises(ValueError):
        call()


def test_importing_the_ops_imports_neither_ultralytics_nor_torchvision():
    statement = "import boxloss.ops, boxloss.ops.nms, boxloss.ops.boxes"
    assert fresh_interpreter_imports(statement, ("ultralytics", "torchvision")) == []


def test_suppression_at_equality_as_in_the_paper():
    """Concentric boxes [0, 0, 4, 4] and [1, 1, 3, 3]: IoU = 4/16 = 0.25 exactly and ρ = 0, so DIoU = 0.25.
    With ε = 0.25 the paper's rule (DIoU >= ε) suppresses the second box; torchvision (IoU > ε) keeps it."""
    boxes = torch.tensor([[0.0, 0, 4, 4], [1, 1, 3, 3]])
    scores = torch.tensor([0.9, 0.8])
    assert diou_nms(boxes, scores, 0.25).tolist() == [0]
    assert tvops.nms(boxes, scores, 0.25).tolist() == [0, 1]


def test_every_key_that_chooses_an_nms_takes_the_names_of_ops():
    """One list of NMS method names (boxloss/ops/nms.py): a config's nms_method, val.py's and the benchmark's nms=,
    and the postprocess that acts on them."""
    from boxloss.benchmark.plan import BENCHMARK_KEYS
    from boxloss.ops.nms import EVALUATION_NMS, NMS_METHODS
    from boxloss.options import all_options
    from boxloss.yolo import postprocess, val_run

    assert NMS_METHODS == ("standard", "diou", "exact") and EVALUATION_NMS == ("standard", "diou", "exact", "none")
    assert all_options()["nms_method"].choices == NMS_METHODS and postprocess.NMS_METHODS is NMS_METHODS
    assert val_run.VAL_KEYS["nms"].choices == BENCHMARK_KEYS["nms"].choices == EVALUATION_NMS
