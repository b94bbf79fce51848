"""A non-editable install (a wheel, as `pip install .` builds it) works from outside the checkout: the configs ship
as package data and the commands are console scripts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from helpers import OFFLINE_GUARD, REPO, assert_refused


def _copy_sources(target: Path) -> None:
    """The files a clone of this working tree has (tracked and not ignored ones, in a git checkout), symlinks kept."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                                capture_output=True, check=True).stdout
        files = [name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [str(p.relative_to(REPO)) for p in REPO.rglob("*")
                 if not p.is_dir() and not {".venv", "runs", ".git", "datasets"} & set(p.relative_to(REPO).parts)]
    for name in files:
        source, destination = REPO / name, target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            os.symlink(os.readlink(source), destination)
        elif source.is_file():
            shutil.copy2(source, destination)


@pytest.mark.slow
def test_wheel_installed_non_editable_trains_from_outside_the_checkout(tmp_path):
    source = tmp_path / "source"
    _copy_sources(source)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(dist), str(source)], check=True, capture_output=True, timeout=600)
    wheel = next(dist.glob("boxloss-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], check=True,
                   capture_output=True, timeout=300)
    # the dependencies (torch, ultralytics, ...) come from this environment; boxloss itself only from the wheel
    site = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work = tmp_path / "work"  # outside the checkout: no cfg/, no train.py here
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(OFFLINE_GUARD), "BOXLOSS_NETWORK_LOG": str(tmp_path / "network.log")}
    where = subprocess.run([str(python), "-c", "import boxloss, boxloss.yolo.experiment as e; "
                            "print(boxloss.__file__); print(sorted(p.name for p in e.CFG_DIR.glob('*.yaml')))"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert where.returncode == 0, where.stderr[-2000:]
    module_file, configs = where.stdout.strip().splitlines()[-2:]
    assert Path(module_file).is_relative_to(venv) and "eiou.yaml" in configs and "default.yaml" in configs

    train = subprocess.run([str(venv / "bin" / "boxloss-train"), "cfg=eiou.yaml", "data=shapes-mini", "epochs=1",
                            "imgsz=64", "batch=8", "workers=0", "plots=False", f"project={work / 'runs'}"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert train.returncode == 0, train.stderr[-3000:]
    assert (work / "runs" / "eiou" / "weights" / "best.pt").is_file()
    assert "boxloss: box_loss=eiou " in train.stdout + train.stderr
    assert not (tmp_path / "network.log").exists()

    line = assert_refused([venv / "bin" / "boxloss-val"], ["modle=x.pt"], "unknown key 'modle'", cwd=work,
                          prog="val.py", env=env)
    assert line.startswith("val.py: error: unknown key 'modle'"), line
