"""The one YOLO-dataset layer (boxloss.data.yolo_format): ultralytics' path rule, names, labels, the dataset check."""

from __future__ import annotations

import re

import pytest
from helpers import fresh_interpreter_imports
from PIL import Image

from boxloss.data import yolo_format as yf
from boxloss.data.embedded import check_data
from boxloss.errors import ConfigError


def make_dataset(root, names="[a, b]", labels=("0 0.5 0.5 0.2 0.2",), path_line=None):
    for split in ("train", "val"):
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        Image.new("RGB", (40, 20)).save(root / "images" / split / "x.png")
        (root / "labels" / split / "x.txt").write_text("".join(f"{line}\n" for line in labels))
    path_line = f"path: {root}" if path_line is None else path_line
    (root / "data.yaml").write_text(f"{path_line}\ntrain: images/train\nval: images/val\nnames: {names}\n")
    return root / "data.yaml"


def test_relative_root_is_taken_from_the_working_directory_not_the_yaml_folder(tmp_path, monkeypatch):
    """ultralytics' rule (check_det_dataset): a relative `path` exists from the working directory, else it is under
    datasets_dir; the YAML's own folder is never tried."""
    data = make_dataset(tmp_path / "ds", path_line="path: ds")
    monkeypatch.chdir(tmp_path)
    assert yf.read_data_yaml(data).root == tmp_path / "ds"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert yf.read_data_yaml(data, datasets_dir=tmp_path).root == tmp_path / "ds"  # datasets_dir / ds
    assert yf.read_data_yaml(data).root == elsewhere / "ds"  # not next to the YAML
    with pytest.raises(ConfigError, match="train images .* not found"):
        yf.check_dataset(data)


def test_ultralytics_resolves_the_same_images(tmp_path, monkeypatch):
    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics.data.utils import check_det_dataset

    data = make_dataset(tmp_path / "ds", path_line="path: ds")
    monkeypatch.chdir(tmp_path)
    resolved = check_det_dataset(str(data))
    assert [str(p) for p in yf.split_images(data, "val")] == [str(tmp_path / "ds/images/val/x.png")]
    assert resolved["val"] == str(tmp_path / "ds/images/val")


@pytest.mark.parametrize("names, expected", [("[a, b]", ["a", "b"]), ("{0: a, 1: b}", ["a", "b"])])
def test_names_as_list_or_mapping(names, expected, tmp_path):
    assert yf.read_data_yaml(make_dataset(tmp_path, names=names)).names == expected


def test_nc_alone_numbers_the_classes(tmp_path):
    data = make_dataset(tmp_path)
    data.write_text(data.read_text().replace("names: [a, b]", "nc: 3"))
    assert yf.read_data_yaml(data).names == ["0", "1", "2"]


@pytest.mark.parametrize("edit, message", [
    (lambda text: text.replace("names: [a, b]", ""), "has neither 'names' nor a positive integer 'nc'"),
    (lambda text: text.replace("names: [a, b]", "names: {0: a, 2: b}"), "must be indexed 0..n-1"),
    (lambda text: text + "nc: 5\n", "'nc: 5' does not match the 2 'names'"),
    (lambda text: text + "oops: [1, 2\n", "not valid YAML at line 6 (expected ',' or ']', but got '<stream end>'; "
                                           "while parsing a flow sequence started at line 5)"),
    (lambda text: "- just\n- a list\n", "expected a mapping"),
])
def test_malformed_yaml_is_one_line_naming_the_problem(edit, message, tmp_path):
    data = make_dataset(tmp_path)
    data.write_text(edit(data.read_text()))
    with pytest.raises(ConfigError, match=re.escape(message)) as info:
        yf.check_dataset(data)
    assert "\n" not in str(info.value)


def test_empty_split_folder_and_missing_dataset(tmp_path):
    data = make_dataset(tmp_path)
    (tmp_path / "images" / "val" / "x.png").unlink()
    with pytest.raises(ConfigError, match="no images in its 'val' entry"):
        yf.check_dataset(data)
    with pytest.raises(ConfigError, match="not found"):
        yf.check_dataset(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="has no 'test' entry"):
        yf.check_dataset(data, ("test",))


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2", "expected 'cls cx cy w h'"),
    ("0 0.5 0.5 0.2 abc", "not numbers"),
    ("0 0.5 0.5 1.7 0.2", "coordinates must be normalised"),
    ("1.5 0.5 0.5 0.2 0.2", "not a non-negative integer"),
])
def test_label_errors_name_file_and_line(line, message, tmp_path):
    data = make_dataset(tmp_path, labels=("0 0.5 0.5 0.2 0.2", line))
    with pytest.raises(ConfigError, match=message) as info:
        yf.check_dataset(data)
    assert "labels/train/x.txt:2" in str(info.value)


def test_class_outside_names_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="class 2 is not one of the 2 classes"):
        yf.check_dataset(make_dataset(tmp_path, labels=("2 0.5 0.5 0.2 0.2",)))


def test_label_lines_round_trip_and_polygons():
    line = yf.xyxy_label_line(3, (10, 5, 30, 15), 40, 20)
    assert line == "3 0.500000 0.500000 0.500000 0.500000"
    assert yf.parse_label_line(line) == (3, 0.5, 0.5, 0.5, 0.5)
    assert yf.parse_label_line("1 0.1 0.2 0.3 0.2 0.3 0.6") == pytest.approx((1, 0.2, 0.4, 0.2, 0.4))
    assert yf.parse_label_line("   ") is None


def test_data_yaml_written_is_read_back(tmp_path):
    path = yf.write_data_yaml(tmp_path / "data.yaml", tmp_path, {"train": "images/train", "val": "images/val"},
                              ["a", "b"], header="made here", extra={"ids": [1, 2]})
    text = path.read_text()
    assert text.startswith("# made here\n") and "ids: [1, 2]" in text
    spec = yf.read_data_yaml(path)
    assert spec.names == ["a", "b"] and spec.root == tmp_path and spec.entries("train") == ["images/train"]


def test_unreadable_image_gives_the_reason(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image at all")
    with pytest.raises(OSError, match="bad.jpg: not a readable image"):
        yf.image_size(bad)


def test_embedded_names_check_only_their_splits():
    assert check_data("shapes-mini", ("train", "val")) is None
    with pytest.raises(ConfigError, match="has no 'test' split"):
        check_data("shapes", ("test",))


def test_module_is_pure():
    assert fresh_interpreter_imports("import boxloss.data.yolo_format", ("ultralytics",)) == []


POSE_LINE = "0 0.5 0.5 0.4 0.2 0.3 0.5 2 0.5 0.4 1 0.7 0.5 2 0 0 0"  # box, then 4 keypoints x y v
POLYGON_LINE = "1 0.1 0.2 0.3 0.2 0.3 0.6"


def test_pose_lines_are_read_with_the_keypoint_shape():
    """With kpt_shape (K, D) a line is the box and K keypoints of D values (visibility 2 is not a coordinate);
    without it the same line would read as a polygon."""
    assert yf.parse_label_line(POSE_LINE, (4, 3)) == (0, 0.5, 0.5, 0.4, 0.2)
    with pytest.raises(ValueError, match=r"polygon vertex 4 \(2 0.5\) is outside \[0, 1\]"):
        yf.parse_label_line(POSE_LINE)
    with pytest.raises(ValueError, match=r"4 keypoints of 2 values \(13 numbers\), got 17"):
        yf.parse_label_line(POSE_LINE, (4, 2))
    with pytest.raises(ValueError, match="keypoint coordinates must be normalised"):
        yf.parse_label_line(POSE_LINE.replace("0.7 0.5 2", "1.7 0.5 2"), (4, 3))


@pytest.mark.parametrize("line, kpt_shape, message", [
    (POSE_LINE.replace("0.5 0.4 1", "0.5 0.4 -1"), (4, 3), "keypoint 2 has visibility -1: must be 0, 1 or 2"),
    (POSE_LINE.replace("0 0 0", "0 0 3"), (4, 3), "keypoint 4 has visibility 3: must be 0, 1 or 2"),
    (POSE_LINE.replace("0.3 0.5 2", "0.3 0.5 0.5"), (4, 3), "keypoint 1 has visibility 0.5: must be 0, 1 or 2"),
    ("1 -0.2 0.2 0.6 0.2 0.6 0.6", None, r"polygon vertex 1 \(-0.2 0.2\) is outside \[0, 1\]"),
    ("1 0.1 0.2 0.6 0.2 0.6 1.3", None, r"polygon vertex 3 \(0.6 1.3\) is outside \[0, 1\]"),
])
def test_keypoint_visibility_and_polygon_vertices_are_checked(line, kpt_shape, message):
    """Visibility is 0 (not labelled), 1 (hidden) or 2 (visible) when keypoints have three values: ultralytics drops
    the whole image of a -1 as corrupt. A polygon vertex outside the image passed whenever the polygon's box (its
    centre and extent) still lay in [0, 1], as -0.2 .. 0.6 does."""
    with pytest.raises(ValueError, match=message):
        yf.parse_label_line(line, kpt_shape)
    assert yf.parse_label_line(POSE_LINE if kpt_shape else "1 0 0.2 0.6 0.2 1 1", kpt_shape)  # the edges are inside


def test_a_pose_model_needs_kpt_shape_and_a_segmentation_model_polygons(tmp_path):
    boxes = make_dataset(tmp_path / "boxes")
    with pytest.raises(ConfigError, match="a pose model needs keypoint labels: .* has no 'kpt_shape'"):
        yf.check_dataset(boxes, task="pose")
    with pytest.raises(ConfigError, match="a segmentation model needs polygon labels .* only boxes in its train"):
        yf.check_dataset(boxes, task="segment")
    mixed = make_dataset(tmp_path / "mixed", labels=(POLYGON_LINE, "0 0.5 0.5 0.2 0.2"))
    yf.check_dataset(mixed)  # detection: a polygon stands for its box
    with pytest.raises(ConfigError, match="needs a polygon for every object: .* 1 box-only label lines among 2"):
        yf.check_dataset(mixed, task="segment")
    assert yf.check_dataset(make_dataset(tmp_path / "polygons", labels=(POLYGON_LINE,)), task="segment")
    pose = make_dataset(tmp_path / "pose", labels=(POSE_LINE,))
    with pytest.raises(ConfigError, match="coordinates must be normalised to \\[0, 1\\]"):
        yf.check_dataset(pose)  # no kpt_shape yet: the line reads as a polygon
    pose.write_text(pose.read_text() + "kpt_shape: [4, 3]\nflip_idx: [2, 1, 0, 3]\n")
    assert yf.check_dataset(pose, task="pose") and yf.check_dataset(pose)  # a detection model on pose labels too
    with pytest.raises(ConfigError, match="needs polygon labels"):
        yf.check_dataset(pose, task="segment")
    pose.write_text(pose.read_text().replace("flip_idx: [2, 1, 0, 3]", "flip_idx: [2, 1, 0]"))
    with pytest.raises(ConfigError, match="'flip_idx' must be a permutation of the 4 keypoints"):
        yf.check_dataset(pose, task="pose")


def test_embedded_datasets_of_the_wrong_label_set_say_which_to_use():
    with pytest.raises(ConfigError, match=r"segmentation model needs polygon labels: data=shapes-mini has "
                                          r"detection labels \(use data=shapes-seg-mini\)"):
        check_data("shapes-mini", task="segment")
    with pytest.raises(ConfigError, match=r"pose model needs keypoint labels: data=shapes-seg has segmentation "
                                          r"labels \(use data=shapes-pose\)"):
        check_data("shapes-seg", task="pose")
    for data, task in (("shapes-seg-mini", "segment"), ("shapes-pose", "pose"), ("shapes-pose-mini", "detect")):
        assert check_data(data, task=task) is None


def test_instances_keep_each_lines_polygon_or_keypoints(tmp_path):
    """read_instances: a segment line keeps its vertices (its box is their extent, as ultralytics' segments2boxes
    gives it), a pose line its keypoints (visibility as written for D = 3; for D = 2 ultralytics' rule: labelled
    unless x or y is negative), a box line neither."""
    labels = tmp_path / "x.txt"
    labels.write_text(f"{POLYGON_LINE}\n0 0.5 0.5 0.2 0.2\n")
    polygon, box = yf.read_instances(labels)
    assert polygon.cls == 1 and polygon.polygon == ((0.1, 0.2), (0.3, 0.2), (0.3, 0.6))
    assert polygon.box == pytest.approx((0.2, 0.4, 0.2, 0.4)) and polygon.keypoints is None
    assert box == yf.Instance(0, (0.5, 0.5, 0.2, 0.2))
    labels.write_text(f"{POSE_LINE}\n")
    (pose,) = yf.read_instances(labels, (4, 3))
    assert pose.box == (0.5, 0.5, 0.4, 0.2) and pose.polygon is None
    assert pose.keypoints == ((0.3, 0.5, 2), (0.5, 0.4, 1), (0.7, 0.5, 2), (0, 0, 0))
    labels.write_text("0 0.5 0.5 0.4 0.2 0.3 0.5 0.5 0.4\n")
    assert yf.read_instances(labels, (2, 2))[0].keypoints == ((0.3, 0.5, 2.0), (0.5, 0.4, 2.0))
    assert yf.read_instances(tmp_path / "missing.txt") == []


def test_instances_drop_duplicates_as_ultralytics_does(tmp_path):
    """Only lines equal in every value are duplicates (ultralytics' verify_image_label): two different polygons, or
    two poses, that share a class and a box are two objects."""
    labels = tmp_path / "x.txt"
    square, diamond = "0 0.1 0.1 0.3 0.1 0.3 0.3 0.1 0.3", "0 0.2 0.1 0.3 0.2 0.2 0.3 0.1 0.2"
    labels.write_text(f"{square}\n{diamond}\n{square}\n")
    found = yf.read_instances(labels)
    assert [i.polygon[0] for i in found] == [(0.1, 0.1), (0.2, 0.1)] and found[0].box == found[1].box
    assert len(yf.read_labels(labels)) == 1  # the box reader sees one box
    other_pose = POSE_LINE.replace("0.3 0.5 2", "0.35 0.5 2")
    labels.write_text(f"{POSE_LINE}\n{other_pose}\n{POSE_LINE}\n")
    assert len(yf.read_instances(labels, (4, 3))) == 2
    labels.write_text("0 0.5 0.5 0.2\n")
    with pytest.raises(ValueError, match=r"x.txt:1: expected 'cls cx cy w h'"):
        yf.read_instances(labels)


def test_polygon_label_line_round_trip():
    line = yf.polygon_label_line(2, [(0.1, 0.25), (0.5, 0.25), (0.5, 0.75)])
    assert line == "2 0.100000 0.250000 0.500000 0.250000 0.500000 0.750000"
    assert yf.parse_instance(line).polygon == ((0.1, 0.25), (0.5, 0.25), (0.5, 0.75))
