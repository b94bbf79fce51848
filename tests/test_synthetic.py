"""Tests for the embedded synthetic detection dataset (boxloss.data.synthetic)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from boxloss.data import synthetic as syn
from boxloss.data.synthetic import dataset as syn_dataset
from helpers import assert_refused, run_in_process

TINY = dict(n_train=6, n_val=3, imgsz=128)


def _labels(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "labels").rglob("*.txt"))}


def _pixels(root: Path) -> dict[str, np.ndarray]:
    return {
        str(p.relative_to(root)): cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        for p in sorted((root / "images").rglob("*.png"))
    }


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ds") / "tiny"
    syn.generate(root, seed=0, **TINY)
    return root


def test_layout_and_yaml(tiny):
    for split, n in (("train", 6), ("val", 3)):
        assert len(list((tiny / "images" / split).glob("*.png"))) == n
        assert len(list((tiny / "labels" / split).glob("*.txt"))) == n
    text = (tiny / "data.yaml").read_text()
    import yaml

    content = yaml.safe_load(text)
    assert content["path"] == str(tiny.absolute())
    assert content["train"] == "images/train" and content["val"] == "images/val"
    assert content["names"] == dict(enumerate(syn.CLASS_NAMES))
    man = json.loads((tiny / "manifest.json").read_text())
    assert man["version"] == syn.VERSION and man["params"]["seed"] == 0
    assert man["params"]["n_train"] == 6 and man["params"]["imgsz"] == 128
    assert not [p for p in tiny.parent.iterdir() if ".tmp-" in p.name]
    img = cv2.imread(str(tiny / "images" / "train" / "000000.png"))
    assert img.shape == (128, 128, 3) and img.dtype == np.uint8


def test_same_seed_identical_different_seed_differs(tiny, tmp_path):
    again = tmp_path / "again"
    syn.generate(again, seed=0, **TINY)
    assert _labels(again) == _labels(tiny)
    pa, pb = _pixels(again), _pixels(tiny)
    assert pa.keys() == pb.keys()
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)

    other = tmp_path / "other"
    syn.generate(other, seed=1, **TINY)
    assert _labels(other) != _labels(tiny)
    po = _pixels(other)
    assert not any(np.array_equal(po[k], pb[k]) for k in po)


def test_images_do_not_depend_on_generation_order():
    a = syn.render_sample(3, "val", 5, 128)
    b = syn.render_sample(3, "val", 5, 128)
    syn.render_sample(3, "val", 4, 128)
    c = syn.render_sample(3, "val", 5, 128)
    assert np.array_equal(a.image, c.image) and np.array_equal(a.boxes, b.boxes)
    assert not np.array_equal(a.image, syn.render_sample(3, "train", 5, 128).image)


def test_label_lines_parse_and_are_valid(tiny):
    n = 0
    for p in (tiny / "labels").rglob("*.txt"):
        for line in p.read_text().splitlines():
            parts = line.split()
            assert len(parts) == 5
            c = int(parts[0])
            cx, cy, w, h = map(float, parts[1:])
            assert 0 <= c < len(syn.CLASS_NAMES)
            assert w > 0 and h > 0
            assert 0 <= cx - w / 2 + 1e-6 and cx + w / 2 - 1e-6 <= 1
            assert 0 <= cy - h / 2 + 1e-6 and cy + h / 2 - 1e-6 <= 1
            assert w * 128 >= syn.MIN_BOX_PX - 1e-3 and h * 128 >= syn.MIN_BOX_PX - 1e-3
            n += 1
    assert n > 0


def _extent(mask):
    cols, rows = np.flatnonzero(mask.any(0)), np.flatnonzero(mask.any(1))
    return [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1]


@pytest.mark.parametrize("occlusion", [True, False])
def test_boxes_equal_full_mask_extent(occlusion):
    kw = dict(min_visible=syn.DEFAULT_MIN_VISIBLE, occlusion=occlusion)
    seen = 0
    for i in range(12):
        s = syn.render_sample(7, "train", i, 128, **kw)
        assert len(s.classes) == len(s.boxes) == len(s.masks) == len(s.visible)
        for box, m, v, f in zip(s.boxes, s.masks, s.visible, s.visible_frac):
            assert box.tolist() == _extent(m)  # tight, pixel-edge convention, before occlusion
            assert (box[2] - box[0]) >= syn.MIN_BOX_PX and (box[3] - box[1]) >= syn.MIN_BOX_PX
            assert not (v & ~m).any()
            assert f >= syn.DEFAULT_MIN_VISIBLE
            assert v.sum() >= syn.DEFAULT_MIN_VISIBLE * m.sum()
            if not occlusion:
                assert np.array_equal(v, m)  # fully visible: border rows/cols hold object pixels
            seen += 1
        if not occlusion and len(s.masks) > 1:
            assert s.masks.sum(0).max() == 1  # no two objects share a pixel
    assert seen > 20


def test_occlusion_happens_by_default():
    fracs = np.concatenate([syn.render_sample(0, "train", i, 256).visible_frac for i in range(20)])
    assert (fracs < 1).mean() > 0.1  # some objects are partially hidden
    assert fracs.min() >= syn.DEFAULT_MIN_VISIBLE


def test_labels_on_disk_match_rendered_masks(tiny):
    for i in range(6):
        s = syn.render_sample(0, "train", i, 128)
        rows = np.loadtxt(tiny / "labels" / "train" / f"{i:06d}.txt", ndmin=2).reshape(-1, 5)
        assert rows[:, 0].astype(int).tolist() == s.classes.tolist()
        cx, cy, w, h = (rows[:, 1:] * 128).T
        xyxy = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        assert np.allclose(xyxy, s.boxes, atol=2e-3 * 128)
        img = cv2.imread(str(tiny / "images" / "train" / f"{i:06d}.png"))
        assert np.array_equal(img, s.image)


def test_distribution_has_thin_small_large_and_all_classes(tmp_path):
    root = tmp_path / "mid"
    syn.generate(root, seed=0, n_train=40, n_val=0, imgsz=256)
    d = syn.describe(root)
    assert d["images"]["train"] == 40 and d["boxes"] > 100
    assert all(v > 0 for v in d["boxes_per_class"].values())
    assert d["thin_fraction"] > 0.05  # aspect >= 4 boxes exist
    assert d["small_fraction"] > 0.05 and d["large_fraction"] > 0.02
    assert d["width_px"]["min"] <= 12 and d["height_px"]["min"] <= 12
    assert d["width_px"]["max"] >= 0.3 * 256 or d["height_px"]["max"] >= 0.3 * 256
    assert d["overlap_fraction"] > 0.02
    # thin boxes in both orientations
    wh = []
    for p in (root / "labels" / "train").glob("*.txt"):
        a = np.loadtxt(p, ndmin=2).reshape(-1, 5)
        wh.append(a[:, 3:5])
    wh = np.concatenate(wh)
    assert (wh[:, 0] >= 4 * wh[:, 1]).any() and (wh[:, 1] >= 4 * wh[:, 0]).any()


def test_ensure_dataset_reuses(tmp_path, monkeypatch):
    root = tmp_path / "cache" / "shapes"
    yaml = syn.ensure_dataset(root, **TINY)
    assert yaml == root.absolute() / "data.yaml" and yaml.is_file()
    files = [yaml, root / "manifest.json", root / "images" / "train" / "000000.png"]
    mtimes = [f.stat().st_mtime_ns for f in files]

    def boom(*a, **k):
        raise AssertionError("regenerated an existing dataset")

    monkeypatch.setattr(syn_dataset, "generate", boom)
    assert syn.ensure_dataset(root, **TINY) == yaml
    assert [f.stat().st_mtime_ns for f in files] == mtimes
    monkeypatch.undo()

    # different parameters -> regenerated in place
    yaml2 = syn.ensure_dataset(root, seed=5, **TINY)
    assert json.loads((root / "manifest.json").read_text())["params"]["seed"] == 5
    assert yaml2 == yaml
    assert not [p for p in root.parent.iterdir() if p.name != "shapes"]


def test_interrupted_generation_is_not_a_dataset(tmp_path, monkeypatch):
    root = tmp_path / "shapes"
    # a leftover temp dir from an interrupted run, even with a plausible manifest
    leftover = tmp_path / ".shapes.tmp-12345-deadbeef"
    (leftover / "images" / "train").mkdir(parents=True)
    (leftover / "manifest.json").write_text(json.dumps({"version": syn.VERSION}))
    # an interrupted generation: crash while writing images
    calls = {"n": 0}
    real = syn_dataset.render_sample

    def crash(*a, **k):
        calls["n"] += 1
        if calls["n"] > 3:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(syn_dataset, "render_sample", crash)
    with pytest.raises(KeyboardInterrupt):
        syn.ensure_dataset(root, **TINY)
    monkeypatch.undo()
    assert not root.exists()
    assert not syn_dataset._is_complete(root, syn_dataset._params(**TINY))
    # a half-written root without manifest is not accepted either
    (root / "images" / "train").mkdir(parents=True)
    yaml = syn.ensure_dataset(root, **TINY)
    assert syn_dataset._is_complete(root, syn_dataset._params(**TINY))
    assert len(list((root / "images" / "train").glob("*.png"))) == 6
    assert yaml.is_file()


def test_default_root(monkeypatch, tmp_path):
    monkeypatch.setenv("BOXLOSS_DATA_DIR", str(tmp_path / "env"))
    assert syn.default_root() == (tmp_path / "env").absolute() / f"{syn.NAME}-v{syn.VERSION}"
    assert syn.default_root(n_train=7).parent == (tmp_path / "env").absolute()  # variants side by side
    assert syn.default_root(n_train=7) != syn.default_root()
    monkeypatch.delenv("BOXLOSS_DATA_DIR")
    r = syn.default_root()
    assert r.name == f"{syn.NAME}-v{syn.VERSION}" and r.parent.name == "datasets"
    assert syn.default_root(seed=1) != r


def test_ensure_dataset_refreshes_moved_yaml(tmp_path):
    a = tmp_path / "a"
    syn.ensure_dataset(a, **TINY)
    b = tmp_path / "b"
    os.rename(a, b)
    yaml = syn.ensure_dataset(b, **TINY)
    import yaml as pyyaml

    assert pyyaml.safe_load(yaml.read_text())["path"] == str(b.absolute())


def test_cli_runs(tmp_path):
    """``python -m boxloss.data.synthetic key=value ...`` writes the dataset and prints its statistics."""
    out = tmp_path / "cli"
    r = run_in_process("boxloss.data.synthetic", [f"out={out}", "seed=2", "train=3", "val=2", "imgsz=96",
                                                  "occlusion=false"], tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "boxes per class" in r.stdout and "aspect" in r.stdout
    assert len(list((out / "images" / "val").glob("*.png"))) == 2
    assert (out / "data.yaml").is_file() and (out / "manifest.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--out", "x", "--seed", "2"], "--out is the old spelling; use out=..."),
    (["out=x", "--no-occlusion"], "--no-occlusion is the old spelling; use occlusion=false"),
    (["out=x", "--max-objects=3"], "--max-objects is the old spelling; use max_objects=..."),
    (["seed=2"], "out= is required: the dataset folder, e.g. out=datasets/shapes"),
    (["out=x", "task=depth"], "task='depth' is out of range: must be one of detect, segment, pose, obb"),
])
def test_cli_refuses_old_flags_and_bad_keys_on_one_line(args, message, tmp_path):
    assert_refused("boxloss.data.synthetic.__main__", args, message, cwd=tmp_path, exact=True, quiet=True)


def test_cli_help_lists_the_keys(capsys):
    from boxloss.data.synthetic.__main__ import main

    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "out=None" in out and "occlusion=True" in out and "--out" not in out.replace("``--flag``", "")


def test_rendering_is_pinned():
    """The pixels, boxes and masks of a few images are those of generator VERSION 1 (digest recorded when the
    generator was split into render/dataset/stats): a change here must bump VERSION."""
    import hashlib

    digest = hashlib.sha256()
    for split, n in (("train", 12), ("val", 6)):
        for i in range(n):
            s = syn.render_sample(0, split, i, 256)
            for array in (s.image, s.boxes, s.classes, s.masks, s.visible, s.visible_frac):
                digest.update(array.tobytes())
    s = syn.render_sample(3, "val", 5, 96, occlusion=False, max_objects=4)
    digest.update(s.image.tobytes())
    digest.update(s.boxes.tobytes())
    assert syn.VERSION == 1
    assert digest.hexdigest() == "73bc79f878e83880d7abaf7d8a30213a45356d00334a8f99228f6fd91a808dec"


def test_label_files_are_pinned(tmp_path):
    """shapes-mini's label digest (manifest) is the one VERSION 1 has always written."""
    syn.generate(tmp_path / "mini", n_train=48, n_val=24)
    manifest = json.loads((tmp_path / "mini" / "manifest.json").read_text())
    assert manifest["labels_sha256"] == "fcceff081f05e256112c4f711359cb414f3c0b887cb6dceac1a4653ab0c28b72"


# ------------------------------------------------------------------------------------------ shapes-seg, shapes-pose
from boxloss.data.synthetic import annotations as ann  # noqa: E402
from boxloss.data.synthetic.render import mask_extent  # noqa: E402


def _pixel_centres_inside(polygon: np.ndarray, size: int) -> np.ndarray:
    """(size, size) bool: which pixel centres lie inside the polygon (matplotlib's point-in-polygon test)."""
    from matplotlib.path import Path as PolygonPath

    ys, xs = np.mgrid[0:size, 0:size] + 0.5
    return PolygonPath(polygon).contains_points(np.stack([xs.ravel(), ys.ravel()], 1)).reshape(size, size)


def test_segment_polygons_are_the_visible_pixels_and_their_boxes():
    """Each polygon covers exactly the object's visible pixels (pixel centres, an independent point-in-polygon test);
    a visible part in several pieces is one polygon whose zero-width bridges may graze a pixel centre or two. Its
    extent is the visible mask's pixel-edge box within 1/16 px, and for an unoccluded object the `shapes` box."""
    size, seen = 256, {"whole": 0, "occluded": 0, "pieces": 0}
    for index in range(12):
        sample = syn.render_sample(0, "train", index, size)
        for k in range(len(sample.classes)):
            visible, polygon = sample.visible[k], ann.visible_polygon(sample.visible[k])
            pieces = cv2.connectedComponents(visible.astype(np.uint8), connectivity=8)[0] - 1
            wrong = int((_pixel_centres_inside(polygon, size) != visible).sum())
            assert wrong == 0 if pieces == 1 else wrong <= 2 * (pieces - 1), (index, k, wrong, pieces)
            extent = (polygon[:, 0].min(), polygon[:, 1].min(), polygon[:, 0].max(), polygon[:, 1].max())
            np.testing.assert_allclose(extent, mask_extent(visible), atol=1 / 16 + 1e-9)
            if np.array_equal(visible, sample.masks[k]):
                np.testing.assert_allclose(extent, sample.boxes[k], atol=1 / 16 + 1e-9)
                seen["whole"] += 1
            else:
                seen["occluded"] += 1
            seen["pieces"] += pieces > 1
    assert min(seen.values()) > 0, seen  # every case above was exercised


def test_keypoints_are_extreme_points_on_the_object_and_its_box():
    """In-image keypoints (v > 0) lie exactly on their edge of the `shapes` box (left on x1, top on y1, ...), inside
    it, on a pixel of the object; v = 2 where that pixel is visible, 1 where it is covered; v = 0 is (0, 0)."""
    size, counts = 256, np.zeros(3, int)
    for index in range(12):
        sample = syn.render_sample(0, "train", index, size)
        for k in range(len(sample.classes)):
            x1, y1, x2, y2 = sample.boxes[k]
            for j, (x, y, v) in enumerate(ann.keypoints(sample, k, size)):
                counts[int(v)] += 1
                if v == 0:
                    assert x == y == 0
                    continue
                assert (x, y, x, y)[j] == (x1, y1, x2, y2)[j] and x1 <= x <= x2 and y1 <= y <= y2
                row, column = int(np.floor(y)) - (j == 3), int(np.floor(x)) - (j == 2)  # the pixel inside the edge
                assert sample.masks[k][row, column]
                assert v == (2 if sample.visible[k][row, column] else 1)
    assert counts.min() > 0, counts  # truncated, occluded and visible keypoints all occur
    unoccluded = syn.render_sample(3, "val", 5, 96, occlusion=False, max_objects=4)
    visibility = np.concatenate([ann.keypoints(unoccluded, k, 96)[:, 2] for k in range(len(unoccluded.classes))])
    assert set(visibility) <= {0.0, 2.0}


def test_flip_idx_swaps_left_and_right_under_ultralytics_flip():
    """ultralytics' own horizontal flip with the dataset's flip_idx keeps the names true: the flipped 'left' point
    is the leftmost again, 'top' the topmost; without the permutation 'left' would be the rightmost."""
    from ultralytics.data.augment import RandomFlip
    from ultralytics.utils.instance import Instances

    size = 256
    sample = syn.render_sample(0, "train", 0, size)
    points = np.stack([ann.keypoints(sample, k, size) for k in range(len(sample.classes))]).astype(np.float32)
    complete = (points[..., 2] > 0).all(1)
    assert complete.sum() >= 2
    boxes = np.asarray(sample.boxes, dtype=np.float32)
    for flip_idx, names_hold in ((ann.FLIP_IDX, True), (None, False)):
        labels = {"img": sample.image.copy(), "instances": Instances(boxes.copy(), np.zeros((len(boxes), 0, 2)),
                                                                      points.copy(), "xyxy", normalized=False)}
        flipped = RandomFlip(p=1.0, direction="horizontal", flip_idx=flip_idx)(labels)["instances"].keypoints
        xs, ys = flipped[complete, :, 0], flipped[complete, :, 1]
        assert np.all(ys[:, 1] == ys.min(1)) and np.all(ys[:, 3] == ys.max(1))
        assert np.all(xs[:, 0] == xs.min(1)) == names_hold and np.all(xs[:, 2] == xs.max(1)) == names_hold


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_seg_and_pose_datasets_are_deterministic_same_images(task, tiny, tmp_path):
    """Two generations give byte-identical labels; the images are those of `shapes`."""
    first = syn.generate(tmp_path / "a", seed=0, **TINY, task=task).parent
    second = syn.generate(tmp_path / "b", seed=0, **TINY, task=task).parent
    assert _labels(first) == _labels(second) and _labels(first) != _labels(tiny)
    pixels, shapes_pixels = _pixels(first), _pixels(tiny)
    assert all(np.array_equal(pixels[k], shapes_pixels[k]) for k in shapes_pixels)
    assert json.loads((first / "manifest.json").read_text())["name"] == syn.TASK_NAMES[task]
    assert syn.default_root(task).name == f"{syn.TASK_NAMES[task]}-v{syn.VERSION}"


@pytest.mark.parametrize("task", ["segment", "pose"])
def test_ultralytics_reads_the_seg_and_pose_labels(task, tmp_path):
    """ultralytics' own dataset (label check, cache) reads every object: a polygon per object whose box is its
    extent, or the box and the four keypoints exactly as written; data.yaml passes its dataset check."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    root = syn.generate(tmp_path / task, seed=0, **TINY, task=task).parent
    data = check_det_dataset(str(root / "data.yaml"))
    if task == "pose":
        assert data["kpt_shape"] == ann.KPT_SHAPE and data["flip_idx"] == ann.FLIP_IDX
    dataset = build_yolo_dataset(get_cfg(overrides={"task": task, "imgsz": 128}), data["train"], 2, data,
                                 mode="val", stride=32)
    assert len(dataset.labels) == TINY["n_train"]
    for label in dataset.labels:
        lines = (root / "labels" / "train" / f"{Path(label['im_file']).stem}.txt").read_text().splitlines()
        values = [np.array(line.split()[1:], dtype=np.float64) for line in lines]
        assert len(label["cls"]) == len(lines) > 0
        if task == "segment":
            assert len(label["segments"]) == len(lines)
            for segment, written, box in zip(label["segments"], values, label["bboxes"]):
                xy = written.reshape(-1, 2)
                np.testing.assert_allclose(segment, xy, atol=1e-6)
                np.testing.assert_allclose(box, [*(xy.min(0) + xy.max(0)) / 2, *(xy.max(0) - xy.min(0))], atol=1e-6)
        else:
            written = np.stack(values)
            np.testing.assert_allclose(label["bboxes"], written[:, :4], atol=1e-6)
            np.testing.assert_allclose(label["keypoints"], written[:, 4:].reshape(-1, *ann.KPT_SHAPE), atol=1e-6)
    batch = dataset.collate_fn([dataset[i] for i in range(2)])
    assert ("masks" if task == "segment" else "keypoints") in batch and len(batch["cls"]) > 0
