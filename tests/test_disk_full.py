"""A full disk (or quota, or a read-only file system) is one line naming the file that could not be written, exit
status 2, and no partial output left where the command made it (``boxloss.keyvalues.run_cli`` maps
``boxloss._io.WRITE_FAILURES``; ``boxloss._io.writing`` names the file of a write or copy cut short).

The disk is "filled" in this process: the one write under test raises ``OSError(ENOSPC)`` as a write on a full file
system does (with no file name: the layer must supply it), after leaving part of its file, so that a partial output
would be seen. Training keeps its run folder: ``last.pt``, complete, is what ``resume=`` continues from.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import pathlib
import shutil
from pathlib import Path

import pytest

from helpers import assert_refused

FULL = "No space left on device"


def full_disk(monkeypatch, owner, name: str, target_of, pattern: str, on_call: int = 1) -> list[Path]:
    """Make ``owner.<name>`` (a function or method that writes a file; ``target_of(args)`` is that file) fail with
    ENOSPC, after writing a few bytes there, on its ``on_call``-th call whose file name matches the glob
    ``pattern``. The error names files as CPython's does: none for a write, the source then the target for
    ``shutil.copyfile`` (its ``sendfile`` path). Returns the files it was called for."""
    original, calls = getattr(owner, name), []

    def failing(*args, **kwargs):
        target = Path(target_of(args))
        if fnmatch.fnmatch(target.name, pattern):
            calls.append(target)
            if len(calls) == on_call:
                with open(target, "wb") as partial:
                    partial.write(b"partial")
                if name == "copyfile":
                    raise OSError(errno.ENOSPC, FULL, str(args[0]), None, str(target))
                raise OSError(errno.ENOSPC, FULL)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, failing)
    return calls


def test_convert_copy_on_a_full_disk_is_one_line_and_leaves_no_output(tmp_path, monkeypatch):
    """``convert.py copy=true``: the second image copied fills the disk; the half-made output and the folders made
    for out= are removed."""
    from test_convert_hostile import voc_folder

    voc = voc_folder(tmp_path / "src")
    work = tmp_path / "work"
    work.mkdir()
    calls = full_disk(monkeypatch, shutil, "copyfile", lambda args: args[1], "*.jpg", on_call=2)
    line = assert_refused("boxloss.cli.convert", ["voc", f"src={voc}", "out=deep/out", "copy=true"],
                          f"/images/train/b.jpg: {FULL}", cwd=work, watched=(tmp_path,))
    assert line == f"convert.py: error: cannot write {calls[1]}: {FULL}"
    assert calls[1].parent.parent.parent.name.startswith(".out.")  # the output's temporary folder, gone
    assert not (work / "deep").exists()


def test_val_on_a_full_disk_is_one_line_and_leaves_no_run_folder(tmp_path, mini_data, monkeypatch):
    """``val.py project=``: metrics.json cannot be written; the staging folder and the project folders made for it
    are removed."""
    import boxloss.yolo  # noqa: F401  (offline settings)
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    from boxloss.data.synthetic import CLASS_NAMES

    untrained = YOLO("yolov8n.yaml")
    untrained.model = DetectionModel("yolov8n.yaml", nc=len(CLASS_NAMES), verbose=False)
    untrained.model.names = dict(enumerate(CLASS_NAMES))  # the dataset's classes: evaluated, not refused
    model = tmp_path / "model.pt"
    untrained.save(model)
    work = tmp_path / "work"
    work.mkdir()
    calls = full_disk(monkeypatch, pathlib.Path, "write_text", lambda args: args[0], ".*.tmp")
    line = assert_refused("boxloss.cli.val", [f"model={model}", f"data={mini_data}", "imgsz=64", "batch=8",
                                              "workers=0", "project=deep/val"], FULL, cwd=work)
    written = calls[0].with_name(calls[0].name[1:].rsplit(".", 2)[0])  # .<name>.<pid>.tmp -> <name>
    assert line == f"val.py: error: cannot write {written}: {FULL}"
    assert written.parent.name.startswith(".val.") and not (work / "deep").exists()  # the staging folder, gone


@pytest.mark.slow
def test_train_on_a_full_disk_is_one_line_and_keeps_last_pt(tmp_path, monkeypatch, capfd):
    """``train.py``: best.pt cannot be saved after epoch 1. One line naming it; last.pt, written just before, is
    complete (it loads, and resume= would continue from it); best.pt is not left half-written."""
    import torch

    from boxloss.cli import train

    calls = full_disk(monkeypatch, pathlib.Path, "write_bytes", lambda args: args[0], ".best.pt.*.tmp")
    monkeypatch.chdir(tmp_path)
    status = train.main(["cfg=eiou.yaml", "data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0",
                         "plots=False", f"project={tmp_path / 'runs'}", "name=full"])
    weights = tmp_path / "runs" / "full" / "weights"
    assert calls and status == 2
    stderr = capfd.readouterr().err
    assert stderr.splitlines() == [f"train.py: error: cannot write {weights / 'best.pt'}: {FULL}"], stderr[-3000:]
    assert not (weights / "best.pt").exists() and not calls[0].exists()
    assert torch.load(weights / "last.pt", map_location="cpu", weights_only=False)["epoch"] == 0
