"""Oriented-box converters: ``convert.py dota`` (DOTA's text labels, tiling by ultralytics' own splitter) and
``convert.py coco task=obb`` (each polygon's minimum-area rectangle), and the one split writer they share.

Real data: ../shared/datasets/dota-example (7 DOTA label files, 2 of their images) and coco128; those tests skip
where that folder is absent. Hostile input: tiny DOTA folders built in tmp_path, through the real command.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from helpers import REPO, SHARED_DATASETS, assert_refused
from PIL import Image

from boxloss.convert import ConversionError, ConversionReport, OutputImage, convert_coco, convert_dota
from boxloss.convert import write_yolo_dataset
from boxloss.convert.dota import DOTA_V1, parse_dota_txt
from boxloss.convert.obb import clockwise_corners, minimum_area_rectangle
from boxloss.data.yolo_format import check_dataset, read_obb_labels

DOTA_EXAMPLE = SHARED_DATASETS / "dota-example"
COCO128 = SHARED_DATASETS / "coco128"
DOTA8 = SHARED_DATASETS / "dota8" / "dota8.yaml"
needs_shared = pytest.mark.skipif(not SHARED_DATASETS.is_dir(),
                                  reason=f"shared datasets folder {SHARED_DATASETS} not present on this machine")


def rectangles(corners: np.ndarray) -> np.ndarray:
    """(N, 5) xywhr by ultralytics' own xyxyxyxy2xywhr of (N, 8) corners, the angle taken mod π."""
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    boxes = np.asarray(xyxyxyxy2xywhr(np.asarray(corners, dtype=np.float64).reshape(-1, 8)))
    boxes[:, 4] %= np.pi
    return boxes


def label_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(classes (N,), corners (N, 8)) of a YOLO-OBB label file."""
    values = np.array([line.split() for line in path.read_text().splitlines() if line.strip()], np.float64)
    values = values.reshape(-1, 9)
    return values[:, 0].astype(int), values[:, 1:]


# -------------------------------------------------------------------------------------------- DOTA, real data
@pytest.fixture(scope="module")
def dota_example(tmp_path_factory):
    if not DOTA_EXAMPLE.is_dir():
        pytest.skip(f"shared dataset {DOTA_EXAMPLE} not present on this machine")
    out = tmp_path_factory.mktemp("dota") / "dota-example-yolo"
    return out, convert_dota(out, src=DOTA_EXAMPLE)


def test_dota_example_skips_the_label_files_without_an_image_and_counts_them(dota_example):
    out, report = dota_example
    assert sorted(Path(p).name for p in report.annotations_without_image) == [
        "P0770.txt", "P1088.txt", "P1234.txt", "P2598.txt", "P2709.txt"]  # 5 of the 7 have no image here
    assert report.images == 2 and report.images_per_split == {"train": 2}
    assert report.boxes_read == report.boxes_written == 536 + 64 and report.dropped == []
    assert report.kept_flagged == {"difficult": 6}  # P0706's six difficult ships, kept by default
    assert "unpaired annotations without an image (5)" in report.summary()
    names = yaml.safe_load((out / "data.yaml").read_text())["names"]
    assert list(names.values()) == [name.replace("-", " ") for name in DOTA_V1]
    if DOTA8.is_file():  # the indices of ultralytics' own DOTA labels
        assert names == yaml.safe_load(DOTA8.read_text())["names"]
    assert check_dataset(out / "data.yaml", task="obb").names == list(names.values())


def test_dota_example_lines_by_hand(dota_example):
    """P0706.txt line 3, ``1054 1028 1063 1011 1111 1040 1112 1062 ship 1`` in a 1111 x 1182 image: clockwise on
    the screen already (shoelace sum > 0 with y down), so the corners keep their order, normalised; ship is 1."""
    out, _ = dota_example
    first = (out / "labels" / "train" / "P0706.txt").read_text().splitlines()[0]
    corners = [(1054, 1028), (1063, 1011), (1111, 1040), (1112, 1062)]
    assert sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(corners, corners[1:] + corners[:1])) > 0
    assert first == "1 " + " ".join(f"{x / 1111:.6f} {y / 1182:.6f}" for x, y in corners)
    assert os.path.realpath(out / "images" / "train" / "P0706.png") == str((DOTA_EXAMPLE / "images/P0706.png")
                                                                           .resolve())


def test_dota_example_is_what_ultralytics_own_converter_makes(dota_example, tmp_path):
    """ultralytics' convert_dota_to_yolo_obb on the same files (its layout: images/train, labels/train_original)
    writes, line for line, the same class and the same four corners (in pixels, within the rounding of the two
    formats; the order may differ)."""
    from ultralytics.data.converter import convert_dota_to_yolo_obb

    out, _ = dota_example
    for folder in ("images/train", "images/val", "labels/train_original", "labels/val_original"):
        (tmp_path / folder).mkdir(parents=True)
    for stem in ("P0706", "P1888"):
        os.symlink(DOTA_EXAMPLE / "images" / f"{stem}.png", tmp_path / "images/train" / f"{stem}.png")
        os.symlink(DOTA_EXAMPLE / "labelTxt" / f"{stem}.txt", tmp_path / "labels/train_original" / f"{stem}.txt")
    convert_dota_to_yolo_obb(str(tmp_path))
    for stem in ("P0706", "P1888"):
        their_classes, theirs = label_rows(tmp_path / "labels" / "train" / f"{stem}.txt")
        our_classes, ours = label_rows(out / "labels" / "train" / f"{stem}.txt")
        assert (our_classes == their_classes).all() and len(ours) == len(theirs)
        size = Image.open(DOTA_EXAMPLE / "images" / f"{stem}.png").size
        as_points = [np.sort((corners.reshape(-1, 4, 2) * size).round(2).view("f8,f8"), axis=1).view("f8")
                     for corners in (ours, theirs)]
        np.testing.assert_allclose(as_points[0], as_points[1], atol=0.02)


def test_difficult_drop_leaves_them_out_and_counts_them(tmp_path):
    if not DOTA_EXAMPLE.is_dir():
        pytest.skip(f"shared dataset {DOTA_EXAMPLE} not present on this machine")
    report = convert_dota(tmp_path / "out", src=DOTA_EXAMPLE, difficult="drop")
    assert report.boxes_written == 594 and report.dropped_by_reason == {"difficult": 6}
    assert len(read_obb_labels(tmp_path / "out" / "labels" / "train" / "P0706.txt")) == 530


def test_dota_tiles_are_ultralytics_own_split(dota_example, tmp_path):
    """tile=256 gap=64: the same tiles, and in each the same objects, as ultralytics' split_images_and_labels run
    on the untiled conversion; every object in a tile or dropped as in_no_tile; each tile a readable JPEG."""
    from ultralytics.data.split_dota import split_images_and_labels

    untiled, _ = dota_example
    report = convert_dota(tmp_path / "tiled", src=DOTA_EXAMPLE, tile=256, gap=64)
    split_images_and_labels(str(untiled), str(tmp_path / "theirs"), "train", crop_sizes=[256], gaps=[64])
    ours = sorted(p.name for p in (tmp_path / "tiled/images/train").iterdir())
    assert ours == sorted(p.name for p in (tmp_path / "theirs/images/train").iterdir()) and len(ours) == 48
    for name in ours:
        label = Path(name).with_suffix(".txt").name
        their_file = tmp_path / "theirs" / "labels" / "train" / label
        our_classes, our_corners = label_rows(tmp_path / "tiled" / "labels" / "train" / label)
        their_classes, their_corners = label_rows(their_file) if their_file.is_file() else (np.zeros(0), ())
        assert (our_classes == their_classes).all(), name
        if len(our_classes):
            np.testing.assert_allclose(our_corners, their_corners, atol=1e-5)
        image = cv2.imread(str(tmp_path / "tiled" / "images" / "train" / name))
        assert image.shape[:2] == cv2.imread(str(tmp_path / "theirs" / "images" / "train" / name)).shape[:2]
    assert report.tiling["tiles"] == 48 and report.tiling["source_images"] == 2
    assert report.boxes_read == report.tiling["objects"] + len(report.dropped)
    assert set(report.dropped_by_reason) <= {"in_no_tile"} and report.boxes_written > report.tiling["objects"]
    assert check_dataset(tmp_path / "tiled" / "data.yaml", task="obb")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # the staging folder is gone


# ------------------------------------------------------------------------------------------ COCO, task=obb
@pytest.fixture(scope="module")
def coco128_obb(tmp_path_factory):
    if not COCO128.is_dir():
        pytest.skip(f"shared dataset {COCO128} not present on this machine")
    out = tmp_path_factory.mktemp("coco_obb") / "coco128-obb"
    return out, convert_coco(COCO128 / "train2017", COCO128 / "annotations" / "instances_train2017.json", out,
                             task="obb")


def test_coco128_obb_counts(coco128_obb):
    out, report = coco128_obb
    assert report.task == "obb" and report.boxes_read == 939 and report.boxes_written == 929
    assert report.dropped_by_reason == {"crowd": 10}  # every non-crowd object has a polygon
    assert report.segments["fitted_in_image"] == 28 and report.segments["joined"] == 82
    assert check_dataset(out / "data.yaml", task="obb")
    assert "one oriented box (four corners) per object" in report.summary()


def test_coco128_rectangles_hold_their_polygons_at_least_area(coco128_obb):
    """Every written rectangle holds its object's polygon (clipped to the image); where ultralytics' minimum-area
    rectangle fits the label check it is that one (OpenCV's area), else a larger one whose extent is in the image."""
    import json

    from boxloss.convert.polygons import segment_polygon

    out, _ = coco128_obb
    data = json.loads((COCO128 / "annotations" / "instances_train2017.json").read_text())
    kept = {}
    for ann in data["annotations"]:
        if not ann["iscrowd"]:
            kept.setdefault(ann["image_id"], []).append(ann)
    fitted = 0
    for image in data["images"]:
        width, height = image["width"], image["height"]
        _, corners = label_rows(out / "labels" / "train2017" / Path(image["file_name"]).with_suffix(".txt").name)
        corners = corners.reshape(-1, 4, 2) * (width, height)
        assert len(corners) == len(kept.get(image["id"], []))
        for rectangle, ann in zip(corners, kept.get(image["id"], [])):
            polygon = segment_polygon(ann["segmentation"], height, width)[0].clip(0, (width, height))
            contour = rectangle.astype(np.float32).reshape(-1, 1, 2)
            inside = [cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in polygon]
            assert min(inside) >= -0.01, (image["id"], min(inside))  # px: 6 decimals and float32 rounding
            least = cv2.minAreaRect(polygon.astype(np.float32))
            area, least_area = cv2.contourArea(contour), least[1][0] * least[1][1]
            low, high = cv2.boxPoints(least).min(0) / (width, height), cv2.boxPoints(least).max(0) / (width, height)
            extent = np.concatenate([(low + high) / 2, high - low])  # the label check's cx, cy, w, h
            if ((extent < -1e-6) | (extent > 1 + 1e-6)).any():  # the least rectangle would be refused
                fitted += 1
                assert (np.ptp(rectangle, axis=0) <= (width + 1e-3, height + 1e-3)).all()
                assert area >= least_area * (1 - 1e-3)
            else:
                assert area == pytest.approx(least_area, rel=1e-3, abs=0.5)
    assert fitted == 28


def test_coco128_obb_loads_in_ultralytics_without_a_corrupt_image(coco128_obb):
    """ultralytics' own OBB dataset reads all 128 images and all 929 objects (its label check drops an image whose
    oriented box's extent is larger than the image: none here)."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    out, _ = coco128_obb
    data = check_det_dataset(str(out / "data.yaml"))
    dataset = build_yolo_dataset(get_cfg(overrides={"task": "obb", "imgsz": 64}), data["train"], 2, data,
                                 mode="val", stride=32)
    assert len(dataset.labels) == 128 and sum(len(label["cls"]) for label in dataset.labels) == 929


# ----------------------------------------------------------------------------------------- geometry helpers
def test_clockwise_corners_keep_the_first_and_walk_clockwise_on_screen():
    square = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)  # clockwise on the screen (y down)
    np.testing.assert_array_equal(clockwise_corners(square), square)
    np.testing.assert_array_equal(clockwise_corners(square[[0, 3, 2, 1]]), square)  # counter-clockwise: reversed
    np.testing.assert_array_equal(clockwise_corners(square[[2, 0, 1, 3]]), square[[2, 3, 0, 1]])  # crossed order
    np.testing.assert_array_equal(clockwise_corners(square[[1, 2, 3, 0]]), square[[1, 2, 3, 0]])


def test_minimum_area_rectangle_by_hand():
    """A turned 4 x 2 rectangle's own corners give itself back; a thick diagonal band in a 10 x 10 image, whose
    minimum rectangle (along the diagonal) reaches past the image, gets the axis-aligned 10 x 10 instead."""
    theta = 0.3
    u, v = np.array([np.cos(theta), np.sin(theta)]) * 2, np.array([-np.sin(theta), np.cos(theta)])
    corners = np.array([[5, 5] + u + v, [5, 5] + u - v, [5, 5] - u - v, [5, 5] - u + v])
    rectangle, fitted = minimum_area_rectangle(corners)
    assert not fitted and cv2.contourArea(rectangle.astype(np.float32)) == pytest.approx(8, rel=1e-5)
    np.testing.assert_allclose(rectangles(rectangle.ravel())[0], [5, 5, 4, 2, theta], atol=1e-5)
    band = np.array([[0, 0], [3, 0], [10, 7], [10, 10], [7, 10], [0, 3]], float)
    rectangle, fitted = minimum_area_rectangle(band, (10, 10))
    assert fitted and np.ptp(rectangle, axis=0) == pytest.approx([10, 10], abs=1e-4)
    assert minimum_area_rectangle(band)[1] is False and np.ptp(minimum_area_rectangle(band)[0], axis=0).max() > 10


# ------------------------------------------------------------------------------------------------- writer
def test_the_writer_leaves_nothing_when_the_converter_fails_midway(tmp_path):
    """The one split writer consumes the converter's images lazily; an error after the first image leaves neither
    the output nor a temporary folder."""
    source = tmp_path / "src" / "a.png"
    source.parent.mkdir()
    Image.new("RGB", (8, 8)).save(source)

    def images():
        yield OutputImage("a.png", ["0 0.5 0.5 0.2 0.2"], ["cat"], source=source)
        raise ConversionError("b.txt:3: bad line")

    with pytest.raises(ConversionError, match="b.txt:3"):
        write_yolo_dataset(tmp_path / "deep" / "out", {"train": images()},
                           ConversionReport("t", "src", "out", ["cat"]), header="test")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]


def test_every_converter_writes_through_the_one_writer():
    """Issue 28: only boxloss/convert/writer.py lays out a YOLO split (the COCO layout merges converted splits)."""
    convert = REPO / "boxloss" / "convert"
    writers = sorted(path.name for path in convert.glob("*.py") if "atomic_output(" in path.read_text())
    assert writers == ["coco_layout.py", "report.py", "writer.py"]  # report.py defines it


# ------------------------------------------------------------------------------------------------ hostile
def dota_folder(root: Path, *lines: str, image: bool = True) -> Path:
    """A DOTA folder with images/a.png (40 x 30) and labelTxt/a.txt holding ``lines`` (CRLF, with the headers)."""
    (root / "images").mkdir(parents=True)
    (root / "labelTxt").mkdir()
    if image:
        Image.new("RGB", (40, 30)).save(root / "images" / "a.png")
    (root / "labelTxt" / "a.txt").write_bytes(("imagesource:GoogleEarth\r\ngsd:0.13\r\n" + "".join(
        f"{line}\r\n" for line in lines)).encode())
    return root


GOOD = "2 2 20 2 20 12 2 12 ship 0"


def test_a_tiny_dota_folder_converts(tmp_path):
    src = dota_folder(tmp_path / "dota", GOOD, "20 20 30 20 30 25 20 25 plane", "1 1 1 1 5 5 5 5 ship 1")
    report = convert_dota(tmp_path / "out", src=src)
    assert report.boxes_written == 2 and report.dropped_by_reason == {"degenerate": 1}
    assert parse_dota_txt(src / "labelTxt" / "a.txt").header == {"imagesource": "GoogleEarth", "gsd": "0.13"}
    classes, _ = label_rows(tmp_path / "out" / "labels" / "train" / "a.txt")
    assert classes.tolist() == [1, 0]  # ship, plane in DOTA's order


def bad_line(*lines):
    return lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD, *lines)}"]


def symlinked_image(root):
    src = dota_folder(root / "dota", GOOD, image=False)
    secret = root / "secret.png"
    Image.new("RGB", (40, 30)).save(secret)
    os.symlink(secret, src / "images" / "a.png")
    return ["dota", f"src={src}", "copy=true"]


def symlinked_labels(root):
    src = dota_folder(root / "dota", GOOD)
    (root / "outside.txt").write_text(GOOD)
    os.symlink(root / "outside.txt", src / "labelTxt" / "b.txt")
    Image.new("RGB", (40, 30)).save(src / "images" / "b.png")
    return ["dota", f"src={src}"]


def not_utf8(root):
    src = dota_folder(root / "dota", GOOD)
    (src / "labelTxt" / "a.txt").write_bytes(b"2 2 20 2 20 12 2 12 sh\xe9p 0\r\n")
    return ["dota", f"src={src}"]


HOSTILE = [
    (bad_line("674 375 683 375 684 394 ship 0"), "a.txt:4: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult' (8 "
                                                 "corner coordinates, a class and a 0/1 flag), got 6 numbers in 8"),
    (bad_line("2 2 20 2 20 12 2 12 2 ship 0"), "a.txt:4: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult'"),
    (bad_line("2 2 20 2 20 12 2 ship 0"), "a.txt:4: corner coordinate y4 is 'ship', not a finite number"),
    (bad_line("2 2 abc 2 20 12 2 12 ship 0"), "a.txt:4: corner coordinate x2 is 'abc', not a finite number"),
    (bad_line("2 2 20 2 inf 12 2 12 ship 0"), "a.txt:4: corner coordinate x3 is 'inf', not a finite number"),
    (bad_line("2 2 20 2 20 12 2 12 ship 2"), "a.txt:4: the difficult flag is '2', expected 0 or 1"),
    (bad_line("ship 0"), "a.txt:4: expected 'x1 y1 x2 y2 x3 y3 x4 y4 class difficult' (8 corner coordinates, a "
                         "class and a 0/1 flag), got 0 numbers in 2 fields"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD, image=False)}"],
     "labelTxt: none of its 1 label files has an image in"),
    (symlinked_image, "a.txt: image 'a.png': resolves outside the images folder"),
    (symlinked_labels, "label file b.txt: {root}/dota/labelTxt/b.txt resolves outside {root}/dota/labelTxt"),
    (not_utf8, "a.txt: not UTF-8 text (byte 0xe9 at offset 22)"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD)}", "split=../x"], "split '../x': must be a "
                                                                                     "folder name"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD)}", "tile=128", "gap=200"],
     "gap=200 must be smaller than tile=128"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD)}", "tile=-1"], "tile=-1 is out of range"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD)}", f"images={root}"], "src= is a DOTA folder"),
    (lambda root: ["dota", f"src={dota_folder(root / 'dota', GOOD)}", "classes=plane"],
     "a.txt:3: class 'ship' is not in the given classes (plane)"),
    (lambda root: ["dota", f"src={root}"], "no labelTxt/ folder in it"),
]


@pytest.mark.parametrize("build, message", HOSTILE, ids=[f"case{k}" for k in range(len(HOSTILE))])
def test_bad_dota_input_is_one_line_and_nothing_is_written(tmp_path, build, message):
    root = tmp_path / "data"
    root.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    args = [*build(root), "out=deep/out"]
    assert_refused("boxloss.cli.convert", args, message.format(root=root), cwd=work, watched=(tmp_path,))


def test_the_dota_command_of_the_script_refuses_too(tmp_path):
    """scripts/convert.py itself (run as __main__; its real command line: tests/test_cli.py), offline: one line, exit
    2, nothing written."""
    src = dota_folder(tmp_path / "dota", "2 2 20 2 20 12 ship 0")
    assert_refused("scripts/convert.py", ["dota", f"src={src}", "out=out"], "a.txt:3: expected 'x1 y1 x2 y2",
                   cwd=tmp_path, watched=(tmp_path,), timeout=120)


def test_a_dota_root_of_splits_and_two_named_folders(tmp_path):
    """src= a DOTA root (train/, val/): each split under its own name; images= labels= one split named by split=."""
    for split in ("train", "val"):
        dota_folder(tmp_path / "root" / split, GOOD)
    convert_dota(tmp_path / "out", src=tmp_path / "root")
    content = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert (content["train"], content["val"]) == ("images/train", "images/val")
    with pytest.raises(ConversionError, match="split=val names the one split of a DOTA folder"):
        convert_dota(tmp_path / "other", src=tmp_path / "root", split="val")
    one = tmp_path / "root" / "val"
    report = convert_dota(tmp_path / "named", images=one / "images", labels=one / "labelTxt", split="val")
    assert report.images_per_split == {"val": 1}
    content = yaml.safe_load((tmp_path / "named" / "data.yaml").read_text())
    assert (content["train"], content["val"]) == ("images/val", "images/val")


def test_an_oriented_dataset_with_corners_past_the_image_re_splits(tmp_path):
    """convert.py split reads an OBB dataset's classes as the dataset check reads them: a corner past the image (dota8
    has some at 1.04) is no error where the rectangle's centre and size are inside (it was a ValueError traceback)."""
    from boxloss.convert import split_dataset

    line = "1 0.9 0.1 1.04 0.3 0.8 0.5 0.66 0.3"  # a turned rectangle whose right corner leaves the image
    root = tmp_path / "obb"
    (root / "images" / "train").mkdir(parents=True)
    (root / "labels" / "train").mkdir(parents=True)
    for i in range(8):
        Image.new("RGB", (40, 40)).save(root / "images" / "train" / f"{i}.png")
        (root / "labels" / "train" / f"{i}.txt").write_text(f"{line}\n0 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4\n")
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/train\nnames: [a, b]\n")
    check_dataset(root / "data.yaml", task="obb")
    report = split_dataset(root / "data.yaml", tmp_path / "resplit", val=0.25, seed=0)
    assert report.images_per_split == {"train": 6, "val": 2} and report.boxes_read == 16
    written = sorted((tmp_path / "resplit" / "labels").rglob("*.txt"))
    assert len(written) == 8 and all(path.read_text().splitlines()[0] == line for path in written)
    check_dataset(tmp_path / "resplit" / "data.yaml", task="obb")
