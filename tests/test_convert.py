"""Converters to YOLO format (boxloss.convert): conventions, the report, failure without leftovers.

Real data: BCCD (VOC XML, 1-based inclusive corners, 205/87/72 split, two zero-area point boxes) and coco128
(COCO JSON, ids 1..90 with gaps, 10 crowd regions) from ../shared/datasets, relative to the repository root;
those tests skip when that folder is absent. The rest use tiny datasets built in tmp_path.
"""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from PIL import Image

from boxloss.convert import ConversionError, convert_coco, convert_voc
from boxloss.data.yolo_format import xyxy_to_normalised as xyxy_to_yolo
from boxloss.convert.voc import voc_corners_to_xyxy

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
    """--classes fixes the order; a name outside it is an error; no <size> -> the image's size is used."""
    src = make_voc(tmp_path / "voc", {"a": [("zebra", 1, 1, 32, 24), ("ant", 1, 1, 64, 48)]}, size_in_xml=False)
    report = convert_voc(src, tmp_path / "out", classes=["zebra", "ant"])
    assert report.class_names == ["zebra", "ant"]
    assert read_labels(tmp_path / "out/labels/train/a.txt") == [[0, 0.25, 0.25, 0.5, 0.5], [1, 0.5, 0.5, 1, 1]]
    with pytest.raises(ConversionError, match=r"a\.xml: object 1: class 'ant' is not in the given classes"):
        convert_voc(src, tmp_path / "out2", classes=["zebra"])
    assert not (tmp_path / "out2").exists()


# ---------------------------------------------------------------------------------------------------- BCCD
@pytest.fixture(scope="module")
def bccd(tmp_path_factory):
    if not DATASETS.is_dir():
        pytest.skip(f"shared datasets folder {DATASETS} not present on this machine")
    out = tmp_path_factory.mktemp("bccd") / "bccd-yolo"
    return out, convert_voc(BCCD, out)


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


@needs_datasets
def test_coco128_images_without_annotations_get_empty_labels(coco128):
    out, report = coco128
    for name in ("000000000250", "000000000508"):
        assert (out / f"labels/train2017/{name}.txt").read_text() == ""
        assert (out / f"images/train2017/{name}.jpg").exists()
    assert report.empty_label_files == 2


# ------------------------------------------------------------------------------------------ ultralytics reads it
@needs_datasets
@pytest.mark.parametrize("dataset", ["bccd", "coco128"])
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
        _, lb, _, _, _, missing, nf, _, corrupt, msg = result
        assert (missing, nf, corrupt) == (0, 1, 0), msg
        assert "duplicate" not in msg, msg
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
    with pytest.raises(ConversionError, match=r"a\.xml: object 0: <bndbox><ymin> is None"):
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
    with pytest.raises(ConversionError, match="already exists; pass --force"):
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
             "sys.argv = ['convert.py', 'voc', '--src', src, '--out', out]\n"
             "try:\n"
             f"    runpy.run_path({str(REPO / 'scripts/convert.py')!r}, run_name='__main__')\n"
             "except SystemExit:\n"
             "    assert 'ultralytics' not in sys.modules, 'boxloss.convert imported ultralytics'\n"
             "    raise\n")
    result = subprocess.run([sys.executable, "-c", probe, str(src), str(tmp_path / "out")], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().count("\n") == 0 and "a.xml: not well-formed XML" in result.stderr
    assert result.stderr.startswith("convert.py: error: ")
    assert not (tmp_path / "out").exists()
