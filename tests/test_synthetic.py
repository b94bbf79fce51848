"""Tests for the embedded synthetic detection dataset (boxloss.data.synthetic)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from boxloss.data import synthetic as syn
from boxloss.data.synthetic import dataset as syn_dataset

TINY = dict(n_train=6, n_val=3, imgsz=128)
REPO = Path(__file__).resolve().parents[1]


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
    out = tmp_path / "cli"
    r = subprocess.run(
        [sys.executable, "-m", "boxloss.data.synthetic", "--out", str(out), "--seed", "2",
         "--train", "3", "--val", "2", "--imgsz", "96"],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "boxes per class" in r.stdout and "aspect" in r.stdout
    assert len(list((out / "images" / "val").glob("*.png"))) == 2
    assert (out / "data.yaml").is_file() and (out / "manifest.json").is_file()


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
