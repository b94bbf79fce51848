"""scripts/prepare_coco.py: a standard COCO layout -> one YOLO tree that train.py, val.py coco_json= and benchmark.py
accept, and the README's COCO recipe parses as written.

The COCO layout is faked from ../shared/datasets/coco128 (its train2017 images and instances JSON serve as both
train2017 and val2017, by symlink); those tests skip when that folder is absent. No model is run.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
import yaml

from helpers import REPO, assert_refused, run_in_process

COCO128 = REPO.parent / "shared" / "datasets" / "coco128"
needs_coco128 = pytest.mark.skipif(not COCO128.is_dir(),
                                   reason=f"shared datasets folder {COCO128.parent} not present on this machine")
pytestmark = needs_coco128

SPLITS = ("train2017", "val2017")
BOXES, CROWD, IMAGES = 929, 10, 128  # coco128: 939 annotations, 10 of them iscrowd=1


def make_coco_layout(root: Path) -> Path:
    """``root`` in COCO's standard layout, every piece a symlink into coco128."""
    (root / "annotations").mkdir(parents=True)
    for split in SPLITS:
        os.symlink(COCO128 / "train2017", root / split)
        os.symlink(COCO128 / "annotations" / "instances_train2017.json",
                   root / "annotations" / f"instances_{split}.json")
    return root


def prepare(args: list, cwd: Path):
    return run_in_process("scripts/prepare_coco.py", args, cwd, timeout=300)


def prepare_script():
    """scripts/prepare_coco.py as a module (its settings_of reads a key=value command line)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_coco_script", REPO / "scripts" / "prepare_coco.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """``(tmp, layout, out, CompletedProcess)`` of ``prepare_coco.py coco=<layout> out=datasets/coco`` in tmp."""
    tmp = tmp_path_factory.mktemp("prepare_coco")
    coco = make_coco_layout(tmp / "coco")
    result = prepare([f"coco={coco}", "out=datasets/coco"], tmp)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp / "network.log").exists()
    return tmp, coco, tmp / "datasets" / "coco", result


def official_categories() -> list[dict]:
    data = json.loads((COCO128 / "annotations" / "instances_train2017.json").read_text())
    return sorted(data["categories"], key=lambda c: c["id"])


# ------------------------------------------------------------------------------------------------------ the tree
def test_data_yaml_has_both_splits_the_80_names_in_id_order_and_the_val_json(prepared):
    tmp, coco, out, _ = prepared
    spec = yaml.safe_load((out / "data.yaml").read_text())
    assert spec["path"] == str(out.resolve())
    assert spec["train"] == "images/train2017" and spec["val"] == "images/val2017" and "test" not in spec
    categories = official_categories()
    assert spec["names"] == {i: c["name"] for i, c in enumerate(categories)}
    assert len(spec["names"]) == 80 and spec["names"][0] == "person" and spec["names"][79] == "toothbrush"
    assert spec["coco_category_ids"] == [c["id"] for c in categories]
    assert spec["coco_val_json"] == str(coco / "annotations" / "instances_val2017.json")
    assert Path(spec["coco_val_json"]).is_absolute()
    assert "download" not in spec  # ultralytics downloads only when a dataset YAML says where from


@pytest.mark.parametrize("split", SPLITS)
def test_each_split_has_its_images_and_labels_without_crowd_regions(prepared, split):
    tmp, coco, out, _ = prepared
    images = sorted((out / "images" / split).iterdir())
    labels = sorted((out / "labels" / split).glob("*.txt"))
    assert len(images) == len(labels) == IMAGES
    assert all(p.is_symlink() and p.resolve() == (COCO128 / "train2017" / p.name).resolve() for p in images)
    assert sum(len(p.read_text().splitlines()) for p in labels) == BOXES
    report = json.loads((out / "conversion_report.json").read_text())["splits"][split]
    assert report["boxes_read"] == BOXES + CROWD and report["boxes_written"] == BOXES
    assert report["dropped_by_reason"] == {"crowd": CROWD}


def test_prints_both_reports_and_the_next_commands_and_leaves_nothing_else(prepared):
    tmp, coco, out, result = prepared
    assert result.stdout.count(f"{BOXES + CROWD} read, {BOXES} written") == 2
    assert result.stdout.count(f"crowd {CROWD}: ") == 2
    val_json = coco / "annotations" / "instances_val2017.json"
    lines = [line.strip() for line in result.stdout.splitlines()]
    # run from tmp: the scripts are named by absolute path, the dataset relative to tmp, as typed
    assert any(line.startswith(f"python {REPO / 'train.py'} cfg=eiou.yaml data=datasets/coco/data.yaml imgsz=640")
               for line in lines)
    assert (f"python {REPO / 'val.py'} model=runs/train/eiou/weights/best.pt data=datasets/coco/data.yaml "
            f"coco_json={val_json}") in lines
    assert any(line.startswith(f"python {REPO / 'scripts' / 'benchmark.py'} cfgs=ciou,eiou,focal_eiou seeds=0,1,2 "
                               "data=datasets/coco/data.yaml") for line in lines)
    assert sorted(p.name for p in (tmp / "datasets").iterdir()) == ["coco"]  # no temporary folder left
    assert sorted(p.name for p in out.iterdir()) == ["conversion_report.json", "data.yaml", "images", "labels"]


# ------------------------------------------------------------------------------------ what val.py builds from it
def test_val_ground_truth_from_coco_json_maps_every_image_and_class(prepared):
    from ultralytics.data.converter import coco80_to_coco91_class

    from boxloss.data.yolo_format import split_images
    from boxloss.evaluation.coco_gt import image_ids_by_path
    from boxloss.yolo import val_run
    from boxloss.yolo.coco_val import class_to_category

    tmp, coco, out, _ = prepared
    data_yaml = str(out / "data.yaml")
    spec = yaml.safe_load((out / "data.yaml").read_text())
    gt = val_run._build_gt(data_yaml, "val", spec["coco_val_json"])
    official = json.loads(Path(spec["coco_val_json"]).read_text())
    assert len(gt["images"]) == IMAGES and len(gt["annotations"]) == BOXES + CROWD
    assert sum(a["iscrowd"] for a in gt["annotations"]) == CROWD  # kept: pycocotools ignores them
    images = split_images(data_yaml, "val")
    assert all(f.parent == out / "images" / "val2017" for f in images)
    by_path = image_ids_by_path(gt, images)
    official_ids = {image["file_name"]: image["id"] for image in official["images"]}
    assert {Path(p).name: i for p, i in by_path.items()} == official_ids
    # the model's class i (data.yaml order) is scored as COCO category coco_category_ids[i]
    names = [spec["names"][i] for i in range(80)]
    assert class_to_category(names, gt["categories"]) == spec["coco_category_ids"] == list(coco80_to_coco91_class())


# ------------------------------------------------------------------------------------- the README recipe, parsed
def readme_coco_commands() -> list[list[str]]:
    section = (REPO / "docs" / "datasets.md").read_text().split("\n## COCO\n", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S).group(1)
    return [shlex.split(line.split("   #")[0]) for line in block.splitlines() if line.strip()]


def test_readme_recipe_is_accepted_by_every_entry_point(prepared, monkeypatch):
    """Each command of docs/datasets.md's COCO recipe, with this layout's paths, passes its entry point's own checks (nothing is trained)."""
    from boxloss.benchmark.plan import build_plan
    from boxloss.data.yolo_format import check_dataset
    from boxloss.keyvalues import parse_keyvalues, split_keyvalues
    from boxloss.yolo import experiment, val_run

    tmp, coco, out, _ = prepared
    monkeypatch.chdir(tmp)  # where datasets/coco is
    commands = readme_coco_commands()
    assert [c[:2] for c in commands] == [["python", "scripts/prepare_coco.py"], ["python", "train.py"],
                                         ["python", "val.py"], ["python", "scripts/benchmark.py"]]
    prepare_args, train_args, val_args, bench_args = [
        [a.replace("/data/coco", str(coco)) for a in c[2:]] for c in commands]
    settings_of = prepare_script().settings_of
    assert settings_of(prepare_args) == settings_of([f"coco={coco}", "out=datasets/coco"])  # the fixture's

    settings = experiment.load_experiment(split_keyvalues(train_args)).settings
    check_dataset(settings["data"])
    assert settings["box_loss"] == "eiou" and settings["imgsz"] == 640 and settings["data"] == "datasets/coco/data.yaml"

    val_settings = parse_keyvalues(val_args, val_run.VAL_KEYS)
    assert val_settings["model"] == "runs/train/eiou/weights/best.pt"  # train.py's run directory for cfg=eiou.yaml
    assert Path(val_settings["coco_json"]) == coco / "annotations" / "instances_val2017.json"
    val_run._build_gt(val_settings["data"], "val", val_settings["coco_json"])

    plan = build_plan(bench_args)
    assert [spec.name for spec in plan.runs][:3] == ["ciou-s0", "ciou-s1", "ciou-s2"] and len(plan.runs) == 9
    assert plan.out == tmp / "runs" / "benchmark" / "coco"  # the folder README names for per-run checkpoints
    assert not (tmp / "runs").exists()


def test_ultralytics_accepts_the_data_yaml_offline(prepared):
    import boxloss.yolo  # noqa: F401  (offline settings and the local font)
    from ultralytics.data.utils import check_det_dataset

    tmp, coco, out, _ = prepared
    data = check_det_dataset(str(out / "data.yaml"))
    assert data["nc"] == 80 and Path(data["val"]) == out / "images" / "val2017"


# ----------------------------------------------------------------------------------------- subsets and failures
def test_a_subset_of_splits(tmp_path):
    coco = make_coco_layout(tmp_path / "coco")
    (coco / "train2017").unlink()  # not needed for splits=val2017
    result = prepare([f"coco={coco}", f"out={tmp_path / 'val-only'}", "splits=val2017"], tmp_path)
    assert result.returncode == 0, result.stderr
    spec = yaml.safe_load((tmp_path / "val-only" / "data.yaml").read_text())
    assert spec["train"] == spec["val"] == "images/val2017"
    assert sorted(p.name for p in (tmp_path / "val-only" / "images").iterdir()) == ["val2017"]
    assert "warning: no train* split" in result.stdout
    assert "val.py model=" in result.stdout and "train.py" not in result.stdout.split("next ")[1]


@pytest.mark.parametrize("missing", ["val2017", "annotations/instances_val2017.json",
                                     "annotations/instances_train2017.json", "."])
def test_a_missing_layout_piece_exits_2_with_one_line_naming_it_and_writes_nothing(tmp_path, missing):
    coco = make_coco_layout(tmp_path / "coco")
    gone = coco / missing
    if missing == ".":
        gone = tmp_path / "no-coco"
        coco = gone
    else:
        gone.unlink()
    assert_refused("scripts/prepare_coco.py", [f"coco={coco}", "out=datasets/coco"], str(gone), cwd=tmp_path,
                   quiet=True)


def test_an_existing_output_is_refused_without_force(prepared, tmp_path):
    tmp, coco, out, _ = prepared
    before = (out / "data.yaml").read_text()
    assert_refused("scripts/prepare_coco.py", [f"coco={coco}", f"out={out}"], "force=true", cwd=tmp_path,
                   watched=(out,))
    assert (out / "data.yaml").read_text() == before
