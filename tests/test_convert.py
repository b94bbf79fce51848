"""Converters to YOLO format (boxloss.convert): conventions, the report, failure without leftovers, and the
seeded stratified split (of LabelImg-style folders, and of an existing YOLO dataset).

Real data: BCCD (VOC XML, 1-based inclusive corners, 205/87/72 split, two zero-area point boxes) and coco128
(COCO JSON, ids 1..90 with gaps, 10 crowd regions) from ../shared/datasets, relative to the repository root;
those tests skip when that folder is absent. The rest use tiny datasets built in tmp_path.
"""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from PIL import Image

from boxloss.cli.convert import main as convert_main
from boxloss.convert import ConversionError, convert_coco, convert_voc, convert_voc_folders, stratified_split
from boxloss.convert.voc import pair_annotations, voc_corners_to_xyxy
from boxloss.errors import ConfigError
from boxloss.data.yolo_format import check_dataset, split_images
from boxloss.data.yolo_format import xyxy_to_normalised as xyxy_to_yolo
from helpers import assert_refused

REPO = Path(__file__).resolve().parents[1]
DATASETS = REPO.parent / "shared" / "datasets"
BCCD = DATASETS / "bccd" / "BCCD"
COCO128 = DATASETS / "coco128"
needs_datasets = pytest.mark.skipif(not DATASETS.is_dir(),
                                    reason=f"shared datasets folder {DATASETS} not present on this machine")


def read_labels(path: Path) -> list[list[float]]:
    return [[float(v) for v in line.split()] for line in path.read_text().splitlines()]


def leftovers(parent: Path) -> list[str]:
    """Anything a converter may have left in ``parent`` (output or temporary folders)."""
    return sorted(p.name for p in parent.iterdir()) if parent.exists() else []


# ------------------------------------------------------------------------------------------ tiny VOC builder
def make_voc(root: Path, images: dict, size_in_xml: bool = True, split: dict | None = None) -> Path:
    """A VOC folder with 64x48 JPEGs. ``images``: id -> list of (name, xmin, ymin, xmax, ymax[, difficult])."""
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for image_id, objects in images.items():
        Image.new("RGB", (64, 48), (90, 30, 30)).save(root / "JPEGImages" / f"{image_id}.jpg")
        size = "<size><width>64</width><height>48</height><depth>3</depth></size>" if size_in_xml else ""
        body = "".join(
            f"<object><name>{o[0]}</name><difficult>{o[5] if len(o) > 5 else 0}</difficult><bndbox>"
            f"<xmin>{o[1]}</xmin><ymin>{o[2]}</ymin><xmax>{o[3]}</xmax><ymax>{o[4]}</ymax></bndbox></object>"
            for o in objects)
        (root / "Annotations" / f"{image_id}.xml").write_text(
            f"<annotation><filename>{image_id}.jpg</filename>{size}{body}</annotation>")
    for name, ids in (split or {"train": list(images)}).items():
        (root / "ImageSets" / "Main" / f"{name}.txt").write_text("".join(f"{i}\n" for i in ids))
    return root


# ----------------------------------------------------------------------------------------------- conventions
def test_voc_corners_are_one_based_inclusive():
    """xmin = 1 .. xmax = W covers the whole image: x1 = xmin - 1 = 0, x2 = xmax = W, normalised 0 .. 1."""
    assert voc_corners_to_xyxy((1, 1, 640, 480)) == (0.0, 0.0, 640.0, 480.0)
    assert xyxy_to_yolo((0.0, 0.0, 640.0, 480.0), 640, 480) == (0.5, 0.5, 1.0, 1.0)
    # a 10-pixel-wide box: columns 5..14 (1-based) are pixel edges 4..14
    assert voc_corners_to_xyxy((5, 7, 14, 9)) == (4.0, 6.0, 14.0, 9.0)


def test_voc_clips_drops_and_counts(tmp_path):
    """Clip per side, drop degenerate / outside / difficult (when asked) and keep difficult by default."""
    src = make_voc(tmp_path / "voc", {
        "a": [("cat", 1, 1, 64, 48),           # whole image: touches all borders, not clipped
              ("cat", 60, 10, 70, 20),         # past the right border: clipped to x2 = 64
              ("dog", -4, 40, 10, 60),         # past left and bottom
              ("dog", 5, 5, 5, 9),             # xmin == xmax: degenerate point/line
              ("dog", 70, 10, 80, 20),         # entirely right of the image
              ("cat", 10, 10, 20, 20, 1)],     # difficult
        "b": []})
    report = convert_voc(src, tmp_path / "out")
    assert report.class_names == ["cat", "dog"] and report.class_order == "sorted names"
    assert (report.boxes_read, report.boxes_written) == (6, 4)
    assert report.dropped_by_reason == {"degenerate": 1, "outside_image": 1}
    assert report.clipped_sides == {"left": 1, "top": 0, "right": 1, "bottom": 1}
    assert [(c.index, c.sides, c.clipped_xyxy) for c in report.clipped] == [
        (1, ["right"], [59.0, 9.0, 64.0, 20.0]), (2, ["left", "bottom"], [0.0, 39.0, 10.0, 48.0])]
    assert report.kept_flagged == {"difficult": 1}
    assert report.empty_label_files == 1 and (tmp_path / "out/labels/train/b.txt").read_text() == ""
    labels = read_labels(tmp_path / "out/labels/train/a.txt")
    assert labels[0] == [0, 0.5, 0.5, 1.0, 1.0]
    assert labels[1] == pytest.approx([0, 61.5 / 64, 14.5 / 48, 5 / 64, 11 / 48], abs=5e-7)

    dropped = convert_voc(src, tmp_path / "out2", difficult="drop")
    assert dropped.dropped_by_reason == {"degenerate": 1, "outside_image": 1, "difficult": 1}
    assert dropped.kept_flagged == {"difficult": 0} and dropped.boxes_written == 3


def test_voc_class_order_and_missing_size(tmp_path):
    """classes= fixes the order; a name outside it is an error; no <size> -> the image's size is used."""
    src = make_voc(tmp_path / "voc", {"a": [("zebra", 1, 1, 32, 24), ("ant", 1, 1, 64, 48)]}, size_in_xml=False)
    report = convert_voc(src, tmp_path / "out", classes=["zebra", "ant"])
    assert report.class_names == ["zebra", "ant"]
    assert read_labels(tmp_path / "out/labels/train/a.txt") == [[0, 0.25, 0.25, 0.5, 0.5], [1, 0.5, 0.5, 1, 1]]
    with pytest.raises(ConversionError, match=r"a\.xml: object 1: class 'ant' is not in the given classes"):
        convert_voc(src, tmp_path / "out2", classes=["zebra"])
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------------------------------------------- BCCD
# the converted dataset: conftest.bccd


@needs_datasets
def test_bccd_official_split_and_data_yaml(bccd):
    out, report = bccd
    assert report.images_per_split == {"train": 205, "val": 87, "test": 72} and report.images == 364
    for split, n in report.images_per_split.items():
        ids = (BCCD / "ImageSets/Main" / f"{split}.txt").read_text().split()
        assert sorted(p.stem for p in (out / "images" / split).iterdir()) == sorted(ids)
        assert len(list((out / "labels" / split).glob("*.txt"))) == n
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == str(out.resolve())
    assert (data["train"], data["val"], data["test"]) == ("images/train", "images/val", "images/test")
    assert data["names"] == {0: "RBC", 1: "WBC", 2: "Platelets"}
    assert (out / "images/train/BloodImage_00001.jpg").is_symlink()


@needs_datasets
def test_bccd_degenerate_points_dropped_and_reported(bccd):
    out, report = bccd
    assert report.dropped_by_reason == {"degenerate": 2}
    assert sorted((d.file, d.index, d.box) for d in report.dropped) == [
        ("Annotations/BloodImage_00338.xml", 12, [504.0, 337.0, 504.0, 337.0]),
        ("Annotations/BloodImage_00343.xml", 3, [181.0, 329.0, 181.0, 329.0])]
    saved = json.loads((out / "conversion_report.json").read_text())
    assert saved["dropped_by_reason"] == {"degenerate": 2} and saved["boxes_written"] == report.boxes_written
    assert "BloodImage_00338.xml" in report.summary() and "BloodImage_00343.xml" in report.summary()


@needs_datasets
def test_bccd_totals_and_label_ranges(bccd):
    out, report = bccd
    objects = sum(len(ET.parse(p).getroot().findall("object")) for p in (BCCD / "Annotations").glob("*.xml"))
    assert report.boxes_read == objects == 4888
    assert report.boxes_written == objects - len(report.dropped) == 4886
    rows = [row for p in (out / "labels").rglob("*.txt") for row in read_labels(p)]
    assert len(rows) == report.boxes_written
    assert {row[0] for row in rows} == {0, 1, 2}
    assert all(0 <= v <= 1 for row in rows for v in row[1:]) and all(row[3] > 0 and row[4] > 0 for row in rows)


@needs_datasets
def test_bccd_border_boxes_end_exactly_at_the_border(bccd):
    """xmax == width -> x2 == width (right edge 1.0); xmin == 1 -> x1 == 0; neither counts as clipped."""
    out, report = bccd
    assert report.clipped_boxes == 0
    right = left = 0
    for xml in (BCCD / "Annotations").glob("*.xml"):
        split = next(s for s in ("train", "val", "test") if (out / "labels" / s / f"{xml.stem}.txt").exists())
        rows = iter(read_labels(out / "labels" / split / f"{xml.stem}.txt"))
        for obj in ET.parse(xml).getroot().findall("object"):
            xmin, ymin, xmax, ymax = (int(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
            if xmin == xmax:
                continue  # the dropped degenerate points
            _, cx, cy, w, h = next(rows)
            if xmax == 640:
                right += 1
                assert voc_corners_to_xyxy((xmin, ymin, xmax, ymax))[2] == 640.0
                assert cx + w / 2 == pytest.approx(1.0, abs=1e-6)
            if xmin == 1:
                left += 1
                assert cx - w / 2 == pytest.approx(0.0, abs=1e-6)
    assert (right, left) == (237, 237)


@needs_datasets
def test_bccd_hand_checked_box(bccd):
    """BloodImage_00000 object 0: WBC xmin 260 ymin 177 xmax 491 ymax 376 in a 640x480 image.

    (a val image). Pixel edges x 259..491, y 176..376: cx = 375/640 = 0.5859375, cy = 276/480 = 0.575,
    w = 232/640 = 0.3625, h = 200/480 = 0.41666..; WBC is class 1.
    """
    out, _ = bccd
    first_line = (out / "labels/val/BloodImage_00000.txt").read_text().splitlines()[0]
    assert first_line == "1 0.585938 0.575000 0.362500 0.416667"


# ------------------------------------------------------------------------------------------------- coco128
@pytest.fixture(scope="module")
def coco128(tmp_path_factory):
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {DATASETS} not present on this machine")
    out = tmp_path_factory.mktemp("coco") / "coco128-yolo"
    return out, convert_coco(COCO128 / "train2017", COCO128 / "annotations/instances_train2017.json", out)


@needs_datasets
def test_coco128_counts_crowd_and_split(coco128):
    out, report = coco128
    source = json.loads((COCO128 / "annotations/instances_train2017.json").read_text())
    crowd = [a for a in source["annotations"] if a["iscrowd"]]
    assert report.images == 128 and report.images_per_split == {"train2017": 128}
    assert len(list((out / "labels/train2017").glob("*.txt"))) == 128
    assert report.dropped_by_reason.get("crowd") == len(crowd) == 10
    assert sorted(d.index for d in report.dropped if d.reason == "crowd") == sorted(a["id"] for a in crowd)
    degenerate = report.dropped_by_reason.get("degenerate", 0) + report.dropped_by_reason.get("outside_image", 0)
    assert report.boxes_written == len(source["annotations"]) - 10 - degenerate == 929
    assert sum(len(read_labels(p)) for p in (out / "labels").rglob("*.txt")) == report.boxes_written


@needs_datasets
def test_coco128_classes_sorted_by_id(coco128):
    out, report = coco128
    source = json.loads((COCO128 / "annotations/instances_train2017.json").read_text())
    ids = sorted(c["id"] for c in source["categories"])
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["coco_category_ids"] == ids and len(ids) == 80 and ids[-1] == 90
    assert data["names"][0] == "person" and data["names"][16] == "dog" and data["names"][79] == "toothbrush"
    assert (data["train"], data["val"]) == ("images/train2017", "images/train2017")


@needs_datasets
def test_coco128_hand_checked_annotation(coco128):
    """Annotation 1774: dog (id 18 -> class 16), bbox [61.87, 276.25, 296.42, 103.18] in a 640x426 image.

    cx = (61.87 + 296.42 / 2) / 640 = 0.32825, cy = (276.25 + 103.18 / 2) / 426 = 0.769577..,
    w = 296.42 / 640 = 0.463156.., h = 103.18 / 426 = 0.242206..
    """
    out, _ = coco128
    lines = (out / "labels/train2017/000000000074.txt").read_text().splitlines()
    assert "16 0.328250 0.769577 0.463156 0.242207" in lines


@pytest.fixture(scope="module")
def coco128_seg(tmp_path_factory):
    """coco128 converted with task=segment (one polygon per object)."""
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {DATASETS} not present on this machine")
    out = tmp_path_factory.mktemp("coco_seg") / "coco128-seg"
    return out, convert_coco(COCO128 / "train2017", COCO128 / "annotations/instances_train2017.json", out,
                             task="segment")


@needs_datasets
def test_coco128_segments_count_and_keep_the_same_objects(coco128, coco128_seg):
    """The segment labels hold the same objects as the box labels (929: the 10 crowd regions dropped), line by
    line: each polygon's extent is COCO's bbox within a pixel; 82 objects in several polygons were joined."""
    out, report = coco128_seg
    assert (report.task, report.boxes_read, report.boxes_written) == ("segment", 939, 929)
    assert report.dropped_by_reason == {"crowd": 10} and report.segments == {"joined": 82}
    assert "labels  segment: one polygon per object (joined 82)" in report.summary()
    worst = 0.0
    for boxes_file in (coco128[0] / "labels/train2017").glob("*.txt"):
        boxes = read_labels(boxes_file)
        polygons = read_labels(out / "labels/train2017" / boxes_file.name)
        assert [b[0] for b in boxes] == [p[0] for p in polygons]
        with Image.open(COCO128 / "train2017" / boxes_file.with_suffix(".jpg").name) as image:
            width, height = image.size
        for box, polygon in zip(boxes, polygons):
            xs, ys = polygon[1::2], polygon[2::2]
            extent = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys))
            worst = max(worst, *(abs(a - b) * size for a, b, size in zip(extent, box[1:], (width, height) * 2)))
    assert worst < 1.0


@needs_datasets
def test_coco128_segments_are_ultralytics_own_converters(coco128_seg, tmp_path):
    """ultralytics' convert_coco(use_segments=True) on the same JSON writes the same lines, in the same order, the
    same polygons (it prints 6 significant digits, boxloss 6 decimals)."""
    import numpy as np

    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics.data.converter import convert_coco as ultralytics_convert_coco

    (tmp_path / "annotations").mkdir()
    (tmp_path / "annotations" / "instances_train2017.json").symlink_to(
        COCO128 / "annotations" / "instances_train2017.json")
    ultralytics_convert_coco(str(tmp_path / "annotations"), str(tmp_path / "theirs"), use_segments=True,
                             cls91to80=True)
    ours_dir = coco128_seg[0] / "labels/train2017"
    compared = 0
    for ours in ours_dir.glob("*.txt"):
        theirs = tmp_path / "theirs" / "labels" / "train2017" / ours.name
        a, b = read_labels(ours), read_labels(theirs) if theirs.exists() else []
        assert [len(line) for line in a] == [len(line) for line in b], ours.name
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, rtol=0, atol=6e-7)
            compared += 1
    assert compared == 929


def test_polygons_are_joined_as_ultralytics_joins_them():
    """merge_polygons is ultralytics' merge_multi_segment, on pieces in every order (a middle piece walked
    backwards too), and its bridges enclose no area: the joined outline rasterises to the union of the pieces."""
    import numpy as np
    from pycocotools import mask as mask_utils

    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics.data.converter import merge_multi_segment

    from boxloss.convert.polygons import merge_polygons

    rng = np.random.default_rng(0)
    for pieces in (2, 3, 4, 5):
        for _ in range(20):
            polygons = []
            for k in range(pieces):  # convex-ish blobs side by side, vertices in random rotation
                angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(3, 9)))
                centre = np.array([15 + 25 * k, rng.uniform(15, 35)])
                points = centre + np.stack([np.cos(angles), np.sin(angles)], 1) * rng.uniform(4, 9)
                polygons.append(np.roll(points, rng.integers(0, len(points)), 0).reshape(-1).tolist())
            theirs = np.concatenate(merge_multi_segment([list(p) for p in polygons]), axis=0)
            ours = merge_polygons(polygons)
            np.testing.assert_array_equal(ours, theirs)
            union = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(polygons, 50, 140)))
            joined = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects([ours.reshape(-1).tolist()], 50,
                                                                               140)))
            assert (union != joined).sum() <= 2 * pieces  # at most a boundary pixel where a bridge leaves a piece


def test_coco_segments_small(tmp_path):
    """task=segment on a tiny JSON: one polygon as it is, two polygons joined, a non-crowd RLE mask traced to its
    contour, a vertex outside the image clipped and counted, an object without a polygon dropped (no_polygon);
    crowd and degenerate objects dropped as for boxes."""
    import numpy as np
    from pycocotools import mask as mask_utils

    images, path = make_coco(tmp_path / "src")
    data = json.loads(path.read_text())
    square = np.zeros((48, 64), np.uint8)
    square[10:20, 30:40] = 1
    rle = mask_utils.encode(np.asfortranarray(square))
    segmentations = {11: [[4, 6, 24, 6, 24, 16, 4, 16]],
                     12: [[50, 40, 70, 40, 70, 60], [52, 41, 60, 41, 60, 47]],
                     13: [[0, 0, 64, 0, 64, 48]], 14: [[1, 1, 1, 6, 2, 6]]}
    for ann in data["annotations"]:
        ann["segmentation"] = segmentations[ann["id"]]
    data["annotations"] += [
        {"id": 15, "image_id": 2, "category_id": 7, "bbox": [30, 10, 10, 10], "iscrowd": 0,
         "segmentation": {"size": [48, 64], "counts": rle["counts"].decode()}},
        {"id": 16, "image_id": 2, "category_id": 7, "bbox": [5, 5, 10, 10], "iscrowd": 0, "segmentation": [[1, 2]]}]
    path.write_text(json.dumps(data))
    report = convert_coco(images, path, tmp_path / "out", task="segment")
    first, second = read_labels(tmp_path / "out/labels/minival/1.txt")
    assert first == pytest.approx([1, 4 / 64, 6 / 48, 24 / 64, 6 / 48, 24 / 64, 16 / 48, 4 / 64, 16 / 48], abs=5e-7)
    assert second[0] == 0 and len(second) == 1 + 2 * 8  # 3 + 3 vertices, each back to its bridge vertex
    assert max(second[1::2]) == 1.0  # x = 70 clipped to the image's 64
    (traced,) = read_labels(tmp_path / "out/labels/minival/2.txt")
    assert traced == pytest.approx([1, 30 / 64, 10 / 48, 30 / 64, 19 / 48, 39 / 64, 19 / 48, 39 / 64, 10 / 48],
                                   abs=5e-7)  # OpenCV's contour through the corner pixels, as ultralytics writes it
    assert report.dropped_by_reason == {"degenerate": 1, "crowd": 1, "no_polygon": 1}
    assert report.segments == {"joined": 1, "points_clipped": 2, "rle": 1}
    assert (report.boxes_read, report.boxes_written) == (6, 3)
    assert check_dataset(tmp_path / "out/data.yaml", ("train",), task="segment")
    with pytest.raises(ConversionError, match="task 'pose': must be one of detect, segment"):
        convert_coco(images, path, tmp_path / "other", task="pose")


def test_convert_cli_task_segment(tmp_path, capsys):
    images, path = make_coco(tmp_path / "src")
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["segmentation"] = [[1, 1, 3, 1, 3, 3]]
    path.write_text(json.dumps(data))
    assert convert_main(["coco", f"images={images}", f"json={path}", f"out={tmp_path / 'out'}", "task=segment"]) == 0
    assert "labels  segment: one polygon per object" in capsys.readouterr().out
    assert_refused("boxloss.cli.convert", ["coco", f"images={images}", f"json={path}", f"out={tmp_path / 'o2'}",
                                           "task=pose"],
                   "task='pose' is out of range: must be one of detect, segment, obb", cwd=tmp_path)


@needs_datasets
def test_coco128_images_without_annotations_get_empty_labels(coco128):
    out, report = coco128
    for name in ("000000000250", "000000000508"):
        assert (out / f"labels/train2017/{name}.txt").read_text() == ""
        assert (out / f"images/train2017/{name}.jpg").exists()
    assert report.empty_label_files == 2


# ------------------------------------------------------------------------------------------ ultralytics reads it
@needs_datasets
@pytest.mark.parametrize("dataset", ["bccd", "coco128", "coco128_seg"])
def test_output_loads_in_ultralytics(dataset, request, monkeypatch):
    import ultralytics.data.utils as yolo_data

    monkeypatch.setattr(yolo_data, "check_font", lambda *args, **kwargs: None)  # it would try to download Arial
    out, report = request.getfixturevalue(dataset)
    data = yolo_data.check_det_dataset(str(out / "data.yaml"))
    assert data["nc"] == len(report.class_names)
    image_dirs = {Path(data[k]) for k in ("train", "val", "test") if data.get(k)}
    images = sorted(str(p) for d in image_dirs for p in d.iterdir())
    assert len(images) == report.images
    found = 0
    for image, label in zip(images, yolo_data.img2label_paths(images)):
        result = yolo_data.verify_image_label((image, label, "", False, data["nc"], 0, 0, False))
        _, lb, _, segments, _, missing, nf, _, corrupt, msg = result
        assert (missing, nf, corrupt) == (0, 1, 0), msg
        assert "duplicate" not in msg, msg
        assert len(segments) == (len(lb) if dataset == "coco128_seg" else 0)  # one polygon per object
        found += len(lb)
    assert found == report.boxes_written


# ------------------------------------------------------------------------------------- malformed input, outputs
def test_malformed_xml_names_the_file_and_writes_nothing(tmp_path):
    src = make_voc(tmp_path / "voc", {"good": [("cat", 1, 1, 10, 10)], "bad": [("cat", 1, 1, 10, 10)]})
    (src / "Annotations/bad.xml").write_text("<annotation><object><name>cat</name>")
    out = tmp_path / "deep" / "out"
    with pytest.raises(ConversionError, match=r"bad\.xml: not well-formed XML"):
        convert_voc(src, out)
    assert leftovers(tmp_path) == ["voc"]  # neither out nor the parent folders created for it


def test_bad_voc_box_names_file_and_object(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10), ("cat", 1, 1, "ten", 10)]})
    with pytest.raises(ConversionError, match=r"a\.xml: object 1: <bndbox><xmax> is 'ten', not a number"):
        convert_voc(src, tmp_path / "out")
    (src / "Annotations/a.xml").write_text("<annotation><object><name>cat</name><bndbox><xmin>1</xmin>"
                                           "</bndbox></object></annotation>")
    with pytest.raises(ConversionError, match=r"a\.xml: object 0: <bndbox><ymin> is missing"):
        convert_voc(src, tmp_path / "out")
    assert leftovers(tmp_path) == ["voc"]


def test_missing_image_names_the_annotation(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)]})
    (src / "JPEGImages/a.jpg").unlink()
    with pytest.raises(ConversionError, match=r"a\.xml: image not found"):
        convert_voc(src, tmp_path / "out")
    assert leftovers(tmp_path) == ["voc"]


def make_coco(root: Path, bbox=(4, 6, 20, 10)) -> tuple[Path, Path]:
    (root / "imgs").mkdir(parents=True)
    for name in ("1.jpg", "2.jpg"):
        Image.new("RGB", (64, 48)).save(root / "imgs" / name)
    data = {"images": [{"id": 1, "file_name": "1.jpg", "width": 64, "height": 48},
                       {"id": 2, "file_name": "2.jpg", "width": 64, "height": 48}],
            "categories": [{"id": 7, "name": "seven"}, {"id": 3, "name": "three"}],
            "annotations": [{"id": 11, "image_id": 1, "category_id": 7, "bbox": list(bbox), "iscrowd": 0},
                            {"id": 12, "image_id": 1, "category_id": 3, "bbox": [50, 40, 20, 20], "iscrowd": 0},
                            {"id": 13, "image_id": 1, "category_id": 3, "bbox": [0, 0, 64, 48], "iscrowd": 1},
                            {"id": 14, "image_id": 2, "category_id": 3, "bbox": [1, 1, 0, 5], "iscrowd": 0}]}
    path = root / "instances_minival.json"
    path.write_text(json.dumps(data))
    return root / "imgs", path


def test_coco_small(tmp_path):
    """Sorted ids (3 -> 0, 7 -> 1), clip at right/bottom, crowd and degenerate dropped, split from file name."""
    images, path = make_coco(tmp_path / "src")
    report = convert_coco(images, path, tmp_path / "out")
    assert report.class_names == ["three", "seven"] and report.images_per_split == {"minival": 2}
    first, second = read_labels(tmp_path / "out/labels/minival/1.txt")
    assert first == pytest.approx([1, 14 / 64, 11 / 48, 20 / 64, 10 / 48], abs=5e-7)
    assert second == pytest.approx([0, 57 / 64, 44 / 48, 14 / 64, 8 / 48], abs=5e-7)
    assert report.clipped_sides == {"left": 0, "top": 0, "right": 1, "bottom": 1}
    assert report.dropped_by_reason == {"degenerate": 1, "crowd": 1}
    assert (tmp_path / "out/labels/minival/2.txt").read_text() == "" and report.empty_label_files == 1


def test_coco_wrong_bbox_arity_names_json_and_annotation(tmp_path):
    images, path = make_coco(tmp_path / "src", bbox=(4, 6, 20))
    with pytest.raises(ConversionError, match=r"instances_minival\.json: annotation id 11: bbox has 3 values"):
        convert_coco(images, path, tmp_path / "out")
    assert leftovers(tmp_path) == ["src"]


def test_refuses_to_overwrite_unless_forced(tmp_path):
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)]})
    out = tmp_path / "out"
    convert_voc(src, out)
    with pytest.raises(ConversionError, match="already exists; pass force=true"):
        convert_voc(src, out)
    (out / "marker").write_text("old")
    convert_voc(src, out, force=True)
    assert not (out / "marker").exists() and (out / "conversion_report.json").is_file()
    assert leftovers(tmp_path) == ["out", "voc"]
    other = tmp_path / "not-an-output"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(ConversionError, match="not a previous conversion output"):
        convert_voc(src, other, force=True)
    assert (other / "precious.txt").read_text() == "keep me"


def test_cli_error_is_one_line_and_exit_code(tmp_path):
    """The CLI prints one line naming the file, exits non-zero, leaves no output; the package never imports
    ultralytics."""
    src = make_voc(tmp_path / "voc", {"a": [("cat", 1, 1, 10, 10)]})
    (src / "Annotations/a.xml").write_text("not xml")
    probe = ("import runpy, sys\n"
             "src, out = sys.argv[1:]\n"
             "sys.argv = ['convert.py', 'voc', 'src=' + src, 'out=' + out]\n"
             "try:\n"
             f"    runpy.run_path({str(REPO / 'scripts/convert.py')!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    assert 'ultralytics' not in sys.modules, 'boxloss.convert imported ultralytics'\n"
             "    raise\n")
    assert_refused([sys.executable, "-c", probe], [src, tmp_path / "out"], "a.xml: not well-formed XML",
                   cwd=tmp_path, prog="convert.py", timeout=120)


# -------------------------------------------------------------------- LabelImg-style folders, seeded split
def voc_xml(objects, filename: str | None) -> str:
    """A LabelImg-style XML for a 64x48 image; ``objects``: (name, xmin, ymin, xmax, ymax)."""
    name = f"<filename>{filename}</filename><path>C:\\\\Users\\\\someone\\\\{filename}</path>" if filename else ""
    body = "".join(f"<object><name>{o[0]}</name><pose>Unspecified</pose><truncated>0</truncated><difficult>0"
                   f"</difficult><bndbox><xmin>{o[1]}</xmin><ymin>{o[2]}</ymin><xmax>{o[3]}</xmax><ymax>{o[4]}"
                   "</ymax></bndbox></object>" for o in objects)
    return (f"<annotation><folder>images</folder>{name}<size><width>64</width><height>48</height><depth>3</depth>"
            f"</size><segmented>0</segmented>{body}</annotation>")


def labelimg_objects(k: int) -> list[tuple]:
    """30 images: car in every one, person in every third, trio in 3, bike in 2, rare in 1."""
    objects = [("car", 2, 2, 30, 20)]
    objects += [("person", 10, 10, 20, 40)] if k % 3 == 0 else []
    objects += [("trio", 30, 5, 60, 40)] if k in (1, 12, 25) else []
    objects += [("bike", 5, 5, 25, 25)] if k in (4, 17) else []
    objects += [("rare", 1, 1, 64, 48)] if k == 9 else []
    return objects


def make_labelimg(root: Path, count: int = 30) -> tuple[Path, Path]:
    """``annots/*.xml`` and ``images/*.jpg`` only (no ImageSets), as LabelImg leaves them."""
    (root / "annots").mkdir(parents=True)
    (root / "images").mkdir()
    for k in range(count):
        Image.new("RGB", (64, 48), (4 * k, 30, 30)).save(root / "images" / f"img{k:02d}.jpg")
        (root / "annots" / f"img{k:02d}.xml").write_text(voc_xml(labelimg_objects(k), f"img{k:02d}.jpg"))
    return root / "annots", root / "images"


def snapshot(out: Path) -> dict[str, bytes]:
    """Every label file (relative path -> bytes) and every image name, per split."""
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted((out / "labels").rglob("*.txt"))}
    files.update({p.relative_to(out).as_posix(): b"" for p in sorted((out / "images").rglob("*.jpg"))})
    return files


def split_of(out: Path, split: str) -> list[str]:
    return sorted(p.name for p in (out / "images" / split).iterdir())


def test_labelimg_folders_convert_into_a_split_both_checkers_accept(tmp_path, monkeypatch, capsys):
    """One command: annots/*.xml + images/*.jpg -> train/val/test that check_dataset and ultralytics accept."""
    import ultralytics.data.utils as yolo_data

    annots, images = make_labelimg(tmp_path / "src")
    out = tmp_path / "out"
    assert convert_main(["voc", f"annotations={annots}", f"images={images}", f"out={out}", "val=0.2", "test=0.1",
                         "seed=0"]) == 0
    assert "seeded stratified split (val 0.2, test 0.1, seed 0)" in capsys.readouterr().out
    spec = check_dataset(str(out / "data.yaml"), ("train", "val", "test"))
    assert spec.names == ["bike", "car", "person", "rare", "trio"]
    assert {split: len(split_images(spec, split)) for split in ("train", "val", "test")} == \
        {"train": 21, "val": 6, "test": 3}
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 21, "val": 6, "test": 3}
    assert report["images_per_class_per_split"]["val"]["bike"] == 1  # the two-image class reached val
    assert report["images_per_class_per_split"]["train"]["rare"] == 1  # the one-image class stays in train
    assert sum(report["boxes_per_class_per_split"][s]["car"] for s in ("train", "val", "test")) == 30

    monkeypatch.setattr(yolo_data, "check_font", lambda *args, **kwargs: None)  # it would try to download Arial
    data = yolo_data.check_det_dataset(str(out / "data.yaml"))
    assert data["nc"] == 5 and Path(data["val"]) == out.resolve() / "images/val"
    val_images = sorted(str(p) for p in Path(data["val"]).iterdir())
    for image, label in zip(val_images, yolo_data.img2label_paths(val_images)):
        _, _, _, _, _, missing, found, _, corrupt, msg = yolo_data.verify_image_label(
            (image, label, "", False, data["nc"], 0, 0, False))
        assert (missing, found, corrupt) == (0, 1, 0), msg


def test_same_seed_same_split_another_seed_another(tmp_path):
    annots, images = make_labelimg(tmp_path / "src")
    first = convert_voc_folders(annots, images, tmp_path / "a", val=0.2, test=0.1, seed=0)
    convert_voc_folders(annots, images, tmp_path / "b", val=0.2, test=0.1, seed=0)
    convert_voc_folders(annots, images, tmp_path / "c", val=0.2, test=0.1, seed=1)
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    assert split_of(tmp_path / "a", "val") != split_of(tmp_path / "c", "val")
    assert first.images_per_split == {"train": 21, "val": 6, "test": 3}


def test_stratified_split_is_fixed_by_seed_and_keys_alone():
    """A golden split: sha256 ranks do not depend on the machine, the Python version or the keys' order."""
    classes = {f"img{i:02d}.jpg": ["common"] + (["rare"] if i in (3, 7) else []) for i in range(12)}
    result = stratified_split(classes, 0.25, 0.1, seed=0)
    assert result.splits == {
        "train": ["img00.jpg", "img01.jpg", "img03.jpg", "img04.jpg", "img06.jpg", "img09.jpg", "img10.jpg",
                  "img11.jpg"],
        "val": ["img02.jpg", "img07.jpg", "img08.jpg"], "test": ["img05.jpg"]}
    assert stratified_split(dict(reversed(list(classes.items()))), 0.25, 0.1, seed=0).splits == result.splits
    assert result.warnings == ["test has no image of rare (2 images): too few images, or test was full"]


def test_stratified_split_covers_every_class_where_possible_and_keeps_the_fractions():
    """A class with 2+ images reaches val, 3+ also test; every class keeps a train image; sizes round(f * n)."""
    holders = {"single": 1, "pair": 2, "three": 3, "five": 5, "twenty": 20}
    classes = {f"{i:03d}": set() for i in range(97)}
    start = 0
    for name, count in holders.items():  # contiguous blocks, so the rare classes share no image
        for i in range(start, start + count):
            classes[f"{i:03d}"].add(name)
        start += count
    for seed in range(25):
        splits = stratified_split(classes, 0.2, 0.1, seed).splits
        assert [len(splits[s]) for s in ("train", "val", "test")] == [68, 19, 10]  # 19.4 -> 19, 9.7 -> 10
        assert sorted(key for keys in splits.values() for key in keys) == sorted(classes)
        present = {s: set().union(*(classes[k] for k in keys)) for s, keys in splits.items()}
        assert present["train"] == set(holders)
        assert present["val"] == set(holders) - {"single"}
        assert present["test"] == set(holders) - {"single", "pair"}


def test_report_names_images_without_xml_and_xmls_without_image(tmp_path):
    annots, images = make_labelimg(tmp_path / "src")
    for k in range(5):
        Image.new("RGB", (64, 48)).save(images / f"unlabelled{k}.jpg")
    for name in ("orphan_a", "orphan_b"):
        (annots / f"{name}.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], f"{name}.jpg"))
    report = convert_voc_folders(annots, images, tmp_path / "out", val=0.2)
    assert report.images_without_annotation == [str(images / f"unlabelled{k}.jpg") for k in range(5)]
    assert report.annotations_without_image == [str(annots / "orphan_a.xml"), str(annots / "orphan_b.xml")]
    saved = json.loads((tmp_path / "out/conversion_report.json").read_text())
    assert len(saved["images_without_annotation"]) == 5 and len(saved["annotations_without_image"]) == 2
    summary = report.summary()
    assert "images without an annotation (5)" in summary and "unlabelled2.jpg, ... 2 more" in summary
    assert "unlabelled4.jpg" not in summary and "orphan_a.xml" in summary and "orphan_b.xml" in summary
    assert report.images == 30 and not (tmp_path / "out/images/train/unlabelled0.jpg").exists()


def test_matching_by_filename_then_stem_same_folder_first(tmp_path):
    annots, images = tmp_path / "annots", tmp_path / "images"
    for folder in ("sub", "other"):
        (annots / folder).mkdir(parents=True)
        (images / folder).mkdir(parents=True)
    for path in ("photo_1.jpg", "b.png", "sub/c.jpg", "other/c.jpg", "negative.jpg"):
        Image.new("RGB", (64, 48)).save(images / path)
    box = [("car", 1, 1, 9, 9)]
    (annots / "a.xml").write_text(voc_xml(box, "photo_1.jpg"))  # <filename>, not the stem
    (annots / "b.xml").write_text(voc_xml(box, None))  # no <filename>: the stem, any image extension
    (annots / "sub/c.xml").write_text(voc_xml(box, "c.jpg"))  # two c.jpg: the one in the mirrored folder
    (annots / "negative.xml").write_text(voc_xml([], "renamed.jpg"))  # no such file: falls back to the stem
    pairs = {item.file: item.image.relative_to(images).as_posix() for item in pair_annotations(annots, images).items}
    assert pairs == {"a.xml": "photo_1.jpg", "b.xml": "b.png", "sub/c.xml": "sub/c.jpg",
                     "negative.xml": "negative.jpg"}
    report = convert_voc_folders(annots, images, tmp_path / "out", split="all")
    assert (tmp_path / "out/images/all/sub/c.jpg").is_symlink()
    assert (tmp_path / "out/labels/all/sub/c.txt").read_text().startswith("0 ")
    assert (tmp_path / "out/labels/all/negative.txt").read_text() == "" and report.empty_label_files == 1
    assert report.images_without_annotation == [str(images / "other/c.jpg")]


def test_xmls_beside_images_and_output_inside_them(tmp_path, capsys):
    """images= defaults to annotations=; a previous output inside that folder is not searched again."""
    folder = tmp_path / "labelled"
    folder.mkdir()
    for k in range(6):
        Image.new("RGB", (64, 48)).save(folder / f"{k}.jpg")
        (folder / f"{k}.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], f"{k}.jpg"))
    args = ["voc", f"annotations={folder}", f"out={folder / 'yolo'}", "split=train"]
    assert convert_main(args) == 0
    assert convert_main([*args, "force=true"]) == 0, capsys.readouterr().err
    assert "unpaired" not in capsys.readouterr().out
    assert split_of(folder / "yolo", "train") == [f"{k}.jpg" for k in range(6)]


def test_ambiguous_match_names_both_files_and_writes_nothing(tmp_path):
    annots, images = tmp_path / "src/annots", tmp_path / "src/images"
    annots.mkdir(parents=True)
    for path in ("x/d.jpg", "y/d.jpg", "e.jpg", "e.png"):
        (images / path).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48)).save(images / path)
    (annots / "d.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], "d.jpg"))
    out = tmp_path / "deep/out"
    with pytest.raises(ConversionError, match=r"d\.xml: <filename> 'd\.jpg' matches several images, .*x/d\.jpg and "
                                              r".*y/d\.jpg"):
        convert_voc_folders(annots, images, out)
    (annots / "d.xml").unlink()
    (annots / "e.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], None))
    with pytest.raises(ConversionError, match=r"e\.xml: the stem 'e' matches several images, .*e\.jpg and .*e\.png"):
        convert_voc_folders(annots, images, out)
    (annots / "e.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], "e.jpg"))
    (annots / "e2.xml").write_text(voc_xml([("car", 1, 1, 9, 9)], "e.jpg"))
    with pytest.raises(ConversionError, match=r"e\.jpg: matched by both .*e\.xml and .*e2\.xml"):
        convert_voc_folders(annots, images, out)
    assert leftovers(tmp_path) == ["src"]


def test_voc_src_without_imagesets_gets_a_default_seeded_split(tmp_path):
    """No ImageSets and no split option: val 0.2, seed 0 and a warning saying so; val= re-splits ImageSets."""
    objects = {f"i{k:02d}": [(name, 1, 1, 9, 9) for name, _, _, _, _ in labelimg_objects(k)] for k in range(10)}
    src = make_voc(tmp_path / "voc", objects)
    report = convert_voc(src, tmp_path / "official")
    assert report.images_per_split == {"train": 10} and report.split_rule == "ImageSets/Main (official)"
    resplit = convert_voc(src, tmp_path / "resplit", val=0.3, seed=4)
    assert resplit.images_per_split == {"train": 7, "val": 3}
    assert any("official split ignored" in w for w in resplit.warnings)
    for listing in (src / "ImageSets/Main").iterdir():
        listing.unlink()
    default = convert_voc(src, tmp_path / "default")
    assert default.images_per_split == {"train": 8, "val": 2}
    assert any("made a seeded split (val 0.2, seed 0)" in w for w in default.warnings)
    check_dataset(str(tmp_path / "default/data.yaml"), ("train", "val"))


@needs_datasets
def test_bccd_resplit_is_stratified(tmp_path):
    report = convert_voc(BCCD, tmp_path / "bccd", val=0.2, test=0.1, seed=0)
    assert report.images_per_split == {"train": 255, "val": 73, "test": 36}
    assert all(count > 0 for split in report.images_per_class_per_split.values() for count in split.values())
    assert report.boxes_written == 4886


# ---------------------------------------------------------------------------------- convert.py split (YOLO)
def make_yolo_train_only(root: Path) -> Path:
    """A YOLO dataset with only a train split: 12 images, classes a (all), b (4 images), c (1); one without label."""
    (root / "images/train").mkdir(parents=True)
    (root / "labels/train").mkdir(parents=True)
    for k in range(12):
        Image.new("RGB", (32, 32), (k * 9, 0, 0)).save(root / f"images/train/{k:02d}.jpg")
        if k == 11:
            continue  # no label file: an image without objects
        rows = ["0 0.5 0.5 0.2 0.2"] + (["1 0.3 0.3 0.1 0.1"] if k % 3 == 0 else []) + (["2 0.7 0.7 0.2 0.2"]
                                                                                        if k == 5 else [])
        (root / f"labels/train/{k:02d}.txt").write_text("".join(f"{row}\n" for row in rows))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nnames: [a, b, c]\n")
    return root / "data.yaml"


def test_split_command_splits_a_train_only_yolo_dataset(tmp_path, capsys):
    data = make_yolo_train_only(tmp_path / "yolo")
    with pytest.raises(ConfigError):
        check_dataset(str(data), ("train", "val"))
    out = tmp_path / "split"
    assert convert_main(["split", f"data={data}", "val=0.25", "seed=0", f"out={out}"]) == 0
    assert "yolo split" in capsys.readouterr().out
    spec = check_dataset(str(out / "data.yaml"), ("train", "val"))
    assert spec.names == ["a", "b", "c"]
    train, val = split_of(out, "train"), split_of(out, "val")
    assert len(val) == 3 and len(train) == 9 and not set(train) & set(val)
    assert (out / "images/val" / val[0]).is_symlink()
    for split, names in (("train", train), ("val", val)):
        for name in names:
            source = tmp_path / "yolo/labels/train" / name.replace(".jpg", ".txt")
            copied = out / "labels" / split / name.replace(".jpg", ".txt")
            assert copied.read_text() == (source.read_text() if source.exists() else "")
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["images_per_class_per_split"]["val"]["b"] >= 1 and report["images_per_class_per_split"][
        "train"]["c"] == 1
    again = tmp_path / "again"
    assert convert_main(["split", f"data={data}", "val=0.25", "seed=0", f"out={again}", "copy=true"]) == 0
    assert snapshot(again) == snapshot(out) and not (again / "images/val" / val[0]).is_symlink()


@pytest.mark.parametrize("args, message", [
    (["voc", "val=1.2"], "val=1.2: must be a fraction between 0 and 1"),
    (["voc", "val=0.6", "test=0.4"], "val=0.6 test=0.4: the fractions sum to 1"),
    (["voc", "split=train", "val=0.2"], "split=train puts every image into one split"),
    (["voc", "test=-0.1"], "test=-0.1: must be a fraction"),
    (["voc", "val=nan"], "val=nan is not a finite number"),
    (["split", "seed=1"], "val= is required"),
    (["split", "val=0.2", "from=val"], "has no 'val' entry"),
    (["split", "val=0.2", "from=dev"], "from=dev: must be one of train, val, test"),
    (["split", "val=0.99"], "val=0.99: 12 images are too few to split"),
])
def test_bad_split_options_one_line_exit_2_nothing_written(tmp_path, args, message):
    annots, images = make_labelimg(tmp_path / "src", count=4)
    data = make_yolo_train_only(tmp_path / "src/yolo")
    source = [f"annotations={annots}", f"images={images}"] if args[0] == "voc" else [f"data={data}"]
    assert_refused("boxloss.cli.convert", [args[0], *source, *args[1:], f"out={tmp_path / 'deep/out'}"], message,
                   cwd=tmp_path)  # no output, no temporary folder, no parent created for them


# ------------------------------------------------------------------------- the --flags of earlier releases: refused
@pytest.mark.parametrize("argv, message", [
    (["voc", "--src", "x", "--out", "y"], "--src is the old spelling; use src=..."),
    (["voc", "src=x", "--out", "y"], "--out is the old spelling; use out=..."),
    (["voc", "annotations=a", "--split-list", "train=t.txt", "out=y"],
     "--split-list is the old spelling; use train_list=FILE (or val_list=, test_list=)"),
    (["voc", "annotations=a", "--split-list=train=t.txt", "out=y"],
     "--split-list is the old spelling; use train_list=FILE (or val_list=, test_list=)"),
    (["split", "data=d.yaml", "--from", "train", "val=0.2", "out=y"], "--from is the old spelling; use from=..."),
    (["coco", "--task=segment"], "--task is the old spelling; use task=..."),
    (["--out", "y", "voc"], "--out is the old spelling; use out=..."),
    (["voc", "src=x", "--bogus", "1"], "--bogus is no argument of this command: arguments are key=value"),
    (["voc", "src=x", "--difficul", "drop"],
     "--difficul is no argument of this command: arguments are key=value (did you mean difficult?)"),
])
def test_the_old_flags_are_refused_naming_the_key(argv, message, tmp_path):
    """Whatever the format and wherever the flag, one line naming its key=value spelling; nothing runs."""
    assert_refused("boxloss.cli.convert", argv, message, cwd=tmp_path, exact=True, quiet=True)
