"""boxloss/stats: what a complete record is, which runs are paired (and which pairs are left out, said in the report),
the records re-scored from a run going wherever the run goes, and the report folder written whole or not at all.

Benchmarks here run the fake runner of test_benchmark (hand-chosen metrics: eiou's AP is ciou's + 0.02 on every seed),
so a paired difference is known in advance: +0.02 on every seed kept, nothing on a seed left out.
"""

import copy
import errno
import json
import math
import shutil
from pathlib import Path

import pytest

from boxloss.benchmark.results import scan
from boxloss.stats import pairs, report, report_folder, summary
from boxloss.stats.records import read_result, result_problem
from helpers import assert_refused
from test_benchmark import ENVIRONMENT, FakeRunner, plan_for, run


def finished(out: Path, *extra: str):
    """ciou and eiou on seeds 0 and 1, finished by the fake runner."""
    plan = plan_for(out, *extra)
    run(plan, FakeRunner())
    return plan


def records(out: Path) -> dict[str, dict]:
    return {path.stem: json.loads(path.read_text()) for path in sorted((out / "results").glob("*.json"))}


def rewrite(out: Path, run_name: str, change) -> None:
    path = out / "results" / f"{run_name}.json"
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record, indent=2))


def summarize_command(out: Path, *extra: str) -> tuple[dict, str]:
    """``benchmark.py summarize`` in this process: (summary.json, report.md) of the report folder."""
    from boxloss.cli import benchmark

    assert benchmark.main(["summarize", f"out={out}", "bootstrap=0", *extra]) == 0
    into = Path(next((arg[5:] for arg in extra if arg.startswith("into=")), out))
    return json.loads((into / "summary.json").read_text()), (into / "report.md").read_text()


# ---------------------------------------------------------------------------------------------------------------
# A complete record: every number finite
# ---------------------------------------------------------------------------------------------------------------
def test_a_non_finite_number_anywhere_makes_a_record_unfinished(tmp_path):
    plan = finished(tmp_path / "bench")
    record = read_result(plan.runs[0].result_path)
    assert result_problem(record) is None
    for where, change in [("tide.val.AP50.delta_ap.Loc", lambda r: r.update(
                              tide={"val": {"AP50": {"ap": 0.5, "delta_ap": {"Loc": math.nan}}}})),
                          ("curve.mAP50-95.1", lambda r: r.update(curve={"epoch": [1, 2], "mAP50-95": [0.1, math.inf],
                                                                           "mAP50": [0.2, 0.3]})),
                          ("families.mask.val.AP", lambda r: r.update(families={"mask": {"val": {"AP": -math.inf}}}))]:
        broken = copy.deepcopy(record)
        change(broken)
        problem = result_problem(broken)
        assert problem is not None and problem.startswith(f"{where} is "), problem


def test_a_record_with_a_nan_tide_is_rerun_and_summarize_skips_it_with_a_line(tmp_path, capsys):
    """The issue's probe: one NaN in a record's TIDE used to crash summarize in statistics.stdev, and the record
    counted as finished; now the run is unfinished (a re-run repairs it) and summarize names it and goes on."""
    out = tmp_path / "bench"
    plan = finished(out)
    rewrite(out, "eiou-s1", lambda r: r.update(tide={"val": {"AP50": {"ap": 0.5, "delta_ap": {"Loc": math.nan}}}}))
    assert [spec.name for spec in scan(plan).pending] == ["eiou-s1"]
    saved, _ = summarize_command(out)
    err = capsys.readouterr().err
    assert "skipping" in err and "eiou-s1.json: not a complete result (tide.val.AP50.delta_ap.Loc is nan" in err
    assert saved["runs"] == ["ciou-s0", "ciou-s1", "eiou-s0"]
    again = FakeRunner()
    run(plan_for(out), again)
    assert again.calls == ["eiou-s1"] and read_result(out / "results" / "eiou-s1.json") is not None


def test_a_nan_in_a_learning_curve_is_said_not_printed(tmp_path):
    out = tmp_path / "bench"
    plan = finished(out)
    for spec in plan.runs:  # the records hold no curve: summarize reads each run's results.csv
        rows = [(epoch, 0.1 * epoch, 0.2 * epoch) for epoch in range(1, 5)]
        if spec.name == "eiou-s1":
            rows[2] = (3, math.nan, 0.6)
        spec.train_dir.mkdir(parents=True)
        (spec.train_dir / "results.csv").write_text("epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n" + "".join(
            f"{e},{m50},{m}\n" for e, m, m50 in rows))
    saved, text = summarize_command(out)
    assert saved["pairing"]["curves_left_out"] == {"eiou-s1": "mAP50-95 is nan at epoch 3"}
    assert saved["curves"]["configs"]["eiou"]["n"] == 1 and saved["curves"]["configs"]["ciou"]["n"] == 2
    assert ("- learning curves left out (a point that is not a number: training diverged, or ultralytics logged "
            "none): eiou-s1 (mAP50-95 is nan at epoch 3)") in text
    assert "nan" not in text.replace(str(tmp_path), "").replace("is nan at", "")  # in no table


# ---------------------------------------------------------------------------------------------------------------
# Pairing
# ---------------------------------------------------------------------------------------------------------------
def test_runs_made_alike_are_paired_and_new_records_say_what_pairing_needs(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    eiou = records(out)["eiou-s0"]
    assert eiou["cfg_keys"] == ["box_loss"] and eiou["machine"] == ENVIRONMENT["machine"]
    result = summary.summarize(list(records(out).values()), "ciou")
    assert result["pairing"]["left_out"] == {} and result["pairing"]["assumed"] == {}
    assert result["paired"]["val"]["eiou"]["AP"]["values"] == pytest.approx({0: 0.02, 1: 0.02})


@pytest.mark.parametrize("change, reason", [
    (lambda r: r["versions"].update(boxloss="other"), "package versions differ (boxloss other vs test)"),
    (lambda r: r["machine"].update(cpu="other CPU", gpu="NVIDIA H200"),
     "trained on different machines (CPU other CPU, GPU NVIDIA H200 vs CPU test CPU, GPU none)"),
], ids=["versions", "machine"])
def test_a_pair_trained_with_other_versions_or_on_another_machine_is_left_out(tmp_path, change, reason):
    out = tmp_path / "bench"
    finished(out)
    rewrite(out, "eiou-s1", change)
    saved, text = summarize_command(out)
    assert saved["pairing"]["left_out"] == {"eiou": {"1": reason}}
    assert saved["paired"]["val"]["eiou"]["AP"]["values"] == pytest.approx({"0": 0.02})  # seed 1 not compared
    assert saved["power"]["val"]["eiou"]["AP"]["n"] == 1
    assert f"- **left out of the paired comparisons: eiou vs ciou on seed 1**: {reason}" in text
    assert "seed(s) 1 left out (see pairing above)" not in text  # one seed kept: the sentence for n = 1 is said


def test_a_pair_whose_settings_differ_beyond_the_configs_own_keys_is_left_out(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    for seed in (0, 1):  # every eiou run trained at imgsz 96 (as if by another command), ciou at the default
        rewrite(out, f"eiou-s{seed}", lambda r: r["settings"].update(imgsz=96))
    saved, text = summarize_command(out)
    reason = "settings differ beyond the configs' own keys (imgsz 96 vs 256)"
    assert saved["pairing"]["left_out"] == {"eiou": {"0": reason, "1": reason}}
    assert saved["paired"]["val"]["eiou"]["AP"]["n"] == 0
    assert f"- **left out of the paired comparisons: eiou vs ciou on seeds 0, 1**: {reason}" in text
    assert "- eiou vs ciou (val): every pair left out (see pairing above), no paired difference." in text


def test_fields_older_records_lack_are_assumed_equal_and_said(tmp_path):
    """Records before cfg_keys (or a package's version) was recorded keep their pairs: unknown, assumed equal, said.
    Without cfg_keys a key counts as the config's own unless the command set it for every config."""
    out = tmp_path / "bench"
    finished(out)
    for name in records(out):
        rewrite(out, name, lambda r: r.pop("cfg_keys"))
    rewrite(out, "eiou-s0", lambda r: r["versions"].update(boxloss=None))
    saved, text = summarize_command(out)
    assert saved["pairing"]["left_out"] == {}
    assert saved["pairing"]["assumed"] == {"the boxloss version": 1, "the config's own keys (taken as every key "
                                                                      "outside the command's train overrides)": 4}
    assert ("not recorded, so assumed equal: the boxloss version for 1 run; the config's own keys (taken as every "
            "key outside the command's train overrides) for 4 runs") in text
    for seed in (0, 1):  # a train override that differs is never a config's own key
        rewrite(out, f"eiou-s{seed}", lambda r: r["settings"].update(epochs=2))
    saved, _ = summarize_command(out)
    assert saved["pairing"]["left_out"]["eiou"]["0"] == "settings differ beyond the configs' own keys (epochs 2 vs 1)"


def test_pair_problem_by_hand():
    base = {"run": "ciou-s0", "settings": {"box_loss": "ciou", "epochs": 1}, "cfg_keys": ["box_loss"],
            "versions": {"torch": "2.11.0"}, "machine": {"cpu": "AMD EPYC", "gpu": None}, "elapsed_s": 10.0,
            "finished_at": "t1"}
    config = {**base, "run": "eiou-s0", "settings": {"box_loss": "eiou", "epochs": 1, "box": 4.3},
              "cfg_keys": ["box", "box_loss"]}
    assumed: dict = {}
    assert pairs.pair_problem(config, base, {}, assumed) is None and assumed == {}
    assert pairs.pair_problem({**config, "cfg_keys": ["box_loss"]}, base, {}, assumed) == \
        "settings differ beyond the configs' own keys (box 4.3 vs <unset>)"
    assert pairs.pair_problem({**config, "versions": {"torch": "2.14.1"}}, base, {}, assumed) == \
        "package versions differ (torch 2.14.1 vs 2.11.0)"
    assert pairs.pair_problem({**config, "machine": {"cpu": "AMD EPYC", "cpu_count": 16, "gpu": None}}, base, {},
                              assumed) is None  # the core count is not the kind of machine
    assert pairs.pair_problem({**config, "machine": None, "versions": {}}, base, {}, assumed) is None
    assert assumed == {"the kind of machine": {"eiou-s0"}, "the torch version": {"eiou-s0"}}
    rescored = {**base, "run": "ciou-diou_nms-s0", "rescore": {"from": "ciou-s0", "source_finished_at": "t0"}}
    assert pairs.pair_problem(rescored, base, {"ciou-s0": base}, {}) == \
        "re-scored from weights of ciou-s0 that a later run replaced"
    assert pairs.pair_problem({**rescored, "rescore": {"from": "ciou-s0", "source_finished_at": "t1"}}, base,
                              {"ciou-s0": base}, {}) is None
    old = {**rescored, "rescore": {"from": "ciou-s0"}}  # before source_finished_at: a re-score copies elapsed_s
    assert pairs.pair_problem(old, base, {"ciou-s0": base}, {}) is None
    assert pairs.pair_problem({**old, "elapsed_s": 11.0}, base, {"ciou-s0": base}, {}) is not None


# ---------------------------------------------------------------------------------------------------------------
# Re-scores follow their source
# ---------------------------------------------------------------------------------------------------------------
def rescored_from(out: Path, source: str, label: str = "diou_nms") -> str:
    """Write the record ``benchmark.py rescore`` makes from ``source`` (its evaluation redone with other NMS: here
    AP - 0.01 on every threshold), as boxloss/benchmark/rescore.py writes it."""
    record = json.loads((out / "results" / f"{source}.json").read_text())
    cfg, seed = f"{record['cfg']}-{label}", record["seed"]
    record.update(cfg=cfg, run=f"{cfg}-s{seed}",
                  metrics={split: {k: v - 0.01 if k.startswith("AP") and v != -1 else v for k, v in values.items()}
                           for split, values in record["metrics"].items()},
                  rescore={"from": source, "source_finished_at": record["finished_at"], "val": ["nms=diou"],
                           "command": "python scripts/benchmark.py rescore (test)"})
    (out / "results" / f"{record['run']}.json").write_text(json.dumps(record, indent=2))
    return record["run"]


def test_a_force_rerun_moves_the_records_rescored_from_a_run_with_it(tmp_path):
    """The issue's probe: re-scores outlived a force=true re-run and were paired with other weights. Now they go
    into results/superseded/ with their source; moved back in (as an older version left them), the summary leaves
    their pairs out and says why."""
    out = tmp_path / "bench"
    finished(out)
    derived = [rescored_from(out, f"ciou-s{seed}") for seed in (0, 1)]
    saved, _ = summarize_command(out, "baseline=ciou")
    assert saved["paired"]["val"]["ciou-diou_nms"]["AP"]["values"] == pytest.approx({"0": -0.01, "1": -0.01})

    plan = plan_for(out, "epochs=2", "force=true")
    run(plan, FakeRunner())
    results = sorted(path.name for path in (out / "results").glob("*.json"))
    assert results == ["ciou-s0.json", "ciou-s1.json", "eiou-s0.json", "eiou-s1.json"]
    superseded = sorted(path.name.split(".")[0] for path in (out / "results" / "superseded").glob("*.json"))
    assert superseded == sorted(["ciou-s0", "ciou-s1", "eiou-s0", "eiou-s1", *derived])

    for path in (out / "results" / "superseded").glob("ciou-diou_nms-*.json"):
        shutil.move(path, out / "results" / f"{path.name.split('.')[0]}.json")
    saved, text = summarize_command(out, "baseline=ciou")
    reason = "re-scored from weights of ciou-s{} that a later run replaced"
    assert saved["pairing"]["left_out"]["ciou-diou_nms"] == {str(s): reason.format(s) for s in (0, 1)}
    assert saved["paired"]["val"]["ciou-diou_nms"]["AP"]["n"] == 0
    assert saved["paired"]["val"]["eiou"]["AP"]["values"] == pytest.approx({"0": 0.02, "1": 0.02})
    assert (f"- **left out of the paired comparisons: ciou-diou_nms vs ciou on seed 0**: {reason.format(0)}"
            in text)
    assert "- ciou-diou_nms vs ciou (val): every pair left out (see pairing above), no paired difference." in text


def test_rescore_nms_none_without_a_one_to_one_head_is_refused_before_any_evaluation(tmp_path):
    import torch

    from boxloss.testing.models import build_model

    out = tmp_path / "bench"
    plan = finished(out)
    for spec in plan.runs:
        weights = spec.train_dir / "weights" / "best.pt"
        weights.parent.mkdir(parents=True)
        torch.save({"model": build_model("yolov8n.yaml"), "train_args": {}}, weights)
    weights = plan.runs[0].train_dir / "weights" / "best.pt"
    assert_refused("boxloss.cli.benchmark", ["rescore", f"out={out}", "cfgs=ciou", "nms=none"],
                   f"ciou-s0: nms=none needs an end-to-end head (YOLOv10, YOLO26); {str(weights)!r} has Detect "
                   "without a one-to-one branch", cwd=tmp_path, exact=False, quiet=True, watched=(out,))
    assert not (out / "val").exists()


# ---------------------------------------------------------------------------------------------------------------
# The report folder: whole or not at all
# ---------------------------------------------------------------------------------------------------------------
def full_disk_after(monkeypatch, files: int) -> None:
    """Every write of the report folder after the first ``files`` fails as on a full disk."""
    written = []
    real = report_folder._write

    def write(path, data):
        if len(written) >= files:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path.name)
        real(path, data)

    monkeypatch.setattr(report_folder, "_write", write)


def test_summarize_into_a_full_disk_is_one_line_and_writes_nothing(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    finished(out)
    full_disk_after(monkeypatch, 1)  # summary.json written, the plot not
    into = tmp_path / "cmp"
    assert_refused("boxloss.cli.benchmark", ["summarize", f"out={out}", f"into={into}", "bootstrap=0"],
                   f"cannot write {into / 'ap_vs_iou.png'}: No space left on device; the report in {into} is "
                   "unchanged", cwd=tmp_path, exact=True)
    assert not into.exists()


def test_a_failed_report_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    out = tmp_path / "bench"
    finished(out)
    into = tmp_path / "cmp"
    summarize_command(out, f"into={into}")
    before = {path.name: path.read_bytes() for path in into.iterdir()}
    assert sorted(before) == ["ap_vs_iou.png", "report.md", "summary.json"]
    rewrite(out, "eiou-s1", lambda r: r["metrics"]["val"].update(AP=0.9))  # the next report would differ
    full_disk_after(monkeypatch, 2)
    assert_refused("boxloss.cli.benchmark", ["summarize", f"out={out}", f"into={into}", "bootstrap=0"],
                   f"cannot write {into / 'report.md'}", cwd=tmp_path, watched=(into,))
    assert {path.name: path.read_bytes() for path in into.iterdir()} == before


def test_a_plot_the_new_report_has_not_goes_with_the_old_report(tmp_path):
    out = tmp_path / "bench"
    plan = finished(out)
    for spec in plan.runs:
        spec.train_dir.mkdir(parents=True)
        (spec.train_dir / "results.csv").write_text("epoch,metrics/mAP50(B),metrics/mAP50-95(B)\n1,0.2,0.1\n2,0.3,0.2\n")
    summarize_command(out)
    assert (out / "curves.png").is_file()
    for spec in plan.runs:
        shutil.rmtree(spec.train_dir)
    summarize_command(out)
    assert not (out / "curves.png").exists() and (out / "report.md").is_file()
    assert not [path for path in out.iterdir() if path.name.startswith(".")]


def test_the_report_wording_is_pure_markdown_of_the_summary(tmp_path):
    out = tmp_path / "bench"
    finished(out)
    result = summary.summarize(list(records(out).values()), "ciou")
    text = report.format_report(result)
    assert "- pairing: a config's run is paired with the baseline's on the same seed only when" in text
    assert "not recorded" not in text and "left out" not in text
