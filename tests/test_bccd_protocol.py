"""scripts/bccd_protocol.sh with DRY_RUN=1: converts BCCD once (official split), prints a benchmark command that
benchmark.py accepts, passes extra arguments through. Nothing is trained. Skips without ../shared/datasets.

The script is a bash entry point, so every test runs it as itself; those where it starts Python (to convert, or
for the benchmark's status and refusals) carry the slow mark."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, assert_refused

BCCD = REPO.parent / "shared" / "datasets" / "bccd" / "BCCD"
SCRIPT = REPO / "scripts" / "bccd_protocol.sh"


def test_the_script_is_valid_bash():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


@pytest.mark.slow
@pytest.mark.skipif(not BCCD.is_dir(), reason=f"BCCD not present at {BCCD} on this machine")
def test_dry_run_converts_once_and_prints_an_accepted_benchmark_command(tmp_path, monkeypatch):
    from boxloss.benchmark.plan import build_plan

    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "BCCD_YOLO": "bccd-yolo", "OUT": "bench",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}

    def run():
        result = subprocess.run(["bash", str(SCRIPT), "batch=8", "workers=0"], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result

    first = run()
    report = json.loads((tmp_path / "bccd-yolo" / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 205, "val": 87, "test": 72}
    assert report["boxes_written"] == 4886
    assert "converting" in first.stdout and "4888 read, 4886 written" in first.stdout

    second = run()
    assert "using the dataset" in second.stdout and "converting" not in second.stdout
    command = shlex.split(second.stdout.strip().splitlines()[-1])
    assert command[:2] == [sys.executable, "scripts/benchmark.py"]
    args = command[2:]
    assert "benchmark status: finished: 0 run(s)" in second.stdout
    assert "benchmark status: 10 more minute(s) at 153 runs/h would finish 25 run(s)" in second.stdout
    assert args == ["cfgs=ciou,eiou,focal_eiou,ciou_at_eiou_scale,eiou_matched",
                    "seeds=0,1,2,3,4,5,6,7,8,9", f"data={tmp_path / 'bccd-yolo' / 'data.yaml'}", "splits=val,test",
                    "epochs=40", "imgsz=320", "batch=16", "jobs=1", f"out={tmp_path / 'bench'}", "batch=8",
                    "workers=0"]

    monkeypatch.chdir(REPO)  # the script runs the benchmark from the repository root
    plan = build_plan(args)
    assert len(plan.runs) == 50 and plan.splits == ["val", "test"] and plan.out == tmp_path / "bench"
    settings = plan.runs[-1].settings
    assert settings["box_loss"] == "eiou" and settings["box"] == 4.3085  # the gain matched to CIoU's scale
    scaled = next(spec.settings for spec in plan.runs if spec.cfg == "ciou_at_eiou_scale")
    assert scaled["box_loss"] == "ciou" and scaled["box"] == 13.0557  # CIoU at EIoU's scale
    assert (settings["epochs"], settings["imgsz"], settings["batch"]) == (40, 320, 8)  # the later batch= wins
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bccd-yolo"]  # nothing trained, nothing else written


@pytest.mark.slow
def test_jobs_and_device_reach_the_benchmark_command(tmp_path):
    """JOBS= and DEVICE= (the GPU protocol) become jobs= and device=; an existing conversion is reused, not redone."""
    (tmp_path / "bccd-yolo").mkdir()
    (tmp_path / "bccd-yolo" / "data.yaml").write_text("path: .\ntrain: images/train\nval: images/val\nnames: [a]\n")
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "BCCD_YOLO": "bccd-yolo", "OUT": "bench",
           "JOBS": "4", "DEVICE": "0,1", "SEEDS": "0,1"}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    args = shlex.split(result.stdout.strip().splitlines()[-1])[2:]
    assert "jobs=4" in args and "device=0,1" in args and "seeds=0,1" in args and "epochs=40" in args
    assert args.index("device=0,1") < args.index(f"out={tmp_path / 'bench'}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bccd-yolo"]


RACCOON = REPO.parent / "shared" / "datasets" / "raccoon"


@pytest.mark.slow
@pytest.mark.skipif(not RACCOON.is_dir(), reason=f"raccoon not present at {RACCOON} on this machine")
def test_raccoon_converts_with_its_official_split_and_prints_its_protocol(tmp_path):
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "DATASET": "raccoon", "YOLO": "raccoon-yolo",
           "OUT": "bench", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "raccoon-yolo" / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 140, "val": 20, "test": 40}  # the official 40 test images kept
    assert report["boxes_written"] == 217
    args = shlex.split(result.stdout.strip().splitlines()[-1])[2:]
    assert args[:2] == ["cfgs=ciou,eiou,focal_eiou", "seeds=0,1,2,3,4,5,6,7,8,9"] and "epochs=100" in args
    assert f"data={tmp_path / 'raccoon-yolo' / 'data.yaml'}" in args


COCO128 = REPO.parent / "shared" / "datasets" / "coco128"
DOTA8 = REPO.parent / "shared" / "datasets" / "dota8"


@pytest.mark.slow
@pytest.mark.skipif(not COCO128.is_dir(), reason=f"coco128 not present at {COCO128} on this machine")
def test_coco128_obb_converts_to_oriented_boxes_and_prints_the_rotated_protocol(tmp_path):
    """DATASET=coco128-obb: coco128's objects as minimum-area rectangles (crowd regions dropped), re-split 96 / 32
    with seed 0, and the rotated losses benchmarked on val (there is no test split) at 640 px."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "DATASET": "coco128-obb", "YOLO": "c128",
           "OUT": "bench", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads((tmp_path / "c128" / "conversion_report.json").read_text())
    assert report["images_per_split"] == {"train": 96, "val": 32} and report["boxes_read"] == 929
    assert json.loads((tmp_path / "c128-all" / "conversion_report.json").read_text())["boxes_written"] == 929
    args = shlex.split(result.stdout.strip().splitlines()[-1])[2:]
    assert args[:2] == ["cfgs=probiou,kld,gwd,kfiou,riou,reiou", "seeds=0,1,2,3,4,5,6,7,8,9"]
    assert "splits=val" in args and "epochs=100" in args and "imgsz=640" in args
    assert f"data={tmp_path / 'c128' / 'data.yaml'}" in args



@pytest.mark.slow
@pytest.mark.skipif(not COCO128.is_dir(), reason=f"coco128 not present at {COCO128} on this machine")
def test_coco128_obb_cut_short_after_its_first_conversion_is_split_again(tmp_path):
    """A run stopped between the two conversions (the oriented-box dataset written, its split not) goes on from the
    conversion it has: convert.py would refuse to write that folder again."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "DATASET": "coco128-obb", "YOLO": "c128",
           "OUT": "bench", "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    first = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    shutil.rmtree(tmp_path / "c128")
    again = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "using the oriented-box conversion" in again.stdout and (tmp_path / "c128" / "data.yaml").is_file()

@pytest.mark.slow
@pytest.mark.skipif(not DOTA8.is_dir(), reason=f"dota8 not present at {DOTA8} on this machine")
def test_dota8_is_benchmarked_where_it_lies(tmp_path):
    """DATASET=dota8 is YOLO-OBB already: nothing is converted, its own dota8.yaml is the benchmark's data."""
    env = {**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, "DATASET": "dota8", "OUT": "bench",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run(["bash", str(SCRIPT)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    args = shlex.split(result.stdout.strip().splitlines()[-1])[2:]
    (data,) = [arg.removeprefix("data=") for arg in args if arg.startswith("data=")]
    assert (REPO / data).resolve() == (DOTA8 / "dota8.yaml").resolve()
    assert "splits=val" in args and "imgsz=1024" in args and list(tmp_path.iterdir()) == []


def test_an_unknown_dataset_is_refused(tmp_path):
    assert_refused(["bash", SCRIPT], [], "DATASET=coco must be bccd, raccoon, coco128-obb or dota8", cwd=tmp_path,
                   prog="bccd_protocol.sh", env={**os.environ, "DATASET": "coco"}, exact=True, quiet=True, timeout=60)


def protocol_env(tmp_path, **extra) -> dict:
    """The script's environment in ``tmp_path``, offline, with a tiny VOC folder as SRC (converting it takes a
    second; a step that should not convert must leave no bccd-yolo/)."""
    from helpers import offline_env
    from test_convert_hostile import voc_folder

    voc = voc_folder(tmp_path / "src")
    return {**offline_env(tmp_path / "network.log"), "PYTHON": sys.executable, "SRC": str(voc), "YOLO": "bccd-yolo",
            "OUT": "bench", **extra}


@pytest.mark.slow
def test_the_one_gpu_command_without_cuda_refuses_before_converting(tmp_path):
    """The README's ``JOBS=10 DEVICE=0 bash scripts/bccd_protocol.sh cuda_mps=true`` on a machine without CUDA: the
    benchmark's refusal, once, before anything is converted."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: device=0 is accepted here")
    env = protocol_env(tmp_path, JOBS="10", DEVICE="0")
    assert_refused(["bash", SCRIPT], ["cuda_mps=true"], "device=0: no CUDA device here; use device=cpu", cwd=tmp_path,
                   prog="benchmark.py", env=env, quiet=True, timeout=120)
    assert not (tmp_path / "bccd-yolo").exists()


@pytest.mark.slow
def test_a_refusal_that_needs_the_converted_dataset_is_said_once(tmp_path):
    """A source whose ImageSets list only a train split: the check cannot know before converting, the status step
    refuses the converted dataset, and the script ends there (the benchmark step used to say it again)."""
    result = subprocess.run(["bash", str(SCRIPT), "workers=0"], cwd=tmp_path,
                            env=protocol_env(tmp_path, SEEDS="0", CFGS="ciou"), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert result.stderr.splitlines() == [f"benchmark.py: error: dataset '{tmp_path / 'bccd-yolo' / 'data.yaml'}' "
                                          "has no 'val' entry"], result.stderr
    assert "converting" in result.stdout and (tmp_path / "bccd-yolo" / "data.yaml").is_file()
    assert not (tmp_path / "bench").exists()
