"""Experiment configuration: resolution order and the one-line errors for bad input (exit 2, no run dir)."""

import sys

import pytest

from boxloss import options
from boxloss._io import read_yaml_mapping
from boxloss.data.yolo_format import check_dataset
from boxloss.errors import ConfigError
from boxloss.yolo import experiment

from helpers import REPO, assert_refused

sys.path.insert(0, str(REPO))  # the root shim train.py, which the refusal tests run in this process


def test_resolution_order_defaults_file_overrides():
    resolved = experiment.load_experiment({"cfg": "focal_eiou.yaml", "epochs": 3, "focal_eiou_gamma": 1}).settings
    assert resolved["box_loss"] == "focal_eiou"  # from the file
    assert resolved["imgsz"] == 256  # from cfg/default.yaml
    assert resolved["epochs"] == 3 and resolved["focal_eiou_gamma"] == 1.0  # from the command line
    assert resolved["cfg"].endswith("cfg/focal_eiou.yaml")


def test_every_config_file_is_valid():
    """Every config resolves, and names the box loss it trains with (a config without one: the stock loss of its
    model's boxes)."""
    for path in sorted(experiment.CFG_DIR.glob("*.yaml")):
        loaded = experiment.load_experiment({"cfg": str(path)})
        resolved = loaded.settings
        assert options.validate(resolved, loaded.task.boxes)["box_loss"] == resolved["box_loss"] is not None
        assert loaded.options["box_loss"] == resolved["box_loss"]
        assert read_yaml_mapping(path).get("box_loss", resolved["box_loss"]) == resolved["box_loss"]


def test_an_unset_box_loss_is_the_stock_one_of_the_models_boxes():
    """box_loss and assigner_iou unset (the registered default, None): ultralytics' own for the model's boxes. The box
    loss is written into the resolved experiment (so the run's args, its checkpoints and a benchmark's settings name
    it); the assigner metric stays unset there, as in the published records from before it had a per-task default,
    which therefore still compare equal."""
    assert options.defaults()["box_loss"] is None and options.defaults()["assigner_iou"] is None
    detect = experiment.load_experiment({"cfg": "ciou_vfl.yaml"})
    assert (detect.settings["box_loss"], detect.settings.get("assigner_iou")) == ("ciou", None)
    assert detect.options["assigner_iou"] == "ciou"
    obb = experiment.load_experiment({"model": "yolov8n-obb.yaml", "data": "shapes-obb-mini"})
    assert (obb.settings["box_loss"], obb.settings.get("assigner_iou")) == ("probiou", None)
    assert (obb.options["box_loss"], obb.options["assigner_iou"], obb.task.name) == ("probiou", "probiou", "obb")
    assert options.from_args({}, "xywhr")["box_loss"] == "probiou" and options.from_args({})["box_loss"] == "ciou"


def test_every_registered_loss_has_a_config_file():
    """One per registered box loss, and one example per wrapper (inner_, focaler_, alpha_ + any IoU-type loss)."""
    from boxloss.registry import BOX_LOSSES

    configured = {read_yaml_mapping(p).get("box_loss") for p in experiment.CFG_DIR.glob("*.yaml")} - {None}
    assert set(BOX_LOSSES.names(wrapped=False)) <= configured
    assert all(any(name.startswith(f"{prefix}_") for name in configured) for prefix in BOX_LOSSES.wrappers())


def test_project_keys_are_ultralytics_keys_after_import():
    from ultralytics.cfg import get_cfg

    args = get_cfg(overrides={"box_loss": "eiou", "focal_eiou_gamma": 1.0})
    assert args.box_loss == "eiou" and args.iou_balanced_lambda == 1.5


BAD = [
    (["cfg=eiou.yaml", "box_los=eiou"], "unknown key 'box_los' (did you mean box_loss"),
    (["cfg=eiou.yaml", "box_loss=eiuo"], "box_loss='eiuo' is out of range: must be one of "),
    (["cfg=focal_eiou.yaml", "focal_eiou_gamma=-0.5"], "focal_eiou_gamma=-0.5 is out of range: must be >= 0"),
    (["cfg=focal_eiou.yaml", "focal_eiou_gamma=abc"], "focal_eiou_gamma='abc' has the wrong type"),
    (["cfg=focal_eiou.yaml", "focal_eiou_norm=sum"], "focal_eiou_norm='sum' is out of range"),
    (["cfg=eiou.yaml", "epochs=abc"], "'epochs=abc' is of invalid type"),
    (["cfg=eiou.yaml", "iou_balanced_loc=yes please"], "iou_balanced_loc='yes please' has the wrong type"),
    (["cfg=focal_l1.yaml", "focal_l1_beta=2"], "focal_l1_beta=2.0 is out of range: must be in [1/e, 1]"),
    (["cfg=eiou.yaml", "data=missing/data.yaml"], "dataset 'missing/data.yaml' not found"),
    (["cfg=eiou.yaml", "model=missing.pt"], "model checkpoint 'missing.pt' not found"),
    (["cfg=nonexistent.yaml"], "config file 'nonexistent.yaml' not found"),
    (["cfg=eiou.yaml", "epochs"], "argument 'epochs' is not of the form key=value"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[a[-1] for a, _ in BAD])
def test_bad_config_is_one_clear_line_exit_2_and_no_run_dir(argv, message, tmp_path):
    assert_refused("train.py", argv, message, cwd=tmp_path)  # the root shim, in this process


def test_dataset_with_missing_image_folder(tmp_path):
    (tmp_path / "data.yaml").write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: {{0: a}}\n")
    with pytest.raises(ConfigError, match="train images .* not found"):
        check_dataset(str(tmp_path / "data.yaml"))


@pytest.mark.parametrize("line, message", [
    ("0 0.5 0.5 0.2", "expected 'cls cx cy w h'"),
    ("0 0.5 0.5 0.2 abc", "not numbers"),
    ("0 0.5 0.5 1.7 0.2", "coordinates must be normalised"),
    ("7 0.5 0.5 0.2 0.2", "class 7 is not one of the 1 classes"),
])
def test_malformed_label_line_names_file_and_line(line, message, tmp_path):
    import cv2
    import numpy as np

    for split in ("train", "val"):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "images" / split / "a.png"), np.zeros((8, 8, 3), np.uint8))
        (tmp_path / "labels" / split / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    (tmp_path / "labels" / "val" / "a.txt").write_text(f"0 0.5 0.5 0.2 0.2\n{line}\n")
    data = tmp_path / "data.yaml"
    data.write_text(f"path: {tmp_path}\ntrain: images/train\nval: images/val\nnames: {{0: a}}\n")
    work = tmp_path / "work"
    work.mkdir()
    err = assert_refused("train.py", ["cfg=eiou.yaml", f"data={data}"], message, cwd=work, watched=(tmp_path,))
    if "class 7" not in message:
        assert "labels/val/a.txt:2" in err


def test_train_py_parses_its_arguments_once(tmp_path, monkeypatch):
    """train.py reads each argument once and hands the parsed values to the experiment (nothing is trained here)."""
    from boxloss import keyvalues
    from boxloss.cli import train as train_cli
    from boxloss.yolo import run

    parsed, parse_value, experiments = [], keyvalues.parse_value, []
    monkeypatch.setattr(keyvalues, "parse_value", lambda text: parsed.append(text) or parse_value(text))
    monkeypatch.setattr(run, "train", lambda experiment: experiments.append(experiment) or tmp_path)
    argv = ["cfg=eiou.yaml", "data=shapes-mini", "epochs=2", "lr0=1e-3", f"project={tmp_path}"]
    assert train_cli.main(argv) == 0
    assert parsed == [arg.partition("=")[2] for arg in argv]
    (experiment,) = experiments
    assert experiment.settings["lr0"] == 0.001 and experiment.settings["epochs"] == 2
    assert experiment.options["box_loss"] == "eiou" and experiment.task.name == "detect"
