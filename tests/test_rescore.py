"""scripts/rescore.py tide=true on a tiny benchmark: TIDE added to every finished run from its saved val folders,
metrics untouched, re-runs skipped, missing folders named, bad input refused with nothing written."""

import json

import pytest

from boxloss.stats.records import read_result
from boxloss.evaluation import evaluate, tide_errors
from boxloss.testing.detections import random_detections
from helpers import assert_refused, run_entry, run_in_process
from test_benchmark import FakeRunner, no_temp_files, plan_for, run


def tiny_benchmark(out):
    """Four finished runs (ciou, eiou x seeds 0, 1; split val) whose val folders hold small random evaluations and
    whose records hold those evaluations' metrics, as the benchmark writes them. Returns {run: (gt, predictions)}."""
    plan = plan_for(out)
    saved = {}
    for i, spec in enumerate(plan.runs):
        data = random_detections(n_images=6, dets_per_image=12, n_classes=3, seed=i, crowd_fraction=0.05)
        folder = spec.val_dir("val")
        folder.mkdir(parents=True)
        (folder / "gt.json").write_text(json.dumps(data.gt))
        (folder / "predictions.json").write_text(json.dumps(data.predictions))
        saved[spec.name] = (data.gt, data.predictions)
    run(plan, FakeRunner(metrics=lambda cfg, seed, splits: {
        split: evaluate(*saved[f"{cfg}-s{seed}"]) for split in splits}))
    return plan, saved


def rescore(args, tmp_path):
    return run_in_process("scripts/rescore.py", args, tmp_path, timeout=300)


def test_tide_is_added_to_every_run_and_a_rerun_skips_them(tmp_path):
    out = tmp_path / "bench"
    plan, saved = tiny_benchmark(out)
    before = {spec.name: read_result(spec.result_path) for spec in plan.runs}
    result = rescore(["tide=true", f"out={out}"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    for spec in plan.runs:
        record = read_result(spec.result_path)
        expected = tide_errors(*saved[spec.name])
        assert record["tide"] == {"val": expected}
        assert json.loads((spec.val_dir("val") / "tide.json").read_text()) == expected
        assert {k: v for k, v in record.items() if k not in ("tide", "tide_added_by")} == before[spec.name]
        assert record["tide_added_by"]["command"] == f"python scripts/rescore.py tide=true out={out}"
        assert record["tide_added_by"]["evaluator"].startswith("hotcoco 1.3.")
        assert f"rescore: {spec.name}: TIDE added (val AP50 " in result.stdout
    assert no_temp_files(out)

    files = {p: p.read_bytes() for p in out.rglob("*.json")}
    again = rescore(["tide=true", f"out={out}", "cfgs=eiou"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.splitlines() == [f"rescore: eiou-s{s} already has TIDE (force=true recomputes it)"
                                         for s in (0, 1)]
    assert {p: p.read_bytes() for p in out.rglob("*.json")} == files
    forced = rescore(["tide=true", f"out={out}", "cfgs=ciou", "force=true"], tmp_path)
    assert forced.returncode == 0 and forced.stdout.count("TIDE added") == 2
    assert read_result(plan.runs[0].result_path)["tide"] == {"val": tide_errors(*saved["ciou-s0"])}


def test_runs_without_their_val_folder_are_named_and_the_others_done(tmp_path):
    out = tmp_path / "bench"
    plan, _ = tiny_benchmark(out)
    (plan.runs[1].val_dir("val") / "predictions.json").unlink()
    predictions = plan.runs[2].val_dir("val") / "predictions.json"
    predictions.write_text(json.dumps(json.loads(predictions.read_text())[::2]))  # not the record's evaluation
    untouched = {spec.name: spec.result_path.read_bytes() for spec in plan.runs[1:3]}
    result = rescore(["tide=true", f"out={out}"], tmp_path)
    assert result.returncode == 1
    assert f"rescore: ciou-s1: not re-scored: {plan.runs[1].val_dir('val')} has no gt.json and predictions.json" \
        in result.stderr
    assert "rescore: eiou-s0: not re-scored: " in result.stderr and "its predictions give AP50" in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "rescore: 2 run(s) not re-scored: ciou-s1, eiou-s0"
    assert {spec.name: spec.result_path.read_bytes() for spec in plan.runs[1:3]} == untouched
    assert all("tide" in read_result(spec.result_path) for spec in (plan.runs[0], plan.runs[3]))


@pytest.mark.parametrize("args, message", [
    (["tide=true"], "out= is required"),
    (["tide=true", "out=nowhere"], "nowhere/results not found: out= must be a benchmark folder"),
    (["tide=true", "out={out}", "cfgs=ciou,giou"], "no finished runs of giou in"),
    (["tide=true", "out={out}", "nms=diou"], "nms= re-evaluates with the weights; tide=true only reads the saved val"),
    (["tide=maybe", "out={out}"], "tide='maybe' has the wrong type"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(args, message, tmp_path):
    out = tmp_path / "bench"
    tiny_benchmark(out)
    files = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert_refused("scripts/rescore.py", [a.format(out=out) for a in args], message, cwd=tmp_path, quiet=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == files


def test_no_run_with_its_val_folders_is_bad_input(tmp_path):
    out = tmp_path / "bench"
    plan, _ = tiny_benchmark(out)
    for spec in plan.runs:
        (spec.val_dir("val") / "gt.json").unlink()
    records = {spec.result_path: spec.result_path.read_bytes() for spec in plan.runs}
    line = assert_refused("scripts/rescore.py", ["tide=true", f"out={out}"], cwd=tmp_path)
    assert line.startswith("rescore.py: error: none of the 4 runs could be re-scored (e.g. ciou-s0: "), line
    assert {path: path.read_bytes() for path in records} == records and not list(out.rglob("tide.json"))


@pytest.mark.slow
def test_the_issue_probe_rescore_then_a_force_rerun_leaves_no_pair_of_other_weights(tmp_path):
    """Issue 29's probe through the real commands: a re-score of ciou's weights with DIoU-NMS, then a force=true
    re-run of the benchmark with epochs=2. The re-scores move into results/superseded/ with their source, and the
    summary has no ciou-diou_nms row; moved back (as the code before this left them), their pair is left out."""
    import shutil

    out = tmp_path / "bench"
    common = ["cfgs=ciou", "seeds=0", "data=shapes-mini", "imgsz=64", "batch=8", "workers=0", f"out={out}"]
    first = run_entry("scripts/benchmark.py", [*common, "epochs=1"], tmp_path, tmp_path / "network.log")
    assert first.returncode == 0, first.stderr[-3000:]
    scored = run_entry("scripts/benchmark.py", ["rescore", f"out={out}", "cfgs=ciou", "nms=diou"], tmp_path,
                       tmp_path / "network.log")
    assert scored.returncode == 0, scored.stderr[-3000:]
    derived = read_result(out / "results" / "ciou-diou_nms-s0.json")
    source = read_result(out / "results" / "ciou-s0.json")
    assert derived["rescore"]["from"] == "ciou-s0" and derived["rescore"]["source_finished_at"] == source["finished_at"]
    assert derived["rescore"]["command"].endswith(f"scripts/benchmark.py rescore out={out} cfgs=ciou nms=diou")

    again = run_entry("scripts/benchmark.py", [*common, "epochs=2", "force=true"], tmp_path, tmp_path / "network.log")
    assert again.returncode == 0, again.stderr[-3000:]
    assert sorted(path.name for path in (out / "results").glob("*.json")) == ["ciou-s0.json"]
    moved = sorted((out / "results" / "superseded").glob("ciou-diou_nms-s0.*.json"))
    assert len(moved) == 1 and json.loads((out / "summary.json").read_text())["configs"] == ["ciou"]

    shutil.move(moved[0], out / "results" / "ciou-diou_nms-s0.json")
    summarized = run_entry("scripts/benchmark.py", ["summarize", f"out={out}", "baseline=ciou"], tmp_path,
                           tmp_path / "network.log")
    assert summarized.returncode == 0, summarized.stderr[-3000:]
    saved = json.loads((out / "summary.json").read_text())
    assert saved["pairing"]["left_out"] == {"ciou-diou_nms": {"0": "re-scored from weights of ciou-s0 that a later "
                                                                    "run replaced"}}
    assert saved["paired"]["val"]["ciou-diou_nms"]["AP"]["n"] == 0
    assert "- **left out of the paired comparisons: ciou-diou_nms vs ciou on seed 0**" in \
        (out / "report.md").read_text()
