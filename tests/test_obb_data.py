"""Oriented boxes on the data floor: YOLO-OBB label lines in the one dataset check (boxloss.data.yolo_format), and
the embedded ``shapes-obb`` dataset (boxloss.data.synthetic) with each object's exact oriented rectangle."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from boxloss.data import synthetic as syn
from boxloss.data import yolo_format as yf
from boxloss.data.embedded import EMBEDDED_DATASETS, check_data, embedded_task
from boxloss.data.synthetic import annotations as ann
from boxloss.data.synthetic.render import ELLIPSE, RING, TRIANGLE, oriented_rectangle, rasterize
from boxloss.errors import ConfigError

DOTA8 = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "dota8" / "dota8.yaml"
needs_dota8 = pytest.mark.skipif(not DOTA8.is_file(), reason=f"shared dataset {DOTA8} not present on this machine")
SQUARE = "0 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4"  # a 0.2-wide square, corners counter-clockwise on screen
TINY = dict(n_train=4, n_val=2, imgsz=128)


def obb_dataset(root: Path, *lines: str, yaml_extra: str = "") -> Path:
    """A two-split dataset of one 40 x 20 image each whose label file holds ``lines``; its data.yaml."""
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (40, 20)).save(root / "images" / split / "x.png")
        (root / "labels" / split / "x.txt").write_text("".join(f"{line}\n" for line in lines))
    (root / "data.yaml").write_text(f"path: {root}\ntrain: images/train\nval: images/val\nnames: [a, b]\n{yaml_extra}")
    return root / "data.yaml"


# ------------------------------------------------------------------------------------------------ label lines
def test_minimum_width_by_hand():
    """The narrowest strip holding the points: 1 for the unit square (in any vertex order, a crossed 'bowtie' order
    too), the short side of a turned rectangle, 1/√2 for the right isosceles triangle (its hypotenuse's height),
    0 for collinear or coincident points."""
    assert yf.minimum_width([(0, 0), (1, 0), (1, 1), (0, 1)]) == pytest.approx(1)
    assert yf.minimum_width([(0, 0), (1, 1), (1, 0), (0, 1)]) == pytest.approx(1)
    turn = math.radians(30)
    u, v = np.array([math.cos(turn), math.sin(turn)]) * 0.2, np.array([-math.sin(turn), math.cos(turn)]) * 0.1
    assert yf.minimum_width([(0, 0), u, u + v, v]) == pytest.approx(0.1)
    assert yf.minimum_width([(0, 0), (1, 0), (0, 1), (0, 1)]) == pytest.approx(1 / math.sqrt(2))
    assert yf.minimum_width([(0, 0), (0.5, 0.5), (1, 1), (0.25, 0.25)]) == 0
    assert yf.minimum_width([(0.3, 0.3)] * 4) == 0


def test_an_obb_line_reads_as_its_four_corners():
    assert yf.parse_obb_line(SQUARE) == (0, ((0.2, 0.2), (0.4, 0.2), (0.4, 0.4), (0.2, 0.4)))
    assert yf.parse_obb_line("   ") is None
    assert yf.parse_label_line(SQUARE) == pytest.approx((0, 0.3, 0.3, 0.2, 0.2))  # a detection model: its extent
    cut = "1 0.9 0.5 1.05 0.5 1.05 0.6 0.9 0.6"  # a corner off the image's edge, the extent's centre inside
    assert yf.parse_obb_line(cut)[1][1] == (1.05, 0.5)
    narrow = "0 0.1 0.1 0.5 0.1 0.5 0.10002 0.1 0.10002"  # 2e-5 wide: thin, not degenerate
    assert yf.parse_obb_line(narrow)[0] == 0


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2 0.2", "expected the four corners 'cls x1 y1 x2 y2 x3 y3 x4 y4' (9 numbers), got 5 numbers"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2", "got a polygon of 3 points"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2 0.3 0.3", "got a polygon of 5 points"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2 0.3", "(9 numbers), got 10 numbers"),
    ("0 0.1 0.1 0.2 0.1 0.2 x 0.1 0.2", "not numbers"),
    ("0 0.1 0.1 0.2 0.1 0.2 nan 0.1 0.2", "not finite numbers"),
    ("1.5 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2", "class '1.5' is not a non-negative integer"),
    ("-1 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2", "class '-1' is not a non-negative integer"),
    ("0 0.9 0.1 1.2 0.1 1.2 0.2 0.9 0.2", "coordinates must be normalised to [0, 1]"),  # centre 1.05
    ("0 10 10 20 10 20 20 10 20", "coordinates must be normalised to [0, 1]"),  # pixels, not normalised
    ("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4 0.4", "degenerate oriented box: its corners enclose no area"),  # collinear
    ("0 0.1 0.1 0.1 0.1 0.1 0.1 0.1 0.1", "degenerate oriented box"),  # one point
    ("0 0.1 0.1 0.3 0.1 0.3 0.100001 0.1 0.100001", "degenerate oriented box"),  # 1e-6 wide: rounding of a line
])
def test_malformed_obb_lines_say_what_is_wrong(line, message):
    with pytest.raises(ValueError) as error:
        yf.parse_obb_line(line)
    assert message in str(error.value)


def test_read_obb_labels_drops_repeats_and_names_file_and_line(tmp_path):
    labels = tmp_path / "x.txt"
    turned = "1 0.3 0.1 0.5 0.3 0.3 0.5 0.1 0.3"
    labels.write_text(f"{SQUARE}\r\n{turned}\r\n{SQUARE}\r\n")  # CRLF, as DOTA ships its files
    assert [row[0] for row in yf.read_obb_labels(labels)] == [0, 1]
    labels.write_text(f"{SQUARE}\n\n0 0.1 0.1 0.2 0.2 0.3 0.3 0.4 0.4\n")
    with pytest.raises(ValueError, match=r"x.txt:3: degenerate oriented box"):
        yf.read_obb_labels(labels)
    assert yf.read_obb_labels(tmp_path / "missing.txt") == []


# ----------------------------------------------------------------------------------------- the dataset check
def test_the_dataset_check_reads_obb_labels_for_an_obb_model(tmp_path):
    data = obb_dataset(tmp_path / "obb", SQUARE, "1 0.3 0.1 0.5 0.3 0.3 0.5 0.1 0.3")
    assert yf.check_dataset(data, task="obb").names == ["a", "b"]
    assert yf.check_dataset(data).names == ["a", "b"]  # a detection model: every line is its extent
    assert yf.check_dataset(data, task="segment")  # and a segmentation model: a four-point polygon


@pytest.mark.parametrize("lines, message", [
    (("0 0.5 0.5 0.2 0.2",), "an oriented-box model needs oriented-box labels ('cls x1 y1 x2 y2 x3 y3 x4 y4'): "
                             "dataset '{data}' has only boxes in its train labels (a detection dataset?)"),
    ((SQUARE, "1 0.5 0.5 0.2 0.2"), "an oriented-box model needs four corners for every object: dataset '{data}' "
                                    "has 1 box-only label lines among 2 in its train labels (the first in {label})"),
    ((SQUARE, "0 0.1 0.1 0.2 0.1 0.2 0.2"), "dataset '{data}': malformed label line {label}:2: expected the four "
                                           "corners 'cls x1 y1 x2 y2 x3 y3 x4 y4' (9 numbers), got a polygon of 3"),
    (("0 0.1 0.1 0.2 0.2 0.3 0.3 0.4 0.4",), "dataset '{data}': malformed label line {label}:1: degenerate"),
    (("2 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4",), "dataset '{data}': {label}: class 2 is not one of the 2 classes"),
    (("0 0.2 0.2 0.4 0.2 0.4 0.4 0.2 0.4 0.1",), "{label}:1: expected the four corners"),
])
def test_an_obb_model_refuses_other_labels_in_one_line(tmp_path, lines, message):
    data = obb_dataset(tmp_path / "d", *lines)
    label = tmp_path / "d" / "labels" / "train" / "x.txt"
    with pytest.raises(ConfigError) as error:
        yf.check_dataset(data, task="obb")
    assert message.format(data=data, label=label) in str(error.value) and "\n" not in str(error.value)


def test_an_obb_model_refuses_a_pose_dataset(tmp_path):
    data = obb_dataset(tmp_path / "pose", "0 0.5 0.5 0.4 0.2 0.3 0.5 2 0.5 0.4 2", yaml_extra="kpt_shape: [2, 3]\n")
    with pytest.raises(ConfigError, match=r"oriented-box model needs oriented-box labels .* has keypoint labels"):
        yf.check_dataset(data, task="obb")


@needs_dota8
def test_dota8_passes_the_check_for_an_obb_and_a_detection_model():
    """ultralytics' own YOLO-OBB sample: 133 objects, corners off the tiles' edges (up to 1.057) included."""
    spec = yf.check_dataset(DOTA8, task="obb")
    assert len(spec.names) == 15
    rows = [row for split in ("train", "val") for image in yf.split_images(spec, split)
            for row in yf.read_obb_labels(yf.label_path(image))]
    assert len(rows) == 133 and max(max(point) for _, corners in rows for point in corners) == pytest.approx(1.05664)
    assert yf.check_dataset(DOTA8).names == spec.names


def test_embedded_datasets_point_an_obb_model_to_shapes_obb():
    assert embedded_task("shapes-obb") == embedded_task("shapes-obb-mini") == "obb"
    assert EMBEDDED_DATASETS["shapes-obb-mini"]["n_train"] == EMBEDDED_DATASETS["shapes-mini"]["n_train"]
    with pytest.raises(ConfigError, match=r"^an oriented-box model needs oriented-box labels: data=shapes-mini has "
                                          r"detection labels \(use data=shapes-obb-mini\)$"):
        check_data("shapes-mini", task="obb")
    with pytest.raises(ConfigError, match=r"^an oriented-box model needs .* data=shapes-pose has pose labels "
                                          r"\(use data=shapes-obb\)$"):
        check_data("shapes-pose", task="obb")
    with pytest.raises(ConfigError, match=r"^a segmentation model needs polygon labels: data=shapes-obb-mini has "
                                          r"oriented-box labels \(use data=shapes-seg-mini\)$"):
        check_data("shapes-obb-mini", task="segment")
    for task in ("obb", "detect"):
        assert check_data("shapes-obb", task=task) is None


# ------------------------------------------------------------------------------------------------- shapes-obb
def reference_rectangle(shape) -> tuple[tuple[float, float], tuple[float, float], float]:
    """OpenCV's minimum-area rectangle (rotating calipers, float32) of the analytic shape's outline: its vertices,
    or 20,000 points of its outer ellipse -- an implementation independent of oriented_rectangle."""
    cos, sin = math.cos(shape.angle), math.sin(shape.angle)
    if shape.cls == TRIANGLE:
        local = shape.vertices
    elif shape.cls in (ELLIPSE, RING):
        t = np.linspace(0, 2 * np.pi, 20000, endpoint=False)
        local = np.stack([shape.half_length * np.cos(t), shape.half_width * np.sin(t)], 1)
    else:
        u, v = shape.half_length, shape.half_width
        local = np.array([[-u, -v], [u, -v], [u, v], [-u, v]])
    points = local @ np.array([[cos, sin], [-sin, cos]]) + (shape.cx, shape.cy)
    return cv2.minAreaRect(points.astype(np.float32))


def test_oriented_rectangles_are_the_shapes_minimum_area_rectangles():
    """Each object's rectangle has OpenCV's minimum area (and centre, where the rectangle is unique; a triangle's is
    twice its area, with a side along its longest edge), and every pixel of its drawn mask lies inside it, touching
    each of its four sides within a pixel (a triangle's acute tip may stop a little short)."""
    seen = set()
    for index in range(6):
        sample = syn.render_sample(0, "train", index, 256, any_angle=True)
        for shape in sample.shapes:
            cx, cy, w, h, angle = oriented_rectangle(shape)
            (ref_cx, ref_cy), (ref_w, ref_h), _ = reference_rectangle(shape)
            assert w * h == pytest.approx(ref_w * ref_h, rel=2e-3)
            if shape.cls == TRIANGLE:
                (x1, y1), (x2, y2), (x3, y3) = shape.vertices
                assert w * h == pytest.approx(abs((x2 - x1) * (y3 - y1) - (x3 - x1) * (y2 - y1)), rel=1e-9)
                sides = np.hypot(*(np.roll(shape.vertices, -1, axis=0) - shape.vertices).T)
                assert w == pytest.approx(sides.max(), rel=1e-9)  # a side along the longest edge
            else:
                assert (cx, cy) == pytest.approx((ref_cx, ref_cy), abs=2e-3)
            mask, _, x0, y0 = rasterize(shape)
            rows, columns = np.nonzero(mask)
            dx, dy = columns + x0 + 0.5 - cx, rows + y0 + 0.5 - cy
            along = dx * math.cos(angle) + dy * math.sin(angle)
            across = -dx * math.sin(angle) + dy * math.cos(angle)
            assert np.abs(along).max() <= w / 2 + 1e-9 and np.abs(across).max() <= h / 2 + 1e-9
            slack = 2.5 if shape.cls == TRIANGLE else 1.0
            assert w / 2 - np.abs(along).max() < slack and h / 2 - np.abs(across).max() < slack, (index, shape.cls)
            seen.add(shape.cls)
    assert seen == set(range(len(syn.CLASS_NAMES)))


def test_obb_labels_are_ultralytics_canonical_rectangles():
    """ultralytics' own xyxyxyxy2xywhr reads every written line back as the same rectangle: long side first, the
    angle in [-π/4, 3π/4); and the angles cover every direction, not only the axes."""
    from ultralytics.utils.ops import xyxyxyxy2xywhr

    size, angles = 256, []
    for index in range(8):
        sample = syn.render_sample(0, "val", index, size, any_angle=True)
        lines = ann.obb_lines(sample, size)
        assert len(lines) == len(sample.classes) > 0
        corners = np.array([line.split()[1:] for line in lines], dtype=np.float64) * size  # (N, 8)
        read = xyxyxyxy2xywhr(corners)  # (N, 5)
        expected = np.array([ann.canonical_rectangle(*oriented_rectangle(shape)) for shape in sample.shapes])
        assert (expected[:, 2] >= expected[:, 3]).all()
        assert ((-np.pi / 4 <= expected[:, 4]) & (expected[:, 4] < 3 * np.pi / 4)).all()
        np.testing.assert_allclose(read[:, :4], expected[:, :4], atol=2e-3)
        turn = np.abs((read[:, 4] - expected[:, 4] + np.pi / 2) % np.pi - np.pi / 2)  # mod π: a near-square's 180°
        assert (turn < 2e-3).all() or np.allclose(expected[turn >= 2e-3, 2], expected[turn >= 2e-3, 3], rtol=1e-3)
        angles += list(expected[:, 4])
    off_axis = np.abs((np.array(angles) + np.pi / 4) % (np.pi / 2) - np.pi / 4) > np.radians(5)
    assert off_axis.mean() > 0.6, off_axis.mean()


@pytest.mark.parametrize("split, first, count", [("train", 160, 20), ("val", 0, 20)])
def test_every_shapes_obb_line_passes_the_dataset_check(split, first, count):
    """Every written line is a valid oriented box, the rectangle's centre inside the image -- for a triangle not its
    vertices' mean: train image 168 once had a triangle whose rectangle's centre lay 1.5 px below the image."""
    for index in range(first, first + count):
        sample = syn.render_sample(0, split, index, 256, any_angle=True)
        for line in ann.obb_lines(sample, 256):
            yf.parse_obb_line(line)


def test_canonical_rectangle_and_corners_by_hand():
    assert ann.canonical_rectangle(5, 6, 2, 4, 0.0) == pytest.approx((5, 6, 4, 2, np.pi / 2))
    assert ann.canonical_rectangle(0, 0, 4, 2, np.pi)[4] == pytest.approx(0)
    assert ann.canonical_rectangle(0, 0, 4, 2, 3 * np.pi / 4)[4] == pytest.approx(-np.pi / 4)
    np.testing.assert_allclose(ann.rectangle_corners(10, 20, 4, 2, 0.0), [[12, 21], [12, 19], [8, 19], [8, 21]])
    from ultralytics.utils.ops import xywhr2xyxyxyxy

    box = np.array([[10.0, 20.0, 6.0, 2.0, 0.7]])
    np.testing.assert_allclose(ann.rectangle_corners(*box[0]), xywhr2xyxyxyxy(box)[0], atol=1e-12)


def test_shapes_obb_is_deterministic_and_checked(tmp_path):
    first = syn.generate(tmp_path / "a", seed=0, **TINY, task="obb")
    second = syn.generate(tmp_path / "b", seed=0, **TINY, task="obb")
    texts = [{p.name: p.read_bytes() for p in sorted(root.parent.glob("labels/*/*.txt"))} for root in (first, second)]
    assert texts[0] == texts[1] and len(texts[0]) == 4  # train and val file names overlap: 000000.txt ...
    manifest = json.loads((first.parent / "manifest.json").read_text())
    assert manifest["name"] == "shapes-obb" and syn.default_root("obb").name == f"shapes-obb-v{syn.VERSION}"
    assert check_data(str(first), task="obb").names == list(syn.CLASS_NAMES)
    shapes = syn.generate(tmp_path / "c", seed=0, **TINY)  # other images: the shapes are turned
    assert not np.array_equal(cv2.imread(str(shapes.parent / "images/train/000000.png")),
                              cv2.imread(str(first.parent / "images/train/000000.png")))


def test_ultralytics_trains_on_what_shapes_obb_writes(tmp_path):
    """ultralytics' own OBB dataset (task obb: label check, cache, Format(return_obb)) reads every object as the
    rectangle written, in pixels of the letterboxed image."""
    from ultralytics.cfg import get_cfg
    from ultralytics.data import build_yolo_dataset
    from ultralytics.data.utils import check_det_dataset

    root = syn.generate(tmp_path / "obb", seed=0, **TINY, task="obb").parent
    data = check_det_dataset(str(root / "data.yaml"))
    dataset = build_yolo_dataset(get_cfg(overrides={"task": "obb", "imgsz": 128}), data["train"], 2, data,
                                 mode="val", stride=32)
    assert len(dataset.labels) == TINY["n_train"]
    for index in range(TINY["n_train"]):
        item = dataset[index]
        lines = (root / "labels/train" / f"{Path(item['im_file']).stem}.txt").read_text().splitlines()
        expected = [ann.canonical_rectangle(*ann_box) for ann_box in
                    (_xywhr(np.array(line.split()[1:], dtype=np.float64) * 128) for line in lines)]
        assert item["bboxes"].shape == (len(lines), 5)
        np.testing.assert_allclose(item["bboxes"][:, :4].numpy() * 128, np.array(expected)[:, :4], atol=0.05)


def _xywhr(corners: np.ndarray) -> tuple[float, ...]:
    """(cx, cy, w, h, angle) of the rectangle whose corners are written in rectangle_corners' order."""
    points = corners.reshape(4, 2)
    side, other = points[0] - points[3], points[0] - points[1]  # 2u, 2v
    return (*points.mean(0), float(np.linalg.norm(side)), float(np.linalg.norm(other)),
            float(math.atan2(side[1], side[0])))
