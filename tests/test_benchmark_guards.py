"""What guards a benchmark folder: its lock (one benchmark, ``summarize`` or ``rescore`` writing into a folder at a
time, tested with two real processes), and result files that are not finished runs (NaN or infinite metrics, AP -1 of a
split without labels: summarize warns and leaves them out, a re-run redoes them, a runner returning them fails).
"""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from boxloss.stats.records import read_result
from boxloss.benchmark.lock import LOCK_NAME
from boxloss.benchmark.matrix import run_matrix
from boxloss.benchmark.plan import build_plan
from boxloss.evaluation import AP_KEYS
from helpers import assert_refused, offline_env, run_in_process

ENVIRONMENT = {"machine": {"cpu": "test CPU", "cpu_count": 2, "gpu": None}, "versions": {"boxloss": "test"}}
BENCHMARK = ["cfgs=ciou", "seeds=0", "data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0"]


def metrics(cfg: str, seed: int, splits=("val",)) -> dict:
    values = {key: 0.8 - int(key[2:]) / 200 + 0.01 * seed for key in AP_KEYS}
    values.update(AP=sum(values[k] for k in AP_KEYS) / 10, APs=0.1, APm=0.2, APl=-1.0, AR100=0.5)
    return {split: dict(values) for split in splits}


def plan_for(out: Path, seeds: str = "0,1"):
    return build_plan(["cfgs=ciou", f"seeds={seeds}", "data=shapes-mini", "epochs=1", f"out={out}"],
                      command="python scripts/benchmark.py (test)")


def finished(out: Path, seeds: str = "0,1"):
    plan = plan_for(out, seeds)
    run_matrix(plan, lambda spec, slot=None: metrics(spec.cfg, spec.seed), log=lambda line: None,
               environment=ENVIRONMENT)
    return plan


def holder(folder: Path) -> subprocess.Popen:
    """A second process holding ``folder``'s lock until its stdin closes (it prints ``held`` once it has it)."""
    code = ("import sys; from boxloss.benchmark.lock import folder_lock\n"
            f"with folder_lock({str(folder)!r}, command='the other benchmark'):\n"
            "    print('held', flush=True); sys.stdin.read()\n")
    process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, env=offline_env(folder.parent / "holder-network.log"))
    assert process.stdout.readline().strip() == "held"
    return process


# ---------------------------------------------------------------------------------------------------------- lock
def test_a_second_benchmark_or_summarize_on_a_folder_in_use_fails_at_once(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    other = holder(out)
    try:
        assert_refused("scripts/benchmark.py", [*BENCHMARK, f"out={out}"],
                       f"out={out} is in use by PID {other.pid} on host {socket.gethostname()} (the other benchmark",
                       cwd=tmp_path)  # nothing written, not even a report
        assert_refused("scripts/benchmark.py", ["summarize", f"out={out}"], f"is in use by PID {other.pid}",
                       cwd=tmp_path)
        assert_refused("scripts/rescore.py", ["tide=true", f"out={out}"], f"is in use by PID {other.pid}",
                       cwd=tmp_path)  # a re-score writes records too: the same lock
        assert_refused("boxloss.cli.benchmark", ["rescore", "matches=true", f"out={out}"],
                       f"is in use by PID {other.pid}", cwd=tmp_path)
        elsewhere = tmp_path / "elsewhere"  # summarize reads a busy folder freely; only its target is locked
        result = run_in_process("scripts/benchmark.py", ["summarize", f"out={out}", f"into={elsewhere}"], tmp_path)
        assert result.returncode == 0, result.stderr
        assert (elsewhere / "report.md").is_file() and not (elsewhere / LOCK_NAME).exists()
    finally:
        other.communicate("")
    assert other.returncode == 0 and not (out / LOCK_NAME).exists()  # released: the folder is free again
    result = run_in_process("scripts/benchmark.py", ["summarize", f"out={out}"], tmp_path)
    assert result.returncode == 0 and "note:" not in result.stderr, result.stderr


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_note(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    other = holder(out)
    other.send_signal(signal.SIGKILL)  # dies holding it: the lock file stays, naming a PID that is gone
    other.wait()
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == other.pid
    result = run_in_process("scripts/benchmark.py", ["summarize", f"out={out}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (f"benchmark.py: note: took over the stale lock {out / LOCK_NAME} of PID {other.pid} on this host "
            "(no longer running)") in result.stderr
    assert not (out / LOCK_NAME).exists() and (out / "report.md").is_file()


def test_a_lock_of_another_host_is_not_taken_over(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    (out / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "node-elsewhere", "command": "benchmark.py x",
                                             "since": "2025-01-01T00:00:00+00:00"}))
    line = assert_refused("scripts/benchmark.py", ["summarize", f"out={out}"],
                          "is locked by PID 1 on host node-elsewhere", cwd=tmp_path)
    assert f"delete {out / LOCK_NAME}" in line


def dead_pid() -> int:
    """The PID of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def plant_symlink(out: Path, outside: Path) -> str:
    """A lock that is a symlink to a file outside out= holding a stale lock's record (this host, a dead PID): taking
    it over would overwrite that file."""
    (outside / "precious.json").write_text(json.dumps({"pid": dead_pid(), "host": socket.gethostname(),
                                                       "command": "benchmark.py", "since": "2025-01-01T00:00:00"}))
    os.symlink(outside / "precious.json", out / LOCK_NAME)
    return "a symbolic link"


def plant_hard_link(out: Path, outside: Path) -> str:
    plant_symlink(out, outside)
    (out / LOCK_NAME).unlink()
    os.link(outside / "precious.json", out / LOCK_NAME)
    return "a file with 2 hard links (one may lie outside out=)"


def plant_dangling_symlink(out: Path, outside: Path) -> str:
    os.symlink(outside / "not-there.json", out / LOCK_NAME)
    return "a symbolic link"


def plant_folder(out: Path, outside: Path) -> str:
    (out / LOCK_NAME).mkdir()
    return "a folder"


def plant_not_json(out: Path, outside: Path) -> str:
    (out / LOCK_NAME).write_text("[" * 100_000)  # nested past Python's recursion limit
    return "not the JSON record of a holder"


def plant_other_json(out: Path, outside: Path) -> str:
    (out / LOCK_NAME).write_text(json.dumps({"pid": "1", "host": socket.gethostname()}))
    return "not the JSON record of a holder"


@pytest.mark.parametrize("plant", [plant_symlink, plant_hard_link, plant_dangling_symlink, plant_folder,
                                   plant_not_json, plant_other_json])
def test_a_lock_that_is_not_a_lock_file_is_refused_and_nothing_is_written_through_it(tmp_path, plant):
    """A benchmark.lock is only ever a regular file boxloss wrote: a symlink or hard link to a file elsewhere (even
    one holding a stale record of this host), a folder or foreign content is one line, and nothing changes, neither
    in out= nor where the link points."""
    out, outside = tmp_path / "bench", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    what = plant(out, outside)
    assert_refused("boxloss.cli.benchmark", [*BENCHMARK, f"out={out}"],
                   f"out={out}: its lock {out / LOCK_NAME} is {what}, not a lock file boxloss wrote; nothing was "
                   "changed: remove it if no benchmark is running there", cwd=tmp_path, watched=(out, outside),
                   exact=True)


def test_a_lock_that_cannot_be_read_is_refused(tmp_path, monkeypatch):
    """Unreadable (another user's file, mode 000): opening it fails; simulated, since root reads any file."""
    import errno

    from boxloss.benchmark import lock

    out = tmp_path / "bench"
    out.mkdir()
    (out / LOCK_NAME).write_text("{}")
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if Path(path) == out / LOCK_NAME:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(lock.os, "open", denied)
    assert_refused("boxloss.cli.benchmark", [*BENCHMARK, f"out={out}"],
                   f"its lock {out / LOCK_NAME} is not readable (Permission denied), not a lock file", cwd=tmp_path,
                   watched=(out,))


def test_a_lock_that_is_a_fifo_is_refused_without_waiting_on_it(tmp_path):
    """Opening a FIFO for reading waits for a writer forever: the command, under a timeout."""
    out = tmp_path / "bench"
    finished(out)
    os.mkfifo(out / LOCK_NAME)
    assert_refused("scripts/benchmark.py", ["summarize", f"out={out}"], f"its lock {out / LOCK_NAME} is a FIFO",
                   cwd=tmp_path, watched=(out,), timeout=60)


@pytest.mark.parametrize("args", [[*BENCHMARK, "out={file}"], ["summarize", "out={out}", "into={file}"],
                                  [*BENCHMARK, "out={file}/below"]], ids=["out", "into", "below"])
def test_an_out_or_into_that_is_a_file_is_refused(tmp_path, args):
    out = tmp_path / "bench"
    finished(out)
    (tmp_path / "afile").write_text("precious")
    line = assert_refused("scripts/benchmark.py", [a.format(file=tmp_path / "afile", out=out) for a in args],
                          str(tmp_path / "afile"), cwd=tmp_path)
    assert any(words in line for words in ("is an existing file", "is a file", "is not a directory")), line
    assert (tmp_path / "afile").read_text() == "precious"


def test_a_refused_benchmark_leaves_no_folder_made_for_its_lock(tmp_path):
    """The lock creates out= to hold its file; a refusal after that (here: an unreachable Ray cluster) removes it."""
    pytest.importorskip("ray")
    assert_refused("scripts/benchmark.py", [*BENCHMARK, "engine=ray", "address=127.0.0.1:1",
                                            f"out={tmp_path / 'deep' / 'bench'}"],
                   "cannot reach a Ray cluster", cwd=tmp_path)  # and neither out= nor the parent made for it is left


# ------------------------------------------------------------------------------------------ unfinished results
def test_non_finite_or_undefined_metrics_are_not_finished_runs(tmp_path):
    out = tmp_path / "bench"
    plan = finished(out, "0,1,2")
    for seed, key, value in ((1, "AP50", math.nan), (2, "AP", -1.0)):
        path = out / "results" / f"ciou-s{seed}.json"
        record = json.loads(path.read_text())
        record["metrics"]["val"][key] = value
        path.write_text(json.dumps(record))  # json writes NaN as NaN, which Python reads back
    result = run_in_process("scripts/benchmark.py", ["summarize", f"out={out}"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert (f"skipping {out / 'results/ciou-s1.json'}: not a complete result (split 'val': AP50 is nan"
            in result.stderr)
    assert "ciou-s2.json: not a complete result (split 'val': AP is -1: the split has no labels" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stats"]["val"]["ciou"]["AP"]["n"] == 1  # only seed 0 is averaged

    calls = []
    run_matrix(plan, lambda spec, slot=None: calls.append(spec.name) or metrics(spec.cfg, spec.seed),
               log=lambda line: None, environment=ENVIRONMENT)
    assert calls == ["ciou-s1", "ciou-s2"]  # a re-run redoes exactly those
    assert all(read_result(out / "results" / f"ciou-s{s}.json") for s in range(3))


@pytest.mark.parametrize("value, reason", [(math.inf, "AP75 is inf"), (-1.0, "AP is -1: the split has no labels")])
def test_a_run_returning_non_finite_or_undefined_metrics_fails_and_writes_no_result(tmp_path, value, reason):
    plan = plan_for(tmp_path / "bench", "0")

    def runner(spec, slot=None):
        values = metrics(spec.cfg, spec.seed)
        values["val"]["AP75" if value == math.inf else "AP"] = value
        return values

    outcome = run_matrix(plan, runner, log=lambda line: None, environment=ENVIRONMENT)
    assert reason in outcome.failed["ciou-s0"] and not outcome.results
    assert not (tmp_path / "bench/results/ciou-s0.json").exists()


# ----------------------------------------------------------------------------------------------------------- Ray
def test_ray_resources_no_node_can_hold_are_refused():
    """A task is placed on one node: the largest node decides, not the cluster's total."""
    from boxloss.benchmark.ray_engine import check_fits
    from boxloss.errors import ConfigError

    nodes = [{"CPU": 8.0, "GPU": 1.0}, {"CPU": 32.0, "GPU": 0.0}, {"CPU": 4.0, "GPU": 2.0}]
    for cpus, gpus in ((8, 1), (32, 0), (4, 2), (2, 0.25)):
        check_fits(cpus, gpus, nodes)
    for cpus, gpus in ((16, 1), (33, 0), (8, 2), (1, 3)):  # each fits the cluster's total, no single node
        with pytest.raises(ConfigError, match=f"num_cpus={cpus:g} num_gpus={gpus:g}: no node of the Ray cluster"):
            check_fits(cpus, gpus, nodes)


def test_ray_request_above_the_local_cluster_fails_at_once_with_one_line(tmp_path):
    pytest.importorskip("ray")
    cpus = (os.cpu_count() or 1) + 1
    line = assert_refused("scripts/benchmark.py", [*BENCHMARK, "engine=ray", f"num_cpus={cpus}",
                                                   f"out={tmp_path / 'bench'}"],
                          f"num_cpus={cpus} num_gpus=0: no node of the Ray cluster has that much (its largest: "
                          f"{os.cpu_count()} CPU + ", cwd=tmp_path, timeout=120)
    assert "wait forever" in line


def test_the_plan_refuses_assigner_same_with_a_loss_that_is_not_iou_type(tmp_path):
    """The plan resolves every config through load_experiment: the same check as train.py, before anything."""
    assert_refused("scripts/benchmark.py", ["cfgs=ciou,focal_eiou", "seeds=0", "data=shapes-mini",
                                            "assigner_iou=same", f"out={tmp_path / 'bench'}"],
                   "assigner_iou=same ranks anchors by the box loss's own IoU-type similarity, and "
                   "box_loss=focal_eiou is not IoU-type", cwd=tmp_path)


@pytest.mark.parametrize("cfgs, data, nms, model", [("probiou,kld", "shapes-obb-mini", "diou", "yolo11n-obb.yaml"),
                                                    ("ciou,eiou", "shapes-mini", "exact", "yolov8n.yaml")])
def test_the_plan_refuses_an_nms_of_the_other_kind_of_box(tmp_path, cfgs, data, nms, model):
    """DIoU-NMS is axis-aligned, exact NMS rotated: refused for the configs whose models predict the other kind, before
    any training (val.py would refuse it after)."""
    assert_refused("scripts/benchmark.py", [f"cfgs={cfgs}", "seeds=0", f"data={data}", f"nms={nms}",
                                            f"out={tmp_path / 'bench'}"],
                   f"nms={nms} suppresses other boxes than those of config '{cfgs.split(',')[0]}' (model {model})",
                   cwd=tmp_path)
