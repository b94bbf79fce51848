"""The benchmark matrix (plan, skip, resume, interrupts), its statistics and report, and one real end-to-end run.

Everything but the last test runs a fake runner (a callable standing in for train + evaluate), so the resume and
interrupt semantics are checked in milliseconds; the real runner's subprocess handling is checked with tiny fake
train.py / val.py scripts.
"""

import importlib.util
import json
import math
import os
import re
from pathlib import Path

import pytest

import sys

from boxloss.benchmark import results as benchmark_results
from boxloss.stats import records, report_folder, summary
from boxloss.benchmark.matrix import run_matrix
from boxloss.benchmark.plan import Plan, RunSpec, build_plan, start_order
from boxloss.benchmark.results import RunFailed, check_existing
from boxloss.stats.records import read_result
from boxloss.benchmark.runner import SubprocessRunner
from boxloss.errors import ConfigError
from boxloss.evaluation import AP_KEYS, KEYPOINT_METRIC_KEYS, METRIC_KEYS
from helpers import REPO, assert_refused, offline_env, run_entry

ENVIRONMENT = {"machine": {"cpu": "test CPU", "cpu_count": 2, "gpu": None}, "versions": {"boxloss": "test"}}


def plan_for(out: Path, *extra: str):
    return build_plan(["cfgs=ciou,eiou", "seeds=0,1", "data=shapes-mini", "epochs=1", f"out={out}", *extra],
                      command="python scripts/benchmark.py (test)")


def fake_metrics(cfg: str, seed: int, splits=("val",)) -> dict:
    """Hand-chosen numbers: AP at IoU t = base - t/2, base 0.8 (ciou) or 0.82 (eiou), + 0.01 per seed."""
    base = (0.8 if cfg == "ciou" else 0.82) + 0.01 * seed
    values = {key: base - int(key[2:]) / 200 for key in AP_KEYS}
    values.update(AP=sum(values[k] for k in AP_KEYS) / 10, APs=0.1, APm=0.2, APl=-1.0, AR100=0.5)
    return {split: dict(values) for split in splits}


class FakeRunner:
    """Records the runs it is asked for; raises ``error`` on the run named ``fail_on``."""

    def __init__(self, fail_on: str | None = None, error: BaseException | None = None, metrics=fake_metrics):
        self.calls, self.fail_on, self.error, self.metrics = [], fail_on, error, metrics

    def __call__(self, spec, slot=None):
        self.calls.append(spec.name)
        self.slots = getattr(self, "slots", {})
        self.slots[spec.name] = slot
        if spec.name == self.fail_on:
            raise self.error
        return self.metrics(spec.cfg, spec.seed, tuple(spec.splits))


def run(plan, runner):
    return run_matrix(plan, runner, log=lambda line: None, environment=ENVIRONMENT)


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


# ---------------------------------------------------------------------------------------------------------------
# Plan and input checks
# ---------------------------------------------------------------------------------------------------------------
def test_plan_resolves_every_run_and_writes_nothing(tmp_path):
    plan = plan_for(tmp_path / "bench", "imgsz=128")
    assert [spec.name for spec in plan.runs] == ["ciou-s0", "ciou-s1", "eiou-s0", "eiou-s1"]
    assert plan.baseline == "ciou" and plan.splits == ["val"]
    spec = plan.runs[3]
    assert spec.settings["box_loss"] == "eiou" and spec.settings["seed"] == 1 and spec.settings["epochs"] == 1
    assert spec.settings["imgsz"] == 128 and spec.settings["name"] == "eiou-s1"
    assert f"project={tmp_path / 'bench' / 'train'}" in spec.train_argv and "exist_ok=True" in spec.train_argv
    assert spec.result_path == tmp_path / "bench" / "results" / "eiou-s1.json"
    assert not (tmp_path / "bench").exists()


def _count_parsed_values(monkeypatch) -> list[str]:
    """Every command-line value the key=value layer reads (boxloss.keyvalues.parse_value), in order."""
    from boxloss import keyvalues

    parsed, parse_value = [], keyvalues.parse_value
    monkeypatch.setattr(keyvalues, "parse_value", lambda text: parsed.append(text) or parse_value(text))
    return parsed


def test_the_plan_parses_its_arguments_once(tmp_path, monkeypatch):
    """Each argument is read once, however many configs the plan resolves (they get the parsed values, not text)."""
    parsed = _count_parsed_values(monkeypatch)
    argv = ["cfgs=ciou,eiou,giou", "seeds=0,1", "data=shapes-mini", "epochs=1", "lr0=1e-3", f"out={tmp_path / 'b'}"]
    plan = build_plan(argv)
    assert sorted(parsed) == sorted(arg.partition("=")[2] for arg in argv)
    assert [spec.settings["lr0"] for spec in plan.runs] == [0.001] * 6


def test_the_plan_reads_the_datasets_labels_once_for_all_its_configs(tmp_path, mini_data, monkeypatch):
    """Three configs on one data YAML: each label file of the train and val splits is read once (by the one check of
    the dataset for the configs' task), not once per config plus once for the plan."""
    from collections import Counter

    from boxloss.data import yolo_format

    reads, read_labels = Counter(), yolo_format.read_labels
    monkeypatch.setattr(yolo_format, "read_labels", lambda path, *args, **kwargs: reads.update([str(path)]) or
                        read_labels(path, *args, **kwargs))
    plan = build_plan(["cfgs=ciou,eiou,giou", "seeds=0", f"data={mini_data}", f"out={tmp_path / 'b'}"])
    assert len(plan.runs) == 3
    spec = yolo_format.read_data_yaml(mini_data)
    images = [image for split in ("train", "val") for image in yolo_format.split_images(spec, split)]
    assert len(images) == 48 + 24 and set(reads) == {str(yolo_format.label_path(image)) for image in images}
    assert set(reads.values()) == {1}


def test_data_checks_check_each_split_once_per_task(mini_data, monkeypatch):
    """DataChecks is check_data with a memory: a later call checks only the splits not checked yet for that task."""
    from boxloss.data import embedded

    calls, check_data = [], embedded.check_data
    monkeypatch.setattr(embedded, "check_data", lambda data, splits, **kw: calls.append((list(splits), kw["task"]))
                        or check_data(data, splits, **kw))
    checks = embedded.DataChecks()
    first = checks(str(mini_data), ("train",))
    assert checks(str(mini_data), ("train", "val")).names == first.names == checks(str(mini_data), ("val",)).names
    assert calls == [(["train"], "detect"), (["val"], "detect")]
    with pytest.raises(ConfigError, match="keypoint labels"):
        checks(str(mini_data), ("train",), task="pose")  # another task checks again (and fails: no kpt_shape)
    with pytest.raises(ConfigError, match="keypoint labels"):  # a failed check is not remembered
        checks(str(mini_data), ("train",), task="pose")
    assert checks("shapes-mini") is None and calls[-1] == (["train", "val"], "detect")


def load_script():
    spec = importlib.util.spec_from_file_location("benchmark_script", REPO / "scripts" / "benchmark.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("args, message", [
    (["cfgs=ciou,nope", "seeds=0", "data=shapes-mini"], "config file 'nope' not found"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "epochz=3"], "unknown key 'epochz' (did you mean epochs"),
    (["cfgs=ciou", "seeds=0,x", "data=shapes-mini"], "not a non-negative integer"),
    (["cfgs=ciou", "seeds=0,0", "data=shapes-mini"], "twice"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "epochs=-1"], "epochs"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "seed=1"], "seed= is set by the benchmark"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "splits=test"], "has no 'test' split"),
    (["cfgs=ciou", "seeds=0", "data=missing.yaml"], "dataset 'missing.yaml' not found"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "baseline=eiou"], "baseline='eiou' is not one of cfgs"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "force=maybe"], "force="),
    (["cfgs=ciou", "data=shapes-mini"], "seeds= is required"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "focal_eiou_gamma=-1"], "out of range"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "oops"], "not of the form key=value"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "jobs=0"], "jobs=0 is out of range: must be >= 1"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "engine=spark"],
     "engine='spark' is out of range: must be one of local, ray"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "engine=ray", "address=127.0.0.1:1"], "cannot reach a Ray cluster"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "address=127.0.0.1:1"], "address= and num_gpus= are for engine=ray"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "nms=soft"], "nms='soft' is out of range"),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "mps=true"],  # CUDA's, while device=mps is Apple's Metal
     "mps= is the old spelling; use cuda_mps=true (CUDA's Multi-Process Service; device=mps is Apple's Metal)"),
    (["status", "cfgs=ciou", "seeds=0", "data=shapes-mini", "mps=true"], "mps= is the old spelling; use cuda_mps="),
    (["cfgs=ciou", "seeds=0", "data=shapes-mini", "--jobs", "2"], "--jobs is the old spelling; use jobs=..."),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, args, message):
    assert_refused("boxloss.cli.benchmark", [*args, f"out={tmp_path / 'bench'}"], message, cwd=tmp_path, quiet=True)


def test_summarize_without_results_exits_2(tmp_path):
    assert_refused("boxloss.cli.benchmark", ["summarize", f"out={tmp_path / 'nothing'}"], cwd=tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# Skip, resume, interrupts
# ---------------------------------------------------------------------------------------------------------------
def test_finished_runs_are_skipped(tmp_path):
    plan = plan_for(tmp_path / "bench")
    first = FakeRunner()
    outcome = run(plan, first)
    assert first.calls == ["ciou-s0", "ciou-s1", "eiou-s0", "eiou-s1"] and outcome.ran == first.calls
    result = read_result(plan.runs[2].result_path)
    assert result["metrics"] == fake_metrics("eiou", 0)
    assert result["settings"]["box_loss"] == "eiou" and result["elapsed_s"] >= 0
    assert result["machine"] == ENVIRONMENT["machine"] and result["command"] == plan.command

    again = FakeRunner()
    outcome = run(plan_for(tmp_path / "bench"), again)
    assert again.calls == [] and outcome.skipped == first.calls and set(outcome.results) == set(first.calls)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), RuntimeError("driver bug")], ids=["interrupt", "exception"])
def test_interrupt_or_exception_in_run_k_keeps_runs_before_it(tmp_path, error):
    plan = plan_for(tmp_path / "bench")
    with pytest.raises(type(error)):
        run(plan, FakeRunner(fail_on="eiou-s0", error=error))
    results = tmp_path / "bench" / "results"
    # finished, kept, but not published: their seeds have no eiou run yet (results/ only ever holds whole seeds)
    assert list(results.glob("*.json")) == []
    assert sorted(p.name for p in (results / "waiting").iterdir()) == ["ciou-s0.json", "ciou-s1.json"]
    for spec in plan.runs[:2]:
        assert read_result(spec.waiting_path)["metrics"] == fake_metrics(spec.cfg, spec.seed)
    assert no_temp_files(tmp_path)

    resumed = FakeRunner()
    run(plan_for(tmp_path / "bench"), resumed)
    assert resumed.calls == ["eiou-s0", "eiou-s1"]
    assert all(read_result(spec.result_path) for spec in plan.runs)


def test_a_failed_run_is_recorded_and_the_matrix_goes_on(tmp_path):
    plan = plan_for(tmp_path / "bench")
    outcome = run(plan, FakeRunner(fail_on="ciou-s1", error=RunFailed("training exited with status 1")))
    assert outcome.failed == {"ciou-s1": "training exited with status 1"}
    assert outcome.ran == ["ciou-s0", "eiou-s0", "eiou-s1"] and not plan.runs[1].result_path.exists()
    resumed = FakeRunner()
    run(plan, resumed)
    assert resumed.calls == ["ciou-s1"]


def test_truncated_incomplete_and_temp_files_are_not_finished(tmp_path):
    plan = plan_for(tmp_path / "bench")
    run(plan, FakeRunner())
    results = tmp_path / "bench" / "results"
    text = (results / "ciou-s0.json").read_text()
    (results / "ciou-s0.json").write_text(text[: len(text) // 2])  # truncated
    os.replace(results / "ciou-s1.json", results / f".ciou-s1.json.{os.getpid()}.tmp")  # a stray temp file
    incomplete = json.loads((results / "eiou-s0.json").read_text())
    del incomplete["metrics"]["val"]["AP95"]
    (results / "eiou-s0.json").write_text(json.dumps(incomplete))

    assert [spec.name for spec in benchmark_results.scan(plan).pending] == ["ciou-s0", "ciou-s1", "eiou-s0"]
    assert [r["run"] for r in records.load_results(results, log=lambda line: None)] == ["eiou-s1"]
    resumed = FakeRunner()
    run(plan, resumed)
    assert resumed.calls == ["ciou-s0", "ciou-s1", "eiou-s0"]
    assert all(read_result(spec.result_path) for spec in plan.runs)


def test_other_settings_are_refused_unless_forced(tmp_path):
    run(plan_for(tmp_path / "bench"), FakeRunner())
    changed = plan_for(tmp_path / "bench", "imgsz=160")
    with pytest.raises(ConfigError, match=r"4 finished run\(s\).*imgsz: 256 -> 160.*force=true"):
        check_existing(changed)
    untouched = FakeRunner()
    with pytest.raises(ConfigError):
        run(changed, untouched)
    assert untouched.calls == []
    assert read_result(changed.runs[0].result_path)["settings"]["imgsz"] == 256

    forced = FakeRunner()
    run(plan_for(tmp_path / "bench", "imgsz=160", "force=true"), forced)
    assert len(forced.calls) == 4
    assert read_result(changed.runs[0].result_path)["settings"]["imgsz"] == 160
    assert len(list((tmp_path / "bench" / "results" / "superseded").glob("*.json"))) == 4
    assert check_existing(changed).pending == []


def test_changing_the_splits_is_a_settings_change(tmp_path):
    run(plan_for(tmp_path / "bench"), FakeRunner())
    plan = plan_for(tmp_path / "bench")
    plan_with_test = Plan(**{**plan.__dict__, "runs": [
        RunSpec(s.cfg, s.seed, s.settings, {**s.evaluation, "splits": ["val", "test"]}, s.train_argv, s.out)
        for s in plan.runs]})
    with pytest.raises(ConfigError, match="splits"):
        check_existing(plan_with_test)


# ---------------------------------------------------------------------------------------------------------------
# Statistics, report, plot
# ---------------------------------------------------------------------------------------------------------------
def test_mean_and_sample_std():
    stat = summary.mean_std([0.1, 0.2, 0.3])
    assert stat["mean"] == pytest.approx(0.2) and stat["std"] == pytest.approx(0.1) and stat["n"] == 3  # n - 1
    assert summary.mean_std([0.5]) == {"mean": 0.5, "std": None, "n": 1}
    assert summary.mean_std([]) == {"mean": None, "std": None, "n": 0}


def test_paired_differences_use_common_seeds():
    difference = summary.paired_difference({0: 0.5, 1: 0.6, 2: 0.7}, {0: 0.4, 1: 0.6, 2: 0.5, 3: 0.9})
    assert difference["values"] == pytest.approx({0: 0.1, 1: 0.0, 2: 0.2})
    assert difference["mean"] == pytest.approx(0.1) and difference["std"] == pytest.approx(0.1)
    assert summary.within_seed_noise(difference) is True  # |0.1| <= 0.1
    clear = summary.paired_difference({0: 0.60, 1: 0.62}, {0: 0.30, 1: 0.31})  # +0.30, +0.31
    assert clear["std"] == pytest.approx(0.01 / math.sqrt(2)) and summary.within_seed_noise(clear) is False
    assert summary.within_seed_noise(summary.paired_difference({0: 0.6}, {0: 0.5})) is None


def hand_results(tmp_path):
    """Three seeds; eiou's AP differs from ciou's by +0.03, +0.00, -0.03 (noise) and AP50 by a steady +0.02."""
    def metrics(cfg, seed, splits):
        values = fake_metrics("ciou", 0, splits)["val"]
        if cfg == "eiou":
            values = {**values, "AP": values["AP"] + (0.03, 0.0, -0.03)[seed], "AP50": values["AP50"] + 0.02}
        return {split: dict(values) for split in splits}

    plan = build_plan(["cfgs=ciou,eiou", "seeds=0,1,2", "data=shapes-mini", "epochs=1", f"out={tmp_path / 'b'}"],
                      command="python scripts/benchmark.py cfgs=ciou,eiou seeds=0,1,2 data=shapes-mini epochs=1")
    outcome = run(plan, FakeRunner(metrics=metrics))
    return plan, list(outcome.results.values())


def test_summary_statistics_on_hand_chosen_numbers(tmp_path):
    _, results = hand_results(tmp_path)
    stats = summary.summarize(results, "ciou")
    ciou_ap = fake_metrics("ciou", 0)["val"]["AP"]
    eiou = stats["stats"]["val"]["eiou"]
    assert eiou["AP"]["mean"] == pytest.approx(ciou_ap) and eiou["AP"]["std"] == pytest.approx(0.03)
    assert eiou["AP"]["n"] == 3 and stats["stats"]["val"]["ciou"]["AP"]["std"] == pytest.approx(0.0)
    assert eiou["APl"] == {"mean": None, "std": None, "n": 0, "seeds": []}  # -1: nothing to measure
    paired = stats["paired"]["val"]["eiou"]
    assert paired["AP"]["values"] == pytest.approx({0: 0.03, 1: 0.0, 2: -0.03})
    assert paired["AP"]["mean"] == pytest.approx(0.0) and paired["AP"]["std"] == pytest.approx(0.03)
    assert paired["AP50"]["mean"] == pytest.approx(0.02) and paired["AP50"]["std"] == pytest.approx(0.0)
    assert stats["within_seed_noise"]["val"]["eiou"] == {"AP": True, "AP50": False, "AP75": True, "AP90": True}


def test_report_and_plot_are_written(tmp_path):
    plan, results = hand_results(tmp_path)
    paths = report_folder.write_summary(plan.out, results, "ciou", plan.cfgs, log=lambda line: None)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = paths["report"].read_text()
    for text in ("python scripts/benchmark.py cfgs=ciou,eiou seeds=0,1,2 data=shapes-mini epochs=1",
                 "`shapes-mini` (embedded synthetic dataset)", "epochs: 1", "image size: 256", "seeds: 0, 1, 2",
                 "CPU test CPU", "GPU none", "total time:", "![AP vs IoU threshold](ap_vs_iou.png)",
                 "| config", "AP95", "ciou (baseline)", "Paired difference against ciou",
                 "eiou vs ciou (val): AP +0.0000, 95 % CI [-0.0745, +0.0745] over 3 seeds",
                 "these seeds resolve differences above 0.0745 AP at 95 %", "resolved: AP50",
                 "What these seeds can resolve", "| eiou   | AP50   |"):
        assert text in report, text
    saved = json.loads(paths["summary"].read_text())
    assert saved["paired"]["val"]["eiou"]["AP"]["values"]["2"] == pytest.approx(-0.03)
    # by hand: differences (+0.03, 0, -0.03), s = 0.03, t_{0.975,2} = 4.302652729749464: half-width 0.0745241
    power = saved["power"]["val"]["eiou"]
    assert power["AP"]["resolvable"] == pytest.approx(4.302652729749464 * 0.03 / 3 ** 0.5, rel=1e-9)
    assert power["AP"]["resolved"] is False and power["AP50"]["resolved"] is True  # AP50: +0.02 every seed
    n = power["AP"]["seeds_needed"]["0.005"]  # the smallest n with t_{0.975,n-1} 0.03 / √n <= 0.005
    from scipy import stats as scipy_stats

    assert scipy_stats.t.ppf(0.975, n - 1) * 0.03 / n ** 0.5 <= 0.005
    assert scipy_stats.t.ppf(0.975, n - 2) * 0.03 / (n - 1) ** 0.5 > 0.005
    assert no_temp_files(plan.out)

    assert load_script().main(["summarize", f"out={plan.out}"]) == 0  # the separate entry: results only
    assert "Summarized by:" in paths["report"].read_text()


def test_summarize_a_subset_into_another_folder(tmp_path, capsys):
    """cfgs= keeps those configs (in that order), baseline= pairs against one of them, into= leaves out's report."""
    plan, results = hand_results(tmp_path)
    report_folder.write_summary(plan.out, results, "ciou", plan.cfgs, log=lambda line: None)
    before = (plan.out / "report.md").read_text()
    into = tmp_path / "pair"
    assert load_script().main(["summarize", f"out={plan.out}", "cfgs=eiou,ciou", "baseline=eiou", f"into={into}"]) == 0
    saved = json.loads((into / "summary.json").read_text())
    assert saved["baseline"] == "eiou" and list(saved["paired"]["val"]) == ["ciou"]
    assert saved["paired"]["val"]["ciou"]["AP"]["values"] == pytest.approx({"0": -0.03, "1": 0.0, "2": 0.03})
    assert (plan.out / "report.md").read_text() == before
    line = assert_refused("boxloss.cli.benchmark", ["summarize", f"out={plan.out}", "cfgs=ciou,diou"], cwd=tmp_path)
    assert line.endswith("cfgs: 'diou' has no results in " + str(plan.out / "results")), line
    assert_refused("boxloss.cli.benchmark", ["summarize", f"out={plan.out}", "cfgs=ciou", "baseline=eiou"],
                   "baseline='eiou' has no results", cwd=tmp_path)


# ---------------------------------------------------------------------------------------------------------------
# The real runner, with fake children
# ---------------------------------------------------------------------------------------------------------------
FAKE_TRAIN = r'''
import sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[1:])
if args.get("fail"):
    print("something went wrong in the child", flush=True)
    sys.exit(3)
run = Path(args["project"]) / args["name"]
(run / "weights").mkdir(parents=True, exist_ok=True)
print("      Epoch    GPU_mem   box_loss   cls_loss   dfl_loss    box_iou  Instances       Size")
for epoch in (1, 2):
    for pct in (0, 50, 100):
        sys.stdout.write(f"\r\x1b[K        {epoch}/2         0G      {3 - epoch:.3f}      4.000      1.500      "
                         f"2.000         34        128: {pct}% ━━━ 3/6 1.2it/s 5s")
    sys.stdout.write("\n\r                 Class     Images  Instances      Box(P: 100%\n")
    print(f"                   all         24        128      0.{epoch}      0.2      0.3      0.1{epoch}")
(run / "weights" / "best.pt").write_bytes(b"weights")
'''

FAKE_VAL = r'''
import json, sys
from pathlib import Path
args = dict(a.split("=", 1) for a in sys.argv[1:])
run = Path(args["project"]) / args["name"]
run.mkdir(parents=True)
keys = [f"AP{t}" for t in range(50, 100, 5)] + ["AP", "APs", "APm", "APl", "AR100"]
(run / "metrics.json").write_text(json.dumps({k: 0.25 for k in keys}))
(run / "tide.json").write_text(json.dumps({"AP50": {"ap": 0.5, "delta_ap": {"Loc": 0.125}}}))
print(f"val.py: run directory {run}")
'''


def test_subprocess_runner_tees_logs_forwards_epochs_and_restarts_from_scratch(tmp_path):
    (tmp_path / "train.py").write_text(FAKE_TRAIN)
    (tmp_path / "val.py").write_text(FAKE_VAL)
    spec = plan_for(tmp_path / "bench").runs[0]
    stale = spec.train_dir / "weights" / "last.pt"  # a partial earlier attempt
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"old")
    lines = []
    runner = SubprocessRunner(train_command=(sys.executable, str(tmp_path / "train.py")),
                              val_command=(sys.executable, str(tmp_path / "val.py")), log=lines.append)
    metrics = runner(spec)
    tide = {"AP50": {"ap": 0.5, "delta_ap": {"Loc": 0.125}}}
    assert metrics == {"val": {**{key: 0.25 for key in METRIC_KEYS}, "tide": tide}}  # tide.json rides along
    assert benchmark_results.tide_by_split(metrics, ["val"]) == {"val": tide}
    assert benchmark_results.families_by_split(metrics, ["val"]) is None  # a detector: no extra family
    assert not stale.exists() and (spec.train_dir / "weights" / "best.pt").is_file()
    assert lines[:2] == [
        "    ciou-s0 epoch 1/2  box_loss 2.000  cls_loss 4.000  dfl_loss 1.500  | val P 0.1  R 0.2  mAP50 0.3  "
        "mAP50-95 0.11",
        "    ciou-s0 epoch 2/2  box_loss 1.000  cls_loss 4.000  dfl_loss 1.500  | val P 0.2  R 0.2  mAP50 0.3  "
        "mAP50-95 0.12"]
    assert lines[2].startswith("    ciou-s0 val: AP 0.2500")
    log = spec.log_path.read_text()
    assert "$ " in log and "50%" in log and "val.py: run directory" in log  # the whole output, every frame

    failing = RunSpec(spec.cfg, spec.seed, spec.settings, spec.evaluation, (*spec.train_argv, "fail=1"),
                             spec.out)
    with pytest.raises(RunFailed, match="training exited with status 3: something went wrong in the child"):
        runner(failing)


def test_records_carry_the_tide_of_every_split_when_the_runner_returns_it(tmp_path):
    def with_tide(cfg, seed, splits):
        return {split: {**values, "tide": {"AP50": {"ap": values["AP50"], "split": split}}}
                for split, values in fake_metrics(cfg, seed, splits).items()}

    plan = plan_for(tmp_path / "bench")
    run(plan, FakeRunner(metrics=with_tide))
    record = read_result(plan.runs[1].result_path)
    assert record["tide"] == {"val": {"AP50": {"ap": fake_metrics("ciou", 1)["val"]["AP50"], "split": "val"}}}
    assert list(record["metrics"]["val"]) == list(METRIC_KEYS)  # the metrics stay metrics.json's COCO numbers

    other = plan_for(tmp_path / "other")
    run(other, FakeRunner())  # a runner without TIDE (or a val.py from before it): no "tide" key
    assert "tide" not in read_result(other.runs[0].result_path)
    assert benchmark_results.tide_by_split({"val": {"tide": {}}, "test": {}}, ["val", "test"]) is None


def test_records_carry_the_mask_and_pose_families_beside_the_box_metrics(tmp_path):
    """A segmentation model's metrics.json holds its mask metrics under "mask" (a pose model's under "pose"): the
    record keeps the box metrics in "metrics" and each family per split in "families"; a family missing on a split,
    or incomplete, is left out."""
    def with_masks(cfg, seed, splits):
        return {split: {**values, "mask": {**{k: values[k] / 2 for k in METRIC_KEYS}, "extra": split}}
                for split, values in fake_metrics(cfg, seed, splits).items()}

    plan = plan_for(tmp_path / "bench")
    run(plan, FakeRunner(metrics=with_masks))
    record = read_result(plan.runs[1].result_path)
    expected = {k: fake_metrics("ciou", 1)["val"][k] / 2 for k in METRIC_KEYS}
    assert record["families"] == {"mask": {"val": {**expected, "extra": "val"}}}
    assert list(record["metrics"]["val"]) == list(METRIC_KEYS)

    other = plan_for(tmp_path / "other")
    run(other, FakeRunner())
    assert "families" not in read_result(other.runs[0].result_path)
    pose = {k: 0.5 for k in KEYPOINT_METRIC_KEYS}
    assert benchmark_results.families_by_split({"val": {"pose": pose}, "test": {"pose": pose}}, ["val", "test"]) == {
        "pose": {"val": pose, "test": pose}}
    assert benchmark_results.families_by_split({"val": {"pose": pose}, "test": {}}, ["val", "test"]) is None
    incomplete = {"val": {**fake_metrics("ciou", 0)["val"], "mask": {"AP": 0.5}}}
    assert "mask" not in benchmark_results.checked_metrics(incomplete, plan.runs[0])["val"]


def test_results_evaluated_by_another_backend_still_count_as_finished(tmp_path):
    """The backends agree to 1e-12, so the hotcoco default does not re-run results recorded with pycocotools."""
    plan = plan_for(tmp_path / "bench")
    assert plan.runs[0].evaluation["backend"] == "hotcoco"
    run(plan, FakeRunner())
    for spec in plan.runs:
        record = read_result(spec.result_path)
        record["evaluation"]["backend"] = "pycocotools"
        spec.result_path.write_text(json.dumps(record))
    status = check_existing(plan_for(tmp_path / "bench"))
    assert list(status.done) == [spec.name for spec in plan.runs] and not status.stale


# ---------------------------------------------------------------------------------------------------------------
# End to end
# ---------------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_benchmark_end_to_end(tmp_path, mini_data):
    out = tmp_path / "bench"
    args = ["cfgs=ciou,eiou", "seeds=0", "data=shapes-mini", "epochs=1", "imgsz=128", "batch=8", "workers=0",
            "plots=False", "splits=val", f"out={out}"]
    network_log = tmp_path / "network.log"
    result = run_entry("scripts/benchmark.py", args, tmp_path, network_log, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert not network_log.exists(), network_log.read_text()[:2000]
    assert "[1/2] ciou-s0: start" in result.stdout and "[2/2] eiou-s0: done in" in result.stdout
    assert "eiou-s0 epoch 1/1  box_loss" in result.stdout

    for cfg in ("ciou", "eiou"):
        record = read_result(out / "results" / f"{cfg}-s0.json")
        assert record is not None and record["settings"]["box_loss"] == cfg and record["settings"]["epochs"] == 1
        assert list(record["metrics"]["val"]) == list(METRIC_KEYS)
        tide = json.loads((out / "val" / f"{cfg}-s0-val" / "tide.json").read_text())
        assert record["tide"] == {"val": tide} and tide["AP50"]["ap"] == pytest.approx(record["metrics"]["val"]["AP50"])
        assert record["versions"]["ultralytics"] == "8.4.190" and record["elapsed_s"] > 0
        assert (out / "logs" / f"{cfg}-s0.log").read_text().count("$ ") == 2  # train, then val
    report = (out / "report.md").read_text()
    assert "Paired difference against ciou" in report and "shapes-mini" in report and "scripts/benchmark.py" in report
    assert (out / "ap_vs_iou.png").read_bytes()[:4] == b"\x89PNG"
    assert no_temp_files(out)

    again = run_entry("scripts/benchmark.py", args, tmp_path, network_log, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "2 of 2 runs already finished, skipped" in again.stdout and "start" not in again.stdout
    assert not network_log.exists()


@pytest.mark.slow
def test_benchmark_of_segmentation_models_records_the_mask_family(tmp_path, mini_seg_data):
    """scripts/benchmark.py with model=yolo11n-seg.yaml on shapes-seg-mini: two real runs; each result file keeps the
    box metrics under "metrics" and the mask metrics of val.py's metrics.json under "families"."""
    out = tmp_path / "bench"
    args = ["cfgs=ciou,eiou", "seeds=0", "model=yolo11n-seg.yaml", "data=shapes-seg-mini", "epochs=1", "imgsz=64",
            "batch=8", "workers=0", "plots=False", f"out={out}"]
    result = run_entry("scripts/benchmark.py", args, tmp_path, tmp_path / "network.log", timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[2/2] eiou-s0: done in" in result.stdout and "(COCO); mask AP " in result.stdout
    for cfg in ("ciou", "eiou"):
        record = read_result(out / "results" / f"{cfg}-s0.json")
        assert record is not None and record["settings"]["model"] == "yolo11n-seg.yaml"
        metrics = json.loads((out / "val" / f"{cfg}-s0-val" / "metrics.json").read_text())
        assert record["families"] == {"mask": {"val": metrics["mask"]}}
        assert list(record["metrics"]["val"]) == list(METRIC_KEYS)
        assert record["metrics"]["val"] == {k: metrics[k] for k in METRIC_KEYS}
    assert not (tmp_path / "network.log").exists()


def test_coco_json_is_checked_and_passed_to_every_evaluation(tmp_path, mini_data):


    official = tmp_path / "instances_val.json"
    official.write_text("{}")
    base = ["cfgs=ciou", "seeds=0", f"data={mini_data}", f"out={tmp_path / 'out'}"]
    plan = build_plan([*base, f"coco_json={official}"])
    assert all(run.evaluation["coco_json"] == str(official.resolve()) for run in plan.runs)
    assert "coco_json" not in build_plan(base).runs[0].evaluation  # absent unless given: old results still match
    with pytest.raises(ConfigError, match="coco_json=.* not found"):
        build_plan([*base, f"coco_json={tmp_path / 'missing.json'}"])
    with pytest.raises(ConfigError, match="single split"):
        build_plan([*base, f"coco_json={official}", "splits=val,test"])


# ---------------------------------------------------------------------------------------------------------------
# Parallel and distributed engines
# ---------------------------------------------------------------------------------------------------------------
def test_local_slots_place_runs_on_devices_and_split_the_threads():
    from boxloss.benchmark.matrix import local_slots

    slots = local_slots(4, "0,1", cpu_count=16)
    assert [s.device for s in slots] == ["0", "1", "0", "1"] and {s.threads for s in slots} == {4}  # 2 per GPU
    cpu = local_slots(2, None, cpu_count=2)
    assert [s.device for s in cpu] == [None, None] and [s.threads for s in cpu] == [1, 1]
    assert local_slots(3, "cpu", cpu_count=2)[2].threads == 1  # never 0


def test_every_engine_says_how_many_runs_go_at_once():
    """The ETA divides by it and every result records it: 1 for one at a time, the slots of jobs=N, and for Ray the
    runs its nodes hold (per node the smaller of CPU/num_cpus and GPU/num_gpus, floored, summed)."""
    from boxloss.benchmark.matrix import LocalEngine, SerialEngine, local_slots
    from boxloss.benchmark.ray_engine import cluster_concurrency

    assert SerialEngine().concurrency == 1 and LocalEngine(local_slots(3, "cpu", cpu_count=6)).concurrency == 3
    assert cluster_concurrency(2, 0.25, [{"CPU": 8.0, "GPU": 1.0}]) == 4  # 4 by CPU, 4 by GPU
    assert cluster_concurrency(1, 0.5, [{"CPU": 16.0, "GPU": 2.0}, {"CPU": 4.0, "GPU": 0.0}]) == 4  # GPU-bound
    assert cluster_concurrency(1, 0.0, [{"CPU": 16.0, "GPU": 2.0}, {"CPU": 4.0, "GPU": 0.0}]) == 20  # CPU only
    assert cluster_concurrency(3, 0.0, [{"CPU": 8.0, "GPU": 0.0}, {"CPU": 2.0, "GPU": 0.0}]) == 2  # 2 + 0
    assert cluster_concurrency(0.3, 0.0, [{"CPU": 0.9, "GPU": 0.0}]) == 3  # 0.9 / 0.3 is 2.9999999999999996
    assert cluster_concurrency(4, 0.0, [{"CPU": 2.0, "GPU": 0.0}]) == 1  # at least one


def test_the_eta_and_the_records_use_the_engines_concurrency(tmp_path):
    """Four runs of 100 s each, four at once: after the first, 3 more take 100 · 3 / 4 = 75 s; each record says 4.
    Under Ray the status rate reads the recorded concurrency (the plan cannot know the cluster): 4 · 3600 / 100."""
    from boxloss.benchmark.matrix import Completion, Slot
    from boxloss.benchmark.status import measured_rate

    class FourAtOnce:
        description, concurrency = "four at once (test)", 4

        def run(self, specs, runner, on_start, clock=None):
            for spec in specs:
                on_start(spec, Slot())
                yield Completion(spec, runner(spec, Slot()), elapsed=100.0)

    lines = []
    run_matrix(plan_for(tmp_path / "bench"), FakeRunner(), engine=FourAtOnce(), log=lines.append,
               environment=ENVIRONMENT)
    done = [line for line in lines if ": done in " in line]
    assert "ETA 0:01:15 for 3 more" in done[0] and "ETA 0:00:25 for 1 more" in done[2], done
    records = [read_result(path) for path in sorted((tmp_path / "bench" / "results").glob("*.json"))]
    assert [record["concurrency"] for record in records] == [4, 4, 4, 4]
    assert measured_rate(plan_for(tmp_path / "bench")) == pytest.approx((3600 / 100, 4, 1))  # local, jobs=1
    assert measured_rate(plan_for(tmp_path / "bench", "engine=ray")) == pytest.approx((4 * 3600 / 100, 4, 4))
    for path in (tmp_path / "bench" / "results").glob("*.json"):  # records written before runs recorded it
        record = read_result(path)
        del record["concurrency"]
        path.write_text(json.dumps(record))
    assert measured_rate(plan_for(tmp_path / "bench", "engine=ray")) == pytest.approx((3600 / 100, 4, 1))


class SlowRunner(FakeRunner):
    """Each run takes a moment, so runs overlap; records the largest number running at once."""

    def __init__(self, *args, delay=0.2, **kwargs):
        import threading

        super().__init__(*args, **kwargs)
        self.delay, self.active, self.most, self.lock = delay, 0, 0, threading.Lock()

    def __call__(self, spec, slot=None):
        import time

        with self.lock:
            self.active += 1
            self.most = max(self.most, self.active)
        try:
            time.sleep(self.delay)
            return super().__call__(spec, slot)
        finally:
            with self.lock:
                self.active -= 1


def local(jobs):
    from boxloss.benchmark.matrix import LocalEngine, local_slots

    return LocalEngine(local_slots(jobs, None, cpu_count=2))


def test_jobs_2_runs_two_at_once_and_writes_the_same_results(tmp_path):
    parallel, serial = plan_for(tmp_path / "parallel"), plan_for(tmp_path / "serial")
    runner = SlowRunner()
    outcome = run_matrix(parallel, runner, engine=local(2), log=lambda line: None, environment=ENVIRONMENT)
    assert runner.most == 2 and sorted(outcome.ran) == sorted(spec.name for spec in parallel.runs)
    assert {slot.threads for slot in runner.slots.values()} == {1}  # 2 cores split between 2 jobs
    run(serial, FakeRunner())
    for a, b in zip(parallel.runs, serial.runs):
        assert read_result(a.result_path)["metrics"] == read_result(b.result_path)["metrics"]
    assert list(outcome.results) == [spec.name for spec in parallel.runs]  # plan order, whatever finished first


def test_jobs_2_interrupt_keeps_finished_runs_and_the_rerun_skips_them(tmp_path):
    plan = plan_for(tmp_path / "bench")
    with pytest.raises(KeyboardInterrupt):
        run_matrix(plan, SlowRunner(fail_on="eiou-s0", error=KeyboardInterrupt()), engine=local(2),
                   log=lambda line: None, environment=ENVIRONMENT)
    finished = {p.stem for p in (tmp_path / "bench" / "results").glob("**/*.json")}  # published or waiting
    assert finished and "eiou-s0" not in finished and no_temp_files(tmp_path)
    for spec in plan.runs:
        if spec.name in finished:
            result = read_result(spec.result_path) or read_result(spec.waiting_path)
            assert result["metrics"] == fake_metrics(spec.cfg, spec.seed)
    resumed = FakeRunner()
    run_matrix(plan_for(tmp_path / "bench"), resumed, engine=local(2), log=lambda line: None,
               environment=ENVIRONMENT)
    assert set(resumed.calls) == {spec.name for spec in plan.runs} - finished


def test_jobs_2_failed_run_is_reported_and_not_retried(tmp_path):
    plan = plan_for(tmp_path / "bench")
    lines = []
    runner = SlowRunner(fail_on="ciou-s1", error=RunFailed("training exited with status 1"))
    outcome = run_matrix(plan, runner, engine=local(2), log=lines.append, environment=ENVIRONMENT)
    assert outcome.failed == {"ciou-s1": "training exited with status 1"} and runner.calls.count("ciou-s1") == 1
    assert any("ciou-s1: FAILED" in line for line in lines)
    assert any("running: " in line and "," in line.split("running: ")[1] for line in lines)  # both jobs shown


def test_progress_never_lists_a_finished_run_as_running(tmp_path):
    """A worker takes its next run only after the finished one is recorded: with one job every start line lists
    just the run starting; with two, never a run whose done line came before it."""
    for jobs, runner in ((1, FakeRunner()), (2, SlowRunner(delay=0.05))):
        lines = []
        run_matrix(plan_for(tmp_path / f"jobs{jobs}"), runner, engine=local(jobs), log=lines.append,
                   environment=ENVIRONMENT)
        done = set()
        for line in lines:
            name = line.split("] ", 1)[1].split(":", 1)[0] if line.startswith("[") else None
            if ": done in " in line:
                done.add(name)
            elif ": start " in line:
                running = {part.split(" (")[0] for part in line.split("running: ")[1].split("), ")}
                assert name in running and not running & done, line
                assert jobs == 2 or running == {name}, line
        assert len(done) == 4
    assert local(1).slots[0].describe() == "default device"  # no device= given: the run's own setting


def test_summary_is_the_same_from_the_matrix_and_from_summarize(tmp_path):
    """summary.json of a jobs=2 matrix equals the one `summarize` writes later from the same finished results."""
    plan = plan_for(tmp_path / "bench")
    outcome = run_matrix(plan, SlowRunner(delay=0.05), engine=local(2), log=lambda line: None,
                         environment=ENVIRONMENT)
    report_folder.write_summary(plan.out, list(outcome.results.values()), plan.baseline, plan.cfgs,
                                log=lambda line: None)
    first = (plan.out / "summary.json").read_text()
    results = records.load_results(plan.out / "results", log=lambda line: None)
    report_folder.write_summary(plan.out, results, log=lambda line: None)
    assert (plan.out / "summary.json").read_text() == first


def test_parallel_runs_start_seed_by_seed_and_publish_whole_seeds(tmp_path):
    """jobs > 1 defaults to seed-major order; a result is published only with the rest of its seed."""
    plan = plan_for(tmp_path / "bench", "jobs=2", "seeds=0,1,2")
    assert plan.execution.order == "seed" and plan_for(tmp_path / "b1").execution.order == "config"
    assert [s.name for s in start_order(plan.runs, "seed")] == ["ciou-s0", "eiou-s0", "ciou-s1", "eiou-s1",
                                                               "ciou-s2", "eiou-s2"]
    assert start_order(plan.runs, "config") == plan.runs
    lines = []
    runner = FakeRunner(fail_on="eiou-s1", error=RunFailed("boom"))
    outcome = run_matrix(plan, runner, engine=local(1), log=lines.append, environment=ENVIRONMENT)
    assert runner.calls == ["ciou-s0", "eiou-s0", "ciou-s1", "eiou-s1", "ciou-s2", "eiou-s2"]
    results = tmp_path / "bench" / "results"
    assert sorted(p.stem for p in results.glob("*.json")) == ["ciou-s0", "ciou-s2", "eiou-s0", "eiou-s2"]
    assert outcome.waiting == ["ciou-s1"] and sorted(outcome.results) == ["ciou-s0", "ciou-s2", "eiou-s0", "eiou-s2"]
    assert any("ciou-s1: done" in line and "waits for the rest of seed 1" in line for line in lines)
    assert any("1 finished run(s) wait for the rest of their seed" in line for line in lines)
    again = FakeRunner()
    run_matrix(plan_for(tmp_path / "bench", "jobs=2", "seeds=0,1,2"), again, engine=local(1), log=lambda line: None,
               environment=ENVIRONMENT)
    assert again.calls == ["eiou-s1"] and not list((results / "waiting").glob("*.json"))
    assert sorted(p.stem for p in results.glob("*.json")) == sorted(s.name for s in plan.runs)


def test_a_crash_between_publishing_renames_is_finished_by_the_next_start(tmp_path):
    plan = plan_for(tmp_path / "bench")
    run(plan, FakeRunner())
    for spec in plan.runs[:1]:  # as if the process died after the first of seed 0's two renames
        os.replace(spec.result_path, spec.waiting_path)
    assert check_existing(plan).pending == []  # a waiting result counts as finished
    assert benchmark_results.publish_complete_seeds(plan) == ["ciou-s0"]
    assert read_result(plan.runs[0].result_path)["metrics"] == fake_metrics("ciou", 0)


def _sigint_as_at_a_terminal() -> None:
    """In the benchmark's child, before exec: SIGINT back to its default, so Python turns it into KeyboardInterrupt.
    A test suite started as a background job of a non-interactive shell (``bash .ci/run &``) inherits SIGINT ignored,
    and Python leaves an ignored SIGINT ignored: the interrupt would never arrive."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_an_interrupted_parallel_matrix_leaves_only_whole_seeds(tmp_path, mini_data):
    """Real tiny runs, jobs=2, SIGINT right after the third run finishes (a third seed keeps the matrix busy however
    close the two runs of seed 1 finish): results/ holds whole seeds only (every config with its baseline), a
    finished run of a broken seed waits, nothing is lost, and a re-run trains only what is missing."""
    import signal
    import subprocess

    out = tmp_path / "bench"
    args = ["cfgs=ciou,eiou", "seeds=0,1,2", "data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0",
            "plots=False", "splits=val", "jobs=2", f"out={out}"]
    network_log = tmp_path / "network.log"
    process = subprocess.Popen([sys.executable, str(REPO / "scripts" / "benchmark.py"), *args], cwd=tmp_path,
                               env=offline_env(network_log), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, preexec_fn=_sigint_as_at_a_terminal)
    lines, done = [], 0
    for line in process.stdout:
        lines.append(line)
        if re.search(r"\] \w+-s\d: done in", line):
            done += 1
            if done == 3:
                process.send_signal(signal.SIGINT)
                break
    rest, _ = process.communicate(timeout=600)
    log = "".join(lines) + rest
    assert done == 3 and process.returncode == 130, log[-3000:]
    assert [line for line in lines if ": start" in line][:2] == [line for line in lines if ": start" in line
                                                                 and "-s0:" in line]  # seed 0 first
    published = {p.stem for p in (out / "results").glob("*.json")}
    waiting = {p.stem for p in (out / "results" / "waiting").glob("*.json")}
    assert {"ciou-s0", "eiou-s0"} <= published and len(published | waiting) >= 3, log[-3000:]
    for seed in {name.rsplit("-s", 1)[1] for name in published}:
        assert {f"ciou-s{seed}", f"eiou-s{seed}"} <= published  # never a config without its baseline
    again = run_entry("scripts/benchmark.py", args, tmp_path, network_log, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    started = set(re.findall(r"\] (\w+-s\d): start", again.stdout))
    every_run = {f"{cfg}-s{seed}" for cfg in ("ciou", "eiou") for seed in range(3)}
    assert started == every_run - published - waiting
    assert {p.stem for p in (out / "results").glob("*.json")} == every_run
    assert not network_log.exists()


@pytest.mark.slow
def test_ray_engine_end_to_end_with_tiny_runs_interrupt_and_failure(tmp_path, mini_data):
    """engine=ray on a local cluster: real one-epoch runs as Ray tasks, results written by the driver; a failing run
    is reported and not retried; a re-run skips what finished."""
    pytest.importorskip("ray")
    out = tmp_path / "bench"
    args = ["cfgs=ciou,eiou", "seeds=0", "data=shapes-mini", "epochs=1", "imgsz=64", "batch=8", "workers=0",
            "plots=False", "splits=val", f"out={out}", "engine=ray", "num_cpus=1"]
    network_log = tmp_path / "network.log"
    result = run_entry("scripts/benchmark.py", args, tmp_path, network_log, timeout=1200)
    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(p.name for p in (out / "results").glob("*.json")) == ["ciou-s0.json", "eiou-s0.json"]
    assert "local Ray cluster" in result.stdout and "ciou-s0: done" in result.stdout
    again = run_entry("scripts/benchmark.py", args, tmp_path, network_log, timeout=600)
    assert again.returncode == 0 and "2 of 2 runs already finished" in again.stdout
    # Ray's dashboard probes the link-local cloud-metadata endpoints once at start-up, whatever its usage-stats
    # setting (ray/_common/usage/usage_lib.py, 1 s timeout; refused here, harmless offline); nothing else may try.
    records = re.split(r"\n(?=\S)", network_log.read_text()) if network_log.exists() else []
    assert [r.splitlines()[0] for r in records if r.strip() and "ray/_common/usage/usage_lib.py" not in r] == []


@pytest.mark.slow
def test_ray_engine_reports_a_failed_run_and_keeps_results_through_an_interrupt(tmp_path):
    """In-process local cluster, fake runners shipped to the workers: a RunFailed run is reported, not retried; an
    interrupt in one task stops the matrix with the finished results kept and a re-run doing only the rest."""
    ray = pytest.importorskip("ray")
    import sys

    from boxloss.benchmark.ray_engine import RayEngine

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
    try:
        plan = plan_for(tmp_path / "bench")
        outcome = run_matrix(plan, FakeRunner(fail_on="ciou-s1", error=RunFailed("training exited with status 1")),
                             engine=RayEngine(num_cpus=1), log=lambda line: None, environment=ENVIRONMENT)
        assert outcome.failed == {"ciou-s1": "training exited with status 1"}
        assert sorted(outcome.ran) == ["ciou-s0", "eiou-s0", "eiou-s1"]
        recorded = [read_result(spec.result_path if spec.result_path.exists() else spec.waiting_path)
                    for spec in plan.runs if spec.name != "ciou-s1"]
        assert {record["concurrency"] for record in recorded} == {2}  # the cluster's 2 CPUs, one per run
        # a record names the machine and versions of the node the task ran on, not the driver's
        from boxloss.benchmark.results import machine_info, versions

        record = outcome.results["eiou-s0"]
        assert record["machine"]["cpu"] == machine_info()["cpu"] and record["versions"] == versions()
        other = plan_for(tmp_path / "other")
        with pytest.raises(KeyboardInterrupt):
            run_matrix(other, FakeRunner(fail_on="ciou-s0", error=KeyboardInterrupt()), engine=RayEngine(num_cpus=2),
                       log=lambda line: None, environment=ENVIRONMENT)
        assert not other.runs[0].result_path.exists() and no_temp_files(tmp_path)
        finished = {p.stem for p in (tmp_path / "other" / "results").glob("*.json")}
        rest = run_matrix(plan_for(tmp_path / "other"), FakeRunner(), engine=RayEngine(num_cpus=1),
                          log=lambda line: None, environment=ENVIRONMENT)
        assert set(rest.ran) == {spec.name for spec in other.runs} - finished and set(rest.skipped) == finished
    finally:
        ray.shutdown()
